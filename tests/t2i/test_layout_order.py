"""Training order of objects: first mention in the caption, by colour + name, else name, else area order."""

from __future__ import annotations

import torch

from t2i.models.layout.order import mention_order, order_by_mention

NAMES = ["<pad>", "circle", "square", "triangle"]


def test_mention_order_prefers_colour_and_name_then_name_then_given_order() -> None:
    caption = "a red circle to the left of a blue circle; a green square above the blue circle"
    # Given (area) order: blue circle, green square, red circle.
    assert mention_order(caption, ["circle", "square", "circle"], ["blue", "green", "red"]) == [2, 0, 1]
    # Without colours both circles match "circle" at the same place and keep their order.
    assert mention_order(caption, ["circle", "square", "circle"], ["", "", ""]) == [0, 2, 1]
    # A never-mentioned object goes last; case does not matter.
    assert mention_order("A Dog on a couch", ["person", "couch", "dog"], ["", "", ""]) == [2, 1, 0]


def test_order_by_mention_permutes_real_objects_only() -> None:
    labels = torch.tensor([[2, 1, 0], [3, 0, 0]])
    boxes = torch.arange(24, dtype=torch.float32).view(2, 3, 4)
    object_mask = labels > 0
    captions = ["a red circle left of a blue square", "a triangle"]
    colors = [["blue", "red"], ["green"]]
    new_labels, new_boxes = order_by_mention(captions, labels, boxes, object_mask, colors, NAMES)
    assert new_labels.tolist() == [[1, 2, 0], [3, 0, 0]]
    assert torch.equal(new_boxes[0, 0], boxes[0, 1]) and torch.equal(new_boxes[0, 1], boxes[0, 0])
    assert torch.equal(new_boxes[1], boxes[1]) and torch.equal(new_boxes[0, 2], boxes[0, 2])
