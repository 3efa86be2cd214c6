"""The image stage's GAN options: WGAN-GP and R1 run through the core's penalty path; checkpoints
written before the `gan` block (flat options) still load."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from image_testing import CLASSES, TEXT, TINY_IMAGE, save_stage, single_object_items
from test_image_stage import tiny_overrides
from torch.testing import assert_close

from t2i.cli import main
from t2i.data.coco import collate_layouts
from t2i.image_stage import ImageGAN
from t2i.layout_stage import LayoutGAN
from t2i.pipeline import TextToImage

CONFIG = Path(__file__).resolve().parents[2] / "configs/t2i/shapes_image_tiny.yaml"


def logged_columns(root: Path) -> set[str]:
    """The metric names of the CSV log under `root`."""
    (metrics,) = root.rglob("metrics.csv")
    with metrics.open() as f:
        return set(next(csv.reader(f)))


@pytest.mark.parametrize(
    ("option", "logged"),
    [
        ("--model.init_args.gan.loss=wgan-gp", "train/d0_gp"),
        ("--model.init_args.gan.r1_weight=1.0", "train/d0_r1"),
    ],
)
def test_a_penalty_set_in_the_gan_block_is_trained_and_logged(
    tmp_path: Path, option: str, logged: str
) -> None:
    logs = tmp_path / "logs"
    argv = ["fit", "--config", str(CONFIG), *tiny_overrides(tmp_path), "--trainer.max_steps=2",
            "--trainer.limit_val_batches=0", "--trainer.log_every_n_steps=1", "--trainer.logger=CSVLogger",
            f"--trainer.logger.init_args.save_dir={logs}", option]  # fmt: skip
    assert main(argv) == 0
    assert logged in logged_columns(logs)


def test_r1_adds_half_its_weight_times_the_penalty_to_the_d_loss() -> None:
    torch.manual_seed(0)
    with_r1 = ImageGAN(**TINY_IMAGE, gan=ImageGAN.gan_options(r1_weight=2.0)).eval()  # eval: no SN power step
    plain = ImageGAN(**TINY_IMAGE).eval()
    plain.load_state_dict(with_r1.state_dict())
    batch = collate_layouts(single_object_items(4, 32, seed=0), max_objects=1)
    torch.manual_seed(1)
    loss, logs = with_r1.discriminator_loss(batch)
    torch.manual_seed(1)
    base, base_logs = plain.discriminator_loss(batch)
    assert "d0_r1" not in base_logs and logs["d0_r1"] > 0
    assert_close(loss - base, 0.5 * 2.0 * logs["d0_r1"])


def flat_hparams(module: torch.nn.Module, names: list[str]) -> dict:
    """The module's hyper-parameters as checkpoints held them before the `gan` block: `names` flat."""
    hparams = dict(module.hparams)
    gan = hparams.pop("gan")
    return hparams | {name: gan[name] for name in names}


def test_checkpoints_with_flat_options_still_load(tmp_path: Path) -> None:
    torch.manual_seed(0)
    layout_options = LayoutGAN.gan_options(g_lr=2e-3, r1_weight=0.5, ema_decay=0.5)
    layout = LayoutGAN(CLASSES, max_objects=3, box_hidden=32, box_layers=1, box_heads=2, shape_hidden=32,
                       gan=layout_options, **TEXT)  # fmt: skip
    layout_names = ["loss", "g_lr", "d_lr", "g_betas", "d_betas", "d_steps_per_g_step", "grad_clip_norm",
                    "r1_weight", "ema_decay", "ema_start_step"]  # fmt: skip  # LayoutGAN's old arguments
    save_stage(layout, tmp_path / "layout.ckpt", flat_hparams(layout, layout_names))
    image_options = ImageGAN.gan_options(loss="ns", d_lr=1e-3, ema_decay=0.9, lr_decay="linear")
    image = ImageGAN(
        CLASSES, **TINY_IMAGE, layout_checkpoint=str(tmp_path / "layout.ckpt"), gan=image_options
    )
    image_names = [*layout_names[:7], "accumulate_grad_batches", "ema_decay", "ema_start_step", "lr_decay",
                   "channels_last", "compile"]  # fmt: skip  # ImageGAN's old arguments: no r1_weight
    save_stage(image, tmp_path / "image.ckpt", flat_hparams(image, image_names))
    model = TextToImage.from_checkpoint(tmp_path / "image.ckpt")
    assert model.image.gan == image_options and model.layout.gan == layout_options
    for restored, original in ((model.image, image), (model.layout, layout)):
        for key, value in original.state_dict().items():
            assert torch.equal(restored.state_dict()[key], value), key
    out = model.generate(["a red circle"], num_samples=1, seed=0)
    assert out.images.shape == (1, 1, 3, 32, 32)
