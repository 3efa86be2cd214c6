"""Tiny deterministic moving-square clips for vidgan's tests (no dependency on vidgan.data)."""

from __future__ import annotations

import torch
from torch import Tensor


def moving_square_clips(
    n: int, frames: int, size: int = 16, side: int = 4, speed: int = 2, seed: int = 0
) -> Tensor:
    """n clips (n, frames, 1, size, size) in {0, 1}: a white square bouncing off the walls.

    Start corners are uniform; each axis moves `speed` pixels per frame in a random direction and
    reflects at the walls, so the clip is a deterministic function of its first two frames.
    """
    gen = torch.Generator().manual_seed(seed)
    span = size - side
    pos = torch.randint(0, span + 1, (n, 2), generator=gen)
    vel = (torch.randint(0, 2, (n, 2), generator=gen) * 2 - 1) * speed
    clips = torch.zeros(n, frames, 1, size, size)
    for t in range(frames):
        for i in range(n):
            y, x = pos[i].tolist()
            clips[i, t, 0, y : y + side, x : x + side] = 1.0
        nxt = pos + vel
        vel = torch.where((nxt < 0) | (nxt > span), -vel, vel)
        pos = pos + vel
    return clips
