"""The `vidgan` command: `fit | validate | test` (LightningCLI), `data`, `predict` and `eval`.

A table for `ganforge.cli.dispatch`, which imports only the module of the command that runs, so
`vidgan --help` and `vidgan data ...` start without loading Lightning. The config chooses the model
by class path, so `vidgan fit` trains DVD-GAN-FP or the baseline:

    model:
      class_path: vidgan.module.VideoGAN            # or vidgan.baseline_module.ConvGRUBaseline
      init_args: {...}
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ganforge.cli import dispatch

PROG = "vidgan"
COMMANDS = {
    "data": (
        "vidgan.data.commands:main",
        "datasets: vidgan data moving-mnist | index | resize | bair | ucf101",
    ),
    "predict": (
        "vidgan.commands.predict:main",
        "predict future frames: vidgan predict --ckpt_path C --video IN.mp4 --out OUT.mp4, or every test "
        "clip as files: --data test.npy --out-dir DIR",
    ),
    "eval": (
        "vidgan.commands.evaluate:main",
        "score predictions: vidgan eval --ckpt_path C --data PATH --out metrics.json",
    ),
}


def lightning_main(argv: list[str]) -> int:
    """LightningCLI on argv, e.g. `fit --config configs/vidgan/moving_mnist.yaml`; returns the exit code."""
    from ganforge.lightning_cli import run_lightning_cli
    from vidgan.data import VideoDataModule
    from vidgan.module import VideoPredictionModule

    return run_lightning_cli(
        PROG, VideoPredictionModule, VideoDataModule, argv, family=PROG, subclass_mode_model=True
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `vidgan` console script; returns the exit code."""
    return dispatch(
        PROG,
        COMMANDS,
        argv,
        description="vidgan: DVD-GAN-FP video frame prediction on the ganforge core. "
        "Run `vidgan COMMAND --help` for a command's options.",
        lightning="vidgan.cli:lightning_main",
    )


if __name__ == "__main__":
    sys.exit(main())
