"""Sample media that `GANModule.sample` returns and the loggers write (W&B and local files)."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor


@dataclass
class LabeledBox:
    """One layout box: class label and top-left x, y, width, height normalised to [0, 1]."""

    label: str
    x: float
    y: float
    w: float
    h: float


@dataclass
class VideoMedia:
    """Clips (N, T, C, H, W) uint8, e.g. context | prediction | truth concatenated along W."""

    frames: Tensor
    fps: int = 4
    captions: list[str] | None = None

    def __post_init__(self) -> None:
        if self.frames.dim() != 5:
            raise ValueError(f"VideoMedia.frames must be (N, T, C, H, W), got {tuple(self.frames.shape)}")


@dataclass
class ImageMedia:
    """Images (N, C, H, W) float in [0, 1], with optional captions and per-image layout boxes."""

    images: Tensor
    captions: list[str] | None = None
    boxes: list[list[LabeledBox]] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.images.dim() != 4:
            raise ValueError(f"ImageMedia.images must be (N, C, H, W), got {tuple(self.images.shape)}")
