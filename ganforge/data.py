"""The loaders of the families' data modules: "train" resumable and sharded, "val" / "test" in order."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
from torch.utils.data import DataLoader, Dataset

from ganforge.resumable import training_loader


def split_loader(
    dataset: Dataset, split: str, trainer: Any, order: Mapping[str, Any], **loader_kwargs: Any
) -> DataLoader:
    """The loader of split "train", "val" or "test" over `dataset`.

    "train" gets a `training_loader` (resumable, sharded by `trainer`'s DDP rank, full batches only)
    in the order `order` gives ({"seed": ...} and optionally "shuffle", "fresh_each_epoch"); the
    others every item in order. `loader_kwargs` go to the DataLoader (batch_size, num_workers, ...).
    """
    if split != "train":
        return DataLoader(dataset, shuffle=False, **loader_kwargs)
    # The training position is saved in checkpoints (exact resume; see ganforge.resumable).
    return training_loader(dataset, trainer, **order, **loader_kwargs)


class SplitDataModule(pl.LightningDataModule):
    """Base of the families' data modules: Lightning's train, val and test loaders are `_loader(split)`."""

    def _loader(self, split: str) -> DataLoader:
        """The loader of "train", "val" or "test" (usually a `split_loader`)."""
        raise NotImplementedError

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
