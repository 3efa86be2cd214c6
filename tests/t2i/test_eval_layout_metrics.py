"""Layout metrics against hand-worked layouts: object sets, relations with repeated classes, sizes, IoU."""

from __future__ import annotations

import math

import torch

from t2i.eval.layout_metrics import (
    SMALL_LARGE_SIDE,
    LayoutAccuracy,
    caption_sizes,
    mask_iou,
    score_layout,
    size_word,
)

CIRCLE, SQUARE, TRIANGLE = 1, 2, 3
LEFT = (0.05, 0.4, 0.2, 0.2)  # centre x 0.15
MIDDLE = (0.4, 0.4, 0.2, 0.2)  # centre x 0.5
RIGHT = (0.7, 0.4, 0.2, 0.2)  # centre x 0.8
TOP = (0.4, 0.05, 0.2, 0.2)  # centre y 0.15


def test_relations_are_judged_by_predicted_centres() -> None:
    truth, relations = [CIRCLE, SQUARE], [(0, "left of", 1)]
    good = score_layout([SQUARE, CIRCLE], [RIGHT, LEFT], truth, relations)
    assert good.object_set_correct and (good.relations_satisfied, good.relations_total) == (1, 1)
    bad = score_layout([SQUARE, CIRCLE], [LEFT, RIGHT], truth, relations)
    assert bad.object_set_correct and bad.relations_satisfied == 0
    above = score_layout([CIRCLE, SQUARE], [TOP, MIDDLE], truth, [(0, "above", 1), (1, "below", 0)])
    assert above.relations_satisfied == 2


def test_repeated_class_takes_the_best_colouring_and_unique_subset_excludes_it() -> None:
    # "a red circle left of a blue circle; a green square above the blue circle"
    truth = [CIRCLE, CIRCLE, SQUARE]
    relations = [(0, "left of", 1), (2, "above", 1)]
    # Predicted circles at LEFT and MIDDLE, square at TOP (above MIDDLE): the colouring
    # red = LEFT, blue = MIDDLE satisfies both relations.
    score = score_layout([CIRCLE, CIRCLE, SQUARE], [MIDDLE, LEFT, TOP], truth, relations)
    assert (score.relations_satisfied, score.relations_total) == (2, 2)
    assert score.unique_relations_total == 0  # every relation involves a repeated class
    # Square below both circles: no colouring satisfies "above", one satisfies "left of".
    square_low = (0.4, 0.75, 0.2, 0.2)
    score = score_layout([CIRCLE, CIRCLE, SQUARE], [MIDDLE, LEFT, square_low], truth, relations)
    assert score.relations_satisfied == 1


def test_missing_and_extra_objects() -> None:
    truth, relations = [CIRCLE, SQUARE], [(0, "left of", 1)]
    missing = score_layout([CIRCLE], [LEFT], truth, relations)
    assert not missing.object_set_correct and missing.relations_satisfied == 0
    extra = score_layout([CIRCLE, SQUARE, TRIANGLE], [LEFT, RIGHT, TOP], truth, relations)
    assert not extra.object_set_correct and extra.relations_satisfied == 1
    assert (extra.unique_relations_satisfied, extra.unique_relations_total) == (1, 1)
    doubled = score_layout([CIRCLE, CIRCLE, SQUARE], [LEFT, RIGHT, MIDDLE], truth, relations)
    assert not doubled.object_set_correct and doubled.relations_satisfied == 1  # the LEFT circle


def test_sizes_from_captions_and_boxes() -> None:
    names, colors = ["circle", "square", "circle"], ["red", "blue", "green"]
    caption = "a small red circle to the left of a blue square, and a large green circle above the square"
    assert caption_sizes(caption, colors, names) == ["small", None, "large"]
    assert caption_sizes("a red circle", [""], ["circle"]) == [None]  # no colour attribute (COCO)
    side = SMALL_LARGE_SIDE
    assert size_word((0, 0, side - 0.01, side - 0.01)) == "small"
    assert size_word((0, 0, side + 0.01, side + 0.01)) == "large"
    small, large = (0.1, 0.1, 0.2, 0.2), (0.5, 0.5, 0.35, 0.35)
    right = score_layout([CIRCLE, CIRCLE], [large, small], [CIRCLE, CIRCLE], [], ["small", "large"])
    assert (right.sizes_correct, right.sizes_total) == (2, 2)  # matched by size when nothing else decides
    wrong = score_layout([CIRCLE, CIRCLE], [large, large], [CIRCLE, CIRCLE], [], ["small", "large"])
    assert (wrong.sizes_correct, wrong.sizes_total) == (1, 2)


def test_mask_iou_by_hand() -> None:
    pred = torch.zeros(3, 4, 4)
    target = torch.zeros(3, 4, 4)
    pred[0, :2, :2] = 1  # 4 px
    target[0, :2, :] = 1  # 8 px, overlap 4 -> IoU 0.5
    pred[1, 0, 0] = 0.4  # below the threshold: empty vs empty -> 1
    target[2, 3, 3] = 1  # empty vs one pixel -> 0
    torch.testing.assert_close(mask_iou(pred, target), torch.tensor([0.5, 1.0, 0.0]))


def test_accumulator_ratios_and_nan_when_unseen() -> None:
    metric = LayoutAccuracy()
    truth, relations = [CIRCLE, SQUARE], [(0, "left of", 1)]
    metric.update([score_layout([CIRCLE, SQUARE], [LEFT, RIGHT], truth, relations)])
    metric.update([score_layout([CIRCLE], [RIGHT], truth, relations)], ious=torch.tensor([0.5, 1.0]))
    values = metric.compute()
    assert values["object_set_accuracy"] == 0.5 and values["relation_accuracy"] == 0.5
    assert values["mask_iou"] == 0.75
    assert math.isnan(values["size_accuracy"])
