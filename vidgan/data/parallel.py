"""`parallel_map`: one function over many items in worker processes, results in order."""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def default_workers() -> int:
    """The CPUs this process may use (Slurm and taskset limits included)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def parallel_map(
    fn: Callable[..., T],
    items: Sequence[Any],
    *args: Any,
    workers: int | None = None,
    min_items_per_worker: int = 1,
) -> Iterator[T]:
    """fn(item, *args) for each item, in order, in up to `workers` processes (default: one per CPU).

    Runs in this process when one worker would do: `workers=1`, or fewer than
    `2 * min_items_per_worker` items. `fn` must be importable by name (a module-level function).
    """
    workers = min(workers or default_workers(), len(items) // max(1, min_items_per_worker))
    if workers <= 1:
        yield from (fn(item, *args) for item in items)
        return
    # fork on Linux, as DataLoader workers are started: a spawned worker re-imports the caller's
    # __main__ module (a training script imports torch and Lightning: ~5 s per worker under load).
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    chunk = max(1, min(64, len(items) // (workers * 8)))
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        yield from pool.map(fn, items, *([arg] * len(items) for arg in args), chunksize=chunk)
