"""ganforge.data: the split loaders every family's data module serves."""

import torch
from torch.utils.data import TensorDataset

from ganforge.data import SplitDataModule, split_loader
from ganforge.resumable import ResumableDataLoader

DATASET = TensorDataset(torch.arange(10))


def items(loader):
    return [int(x) for (batch,) in loader for x in batch]


def test_val_and_test_loaders_read_every_item_in_order():
    for split in ("val", "test"):
        assert items(split_loader(DATASET, split, None, dict(seed=0), batch_size=4)) == list(range(10))


def test_the_training_loader_is_resumable_seeded_and_drops_the_partial_batch():
    loader = split_loader(DATASET, "train", None, dict(seed=3), batch_size=4)
    assert isinstance(loader, ResumableDataLoader)
    first = items(loader)
    assert len(first) == 8 and first != list(range(8))
    assert items(split_loader(DATASET, "train", None, dict(seed=3), batch_size=4)) == first
    in_order = split_loader(DATASET, "train", None, dict(seed=3, shuffle=False), batch_size=4)
    assert items(in_order) == list(range(8))


def test_a_split_data_module_serves_its_loader_of_each_split():
    class Splits(SplitDataModule):
        def _loader(self, split):
            return split

    data = Splits()
    assert (data.train_dataloader(), data.val_dataloader(), data.test_dataloader()) == (
        "train",
        "val",
        "test",
    )
