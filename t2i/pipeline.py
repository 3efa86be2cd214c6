"""`TextToImage`: caption -> layout (layout stage) -> image (image stage); the t2i API of docs/python_api.md.

    from t2i import TextToImage, Box
    m = TextToImage.from_checkpoint("t2i.ckpt", device="cpu")
    g = m.generate(["a red circle to the left of a blue square"], num_samples=2, seed=0)
    g.images    # (B, S, 3, H, W) float in [0, 1]
    g.layouts   # list (B) of list (S) of list[Box]
    m.generate(captions, layouts=[[Box("circle", 0.1, 0.4, 0.3, 0.3)]])   # skips the layout stage

`from_checkpoint` reads, with `weights_only=True`:
- a bundle written by `TextToImage.save` (family "t2i": image stage, layout stage and both text
  towers in one file), or
- an image-stage checkpoint (family "t2i-image"), which holds its text tower and points to its layout
  stage through the `layout_checkpoint` hyper-parameter (or the `layout_checkpoint` argument).
The image generator used is the EMA one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ganforge.checkpoint import (
    CheckpointError,
    atomic_torch_save,
    load_checkpoint,
    read_header,
    restore,
    stamp_header,
)
from ganforge.devices import DEFAULT_DEVICE, resolve_device
from ganforge.errors import UserError, UserTypeError
from t2i.image_stage import ImageGAN
from t2i.layout_stage import LayoutGAN
from t2i.models.layout import Box, SampledBoxes
from t2i.models.layout.mask_generator import box_indicator, paste_masks

__all__ = ["Box", "Generation", "TextToImage"]

BUNDLE_FAMILY = "t2i"
RENDER_CHUNK = 64  # images rendered per generator call, bounding memory for large B * S


@dataclass
class Generation:
    """Output of `TextToImage.generate`.

    images: (B, S, 3, H, W) float in [0, 1].
    layouts: list (B) of list (S) of list[Box], the layout each image was drawn from.
    """

    images: Tensor
    layouts: list[list[list[Box]]]


def check_captions(captions: Any) -> list[str]:
    """`captions` as a list of non-empty UTF-8 str, or a TypeError / ValueError naming the bad one.

    Over-long captions are not an error: the tokenizer keeps the first context-length tokens and
    warns (see `t2i.models.clip_model.tokenize`).
    """
    if isinstance(captions, (str, bytes)) or not isinstance(captions, (list, tuple)):
        raise UserTypeError(
            f"captions must be a list of str, got {type(captions).__name__}; wrap one caption in [...]"
        )
    if not captions:
        raise UserError("captions is empty; expected at least one caption")
    for i, caption in enumerate(captions):
        if isinstance(caption, (bytes, bytearray)):
            raise UserTypeError(f"caption {i} is {type(caption).__name__}; decode it to str first (UTF-8)")
        if not isinstance(caption, str):
            raise UserTypeError(f"caption {i} is {type(caption).__name__}; expected str")
        if not caption.strip():
            raise UserError(f"caption {i} is empty; expected some words")
        try:
            caption.encode("utf-8")
        except UnicodeEncodeError as err:
            raise UserError(
                f"caption {i} is not valid UTF-8 text ({err.reason} at character {err.start}); "
                "pass captions decoded from UTF-8"
            ) from None
    return list(captions)


def _layouts_per_sample(layouts: Any, batch: int, samples: int) -> list[list[Box]]:
    """Given layouts as list (B) of list[Box] (shared by the S samples) or of S such lists -> flat (B*S)."""
    if not isinstance(layouts, (list, tuple)) or len(layouts) != batch:
        count = len(layouts) if isinstance(layouts, (list, tuple)) else type(layouts).__name__
        raise UserError(f"layouts has {count} entries for {batch} captions; expected one layout per caption")
    flat = []
    for b, layout in enumerate(layouts):
        if not isinstance(layout, (list, tuple)):
            raise UserTypeError(f"layouts[{b}] is {type(layout).__name__}; expected a list of Box")
        per_sample = len(layout) > 0 and all(
            isinstance(item, (list, tuple)) and all(isinstance(box, Box) for box in item) for item in layout
        )
        if per_sample and len(layout) != samples:
            raise UserError(f"layouts[{b}] has {len(layout)} layouts for num_samples={samples}")
        for s in range(samples):
            boxes = layout[s] if per_sample else layout
            for n, box in enumerate(boxes):
                if not isinstance(box, Box):
                    raise UserTypeError(f"layouts[{b}] item {n} is {type(box).__name__}; expected t2i Box")
            flat.append(list(boxes))
    return flat


class TextToImage:
    """Text-to-image with Obj-GAN's two stages: layout (boxes + shapes) then image.

    Args:
        image: the image stage; its EMA generator and frozen text tower are used.
        layout: the layout stage, or None (then `generate` needs `layouts`).
    """

    def __init__(self, image: ImageGAN, layout: LayoutGAN | None = None) -> None:
        self.image = image.eval().requires_grad_(False)
        self.layout = None if layout is None else layout.eval().requires_grad_(False)
        if layout is not None and list(layout.class_names) != list(image.class_names):
            raise UserError(
                f"layout stage classes {layout.class_names[1:]} differ from the image stage's "
                f"{image.class_names[1:]}"
            )

    @property
    def device(self) -> torch.device:
        return self.image.device

    @property
    def class_names(self) -> list[str]:
        """Object classes a `Box.label` may name."""
        return list(self.image.class_names[1:])

    @property
    def image_size(self) -> int:
        return self.image.generator.image_size

    # ------------------------------------------------------------------ loading and saving
    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        device: str | torch.device = DEFAULT_DEVICE,
        layout_checkpoint: str | os.PathLike | None = None,
    ) -> TextToImage:
        """Load a bundle (`save`) or an image-stage checkpoint plus its layout stage, weights only.

        `device`: "auto" (the default: cuda when available, else cpu), "cpu", "cuda:1", ...

        `layout_checkpoint` overrides the image stage's `layout_checkpoint` hyper-parameter; a
        relative path there is tried from the working directory, then from the checkpoint's folder.
        Without any layout stage the model still generates from given layouts.
        """
        ckpt = load_checkpoint(path)
        family = read_header(ckpt).get("family")
        if family == BUNDLE_FAMILY:
            image = restore(ImageGAN, ckpt["image"], path)
            layout = None if ckpt.get("layout") is None else restore(LayoutGAN, ckpt["layout"], path)
            if layout_checkpoint is not None:
                layout = restore(
                    LayoutGAN, load_checkpoint(layout_checkpoint, LayoutGAN.family), layout_checkpoint
                )
        elif family == ImageGAN.family:
            image = restore(ImageGAN, ckpt, path)
            pointer = layout_checkpoint or image.hparams.get("layout_checkpoint")
            layout = None
            if pointer is not None:
                found = _resolve(pointer, Path(path).parent)
                layout = restore(LayoutGAN, load_checkpoint(found, LayoutGAN.family), found)
        else:
            raise CheckpointError(
                f"checkpoint '{path}' is a {family!r} checkpoint; expected a t2i bundle or an image-stage "
                "(t2i-image) checkpoint"
            )
        model = cls(image, layout)
        model.to(resolve_device(device))
        return model

    def to(self, device: str | torch.device) -> TextToImage:
        """Move both stages to `device`; returns self."""
        self.image.to(device)
        if self.layout is not None:
            self.layout.to(device)
        return self

    def save(self, path: str | os.PathLike) -> Path:
        """Write a single-file bundle (both stages, weights and hyper-parameters) atomically."""
        bundle = {
            "image": _stage_state(self.image),
            "layout": None if self.layout is None else _stage_state(self.layout),
        }
        stamp_header(bundle, BUNDLE_FAMILY)
        atomic_torch_save(bundle, path)
        return Path(path)

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(
        self,
        captions: list[str],
        num_samples: int = 1,
        seed: int = 0,
        layouts: list[list[Box]] | list[list[list[Box]]] | None = None,
    ) -> Generation:
        """Images for captions (B): (B, S, 3, H, W) in [0, 1], and the layout behind each image.

        Args:
            captions: B non-empty str; a caption longer than the text tower's context is truncated
                with a warning.
            num_samples: S images per caption, each with its own noise (and its own layout when
                the layout stage draws them).
            seed: the same seed, captions and layouts give the same images.
            layouts: per caption a list of `Box` (shared by its S samples) or S such lists; given,
                the box generator is skipped. A box without a mask gets its shape from the layout
                stage's shape generator (Obj-GAN's ground-truth-box protocol), or is filled when
                the model has no layout stage; the returned layouts hold the masks used.
        """
        captions = check_captions(captions)
        if not isinstance(num_samples, int) or num_samples < 1:
            raise UserError(f"num_samples={num_samples!r}; expected an int >= 1")
        batch = len(captions)
        flat_captions = [c for c in captions for _ in range(num_samples)]
        layout_rng = (
            None if self.layout is None else torch.Generator(device=self.layout.device).manual_seed(seed)
        )
        if layouts is not None:
            flat_layouts = _layouts_per_sample(layouts, batch, num_samples)
            flat_layouts = self.complete_shapes(flat_captions, flat_layouts, layout_rng)
        elif self.layout is None:
            raise UserError(
                "this model has no layout stage; pass layouts=... or load it with layout_checkpoint=PATH"
            )
        else:
            flat_layouts = self.layout.generate_layouts(flat_captions, rng=layout_rng)
        z_rng = torch.Generator().manual_seed(seed)
        z = torch.randn(len(flat_captions), self.image.generator.latent_dim, generator=z_rng)
        images = torch.cat(
            [
                self.render(
                    flat_captions[i : i + RENDER_CHUNK],
                    flat_layouts[i : i + RENDER_CHUNK],
                    z[i : i + RENDER_CHUNK],
                )
                for i in range(0, len(flat_captions), RENDER_CHUNK)
            ]
        )
        grouped = [flat_layouts[b * num_samples : (b + 1) * num_samples] for b in range(batch)]
        return Generation(images.view(batch, num_samples, *images.shape[1:]).cpu(), grouped)

    def complete_shapes(
        self, captions: list[str], layouts: list[list[Box]], rng: torch.Generator | None
    ) -> list[list[Box]]:
        """`layouts` with a shape-generator mask on every box that has none (needs the layout stage)."""
        if self.layout is None or all(box.mask is not None for layout in layouts for box in layout):
            return layouts
        net = self.layout.ema.model
        labels, boxes, present = (t.to(self.layout.device) for t in self.box_tensors(layouts))
        sampled = SampledBoxes(labels, boxes, present)
        masks = net.masks(net.encode(captions), sampled, net.noise(sampled, rng)).cpu()  # (K, N, M, M)
        return [
            [box if box.mask is not None else replace(box, mask=masks[k, n]) for n, box in enumerate(layout)]
            for k, layout in enumerate(layouts)
        ]

    def box_tensors(self, layouts: list[list[Box]]) -> tuple[Tensor, Tensor, Tensor]:
        """labels (K, N), boxes (K, N, 4) and object_mask (K, N) of K layouts; N the largest (at least 1)."""
        names = self.image.class_names
        count = max(1, max(len(layout) for layout in layouts))
        # Python lists, one tensor each at the end: per-element tensor writes cost ~50 us a box.
        label_rows = [[0] * count for _ in layouts]
        box_rows = [[[0.0] * 4 for _ in range(count)] for _ in layouts]
        for k, layout in enumerate(layouts):
            for n, box in enumerate(layout):
                if box.label not in names[1:]:
                    raise UserError(
                        f"Box label {box.label!r} is not a class of this model; expected one of {names[1:]}"
                    )
                label_rows[k][n] = names.index(box.label)
                box_rows[k][n] = [float(box.x), float(box.y), float(box.w), float(box.h)]
        labels = torch.tensor(label_rows, dtype=torch.long)
        return labels, torch.tensor(box_rows, dtype=torch.float32), labels > 0

    def layout_tensors(self, layouts: list[list[Box]]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """labels (K, N), boxes (K, N, 4), masks (K, N, H, W) and object_mask (K, N) of K layouts.

        N is the largest layout (at least 1); a box without a mask is filled, a box-frame mask is
        pasted over its box.
        """
        labels, boxes, present = self.box_tensors(layouts)
        size = self.image_size
        # Every box filled in one call (padding slots zeroed); given masks are pasted over below.
        masks = box_indicator(boxes, size, size) * present[..., None, None]
        for k, layout in enumerate(layouts):
            for n, box in enumerate(layout):
                if box.mask is not None:
                    frame = box.mask.float().cpu()[None, None]
                    masks[k, n] = paste_masks(frame, boxes[k, n][None, None], size, size)[0, 0]
        return labels, boxes, masks, present

    def render(self, captions: list[str], layouts: list[list[Box]], z: Tensor) -> Tensor:
        """Images (K, 3, H, W) in [0, 1] from the EMA generator for K captions, layouts and noise (K, Z)."""
        labels, boxes, masks, present = (t.to(self.device) for t in self.layout_tensors(layouts))
        text = self.image.encode(captions)
        phrases = self.image.phrase_features(captions, labels, present)
        return self.image.ema.model(z.to(self.device), text, labels, masks, present, phrases)[-1].clamp(0, 1)


def _stage_state(module: torch.nn.Module) -> dict[str, Any]:
    """A stage's hyper-parameters (plain data) and CPU state dict, as a Lightning checkpoint holds them."""
    return {
        "hyper_parameters": dict(module.hparams),
        "state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()},
    }


def _resolve(pointer: str | os.PathLike, base: Path) -> Path:
    """`pointer` as given if it exists, else relative to `base` (the image checkpoint's folder)."""
    path = Path(pointer)
    if path.exists() or path.is_absolute():
        return path
    return base / path
