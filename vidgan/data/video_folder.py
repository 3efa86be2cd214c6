"""(context, target) clips from a folder of video files: Kinetics/UCF-101 class folders or split lists.

What each file holds comes from the root's video index (`vidgan.data.video_index`): files are
probed once, by rank 0, and later starts read the index. Files that cannot be decoded or are
shorter than one clip are skipped, logged once, and listed in `dataset.skipped`, so a bad file can
never stop an epoch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from ganforge.errors import UserError
from vidgan.data.split_file import read_split_file
from vidgan.data.video_index import VIDEO_EXTENSIONS, VideoIndex, load_or_build, video_files
from vidgan.data.video_reader import ReaderCache, VideoDecodeError, VideoInfo, read_clip, resolve_backends

log = logging.getLogger("vidgan.data")

TEMPORAL_STARTS = ("random", "centre")
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights for channels=1


class SkippedVideo(NamedTuple):
    """A file left out of a dataset and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class VideoEntry:
    """One usable video: where it is, its class index (-1 without a class folder) and probe info."""

    path: Path
    label: int
    info: VideoInfo


def centre_square(clip: Tensor, size: int) -> Tensor:
    """Centre-crop (T, C, H, W) to a min(H, W) square, then resize it to (T, C, size, size) (antialiased)."""
    height, width = clip.shape[-2:]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    clip = clip[..., top : top + side, left : left + side]
    if side != size:
        clip = F.interpolate(clip, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return clip.clamp_(0.0, 1.0)


class VideoFolderDataset(Dataset):
    """(context, target) clips of T = context_frames + future_frames frames, `frame_stride` apart.

    Layouts (files with extensions VIDEO_EXTENSIONS):
    - `split_file=None`: every video under `root`; `root/<class>/<video>` gives it that class;
    - `split_file`: the videos it lists (paths relative to root, see `vidgan.data.split_file`),
      their class from the first folder.
    Labels are class-folder indices in sorted order over the folders directly under `root`, so train
    and test lists share one mapping (for UCF-101 this is its 1-based classInd number minus one).

    A clip starts at a random frame (`temporal_start="random"`, training) or at the centre of the
    video ("centre", evaluation). Frames are centre-cropped to a square and resized to image_size.
    Items are context (Tc, C, S, S) and target (Tf, C, S, S), float32 in [0, 1], plus the label int
    when `return_labels`. `channels=1` converts to luma.

    File facts come from the video index at `index_path` (default `root/.vidgan_index.json`): rank
    0 probes the files it lacks or whose size or mtime changed, with `index_workers` processes
    (default: one per CPU), and writes it; ranks > 0 wait for it and never probe. `probed` is the
    number of files this process probed.

    With `open_readers` > 0 each process (each DataLoader worker) keeps that many files open
    (`ReaderCache`, least recently used closed first), so clips of a recently read file skip the
    open. It pays only when clips revisit a worker's recent files (a few videos, repeated
    evaluation): an epoch in training order visits each video once, and idle decord readers cost
    CPU (bench/data_decode.py: at a 5% hit rate, decord clips took 1.3-2.3x longer with 8 open
    readers), hence 0 (a file is opened per clip) by default.
    """

    def __init__(
        self,
        root: str | Path,
        context_frames: int = 10,
        future_frames: int = 10,
        image_size: int = 64,
        channels: int = 3,
        frame_stride: int = 1,
        split_file: str | Path | None = None,
        temporal_start: str = "random",
        return_labels: bool = False,
        backend: str = "auto",
        seed: int = 0,
        rank: int = 0,
        index_path: str | Path | None = None,
        index_workers: int | None = None,
        open_readers: int = 0,
    ) -> None:
        self.root = Path(root)
        sizes = {"context_frames": context_frames, "future_frames": future_frames}
        for name, value in (sizes | {"image_size": image_size, "frame_stride": frame_stride}).items():
            if value < 1:
                raise UserError(f"vidgan.data: {name}={value} must be >= 1")
        if channels not in (1, 3):
            raise UserError(f"vidgan.data: channels={channels}, expected 1 or 3")
        if open_readers < 0:
            raise UserError(f"vidgan.data: open_readers={open_readers} must be >= 0")
        if temporal_start not in TEMPORAL_STARTS:
            raise UserError(
                f"vidgan.data: temporal_start={temporal_start!r}, expected one of {TEMPORAL_STARTS}"
            )
        self._backends = resolve_backends(backend)  # validates the name
        if not self.root.is_dir():
            raise FileNotFoundError(f"vidgan.data: video root '{self.root}' is not a directory")
        self.context_frames, self.future_frames, self.image_size = context_frames, future_frames, image_size
        self.channels, self.frame_stride, self.temporal_start = channels, frame_stride, temporal_start
        self.return_labels, self.backend = return_labels, backend
        self.classes = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        self._class_ids = {name: number for number, name in enumerate(self.classes)}
        self.skipped: list[SkippedVideo] = []
        self.seed = seed
        self.readers = ReaderCache(open_readers) if open_readers > 0 else None
        self._bad_paths: set[str] = set()
        self._verbose = rank == 0
        candidates = self._candidates(Path(split_file) if split_file is not None else None)
        index, self.probed = load_or_build(
            self.root, candidates, rank=rank, backend=backend, index_path=index_path, workers=index_workers
        )
        self.entries = [entry for path in candidates if (entry := self._entry(path, index)) is not None]
        self._check_not_empty(len(candidates))

    # ------------------------------------------------------------------ indexing
    @property
    def clip_span(self) -> int:
        """Frames one clip covers: (T - 1) * stride + 1."""
        return (self.context_frames + self.future_frames - 1) * self.frame_stride + 1

    def _candidates(self, split_file: Path | None) -> list[Path]:
        if split_file is not None:
            return read_split_file(split_file, self.root)
        return video_files(self.root)

    def _label(self, key: str) -> int:
        """The class of the file with index key `key` ("class/.../file" relative to root)."""
        folder = key.split("/", 1)[0] if "/" in key else None
        if folder in self._class_ids:
            return self._class_ids[folder]
        if self.return_labels:
            raise UserError(
                f"vidgan.data: return_labels=True but '{key}' is not inside a class folder of '{self.root}'"
            )
        return -1

    def _skip(self, path: Path, reason: str) -> None:
        """Record and log a bad file, once per file in this process."""
        if str(path) in self._bad_paths:
            return
        self._bad_paths.add(str(path))
        self.skipped.append(SkippedVideo(str(path), reason))
        if self._verbose:
            log.warning("vidgan.data: skipping '%s': %s", path, reason)

    def _entry(self, path: Path, index: VideoIndex) -> VideoEntry | None:
        label = self._label(index.key(path))
        try:
            stat = path.stat()
        except FileNotFoundError:
            self._skip(path, "missing: listed in the split file but not found")
            return None
        found = index.fresh(path, stat)
        if found is None:  # load_or_build covered every existing file: this one changed since
            self._skip(path, "changed on disk while the index was built")
            return None
        if found.info is None:
            self._skip(path, found.skip)
            return None
        if found.info.num_frames < self.clip_span:
            self._skip(
                path,
                f"too short: {found.info.num_frames} frames, a clip needs {self.clip_span} "
                f"(T={self.context_frames + self.future_frames}, frame_stride={self.frame_stride})",
            )
            return None
        return VideoEntry(path, label, found.info)

    def _check_not_empty(self, candidates: int) -> None:
        if self.entries:
            if self.skipped and self._verbose:
                log.warning(
                    "vidgan.data: skipped %d of %d videos under '%s'",
                    len(self.skipped),
                    candidates,
                    self.root,
                )
            return
        if candidates == 0:
            raise UserError(
                f"vidgan.data: no video files ({', '.join(VIDEO_EXTENSIONS)}) under '{self.root}'"
            )
        first = self.skipped[0]
        raise UserError(
            f"vidgan.data: no usable videos under '{self.root}': all {candidates} skipped "
            f"(e.g. '{Path(first.path).name}': {first.reason})"
        )

    # ------------------------------------------------------------------ clips
    def __len__(self) -> int:
        return len(self.entries)

    def clip_indices(self, num_frames: int, draw: int = 0) -> np.ndarray:
        """Frame indices (T,) of one clip from a video of num_frames frames.

        A random start is drawn from a generator seeded by `(seed, draw)`; "centre" ignores `draw`.
        """
        last_start = num_frames - self.clip_span
        if self.temporal_start == "random":
            start = int(np.random.default_rng([self.seed, draw]).integers(0, last_start + 1))
        else:
            start = last_start // 2
        return start + self.frame_stride * np.arange(self.context_frames + self.future_frames)

    def _decode(self, entry: VideoEntry, indices: np.ndarray) -> np.ndarray:
        """RGB uint8 (T, H, W, 3) read by the backend that probed the file, then by this dataset's other
        backends (`backend="auto"`: opencv, decord) when that one fails on it."""
        first = entry.info.backend
        order = (first, *(name for name in self._backends if name != first))
        return read_clip(entry.path, indices.tolist(), order, self.readers)

    def load_clip(self, index: int, draw: int = 0) -> tuple[Tensor, int]:
        """Clip (T, C, S, S) float32 in [0, 1] and label of entry `index` (start drawn from `draw`).

        Raises VideoDecodeError.
        """
        entry = self.entries[index]
        frames = self._decode(entry, self.clip_indices(entry.info.num_frames, draw))
        clip = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div_(255.0)  # (T, 3, H, W)
        if self.channels == 1:
            clip = torch.einsum("tchw,c->thw", clip, clip.new_tensor(LUMA)).unsqueeze(1)
        return centre_square(clip, self.image_size), entry.label

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor] | tuple[Tensor, Tensor, int]:
        """Item `index` >= 0: video `index % len(self)`, its random start drawn from `(seed, index)`.

        `ResumableSampler(..., fresh_each_epoch=True)` asks epoch e for `e * len(self) + i`, so each
        epoch draws new starts and any item can be read again from its index alone (exact resume).
        """
        if index < 0:
            raise IndexError(f"vidgan.data: VideoFolderDataset index {index} must be >= 0")
        draw, index = index, index % len(self.entries)
        # A file that passed probing can still fail here (changed on disk, corrupt in the middle):
        # log it once and serve the next video, so an epoch never dies on one file.
        for attempt in range(len(self.entries)):
            candidate = (index + attempt) % len(self.entries)
            if str(self.entries[candidate].path) in self._bad_paths:
                continue
            try:
                clip, label = self.load_clip(candidate, draw)
                break
            except VideoDecodeError as err:
                self._skip(self.entries[candidate].path, f"failed while training: {err}")
        else:
            raise RuntimeError(
                f"vidgan.data: no video under '{self.root}' decodes any more; see dataset.skipped"
            )
        context, target = clip[: self.context_frames], clip[self.context_frames :]
        return (context, target, label) if self.return_labels else (context, target)
