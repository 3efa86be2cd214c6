"""The order in which the box generator learns to emit a layout's objects.

Obj-GAN trains on objects sorted by area, largest first. Spatial words then predict nothing on their
own: in "a circle left of a square" the largest object is the circle or the square with equal odds,
so "left" moves the second-emitted object left or right depending on which came first, an
interaction (a parity) that gradient descent finds only after a long plateau. Emitting objects in
the order the caption mentions them makes each word a first-order cue (the second object of
"X left of Y" is to the right of the first). The mask generator still reads a sampled layout largest
first, as it is trained; `LayoutGAN.generate_layouts` returns the objects in the order drawn.

`mention_order` finds each object's first mention by "<colour> <class name>" when the object has a
colour attribute (shapes-scenes), else by its class name (COCO names often appear verbatim:
"a dog on a couch"); objects never mentioned follow in their given (area) order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from torch import Tensor


def mention_order(caption: str, names: Sequence[str], colors: Sequence[str]) -> list[int]:
    """Object indices sorted by first mention in `caption` (case-insensitive), unmentioned last.

    Ties (the same name mentioned once for several objects) and unmentioned objects keep their
    given order.
    """
    text = caption.lower()
    unmentioned = len(text) + 1

    def first_mention(i: int) -> int:
        phrases = ([f"{colors[i]} {names[i]}"] if colors[i] else []) + [names[i]]
        for phrase in phrases:
            found = re.search(rf"\b{re.escape(phrase.lower())}", text)
            if found:
                return found.start()
        return unmentioned

    return sorted(range(len(names)), key=lambda i: (first_mention(i), i))


def mention_permutation(
    captions: Sequence[str],
    labels: Tensor,
    object_mask: Tensor,
    colors: Sequence[Sequence[str]],
    class_names: Sequence[str],
) -> Tensor:
    """Slot order (B, N) long, on the CPU, that puts each row's real objects (a prefix) in mention order.

    It reads labels (B, N) and object_mask (B, N): call it on the host batch (LayoutGAN's
    `on_before_batch_transfer`), where that waits for no device.
    """
    labels, object_mask = labels.cpu(), object_mask.cpu()
    order = torch.arange(labels.shape[1]).repeat(labels.shape[0], 1)
    for b, caption in enumerate(captions):
        n = int(object_mask[b].sum())
        names = [class_names[int(label)] for label in labels[b, :n]]
        order[b, :n] = torch.tensor(mention_order(caption, names, list(colors[b])[:n]) if n else [])
    return order


def apply_order(labels: Tensor, boxes: Tensor, order: Tensor) -> tuple[Tensor, Tensor]:
    """Labels (B, N) and boxes (B, N, 4) with their slots permuted by `order` (B, N) (on their device)."""
    return labels.gather(1, order), boxes.gather(1, order[..., None].expand_as(boxes))


def order_by_mention(
    captions: Sequence[str],
    labels: Tensor,
    boxes: Tensor,
    object_mask: Tensor,
    colors: Sequence[Sequence[str]],
    class_names: Sequence[str],
) -> tuple[Tensor, Tensor]:
    """Labels (B, N) and boxes (B, N, 4) with each row's real objects (a prefix) in mention order."""
    order = mention_permutation(captions, labels, object_mask, colors, class_names)
    return apply_order(labels, boxes, order.to(labels.device))
