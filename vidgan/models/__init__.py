"""vidgan networks: DVD-GAN-FP generator, spatial and temporal discriminators, baselines."""

from vidgan.models.baselines import ConvGRUPredictor, copy_last_frame, zero_frames
from vidgan.models.discriminators import (
    SpatialDiscriminator,
    TemporalDiscriminator,
    VideoDiscriminator,
    sample_frame_indices,
)
from vidgan.models.generator import VideoGenerator

__all__ = [
    "ConvGRUPredictor",
    "SpatialDiscriminator",
    "TemporalDiscriminator",
    "VideoDiscriminator",
    "VideoGenerator",
    "copy_last_frame",
    "sample_frame_indices",
    "zero_frames",
]
