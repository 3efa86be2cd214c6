"""Layout drawings: tinted masks inside boxes, labelled outlines in class colours, PNG and media."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from t2i.models.layout import Box
from t2i.models.layout.draw import (
    BACKGROUND,
    class_colour,
    draw_layouts,
    layout_media,
    render_layout,
    save_layouts_png,
)


def _circle_mask(size: int = 16) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    return ((xx - size / 2) ** 2 + (yy - size / 2) ** 2 <= (size / 2) ** 2).float()


def test_render_tints_the_mask_and_leaves_the_rest_background() -> None:
    layout = [Box("square", 0.5, 0.5, 0.5, 0.5), Box("circle", 0.0, 0.0, 0.5, 0.5, mask=_circle_mask())]
    image = render_layout(layout, 32)
    assert image.shape == (3, 32, 32) and image.min() >= 0 and image.max() <= 1
    circle = torch.tensor(class_colour("circle"))
    square = torch.tensor(class_colour("square"))
    expected_circle = BACKGROUND + 0.75 * (circle - BACKGROUND)
    torch.testing.assert_close(image[:, 8, 8], expected_circle, atol=1e-4, rtol=0)  # circle centre
    torch.testing.assert_close(image[:, 0, 0], torch.full((3,), BACKGROUND))  # outside the circle
    torch.testing.assert_close(image[:, 24, 24], BACKGROUND + 0.75 * (square - BACKGROUND))  # box, no mask


def test_draw_outlines_boxes_in_class_colours_and_saves_png(tmp_path: Path) -> None:
    layouts = [[Box("circle", 0.25, 0.25, 0.5, 0.5)], []]
    grid = draw_layouts(layouts, size=64)
    assert grid.dtype == torch.uint8 and grid.shape[0] == 3
    colour = torch.tensor([int(255 * c) for c in class_colour("circle")], dtype=torch.uint8)
    # make_grid pads 2 px: the first tile starts at (2, 2); the box's top-left corner is at 16 px.
    assert torch.equal(grid[:, 2 + 16, 2 + 40], colour)  # on the top edge
    path = save_layouts_png(layouts, tmp_path / "out" / "layouts.png", size=64)
    assert np.asarray(Image.open(path)).shape == (grid.shape[1], grid.shape[2], 3)
    with pytest.raises(ValueError, match="no layouts"):
        save_layouts_png([], tmp_path / "empty.png")


def test_layout_media_carries_labelled_boxes() -> None:
    media = layout_media([[Box("triangle", 0.1, 0.2, 0.3, 0.4)]], captions=["a triangle"], size=32)
    assert media.images.shape == (1, 3, 32, 32) and media.captions == ["a triangle"]
    (box,) = media.boxes[0]
    assert (box.label, box.x, box.y, box.w, box.h) == ("triangle", 0.1, 0.2, 0.3, 0.4)
