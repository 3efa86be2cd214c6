"""Every configs/t2i/*layout*.yaml instantiates through `t2i fit` and runs a batch on CPU.

The shapes config runs on a few rendered images. The COCO config keeps its paper-scale networks
and runs one batch at batch 2 in fp32 on CPU, on shapes images relabelled as the COCO files the
config names (80 categories, its train / val splits: COCO 2014), with a tiny local CLIP in place of
ViT-B/32.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from image_testing import write_tiny_clip

from t2i.cli import main
from t2i.data import ShapesSpec, render_shapes

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "t2i"
QUIET = [
    "--trainer.logger=false",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
]
ONE_BATCH = ["--trainer.fast_dev_run=1", "--data.init_args.batch_size=2", "--data.init_args.num_workers=0"]


@pytest.fixture(scope="module")
def shapes_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shapes")
    render_shapes(root, ShapesSpec(train=8, val=4, size=64, seed=1))
    return root


@pytest.fixture(scope="module")
def coco_root(shapes_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shapes files as the COCO config's splits: its 80 category names, images in `{split}/`."""
    root = tmp_path_factory.mktemp("coco")
    config = yaml.safe_load((CONFIG_DIR / "coco_layout.yaml").read_text())
    names, data = config["model"]["init_args"]["class_names"], config["data"]["init_args"]
    (root / "annotations").mkdir()
    for split in ("train", "val"):
        coco_split = data[f"{split}_split"]
        shutil.copytree(shapes_root / "images" / split, root / data["images_subdir"].format(split=coco_split))
        instances = json.loads((shapes_root / "annotations" / f"instances_{split}.json").read_text())
        instances["categories"] = [
            {"id": i + 1, "name": n, "supercategory": "x"} for i, n in enumerate(names)
        ]
        for ann in instances["annotations"]:
            ann.pop("attributes")  # real COCO has no colours
        (root / "annotations" / f"instances_{coco_split}.json").write_text(json.dumps(instances))
        shutil.copy(
            shapes_root / "annotations" / f"captions_{split}.json",
            root / "annotations" / f"captions_{coco_split}.json",
        )
    return root


def test_every_layout_config_is_covered() -> None:
    assert {p.name for p in CONFIG_DIR.glob("*layout*.yaml")} == {
        "shapes_layout.yaml",
        "shapes_layout_tiny.yaml",
        "shapes_layout_demo.yaml",
        "coco_layout.yaml",
    }


@pytest.mark.parametrize("name", ["shapes_layout.yaml", "shapes_layout_tiny.yaml", "shapes_layout_demo.yaml"])
def test_shapes_config_runs_a_batch(name: str, shapes_root: Path, tmp_path: Path) -> None:
    argv = ["fit", "--config", str(CONFIG_DIR / name), *ONE_BATCH, *QUIET]
    argv += [f"--data.init_args.data_dir={shapes_root}", f"--trainer.default_root_dir={tmp_path}"]
    assert main(argv) == 0


def test_coco_config_runs_a_batch_at_paper_scale_on_cpu(coco_root: Path, tmp_path: Path) -> None:
    clip_path = write_tiny_clip(tmp_path / "clip.pt", context_length=77, text_layers=1)
    argv = ["fit", "--config", str(CONFIG_DIR / "coco_layout.yaml"), *ONE_BATCH, *QUIET]
    argv += [
        "--trainer.accelerator=cpu",
        "--trainer.devices=1",
        "--trainer.precision=32-true",
        f"--model.init_args.clip_path={clip_path}",
        f"--data.init_args.data_dir={coco_root}",
        f"--trainer.default_root_dir={tmp_path}",
    ]
    assert main(argv) == 0
