"""The `vidgan` command: `fit | validate | test` (LightningCLI), `data`, `predict` and `eval`.

A table for `ganforge.cli.dispatch`, which imports only the module of the command that runs, so
`vidgan --help` and `vidgan data ...` start without loading Lightning. The config chooses the model
and the data module by class path, so `vidgan fit` trains DVD-GAN-FP or the baseline on Moving MNIST or
a video folder:

    model:
      class_path: vidgan.module.VideoGAN            # or vidgan.baseline_module.ConvGRUBaseline
      init_args: {...}
    data:
      class_path: vidgan.data.MovingMNISTDataModule  # or vidgan.data.VideoFolderDataModule
      init_args: {context_frames: 10, future_frames: 10, image_size: 64, ...}

The model's context_frames, future_frames, channels and resolution come from the data block
(`vidgan.data.datamodule.MODEL_LINKS`).
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
RETIRED = {
    "data.source": "data: `source:` is gone; name the data module instead: `data: {class_path: "
    "vidgan.data.MovingMNISTDataModule, init_args: {...}}` for source: moving_mnist, "
    "vidgan.data.VideoFolderDataModule for source: video_folder; the other fields move under init_args, "
    "and the model takes context_frames, future_frames, channels and resolution from them",
}


def lightning_main(argv: list[str]) -> int:
    """LightningCLI on argv, e.g. `fit --config configs/vidgan/moving_mnist.yaml`; returns the exit code."""
    from ganforge.lightning_cli import run_lightning_cli
    from vidgan.data.datamodule import MODEL_LINKS, VideoDataModule
    from vidgan.module import VideoPredictionModule

    links = [(f"data.init_args.{data}", f"model.init_args.{model}") for data, model in MODEL_LINKS]
    return run_lightning_cli(
        PROG, VideoPredictionModule, VideoDataModule, argv, family=PROG, subclass_mode_model=True,
        subclass_mode_data=True, links=links, retired=RETIRED,
    )  # fmt: skip


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
