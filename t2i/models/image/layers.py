"""Building blocks of the image stage: spectrally normalised convs, layout-modulated norm, G and D blocks.

- `LayoutNorm`: LostGAN's ISLA-Norm: features are group-normalised without affine parameters, then
  scaled and shifted by per-object parameters painted into each object's mask, so an object's
  conditioning ([class embedding ; object context]) acts inside its mask only. GroupNorm keeps each
  sample independent of the rest of the batch: a sample depends only on its own caption, layout
  and noise.
- `GBlock` / `DBlock`: BigGAN (Brock et al. 2019) residual blocks, 2x up / down. Both compute in
  channels-last memory (`torch.channels_last`; the values are the same): oneDNN's convolutions are
  faster on it and CPU average pooling is 4-9x faster than on (B, C, H, W) memory, so an image
  stage step takes ~0.86x the time (docs/benchmarks.md).

Spectral norm (Miyato et al. 2018) is on every D layer and on G's convs (SAGAN, BigGAN).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.spectral_norm import spectral_norm
from t2i.models.image.attention import paint


def sn(layer: nn.Module, enabled: bool = True) -> nn.Module:
    """`layer` wrapped in spectral norm when `enabled`."""
    return spectral_norm(layer) if enabled else layer


def conv(cin: int, cout: int, kernel: int = 3, use_sn: bool = True) -> nn.Module:
    """Same-padding 2-D conv, spectral norm when `use_sn`."""
    return sn(nn.Conv2d(cin, cout, kernel, padding=kernel // 2), use_sn)


def num_groups(channels: int) -> int:
    """Groups of GroupNorm: 8 channels a group, at most 32 groups."""
    return max(1, min(32, channels // 8))


@dataclass
class Layout:
    """A layout as the generator's blocks read it.

    objects: per-object vectors (B, N, E) ([class embedding ; object context]).
    masks: side -> object masks (B, N, side, side) at every side a block uses, zero for padding objects.
    """

    objects: Tensor
    masks: dict[int, Tensor]


class LayoutNorm(nn.Module):
    """GroupNorm without affine, then x * (1 + gamma) + beta, per-object gamma and beta painted into masks.

    LostGAN's ISLA-Norm (Sun & Wu 2019) with SPADE's (Park et al. 2019) `1 + gamma`: each object's
    affine parameters are a linear map of its vector, so they act only inside its mask; outside
    every mask the features are plainly normalised.
    """

    def __init__(self, channels: int, object_dim: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(num_groups(channels), channels, affine=False)
        self.affine = nn.Linear(object_dim, 2 * channels)
        nn.init.zeros_(self.affine.weight)  # starts as a plain GroupNorm
        nn.init.zeros_(self.affine.bias)

    def forward(self, x: Tensor, layout: Layout) -> Tensor:
        """Features (B, C, H, W) modulated inside the layout's masks at side W."""
        masks = layout.masks[x.shape[-1]]
        # Painted one by one, gamma and beta are dense channels-last maps; channel halves of one
        # painted map would be strided views, and CPU element-wise ops on them ran 7-10x slower.
        gamma, beta = self.affine(layout.objects).chunk(2, dim=-1)
        return self.norm(x) * (1 + paint(gamma, masks)) + paint(beta, masks)


class GBlock(nn.Module):
    """BigGAN G block: [norm relu up conv3] [norm relu conv3] + (up conv1) shortcut, layout-modulated."""

    def __init__(
        self, cin: int, cout: int, layout_dim: int, upsample: bool = True, use_sn: bool = True
    ) -> None:
        super().__init__()
        self.norm1, self.norm2 = LayoutNorm(cin, layout_dim), LayoutNorm(cout, layout_dim)
        self.conv1, self.conv2 = conv(cin, cout, use_sn=use_sn), conv(cout, cout, use_sn=use_sn)
        self.shortcut = conv(cin, cout, 1, use_sn) if cin != cout else nn.Identity()
        self.upsample = upsample

    def _up(self, x: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest") if self.upsample else x

    def forward(self, x: Tensor, layout: Layout) -> Tensor:
        """(B, Cin, H, W) -> (B, Cout, 2H, 2W) (H, W kept without upsample)."""
        x = x.contiguous(memory_format=torch.channels_last)
        h = self.conv1(self._up(F.relu(self.norm1(x, layout))))
        h = self.conv2(F.relu(self.norm2(h, layout)))
        # A 1x1 conv commutes with nearest up-sampling, so the shortcut convolves at the low resolution.
        return h + self._up(self.shortcut(x))


class DBlock(nn.Module):
    """BigGAN D block: [relu] conv3 relu conv3 [avgpool] + shortcut; `first` skips the input ReLU."""

    def __init__(self, cin: int, cout: int, downsample: bool = True, first: bool = False) -> None:
        super().__init__()
        self.conv1, self.conv2 = conv(cin, cout), conv(cout, cout)
        self.shortcut = conv(cin, cout, 1) if cin != cout or downsample else nn.Identity()
        self.downsample, self.first = downsample, first

    def _pool(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, 2) if self.downsample else x

    def forward(self, x: Tensor) -> Tensor:
        """(B, Cin, H, W) -> (B, Cout, H/2, W/2) (H, W kept without downsample)."""
        x = x.contiguous(memory_format=torch.channels_last)
        h = self.conv2(F.relu(self.conv1(x if self.first else F.relu(x))))
        if self.first:  # pool the image before its 1x1 conv: fewer channels to pool
            return self._pool(h) + self.shortcut(self._pool(x))
        return self._pool(h + self.shortcut(x))  # pooling is linear: one pool of the sum
