"""coco_image_256.yaml's network shape (3 stages, every option of the config) trains on CPU at tiny widths.

The config's 64 -> 128 -> 256 becomes 8 -> 16 -> 32 with a few channels per layer; everything else
(80 COCO classes, phrase context, spectral norm, object D, TTUR, betas) is the config's own.
"""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
import yaml
from image_testing import TEXT, single_object_items
from torch.utils.data import DataLoader

from t2i.data.coco import collate_layouts
from t2i.image_stage import ImageGAN

CONFIG = Path(__file__).resolve().parents[2] / "configs/t2i/coco_image_256.yaml"
TINY = {  # the sizes only: 3 stages of 8, 16, 32 px
    "image_size": 32,
    "g_widths": [16, 8],  # stage 0: 4 -> 8
    "refine_width": 8,
    "latent_dim": 8,
    "class_dim": 8,
    "context_dim": 8,
    "object_widths": [8, 8, 8],
    "roi_size": 4,
}


def tiny_coco_image_stage() -> ImageGAN:
    args = yaml.safe_load(CONFIG.read_text())["model"]["init_args"]
    assert args["stages"] == 3 and args["image_size"] == 256  # the network shape under test
    args |= TINY | {"d_widths": [8] * len(args["d_widths"]), "clip_path": None, **TEXT}
    args.pop("layout_checkpoint")
    torch.manual_seed(0)
    return ImageGAN(**args)


def batch(items: int = 4) -> dict:
    """Shapes scenes (labels 1..4 of the 80 COCO classes), 32 px, as CocoLayoutDataModule collates them."""
    return collate_layouts(single_object_items(items, 32, seed=0), max_objects=2)


def grad_norms(module: torch.nn.Module) -> list[float]:
    return [float(p.grad.norm()) for p in module.parameters() if p.grad is not None]


def assert_all_finite_and_nonzero(module: torch.nn.Module, what: str) -> None:
    norms = grad_norms(module)
    assert norms and len(norms) == sum(1 for p in module.parameters() if p.requires_grad), what
    assert all(torch.isfinite(torch.tensor(norms))) and sum(norms) > 0, f"{what}: {norms}"


def test_every_stage_has_finite_nonzero_losses_and_gradients() -> None:
    model = tiny_coco_image_stage()
    assert model.generator.stage_sizes == [8, 16, 32] and len(model.discriminator.patch) == 3
    data = batch()
    d_loss, d_logs = model.discriminator_loss(data)
    d_loss.backward()
    for stage, critic in enumerate(model.discriminator.patch):
        for key in (f"d{stage}_uncond", f"d{stage}_cond"):
            assert torch.isfinite(d_logs[key]) and d_logs[key] != 0, key
        assert_all_finite_and_nonzero(critic, f"patch D of stage {stage}")
    assert_all_finite_and_nonzero(model.discriminator.objects, "object D")
    assert all(p.grad is None for p in model.generator.parameters())  # D's loss reads detached fakes
    model.zero_grad(set_to_none=True)
    g_loss, g_logs = model.generator_loss(data)
    g_loss.backward()
    g = model.generator
    for stage in range(3):
        assert torch.isfinite(g_logs[f"g{stage}_patch"]) and g_logs[f"g{stage}_patch"] != 0
        assert_all_finite_and_nonzero(g.to_rgb[stage], f"G's to_rgb of stage {stage}")
        assert_all_finite_and_nonzero(g.word_attention[stage], f"G's word attention of stage {stage}")
    for stage, block in enumerate(g.refine, start=1):
        assert_all_finite_and_nonzero(block, f"G's refine block of stage {stage}")
    assert torch.isfinite(g_logs["g_object"]) and g_logs["g_object"] != 0


def test_a_few_training_steps_update_every_stages_discriminator_and_generator(tmp_path: Path) -> None:
    model = tiny_coco_image_stage()
    parts = {f"patch D {s}": critic for s, critic in enumerate(model.discriminator.patch)}
    parts |= {"object D": model.discriminator.objects, "G stage 0": model.generator.blocks}
    parts |= {f"G stage {s}": block for s, block in enumerate(model.generator.refine, start=1)}
    before = {name: [p.detach().clone() for p in part.parameters()] for name, part in parts.items()}
    items = single_object_items(8, 32, seed=1)
    loader = DataLoader(items, batch_size=4, collate_fn=lambda b: collate_layouts(b, max_objects=2))
    trainer = pl.Trainer(
        accelerator="cpu", max_steps=4, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(model, loader)
    for name, part in parts.items():
        after = list(part.parameters())
        assert all(torch.isfinite(p).all() for p in after), name
        assert any(not torch.equal(a, b) for a, b in zip(after, before[name])), f"{name} did not step"
    assert model.g_step >= 2
