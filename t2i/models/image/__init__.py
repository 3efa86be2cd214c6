"""The t2i image stage's networks: object-driven attentive generator, patch and object-wise discriminators."""

from t2i.models.image.attention import ObjectTextAttention, WordRegionAttention, paint
from t2i.models.image.crops import crop_objects, crop_slots
from t2i.models.image.discriminators import ImageGANDiscriminator, ObjectDiscriminator, PatchDiscriminator
from t2i.models.image.generator import ImageGenerator

__all__ = [
    "ImageGANDiscriminator",
    "ImageGenerator",
    "ObjectDiscriminator",
    "ObjectTextAttention",
    "PatchDiscriminator",
    "WordRegionAttention",
    "crop_objects",
    "crop_slots",
    "paint",
]
