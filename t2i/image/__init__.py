"""The t2i image stage's networks: object-driven attentive generator, patch and object-wise discriminators."""

from t2i.image.attention import ObjectTextAttention, WordRegionAttention, paint
from t2i.image.discriminators import (
    ImageGANDiscriminator,
    ObjectDiscriminator,
    PatchDiscriminator,
    crop_objects,
)
from t2i.image.generator import ImageGenerator

__all__ = [
    "ImageGANDiscriminator",
    "ImageGenerator",
    "ObjectDiscriminator",
    "ObjectTextAttention",
    "PatchDiscriminator",
    "WordRegionAttention",
    "crop_objects",
    "paint",
]
