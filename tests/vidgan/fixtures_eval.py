"""Tiny vidgan checkpoints and data files for the evaluation, predictor and CLI tests (no vidgan.data needed).

`tiny_checkpoint(path)` trains a 16x16 VideoGAN (2 context -> 3 future frames, 1 channel) for a few
steps on bouncing squares and saves it with a Lightning Trainer, the way `vidgan fit` does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset
from vidgan_clips import moving_square_clips

from vidgan.module import VideoGAN

TINY = dict(
    context_frames=2, future_frames=3, channels=1, resolution=16, g_widths=[8, 8], latent_dim=4,
    d_widths=[8, 8, 8], spatial_frames=3, gan=VideoGAN.gan_options(ema_decay=0.5),
)  # fmt: skip
CLIP_FRAMES = TINY["context_frames"] + TINY["future_frames"]


def tiny_checkpoint(path: Path, steps: int = 6, **overrides: object) -> Path:
    """Train VideoGAN(**TINY, **overrides) for `steps` generator steps on squares; save it at `path`."""
    torch.manual_seed(0)
    module = VideoGAN(**{**TINY, **overrides})
    clips = moving_square_clips(8, CLIP_FRAMES, size=16, seed=1)
    loader = DataLoader(TensorDataset(clips[:, :2], clips[:, 2:]), batch_size=4)
    trainer = pl.Trainer(
        accelerator="cpu", max_steps=steps, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=path.parent,
    )  # fmt: skip
    trainer.fit(module, loader)
    path.parent.mkdir(parents=True, exist_ok=True)
    trainer.save_checkpoint(path)
    return path


def moving_mnist_like(path: Path, sequences: int = 6, frames: int = CLIP_FRAMES, size: int = 16) -> Path:
    """Bouncing squares in the mnist_test_seq.npy layout: uint8 (frames, sequences, size, size)."""
    clips = moving_square_clips(sequences, frames, size=size, seed=3)[:, :, 0]  # (N, T, H, W)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, (clips * 255).to(torch.uint8).permute(1, 0, 2, 3).numpy())
    return path
