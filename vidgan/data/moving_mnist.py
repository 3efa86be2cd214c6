"""Moving MNIST (Srivastava et al. 2015) on real digits, in the OpenSTL / PredRNN protocol.

Sequences are bouncing 28x28 digits combined with a pixel-wise max on a black canvas, following the
generator that PredRNN and OpenSTL train on. Arrays use the public `mnist_test_seq.npy` layout:
uint8 (T, N, H, W). Train sequences draw digits from the train pool and test sequences from the
disjoint test pool (see `mnist_digits`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ganforge.errors import UserError
from vidgan.data.mnist_digits import DIGIT_SIZE, digit_pool, mnist_digits

STEP_LENGTH = 0.1  # per-frame displacement as a fraction of the free canvas, as in OpenSTL
WRITE_CHUNK = 256  # sequences generated at a time by write_moving_mnist (bounds memory)


def bouncing_trajectories(
    n: int, digits: int, frames: int, canvas: int, rng: np.random.Generator
) -> np.ndarray:
    """Top-left digit corners (n, digits, frames, 2) int32 as (y, x), each in [0, canvas].

    Each digit starts at a uniform position and moves STEP_LENGTH per frame in a uniform
    direction; a coordinate that reaches a wall is clamped to it and its velocity is reflected.
    """
    pos = rng.random((n, digits, 2))
    theta = rng.random((n, digits)) * 2 * np.pi
    vel = np.stack([np.sin(theta), np.cos(theta)], axis=-1)  # (n, digits, 2) as (dy, dx)
    out = np.empty((n, digits, frames, 2))
    for t in range(frames):
        pos = pos + STEP_LENGTH * vel
        vel = np.where((pos <= 0) | (pos >= 1), -vel, vel)
        pos = np.clip(pos, 0.0, 1.0)
        out[:, :, t] = pos
    return (out * canvas).astype(np.int32)


def render_sequences(images: np.ndarray, corners: np.ndarray, size: int) -> np.ndarray:
    """Paste digits (n, digits, 28, 28) at corners (n, digits, T, 2) -> frames (T, n, size, size) uint8."""
    n, digits, frames, _ = corners.shape
    out = np.zeros((frames, n, size, size), dtype=np.uint8)
    for i in range(n):
        for d in range(digits):
            for t, (y, x) in enumerate(corners[i, d]):
                view = out[t, i, y : y + DIGIT_SIZE, x : x + DIGIT_SIZE]
                np.maximum(view, images[i, d], out=view)
    return out


def sample_sequences(
    n: int, frames: int, size: int, digits: int, pool: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """n sequences (frames, n, size, size) uint8 and the csv ids (n, digits) of the digits they show."""
    ids = rng.choice(digit_pool(pool), size=(n, digits))
    corners = bouncing_trajectories(n, digits, frames, size - DIGIT_SIZE, rng)
    return render_sequences(mnist_digits()[0][ids], corners, size), ids


def check_generator_args(frames: int, size: int, digits: int) -> None:
    """UserError naming the field when a Moving MNIST generator argument is out of range."""
    if frames < 1:
        raise UserError(f"vidgan.data: frames={frames} must be >= 1")
    if size <= DIGIT_SIZE:
        raise UserError(
            f"vidgan.data: size={size} must be > {DIGIT_SIZE} (the digit size) so digits can move"
        )
    if digits < 1:
        raise UserError(f"vidgan.data: digits={digits} must be >= 1")


def check_write_args(train: int, test: int, frames: int, size: int, digits: int) -> None:
    """UserError naming the field when a `write_moving_mnist` argument is out of range."""
    check_generator_args(frames, size, digits)
    for name, count in (("train", train), ("test", test)):
        if count < 1:
            raise UserError(f"vidgan.data: {name}={count} sequences must be >= 1")


def write_moving_mnist(
    out_dir: str | Path,
    train: int = 10000,
    test: int = 10000,
    frames: int = 20,
    size: int = 64,
    digits: int = 2,
    seed: int = 0,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Path]:
    """Write `train.npy` and `test.npy`, uint8 (frames, N, size, size), into out_dir.

    Train uses the train digit pool and test the test pool; each split has its own seeded stream.
    `on_progress(k)` is called after every k sequences written. Files appear atomically.
    """
    check_write_args(train, test, frames, size, digits)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split_id, (split, count) in enumerate((("train", train), ("test", test))):
        rng = np.random.default_rng([seed, split_id])
        path, partial = out_dir / f"{split}.npy", out_dir / f".{split}.partial.npy"
        array = np.lib.format.open_memmap(
            partial, mode="w+", dtype=np.uint8, shape=(frames, count, size, size)
        )
        for start in range(0, count, WRITE_CHUNK):
            stop = min(start + WRITE_CHUNK, count)
            array[:, start:stop] = sample_sequences(stop - start, frames, size, digits, split, rng)[0]
            if on_progress is not None:
                on_progress(stop - start)
        array.flush()
        del array
        os.replace(partial, path)
        paths[split] = path
    return paths


def split_clip(frames: np.ndarray, context_frames: int) -> tuple[Tensor, Tensor]:
    """uint8 frames (T, H, W) -> float32 context (Tc, 1, H, W) and target (T - Tc, 1, H, W) in [0, 1]."""
    clip = torch.from_numpy(np.ascontiguousarray(frames)).float().div_(255.0).unsqueeze(1)
    return clip[:context_frames], clip[context_frames:]


class MovingMNISTDataset(Dataset):
    """(context, target) clips from a Moving MNIST array in the `mnist_test_seq.npy` layout.

    `source` is a `.npy` path (memory-mapped, so workers share the pages) or an array, uint8
    (T, N, H, W). Item i is sequence i: its first `context_frames` frames are the context
    (Tc, 1, H, W) and the next `future_frames` the target (Tf, 1, H, W), float32 in [0, 1]. Frames
    after Tc + Tf are not used.
    """

    def __init__(
        self, source: str | Path | np.ndarray, context_frames: int = 10, future_frames: int = 10
    ) -> None:
        if isinstance(source, np.ndarray):
            name, array = "array", source
        else:
            name = str(source)
            if not Path(source).is_file():
                raise FileNotFoundError(f"vidgan.data: Moving MNIST file '{name}' does not exist")
            array = np.load(source, mmap_mode="r")
        if array.ndim != 4 or array.dtype != np.uint8:
            raise UserError(
                f"vidgan.data: Moving MNIST '{name}' is {array.dtype} {tuple(array.shape)}; "
                "expected uint8 (T, N, H, W), the mnist_test_seq.npy layout"
            )
        if context_frames < 1 or future_frames < 1 or context_frames + future_frames > array.shape[0]:
            raise UserError(
                f"vidgan.data: context_frames={context_frames} + future_frames={future_frames} needs "
                f"1..{array.shape[0]} context and >= 1 future frames, but '{name}' has T={array.shape[0]}"
            )
        self.array, self.context_frames, self.future_frames = array, context_frames, future_frames

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of the frames."""
        return int(self.array.shape[2]), int(self.array.shape[3])

    def __len__(self) -> int:
        return int(self.array.shape[1])

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return split_clip(self.array[: self.context_frames + self.future_frames, index], self.context_frames)


class MovingMNISTStream(Dataset):
    """Moving MNIST (context, target) clips generated on the fly (OpenSTL training set).

    Item `index` is drawn from a generator seeded by `(seed, index)`, so any clip can be
    regenerated from its index alone: no worker, rank or global RNG state is involved. `len()` is
    the epoch size `sequences`, but every index >= 0 is valid; `ResumableSampler(...,
    fresh_each_epoch=True)` reads indices `epoch * sequences + i`, so each epoch sees new
    sequences, DDP ranks see disjoint ones, and a resumed run regenerates exactly the clips it
    would have seen. Items are as in `MovingMNISTDataset`: (Tc, 1, size, size) and
    (Tf, 1, size, size) float32.
    """

    def __init__(
        self,
        sequences: int,
        context_frames: int = 10,
        future_frames: int = 10,
        size: int = 64,
        digits: int = 2,
        pool: str = "train",
        seed: int = 0,
    ) -> None:
        check_generator_args(context_frames + future_frames, size, digits)
        if context_frames < 1 or future_frames < 1:
            raise UserError(
                f"vidgan.data: context_frames={context_frames} and future_frames={future_frames} must be >= 1"
            )
        if sequences < 1:
            raise UserError(f"vidgan.data: sequences={sequences} must be >= 1")
        digit_pool(pool)  # validates the pool name
        self.sequences, self.context_frames, self.future_frames = sequences, context_frames, future_frames
        self.size, self.digits, self.pool, self.seed = size, digits, pool, seed

    def __len__(self) -> int:
        return self.sequences

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        if index < 0:
            raise IndexError(f"vidgan.data: MovingMNISTStream index {index} must be >= 0")
        rng = np.random.default_rng([self.seed, int(index)])
        frames = self.context_frames + self.future_frames
        sequence = sample_sequences(1, frames, self.size, self.digits, self.pool, rng)[0]
        return split_clip(sequence[:, 0], self.context_frames)
