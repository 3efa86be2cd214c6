"""`Box`: one object of a layout, the public layout type of `t2i` (docs/python_api.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from ganforge.errors import UserError
from ganforge.media import LabeledBox

_EDGE_TOLERANCE = 1e-4  # float rounding of x + w past the image border


@dataclass
class Box:
    """A labelled box with an optional shape mask.

    label: class name.
    x, y: top-left corner; w, h: width and height; all normalised by the image side, as in
        COCO's [x, y, w, h] divided by the image width and height.
    mask: (M, M) float in [0, 1] in the box's own frame (stretched over the box when pasted, see
        `t2i.models.layout.mask_generator.paste_masks`), or None for a plain box.
    """

    label: str
    x: float
    y: float
    w: float
    h: float
    mask: Tensor | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name in ("x", "y", "w", "h"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise UserError(f"Box {self.label!r}: {name}={value}; expected a fraction in [0, 1]")
        if self.w <= 0 or self.h <= 0:
            raise UserError(f"Box {self.label!r}: w={self.w}, h={self.h}; expected both > 0")
        if self.x + self.w > 1 + _EDGE_TOLERANCE or self.y + self.h > 1 + _EDGE_TOLERANCE:
            raise UserError(
                f"Box {self.label!r}: x + w = {self.x + self.w:.4f}, y + h = {self.y + self.h:.4f}; "
                "the box must lie inside the image (<= 1)"
            )
        if self.mask is not None and (self.mask.dim() != 2 or self.mask.shape[0] != self.mask.shape[1]):
            raise UserError(f"Box {self.label!r}: mask shape {tuple(self.mask.shape)}; expected (M, M)")

    @property
    def area(self) -> float:
        """w * h, as a fraction of the image area."""
        return self.w * self.h

    def labeled(self) -> LabeledBox:
        """The box without its mask, as the media type the loggers draw."""
        return LabeledBox(self.label, self.x, self.y, self.w, self.h)


def boxes_from_tensors(
    labels: Tensor,
    boxes: Tensor,
    object_mask: Tensor,
    class_names: list[str],
    masks: Tensor | None = None,
) -> list[Box]:
    """The real objects of one layout as `Box`es, in their tensor order.

    Args:
        labels: (N,) class index into `class_names` (0 is padding).
        boxes: (N, 4) normalised (x, y, w, h), top-left corner.
        object_mask: (N,) bool, True for real objects.
        class_names: names by class index.
        masks: (N, M, M) box-frame masks in [0, 1], or None.
    """
    out = []
    boxes = boxes.detach().float().cpu().clamp(0, 1)
    for n in torch.nonzero(object_mask.cpu()).flatten().tolist():
        x, y, w, h = boxes[n].tolist()
        w, h = min(w, 1 - x), min(h, 1 - y)
        mask = None if masks is None else masks[n].detach().float().cpu()
        out.append(Box(class_names[int(labels[n])], x, y, w, h, mask))
    return out
