"""The fixed case of the CLIP-gather test: projection heads, a temperature and a global batch."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

GLOBAL_BATCH, RAW, EMBED = 8, 12, 8


class Towers(nn.Module):
    """Stand-ins for CLIP's towers: linear maps of raw features (N, RAW) to unit embeddings (N, EMBED)."""

    def __init__(self) -> None:
        super().__init__()
        self.image, self.text = nn.Linear(RAW, EMBED), nn.Linear(RAW, EMBED)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))  # CLIP's initial temperature

    def forward(self, images: Tensor, texts: Tensor) -> tuple[Tensor, Tensor]:
        return F.normalize(self.image(images), dim=-1), F.normalize(self.text(texts), dim=-1)


def tiny_case() -> tuple[Towers, Tensor, Tensor]:
    """The same towers and global batch, images and texts (GLOBAL_BATCH, RAW), in every process."""
    torch.manual_seed(0)
    towers = Towers()
    return towers, torch.randn(GLOBAL_BATCH, RAW), torch.randn(GLOBAL_BATCH, RAW)
