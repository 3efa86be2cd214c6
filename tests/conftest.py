"""Shared pytest set-up: small thread pools (tests run two at a time on 2 cores), quiet Lightning.

Helpers shared by several test folders live next to this file (`wandb_reader`, `spectral_norm_checks`)
and are imported by module name: pytest puts the folder of a conftest.py that is not in a package,
this one's `tests/`, on sys.path. A folder's own helpers (`wandb_testing`, `image_testing`, ...) sit
in that folder.
"""

from __future__ import annotations

import logging
import os
import warnings

import pytest
import torch

torch.set_num_threads(int(os.environ.get("GANFORGE_TEST_THREADS", "1")))
logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=".*LeafSpec.*")
warnings.filterwarnings("ignore", message=".*does not have many workers.*")
warnings.filterwarnings("ignore", message=".*IterableDataset.*has `__len__` defined.*")


@pytest.fixture
def rng() -> torch.Generator:
    return torch.Generator().manual_seed(0)
