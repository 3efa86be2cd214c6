"""The `t2i` command: `fit | validate | test` through LightningCLI, plus data, generation and eval tools.

A table for `ganforge.cli.dispatch`, which imports only the module of the command that runs, so
`t2i --help` and `t2i data ...` start without loading Lightning. The YAML chooses the stage by class
path, e.g. for the small CLIP:

    model:
      class_path: t2i.clip_stage.ContrastiveCLIP
      init_args: {embed_dim: 128, ...}
    data:
      class_path: t2i.data.CocoLayoutDataModule
      init_args: {data_dir: data/shapes, ...}
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ganforge.cli import dispatch

PROG = "t2i"
COMMANDS = {
    "data": ("t2i.commands.data:main", "write datasets: t2i data shapes --out data/shapes"),
    "export-clip": (
        "t2i.commands.export_clip:main",
        "write the CLIP state dict of a clip-stage checkpoint",
    ),
    "generate": (
        "t2i.commands.generate:main",
        "captions -> PNG grid (--out) or PNGs + captions.jsonl (--out-dir, --captions-file): "
        't2i generate --ckpt_path C "caption" --out OUT.png',
    ),
    "eval": (
        "t2i.commands.evaluate:main",
        "SOA, FID + IS (TF-Inception) or fd_*, CLIP score: t2i eval --ckpt_path C --data DIR --out m.json",
    ),
}


def run_stage_cli(argv: list[str]) -> int:
    """LightningCLI in subclass mode: any LightningModule / LightningDataModule named by the config."""
    import pytorch_lightning as pl

    from ganforge.lightning_cli import run_lightning_cli

    return run_lightning_cli(
        PROG,
        pl.LightningModule,
        pl.LightningDataModule,
        argv,
        family=PROG,
        subclass_mode_model=True,
        subclass_mode_data=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `t2i` console script; returns the exit code."""
    return dispatch(
        PROG,
        COMMANDS,
        argv,
        description="Text-to-image (Obj-GAN style). `t2i fit --config configs/t2i/X.yaml` trains the stage "
        "the config names (see `t2i fit --help`); `validate` and `test` work the same way.",
        lightning="t2i.cli:run_stage_cli",
    )


if __name__ == "__main__":
    sys.exit(main())
