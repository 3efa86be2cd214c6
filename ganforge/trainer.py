"""Trainer pieces shared by every ganforge entry point: progress bars, checkpointing, strategy."""

from __future__ import annotations

import os
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import RichProgressBar

# Manual-optimisation GANs backpropagate through G and D separately, so each backward leaves one
# network without gradients; plain "ddp" then fails on unused parameters.
GAN_DDP_STRATEGY = "ddp_find_unused_parameters_true"


def progress_callbacks(enabled: bool = True) -> list[pl.Callback]:
    """A rich progress bar when enabled and stdout can render it."""
    return [RichProgressBar(leave=True)] if enabled else []


def default_strategy(devices: Any, num_nodes: int = 1) -> str:
    """`GAN_DDP_STRATEGY` when more than one process trains, else "auto".

    `devices` may be an int, a digit string ("2", as it arrives from the command line), a list of
    device ids, or "auto"/-1.
    """
    if isinstance(devices, str) and devices.strip().isdigit():
        devices = int(devices)
    if isinstance(num_nodes, str) and num_nodes.strip().isdigit():
        num_nodes = int(num_nodes)
    many = (
        num_nodes > 1
        or (isinstance(devices, int) and devices > 1)
        or (isinstance(devices, (list, tuple)) and len(devices) > 1)
    )
    many = many or int(os.environ.get("SLURM_NTASKS", "1")) > 1
    return GAN_DDP_STRATEGY if many else "auto"
