"""LayoutGenerator: caption -> boxes -> masks, the generator G of the layout stage.

Holds the text encoder (a CLIP text tower: frozen, fine-tuned, or a small one trained from
scratch), the `BoxGenerator` and the `ShapeGenerator`. The box pathway (text encoder + box
generator) is trained by likelihood; the shape generator adversarially, on the sentence embedding
detached from the text encoder so adversarial gradients never reach the text tower.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ganforge.module import standard_normal
from t2i.models.layout.box_generator import BoxGenerator, SampledBoxes
from t2i.models.layout.mask_generator import ShapeGenerator
from t2i.models.text import TextEncoder, TextFeatures

TEXT_CONDITIONING = ("sentence", "tokens")


class LayoutGenerator(nn.Module):
    """Text encoder + box generator + shape generator.

    Args:
        text: the caption encoder (`TextEncoder.trainable` decides whether it learns).
        boxes: the box generator; its sentence/token dims must match `text`.
        shapes: the shape generator.
    """

    def __init__(self, text: TextEncoder, boxes: BoxGenerator, shapes: ShapeGenerator) -> None:
        super().__init__()
        self.text, self.boxes, self.shapes = text, boxes, shapes

    def encode(self, captions: list[str]) -> TextFeatures:
        """sentence (B, D), tokens (B, L, W), padding_mask (B, L) of the captions."""
        return self.text.encode(captions)

    def masks(self, text: TextFeatures, layout: SampledBoxes, noise: Tensor) -> Tensor:
        """Box-frame masks (B, N, M, M) for a layout, with per-box noise (B, N, Z)."""
        return self.shapes(layout.labels, layout.boxes, layout.object_mask, text.sentence.detach(), noise)

    def noise(self, layout: SampledBoxes, rng: torch.Generator | None = None) -> Tensor:
        """Per-box noise (B, N, Z) on the layout's device (`ganforge.module.standard_normal`)."""
        return standard_normal((*layout.labels.shape, self.shapes.noise_dim), layout.boxes.device, rng)
