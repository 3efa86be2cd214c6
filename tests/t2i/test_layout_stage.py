"""LayoutGAN via `t2i fit` on the tiny config: logs, checkpoint round trip without the CLIP file, errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from image_testing import write_tiny_clip

from ganforge.checkpoint import load_checkpoint, submodule_state
from ganforge.media import ImageMedia
from t2i.cli import main
from t2i.layout_stage import LayoutGAN
from t2i.models.clip_model import load_clip

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "t2i" / "shapes_layout_tiny.yaml"
CLASSES = ["circle", "square", "triangle", "diamond"]
SMALL = {
    "box_hidden": 32,
    "box_layers": 1,
    "box_heads": 2,
    "mask_size": 8,
    "layout_size": 16,
    "shape_hidden": 32,
}
TEXT = {"text_embed_dim": 32, "text_width": 64, "text_layers": 1}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("layout_fit")
    args = [
        "fit",
        "--config",
        str(CONFIG),
        f"--data.init_args.data_dir={root / 'data'}",
        f"--trainer.default_root_dir={root / 'run'}",
        "--trainer.enable_progress_bar=false",
        "--trainer.logger=pytorch_lightning.loggers.CSVLogger",
        f"--trainer.logger.init_args.save_dir={root / 'run'}",
    ]
    assert main(args) == 0
    return root / "run"


def _metrics(run: Path) -> dict[str, list[float]]:
    (path,) = run.rglob("metrics.csv")
    out: dict[str, list[float]] = {}
    for row in csv.DictReader(path.open()):
        for key, value in row.items():
            if value:
                out.setdefault(key, []).append(float(value))
    return out


def test_fit_logs_likelihood_adversarial_and_layout_metrics(fitted: Path) -> None:
    logged = _metrics(fitted)
    for key in ("train/class_nll", "train/centre_nll", "train/size_nll", "train/mask_bce", "train/d_loss"):
        assert key in logged and all(torch.isfinite(torch.tensor(logged[key])))
    for key in ("val/box_nll", "val/object_set_accuracy", "val/relation_accuracy", "val/mask_iou"):
        assert key in logged, key
    assert 0 <= logged["val/mask_iou"][-1] <= 1 and 0 <= logged["val/object_set_accuracy"][-1] <= 1


def test_checkpoint_loads_weights_only_and_regenerates_the_same_layouts(fitted: Path) -> None:
    (path,) = fitted.rglob("last.ckpt")
    checkpoint = load_checkpoint(path, family=LayoutGAN.family)
    hparams = {
        k: v for k, v in checkpoint["hyper_parameters"].items() if not k.startswith("_")
    }  # _class_path
    model = LayoutGAN(**hparams)
    model.load_state_dict(checkpoint["state_dict"])
    again = LayoutGAN.load_from_checkpoint(path, weights_only=True)
    captions = ["a red circle to the left of a blue square", "a small green triangle"]
    a = model.generate_layouts(captions, torch.Generator().manual_seed(0))
    b = again.generate_layouts(captions, torch.Generator().manual_seed(0))
    assert [[(x.label, x.x, x.y, x.w, x.h) for x in lay] for lay in a] == [
        [(x.label, x.x, x.y, x.w, x.h) for x in lay] for lay in b
    ]
    assert all(box.mask is not None and box.mask.shape == (8, 8) for lay in a for box in lay)
    ema = submodule_state(checkpoint["state_dict"], "ema.model")
    torch.testing.assert_close(ema["boxes.class_head.weight"], model.ema.model.boxes.class_head.weight)


def test_clip_file_only_seeds_the_tower_and_is_not_needed_to_load(tmp_path: Path) -> None:
    clip_path = write_tiny_clip(tmp_path / "clip.pt", context_length=24, text_layers=1)
    clip = load_clip(clip_path)
    model = LayoutGAN(CLASSES, max_objects=4, clip_path=str(clip_path), text_trainable=False, **SMALL)
    torch.testing.assert_close(model.generator.text.token_embedding.weight, clip.token_embedding.weight)
    assert not any(p.requires_grad for p in model.generator.text.parameters())
    assert model.hparams.clip_path is None and model.hparams.text_context_length == 24
    clip_path.unlink()
    rebuilt = LayoutGAN(**model.hparams)
    rebuilt.load_state_dict(model.state_dict())
    features = rebuilt.generator.encode(["a red circle"])
    torch.testing.assert_close(features.sentence, model.generator.encode(["a red circle"]).sentence)


def test_sample_returns_layout_media_with_labelled_boxes(fitted: Path) -> None:
    (path,) = fitted.rglob("last.ckpt")
    model = LayoutGAN.load_from_checkpoint(path, weights_only=True).eval()
    masks = torch.zeros(2, 4, 32, 32)
    masks[0, 0, 4:20, 4:20] = 1
    batch = {
        "caption": ["a red square", "a blue circle above a green diamond"],
        "labels": torch.tensor([[2, 0, 0, 0], [1, 4, 0, 0]]),
        "boxes": torch.tensor(
            [[[0.125, 0.125, 0.5, 0.5]] + [[0.0] * 4] * 3, [[0.1, 0.1, 0.3, 0.3]] * 2 + [[0.0] * 4] * 2]
        ),
        "object_mask": torch.tensor([[True, False, False, False], [True, True, False, False]]),
        "masks": masks,
    }
    media = model.sample(batch)
    assert set(media) == {"layouts", "layouts_truth"}
    assert all(isinstance(m, ImageMedia) and m.images.shape[:2] == (2, 3) for m in media.values())
    assert [b.label for b in media["layouts_truth"].boxes[1]] == ["circle", "diamond"]
    assert media["layouts"].captions == batch["caption"]


def test_test_command_reports_layout_metrics(fitted: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (path,) = fitted.rglob("last.ckpt")
    (config,) = fitted.rglob("config.yaml")
    args = ["test", "--config", str(config), f"--ckpt_path={path}", "--trainer.logger=false"]
    assert main(args) == 0
    assert "test/relation_accuracy" in capsys.readouterr().out


def test_losses_are_finite_under_bf16_autocast(rng: torch.Generator) -> None:
    torch.manual_seed(0)
    model = LayoutGAN(CLASSES, max_objects=4, **SMALL, **TEXT)
    masks = (torch.rand(2, 4, 32, 32, generator=rng) > 0.5).float()
    batch = {
        "caption": ["a red square", "a blue circle above a green diamond"],
        "labels": torch.tensor([[2, 0, 0, 0], [1, 4, 0, 0]]),
        "boxes": torch.tensor([[[0.1, 0.1, 0.5, 0.5]] * 4, [[0.1, 0.1, 0.3, 0.3]] * 4]),
        "object_mask": torch.tensor([[True, False, False, False], [True, True, False, False]]),
        "masks": masks,
        "colors": [["red"], ["blue", "green"]],
    }
    with torch.autocast("cpu", dtype=torch.bfloat16):
        g_loss, g_logs = model.generator_loss(batch)
        d_loss, _ = model.discriminator_loss(batch)
    assert torch.isfinite(g_loss) and torch.isfinite(d_loss)
    assert g_logs["size_nll"].dtype == torch.float32  # the mixtures run in fp32
    g_loss.backward()


def test_config_errors_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="text_conditioning='words'"):
        LayoutGAN(CLASSES, text_conditioning="words", **SMALL)
    with pytest.raises(ValueError, match="class_names is empty"):
        LayoutGAN([], **SMALL)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        LayoutGAN(CLASSES, clip_path=str(tmp_path / "missing.pt"), **SMALL)


def test_class_names_must_match_the_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "fit",
        "--config",
        str(CONFIG),
        f"--data.init_args.data_dir={tmp_path / 'data'}",
        f"--trainer.default_root_dir={tmp_path / 'run'}",
        "--model.init_args.class_names=[circle, square, star, diamond]",
        "--trainer.logger=false",
        "--trainer.enable_progress_bar=false",
    ]
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "class_names=['circle', 'square', 'star', 'diamond']" in err and "triangle" in err
