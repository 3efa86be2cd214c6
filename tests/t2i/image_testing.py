"""Helpers for the image-stage tests: a tiny random CLIP on disk and in-memory shapes items."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from t2i.clip_model import build_clip, save_clip
from t2i.data.shapes import COLORS, SHAPES, SIZES, SceneObject, caption_scene, object_mask, render_scene
from t2i.layout_stage import LayoutGAN

CONTEXT = 32
CLASSES = ["circle", "square", "triangle", "diamond"]
TEXT = {"text_embed_dim": 32, "text_context_length": 32, "text_width": 64, "text_layers": 1}  # tiny tower
TINY_IMAGE = {  # ImageGAN sizes of the pipeline tests: 32 px, a few channels
    "image_size": 32,
    "g_widths": [32, 16, 16, 8],
    "d_widths": [8, 16],
    "object_widths": [8, 8, 8],
    "latent_dim": 16,
    "class_dim": 16,
    "context_dim": 16,
}


def save_stage(module: torch.nn.Module, path: Path, hparams: dict | None = None) -> Path:
    """A GANModule checkpoint as Lightning writes it: state dict, hyper-parameters (the module's unless
    given), ganforge header."""
    hparams = dict(module.hparams) if hparams is None else hparams
    ckpt = {"state_dict": module.state_dict(), "hyper_parameters": hparams}
    module.on_save_checkpoint(ckpt)
    torch.save(ckpt, path)
    return path


def save_tiny_layout_stage(path: Path) -> Path:
    """An untrained tiny layout stage (CLASSES, the TEXT tower, at most 3 boxes) saved as a checkpoint."""
    layout = LayoutGAN(
        CLASSES, max_objects=3, box_hidden=32, box_layers=1, box_heads=2, shape_hidden=32, **TEXT
    )
    return save_stage(layout, path)


def tiny_pipeline(folder: Path) -> dict[str, Path]:
    """Untrained tiny layout + image stages, a 40 + 10 image shapes set (32 px) and a judge CLIP in `folder`.

    Returns paths: ckpt (the image stage, naming its layout stage), data, conditioning_clip, judge_clip.
    """
    from t2i.data.shapes import ShapesSpec, render_shapes
    from t2i.image_stage import ImageGAN

    torch.manual_seed(0)
    conditioning = write_tiny_clip(folder / "conditioning_clip.pt", seed=0)
    save_tiny_layout_stage(folder / "layout.ckpt")
    image = ImageGAN(
        CLASSES, clip_path=str(conditioning), **TINY_IMAGE, layout_checkpoint=str(folder / "layout.ckpt")
    )
    render_shapes(folder / "shapes", ShapesSpec(train=40, val=10, size=32, seed=0))
    return {
        "ckpt": save_stage(image, folder / "image.ckpt"),
        "data": folder / "shapes",
        "conditioning_clip": conditioning,
        "judge_clip": write_tiny_clip(folder / "judge_clip.pt", seed=1),
    }


def write_tiny_clip(path: Path, seed: int = 0) -> Path:
    """A random CLIP (text width 64, 2 layers, D = 32) saved where `clip.load` reads it."""
    torch.manual_seed(seed)
    model = build_clip(
        embed_dim=32,
        image_resolution=32,
        vision_width=8,
        vision_layers=[1, 1, 1, 1],
        vision_patch_size=None,
        context_length=CONTEXT,
        text_width=64,
        text_layers=2,
    )
    return save_clip(model, path)


def quiet_mask(obj: SceneObject, size: int) -> np.ndarray:
    """`object_mask` without pycocotools' numpy-2 DeprecationWarning (one per call)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return object_mask(obj, size)


def single_object_items(count: int, size: int, seed: int) -> list[dict]:
    """`count` dataset items (as `CocoLayoutDataset` gives them) of one shape each, in a random colour."""
    rng = np.random.default_rng(seed)
    items = []
    for index in range(count):
        shape, color = SHAPES[int(rng.integers(len(SHAPES)))], list(COLORS)[int(rng.integers(len(COLORS)))]
        size_name = ("small", "large")[int(rng.integers(2))]
        side = int(round(rng.uniform(*SIZES[size_name]) * size))
        x, y = (int(v) for v in rng.integers(1, size - side, size=2))
        obj = SceneObject(shape, color, size_name, (float(x), float(y), float(side), float(side)))
        image = np.asarray(render_scene([obj], size, rng))
        caption, _ = caption_scene([obj], [1], rng)
        items.append(
            {
                "image": torch.from_numpy(image.copy()).permute(2, 0, 1).float() / 255,
                "caption": caption,
                "captions": [caption],
                "boxes": torch.tensor([[x / size, y / size, side / size, side / size]]),
                "labels": torch.tensor([SHAPES.index(shape) + 1]),
                "masks": torch.from_numpy(quiet_mask(obj, size)).float()[None],
                "num_objects": 1,
                "image_id": index,
                "colors": [color],
                "relations": [],
            }
        )
    return items
