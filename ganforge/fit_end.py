"""FitEnd: every fit ends at a batch boundary, with its final weights validated and saved.

- `max_steps` or `max_epochs` reached: the last batch asks for a validation pass of the final
  weights (when validation is configured), so the run's last logged metrics are those of
  `last.ckpt` (ganforge.run_checkpoint.RunCheckpoint writes it at train end).
- SIGTERM (`scancel`, a node shutdown, `kill`) or a first Ctrl-C (SIGINT): the handler only sets a
  flag. At a batch end where the ranks compare their flags, training stops without a validation
  pass (the signal's grace time may not cover one), `last.ckpt` is written and the command exits
  with 128 + the signal number. There is no requeue: SIGUSR1 keeps that meaning
  (ganforge.slurm_requeue). A second Ctrl-C interrupts at once, as Python does by default.

Under DDP the ranks compare their stop flags (this one and `ganforge.slurm_requeue`'s) in one
all-reduce, and only every `stop_check_every(trainer)` batches: min(log_every_n_steps,
MAX_STOP_DELAY) = at most 10 batches, on log steps where log_every_n_steps <= 10; it is a host
sync, which the other batches are spared. So a signal stops training at most 10 batches after it
arrives. A single process reads its flags at every batch end (no sync).

Lightning's own SIGTERM handler broadcasts from inside the signal handler under DDP, which can pair
with another rank's collective and hang (Lightning issue #21406); ours replaces it for the fit.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any, Protocol, runtime_checkable
from weakref import WeakKeyDictionary

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_warn

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
MAX_STOP_DELAY = 10  # batches between the DDP ranks' comparisons of their stop flags, at most


@runtime_checkable
class StopRequester(Protocol):
    """A callback whose signal handler sets a request that every rank must act on at the same batch."""

    def pending(self) -> bool:
        """Whether this process has a request not yet acted on."""
        ...


# The comparison made at a trainer's latest check batch: (total batch index, flag per requester id).
_agreed: WeakKeyDictionary[pl.Trainer, tuple[int, dict[int, bool]]] = WeakKeyDictionary()


def stop_check_every(trainer: pl.Trainer) -> int:
    """Batches between two comparisons of the ranks' stop flags: min(log_every_n_steps, MAX_STOP_DELAY)."""
    return max(1, min(trainer.log_every_n_steps, MAX_STOP_DELAY))


def agreed_request(trainer: pl.Trainer, requester: StopRequester) -> bool:
    """At a batch end: whether `requester`'s request is pending on any rank, the same answer on every rank.

    One process reads its own flag. Under DDP every rank calls this at every batch end (a
    collective on check batches): on every `stop_check_every(trainer)`-th batch one all-reduce
    compares the flags of all the trainer's `StopRequester` callbacks at once, and the other
    callbacks reuse it; between check batches the answer is False.
    """
    if trainer.world_size == 1:
        return requester.pending()
    batch = trainer.fit_loop.epoch_loop.total_batch_idx
    if (batch + 1) % stop_check_every(trainer) != 0:
        return False
    cached = _agreed.get(trainer)
    if cached is None or cached[0] != batch:
        requesters = [c for c in trainer.callbacks if isinstance(c, StopRequester)]
        flags = torch.tensor([float(c.pending()) for c in requesters], device=trainer.strategy.root_device)
        flags = trainer.strategy.reduce(flags, reduce_op="sum")
        cached = (batch, {id(c): flag > 0 for c, flag in zip(requesters, flags.tolist(), strict=True)})
        _agreed[trainer] = cached
    return cached[1][id(requester)]


class FitEnd(pl.Callback):
    """Final validation at `max_steps`/`max_epochs`; SIGTERM and a first SIGINT stop at a batch end soon.

    Soon: the next batch end in one process, at most `MAX_STOP_DELAY` batches later under DDP.
    """

    def __init__(self) -> None:
        self.received: int | None = None  # signal number of a stop request not yet acted on
        self.stopped_by: int | None = None  # signal number that ended this fit
        self._previous: dict[int, Any] = {}
        self._max_steps: int | None = None  # as configured: a stop request lowers the loop's own

    # ------------------------------------------------------------------ signals
    def pending(self) -> bool:
        return self.received is not None

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.received = signum
        if signum == signal.SIGINT:  # the next Ctrl-C interrupts at once
            signal.signal(signal.SIGINT, signal.default_int_handler)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._max_steps = trainer.max_steps
        # After Lightning registered its handlers (Trainer._run), so ours replace them for the fit.
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._restore()

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    # ------------------------------------------------------------------ batch end
    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if agreed_request(trainer, self):
            self.stopped_by = self.received or signal.SIGTERM
            self.received = None
            rank_zero_warn(
                f"stopping on {signal.Signals(self.stopped_by).name} at step {trainer.global_step}; "
                "saving last.ckpt (resume with --ckpt_path auto)"
            )
            # End as if max_steps were reached here: `should_stop` would first run a validation pass.
            trainer.fit_loop.epoch_loop.max_steps = trainer.global_step
            return
        if _last_batch(trainer, self._max_steps):
            trainer.should_stop = True  # Lightning validates before a requested stop


def _last_batch(trainer: pl.Trainer, max_steps: int | None) -> bool:
    """Whether the batch that just ended is the fit's last by the configured `max_steps` or `max_epochs`."""
    loop = trainer.fit_loop
    if max_steps is not None and max_steps > 0 and trainer.global_step >= max_steps:
        return True
    max_epochs = trainer.max_epochs
    return (
        max_epochs is not None
        and max_epochs > 0
        and loop.epoch_loop.batch_progress.is_last_batch
        and trainer.current_epoch + 1 >= max_epochs
    )
