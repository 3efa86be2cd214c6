"""vidgan data: Moving MNIST on real digits, video-file folders, and a LightningDataModule for each.

Names load lazily, so `vidgan data moving-mnist` does not import Lightning.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "MovingMNISTDataset": "vidgan.data.moving_mnist",
    "MovingMNISTStream": "vidgan.data.moving_mnist",
    "write_moving_mnist": "vidgan.data.moving_mnist",
    "VideoFolderDataset": "vidgan.data.video_folder",
    "SkippedVideo": "vidgan.data.video_folder",
    "VideoDataModule": "vidgan.data.datamodule",
    "MovingMNISTDataModule": "vidgan.data.datamodule",
    "VideoFolderDataModule": "vidgan.data.datamodule",
}
__all__ = [
    "MovingMNISTDataModule",
    "MovingMNISTDataset",
    "MovingMNISTStream",
    "SkippedVideo",
    "VideoDataModule",
    "VideoFolderDataModule",
    "VideoFolderDataset",
    "write_moving_mnist",
]

if TYPE_CHECKING:
    from vidgan.data.datamodule import MovingMNISTDataModule, VideoDataModule, VideoFolderDataModule
    from vidgan.data.moving_mnist import MovingMNISTDataset, MovingMNISTStream, write_moving_mnist
    from vidgan.data.video_folder import SkippedVideo, VideoFolderDataset


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'vidgan.data' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
