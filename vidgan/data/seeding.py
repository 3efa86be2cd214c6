"""Per-process random generators for data loading: reproducible, distinct per DDP rank and worker."""

from __future__ import annotations

import numpy as np
from torch.utils.data import get_worker_info


class ProcessRNG:
    """A numpy Generator owned by whichever process (main or DataLoader worker) draws from it.

    The generator is seeded from `(seed, rank, worker seed)`. PyTorch gives every worker the seed
    `base_seed + worker_id`, with `base_seed` drawn from the DataLoader's `generator` each time a
    non-persistent loader starts an epoch. That makes the streams:
    - reproducible from `seed`;
    - distinct across ranks and workers;
    - new every epoch. Non-persistent workers get a new worker seed; persistent workers, and the
      main process with `num_workers=0`, keep drawing from the same generator.
    """

    def __init__(self, seed: int, rank: int = 0) -> None:
        self.seed, self.rank = seed, rank
        self._key: tuple[int, int, int] | None = None
        self._rng: np.random.Generator | None = None

    def get(self) -> np.random.Generator:
        """The generator for the calling process, created on first use there."""
        info = get_worker_info()
        key = (self.seed, self.rank, info.seed + 1 if info is not None else 0)
        if self._rng is None or key != self._key:
            self._key, self._rng = key, np.random.default_rng(list(key))
        return self._rng
