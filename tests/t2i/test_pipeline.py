"""TextToImage (docs/python_api.md): loading, generate with and without layouts, determinism, bad input."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from image_testing import CLASSES, TEXT, TINY_IMAGE, save_stage, save_tiny_layout_stage

from ganforge.checkpoint import CheckpointError
from t2i.image_stage import ImageGAN
from t2i.pipeline import Box, TextToImage

CAPTIONS = ["a red circle to the left of a blue square", "a small green triangle"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("t2i")
    torch.manual_seed(0)
    save_tiny_layout_stage(folder / "layout.ckpt")
    image = ImageGAN(
        CLASSES,
        **TINY_IMAGE,
        layout_checkpoint="layout.ckpt",  # relative: found next to the image checkpoint
        **TEXT,
    )
    # Untrained weights give near-constant images; perturb the EMA generator so layouts and noise show.
    with torch.no_grad():
        for p in image.ema.model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return {"image": save_stage(image, folder / "image.ckpt"), "layout": folder / "layout.ckpt"}


@pytest.fixture(scope="module")
def model(checkpoints: dict[str, Path]) -> TextToImage:
    return TextToImage.from_checkpoint(checkpoints["image"])


def test_generate_with_layout_stage_gives_images_and_box_layouts(model: TextToImage) -> None:
    out = model.generate(CAPTIONS, num_samples=3, seed=0)
    assert out.images.shape == (2, 3, 3, 32, 32) and out.images.dtype == torch.float32
    assert 0 <= out.images.min() and out.images.max() <= 1
    assert len(out.layouts) == 2 and all(len(per) == 3 for per in out.layouts)
    boxes = [box for per in out.layouts for layout in per for box in layout]
    assert boxes and all(isinstance(b, Box) and b.label in CLASSES for b in boxes)
    assert all(b.mask is not None and b.mask.dim() == 2 for b in boxes)


def test_generate_with_given_layouts_skips_the_layout_stage(model: TextToImage) -> None:
    left = [Box("circle", 0.05, 0.3, 0.35, 0.35)]
    right = [Box("circle", 0.6, 0.3, 0.35, 0.35)]
    model_layout, model.layout = model.layout, None  # prove the layout stage is not needed
    try:
        out = model.generate(["a red circle"] * 2, num_samples=2, seed=3, layouts=[left, right])
    finally:
        model.layout = model_layout
    assert out.images.shape == (2, 2, 3, 32, 32)
    assert out.layouts[0] == [left, left] and out.layouts[1] == [right, right]
    # Same caption and noise (seed) per sample index, different box: different images.
    assert (out.images[0] - out.images[1]).abs().amax(dim=(1, 2, 3)).min() > 0.05


def test_given_boxes_without_masks_get_shapes_from_the_layout_stage(model: TextToImage) -> None:
    mask = torch.ones(8, 8)
    given = [Box("circle", 0.1, 0.2, 0.3, 0.3), Box("square", 0.5, 0.5, 0.4, 0.4, mask=mask)]
    out = model.generate(["a red circle and a blue square"], num_samples=2, seed=4, layouts=[given])
    for layout in out.layouts[0]:
        shaped, kept = layout
        assert (shaped.label, shaped.x, shaped.y, shaped.w, shaped.h) == ("circle", 0.1, 0.2, 0.3, 0.3)
        assert shaped.mask is not None and shaped.mask.dim() == 2  # the shape generator's box-frame mask
        assert kept is given[1]  # a box that has a mask is used as given
    assert not torch.equal(out.layouts[0][0][0].mask, out.layouts[0][1][0].mask)  # per-sample shape noise
    again = model.generate(["a red circle and a blue square"], num_samples=2, seed=4, layouts=[given])
    assert torch.equal(out.images, again.images)


def test_per_sample_layouts_and_box_masks(model: TextToImage) -> None:
    mask = torch.zeros(8, 8)
    mask[2:6, 2:6] = 1.0
    per_sample = [[Box("square", 0.1, 0.1, 0.5, 0.5)], [Box("square", 0.1, 0.1, 0.5, 0.5, mask=mask)]]
    out = model.generate(["a yellow square"], num_samples=2, seed=0, layouts=[per_sample])
    assert out.layouts[0][1][0].mask is mask
    labels, boxes, masks, present = model.layout_tensors([per_sample[1], []])
    assert labels.tolist() == [[2], [0]] and present.tolist() == [[True], [False]]
    assert masks[0, 0].sum() == pytest.approx(0.25 * (0.5 * 32) ** 2, rel=0.2)  # the inner quarter
    assert masks[0, 0, :3].sum() == 0 and masks[1].sum() == 0


def test_generate_is_deterministic_per_seed(model: TextToImage) -> None:
    a, b = model.generate(CAPTIONS, num_samples=2, seed=7), model.generate(CAPTIONS, num_samples=2, seed=7)
    c = model.generate(CAPTIONS, num_samples=2, seed=8)
    assert torch.equal(a.images, b.images)
    assert [[[(x.label, x.x, x.y) for x in lay] for lay in per] for per in a.layouts] == [
        [[(x.label, x.x, x.y) for x in lay] for lay in per] for per in b.layouts
    ]
    assert not torch.equal(a.images, c.images)
    assert not torch.equal(a.images[0, 0], a.images[0, 1])  # each sample draws its own noise


def test_bundle_round_trip_and_pointer_override(
    model: TextToImage, checkpoints: dict, tmp_path: Path
) -> None:
    bundle = model.save(tmp_path / "t2i.ckpt")
    again = TextToImage.from_checkpoint(bundle)
    assert torch.equal(again.generate(CAPTIONS, seed=1).images, model.generate(CAPTIONS, seed=1).images)
    explicit = TextToImage.from_checkpoint(checkpoints["image"], layout_checkpoint=checkpoints["layout"])
    assert explicit.layout is not None


@pytest.mark.parametrize(
    ("captions", "error", "match"),
    [
        ("a red circle", TypeError, "list of str"),
        ([], ValueError, "empty"),
        (["a red circle", "   "], ValueError, "caption 1 is empty"),
        ([b"a red circle"], TypeError, "caption 0 is bytes"),
        (
            ["a red circle", b"\xff\xfe".decode("utf-8", "surrogateescape")],
            ValueError,
            "caption 1 is not valid UTF-8",
        ),
        ([3], TypeError, "caption 0 is int"),
    ],
)
def test_bad_captions_raise_one_clear_error(model: TextToImage, captions, error, match) -> None:
    with pytest.raises(error, match=match):
        model.generate(captions)


def test_overlong_caption_is_truncated_with_a_warning(model: TextToImage) -> None:
    long = "a red circle to the left of a blue square " * 20
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = model.generate([long], seed=0)
    assert out.images.shape == (1, 1, 3, 32, 32)
    assert any("truncated" in str(w.message) for w in caught)


def test_bad_layouts_and_checkpoints_raise_clear_errors(
    model: TextToImage, checkpoints: dict, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="'hexagon' is not a class"):
        model.generate(["a hexagon"], layouts=[[Box("hexagon", 0.1, 0.1, 0.2, 0.2)]])
    with pytest.raises(ValueError, match="layouts has 1 entries for 2 captions"):
        model.generate(CAPTIONS, layouts=[[Box("circle", 0.1, 0.1, 0.2, 0.2)]])
    with pytest.raises(TypeError, match=r"layouts\[0\] item 0 is tuple"):
        model.generate(["a circle"], layouts=[[("circle", 0.1, 0.1, 0.2, 0.2)]])
    with pytest.raises(ValueError, match="has 3 layouts for num_samples=2"):
        model.generate(["a circle"], num_samples=2, layouts=[[[], [], []]])
    with pytest.raises(ValueError, match="x=1.2"):
        Box("circle", 1.2, 0.1, 0.2, 0.2)
    no_layout = TextToImage(model.image)
    with pytest.raises(ValueError, match="no layout stage"):
        no_layout.generate(["a circle"])
    with pytest.raises(CheckpointError, match="t2i-layout"):
        TextToImage.from_checkpoint(checkpoints["layout"])
    with pytest.raises(CheckpointError, match="does not exist"):
        TextToImage.from_checkpoint(tmp_path / "missing.ckpt")
