"""`vidgan fit | validate | test`: LightningCLI over vidgan's modules and `VideoDataModule`.

The config chooses the model by class path, so one command trains DVD-GAN-FP or the baseline:

    model:
      class_path: vidgan.module.VideoGAN            # or vidgan.baseline_module.ConvGRUBaseline
      init_args: {...}
"""

from __future__ import annotations

from ganforge.cli import run_lightning_cli
from vidgan.data import VideoDataModule
from vidgan.module import VideoPredictionModule

PROG = "vidgan"


def lightning_main(argv: list[str]) -> int:
    """LightningCLI on argv, e.g. `fit --config configs/vidgan/moving_mnist.yaml`; returns the exit code."""
    return run_lightning_cli(
        PROG, VideoPredictionModule, VideoDataModule, argv, family=PROG, subclass_mode_model=True
    )
