"""`vidgan predict --data PATH --out-dir DIR`: every sequence of a test set predicted and written to files.

The sequences are read as `vidgan eval` reads them (a Moving MNIST .npy or a video folder, clips
resized to the model's side, the model's Tc context frames) and predicted with the same seeds
(batch i of seed s: s * 1000003 + i), so FVD or any other metric can be computed elsewhere on the
same clips. DIR holds
- `predictions.npy`: uint8 (N, S, Tc + F, H, W, C), each sample's clip: context then prediction;
- `real.npy`: uint8 (N, Tc + F, H, W, C), the true clips (context then the true future);
- `videos/NNNNNN_S.mp4`: each predicted clip of `predictions.npy` (H.264, grey shown as RGB);
- `clips.json`: checkpoint, data, frame counts, samples, seed, batch size and fps.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from einops import rearrange
from torch import Tensor
from torch.utils.data import DataLoader, Subset

from ganforge.devices import resolve_device

if TYPE_CHECKING:
    from rich.progress import Progress

    from vidgan.commands.predict import PredictOptions

DEFAULT_FPS = 10  # a .npy has no frame rate; 10 fps is Moving MNIST's usual playback


def to_uint8(frames: Tensor) -> np.ndarray:
    """Float frames (..., T, C, H, W) in [0, 1] -> uint8 numpy (..., T, H, W, C)."""
    pixels = (frames.clamp(0, 1) * 255).round().to(torch.uint8)
    return rearrange(pixels, "... t c h w -> ... t h w c").cpu().numpy()


def write_predictions(options: PredictOptions, progress: Progress) -> dict[str, Any]:
    """Predict every sequence of --data S times and write DIR's files; returns clips.json's content."""
    from ganforge.media_files import write_clip
    from vidgan.commands.evaluate import SEED_STRIDE, clip_dataset
    from vidgan.predictor import FramePredictor

    predictor = FramePredictor.from_checkpoint(options.ckpt_path, device=resolve_device(options.device))
    tc, future = predictor.context_frames, options.future_frames or predictor.future_frames
    data = clip_dataset(Path(options.data), tc, future, predictor.resolution, predictor.channels)
    if options.max_sequences is not None:
        data = Subset(data, range(min(options.max_sequences, len(data))))
    frames, (channels, height, width) = tc + future, data[0][0].shape[1:]
    out = Path(options.out_dir)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    shape = (len(data), options.samples, frames, height, width, channels)
    predictions = np.lib.format.open_memmap(out / "predictions.npy", "w+", np.uint8, shape)
    real = np.lib.format.open_memmap(out / "real.npy", "w+", np.uint8, (len(data), *shape[2:]))
    fps = options.fps or DEFAULT_FPS
    task = progress.add_task(f"predict {options.samples} x {future} frames", total=len(data))
    first = 0
    for index, (context, target, *_) in enumerate(DataLoader(data, batch_size=options.batch_size)):
        pred = predictor.predict(
            context,
            future_frames=future,
            num_samples=options.samples,
            seed=options.seed * SEED_STRIDE + index,
        )  # (B, S, F, C, H, W)
        shown = context[:, None].expand(-1, options.samples, -1, -1, -1, -1)
        clips = to_uint8(torch.cat([shown, pred], dim=2))  # (B, S, Tc + F, H, W, C)
        predictions[first : first + len(clips)] = clips
        real[first : first + len(clips)] = to_uint8(torch.cat([context, target], dim=1))
        for b, sequence in enumerate(clips):
            for s, clip in enumerate(sequence):
                rgb = np.repeat(clip, 3, axis=-1) if channels == 1 else clip
                write_clip(rgb, out / "videos" / f"{first + b:06d}_{s}.mp4", fps)
        first += len(clips)
        progress.advance(task, len(clips))
    predictions.flush()
    real.flush()
    meta = {
        "checkpoint": str(options.ckpt_path),
        "data": str(options.data),
        "sequences": len(data),
        "samples": options.samples,
        "context_frames": tc,
        "future_frames": future,
        "seed": options.seed,
        "batch_size": options.batch_size,
        "fps": fps,
        "layout": "predictions.npy (N, S, T, H, W, C) and real.npy (N, T, H, W, C) uint8, T = context + "
        "future; videos/NNNNNN_S.mp4 = predictions[N, S]",
    }
    (out / "clips.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta
