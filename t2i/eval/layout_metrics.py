"""Layout metrics: does a predicted layout (classes + boxes) agree with its caption? And mask IoU.

For each caption, with its true objects (classes), its recorded relations ("subject left of
object", shapes-scenes `relations`) and the sizes it states ("a small red circle"):
- object-set accuracy: the predicted multiset of classes equals the true one;
- relation accuracy: the fraction of captioned relations satisfied by predicted box centres
  (`t2i.data.relation_holds`);
- size accuracy: the fraction of stated sizes respected by the matched predicted boxes
  (a box side sqrt(w h) below `SMALL_LARGE_SIDE` is "small").

A layout has classes but no colours, so a caption object is matched to a predicted object of the
same class; when a class occurs several times ("a red circle left of a blue circle") the match is
the one-to-one assignment that satisfies the most relations and sizes, i.e. a layout counts as
right when *some* colouring of it makes the caption true. `relation_accuracy_unique` keeps only
the relations whose two objects are the only ones of their class in the caption, where no such
choice exists. A caption object with no predicted object of its class fails its relations.

`mask_iou` compares predicted object masks with ground truth (layouts drawn on ground-truth boxes).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torchmetrics import Metric

from t2i.data.shapes_scenes import SIZES, relation_holds

# Shapes-scenes sides: small in [0.18, 0.24], large in [0.32, 0.40] of the image; split in the gap.
SMALL_LARGE_SIDE = (SIZES["small"][1] + SIZES["large"][0]) / 2

Relation = tuple[int, str, int]  # (subject index, predicate, object index) into the true objects
BoxTuple = Sequence[float]  # normalised (x, y, w, h)


@dataclass
class LayoutScore:
    """Counts for one predicted layout against its caption."""

    object_set_correct: bool
    relations_satisfied: int
    relations_total: int
    unique_relations_satisfied: int
    unique_relations_total: int
    sizes_correct: int
    sizes_total: int


def size_word(box: BoxTuple) -> str:
    """ "small" or "large" for a normalised (x, y, w, h) box, by its side sqrt(w h)."""
    return "small" if math.sqrt(box[2] * box[3]) < SMALL_LARGE_SIDE else "large"


def caption_sizes(caption: str, colors: Sequence[str], class_names: Sequence[str]) -> list[str | None]:
    """The size the caption states for each object ("small"/"large"), None where it states none.

    Objects are named "[size] colour class" in shapes-scenes captions; objects without a colour
    attribute (real COCO) get None.
    """
    out: list[str | None] = []
    for color, name in zip(colors, class_names):
        found = (
            re.search(rf"\b(small|large) {re.escape(color)} {re.escape(name)}\b", caption) if color else None
        )
        out.append(found.group(1) if found else None)
    return out


def _best_assignment(
    pred_labels: Sequence[int],
    pred_boxes: Sequence[BoxTuple],
    true_labels: Sequence[int],
    relations: Sequence[Relation],
    sizes: Sequence[str | None],
) -> list[int | None]:
    """Predicted index (or None) per true object: class-consistent, one-to-one, most constraints met."""
    involved = sorted({i for r in relations for i in (r[0], r[2])} | {i for i, s in enumerate(sizes) if s})
    pred_sizes = [size_word(b) for b in pred_boxes]

    def satisfied(match: dict[int, int | None]) -> int:
        count = 0
        for subject, predicate, obj in relations:
            a, b = match.get(subject), match.get(obj)
            count += (
                a is not None and b is not None and relation_holds(predicate, pred_boxes[a], pred_boxes[b])
            )
        for i, size in enumerate(sizes):
            count += size is not None and match.get(i) is not None and pred_sizes[match[i]] == size
        return count

    best: tuple[int, dict[int, int | None]] = (-1, {})

    def search(k: int, match: dict[int, int | None], used: set[int]) -> None:
        nonlocal best
        if k == len(involved):
            score = satisfied(match)
            if score > best[0]:
                best = (score, dict(match))
            return
        i = involved[k]
        options = [j for j, label in enumerate(pred_labels) if label == true_labels[i] and j not in used]
        for j in [*options, None]:  # None: left unmatched, so a scarce predicted object can go elsewhere
            match[i] = j
            search(k + 1, match, used | ({j} if j is not None else set()))
        del match[i]

    search(0, {}, set())
    return [best[1].get(i) for i in range(len(true_labels))]


def score_layout(
    pred_labels: Sequence[int],
    pred_boxes: Sequence[BoxTuple],
    true_labels: Sequence[int],
    relations: Sequence[Relation],
    sizes: Sequence[str | None] | None = None,
) -> LayoutScore:
    """Score one predicted layout (classes + normalised (x, y, w, h) boxes) against its caption.

    `relations` index `true_labels`; `sizes` (same length as `true_labels`) are the stated sizes.
    """
    sizes = list(sizes) if sizes is not None else [None] * len(true_labels)
    if len(sizes) != len(true_labels) or len(pred_labels) != len(pred_boxes):
        raise ValueError(
            f"score_layout: {len(true_labels)} true labels vs {len(sizes)} sizes, "
            f"{len(pred_labels)} predicted labels vs {len(pred_boxes)} boxes; expected equal lengths"
        )
    match = _best_assignment(pred_labels, pred_boxes, true_labels, relations, sizes)
    counts = Counter(true_labels)
    hits = [
        match[s] is not None
        and match[o] is not None
        and relation_holds(p, pred_boxes[match[s]], pred_boxes[match[o]])
        for s, p, o in relations
    ]
    unique = [counts[true_labels[s]] == 1 and counts[true_labels[o]] == 1 for s, _, o in relations]
    size_hits = [
        match[i] is not None and size_word(pred_boxes[match[i]]) == s for i, s in enumerate(sizes) if s
    ]
    return LayoutScore(
        object_set_correct=Counter(pred_labels) == counts,
        relations_satisfied=sum(hits),
        relations_total=len(relations),
        unique_relations_satisfied=sum(h for h, u in zip(hits, unique) if u),
        unique_relations_total=sum(unique),
        sizes_correct=sum(size_hits),
        sizes_total=len(size_hits),
    )


def mask_iou(pred: Tensor, target: Tensor, threshold: float = 0.5) -> Tensor:
    """IoU (K,) of masks (K, H, W) thresholded at `threshold`; two empty masks score 1."""
    p, t = pred >= threshold, target >= threshold
    inter = (p & t).flatten(1).sum(1).float()
    union = (p | t).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


class LayoutAccuracy(Metric):
    """Accumulates `LayoutScore`s and mask IoUs over batches (summed across processes under DDP).

    `compute()` returns object_set_accuracy, relation_accuracy, relation_accuracy_unique,
    size_accuracy and mask_iou; a value is NaN when nothing of its kind was seen.
    """

    full_state_update = False
    _FIELDS = (
        "layouts",
        "object_sets_correct",
        "relations_satisfied",
        "relations_total",
        "unique_relations_satisfied",
        "unique_relations_total",
        "sizes_correct",
        "sizes_total",
        "mask_iou_sum",
        "masks",
    )

    def __init__(self) -> None:
        super().__init__()
        for name in self._FIELDS:
            self.add_state(name, default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, scores: Sequence[LayoutScore] = (), ious: Tensor | None = None) -> None:
        """Add layout scores and/or per-object mask IoUs (K,)."""
        for s in scores:
            self.layouts += 1
            self.object_sets_correct += s.object_set_correct
            self.relations_satisfied += s.relations_satisfied
            self.relations_total += s.relations_total
            self.unique_relations_satisfied += s.unique_relations_satisfied
            self.unique_relations_total += s.unique_relations_total
            self.sizes_correct += s.sizes_correct
            self.sizes_total += s.sizes_total
        if ious is not None:
            self.mask_iou_sum += ious.double().sum()
            self.masks += ious.numel()

    def compute(self) -> dict[str, float]:
        def ratio(num: Tensor, den: Tensor) -> float:
            return float(num / den) if den > 0 else float("nan")

        return {
            "object_set_accuracy": ratio(self.object_sets_correct, self.layouts),
            "relation_accuracy": ratio(self.relations_satisfied, self.relations_total),
            "relation_accuracy_unique": ratio(self.unique_relations_satisfied, self.unique_relations_total),
            "size_accuracy": ratio(self.sizes_correct, self.sizes_total),
            "mask_iou": ratio(self.mask_iou_sum, self.masks),
        }
