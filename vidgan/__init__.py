"""vidgan: DVD-GAN-FP video frame prediction (Clark et al. 2019) on the ganforge core.

`from vidgan import FramePredictor` is the Python API (docs/python_api.md). Names load lazily, so importing
the package (e.g. for `vidgan data ...`) does not import torch or Lightning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["FramePredictor"]

if TYPE_CHECKING:
    from vidgan.predictor import FramePredictor


def __getattr__(name: str) -> Any:
    if name == "FramePredictor":
        from vidgan.predictor import FramePredictor

        return FramePredictor
    raise AttributeError(f"module 'vidgan' has no attribute {name!r}")
