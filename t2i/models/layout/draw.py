"""Layout pictures: masks tinted by class on a dark canvas, boxes outlined and labelled.

`render_layouts` gives float images for `ganforge.media.ImageMedia` (the loggers draw the boxes
themselves from its `LabeledBox`es, see `layout_media`); `draw_layouts` burns the boxes and labels
in with `torchvision.utils.draw_bounding_boxes` for a PNG (`save_layouts_png`).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor
from torchvision.utils import draw_bounding_boxes, make_grid

from ganforge.errors import UserError
from ganforge.media import ImageMedia
from t2i.models.layout.box import Box
from t2i.models.layout.mask_generator import box_indicator, paste_masks

# matplotlib's tab10, as RGB in [0, 1]; a class keeps its colour across pictures and runs.
PALETTE = (
    (0.12, 0.47, 0.71),
    (1.00, 0.50, 0.05),
    (0.17, 0.63, 0.17),
    (0.84, 0.15, 0.16),
    (0.58, 0.40, 0.74),
    (0.55, 0.34, 0.29),
    (0.89, 0.47, 0.76),
    (0.50, 0.50, 0.50),
    (0.74, 0.74, 0.13),
    (0.09, 0.75, 0.81),
)
BACKGROUND = 0.1
TINT = 0.75  # mask opacity over the background and larger objects below it


def class_colour(label: str) -> tuple[float, float, float]:
    """A fixed palette colour for a class name."""
    return PALETTE[zlib.crc32(label.encode()) % len(PALETTE)]


def render_layout(layout: list[Box], size: int) -> Tensor:
    """One layout as an image (3, size, size) in [0, 1]: each object's mask (its box when it has
    no mask) tinted with its class colour, largest first, so small objects stay visible."""
    canvas = torch.full((3, size, size), BACKGROUND)
    for box in sorted(layout, key=lambda b: -b.w * b.h):
        coords = torch.tensor([[[box.x, box.y, box.w, box.h]]])
        if box.mask is None:
            alpha = box_indicator(coords[0, 0], size, size)
        else:
            alpha = paste_masks(box.mask[None, None].float(), coords, size, size)[0, 0]
        colour = torch.tensor(class_colour(box.label))[:, None, None]
        canvas = canvas + TINT * alpha * (colour - canvas)
    return canvas


def render_layouts(layouts: list[list[Box]], size: int) -> Tensor:
    """Layouts as images (B, 3, size, size) in [0, 1]."""
    return torch.stack([render_layout(layout, size) for layout in layouts])


def draw_layouts(layouts: list[list[Box]], size: int = 128) -> Tensor:
    """Layouts with labelled box outlines as one near-square grid, uint8 (3, H, W)."""
    tiles = []
    for layout, image in zip(layouts, render_layouts(layouts, size)):
        pixels = (image * 255).round().to(torch.uint8)
        if layout:
            xyxy = torch.tensor([[b.x, b.y, b.x + b.w, b.y + b.h] for b in layout]) * size
            xyxy[:, 2:] = torch.maximum(xyxy[:, 2:] - 1, xyxy[:, :2])  # last pixel inside the box
            colours = [tuple(int(255 * c) for c in class_colour(b.label)) for b in layout]
            pixels = draw_bounding_boxes(
                pixels, xyxy, labels=[b.label for b in layout], colors=colours, width=2
            )
        tiles.append(pixels)
    nrow = max(1, round(len(tiles) ** 0.5))
    return make_grid(torch.stack(tiles), nrow=nrow, padding=2, pad_value=255)


def save_layouts_png(layouts: list[list[Box]], path: str | Path, size: int = 128) -> Path:
    """Write `draw_layouts(layouts, size)` as a PNG; returns the path."""
    path = Path(path)
    if not layouts:
        raise UserError(f"save_layouts_png: no layouts to draw into '{path}'")
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(draw_layouts(layouts, size).permute(1, 2, 0).numpy()).save(path)
    return path


def layout_media(layouts: list[list[Box]], captions: list[str] | None = None, size: int = 64) -> ImageMedia:
    """Tinted layouts with their boxes as `LabeledBox`es, for W&B (box overlays) and the local files."""
    boxes = [[box.labeled() for box in layout] for layout in layouts]
    return ImageMedia(render_layouts(layouts, size), captions=captions, boxes=boxes)
