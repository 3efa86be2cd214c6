"""Helpers for the W&B tests: a test-only ring GAN whose `sample(batch)` follows the media contract
(video + image with boxes) and which logs `val/` metrics, so one tiny `fit` exercises every W&B
path; running it; reading finished offline runs; decoding videos; isolating the environment."""

from __future__ import annotations

import math
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import Tensor
from torch.utils.data import DataLoader
from wandb_reader import OfflineRun, offline_run_dirs, read_run

from ganforge.examples.ring import RingBatches, RingDataModule, RingGAN, ring_modes
from ganforge.lightning_cli import run_lightning_cli
from ganforge.media import ImageMedia, LabeledBox, VideoMedia

CLIPS, FRAMES, FRAME_H, FRAME_W = 2, 3, 8, 12
IMAGES, IMAGE_SIZE = 2, 8
BOXES = [
    [LabeledBox("circle", 0.1, 0.2, 0.3, 0.4), LabeledBox("square", 0.5, 0.5, 0.25, 0.25)],
    [LabeledBox("triangle", 0.0, 0.0, 1.0, 0.5)],
]
CAPTIONS = ["a circle left of a square", "a wide triangle"]
# Variables that would change the run id, mode, project or group of the runs under test.
ISOLATED_ENV = [
    "WANDB_MODE",
    "WANDB_RUN_ID",
    "WANDB_PROJECT",
    "WANDB_RUN_GROUP",
    "SLURM_JOB_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
]
RING_PEAK = 2 * math.sqrt(2)  # the ring's diameter / sqrt(2): a PSNR peak in the data's units


class MediaRingGAN(RingGAN):
    """RingGAN with `sample(batch) -> {"rollout": VideoMedia, "scene": ImageMedia}` and val/mse, val/psnr."""

    def sample(self, batch: Tensor) -> dict[str, VideoMedia | ImageMedia]:  # type: ignore[override]
        points = torch.sigmoid(
            self.ema.model(self.noise(batch.shape[0], self.latent_dim))
        )  # (B, 2) in (0, 1)
        # Frame t of clip i is flat grey (40 (t + 1) + 10 i): distinct frames, so no encoder merges them.
        level = 40 * torch.arange(1, FRAMES + 1)[None, :] + 10 * torch.arange(CLIPS)[:, None]  # (N, T)
        frames = level[:, :, None, None, None].expand(CLIPS, FRAMES, 1, FRAME_H, FRAME_W).to(torch.uint8)
        colours = torch.stack([points[:IMAGES, 0], points[:IMAGES, 1], 1 - points[:IMAGES, 0]], dim=1)
        images = colours[:, :, None, None].expand(IMAGES, 3, IMAGE_SIZE, IMAGE_SIZE).cpu()
        return {
            "rollout": VideoMedia(frames, fps=4, captions=[f"clip {i}" for i in range(CLIPS)]),
            "scene": ImageMedia(images, captions=CAPTIONS, boxes=BOXES),
        }

    def validation_step(self, batch: Tensor, batch_idx: int) -> None:
        fake = self.ema.model(self.noise(batch.shape[0], self.latent_dim))
        mse = torch.cdist(fake, ring_modes(fake.device)).min(dim=1).values.pow(2).mean()
        psnr = 10 * torch.log10(RING_PEAK**2 / mse)
        self.log_dict({"val/mse": mse, "val/psnr": psnr}, batch_size=batch.shape[0])


class ValRingDataModule(RingDataModule):
    """Ring batches with a 2-batch validation set."""

    def val_dataloader(self) -> DataLoader:
        return DataLoader(RingBatches(2, self.batch_size, self.seed + 1), batch_size=None)


def fit_args(root: Path, batches: int = 12, *extra: str) -> list[str]:
    """`fit` arguments for a tiny run in `root`: `batches` training batches in epochs of 12, scalars
    every 3 batches, validation every 4, media every 6."""
    return [
        "fit",
        "--seed_everything=0",
        "--trainer.accelerator=cpu",
        "--trainer.devices=1",
        f"--trainer.max_steps={batches}",  # generator steps: one per batch (after one D step)
        "--trainer.log_every_n_steps=3",
        "--trainer.val_check_interval=4",
        "--trainer.limit_val_batches=2",
        "--trainer.num_sanity_val_steps=0",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--trainer.default_root_dir={root}",
        "--model.hidden=16",
        "--data.batch_size=32",
        "--data.batches_per_epoch=12",
        "--wandb.project=ganforge-tests",
        "--wandb.group=readback",
        "--wandb.tags=[tiny,ring]",
        "--wandb.media_every_n_steps=6",
        *extra,
    ]


def run_fit(root: Path, batches: int = 12, *extra: str) -> int:
    """Run the tiny fit through ganforge's LightningCLI runner; returns the exit code."""
    return run_lightning_cli(
        "ganforge", MediaRingGAN, ValRingDataModule, fit_args(root, batches, *extra), "ring"
    )


def finished_runs(root: Path, timeout_s: float = 30.0) -> list[OfflineRun]:
    """The offline runs under `root`, oldest first, once each has its exit record.

    `run.finish()` returns before wandb-core has flushed the last records to the `.wandb` file
    (tens of ms later), so a reader right after `fit` can see a truncated file.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        runs = [read_run(d) for d in offline_run_dirs(root)]
        if all(run.exit_code is not None for run in runs) or time.monotonic() > deadline:
            return runs
        time.sleep(0.05)


def isolate(mp: pytest.MonkeyPatch) -> None:
    """Unset the variables in ISOLATED_ENV for the test."""
    for name in ISOLATED_ENV:
        mp.delenv(name, raising=False)


def decoded_frames(path: Path) -> list[np.ndarray]:
    """All frames (H, W, 3) of a video file, decoded with OpenCV."""
    capture, frames = cv2.VideoCapture(str(path)), []
    while (frame := capture.read())[0]:
        frames.append(frame[1])
    return frames
