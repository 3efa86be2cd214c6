"""The clip stage: contrastive loss values, `t2i fit` errors, and the small CLIP learning retrieval."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from t2i.cli import main
from t2i.clip_stage import ContrastiveCLIP
from t2i.data import CocoLayoutDataset
from t2i.eval.retrieval import r_precision
from t2i.models.clip_model import build_clip, clip, encode_images, load_clip
from t2i.models.text import TextEncoder

TINY = Path(__file__).parents[2] / "configs" / "t2i" / "shapes_clip_tiny.yaml"
QUIET = ["--trainer.logger=false", "--trainer.enable_progress_bar=false"]


def _tiny_module(**overrides) -> ContrastiveCLIP:
    args = dict(
        embed_dim=8, image_resolution=32, vision_width=4, context_length=8, text_width=64, text_layers=1
    )
    return ContrastiveCLIP(**{**args, **overrides})


def test_contrastive_loss_closed_form() -> None:
    module = _tiny_module()
    with torch.no_grad():
        module.clip.logit_scale.fill_(math.log(100.0))
    matched = torch.eye(4, 8)  # orthonormal rows: logits 100 on the diagonal, 0 elsewhere
    loss, acc = module.contrastive_loss(matched, matched)
    torch.testing.assert_close(loss, torch.tensor(math.log(1 + 3 * math.exp(-100.0))))
    assert acc == 1.0
    same = F.normalize(torch.ones(4, 8), dim=-1)  # every pair equally similar: uniform softmax
    loss, _ = module.contrastive_loss(same, same)
    torch.testing.assert_close(loss, torch.tensor(math.log(4.0)))


def test_config_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["fit", "--config", str(TINY), "--trainer.default_root_dir", str(tmp_path), *QUIET]
    assert main([*args, "--model.init_args.text_width", "100"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("t2i: error:") and "text_width=100" in err and len(err.splitlines()) == 1
    missing = ["--data.init_args.data_dir", str(tmp_path / "none"), "--data.init_args.shapes", "null"]
    assert main([*args, *missing]) == 1
    err = capsys.readouterr().err.strip()
    assert "none/annotations/instances_" in err and "does not exist" in err and len(err.splitlines()) == 1
    assert (
        main(["export-clip", "--ckpt_path", str(tmp_path / "no.ckpt"), "--out", str(tmp_path / "c.pt")]) == 1
    )
    assert "no.ckpt" in capsys.readouterr().err


def _val_r_precision(model: torch.nn.Module, data: Path) -> float:
    ann = data / "annotations"
    val = CocoLayoutDataset(
        data / "images/val", ann / "instances_val.json", ann / "captions_val.json", 64, train=False
    )
    items = [val[i] for i in range(len(val))]
    with torch.no_grad():
        image = encode_images(model, torch.stack([item["image"] for item in items]))
        text = TextEncoder(model).encode([item["caption"] for item in items]).sentence
    return r_precision(image, text, num_candidates=100, rng=torch.Generator().manual_seed(0))


@pytest.mark.slow
def test_small_clip_learns_shapes_retrieval(tmp_path: Path) -> None:
    data, run = tmp_path / "data", tmp_path / "run"
    paths = ["--data.init_args.data_dir", str(data), "--trainer.default_root_dir", str(run)]
    assert main(["fit", "--config", str(TINY), *paths, *QUIET]) == 0

    exported = run / "clip.pt"
    model, _ = clip.load(str(exported), device="cpu", jit=False)  # what other tools will do
    trained = _val_r_precision(model.float().eval(), data)
    torch.manual_seed(0)
    untrained = _val_r_precision(
        build_clip(
            embed_dim=64,
            image_resolution=32,
            vision_width=16,
            vision_layers=[1, 1, 1, 1],
            vision_patch_size=None,
            context_length=32,
            text_width=64,
            text_layers=2,
        ).eval(),
        data,
    )
    print(f"held-out R-precision (100 candidates): trained {trained:.3f}, untrained {untrained:.3f}")
    assert untrained < 0.1  # chance is 0.01
    assert trained >= 0.5

    # The training checkpoint exports to the same weights, and `t2i validate` reads it back.
    last = run / "checkpoints" / "last.ckpt"
    assert main(["export-clip", "--ckpt_path", str(last), "--out", str(tmp_path / "again.pt")]) == 0
    first, again = (
        torch.load(exported, weights_only=True),
        torch.load(tmp_path / "again.pt", weights_only=True),
    )
    assert first.keys() == again.keys() and all(torch.equal(first[k], again[k]) for k in first)
    assert TextEncoder.from_pretrained(tmp_path / "again.pt").embed_dim == 64
    assert load_clip(exported).visual.input_resolution == 32
    assert main(["validate", "--config", str(TINY), *paths, *QUIET, "--ckpt_path", str(last)]) == 0
