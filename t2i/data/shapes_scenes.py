"""Shapes-scenes: a COCO-format text-to-image dataset of 1-3 coloured shapes with spatial captions.

docs/t2i_model.md. Each image holds 1-3 (mostly 2-3) non-overlapping shapes (circle, square, triangle,
diamond) in one of 6 colours and 2 sizes on a lightly textured dark background; no two objects of
an image share both shape and colour, so "the red circle" always names exactly one object. Each image gets
5 template captions that name every object and, for 2-3 objects, state spatial relations.

Files written under `out/` (COCO layout):
    annotations/instances_{split}.json   categories = shapes; bbox [x, y, w, h] in pixels; polygon
                                         segmentation; area; iscrowd 0;
                                         "attributes": {"color": "red", "size": "small"}
    annotations/captions_{split}.json    5 captions per image; each caption entry carries
                                         "relations": [{"subject": ann_id, "predicate": "left of",
                                         "object": ann_id}, ...] with annotation ids of the same image
    images/{split}/{image_id:06d}.png

A relation is true when the box centres satisfy it (`relation_holds`); the renderer only states
a relation along an axis where the two boxes do not overlap at all, so it is never borderline.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from rich.progress import track

from ganforge.errors import UserError
from t2i.data.coco import rasterize

SHAPES = ("circle", "square", "triangle", "diamond")
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (50, 90, 235),
    "yellow": (235, 215, 40),
    "purple": (150, 60, 200),
    "orange": (245, 135, 30),
}
# Object side as a fraction of the image side; the gap keeps "small" and "large" apart.
SIZES: dict[str, tuple[float, float]] = {"small": (0.18, 0.24), "large": (0.32, 0.40)}
# Objects per image. A lone object comes in only 48 kinds (shape x colour x size), so captions of
# single-object images are often true of other images too; at uniform 1-3 counts even an oracle
# scores R-precision 0.86 (100 candidates), at these weights about 0.95.
OBJECT_COUNT_WEIGHTS = {1: 0.2, 2: 0.4, 3: 0.4}
PREDICATES = ("left of", "right of", "above", "below")
_PHRASE = {"left of": "to the left of", "right of": "to the right of", "above": "above", "below": "below"}
_INVERSE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
CAPTIONS_PER_IMAGE = 5
_GAP_PX = 2  # minimum empty pixels between two objects' boxes
_CIRCLE_VERTICES = 32  # a multiple of 4, so the polygon touches all four sides of its box


@dataclass(frozen=True)
class ShapesSpec:
    """How many shapes-scenes images to render (used by `t2i data shapes` and the datamodule).

    Args:
        train: images in the train split.
        val: images in the val split.
        size: image side in pixels.
        seed: seed of the renderer; the same seed gives the same files.
    """

    train: int = 10000
    val: int = 1000
    size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if self.train < 1 or self.val < 1:
            raise UserError(f"shapes: train={self.train} and val={self.val} must both be >= 1")
        if self.size < 32:
            raise UserError(f"shapes: size={self.size} is too small; expected >= 32 pixels")


@dataclass(frozen=True)
class SceneObject:
    """One rendered shape; `box` is (x, y, w, h) in pixels, top-left corner first."""

    shape: str
    color: str
    size: str
    box: tuple[float, float, float, float]

    def polygon(self) -> list[float]:
        """Outline as a flat COCO polygon [x0, y0, x1, y1, ...] in pixels."""
        x, y, w, h = self.box
        cx, cy = x + w / 2, y + h / 2
        if self.shape == "square":
            pts = [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
        elif self.shape == "triangle":
            pts = [(cx, y), (x + w, y + h), (x, y + h)]
        elif self.shape == "diamond":
            pts = [(cx, y), (x + w, cy), (cx, y + h), (x, cy)]
        else:
            angles = [2 * math.pi * k / _CIRCLE_VERTICES for k in range(_CIRCLE_VERTICES)]
            pts = [(cx + w / 2 * math.cos(a), cy + h / 2 * math.sin(a)) for a in angles]
        return [round(v, 2) for p in pts for v in p]

    def name(self, with_size: bool) -> str:
        """'red circle' or 'small red circle'."""
        return f"{self.size} {self.color} {self.shape}" if with_size else f"{self.color} {self.shape}"


def relation_holds(predicate: str, subject_box: tuple[float, ...], object_box: tuple[float, ...]) -> bool:
    """Whether `subject predicate object` holds for two (x, y, w, h) boxes, judged by box centres."""
    sx, sy = subject_box[0] + subject_box[2] / 2, subject_box[1] + subject_box[3] / 2
    ox, oy = object_box[0] + object_box[2] / 2, object_box[1] + object_box[3] / 2
    if predicate not in _PHRASE:
        raise ValueError(f"relation_holds: predicate={predicate!r}; expected one of {PREDICATES}")
    return {"left of": sx < ox, "right of": sx > ox, "above": sy < oy, "below": sy > oy}[predicate]


# ----------------------------------------------------------------------------------- scenes
def _overlaps(a: tuple[float, ...], b: tuple[float, ...], gap: float) -> bool:
    return not (
        a[0] + a[2] + gap <= b[0]
        or b[0] + b[2] + gap <= a[0]
        or a[1] + a[3] + gap <= b[1]
        or b[1] + b[3] + gap <= a[1]
    )


def sample_scene(rng: np.random.Generator, size: int) -> list[SceneObject]:
    """1-3 objects with distinct (shape, colour) pairs and boxes at least `_GAP_PX` apart."""
    while True:
        count = int(rng.choice(list(OBJECT_COUNT_WEIGHTS), p=list(OBJECT_COUNT_WEIGHTS.values())))
        kinds = rng.choice(len(SHAPES) * len(COLORS), size=count, replace=False)
        objects: list[SceneObject] = []
        for kind in kinds:
            shape, color = SHAPES[kind // len(COLORS)], list(COLORS)[kind % len(COLORS)]
            size_name = ("small", "large")[int(rng.integers(2))]
            side = int(round(rng.uniform(*SIZES[size_name]) * size))
            for _ in range(100):
                x, y = (int(v) for v in rng.integers(1, size - side, size=2))
                box = (float(x), float(y), float(side), float(side))
                if not any(_overlaps(box, o.box, _GAP_PX) for o in objects):
                    objects.append(SceneObject(shape, color, size_name, box))
                    break
        if len(objects) == count:
            return objects


def object_mask(obj: SceneObject, size: int) -> np.ndarray:
    """The pixels (size, size) uint8 of `obj`, rasterised from its polygon exactly as COCO tools do."""
    return rasterize([obj.polygon()], size, size)


def render_scene(objects: list[SceneObject], size: int, rng: np.random.Generator) -> Image.Image:
    """RGB image (size, size): a dark grey background with faint noise, shapes in exact colours.

    Shapes are painted through `object_mask`, so the pixels equal the annotated segmentation.
    """
    level = rng.uniform(25, 60)
    background = level + rng.normal(0.0, 4.0, size=(size, size, 1))
    image = np.clip(background, 0, 255).astype(np.uint8).repeat(3, axis=2)
    for obj in objects:
        image[object_mask(obj, size).astype(bool)] = COLORS[obj.color]
    return Image.fromarray(image)


# ----------------------------------------------------------------------------------- captions
def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _predicate(a: SceneObject, b: SceneObject, rng: np.random.Generator) -> str:
    """A predicate that holds for `a` relative to `b` along an axis where their boxes are disjoint."""
    options = []
    if a.box[0] + a.box[2] <= b.box[0] or b.box[0] + b.box[2] <= a.box[0]:
        options.append("left of" if a.box[0] < b.box[0] else "right of")
    if a.box[1] + a.box[3] <= b.box[1] or b.box[1] + b.box[3] <= a.box[1]:
        options.append("above" if a.box[1] < b.box[1] else "below")
    assert options, "sample_scene keeps boxes disjoint, so some axis separates them"
    return options[int(rng.integers(len(options)))]


def caption_scene(
    objects: list[SceneObject], ann_ids: list[int], rng: np.random.Generator
) -> tuple[str, list[dict]]:
    """One caption naming every object, and its relations as {"subject", "predicate", "object"} ann ids."""
    order = [int(i) for i in rng.permutation(len(objects))]
    # Size is named half the time, and always for a lone object, where it is the only detail left.
    with_size = [bool(rng.random() < 0.5) or len(objects) == 1 for _ in objects]

    def full(i: int) -> str:
        return _article(objects[i].name(with_size[i]))

    if len(objects) == 1:
        templates = ["{a}", "there is {a}", "a picture of {a}", "{a} on a dark background", "a single {n}"]
        text = templates[int(rng.integers(len(templates)))]
        return text.format(a=full(0), n=objects[0].name(with_size[0])), []
    p, q = order[0], order[1]
    pq = _predicate(objects[p], objects[q], rng)
    relations = [{"subject": ann_ids[p], "predicate": pq, "object": ann_ids[q]}]
    first = f"{full(p)} {_PHRASE[pq]} {full(q)}"
    if len(objects) == 2:
        templates = ["{x}", "there is {x}", "{x} on a dark background", "a picture of {x}"]
        return templates[int(rng.integers(len(templates)))].format(x=first), relations
    r = order[2]
    rq = _predicate(objects[r], objects[q], rng)
    relations.append({"subject": ann_ids[r], "predicate": rq, "object": ann_ids[q]})
    second = f"{full(r)} {_PHRASE[rq]} the {objects[q].name(False)}"
    templates = ["{x} and {y}", "{x}, and {y}", "there is {x} and {y}", "{x}; {y}"]
    return templates[int(rng.integers(len(templates)))].format(x=first, y=second), relations


def caption_variants(
    objects: list[SceneObject], ann_ids: list[int], rng: np.random.Generator, count: int = CAPTIONS_PER_IMAGE
) -> list[tuple[str, list[dict]]]:
    """`count` captions, distinct when the templates allow it within a few tries."""
    captions: list[tuple[str, list[dict]]] = []
    for _ in range(20 * count):
        text, relations = caption_scene(objects, ann_ids, rng)
        if all(text != c[0] for c in captions):
            captions.append((text, relations))
        if len(captions) == count:
            return captions
    while len(captions) < count:
        captions.append(caption_scene(objects, ann_ids, rng))
    return captions


# ----------------------------------------------------------------------------------- COCO files
def _render_split(root: Path, split: str, count: int, size: int, rng: np.random.Generator) -> None:
    image_dir = root / "images" / split
    image_dir.mkdir(parents=True, exist_ok=True)
    images, instances, captions = [], [], []
    for image_id in track(range(1, count + 1), description=f"shapes {split}", transient=True):
        objects = sample_scene(rng, size)
        file_name = f"{image_id:06d}.png"
        render_scene(objects, size, rng).save(image_dir / file_name)
        images.append({"id": image_id, "file_name": file_name, "width": size, "height": size})
        ann_ids = []
        for obj in objects:
            ann_id = len(instances) + 1
            area = float(object_mask(obj, size).sum())
            instances.append(
                {
                    "id": ann_id,
                    "image_id": image_id,
                    "category_id": SHAPES.index(obj.shape) + 1,
                    "bbox": list(obj.box),
                    "segmentation": [obj.polygon()],
                    "area": area,
                    "iscrowd": 0,
                    "attributes": {"color": obj.color, "size": obj.size},
                }
            )
            ann_ids.append(ann_id)
        for text, relations in caption_variants(objects, ann_ids, rng):
            captions.append(
                {"id": len(captions) + 1, "image_id": image_id, "caption": text, "relations": relations}
            )
    info = {"description": "ganforge shapes-scenes (docs/t2i_model.md)", "version": "1.0"}
    categories = [{"id": i + 1, "name": s, "supercategory": "shape"} for i, s in enumerate(SHAPES)]
    ann_dir = root / "annotations"
    ann_dir.mkdir(parents=True, exist_ok=True)
    instances_doc = {
        "info": info,
        "licenses": [],
        "images": images,
        "annotations": instances,
        "categories": categories,
    }
    captions_doc = {"info": info, "licenses": [], "images": images, "annotations": captions}
    (ann_dir / f"instances_{split}.json").write_text(json.dumps(instances_doc))
    (ann_dir / f"captions_{split}.json").write_text(json.dumps(captions_doc))


def render_shapes(out: str | Path, spec: ShapesSpec) -> Path:
    """Write the train and val splits of a shapes-scenes dataset under `out`; returns `out`.

    Each split draws from its own seeded stream, so the val split does not depend on `spec.train`.
    """
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"shapes: --out '{root}' exists and is not a directory")
    for index, (split, count) in enumerate((("train", spec.train), ("val", spec.val))):
        _render_split(root, split, count, spec.size, np.random.default_rng([spec.seed, index]))
    return root
