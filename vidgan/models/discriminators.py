"""DVD-GAN's dual discriminators (Clark et al. 2019, section 3.1).

- `SpatialDiscriminator` (D_S): k distinct frames per clip at full resolution, 2-D ResNet, the
  per-frame scores summed. It judges single-frame content and detail.
- `TemporalDiscriminator` (D_T): the whole clip after spatial average pooling, two 3-D residual
  blocks then 2-D blocks with time folded into batch, per-frame scores summed. It judges motion.

Both take videos (B, T, C, H, W) in [0, 1] (context and prediction together) and return logits (B,).
Every conv, linear and embedding layer carries spectral norm. Optional projection conditioning
(Miyato & Koyama 2018) adds <embed(y), features> when `num_classes > 0`. `patch_size` > 1 feeds
frames as lossless p x p patches (space-to-depth, as in DGMR) for speed on CPU; D_S still sees
every pixel, D_T patches after pooling.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from ganforge.errors import UserError
from vidgan.models.blocks import DBlock
from vidgan.models.layers import embedding, linear, space_to_depth

TEMPORAL_POOLS = (1, 2, 4)


def sample_frame_indices(
    batch: int,
    frames: int,
    k: int,
    rng: torch.Generator | None = None,
    device: torch.device | None = None,
) -> Tensor:
    """k distinct frame indices per clip, a uniform random k-subset of range(frames): (B, min(k, T)) long.

    With T <= k every frame is taken (in order). The subset comes from the first k entries of a
    uniform random permutation (argsort of iid uniforms), so no index repeats within a row and
    every frame is equally likely, unlike DGMR's sampling with replacement.
    """
    if k < 1:
        raise UserError(f"spatial discriminator k={k} must be >= 1")
    if frames <= k:
        return torch.arange(frames, device=device).expand(batch, frames)
    draw_on = rng.device if rng is not None else device  # a device generator: no copy
    order = torch.rand(batch, frames, generator=rng, device=draw_on).argsort(dim=1)
    return order[:, :k].sort(dim=1).values.to(device)


class ProjectionHead(nn.Module):
    """Linear score plus optional class projection: features (N, D), labels (N,) -> logits (N,)."""

    def __init__(self, features: int, num_classes: int = 0) -> None:
        super().__init__()
        self.linear = linear(features, 1)
        self.embed = embedding(num_classes, features) if num_classes > 0 else None

    def forward(self, h: Tensor, labels: Tensor | None = None) -> Tensor:
        out = self.linear(h).squeeze(1)
        if self.embed is None:
            return out
        if labels is None:
            raise ValueError("this discriminator is class-conditional (num_classes > 0); pass labels")
        return out + (self.embed(labels) * h).sum(dim=1)


def _check_widths(name: str, widths: list[int], minimum: int) -> None:
    if len(widths) < minimum:
        raise UserError(f"{name} widths={widths} needs at least {minimum} entries")


def _blocks_2d(ins: list[int], outs: list[int], first_is_input: bool) -> nn.ModuleList:
    """2-D D blocks; each halves H and W except the last (BigGAN's D layout)."""
    last = len(outs) - 1
    return nn.ModuleList(
        DBlock(a, b, downsample=i < last, preactivation=not (first_is_input and i == 0))
        for i, (a, b) in enumerate(zip(ins, outs))
    )


class SpatialDiscriminator(nn.Module):
    """D_S: k distinct frames, 2-D ResNet per frame, scores summed over the k frames."""

    def __init__(
        self,
        channels: int = 1,
        widths: list[int] | tuple[int, ...] = (32, 64, 128, 128),
        k: int = 8,
        num_classes: int = 0,
        patch_size: int = 1,
    ) -> None:
        super().__init__()
        widths = list(widths)
        _check_widths("spatial discriminator", widths, 1)
        self.blocks = _blocks_2d([channels * patch_size**2, *widths[:-1]], widths, first_is_input=True)
        self.head = ProjectionHead(widths[-1], num_classes)
        self.k, self.patch_size = k, patch_size

    def forward(self, video: Tensor, frame_indices: Tensor, labels: Tensor | None = None) -> Tensor:
        """video (B, T, C, H, W) in [0, 1], frame_indices (B, k) long, labels (B,) -> logits (B,)."""
        batch, k = frame_indices.shape
        rows = torch.arange(batch, device=video.device)[:, None]
        frames = space_to_depth(video[rows, frame_indices], self.patch_size)  # (B, k, C p p, H/p, W/p)
        h = rearrange(frames, "b k c h w -> (b k) c h w") * 2.0 - 1.0
        for block in self.blocks:
            h = block(h)
        h = F.relu(h).sum(dim=(2, 3))  # (B*k, D)
        per_frame = self.head(h, None if labels is None else labels.repeat_interleave(k))
        return rearrange(per_frame, "(b k) -> b k", b=batch).sum(dim=1)


class TemporalDiscriminator(nn.Module):
    """D_T: pool space by `pool`, two 3-D residual blocks, then 2-D blocks per frame; scores summed over T."""

    def __init__(
        self,
        channels: int = 1,
        widths: list[int] | tuple[int, ...] = (32, 64, 128, 128),
        pool: int = 2,
        num_classes: int = 0,
        patch_size: int = 1,
    ) -> None:
        super().__init__()
        widths = list(widths)
        _check_widths("temporal discriminator", widths, 2)
        if pool not in TEMPORAL_POOLS:
            raise UserError(f"temporal discriminator pool={pool} must be one of {TEMPORAL_POOLS}")
        self.pool, self.patch_size = pool, patch_size
        self.blocks_3d = nn.ModuleList(
            [
                DBlock(channels * patch_size**2, widths[0], dims=3, preactivation=False),
                DBlock(widths[0], widths[1], dims=3, downsample=len(widths) > 2),
            ]
        )
        self.blocks_2d = _blocks_2d(widths[1:-1], widths[2:], first_is_input=False)
        self.head = ProjectionHead(widths[-1], num_classes)

    def pooled(self, video: Tensor) -> Tensor:
        """The input D_T sees: video (B, T, C, H, W) average-pooled to (B, T, C, H/pool, W/pool)."""
        if self.pool == 1:
            return video
        frames = F.avg_pool2d(rearrange(video, "b t c h w -> (b t) c h w"), self.pool)
        return rearrange(frames, "(b t) c h w -> b t c h w", b=video.shape[0])

    def features_3d(self, video: Tensor) -> Tensor:
        """Output of the 3-D blocks for video (B, T, C, H, W) in [0, 1]: (B, C', T, H', W')."""
        patches = space_to_depth(self.pooled(video), self.patch_size)
        h = rearrange(patches, "b t c h w -> b c t h w") * 2.0 - 1.0
        for block in self.blocks_3d:
            h = block(h)
        return h

    def forward(self, video: Tensor, labels: Tensor | None = None) -> Tensor:
        """video (B, T, C, H, W) in [0, 1], labels (B,) -> logits (B,)."""
        batch, frames = video.shape[:2]
        h = rearrange(self.features_3d(video), "b c t h w -> (b t) c h w")  # time folded into batch
        for block in self.blocks_2d:
            h = block(h)
        h = F.relu(h).sum(dim=(2, 3))  # (B*T, D)
        per_frame = self.head(h, None if labels is None else labels.repeat_interleave(frames))
        return rearrange(per_frame, "(b t) -> b t", b=batch).sum(dim=1)


class VideoDiscriminator(nn.Module):
    """The pair (D_S, D_T) as one module, so GANModule optimises both with one optimiser."""

    def __init__(
        self,
        channels: int = 1,
        widths: list[int] | tuple[int, ...] = (32, 64, 128, 128),
        k: int = 8,
        temporal_pool: int = 2,
        num_classes: int = 0,
        patch_size: int = 1,
    ) -> None:
        super().__init__()
        self.spatial = SpatialDiscriminator(channels, widths, k, num_classes, patch_size)
        self.temporal = TemporalDiscriminator(channels, widths, temporal_pool, num_classes, patch_size)
        self.downsamplings, self.temporal_pool, self.patch_size = len(widths) - 1, temporal_pool, patch_size

    def check_resolution(self, resolution: int) -> None:
        """UserError unless both discriminators can halve their input `len(widths) - 1` times.

        D_S sees resolution / patch_size, D_T resolution / (temporal_pool * patch_size).
        """
        step = self.patch_size * 2**self.downsamplings
        for name, factor in (("spatial", 1), ("temporal", self.temporal_pool)):
            if resolution % (factor * step):
                raise UserError(
                    f"resolution={resolution}: the {name} discriminator needs a multiple of "
                    f"{factor * step} (pool {factor} x patch_size {self.patch_size} x 2^{self.downsamplings} "
                    "down-samplings for its widths)"
                )
