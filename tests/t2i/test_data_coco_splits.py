"""COCO 2014 splits (AttnGAN / Obj-GAN's): the COCO configs and `t2i eval --split val2014` read a fake
COCO 2014 folder; train2017 with val2014 is refused (train2017 holds most of val2014)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from image_testing import tiny_pipeline
from PIL import Image
from torch.testing import assert_close

from t2i.cli import main
from t2i.data import CocoLayoutDataModule
from t2i.data.coco import COCO_SPLITS, check_coco_splits

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "t2i"
COCO_CONFIGS = ("coco_layout.yaml", "coco_image_256.yaml")


def data_args(config: str) -> dict:
    return yaml.safe_load((CONFIG_DIR / config).read_text())["data"]["init_args"]


def write_fake_coco_2014(root: Path, split: str, first_id: int, count: int = 3) -> None:
    """`count` 40 x 30 JPEGs named as COCO 2014 names them, each with a person box and two captions."""
    (root / split).mkdir(parents=True)
    (root / "annotations").mkdir(exist_ok=True)
    images, objects, captions = [], [], []
    for image_id in range(first_id, first_id + count):
        name = f"COCO_{split}_{image_id:012d}.jpg"
        Image.fromarray(np.full((30, 40, 3), image_id * 20 % 256, np.uint8)).save(root / split / name)
        images.append({"id": image_id, "file_name": name, "width": 40, "height": 30})
        polygon = [[5.0, 5.0, 25.0, 5.0, 25.0, 20.0, 5.0, 20.0]]
        box = {"bbox": [5.0, 5.0, 20.0, 15.0], "area": 300.0, "iscrowd": 0, "segmentation": polygon}
        objects.append({"id": image_id, "image_id": image_id, "category_id": 1, **box})
        for k in range(2):
            captions.append({"id": 2 * image_id + k, "image_id": image_id, "caption": f"a person {k}"})
    categories = [{"id": 1, "name": "person", "supercategory": "person"}]
    instances = {"images": images, "annotations": objects, "categories": categories}
    (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(instances))
    (root / "annotations" / f"captions_{split}.json").write_text(
        json.dumps({"images": images, "annotations": captions})
    )


@pytest.mark.parametrize("config", COCO_CONFIGS)
def test_coco_configs_read_the_2014_split_from_coco_file_names(config: str, tmp_path: Path) -> None:
    args = data_args(config)
    assert (args["train_split"], args["val_split"]) == COCO_SPLITS[2014]
    write_fake_coco_2014(tmp_path, "train2014", first_id=1)
    write_fake_coco_2014(tmp_path, "val2014", first_id=100, count=2)
    data = CocoLayoutDataModule(**args | {"data_dir": str(tmp_path), "image_size": 32, "num_workers": 0})
    assert len(data.dataset("train")) == 3 and len(data.dataset("val")) == 2
    item = data.dataset("val")[1]
    assert item["image_id"] == 101 and item["image"].shape == (3, 32, 32) and item["caption"] == "a person 0"
    assert_close(item["boxes"], torch.tensor([[5 / 40, 5 / 30, 20 / 40, 15 / 30]]))  # normalised x, y, w, h


def test_train2017_with_val2014_is_refused() -> None:
    args = data_args("coco_image_256.yaml") | {"train_split": "train2017"}
    with pytest.raises(ValueError, match="train_split=train2017 holds 35,504 of val2014's 40,504 images"):
        CocoLayoutDataModule(**args)
    for train, val in (*COCO_SPLITS.values(), ("train2014", "val2017"), ("train", "val")):
        check_coco_splits(train, val)  # disjoint: no error


def as_coco_2014(shapes: Path, root: Path) -> Path:
    """The shapes files under COCO 2014's names: annotations/*_{train,val}2014.json, {train,val}2014/."""
    (root / "annotations").mkdir(parents=True)
    for split, coco_split in zip(("train", "val"), COCO_SPLITS[2014]):
        shutil.copytree(shapes / "images" / split, root / coco_split)
        for kind in ("instances", "captions"):
            shutil.copy(
                shapes / "annotations" / f"{kind}_{split}.json",
                root / "annotations" / f"{kind}_{coco_split}.json",
            )
    return root


def test_eval_scores_the_val2014_split_of_a_coco_folder(tmp_path: Path, capsys) -> None:
    pipeline = tiny_pipeline(tmp_path / "pipeline")
    coco = as_coco_2014(pipeline["data"], tmp_path / "coco")
    out = tmp_path / "metrics.json"
    args = ["eval", "--ckpt_path", str(pipeline["ckpt"]), "--data", str(coco), "--out", str(out), "--quiet"]
    args += [
        "--clip",
        str(pipeline["judge_clip"]),
        "--soa-steps",
        "2",
        "--fd-steps",
        "2",
        "--max-captions",
        "4",
    ]
    args += ["--split", "val2014", "--images-subdir", "{split}"]
    assert main([*args, "--train-split", "train2014"]) == 0
    result = json.loads(out.read_text())
    assert (
        result["split"] == "val2014" and result["images"] == 4 and result["judges"]["soa"]["train_crops"] > 0
    )
    assert main([*args, "--train-split", "train2017"]) == 1
    assert "train_split=train2017 holds 35,504 of val2014's" in capsys.readouterr().err
