"""A Lightning callback for fault tests: prints `step N` after each training batch that advanced the step.

A parent process adds it with `--trainer.callbacks+=step_announcer.StepAnnouncer` (this folder on
PYTHONPATH) and SIGKILLs the `vidgan fit` / `t2i fit` child at a chosen step.
"""

from __future__ import annotations

import sys
from typing import Any

import pytorch_lightning as pl


class StepAnnouncer(pl.Callback):
    """Writes `step <global_step>` to stdout (flushed) after each batch whose optimiser step counted.

    `global_step` counts generator steps, so a D-only batch announces nothing.
    """

    def __init__(self) -> None:
        self.last: int | None = None

    def on_train_start(self, trainer: pl.Trainer, *args: Any) -> None:
        self.last = trainer.global_step

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.global_step != self.last:
            self.last = trainer.global_step
            print(f"step {trainer.global_step}", file=sys.stdout, flush=True)
