"""COCO layouts: images, captions, boxes, labels and masks from COCO instances + captions JSON.

Reads real COCO 2014/2017 files unchanged and the shapes-scenes files (`t2i.data.shapes_scenes`). COCO
2014 (`COCO_SPLITS[2014]`: train2014 / val2014) is the split AttnGAN and Obj-GAN report on; train2017
holds most of val2014, so `check_coco_splits` refuses that pair.

Layout rules (docs/t2i_model.md, LostGAN / Obj-GAN):
- crowd annotations and objects whose box covers under `min_object_area` of the image are dropped;
- at most `max_objects` objects per image are kept, sorted by box area, largest first;
- images left with fewer than `min_objects` objects are dropped.

Bad data is skipped and counted in `dataset.skipped` (reason -> count) with one warning naming
the file: a box outside the image (by more than 1 px; boxes within 1 px are clipped), zero area,
an unknown category id or image id, an unreadable segmentation, an image file missing, an image
without captions. `dataset.filtered` counts what the layout rules removed.

Labels: category index 1..K in order of COCO category id; 0 is padding (`category_names[0]`).
"""

from __future__ import annotations

import json
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from pycocotools import mask as mask_utils
from torch.utils.data import Dataset

from ganforge.errors import UserError

PAD_LABEL_NAME = "<pad>"
_BOX_TOLERANCE_PX = 1.0  # COCO boxes often overshoot the border by a rounding error
# COCO 2017 re-split the 2014 images: train2017 = train2014 + val2014 minus the 5,000 of val2017.
COCO_SPLITS = {2014: ("train2014", "val2014"), 2017: ("train2017", "val2017")}
_LEAKS = {("train2017", "val2014"): "35,504 of val2014's 40,504 images"}


def check_coco_splits(train_split: str, val_split: str) -> None:
    """UserError when COCO's train split holds images of its val split (train2017 vs val2014).

    AttnGAN and Obj-GAN report on COCO 2014 (train2014 / val2014); 2017-trained numbers on val2014
    would score training images.
    """
    leak = _LEAKS.get((train_split, val_split))
    if leak is not None:
        raise UserError(
            f"data: train_split={train_split} holds {leak} (val_split={val_split}); use "
            f"train_split={COCO_SPLITS[2014][0]} with val2014 (the split AttnGAN / Obj-GAN report on), "
            f"or val_split={COCO_SPLITS[2017][1]} with train2017"
        )


@dataclass
class _Object:
    ann_id: int
    label: int
    box: tuple[float, float, float, float]  # pixels, clipped to the image
    segmentation: Any
    color: str


@dataclass
class _Record:
    image_id: int
    path: Path
    width: int
    height: int
    objects: list[_Object]
    captions: list[str]
    relations: list[list[tuple[int, str, int]]] = field(default_factory=list)  # per caption, object indices


def _read_json(path: str | Path, what: str) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"t2i.data: {what} file '{path}' does not exist")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"t2i.data: {what} file '{path}' is not valid JSON ({err})") from None
    for key in ("images", "annotations") + (("categories",) if what == "instances" else ()):
        if not isinstance(doc, dict) or not isinstance(doc.get(key), list):
            raise UserError(f"t2i.data: {what} file '{path}' has no '{key}' list; expected COCO format")
    return doc


def _valid_segmentation(seg: Any) -> bool:
    if isinstance(seg, list):
        return len(seg) > 0 and all(isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0 for p in seg)
    return isinstance(seg, dict) and "counts" in seg and "size" in seg


def rasterize(segmentation: Any, height: int, width: int) -> np.ndarray:
    """Binary mask (height, width) uint8 from a COCO polygon list, uncompressed or compressed RLE."""
    if isinstance(segmentation, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation["counts"], list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = segmentation
    with warnings.catch_warnings():
        # pycocotools' decode trips numpy 2's __array__(copy=...) deprecation on every call.
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode(rle)


class CocoLayoutDataset(Dataset):
    """Image-caption-layout items from COCO-format files.

    Args:
        images_dir: folder holding the `file_name`s of the instances file.
        instances_json: COCO instances file (boxes, segmentation, categories).
        captions_json: COCO captions file; optional "relations" per caption (shapes-scenes).
        image_size: side of the square output image and masks (images are resized, not cropped).
        max_objects: objects kept per image, largest box first.
        min_object_area: smallest box area kept, as a fraction of the image area (LostGAN: 0.02).
        min_objects: images with fewer kept objects are dropped.
        train: a random caption of the image per item (global torch RNG, which Lightning seeds per
            worker); otherwise always the first caption.
        with_masks: rasterise masks; False gives empty (N, 0, 0) masks for stages that need none.

    Item: dict with
        image (3, H, W) float in [0, 1]; caption str; captions list[str];
        boxes (N, 4) float normalised (x, y, w, h), top-left corner; labels (N,) long in 1..K;
        masks (N, H, W) float in {0, 1}; num_objects int; image_id int;
        colors list[str] (N) from the "attributes" field, "" when absent;
        relations list[(i, predicate, j)] of the chosen caption, i and j index the N objects.
    """

    def __init__(
        self,
        images_dir: str | Path,
        instances_json: str | Path,
        captions_json: str | Path,
        image_size: int,
        max_objects: int = 10,
        min_object_area: float = 0.02,
        min_objects: int = 1,
        train: bool = True,
        with_masks: bool = True,
    ) -> None:
        if image_size < 1 or max_objects < 1 or min_objects < 0 or not 0 <= min_object_area < 1:
            raise UserError(
                f"CocoLayoutDataset: image_size={image_size}, max_objects={max_objects}, "
                f"min_objects={min_objects}, min_object_area={min_object_area}; expected positive sizes "
                "and 0 <= min_object_area < 1"
            )
        self.image_size, self.max_objects, self.train = image_size, max_objects, train
        self.with_masks = with_masks
        self.instances_json = Path(instances_json)
        self.skipped: Counter[str] = Counter()
        self.filtered: Counter[str] = Counter()
        self._examples: dict[str, str] = {}
        instances = _read_json(instances_json, "instances")
        captions = _read_json(captions_json, "captions")
        categories = sorted(instances["categories"], key=lambda c: c["id"])
        self.category_names = [PAD_LABEL_NAME] + [c["name"] for c in categories]
        label_of = {c["id"]: i + 1 for i, c in enumerate(categories)}
        images = {img["id"]: img for img in instances["images"]}

        objects = self._read_objects(instances["annotations"], images, label_of, min_object_area)
        texts: dict[int, list[tuple[str, list[dict]]]] = defaultdict(list)
        for cap in captions["annotations"]:
            texts[cap["image_id"]].append((cap["caption"], cap.get("relations", [])))

        self.records: list[_Record] = []
        for image_id, img in images.items():
            path = Path(images_dir) / img["file_name"]
            if not path.is_file():
                self._skip("missing image file", str(path))
                continue
            if not texts.get(image_id):
                self._skip("image without captions", f"image {image_id}")
                continue
            kept = sorted(objects.get(image_id, []), key=lambda o: o.box[2] * o.box[3], reverse=True)
            if len(kept) > max_objects:
                self.filtered["beyond max_objects"] += len(kept) - max_objects
                kept = kept[:max_objects]
            if len(kept) < min_objects:
                self.filtered["image with too few objects"] += 1
                continue
            index_of = {o.ann_id: i for i, o in enumerate(kept)}
            relations = [
                [
                    (index_of[r["subject"]], r["predicate"], index_of[r["object"]])
                    for r in rels
                    if r["subject"] in index_of and r["object"] in index_of
                ]
                for _, rels in texts[image_id]
            ]
            self.records.append(
                _Record(
                    image_id,
                    path,
                    int(img["width"]),
                    int(img["height"]),
                    kept,
                    [t for t, _ in texts[image_id]],
                    relations,
                )
            )
        if self.skipped:
            detail = ", ".join(
                f"{reason}: {n} (e.g. {self._examples[reason]})" for reason, n in self.skipped.items()
            )
            warnings.warn(f"t2i.data: '{self.instances_json}': skipped bad entries - {detail}", stacklevel=2)
        if not self.records:
            raise UserError(
                f"t2i.data: '{self.instances_json}' gives no usable images (skipped {dict(self.skipped)}, "
                f"filtered {dict(self.filtered)})"
            )

    @property
    def num_classes(self) -> int:
        """Categories plus the padding label 0."""
        return len(self.category_names)

    def _skip(self, reason: str, example: str) -> None:
        self.skipped[reason] += 1
        self._examples.setdefault(reason, example)

    def _read_objects(
        self, annotations: list[dict], images: dict[int, dict], label_of: dict[int, int], min_area: float
    ) -> dict[int, list[_Object]]:
        """Valid, non-crowd, large-enough objects per image id, boxes clipped to the image."""
        out: dict[int, list[_Object]] = defaultdict(list)
        for ann in annotations:
            where = f"annotation {ann.get('id')}"
            img = images.get(ann.get("image_id"))
            if img is None:
                self._skip("unknown image id", where)
                continue
            if ann.get("category_id") not in label_of:
                self._skip("unknown category id", f"{where}, category_id={ann.get('category_id')}")
                continue
            if ann.get("iscrowd", 0):
                self.filtered["crowd"] += 1
                continue
            bbox = ann.get("bbox")
            if not (isinstance(bbox, list) and len(bbox) == 4):
                self._skip("malformed bbox", f"{where}, bbox={bbox}")
                continue
            x, y, w, h = (float(v) for v in bbox)
            width, height = float(img["width"]), float(img["height"])
            if w <= 0 or h <= 0 or float(ann.get("area", 1.0)) <= 0:
                self._skip("zero area", f"{where}, bbox={bbox}")
                continue
            tol = _BOX_TOLERANCE_PX
            if x < -tol or y < -tol or x + w > width + tol or y + h > height + tol:
                self._skip("box outside image", f"{where}, bbox={bbox} in {int(width)}x{int(height)}")
                continue
            if not _valid_segmentation(ann.get("segmentation")):
                self._skip("unreadable segmentation", where)
                continue
            x0, y0 = max(x, 0.0), max(y, 0.0)
            x1, y1 = min(x + w, width), min(y + h, height)
            if (x1 - x0) * (y1 - y0) < min_area * width * height:
                self.filtered["small object"] += 1
                continue
            color = str((ann.get("attributes") or {}).get("color", ""))
            box = (x0, y0, x1 - x0, y1 - y0)
            out[ann["image_id"]].append(
                _Object(ann["id"], label_of[ann["category_id"]], box, ann["segmentation"], color)
            )
        return out

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rec = self.records[index]
        size = self.image_size
        with Image.open(rec.path) as img:
            img = img.convert("RGB")
            if img.size != (size, size):
                img = img.resize((size, size), Image.BICUBIC)
            image = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 255.0
        choice = int(torch.randint(len(rec.captions), ())) if self.train else 0
        scale = torch.tensor([rec.width, rec.height, rec.width, rec.height], dtype=torch.float32)
        boxes = torch.tensor([o.box for o in rec.objects], dtype=torch.float32).reshape(-1, 4) / scale
        if not self.with_masks:
            masks_t = torch.zeros(len(rec.objects), 0, 0)
        elif not rec.objects:
            masks_t = torch.zeros(0, size, size)
        else:
            masks_t = torch.stack(
                [torch.from_numpy(rasterize(o.segmentation, rec.height, rec.width)) for o in rec.objects]
            ).float()
            if masks_t.shape[-2:] != (size, size):
                masks_t = (F.interpolate(masks_t[None], size=(size, size), mode="area")[0] >= 0.5).float()
        return {
            "image": image,
            "caption": rec.captions[choice],
            "captions": list(rec.captions),
            "boxes": boxes,
            "labels": torch.tensor([o.label for o in rec.objects], dtype=torch.long),
            "masks": masks_t,
            "num_objects": len(rec.objects),
            "image_id": rec.image_id,
            "colors": [o.color for o in rec.objects],
            "relations": list(rec.relations[choice]),
        }


def collate_layouts(items: list[dict[str, Any]], max_objects: int = 10) -> dict[str, Any]:
    """Stack items of `CocoLayoutDataset`, padding objects to `max_objects` (N).

    Returns image (B, 3, H, W); boxes (B, N, 4); labels (B, N) with 0 as padding; masks (B, N, H, W)
    (B, N, 0, 0 without masks);
    object_mask (B, N) bool, True for real objects; num_objects (B,); image_id (B,); and lists
    caption (B), captions (B), colors (B), relations (B).
    """
    batch = len(items)
    height, width = items[0]["masks"].shape[-2:]
    boxes = torch.zeros(batch, max_objects, 4)
    labels = torch.zeros(batch, max_objects, dtype=torch.long)
    masks = torch.zeros(batch, max_objects, height, width)
    object_mask = torch.zeros(batch, max_objects, dtype=torch.bool)
    for b, item in enumerate(items):
        n = item["num_objects"]
        if n > max_objects:
            raise ValueError(
                f"collate_layouts: image {item['image_id']} has {n} objects > max_objects={max_objects}"
            )
        boxes[b, :n], labels[b, :n], masks[b, :n] = item["boxes"], item["labels"], item["masks"]
        object_mask[b, :n] = True
    return {
        "image": torch.stack([item["image"] for item in items]),
        "boxes": boxes,
        "labels": labels,
        "masks": masks,
        "object_mask": object_mask,
        "num_objects": torch.tensor([item["num_objects"] for item in items], dtype=torch.long),
        "image_id": torch.tensor([item["image_id"] for item in items], dtype=torch.long),
        **{key: [item[key] for item in items] for key in ("caption", "captions", "colors", "relations")},
    }
