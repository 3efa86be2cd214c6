"""t2i data: the shapes-scenes renderer and COCO-format layout datasets."""

from t2i.data.coco import CocoLayoutDataset, collate_layouts
from t2i.data.datamodule import CocoLayoutDataModule
from t2i.data.shapes import ShapesSpec, relation_holds, render_shapes

__all__ = [
    "CocoLayoutDataModule",
    "CocoLayoutDataset",
    "ShapesSpec",
    "collate_layouts",
    "relation_holds",
    "render_shapes",
]
