"""Capture, restore and seed per DDP rank every global RNG a training run draws from (weights_only-safe)."""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch
import torch.distributed as dist


def rng_states() -> dict[str, Any]:
    """torch (CPU and CUDA), numpy and python RNG states as tensors, tuples and ints."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    """Inverse of `rng_states`; missing entries are left alone."""
    if "torch" in states:
        torch.set_rng_state(states["torch"])
    if "numpy" in states:
        kind, keys, pos, has_gauss, cached = states["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "python" in states:
        version, internal, gauss = states["python"]
        random.setstate((version, tuple(internal), gauss))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def base_seed() -> int:
    """The run's seed: `seed_everything`'s (PL_GLOBAL_SEED), else torch's initial seed."""
    return int(os.environ.get("PL_GLOBAL_SEED", torch.initial_seed()))


def seed_rank(rank: int, seed: int | None = None) -> int:
    """Seed torch (every device), numpy and python with `seed + rank` (DETR/DeiT/StyleGAN2-ADA); return it.

    Under DDP each rank must draw its own noise (latents, penalty interpolation, dropout): ranks
    seeded alike would draw the same numbers and the global batch would hold each sample once per
    rank. `seed` defaults to `base_seed()`; the sum wraps to numpy's 32-bit seed range.
    """
    seeded = ((base_seed() if seed is None else seed) + rank) % 2**32
    random.seed(seeded)
    np.random.seed(seeded)
    torch.manual_seed(seeded)  # CPU and every CUDA device
    return seeded


def all_ranks(value: Any) -> list[Any]:
    """`value` from every DDP rank, indexed by rank; `[value]` without a process group.

    A collective (`all_gather_object`): under DDP every rank must call it.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [value]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, value)
    return gathered
