"""t2i layout stage parts: the box generator, the shape generator, their discriminators and drawings."""

from t2i.layout.box import Box, boxes_from_tensors
from t2i.layout.boxes import BoxGenerator, SampledBoxes, sort_largest_first
from t2i.layout.generator import LayoutGenerator, TextTowerShape, build_text_encoder
from t2i.layout.mixture import BivariateMixture
from t2i.layout.shapes import ShapeGenerator, crop_masks, paste_masks

__all__ = [
    "BivariateMixture",
    "Box",
    "BoxGenerator",
    "LayoutGenerator",
    "SampledBoxes",
    "ShapeGenerator",
    "TextTowerShape",
    "boxes_from_tensors",
    "build_text_encoder",
    "crop_masks",
    "paste_masks",
    "sort_largest_first",
]
