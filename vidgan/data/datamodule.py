"""vidgan's LightningDataModules, chosen in configs by class path: Moving MNIST or a folder of videos.

    data:
      class_path: vidgan.data.MovingMNISTDataModule      # or vidgan.data.VideoFolderDataModule
      init_args: {context_frames: 10, future_frames: 10, image_size: 64, ...}

`vidgan fit` links the model's `context_frames`, `future_frames`, `channels` and `resolution` to the
data module's `context_frames`, `future_frames`, `channels` and `image_size` (`MODEL_LINKS`), so a
config states them once, in its data block.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from importlib import import_module
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ganforge.data import SplitDataModule, split_loader
from ganforge.errors import UserError
from ganforge.resumable import rank_and_world_size
from vidgan.data.mnist_digits import DIGIT_SIZE
from vidgan.data.moving_mnist import MovingMNISTDataset, MovingMNISTStream, sample_sequences
from vidgan.data.video_folder import VideoFolderDataset
from vidgan.data.video_reader import resolve_backends

log = logging.getLogger("vidgan.data")

STAGE_SPLITS = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}
# (data module init arg, model init arg): what `vidgan fit` copies from the data block to the model.
MODEL_LINKS = (
    ("context_frames", "context_frames"),
    ("future_frames", "future_frames"),
    ("channels", "channels"),
    ("image_size", "resolution"),
)
SPLIT_PLACEHOLDER = "{split}"


class VideoDataModule(SplitDataModule):
    """Base of vidgan's data modules: batches (context (B, Tc, C, H, W), target (B, Tf, C, H, W))
    float32 in [0, 1] (+ labels (B,)), H = W = image_size.

    A subclass builds the dataset of a split (`_dataset`); this class checks the shared fields and
    serves the loaders (`ganforge.data.split_loader`). The training loader is a `ResumableDataLoader`:
    its `ResumableSampler` shards by DDP rank, shuffles by `(seed, epoch)`, and its position inside
    the epoch is saved in checkpoints, so a resumed fit sees the batches it would have seen.
    """

    def __init__(
        self,
        context_frames: int = 10,
        future_frames: int = 10,
        image_size: int = 64,
        channels: int = 1,
        batch_size: int = 16,
        num_workers: int = 0,
        seed: int = 0,
        persistent_workers: bool = True,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if type(self) is VideoDataModule:
            raise UserError(
                "data: name a class_path: vidgan.data.MovingMNISTDataModule or "
                "vidgan.data.VideoFolderDataModule"
            )
        self.save_hyperparameters()
        for field in ("context_frames", "future_frames", "image_size", "batch_size"):
            if self.hparams[field] < 1:
                raise UserError(f"{name}: {field}={self.hparams[field]} must be >= 1")
        if num_workers < 0:
            raise UserError(f"{name}: num_workers={num_workers} must be >= 0")
        self.datasets: dict[str, Dataset] = {}

    def _dataset(self, split: str) -> Dataset:
        """The dataset of "train", "val" or "test"."""
        raise NotImplementedError

    def _training_order(self, dataset: Dataset) -> tuple[bool, bool]:
        """(shuffle, fresh_each_epoch) of the training loader over `dataset` (see `split_loader`):
        fixed items, shuffled every epoch."""
        return True, False

    def setup(self, stage: str) -> None:
        """Build the datasets `stage` needs ("fit" builds train and val)."""
        if stage not in STAGE_SPLITS:
            raise ValueError(f"{type(self).__name__}: stage={stage!r}, expected one of {tuple(STAGE_SPLITS)}")
        for split in STAGE_SPLITS[stage]:
            if split not in self.datasets:
                self.datasets[split] = self._dataset(split)

    def _loader(self, split: str) -> DataLoader:
        if split not in self.datasets:
            self.setup({"train": "fit", "val": "validate", "test": "test"}[split])
        hp, dataset = self.hparams, self.datasets[split]
        shuffle, fresh = self._training_order(dataset)
        return split_loader(
            dataset,
            split,
            self.trainer,
            dict(seed=hp.seed, shuffle=shuffle, fresh_each_epoch=fresh),
            batch_size=hp.batch_size,
            num_workers=hp.num_workers,
            persistent_workers=hp.persistent_workers and hp.num_workers > 0,
            pin_memory=hp.pin_memory,
            generator=torch.Generator().manual_seed(hp.seed),  # worker seeds
        )


class MovingMNISTDataModule(VideoDataModule):
    """Moving MNIST (1 channel) on real digits:

    - `data_dir` with `train.npy` and `test.npy` (`vidgan data moving-mnist`, or the public
      `mnist_test_seq.npy` renamed): train on train.npy; validate and test on test.npy;
    - `data_dir=None`: `train_sequences` new sequences every epoch from the train digit pool (the
      stream reads fresh indices each epoch, unshuffled), and fixed seeded validation and test sets
      of `val_sequences` each from the test digit pool.
    """

    def __init__(
        self,
        data_dir: str | None = None,
        context_frames: int = 10,
        future_frames: int = 10,
        image_size: int = 64,
        channels: int = 1,
        batch_size: int = 16,
        num_workers: int = 0,
        train_sequences: int = 10000,
        val_sequences: int = 256,
        digits: int = 2,
        seed: int = 0,
        persistent_workers: bool = True,
        pin_memory: bool = False,
    ) -> None:
        super().__init__(
            context_frames, future_frames, image_size, channels, batch_size, num_workers, seed,
            persistent_workers, pin_memory,
        )  # fmt: skip
        for name in ("train_sequences", "val_sequences", "digits"):
            if self.hparams[name] < 1:
                raise UserError(f"MovingMNISTDataModule: {name}={self.hparams[name]} must be >= 1")
        if channels != 1:
            raise UserError(f"MovingMNISTDataModule: channels={channels}, but Moving MNIST has 1 channel")
        if data_dir is None:
            if image_size <= DIGIT_SIZE:
                raise UserError(
                    f"MovingMNISTDataModule: image_size={image_size} must be > {DIGIT_SIZE} to generate"
                )
            return
        if not Path(data_dir).is_dir():
            raise FileNotFoundError(f"MovingMNISTDataModule: data_dir='{data_dir}' is not a directory")
        for file in ("train.npy", "test.npy"):
            if not (Path(data_dir) / file).is_file():
                raise FileNotFoundError(
                    f"MovingMNISTDataModule: data_dir='{data_dir}' has no {file} "
                    "(write both with `vidgan data moving-mnist --out DIR`)"
                )

    def _dataset(self, split: str) -> Dataset:
        hp = self.hparams
        if hp.data_dir is not None:
            file = "train.npy" if split == "train" else "test.npy"
            dataset = MovingMNISTDataset(Path(hp.data_dir) / file, hp.context_frames, hp.future_frames)
            if dataset.image_size != (hp.image_size, hp.image_size):
                raise UserError(
                    f"MovingMNISTDataModule: image_size={hp.image_size} but '{file}' has frames of "
                    f"{dataset.image_size}"
                )
            return dataset
        frames = hp.context_frames + hp.future_frames
        if split == "train":
            return MovingMNISTStream(
                hp.train_sequences, hp.context_frames, hp.future_frames, hp.image_size, hp.digits,
                pool="train", seed=hp.seed,
            )  # fmt: skip
        # Fixed sets: the same on every rank and run; the test set is a different draw.
        rng = np.random.default_rng([hp.seed, 2 if split == "val" else 3])
        array = sample_sequences(hp.val_sequences, frames, hp.image_size, hp.digits, "test", rng)[0]
        return MovingMNISTDataset(array, hp.context_frames, hp.future_frames)

    def _training_order(self, dataset: Dataset) -> tuple[bool, bool]:
        if isinstance(dataset, MovingMNISTStream):  # every index is a new sequence: no shuffle
            return False, True
        return super()._training_order(dataset)


class VideoFolderDataModule(VideoDataModule):
    """Clips of a folder of video files (`data_dir`, see VideoFolderDataset).

    Training clips come from `split_file`, else `data_dir/train/` when it exists, else the whole
    root; they start at frames drawn from `(seed, index)`, new every epoch (so the same on resume).
    Validation clips come from `val_split_file`, else `data_dir/val/`; testing from
    `test_split_file`, else `data_dir/test/`. Without either, the training videos are reused with
    centred clips (logged). Split files are paths as given, or relative to `data_dir`.

    Each split root keeps a video index built by rank 0 only: `root/.vidgan_index.json`, or
    `index_path` (e.g. outside a read-only dataset). `{split}` in `index_path` is replaced by the
    root's folder name (train, val, test; `data_dir`'s own name when the splits are lists or there
    are no split folders); with split folders it is required. `open_readers` files stay open per
    worker (see VideoFolderDataset).
    """

    def __init__(
        self,
        data_dir: str,
        context_frames: int = 10,
        future_frames: int = 10,
        image_size: int = 64,
        channels: int = 1,
        batch_size: int = 16,
        num_workers: int = 0,
        seed: int = 0,
        frame_stride: int = 1,
        split_file: str | None = None,
        val_split_file: str | None = None,
        test_split_file: str | None = None,
        index_path: str | None = None,
        return_labels: bool = False,
        backend: str = "auto",
        open_readers: int = 0,
        persistent_workers: bool = True,
        pin_memory: bool = False,
    ) -> None:
        super().__init__(
            context_frames, future_frames, image_size, channels, batch_size, num_workers, seed,
            persistent_workers, pin_memory,
        )  # fmt: skip
        if frame_stride < 1:
            raise UserError(f"VideoFolderDataModule: frame_stride={frame_stride} must be >= 1")
        if open_readers < 0:
            raise UserError(f"VideoFolderDataModule: open_readers={open_readers} must be >= 0")
        if channels not in (1, 3):
            raise UserError(f"VideoFolderDataModule: channels={channels}, expected 1 or 3")
        resolve_backends(backend)
        if not Path(data_dir).is_dir():
            raise FileNotFoundError(f"VideoFolderDataModule: data_dir='{data_dir}' is not a directory")
        for name in ("split_file", "val_split_file", "test_split_file"):
            if self.hparams[name] is not None and not self._path(self.hparams[name]).is_file():
                raise FileNotFoundError(
                    f"VideoFolderDataModule: {name}='{self.hparams[name]}' does not exist"
                )

    def _path(self, name: str) -> Path:
        """A split file path as given, or relative to data_dir when it is not found as given."""
        path = Path(name)
        return path if path.is_file() or path.is_absolute() else Path(self.hparams.data_dir) / path

    def _source(self, split: str) -> tuple[Path, Path | None, str]:
        """(root, split file, temporal start) of a split."""
        hp = self.hparams
        base, start = Path(hp.data_dir), "random" if split == "train" else "centre"
        split_file = {"train": hp.split_file, "val": hp.val_split_file, "test": hp.test_split_file}[split]
        if split_file is not None:
            return base, self._path(split_file), start
        if (base / split).is_dir():
            return base / split, None, start
        if split == "train":
            return base, None, start
        log.warning(
            "vidgan.data: no %s split under '%s'; using the training videos with centred clips", split, base
        )
        return (*self._source("train")[:2], start)

    def _index_path(self, root: Path) -> Path | None:
        """Where the index of split root `root` is kept: `index_path` with `{split}` -> root's name."""
        hp = self.hparams
        if hp.index_path is None:
            return None
        if root != Path(hp.data_dir) and SPLIT_PLACEHOLDER not in hp.index_path:
            raise UserError(
                f"VideoFolderDataModule: index_path='{hp.index_path}' would be shared by the split "
                f"folders under '{hp.data_dir}'; put {SPLIT_PLACEHOLDER} in it (e.g. index_{{split}}.json)"
            )
        return Path(hp.index_path.replace(SPLIT_PLACEHOLDER, root.name))

    def _dataset(self, split: str) -> VideoFolderDataset:
        hp = self.hparams
        root, split_file, start = self._source(split)
        return VideoFolderDataset(
            root, hp.context_frames, hp.future_frames, hp.image_size, hp.channels, hp.frame_stride,
            split_file=split_file, temporal_start=start, return_labels=hp.return_labels, backend=hp.backend,
            seed=hp.seed, rank=rank_and_world_size(self.trainer)[0], index_path=self._index_path(root),
            open_readers=hp.open_readers,
        )  # fmt: skip

    def _training_order(self, dataset: Dataset) -> tuple[bool, bool]:
        return True, True  # clip starts are new every epoch


def data_module(section: Mapping[str, Any], **overrides: Any) -> VideoDataModule:
    """The data module of a config's `data:` block ({class_path, init_args}), with `overrides`."""
    return data_class(section)(**{**section.get("init_args", {}), **overrides})


def data_class(section: Mapping[str, Any]) -> type[VideoDataModule]:
    """The class a config's `data:` block names."""
    module_name, _, class_name = section["class_path"].rpartition(".")
    return getattr(import_module(module_name), class_name)


def linked_model_args(section: Mapping[str, Any]) -> dict[str, Any]:
    """The model init args `vidgan fit` takes from a config's `data:` block (`MODEL_LINKS`), defaults
    included, e.g. {"context_frames": 10, "future_frames": 10, "channels": 1, "resolution": 64}."""
    defaults = inspect.signature(data_class(section)).parameters
    args = section.get("init_args", {})
    return {model: args.get(data, defaults[data].default) for data, model in MODEL_LINKS}
