"""Trainer pieces shared by every ganforge entry point: progress bars, checkpointing, strategy."""

from __future__ import annotations

import os
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import RichProgressBar

from ganforge.gan_ddp import GAN_DDP_STRATEGY


class StepProgressBar(RichProgressBar):
    """A rich progress bar that counts `global_step` (generator steps for GANs) up to `max_steps`.

    Lightning's bar counts the batches of the current epoch and, without `max_epochs`, labels it
    "Epoch 7/-2". With `max_steps` set this bar shows "step 450/2000" and fills by steps; without
    it, "Epoch 7" (and "/N" only when `max_epochs` is set).
    """

    def _get_train_description(self, current_epoch: int) -> str:
        trainer = self.trainer
        if trainer.max_steps is not None and trainer.max_steps > 0:
            return f"step {trainer.global_step}/{trainer.max_steps}"
        if trainer.max_epochs is not None and trainer.max_epochs > 0:
            return f"Epoch {current_epoch}/{trainer.max_epochs - 1}"
        return f"Epoch {current_epoch}"

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if self.progress is None or self.train_progress_bar_id is None:
            return
        if trainer.max_steps is not None and trainer.max_steps > 0:
            self.progress.update(
                self.train_progress_bar_id,
                completed=trainer.global_step,
                total=trainer.max_steps,
                description=self._get_train_description(trainer.current_epoch),
            )


def progress_callbacks(enabled: bool = True) -> list[pl.Callback]:
    """A rich progress bar in steps when enabled and stdout can render it."""
    return [StepProgressBar(leave=True)] if enabled else []


def default_strategy(devices: Any, num_nodes: int = 1) -> str:
    """`GAN_DDP_STRATEGY` ("gan_ddp", `ganforge.gan_ddp`) when more than one process trains, else "auto".

    That strategy synchronises a GAN's G and D with separate DDP wrappers and gives any other
    LightningModule Lightning's plain DDP, so it suits every module a command may train.

    `devices` may be an int, a digit string ("2", as it arrives from the command line), a list of
    device ids, or "auto"/-1.
    """
    if isinstance(devices, str) and devices.strip().isdigit():
        devices = int(devices)
    if isinstance(num_nodes, str) and num_nodes.strip().isdigit():
        num_nodes = int(num_nodes)
    many = (
        num_nodes > 1
        or (isinstance(devices, int) and devices > 1)
        or (isinstance(devices, (list, tuple)) and len(devices) > 1)
    )
    many = many or int(os.environ.get("SLURM_NTASKS", "1")) > 1
    return GAN_DDP_STRATEGY if many else "auto"
