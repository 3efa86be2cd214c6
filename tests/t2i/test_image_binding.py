"""LEARNING: with two objects in one caption, each gets its own colour, not the other's.

Two-object shapes scenes (32 px; a quarter of them two objects of one shape, "a red circle above a
blue circle") train the image stage with `phrase_grounding` for a few hundred steps. On held-out
captions with their true layouts (given in mention order, as the layout stage draws them), each
object's mean colour inside its mask is compared with the palette. Binding counts a caption when
both objects take their own colour; the colour-swapped control counts it when both take the other
object's. A model that paints the caption's colours without binding them to objects (a bag of
words) scores the same on both; the test asks binding to beat the control by 0.3.
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
    true_layouts,
    two_object_items,
    write_tiny_clip,
)

from t2i.image_stage import ImageGAN
from t2i.pipeline import TextToImage

STEPS = 300  # generator steps; in development binding vs control was 0.42 / 0.00 at 200 steps,
# 0.61 / 0.01 at 250 and 0.82 / 0.00 at 350 (without phrase grounding: 0.09 / 0.07 at 350)
MARGIN = 0.3  # binding minus the colour-swapped control; with `seed_everything(s)` after the CLIP file,
# s = 0..5, 300 steps gave margins 0.72, 0.44, 0.69, 0.60, 0.69, 0.76 (control 0.00-0.02; lowest
# 0.44: 0.14 over the bar); this test's own run: 0.69 / 0.00. At 250 steps the current code's six
# margins spread 0.34-0.68 (0.19-0.70 with the object conditioning computed per logit, as before),
# too close to the bar, so the test trains 300.


def binding_and_control(found: list[list[str]], items: list[dict]) -> tuple[float, float]:
    """Fraction of items whose objects all took their own colour, and their swapped colours."""
    own = sum(f == item["colors"] for f, item in zip(found, items))
    swapped = sum(f == item["colors"][::-1] for f, item in zip(found, items))
    return own / len(items), swapped / len(items)


def train_two_object_stage(folder: Path, phrase_grounding: bool, steps: int = STEPS) -> ImageGAN:
    """The image stage trained on 1000 two-object scenes at 32 px for `steps` generator steps."""
    pl.seed_everything(0, verbose=False)
    model = learning_image_stage(write_tiny_clip(folder / "clip.pt"), phrase_grounding=phrase_grounding)
    return fit_on_items(model, two_object_items(1000, 32, seed=0), max_objects=2, steps=steps)


def held_out_binding(model: ImageGAN) -> tuple[float, float]:
    """Binding and colour-swapped control of 100 held-out two-object captions, through the public API."""
    held_out = two_object_items(100, 32, seed=1)
    pipeline = TextToImage(model)
    out = pipeline.generate([item["caption"] for item in held_out], seed=0, layouts=true_layouts(held_out))
    return binding_and_control(object_colours(out.images[:, 0], held_out), held_out)


def test_the_measure_is_right_on_real_images() -> None:
    items = two_object_items(50, 32, seed=1)
    images = torch.stack([item["image"] for item in items])
    assert binding_and_control(object_colours(images, items), items) == (1.0, 0.0)


@pytest.mark.slow
def test_each_object_takes_its_own_colour(tmp_path: Path) -> None:
    binding, control = held_out_binding(train_two_object_stage(tmp_path, phrase_grounding=True))
    assert binding - control >= MARGIN, f"binding {binding:.2f} vs colour-swapped control {control:.2f}"
