"""t2i: text -> layout -> image GANs (Obj-GAN lineage, Li et al. 2019) on the ganforge core.

`from t2i import TextToImage, Box` is the Python API (docs/python_api.md). Names load lazily, so importing
the package (e.g. for `t2i data ...`) does not import torch or Lightning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["Box", "TextToImage"]

if TYPE_CHECKING:
    from t2i.pipeline import Box, TextToImage


def __getattr__(name: str) -> Any:
    if name in __all__:
        from t2i import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 't2i' has no attribute {name!r}")
