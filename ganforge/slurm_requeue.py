"""Preemption for Slurm jobs: save `hpc_ckpt_N.ckpt` at a batch boundary all DDP ranks agree on, then requeue.

Lightning's own SIGUSR1 handler (`SLURMEnvironment(auto_requeue=True)`) saves the checkpoint inside
the signal handler. Under DDP each rank takes the signal wherever its main thread happens to be,
so the checkpoint's barrier can pair with another rank's all-reduce and the job hangs until Slurm
kills it (seen here in 1 of 6 preemptions; Lightning issue #21406).

`SlurmRequeue` replaces that handler. Its handler only sets a flag. The ranks compare it (together
with `ganforge.fit_end`'s stop flag, in one all-reduce) every `stop_check_every(trainer)` batches,
at most `MAX_STOP_DELAY` = 10, so the checkpoint comes at most 10 batches after the signal (in one
process, at the next batch end); when any rank has it they all save the same `hpc_ckpt_N.ckpt` that
Lightning resumes from, end training there, and rank 0 writes the file named by
`GANFORGE_REQUEUE_FILE`. Every `fit` command (GANForgeCLI) adds this callback whenever that
variable is set; slurm/train.sbatch sets it and runs `scontrol requeue` once srun has exited, so no
rank is torn down by SIGTERM mid-collective.
The requeued job resumes from the highest `hpc_ckpt_*` as usual. A signal taken twice (say by
`scancel --signal=USR1 --full`) still means one checkpoint and one requeue.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from types import FrameType
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from ganforge.fit_end import agreed_request
from ganforge.run_checkpoint import RunCheckpoint

REQUEST_ENV = "GANFORGE_REQUEUE_FILE"


class SlurmRequeue(pl.Callback):
    """On SIGUSR1: checkpoint at a batch end soon after on every rank, stop, and request a requeue.

    Inactive unless `GANFORGE_REQUEUE_FILE` is set. It installs its handler in `setup`, before
    Lightning registers its own signal handlers, so Lightning leaves SIGUSR1 alone.
    """

    def __init__(self) -> None:
        self.request_file = os.environ.get(REQUEST_ENV)
        self.requested = False
        self._previous_handler: Any = None  # what signal.signal returned: a callable, SIG_DFL, ...

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True

    def pending(self) -> bool:
        return self.requested

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit" and self.request_file:
            self._previous_handler = signal.signal(signal.SIGUSR1, self._on_signal)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._previous_handler is not None:
            signal.signal(signal.SIGUSR1, self._previous_handler)
            self._previous_handler = None

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: object,
        batch: object,
        batch_idx: int,
    ) -> None:
        if self._previous_handler is None:
            return
        # Every rank reaches it at every batch end (a collective on check batches): one answer everywhere.
        if not agreed_request(trainer, self):
            return
        path = trainer._checkpoint_connector.hpc_save_path(trainer.default_root_dir)
        _claim_last_checkpoints(trainer)
        trainer.save_checkpoint(path)  # every rank takes part; rank 0 writes
        for callback in trainer.checkpoint_callbacks:
            if isinstance(callback, RunCheckpoint):
                callback.saved_elsewhere(trainer)
        if trainer.is_global_zero:
            prune_older_hpc_checkpoints(Path(path))
            Path(self.request_file).write_text(f"{path}\n")
        self.requested = False
        # End training as if max_steps were reached here; `trainer.should_stop` would first run a
        # validation pass (Lightning's early-stopping rule), time the signal's lead may not cover.
        trainer.fit_loop.epoch_loop.max_steps = trainer.global_step


def _claim_last_checkpoints(trainer: pl.Trainer) -> None:
    """Put each `save_last` ModelCheckpoint's last.ckpt path into the state hpc_ckpt is about to carry.

    Such a callback writes last.ckpt once more when this run ends, after hpc_ckpt is saved. A
    resumed run whose restored `last_model_path` does not name that file treats it as someone
    else's and writes last-v1.ckpt, leaving last.ckpt stale; naming it here keeps one last.ckpt.
    """
    metrics = {"epoch": torch.tensor(trainer.current_epoch), "step": torch.tensor(trainer.global_step)}
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.save_last and callback.dirpath:
            callback.last_model_path = callback.format_checkpoint_name(metrics, callback.CHECKPOINT_NAME_LAST)


def prune_older_hpc_checkpoints(newest: Path) -> list[Path]:
    """Delete the `hpc_ckpt_*.ckpt` beside `newest` that precede it: each is ~1 GB at paper scale.

    Only the newest is ever resumed from (Lightning's rule and `--ckpt_path auto` alike).
    """
    older = [p for p in newest.parent.glob("hpc_ckpt_*.ckpt") if _hpc_number(p) < _hpc_number(newest)]
    for path in older:
        path.unlink(missing_ok=True)
    return older


def _hpc_number(path: Path) -> int:
    return int(path.stem.rsplit("_", 1)[1])
