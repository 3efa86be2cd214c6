"""SampleMediaCallback: every N training batches, `model.sample(fixed batch)` -> W&B media and local files.

The fixed batch is the first validation batch (the first training batch when there is no
validation loader), cut to `max_items` items and kept on the CPU, so successive samples are
comparable. `sample` runs on rank 0 only, under `no_grad`, in eval mode, and inside a forked RNG
seeded with `seed`: samplers that draw noise from the global RNG get the same noise every time and
the training RNG stream is untouched. A module without a `sample` method logs no media; a failing
`sample` or writer warns once and switches media logging off; neither ever stops training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.utilities.apply_func import move_data_to_device
from pytorch_lightning.utilities.model_helpers import is_overridden
from pytorch_lightning.utilities.rank_zero import rank_zero_warn
from torch import Tensor

from ganforge.errors import UserError
from ganforge.media import ImageMedia, VideoMedia
from ganforge.media_files import check_media, write_media
from ganforge.wandb_logger import GANForgeWandbLogger, first_line
from ganforge.wandb_media import to_wandb


def take_first(batch: Any, n: int) -> Any:
    """The first `n` items of a batch: tensors and lists are cut along dim 0, dicts/tuples recursively."""
    if isinstance(batch, Tensor):
        return batch[:n].detach().cpu().clone()
    if isinstance(batch, dict):
        return {k: take_first(v, n) for k, v in batch.items()}
    if isinstance(batch, tuple):
        return tuple(take_first(v, n) for v in batch)
    if isinstance(batch, list):
        cut = batch[:n]
        return [take_first(v, n) if isinstance(v, (Tensor, dict, list, tuple)) else v for v in cut]
    return batch


def logging_step(trainer: pl.Trainer) -> int:
    """The step Lightning's own logger calls use: training batches seen (restored on resume)."""
    return int(trainer.fit_loop.epoch_loop._batches_that_stepped)


class SampleMediaCallback(pl.Callback):
    """Log `pl_module.sample(batch)` media every `every_n_steps` steps and at the end of fit.

    Media are logged at W&B's step axis (training batches, `logging_step`), so they line up with the
    scalars logged in the same batch.

    Args:
        every_n_steps: steps (`trainer.global_step`: generator steps for GANs) between two samples.
        max_items: items of the fixed batch passed to `sample`.
        video_format: "mp4" or "gif".
        local_dir: also write the media as files here (None: only W&B); see `ganforge.media_files`.
        seed: seed of the forked RNG `sample` runs in.
    """

    def __init__(
        self,
        every_n_steps: int = 500,
        max_items: int = 8,
        video_format: str = "mp4",
        local_dir: str | Path | None = None,
        seed: int = 0,
    ) -> None:
        if every_n_steps < 1:
            raise UserError(f"every_n_steps={every_n_steps} must be >= 1")
        self.every_n_steps, self.max_items = every_n_steps, max_items
        self.video_format, self.seed = video_format, seed
        self.local_dir = None if local_dir is None else Path(local_dir)
        self.label_ids: dict[str, int] = {}  # box label -> class id, stable across steps
        self.fixed_batch: Any = None
        self.enabled = True
        self._last_step: int | None = None  # the step media were last logged at
        self._last_batch_step: int | None = None  # the logging step of this fit's latest batch
        self._global_step: int | None = None  # trainer.global_step after the latest batch

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._global_step = trainer.global_step  # a resumed run logged media at this step already
        if not callable(getattr(pl_module, "sample", None)):
            self.enabled = False  # not a sampling model (e.g. t2i's CLIP stage): nothing to show
        if not trainer.is_global_zero or self.fixed_batch is not None or not self.enabled:
            return
        datamodule = trainer.datamodule
        if datamodule is None or not is_overridden("val_dataloader", datamodule):
            return
        try:
            loader = datamodule.val_dataloader()
            loader = loader[0] if isinstance(loader, (list, tuple)) else loader
            self.fixed_batch = take_first(next(iter(loader)), self.max_items)
        except Exception as err:  # fall back to the first training batch
            rank_zero_warn(
                f"sample media: no validation batch ({first_line(err)}); using the first training batch"
            )

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not trainer.is_global_zero or not self.enabled:
            return
        if self.fixed_batch is None:
            self.fixed_batch = take_first(batch, self.max_items)
        step = self._last_batch_step = logging_step(trainer)
        advanced, self._global_step = trainer.global_step != self._global_step, trainer.global_step
        if advanced and trainer.global_step % self.every_n_steps == 0:  # D-only batches keep the step
            self.log_samples(trainer, pl_module, step)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # At the last batch's own step: a run resumed from a checkpoint of that batch (last.ckpt,
        # a Slurm requeue's hpc_ckpt) logs from the next step on, so no step is logged twice.
        step = self._last_batch_step
        if step is None or step == self._last_step or not trainer.is_global_zero or not self.enabled:
            return
        self.log_samples(trainer, pl_module, step)

    def log_samples(self, trainer: pl.Trainer, pl_module: pl.LightningModule, step: int) -> None:
        """Sample on the fixed batch and log the media at `step` to W&B loggers and local files."""
        self._last_step = step
        try:
            media = self.sample(pl_module)
            check_media(media)
            for logger in trainer.loggers:
                if isinstance(logger, GANForgeWandbLogger):
                    logger.log_metrics(to_wandb(media, self.video_format, self.label_ids), step=step)
            if self.local_dir is not None:
                write_media(media, self.local_dir, step, self.video_format, self.label_ids)
        except Exception as err:  # the dashboard must never stop training
            self.enabled = False
            name = type(pl_module).__name__
            rank_zero_warn(
                f"sample media disabled: {name}.sample(batch) or its logging failed ({first_line(err)})"
            )

    def sample(self, pl_module: pl.LightningModule) -> dict[str, VideoMedia | ImageMedia]:
        """`pl_module.sample(fixed batch)` in eval mode, without gradients, in a seeded forked RNG."""
        batch = move_data_to_device(self.fixed_batch, pl_module.device)
        devices = [pl_module.device] if pl_module.device.type == "cuda" else []
        was_training = pl_module.training
        pl_module.eval()
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=devices):
                torch.manual_seed(self.seed)
                media = pl_module.sample(batch)
        finally:
            pl_module.train(was_training)
        if not isinstance(media, dict):
            raise TypeError(f"sample(batch) returned {type(media).__name__}, expected dict[str, media]")
        return media
