"""t2i layout networks: box generator, mask (shape) generator, their discriminators; layout drawings."""

from t2i.models.layout.box import Box, boxes_from_tensors
from t2i.models.layout.box_generator import BoxGenerator, SampledBoxes, sort_largest_first
from t2i.models.layout.generator import LayoutGenerator
from t2i.models.layout.mask_generator import ShapeGenerator, crop_masks, paste_masks
from t2i.models.layout.mixture import BivariateMixture

__all__ = [
    "BivariateMixture",
    "Box",
    "BoxGenerator",
    "LayoutGenerator",
    "SampledBoxes",
    "ShapeGenerator",
    "boxes_from_tensors",
    "crop_masks",
    "paste_masks",
    "sort_largest_first",
]
