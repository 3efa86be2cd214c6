"""Semantic object accuracy (SOA, Hinz et al. 2020) on shapes-scenes, with an object classifier as detector.

docs/t2i_model.md. Hinz et al. ask a pretrained detector whether each object a caption names is in the
generated image. Shapes-scenes has no pretrained detector, so `ObjectClassifier` (shape + colour
heads) is trained on crops of REAL train images at their ground-truth boxes; an image then
"contains" an object when the crop at one of its layout boxes (the predicted boxes for generated
images, the annotated ones for real images) is classified as that object's shape and colour.

- SOA-C: recall per object kind (colour + shape, e.g. "red circle"), averaged over kinds.
- SOA-I: recall per image (the fraction of its named objects found), averaged over images.
- colour binding: over captions naming two objects of different colours, the fraction where
  both are found with their own colour (the "red circle, blue square" vs swapped-colours test).

The same numbers on real val images are the ceiling of the classifier.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.errors import UserError
from t2i.data.shapes_scenes import COLORS
from t2i.models.image.crops import crop_objects

CROP_SIZE = 16  # classifier input side; shapes objects are 11-26 px at 64 px


class ObjectClassifier(nn.Module):
    """Crops (K, 3, 16, 16) in [0, 1] -> shape logits (K, S) and colour logits (K, C).

    Args:
        shapes: S, number of object classes (without padding).
        colors: C, number of colours.
        width: channels of the first conv (doubled twice).
    """

    def __init__(self, shapes: int, colors: int, width: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for cout in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]
            cin = cout
        self.trunk = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.shape_head, self.color_head = nn.Linear(cin, shapes), nn.Linear(cin, colors)

    def forward(self, crops: Tensor) -> tuple[Tensor, Tensor]:
        features = self.trunk(crops * 2 - 1)
        return self.shape_head(features), self.color_head(features)


def object_crops(images: Tensor, boxes: Tensor, object_mask: Tensor) -> Tensor:
    """Crops (K, 3, 16, 16) of images (B, 3, H, W) at the real objects' boxes (B, N, 4), `nonzero` order."""
    return crop_objects(images, boxes, object_mask, CROP_SIZE)


def color_index(name: str) -> int:
    """Index of a shapes-scenes colour name in `COLORS`."""
    return list(COLORS).index(name)


@torch.no_grad()
def classify(classifier: ObjectClassifier, crops: Tensor, chunk: int = 512) -> tuple[Tensor, Tensor]:
    """Predicted shape indices (K,) (label - 1) and colour indices (K,) of crops (K, 3, s, s)."""
    classifier.eval()
    shapes, colors = [], []
    for start in range(0, len(crops), chunk):
        shape_logits, color_logits = classifier(crops[start : start + chunk])
        shapes.append(shape_logits.argmax(1))
        colors.append(color_logits.argmax(1))
    if not shapes:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
    return torch.cat(shapes).cpu(), torch.cat(colors).cpu()


def train_object_classifier(
    crops: Tensor,
    shapes: Tensor,
    colors: Tensor,
    num_shapes: int,
    steps: int = 1500,
    batch_size: int = 128,
    seed: int = 0,
    on_step: Callable[[int], None] | None = None,
) -> ObjectClassifier:
    """Train an `ObjectClassifier` on real crops (K, 3, 16, 16) with shape (K,) and colour (K,) indices.

    Adam, cross-entropy on both heads, random horizontal flips (no shape here is chiral in a way the
    captions name). `on_step(step)` reports progress.
    """
    if len(crops) == 0:
        raise UserError("soa: no object crops to train the classifier on")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # layer initialisation
    classifier = ObjectClassifier(num_shapes, len(COLORS))
    opt = torch.optim.Adam(classifier.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    classifier.train()
    for step in range(steps):
        idx = torch.randint(len(crops), (min(batch_size, len(crops)),), generator=gen)
        batch = crops[idx]
        flip = torch.rand(len(idx), generator=gen) < 0.5
        batch = torch.where(flip[:, None, None, None], batch.flip(-1), batch)
        shape_logits, color_logits = classifier(batch)
        loss = F.cross_entropy(shape_logits, shapes[idx]) + F.cross_entropy(color_logits, colors[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if on_step is not None:
            on_step(step)
    return classifier.eval()


@dataclass
class NamedObject:
    """An object a caption names: shape index (label - 1) and colour index."""

    shape: int
    color: int


def soa_scores(
    found: Sequence[Sequence[tuple[int, int]]],
    named: Sequence[Sequence[NamedObject]],
) -> dict[str, float]:
    """SOA-C, SOA-I and colour binding from what the classifier found per image and what its caption names.

    Args:
        found: per image, the (shape, colour) predicted at each of its layout boxes.
        named: per image, the objects its caption names.
    """
    if len(found) != len(named):
        raise ValueError(f"soa_scores: {len(found)} images but {len(named)} captions")
    per_kind: dict[tuple[int, int], list[bool]] = defaultdict(list)
    per_image, binding = [], []
    for detections, objects in zip(found, named):
        present = set(detections)
        hits = [(o.shape, o.color) in present for o in objects]
        for o, hit in zip(objects, hits):
            per_kind[(o.shape, o.color)].append(hit)
        if objects:
            per_image.append(sum(hits) / len(hits))
        if len(objects) == 2 and objects[0].color != objects[1].color:
            binding.append(all(hits))

    def mean(values: Sequence[float]) -> float:
        return float(sum(values) / len(values)) if values else float("nan")

    return {
        "soa_c": mean([mean(v) for v in per_kind.values()]),
        "soa_i": mean(per_image),
        "color_binding": mean(binding),
        "color_binding_captions": float(len(binding)),
    }
