"""A DataLoader whose position inside an epoch is saved in Lightning checkpoints and restored on resume.

Lightning 2.x stores `state_dict()` of every training loader that has `state_dict` and
`load_state_dict` (checkpoint key `loops.fit_loop.state_dict.combined_loader`), and calls
`load_state_dict` before the first batch of a resumed fit. `ResumableDataLoader` answers with
`{epoch, batches, batch_size, num_replicas}`; on resume its `ResumableSampler` restarts the saved
epoch's order (a function of `seed` and `epoch` only) after the batches already trained on, so a
killed run continues with exactly the batches it would have seen. Its length stays the full epoch,
as Lightning expects of a resumed loader (and, the length being known, Lightning fetches no batch
ahead, so the batches handed out are the batches trained on).

With `fresh_each_epoch=True` the sampler asks epoch e for indices `e * len(dataset) + i`: datasets
generated on the fly draw item `index` from a generator seeded by `(seed, index)`, so every epoch
sees new data and any item can be regenerated from its index alone (no worker or global RNG state).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sized
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler


class ResumableSampler(DistributedSampler):
    """DistributedSampler (so Lightning does not wrap it under DDP) that can start an epoch mid-way.

    Args:
        dataset: a map-style dataset of `len(dataset)` items.
        num_replicas, rank: the DDP world size and this process's rank (1 and 0 without DDP).
        shuffle: a new permutation per epoch, seeded by `seed + epoch` (torch's DistributedSampler).
        seed: the order's seed; the same on every rank.
        drop_last: drop the tail that does not split evenly over ranks (else pad by repeating).
        fresh_each_epoch: yield `epoch * len(dataset) + i` instead of `i` (see the module docstring).
    """

    def __init__(
        self,
        dataset: Sized,
        *,
        num_replicas: int = 1,
        rank: int = 0,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        fresh_each_epoch: bool = False,
    ) -> None:
        super().__init__(
            dataset,  # type: ignore[arg-type]
            num_replicas=num_replicas,
            rank=rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
        )
        self.fresh_each_epoch = fresh_each_epoch
        self.start = 0  # indices of this rank skipped by the latest __iter__
        self._resume: tuple[int, int] | None = None  # (epoch, indices to skip) for the next __iter__

    def resume(self, epoch: int, skip: int) -> None:
        """Make the next iteration of `epoch` skip its first `skip` indices (of this rank)."""
        if skip < 0:
            raise ValueError(f"ResumableSampler: skip={skip} must be >= 0")
        self.set_epoch(epoch)
        self._resume = (epoch, skip)

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        if self.fresh_each_epoch:
            offset = self.epoch * len(self.dataset)  # type: ignore[arg-type]
            indices = [offset + i for i in indices]
        resume, self._resume = self._resume, None
        self.start = resume[1] if resume is not None and resume[0] == self.epoch else 0
        return iter(indices[self.start :])


class ResumableDataLoader(DataLoader):
    """DataLoader over a `ResumableSampler` whose `state_dict()` records the epoch and the batches given out.

    Batches are counted as the loader hands them to the training loop (after any worker
    prefetching), so the saved position is the number of batches actually trained on. The
    iterator never draws from the global RNG: worker base seeds come from `generator`, reseeded
    from `(seed, epoch)` at every epoch, so worker RNGs are reproducible on resume as well
    (with non-persistent workers; persistent workers keep their RNG across epochs).

    Build it with `batch_size` and `sampler=ResumableSampler(...)`. When Lightning swaps the
    sampler (`overfit_batches`) or a custom `batch_sampler` is given, it is a plain DataLoader
    whose `state_dict()` is empty.
    """

    def __init__(self, dataset: Any, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("generator") is None:
            kwargs["generator"] = torch.Generator()
        super().__init__(dataset, *args, **kwargs)
        self.batches = 0  # batches of the current epoch handed out so far

    @property
    def resumable(self) -> bool:
        """Whether the position can be saved: a `ResumableSampler` batched by `batch_size`."""
        return isinstance(self.sampler, ResumableSampler) and self.batch_size is not None

    def __iter__(self) -> Iterator[Any]:
        if not self.resumable:
            return super().__iter__()
        # The iterator draws its workers' base seed from `generator` (else from the global RNG, which
        # a resumed run would then consume at a different moment): make that seed a function of
        # (seed, epoch) too.
        seed = np.random.SeedSequence([self.sampler.seed, self.sampler.epoch]).generate_state(1)[0]
        self.generator.manual_seed(int(seed))
        return self._counted(super().__iter__())

    def _counted(self, iterator: Iterator[Any]) -> Iterator[Any]:
        first = True
        for batch in iterator:
            if first:  # the sampler has started by now, so its skip is known
                self.batches, first = self.sampler.start // self.batch_size, False
            self.batches += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        """`{"epoch", "batches", "batch_size", "num_replicas"}`: where the training loop stands."""
        if not self.resumable:
            return {}
        return {
            "epoch": self.sampler.epoch,
            "batches": self.batches,
            "batch_size": int(self.batch_size),
            "num_replicas": self.sampler.num_replicas,
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue after `state["batches"]` batches of `state["epoch"]` at the next iteration."""
        if not state:
            return
        if not self.resumable:
            warnings.warn(
                "ResumableDataLoader: this loader has no ResumableSampler; the saved epoch position "
                f"{state} is not restored",
                stacklevel=2,
            )
            return
        epoch, items = int(state["epoch"]), int(state["batches"]) * int(state["batch_size"])
        saved = (int(state["batch_size"]), int(state.get("num_replicas", self.sampler.num_replicas)))
        if saved != (self.batch_size, self.sampler.num_replicas):
            warnings.warn(
                f"ResumableDataLoader: the checkpoint was saved with batch_size={saved[0]} on "
                f"{saved[1]} process(es), this run has batch_size={self.batch_size} on "
                f"{self.sampler.num_replicas}; the epoch continues after about the same number of "
                "items, not exactly where it stopped",
                stacklevel=2,
            )
        batches = items // self.batch_size
        if batches >= len(self):  # the saved epoch was complete: start the next one from its beginning
            epoch, batches = epoch + 1, 0
        self.sampler.resume(epoch, batches * self.batch_size)
        self.batches = batches


def rank_and_world_size(trainer: Any) -> tuple[int, int]:
    """(global rank, world size) of a datamodule's `trainer`; (0, 1) outside a fit (None)."""
    return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)


def training_loader(
    dataset: Any,
    trainer: Any,
    *,
    seed: int,
    shuffle: bool = True,
    fresh_each_epoch: bool = False,
    **loader_kwargs: Any,
) -> ResumableDataLoader:
    """The training loader of a datamodule: resumable, sharded by `trainer`'s DDP rank, full batches only.

    `trainer` is the datamodule's (None outside a fit: one process). `drop_last` keeps batch sizes
    equal, which GAN and contrastive losses, batch-norm statistics and DDP steps want. The other
    arguments are `ResumableSampler`'s and `DataLoader`'s.
    """
    rank, world_size = rank_and_world_size(trainer)
    sampler = ResumableSampler(
        dataset,
        num_replicas=world_size,
        rank=rank,
        shuffle=shuffle,
        seed=seed,
        fresh_each_epoch=fresh_each_epoch,
    )
    return ResumableDataLoader(dataset, sampler=sampler, drop_last=True, **loader_kwargs)
