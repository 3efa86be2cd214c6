"""LEARNING: given ground-truth layouts, the image stage paints the captioned colour inside the object.

A small single-object shapes set (32 px, one of 4 shapes in one of 6 colours, 5 caption templates)
trains the image stage adversarially (no reconstruction term) for a few hundred steps, with
`phrase_grounding` as the shipped configs (each object's attention reads its own phrase); on
held-out captions and layouts, generated through `TextToImage.generate(..., layouts=...)`, the mean
colour inside the object's mask must be nearest to the colour the caption names for >= 50% of them
(chance: 1/6). The captions are encoded by a random frozen CLIP text tower: its token features
still tell the colour words apart, and the object-driven attention has to find them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from image_testing import (
    fit_on_items,
    learning_image_stage,
    object_colours,
    single_object_items,
    true_layouts,
    write_tiny_clip,
)

from t2i.data.coco import collate_layouts
from t2i.pipeline import TextToImage

STEPS = 300  # generator steps
# Adversarial training amplifies rounding, so the bar is set by the spread over trajectories, not by
# one run: with `seed_everything(s)` after the CLIP file, s = 0..6, 300 steps scored 0.63, 0.67,
# 0.79, 0.73, 0.65, 0.73, 0.62 on the current code (object crops as matmuls, one object conditioning
# per D step), and 0.61-0.89 over 14 trajectories of earlier code (same math, other rounding). Lowest
# of the 21: 0.61, a margin of 0.11 over the bar and 0.44 over chance; this test's own run scores
# 0.73 at one thread (the tests' setting). Without phrase grounding the spread was wider at 500
# steps (0.63-0.90 over five trajectories), and adding the phrase GRU (`phrase_context`) widened it
# too (0.43-0.93 at 300).
MIN_ACCURACY = 0.5


def mask_color_accuracy(images: torch.Tensor, items: list[dict]) -> float:
    """Fraction of images (K, 3, H, W) whose mean colour inside the item's mask is nearest its colour."""
    found = object_colours(images, items)
    return sum(colours[0] == item["colors"][0] for colours, item in zip(found, items)) / len(items)


@pytest.mark.slow
def test_image_stage_paints_the_captioned_colour_inside_the_box(tmp_path: Path) -> None:
    pl.seed_everything(0, verbose=False)
    train, held_out = single_object_items(1000, 32, seed=0), single_object_items(100, 32, seed=1)
    model = learning_image_stage(write_tiny_clip(tmp_path / "clip.pt"), phrase_grounding=True)
    fit_on_items(model, train, max_objects=1, steps=STEPS)

    # Held-out captions through the public API, each with its true layout (box + box-frame shape).
    pipeline = TextToImage(model)
    batch = collate_layouts(held_out, max_objects=1)
    out = pipeline.generate([item["caption"] for item in held_out], seed=0, layouts=true_layouts(held_out))
    assert mask_color_accuracy(batch["image"], held_out) == 1.0  # the measure is right on real images
    accuracy = mask_color_accuracy(out.images[:, 0], held_out)
    assert accuracy >= MIN_ACCURACY, (
        f"colour inside the box matched the caption for {accuracy:.0%} of held-out captions"
    )
