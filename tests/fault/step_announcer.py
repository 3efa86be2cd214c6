"""A Lightning callback for fault tests: prints `step N` after every training batch.

A parent process adds it with `--trainer.callbacks+=step_announcer.StepAnnouncer` (this folder on
PYTHONPATH) and SIGKILLs the `vidgan fit` / `t2i fit` child at a chosen step.
"""

from __future__ import annotations

import sys
from typing import Any

import pytorch_lightning as pl


class StepAnnouncer(pl.Callback):
    """Writes `step <global_step>` to stdout (flushed) at the end of every training batch."""

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        print(f"step {trainer.global_step}", file=sys.stdout, flush=True)
