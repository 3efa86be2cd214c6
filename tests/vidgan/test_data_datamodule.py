"""MovingMNISTDataModule and VideoFolderDataModule: splits, field checks, epochs through a real Trainer,
rank sharding, the index path."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from ganforge.errors import UserError
from vidgan.data import (
    MovingMNISTDataModule,
    MovingMNISTStream,
    VideoDataModule,
    VideoFolderDataModule,
    VideoFolderDataset,
    write_moving_mnist,
)


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("mmnist")
    write_moving_mnist(out, train=6, test=4, frames=6, size=32, seed=1)
    return out


def test_moving_mnist_files_serve_train_and_test_npy(mnist_dir):
    dm = MovingMNISTDataModule(
        data_dir=str(mnist_dir), context_frames=4, future_frames=2, image_size=32, batch_size=2
    )
    context, target = next(iter(dm.train_dataloader()))
    assert context.shape == (2, 4, 1, 32, 32) and target.shape == (2, 2, 1, 32, 32)
    assert context.dtype == torch.float32 and 0 <= context.min() and context.max() <= 1
    val = list(dm.val_dataloader())
    assert len(val) == 2  # test.npy: 4 sequences in batches of 2, unshuffled
    test = np.load(mnist_dir / "test.npy")
    torch.testing.assert_close(val[0][0][1, :, 0] * 255, torch.from_numpy(test[:4, 1]).float())
    with pytest.raises(ValueError, match=r"image_size=64 but 'train.npy' has frames of \(32, 32\)"):
        MovingMNISTDataModule(
            data_dir=str(mnist_dir), image_size=64, context_frames=3, future_frames=3
        ).setup("fit")


def test_generated_moving_mnist_is_fixed_for_validation_and_new_for_training():
    kwargs = dict(
        context_frames=2, future_frames=2, image_size=32, batch_size=2, train_sequences=4, val_sequences=3
    )
    dm = MovingMNISTDataModule(**kwargs)
    val_a = torch.cat([b[0] for b in dm.val_dataloader()])
    val_b = torch.cat([b[0] for b in MovingMNISTDataModule(**kwargs).val_dataloader()])
    assert val_a.shape == (3, 2, 1, 32, 32) and torch.equal(val_a, val_b)
    test = torch.cat([b[0] for b in dm.test_dataloader()])
    assert not torch.equal(val_a, test)
    loader = dm.train_dataloader()
    first = torch.cat([b[0] for b in loader])
    loader.sampler.set_epoch(1)  # as the Trainer does at every epoch
    second = torch.cat([b[0] for b in loader])
    assert first.shape == (4, 2, 1, 32, 32) and not torch.equal(first, second)


def test_generated_training_stream_is_sharded_by_rank():
    dm = MovingMNISTDataModule(image_size=32, context_frames=2, future_frames=2, train_sequences=10)
    dm.trainer = SimpleNamespace(global_rank=1, world_size=2)
    dm.setup("fit")
    assert isinstance(dm.datasets["train"], MovingMNISTStream)
    sampler = dm.train_dataloader().sampler
    assert (sampler.rank, sampler.num_replicas, len(sampler)) == (1, 2, 5)


class Recorder(pl.LightningModule):
    """Records the first training batch of every epoch; learns nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(()))
        self.first_batches: list[torch.Tensor] = []
        self.val_batches = 0

    def training_step(self, batch, batch_idx):
        context, target = batch
        if batch_idx == 0:
            self.first_batches.append(target.clone())
        return self.weight * context.mean()

    def validation_step(self, batch, batch_idx):
        self.val_batches += 1

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


@pytest.mark.parametrize("num_workers", [0, 1])
def test_trainer_sees_new_training_sequences_every_epoch(num_workers):
    dm = MovingMNISTDataModule(
        image_size=32, context_frames=2, future_frames=2, batch_size=2, train_sequences=4, val_sequences=2,
        num_workers=num_workers,
    )  # fmt: skip
    model = Recorder()
    trainer = pl.Trainer(
        max_epochs=2, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
    )  # fmt: skip
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == 4 and model.val_batches == 2  # 2 batches per epoch, both epochs validated
    first, second = model.first_batches
    assert first.shape == (2, 2, 1, 32, 32) and not torch.equal(first, second)


@pytest.fixture(scope="module")
def split_root(tmp_path_factory, make_video):
    """root/train/{red,blue}/*.mp4 and root/val/red/v.mp4."""
    root = tmp_path_factory.mktemp("splits")
    make_video(root / "train" / "red" / "a.mp4")
    make_video(root / "train" / "blue" / "b.mp4", codec="mjpeg")
    make_video(root / "val" / "red" / "v.mp4")
    return root


def test_video_folder_train_and_val_folders_with_labels(split_root):
    dm = VideoFolderDataModule(
        data_dir=str(split_root), channels=3, image_size=16, context_frames=2,
        future_frames=3, frame_stride=2, batch_size=2, return_labels=True,
    )  # fmt: skip
    context, target, labels = next(iter(dm.train_dataloader()))
    assert context.shape == (2, 2, 3, 16, 16) and target.shape == (2, 3, 3, 16, 16)
    assert sorted(labels.tolist()) == [0, 1]  # blue, red
    val = dm.datasets["val"]
    assert isinstance(val, VideoFolderDataset) and val.temporal_start == "centre"
    assert [e.path.relative_to(split_root).as_posix() for e in val.entries] == ["val/red/v.mp4"]
    assert val.readers is None  # open_readers: 0 by default
    assert (split_root / "train" / ".vidgan_index.json").is_file() and (
        split_root / "val" / ".vidgan_index.json"
    ).is_file()
    dm = VideoFolderDataModule(data_dir=str(split_root), channels=3, image_size=16, open_readers=2)
    dm.setup("fit")
    assert (
        dm.datasets["train"].readers.capacity == 2 and dm.datasets["train"].probed == 0
    )  # the index is reused


def test_video_folder_split_files_and_missing_val_split(split_root, tmp_path, caplog):
    (split_root / "lists").mkdir(exist_ok=True)
    (split_root / "lists" / "trainlist01.txt").write_text("train/red/a.mp4 1\n")
    dm = VideoFolderDataModule(
        data_dir=str(split_root), split_file="lists/trainlist01.txt", channels=1,
        image_size=16, context_frames=2, future_frames=2, batch_size=1,
    )  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="vidgan.data"):
        dm.setup("test")  # no test_split_file and no test/ folder
    assert "no test split" in caplog.text
    test = dm.datasets["test"]
    assert [e.path.name for e in test.entries] == ["a.mp4"] and test.temporal_start == "centre"
    context, _ = next(iter(dm.test_dataloader()))
    assert context.shape == (1, 2, 1, 16, 16)


@pytest.mark.parametrize(
    ("module", "kwargs", "error", "message"),
    [
        (MovingMNISTDataModule, dict(data_dir="/no/such/dir"), FileNotFoundError, "data_dir='/no/such/dir'"),
        (MovingMNISTDataModule, dict(channels=3), ValueError, "channels=3"),
        (MovingMNISTDataModule, dict(batch_size=0), ValueError, "batch_size=0"),
        (MovingMNISTDataModule, dict(digits=0), ValueError, "digits=0"),
        (MovingMNISTDataModule, dict(image_size=28), ValueError, "image_size=28"),
        (MovingMNISTDataModule, dict(num_workers=-1), ValueError, "num_workers=-1 must be >= 0"),
        (VideoFolderDataModule, dict(data_dir="/no/such/dir"), FileNotFoundError, "data_dir='/no/such/dir'"),
        (VideoFolderDataModule, dict(data_dir=".", channels=2), ValueError, "channels=2"),
        (VideoFolderDataModule, dict(data_dir=".", frame_stride=0), ValueError, "frame_stride=0"),
        (VideoFolderDataModule, dict(data_dir=".", backend="ffmpeg"), ValueError, "backend='ffmpeg'"),
        (
            VideoFolderDataModule,
            dict(data_dir=".", open_readers=-1),
            ValueError,
            "open_readers=-1 must be >= 0",
        ),
        (
            VideoFolderDataModule,
            dict(data_dir=".", split_file="nolist.txt"),
            FileNotFoundError,
            "split_file=",
        ),
        (VideoDataModule, {}, UserError, "name a class_path"),
    ],
)
def test_bad_fields_are_named(module, kwargs, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(".", r"\.")):
        module(**kwargs)


def test_a_moving_mnist_dir_without_train_npy_is_named(tmp_path):
    np.save(tmp_path / "test.npy", np.zeros((4, 1, 32, 32), dtype=np.uint8))
    with pytest.raises(FileNotFoundError, match="train.npy"):
        MovingMNISTDataModule(data_dir=str(tmp_path))


def test_video_folder_training_batches_resume_exactly(class_root):
    """A new loader given another's state_dict serves exactly the batches the first had left."""

    def loader():
        dm = VideoFolderDataModule(
            data_dir=str(class_root), channels=1, image_size=16, context_frames=2,
            future_frames=2, batch_size=1, seed=4,
        )  # fmt: skip
        return dm.train_dataloader()

    straight = loader()
    straight.sampler.set_epoch(1)
    whole = [torch.cat(batch, dim=1) for batch in straight]
    first = loader()
    first.sampler.set_epoch(1)
    next(iter(first))
    resumed = loader()
    resumed.load_state_dict(first.state_dict())
    rest = [torch.cat(batch, dim=1) for batch in resumed]
    assert len(whole) == 3 and len(rest) == 2
    assert all(torch.equal(a, b) for a, b in zip(whole[1:], rest))


def test_video_folder_index_path_holds_each_split_index(split_root, tmp_path):
    index = tmp_path / "index" / "videos_{split}.json"
    index.parent.mkdir()
    dm = VideoFolderDataModule(data_dir=str(split_root), image_size=16, index_path=str(index))
    dm.setup("fit")
    assert sorted(p.name for p in index.parent.iterdir()) == ["videos_train.json", "videos_val.json"]
    shared = VideoFolderDataModule(data_dir=str(split_root), index_path=str(tmp_path / "one.json"))
    with pytest.raises(ValueError, match=r"index_path=.* would be shared by the split folders"):
        shared.setup("fit")


def test_video_folder_index_path_of_one_root(class_root, tmp_path):
    index = tmp_path / "index.json"
    dm = VideoFolderDataModule(data_dir=str(class_root), image_size=16, index_path=str(index))
    dm.setup("validate")  # no val split: the training videos, one root and one index
    assert index.is_file() and dm.datasets["val"].probed > 0  # not the root's own index
