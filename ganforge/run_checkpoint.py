"""RunCheckpoint: the newest few periodic checkpoints, and a `last.ckpt` that holds the final state.

Lightning's `ModelCheckpoint` writes `last.ckpt` beside each periodic save and, at the end of fit,
only if nothing was saved during the run. A fit that ends between two periodic saves (`max_steps`
not a multiple of the interval, `max_time`, a stop signal) therefore left `last.ckpt` at the
previous save. `RunCheckpoint` writes it again at the end of every fit whose state changed since
the last save. A fit stopped by a non-finite loss (ganforge.errors.NonFiniteLossError) or a crash
ends in an exception and keeps its last saved, finite state.

Retention: `keep_last` periodic checkpoints (default 3, the newest by step) plus `last.ckpt`.
Add a second `ModelCheckpoint(monitor=..., save_top_k=1)` to also keep the best by a metric.
Steps are generator steps (docs/training_steps.md).
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint

from ganforge.errors import UserError


def batches_done(trainer: pl.Trainer) -> int:
    """Training batches whose step has run, counted across resumes.

    `processed`, not `completed`: Lightning counts a batch completed only after its
    `on_train_batch_end` hooks, where the periodic and preemption saves happen.
    """
    return int(trainer.fit_loop.epoch_loop.batch_progress.total.processed)


class RunCheckpoint(ModelCheckpoint):
    """`ModelCheckpoint` every `every_n_train_steps` generator steps, keeping the newest `keep_last`.

    Args:
        dirpath: folder of the checkpoints (default `<run dir>/checkpoints`).
        filename: Lightning's file name template (default `epoch={epoch}-step={step}`).
        every_n_train_steps: generator steps between periodic checkpoints.
        keep_last: periodic checkpoints kept, newest first (-1 keeps all). `last.ckpt` is extra.
        save_last: also write `last.ckpt` at every save and at the end of the fit.

    The arguments are explicit (no `**kwargs`): LightningCLI passes every argument it can see.
    """

    def __init__(
        self,
        dirpath: str | None = None,
        filename: str | None = None,
        every_n_train_steps: int = 500,
        keep_last: int = 3,
        save_last: bool = True,
    ) -> None:
        # No version counter: a resumed run overwrites last.ckpt instead of writing last-v1.ckpt.
        # Retention is ours (`_prune`): Lightning keeps more than one file only by a monitored metric.
        super().__init__(
            dirpath=dirpath,
            filename=filename,
            every_n_train_steps=every_n_train_steps,
            save_top_k=-1,
            save_last=save_last,
            enable_version_counter=False,
        )
        if keep_last == 0 or keep_last < -1:
            raise UserError(f"keep_last={keep_last} must be >= 1, or -1 to keep every periodic checkpoint")
        self.keep_last = keep_last
        self.periodic: list[str] = []  # this run's periodic checkpoints, oldest first
        self._saved_batches: int | None = None

    def _save_none_monitor_checkpoint(self, trainer: pl.Trainer, monitor_candidates: dict) -> None:
        before = self._last_checkpoint_saved
        super()._save_none_monitor_checkpoint(trainer, monitor_candidates)
        if self._last_checkpoint_saved != before and self._last_checkpoint_saved not in self.periodic:
            self.periodic.append(self._last_checkpoint_saved)
            self._prune(trainer)

    def _prune(self, trainer: pl.Trainer) -> None:
        """Remove periodic checkpoints beyond the newest `keep_last` (rank 0 deletes)."""
        if self.keep_last == -1:
            return
        while len(self.periodic) > self.keep_last:
            self._remove_checkpoint(trainer, self.periodic.pop(0))

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "periodic": list(self.periodic)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.periodic = list(state_dict.get("periodic", []))

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        super()._save_checkpoint(trainer, filepath)
        self._saved_batches = batches_done(trainer)

    def saved_elsewhere(self, trainer: pl.Trainer) -> None:
        """The current state was just saved by another writer (a Slurm requeue's `hpc_ckpt_N.ckpt`):
        no `last.ckpt` for it at train end, where the preemption's grace time may not cover one.
        `--ckpt_path auto` resumes from that newer file."""
        self._saved_batches = batches_done(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Write `last.ckpt` with the final state unless this exact state was just saved."""
        if not self.save_last or trainer.fast_dev_run or self._saved_batches == batches_done(trainer):
            return
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
