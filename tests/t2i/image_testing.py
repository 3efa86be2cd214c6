"""Helpers for the image-stage tests: a tiny random CLIP on disk and in-memory shapes items."""

from __future__ import annotations

import warnings
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from t2i.data.coco import collate_layouts
from t2i.data.shapes_scenes import (
    COLORS,
    SHAPES,
    SIZES,
    SceneObject,
    caption_scene,
    object_mask,
    render_scene,
    sample_scene,
)
from t2i.image_stage import ImageGAN
from t2i.layout_stage import LayoutGAN
from t2i.models.clip_model import build_clip, save_clip
from t2i.models.layout.mask_generator import crop_masks
from t2i.models.layout.order import mention_order
from t2i.pipeline import Box

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


def learning_image_stage(clip: Path, **options: Any) -> ImageGAN:
    """The image stage of the learning tests (32 px, a few thousand parameters per block, no SN in G,
    Adam 3e-3, EMA 0.9); `options` override `ImageGAN` arguments."""
    settings: dict[str, Any] = {
        "image_size": 32,
        "clip_path": str(clip),
        "g_widths": [64, 32, 16, 16],
        "latent_dim": 32,
        "class_dim": 32,
        "context_dim": 32,
        "g_spectral_norm": False,
        "d_widths": [16, 32, 64],
        "object_widths": [32, 64, 64],
        "gan": ImageGAN.gan_options(
            g_lr=3e-3, d_lr=3e-3, g_betas=(0.0, 0.9), d_betas=(0.0, 0.9), ema_decay=0.9
        ),
    }
    return ImageGAN(list(SHAPES), **(settings | options))


def fit_on_items(model: ImageGAN, items: list[dict], max_objects: int, steps: int) -> ImageGAN:
    """`model` trained for `steps` generator steps on dataset items, batches of 32, no logs."""
    loader = DataLoader(
        items,
        batch_size=32,
        shuffle=True,
        drop_last=True,
        collate_fn=partial(collate_layouts, max_objects=max_objects),
    )
    trainer = pl.Trainer(
        max_steps=steps,
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, loader)
    return model


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
    from t2i.data.shapes_scenes import ShapesSpec, render_shapes

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


def write_tiny_clip(path: Path, seed: int = 0, context_length: int = CONTEXT, text_layers: int = 2) -> Path:
    """A random CLIP (text width 64, `text_layers` layers, context L = `context_length`, D = 32) saved
    where `clip.load` reads it."""
    torch.manual_seed(seed)
    model = build_clip(
        embed_dim=32,
        image_resolution=32,
        vision_width=8,
        vision_layers=[1, 1, 1, 1],
        vision_patch_size=None,
        context_length=context_length,
        text_width=64,
        text_layers=text_layers,
    )
    return save_clip(model, path)


def quiet_mask(obj: SceneObject, size: int) -> np.ndarray:
    """`object_mask` without pycocotools' numpy-2 DeprecationWarning (one per call)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return object_mask(obj, size)


def scene_item(objects: list[SceneObject], size: int, rng: np.random.Generator, index: int) -> dict:
    """One dataset item (as `CocoLayoutDataset` gives it) of `objects`, rendered and captioned."""
    image = np.asarray(render_scene(objects, size, rng))
    caption, _ = caption_scene(objects, list(range(1, len(objects) + 1)), rng)
    return {
        "image": torch.from_numpy(image.copy()).permute(2, 0, 1).float() / 255,
        "caption": caption,
        "captions": [caption],
        "boxes": torch.tensor([[v / size for v in obj.box] for obj in objects]),
        "labels": torch.tensor([SHAPES.index(obj.shape) + 1 for obj in objects]),
        "masks": torch.stack([torch.from_numpy(quiet_mask(obj, size)).float() for obj in objects]),
        "num_objects": len(objects),
        "image_id": index,
        "colors": [obj.color for obj in objects],
        "relations": [],
    }


def single_object_items(count: int, size: int, seed: int) -> list[dict]:
    """`count` dataset items of one shape each, in a random colour."""
    rng = np.random.default_rng(seed)
    items = []
    for index in range(count):
        shape, color = SHAPES[int(rng.integers(len(SHAPES)))], list(COLORS)[int(rng.integers(len(COLORS)))]
        size_name = ("small", "large")[int(rng.integers(2))]
        side = int(round(rng.uniform(*SIZES[size_name]) * size))
        x, y = (int(v) for v in rng.integers(1, size - side, size=2))
        obj = SceneObject(shape, color, size_name, (float(x), float(y), float(side), float(side)))
        items.append(scene_item([obj], size, rng, index))
    return items


def two_object_items(count: int, size: int, seed: int) -> list[dict]:
    """`count` dataset items of two objects in different colours (shapes-scenes layouts and captions;
    a quarter of them two objects of one shape)."""
    rng = np.random.default_rng(seed)
    items: list[dict] = []
    while len(items) < count:
        objects = sample_scene(rng, size)
        if len(objects) == 2 and objects[0].color != objects[1].color:
            items.append(scene_item(objects, size, rng, len(items)))
    return items


def object_colours(images: torch.Tensor, items: list[dict]) -> list[list[str]]:
    """Per image (K, 3, H, W), the palette colour nearest the mean inside each object's mask."""
    palette = torch.tensor(list(COLORS.values()), dtype=torch.float32) / 255
    names = []
    for image, item in zip(images, items):
        masks = item["masks"][:, None]  # (N, 1, H, W)
        mean = (image[None] * masks).sum((2, 3)) / masks.sum((2, 3))  # (N, 3)
        names.append([list(COLORS)[i] for i in torch.cdist(mean, palette).argmin(1).tolist()])
    return names


def true_layouts(items: list[dict]) -> list[list[Box]]:
    """Each item's true layout (boxes and 16x16 box-frame shapes) for `TextToImage.generate`, objects in
    the caption's mention order, as the layout stage draws them."""
    layouts = []
    for item in items:
        shapes = crop_masks(item["masks"][None], item["boxes"][None], 16)[0]
        names = [SHAPES[int(label) - 1] for label in item["labels"]]
        boxes = [Box(names[n], *item["boxes"][n].tolist(), mask=shapes[n]) for n in range(len(names))]
        layouts.append([boxes[n] for n in mention_order(item["caption"], names, item["colors"])])
    return layouts
