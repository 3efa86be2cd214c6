"""`--ckpt_path auto`: resume from a run directory's newest checkpoint, or start fresh when it has none.

Candidates are `last.ckpt` in the checkpoint folders and the Slurm requeue's `hpc_ckpt_*.ckpt` in
the run directory. The newest is the one furthest into training: the highest (global step, training
batches seen); a tie goes to the file written last. So a crashed job, a preempted one and a
finished one all continue from where they stopped when the same command is run again.
"""

from __future__ import annotations

import os
from pathlib import Path

from ganforge.checkpoint import load_state_file, read_header
from ganforge.errors import CheckpointError

AUTO = "auto"


def training_position(path: Path) -> tuple[int, int]:
    """(global step, batches seen) recorded in a checkpoint, read through a memory map.

    Raises:
        CheckpointError: naming the file when it cannot be read.
    """
    ckpt = load_state_file(path, what="--ckpt_path auto: checkpoint", mmap=True)
    if not isinstance(ckpt, dict):
        raise CheckpointError(
            f"--ckpt_path auto: checkpoint '{path}' holds a {type(ckpt).__name__}, not a Lightning checkpoint"
        )
    return int(ckpt.get("global_step", 0)), int(read_header(ckpt).get("batches_seen", 0))


def newest_checkpoint(run_dir: str | os.PathLike, checkpoint_dirs: list[str]) -> Path | None:
    """The checkpoint to resume a fit in `run_dir` from, or None when there is none."""
    candidates = [Path(d) / "last.ckpt" for d in checkpoint_dirs]
    candidates += sorted(Path(run_dir).glob("hpc_ckpt_*.ckpt"))
    found = [p for p in candidates if p.is_file()]
    if not found:
        return None
    return max(found, key=lambda p: (*training_position(p), p.stat().st_mtime))
