"""A Lightning callback for the Slurm tests: every rank records where it started and what it ended with.

Add it to any `fit` run with `--trainer.callbacks+=rank_probe.RankProbe` (with slurm/testing on
PYTHONPATH). Each rank appends JSON lines to `<default_root_dir>/probe/rank<R>.jsonl`:

- `{"event": "start", "global_step": ..., "ckpt_path": ..., "restart": ..., ...}` when training
  starts (after any resume), so a requeued job shows the step it resumed from;
- `{"event": "end", "global_step": ..., "digest": ...}` when training ends, where `digest` is a
  SHA-256 over every parameter's name, dtype, shape and bytes: equal digests = identical weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

# Slurm and W&B variables worth recording: they show which job, task and run each rank belonged to.
ENV_KEYS = (
    "SLURM_JOB_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_RESTART_COUNT",
    "SLURMD_NODENAME",
    "WANDB_RUN_ID",
    "WANDB_RUN_GROUP",
    "WANDB_DIR",
)


def parameter_digest(module: torch.nn.Module) -> str:
    """SHA-256 hex digest of all named parameters (name, dtype, shape, raw bytes), in name order."""
    digest = hashlib.sha256()
    for name, param in sorted(module.named_parameters(), key=lambda item: item[0]):
        tensor = param.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


class RankProbe(pl.Callback):
    """Appends a start and an end record per rank to `<default_root_dir>/probe/rank<R>.jsonl`."""

    def _write(self, trainer: pl.Trainer, record: dict[str, Any]) -> None:
        path = Path(trainer.default_root_dir) / "probe" / f"rank{trainer.global_rank}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"rank": trainer.global_rank, "world_size": trainer.world_size, **record}
        with path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        env = {key: os.environ[key] for key in ENV_KEYS if key in os.environ}
        self._write(
            trainer,
            {
                "event": "start",
                "global_step": trainer.global_step,
                "ckpt_path": trainer.ckpt_path,
                "host": socket.gethostname(),
                "env": env,
            },
        )

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        record = {"event": "end", "global_step": trainer.global_step, "digest": parameter_digest(pl_module)}
        self._write(trainer, record)
