"""ROI crops as two matrix products: the same numbers and feature gradients as `torchvision.ops.roi_align`."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor
from torch.testing import assert_close
from torchvision.ops import roi_align

from t2i.models.image.crops import crop_slots


def reference_crops(features: Tensor, boxes: Tensor, size: int, sampling_ratio: int) -> Tensor:
    """`roi_align(aligned=True)` at every slot's normalised (x, y, w, h) box, row-major."""
    batch, slots = boxes.shape[:2]
    height, width = features.shape[-2:]
    x, y, w, h = boxes.unbind(dim=-1)
    xyxy = torch.stack([x * width, y * height, (x + w) * width, (y + h) * height], dim=-1).flatten(0, 1)
    index = torch.arange(batch, dtype=boxes.dtype).repeat_interleave(slots)
    rois = torch.cat([index[:, None], xyxy], dim=1)
    return roi_align(features, rois, size, spatial_scale=1.0, sampling_ratio=sampling_ratio, aligned=True)


def random_boxes(batch: int, slots: int, gen: torch.Generator) -> Tensor:
    """Boxes inside the map, boxes reaching past its edges (partly and wholly), and zero padding boxes."""
    corner = torch.rand(batch, slots, 2, generator=gen) * 1.6 - 0.3
    size = torch.rand(batch, slots, 2, generator=gen) * 0.7 + 0.01
    boxes = torch.cat([corner, size], dim=-1)
    boxes[:, -1] = 0.0
    boxes[0, 0] = torch.tensor([-0.5, 1.2, 0.3, 0.3])  # wholly outside: crops read nothing
    return boxes


@pytest.mark.parametrize(
    ("height", "width", "size", "sampling_ratio"), [(16, 16, 8, 2), (12, 20, 5, 1), (9, 7, 4, 3)]
)
def test_crops_and_their_feature_gradients_match_roi_align(
    height: int, width: int, size: int, sampling_ratio: int
) -> None:
    gen = torch.Generator().manual_seed(height)
    features = torch.randn(3, 4, height, width, generator=gen, dtype=torch.float64)
    boxes = random_boxes(3, 5, gen).double()
    ours_in, theirs_in = features.clone().requires_grad_(), features.clone().requires_grad_()
    ours = crop_slots(ours_in, boxes, size, sampling_ratio)
    theirs = reference_crops(theirs_in, boxes, size, sampling_ratio)
    assert ours.shape == theirs.shape == (15, 4, size, size)
    assert_close(ours, theirs, rtol=0, atol=1e-12)
    assert ours[0].abs().max() == 0  # the box wholly outside the map
    weights = torch.randn(theirs.shape, generator=gen, dtype=torch.float64)
    (ours * weights).sum().backward()
    (theirs * weights).sum().backward()
    assert_close(ours_in.grad, theirs_in.grad, rtol=0, atol=1e-12)


def test_crops_of_channels_last_bf16_features_under_autocast_stay_close_to_fp32() -> None:
    """The object D's path: bf16 channels-last features under CPU autocast, crops channels-last."""
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(4, 8, 32, 32, generator=gen)
    boxes = random_boxes(4, 3, gen)
    exact = reference_crops(features, boxes, 8, 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        crops = crop_slots(features.bfloat16().contiguous(memory_format=torch.channels_last), boxes, 8, 2)
    assert crops.dtype == torch.bfloat16
    assert crops.is_contiguous(memory_format=torch.channels_last)
    # bf16 keeps 8 significant bits: features and weights each round by at most 2**-9 relative
    assert_close(crops.float(), exact, rtol=0.02, atol=0.02)
