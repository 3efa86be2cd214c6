"""Time a LightningModule's training batches through a real Trainer, on one fixed batch repeated.

Shared by the step benchmarks (`dgmr_vs_ours.py`, `gpu_step.py`): no data loading, validation,
logger, checkpoints or progress bar, so the clock sees the training step and Lightning's loop only.
"""

from __future__ import annotations

import time
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader


class BatchClock(pl.Callback):
    """Wall times of the training start and of every batch end, after queued GPU kernels finish."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_start(self, trainer, pl_module):  # noqa: ANN001
        self.times.append(time.perf_counter())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):  # noqa: ANN001
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.times.append(time.perf_counter())


def fit_repeated_batch(
    model: pl.LightningModule,
    batch: Any,
    batches: int,
    accelerator: str = "cpu",
    precision: str = "32-true",
    log_every_n_steps: int = 25,
) -> list[float]:
    """Fit `model` on `batch` repeated `batches` times; returns the start time, then each batch's end time."""
    clock = BatchClock()
    trainer = pl.Trainer(
        accelerator=accelerator,
        devices=1,
        precision=precision,
        max_steps=-1,
        max_epochs=1,
        limit_val_batches=0,
        log_every_n_steps=log_every_n_steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[clock],
    )
    trainer.fit(model, DataLoader([batch] * batches, batch_size=None))
    return clock.times
