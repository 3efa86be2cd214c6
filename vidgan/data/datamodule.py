"""One LightningDataModule for vidgan, configured from YAML: Moving MNIST or a folder of video files."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from ganforge.resumable import rank_and_world_size, training_loader
from vidgan.data.mnist_digits import DIGIT_SIZE
from vidgan.data.moving_mnist import MovingMNISTDataset, MovingMNISTStream, sample_sequences
from vidgan.data.video_folder import VideoFolderDataset
from vidgan.data.video_reader import resolve_backends

log = logging.getLogger("vidgan.data")

SOURCES = ("moving_mnist", "video_folder")
STAGE_SPLITS = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}
POSITIVE_FIELDS = (
    "context_frames", "future_frames", "image_size", "batch_size", "train_sequences", "val_sequences",
    "digits", "frame_stride",
)  # fmt: skip


class VideoDataModule(pl.LightningDataModule):
    """Batches (context (B, Tc, C, H, W), target (B, Tf, C, H, W)) float32 in [0, 1] (+ labels (B,)).

    `source="moving_mnist"`:
    - `data_dir` with `train.npy` and `test.npy` (`vidgan data moving-mnist`, or the public
      `mnist_test_seq.npy` renamed): train on train.npy; validate and test on test.npy;
    - `data_dir=None`: `train_sequences` new sequences every epoch from the train digit pool, and
      fixed seeded validation and test sets of `val_sequences` each from the test digit pool.

    `source="video_folder"`: `data_dir` is the video root (see VideoFolderDataset). Training clips
    come from `split_file`, else `data_dir/train/` when it exists, else the whole root; they start at
    random frames. Validation clips come from `val_split_file`, else `data_dir/val/`; testing from
    `test_split_file`, else `data_dir/test/`. Without either, the training videos are reused with
    centred clips (logged). Each split root keeps a video index built by rank 0 only, and
    `open_readers` files stay open per worker (see VideoFolderDataset).

    The training loader is a `ResumableDataLoader`: its `ResumableSampler` shards by DDP rank,
    shuffles by `(seed, epoch)` (the on-the-fly Moving MNIST stream reads fresh indices each epoch
    instead), and its position inside the epoch is saved in checkpoints, so a resumed fit sees the
    batches it would have seen. Video-folder clips start at frames drawn from `(seed, index)`, new
    every epoch, so they too are the same on resume.
    """

    def __init__(
        self,
        source: str = "moving_mnist",
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
        frame_stride: int = 1,
        split_file: str | None = None,
        val_split_file: str | None = None,
        test_split_file: str | None = None,
        return_labels: bool = False,
        backend: str = "auto",
        open_readers: int = 0,
        persistent_workers: bool = True,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self._check_args()
        self.datasets: dict[str, Dataset] = {}

    def _check_args(self) -> None:
        hp = self.hparams
        if hp.source not in SOURCES:
            raise ValueError(f"VideoDataModule: source={hp.source!r}, expected one of {SOURCES}")
        for name in POSITIVE_FIELDS:
            if hp[name] < 1:
                raise ValueError(f"VideoDataModule: {name}={hp[name]} must be >= 1")
        for name in ("num_workers", "open_readers"):
            if hp[name] < 0:
                raise ValueError(f"VideoDataModule: {name}={hp[name]} must be >= 0")
        resolve_backends(hp.backend)
        if hp.data_dir is not None and not Path(hp.data_dir).is_dir():
            raise FileNotFoundError(f"VideoDataModule: data_dir='{hp.data_dir}' is not a directory")
        for name in ("split_file", "val_split_file", "test_split_file"):
            if hp[name] is not None and not self._path(hp[name]).is_file():
                raise FileNotFoundError(f"VideoDataModule: {name}='{hp[name]}' does not exist")
        if hp.source == "video_folder":
            if hp.data_dir is None:
                raise ValueError("VideoDataModule: data_dir is required for source='video_folder'")
            if hp.channels not in (1, 3):
                raise ValueError(f"VideoDataModule: channels={hp.channels}, expected 1 or 3")
            return
        if hp.channels != 1:
            raise ValueError(f"VideoDataModule: channels={hp.channels}, but Moving MNIST has 1 channel")
        if hp.return_labels:
            raise ValueError("VideoDataModule: return_labels=True needs source='video_folder'")
        if hp.data_dir is None and hp.image_size <= DIGIT_SIZE:
            raise ValueError(
                f"VideoDataModule: image_size={hp.image_size} must be > {DIGIT_SIZE} to generate"
            )
        for file in ("train.npy", "test.npy") if hp.data_dir is not None else ():
            if not (Path(hp.data_dir) / file).is_file():
                raise FileNotFoundError(
                    f"VideoDataModule: data_dir='{hp.data_dir}' has no {file} "
                    "(write both with `vidgan data moving-mnist --out DIR`)"
                )

    def _path(self, name: str) -> Path:
        """A split file path as given, or relative to data_dir when it is not found as given."""
        path = Path(name)
        if path.is_file() or path.is_absolute() or self.hparams.data_dir is None:
            return path
        return Path(self.hparams.data_dir) / path

    # ------------------------------------------------------------------ datasets
    def setup(self, stage: str) -> None:
        """Build the datasets `stage` needs ("fit" builds train and val)."""
        if stage not in STAGE_SPLITS:
            raise ValueError(f"VideoDataModule: stage={stage!r}, expected one of {tuple(STAGE_SPLITS)}")
        for split in STAGE_SPLITS[stage]:
            if split not in self.datasets:
                build = self._moving_mnist if self.hparams.source == "moving_mnist" else self._video_folder
                self.datasets[split] = build(split)

    def _moving_mnist(self, split: str) -> Dataset:
        hp = self.hparams
        if hp.data_dir is not None:
            file = "train.npy" if split == "train" else "test.npy"
            dataset = MovingMNISTDataset(Path(hp.data_dir) / file, hp.context_frames, hp.future_frames)
            if dataset.image_size != (hp.image_size, hp.image_size):
                raise ValueError(
                    f"VideoDataModule: image_size={hp.image_size} but '{file}' has frames of "
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

    def _video_source(self, split: str) -> tuple[Path, Path | None, str]:
        """(root, split file, temporal start) of a video-folder split."""
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
        return (*self._video_source("train")[:2], start)

    def _video_folder(self, split: str) -> VideoFolderDataset:
        hp = self.hparams
        root, split_file, start = self._video_source(split)
        return VideoFolderDataset(
            root, hp.context_frames, hp.future_frames, hp.image_size, hp.channels, hp.frame_stride,
            split_file=split_file, temporal_start=start, return_labels=hp.return_labels, backend=hp.backend,
            seed=hp.seed, rank=rank_and_world_size(self.trainer)[0], open_readers=hp.open_readers,
        )  # fmt: skip

    # ------------------------------------------------------------------ loaders
    def _loader(self, split: str) -> DataLoader:
        if split not in self.datasets:
            self.setup({"train": "fit", "val": "validate", "test": "test"}[split])
        hp, dataset = self.hparams, self.datasets[split]
        kwargs = dict(
            batch_size=hp.batch_size,
            num_workers=hp.num_workers,
            persistent_workers=hp.persistent_workers and hp.num_workers > 0,
            pin_memory=hp.pin_memory,
            generator=torch.Generator().manual_seed(hp.seed),  # worker seeds
        )
        if split != "train":
            return DataLoader(dataset, shuffle=False, **kwargs)
        # The training position is saved in checkpoints (exact resume; see ganforge.resumable).
        generated = isinstance(dataset, MovingMNISTStream)  # every index is a new sequence: no shuffle
        return training_loader(
            dataset,
            self.trainer,
            seed=hp.seed,
            shuffle=not generated,
            fresh_each_epoch=generated or isinstance(dataset, VideoFolderDataset),  # new clip starts
            **kwargs,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
