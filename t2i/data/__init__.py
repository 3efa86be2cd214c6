"""t2i data: the shapes-scenes renderer and COCO-format layout datasets.

Names load lazily, so `t2i data shapes` does not import Lightning (the data module does).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "CocoLayoutDataModule": "t2i.data.datamodule",
    "CocoLayoutDataset": "t2i.data.coco",
    "ShapesSpec": "t2i.data.shapes_scenes",
    "collate_layouts": "t2i.data.coco",
    "relation_holds": "t2i.data.shapes_scenes",
    "render_shapes": "t2i.data.shapes_scenes",
}
__all__ = [
    "CocoLayoutDataModule",
    "CocoLayoutDataset",
    "ShapesSpec",
    "collate_layouts",
    "relation_holds",
    "render_shapes",
]

if TYPE_CHECKING:
    from t2i.data.coco import CocoLayoutDataset, collate_layouts
    from t2i.data.datamodule import CocoLayoutDataModule
    from t2i.data.shapes_scenes import ShapesSpec, relation_holds, render_shapes


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 't2i.data' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
