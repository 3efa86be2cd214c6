"""LayoutGenerator: caption -> boxes -> masks, the generator G of the layout stage.

Holds the text encoder (a CLIP text tower: frozen, fine-tuned, or a small one trained from
scratch), the `BoxGenerator` and the `ShapeGenerator`. The box pathway (text encoder + box
generator) is trained by likelihood; the shape generator adversarially, on the sentence embedding
detached from the text encoder so adversarial gradients never reach the text tower.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ganforge.module import standard_normal
from t2i.clip_model import build_clip, load_clip
from t2i.layout.boxes import BoxGenerator, SampledBoxes
from t2i.layout.shapes import ShapeGenerator
from t2i.text import TextEncoder, TextFeatures

TEXT_CONDITIONING = ("sentence", "tokens")


@dataclass
class TextTowerShape:
    """Sizes of a CLIP text tower (`clip.model.CLIP` text side).

    embed_dim: D of the sentence embedding; context_length: L; width: W (a multiple of 64);
    layers: transformer blocks.
    """

    embed_dim: int = 64
    context_length: int = 32
    width: int = 64
    layers: int = 2


def build_text_encoder(clip_path: str | None, shape: TextTowerShape, trainable: bool) -> TextEncoder:
    """The CLIP text tower of the local file `clip_path`, or a randomly initialised one of `shape`."""
    if clip_path is not None:
        return TextEncoder(load_clip(clip_path), trainable=trainable)
    clip = build_clip(
        embed_dim=shape.embed_dim,
        image_resolution=32,  # the image tower is dropped by TextEncoder; keep it minimal
        vision_width=64,
        vision_layers=1,
        vision_patch_size=32,
        context_length=shape.context_length,
        text_width=shape.width,
        text_layers=shape.layers,
    )
    return TextEncoder(clip, trainable=trainable)


def text_tower_shape(encoder: TextEncoder) -> TextTowerShape:
    """The sizes of `encoder`, e.g. to rebuild it empty before loading a checkpoint."""
    return TextTowerShape(
        embed_dim=encoder.embed_dim,
        context_length=encoder.context_length,
        width=encoder.width,
        layers=len(encoder.transformer.resblocks),
    )


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
