"""ROI crops at normalised boxes: `torchvision.ops.roi_align` (`aligned=True`) as two matrix products.

RoIAlign's bilinear sampling is separable: an output cell averages `sampling_ratio`**2 bilinear
samples, and each sample's weight on pixel (h, w) is a row weight times a column weight. So a crop is

    crop[c] = Wy @ features[c] @ Wx^T,    Wy (s, H), Wx (s, W)

with each row of Wy (Wx) the mean of the tent weights max(0, 1 - |y - h|) of that cell's samples,
after RoIAlign's clamping (a sample more than one pixel outside the map weighs nothing; one inside
that margin reads the edge pixel). On CPU this is a batched matmul that runs multi-threaded and in
bf16 under autocast, where `roi_align`'s backward is a single-threaded fp32 loop (the t2i image
step's crops: 4.3 ms instead of 37 ms forward + backward, `docs/benchmarks.md`). It matches
`roi_align` to fp32 rounding (`tests/t2i/test_image_crops.py`). Like `roi_align`, no gradient reaches
the boxes.
"""

from __future__ import annotations

import torch
from torch import Tensor


def axis_weights(start: Tensor, end: Tensor, cells: int, length: int, sampling_ratio: int) -> Tensor:
    """Sampling weights (K, cells, length) of K intervals [start, end) (pixel units, (K,)) on an axis
    of `length` pixels whose centres sit at +0.5, as RoIAlign (`aligned=True`) samples them."""
    start = start - 0.5
    step = (end - 0.5 - start) / cells
    like = {"dtype": start.dtype, "device": start.device}
    within = (torch.arange(sampling_ratio, **like) + 0.5) / sampling_ratio  # sample offsets in a cell
    offsets = torch.arange(cells, **like)[:, None] + within
    samples = start[:, None, None] + offsets * step[:, None, None]  # (K, cells, sampling_ratio)
    inside = (samples >= -1) & (samples <= length)
    samples = samples.clamp(0, length - 1)
    pixels = torch.arange(length, **like)
    tents = (1 - (samples[..., None] - pixels).abs()).clamp(min=0) * inside[..., None]
    return tents.mean(dim=2)


def crop_slots(features: Tensor, boxes: Tensor, output_size: int, sampling_ratio: int = 2) -> Tensor:
    """Crops (B*N, C, s, s) of features (B, C, H, W) at every slot's box (B, N, 4), row-major.

    Boxes are normalised (x, y, w, h), x, y the top-left corner (COCO order), and cover the whole map
    whatever its resolution; padding slots' zero boxes read the corner pixel. With a pixel's centre at
    +0.5, a box of whole pixels cropped with `output_size` equal to its side and `sampling_ratio=1`
    returns exactly those pixels. The crops come out channels-last.
    """
    batch, slots = boxes.shape[:2]
    height, width = features.shape[-2:]
    boxes = boxes.detach().to(torch.promote_types(features.dtype, torch.float32))
    x, y, w, h = boxes.flatten(0, 1).unbind(dim=-1)
    wx = axis_weights(x * width, (x + w) * width, output_size, width, sampling_ratio)
    wy = axis_weights(y * height, (y + h) * height, output_size, height, sampling_ratio)
    rows = features.permute(0, 2, 3, 1)  # (B, H, W, C): a view of channels-last features
    # over W: (B, 1, N*s, W) @ (B, H, W, C) -> (B, H, N*s, C)
    across = torch.matmul(wx.unflatten(0, (batch, slots)).flatten(1, 2)[:, None].to(rows.dtype), rows)
    across = across.unflatten(2, (slots, output_size)).permute(0, 2, 1, 3, 4).flatten(3)  # (B, N, H, s*C)
    # over H: (B, N, s, H) @ (B, N, H, s*C) -> (B, N, s, s*C)
    crops = torch.matmul(wy.unflatten(0, (batch, slots)).to(across.dtype), across)
    return crops.unflatten(3, (output_size, -1)).permute(0, 1, 4, 2, 3).flatten(0, 1)


def crop_objects(
    features: Tensor, boxes: Tensor, object_mask: Tensor, output_size: int, sampling_ratio: int = 2
) -> Tensor:
    """Crops (K, C, s, s) of features (B, C, H, W) at the K real objects of `object_mask` (B, N), in
    `nonzero` order; see `crop_slots`. Boolean selection: the host waits for K, so training steps
    crop every slot with `crop_slots` instead."""
    return crop_slots(features, boxes, output_size, sampling_ratio)[object_mask.flatten()]
