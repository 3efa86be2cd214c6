"""The Obj-GAN shape generator: one mask per box, from its class, its box, the caption and noise.

Li et al. 2019 §3.1 run a bidirectional conv-LSTM over the box sequence so each mask sees the
others. Here the context across boxes is self-attention over per-box vectors (class embedding +
box + sentence + noise), which reads the whole sequence in both directions at once; each vector
is then decoded by a small up-convolution stack into an (M, M) mask in the box's own frame.
`paste_masks` places such masks into the image (zero outside each box) and `crop_masks` cuts
ground-truth image masks back into box frames with `torchvision.ops.roi_align`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn
from torchvision.ops import roi_align

from ganforge.errors import UserError
from ganforge.losses import masked_mean

MIN_BOX_SIDE = 1e-3  # guards the 1 / w of the paste transform
BCE_EPS = 1e-6  # keeps log(p) finite for saturated masks


def mask_bce(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean binary cross-entropy of mask probabilities `pred` against `target` (same shape), in fp32.

    With `mask` (bool, the leading dims of `pred`, e.g. (B, N) for masks (B, N, M, M)) only the
    masks where it is True count: `mask_bce(pred[mask], target[mask])` without the selection (0
    when none is). Written out because `F.binary_cross_entropy` refuses to run under CUDA autocast
    (bf16-mixed).
    """
    p, t = pred.float().clamp(BCE_EPS, 1 - BCE_EPS), target.float()
    bce = -(t * p.log() + (1 - t) * (1 - p).log())
    if mask is None:
        return bce.mean()
    return masked_mean(bce.flatten(mask.dim()).mean(-1).flatten(), mask.flatten())


def box_indicator(boxes: Tensor, height: int, width: int) -> Tensor:
    """(..., H, W) float: 1 where a pixel centre lies inside the (x, y, w, h) box (..., 4), else 0."""
    ys = (torch.arange(height, device=boxes.device, dtype=boxes.dtype) + 0.5) / height
    xs = (torch.arange(width, device=boxes.device, dtype=boxes.dtype) + 0.5) / width
    x, y, w, h = (boxes[..., i, None] for i in range(4))
    inside_x = (xs >= x) & (xs <= x + w)  # (..., W)
    inside_y = (ys >= y) & (ys <= y + h)  # (..., H)
    return (inside_y[..., :, None] & inside_x[..., None, :]).to(boxes.dtype)


def paste_masks(masks: Tensor, boxes: Tensor, height: int, width: int) -> Tensor:
    """Box-frame masks (B, N, M, M) placed into the image by their boxes (B, N, 4) -> (B, N, H, W).

    Bilinear resampling of each mask over its box, then multiplied by `box_indicator`, so every
    pasted mask is exactly zero outside its box.
    """
    batch, n = boxes.shape[:2]
    x, y, w, h = boxes.reshape(-1, 4).clamp_min(0).unbind(-1)
    w, h = w.clamp_min(MIN_BOX_SIDE), h.clamp_min(MIN_BOX_SIDE)
    zero = torch.zeros_like(w)
    # Image coordinate u in [-1, 1] -> box-frame coordinate (u + 1 - 2x) / w - 1 (align_corners=False).
    theta = torch.stack(
        [
            torch.stack([1 / w, zero, (1 - 2 * x) / w - 1], -1),
            torch.stack([zero, 1 / h, (1 - 2 * y) / h - 1], -1),
        ],
        dim=1,
    )  # (B*N, 2, 3)
    grid = F.affine_grid(theta, [batch * n, 1, height, width], align_corners=False)
    flat = rearrange(masks, "b n m1 m2 -> (b n) 1 m1 m2")
    pasted = F.grid_sample(
        flat, grid.to(flat.dtype), mode="bilinear", padding_mode="zeros", align_corners=False
    )
    pasted = rearrange(pasted, "(b n) 1 h w -> b n h w", b=batch)
    return pasted * box_indicator(boxes, height, width)


def crop_masks(masks: Tensor, boxes: Tensor, size: int) -> Tensor:
    """Image masks (B, N, H, W) cut to their boxes (B, N, 4) and resampled to (B, N, size, size).

    `roi_align` averages 2x2 samples per output cell, so thin parts survive the downsampling.
    """
    batch, n, height, width = masks.shape
    scale = boxes.new_tensor([width, height, width, height])
    xywh = boxes.reshape(-1, 4) * scale
    rois = torch.cat(
        [
            torch.arange(batch * n, device=boxes.device, dtype=boxes.dtype)[:, None],
            xywh[:, :2],
            xywh[:, :2] + xywh[:, 2:],
        ],
        dim=1,
    )
    flat = rearrange(masks, "b n h w -> (b n) 1 h w")
    out = roi_align(flat, rois.to(flat.dtype), size, spatial_scale=1.0, sampling_ratio=2, aligned=True)
    return rearrange(out, "(b n) 1 m1 m2 -> b n m1 m2", b=batch)


class ShapeGenerator(nn.Module):
    """Masks (B, N, M, M) for boxes, with attention across the boxes of a layout.

    Args:
        num_classes: class count including padding 0.
        sentence_dim: D of the caption's sentence embedding.
        hidden: per-box vector width.
        noise_dim: Z, per-box noise width.
        mask_size: M, side of the box-frame mask (a power of two >= 4).
        layers: self-attention layers across boxes.
        heads: attention heads.
        channels: channels of the up-convolution stack at 4x4 (halved per doubling, floor 8).
    """

    def __init__(
        self,
        num_classes: int,
        sentence_dim: int,
        hidden: int = 128,
        noise_dim: int = 16,
        mask_size: int = 16,
        layers: int = 1,
        heads: int = 4,
        channels: int = 64,
    ) -> None:
        super().__init__()
        if mask_size < 4 or mask_size & (mask_size - 1):
            raise UserError(f"ShapeGenerator: mask_size={mask_size}; expected a power of two >= 4")
        self.noise_dim, self.mask_size, self.channels = noise_dim, mask_size, channels
        self.class_embedding = nn.Embedding(num_classes, hidden)
        self.box_in = nn.Linear(4, hidden)
        self.sentence_in = nn.Linear(sentence_dim, hidden)
        self.noise_in = nn.Linear(noise_dim, hidden)
        layer = nn.TransformerEncoderLayer(
            hidden, heads, 2 * hidden, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )
        self.context = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.to_grid = nn.Linear(hidden, channels * 16)
        blocks: list[nn.Module] = []
        width = channels
        for _ in range(int(math.log2(mask_size)) - 2):
            out = max(width // 2, 8)
            blocks += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(width, out, 3, padding=1),
                nn.GroupNorm(min(8, out), out),
                nn.GELU(),
            ]
            width = out
        self.up = nn.Sequential(*blocks, nn.Conv2d(width, 1, 3, padding=1))

    def forward(
        self, labels: Tensor, boxes: Tensor, object_mask: Tensor, sentence: Tensor, noise: Tensor
    ) -> Tensor:
        """Masks in (0, 1), zero at padded objects.

        Args:
            labels: (B, N) long, 0 at padding.
            boxes: (B, N, 4) normalised (x, y, w, h).
            object_mask: (B, N) bool, True for real objects.
            sentence: (B, D) caption embedding.
            noise: (B, N, Z) per-box noise.

        Returns: (B, N, M, M).
        """
        tokens = (
            self.class_embedding(labels)
            + self.box_in(boxes)
            + self.sentence_in(sentence)[:, None]
            + self.noise_in(noise)
        )
        # A layout with no objects would leave every key masked (NaN attention); let it see its slot 0.
        keys_pad = ~object_mask
        keys_pad[:, 0] = keys_pad[:, 0] & object_mask.any(1)
        context = self.context(tokens, src_key_padding_mask=keys_pad)  # (B, N, hidden)
        # Every slot is decoded (each on its own: GroupNorm has no batch statistics) and the padded
        # ones are zeroed; selecting the real ones would make the host read their number.
        grid = self.to_grid(context).view(-1, self.channels, 4, 4)
        logits = self.up(grid).view(*labels.shape, self.mask_size, self.mask_size)
        return torch.where(object_mask[..., None, None], torch.sigmoid(logits), 0.0)
