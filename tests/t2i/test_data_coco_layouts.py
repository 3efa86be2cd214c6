"""CocoLayoutDataset on a hand-made mini COCO: filtering rules, bad entries, masks, captions, collate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils

from t2i.data import CocoLayoutDataset, collate_layouts

W, H = 100, 80  # image 1 is not square, as most COCO images


def _rect(x: float, y: float, w: float, h: float) -> list[list[float]]:
    return [[x, y, x + w, y, x + w, y + h, x, y + h]]


def _ann(ann_id: int, image_id: int, bbox: list[float], category: int = 1, **extra) -> dict:
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": category,
        "bbox": bbox,
        "segmentation": extra.pop("segmentation", _rect(*bbox) if min(bbox[2:]) > 0 else _rect(0, 0, 1, 1)),
        "area": extra.pop("area", bbox[2] * bbox[3]),
        "iscrowd": extra.pop("iscrowd", 0),
        **extra,
    }


def _mini_coco(root: Path) -> dict[str, Path]:
    (root / "images").mkdir(parents=True)
    Image.new("RGB", (W, H), (10, 20, 30)).save(root / "images" / "a.png")
    Image.new("RGB", (64, 64), (0, 0, 0)).save(root / "images" / "c.png")
    rle = np.zeros((H, W), dtype=np.uint8, order="F")
    rle[40:60, 5:25] = 1  # a 20 x 20 square at x=5, y=40
    compressed = mask_utils.encode(rle)
    compressed["counts"] = compressed["counts"].decode("ascii")  # as COCO JSON stores it
    uncompressed = {"size": [H, W], "counts": _uncompressed_counts(rle)}
    images = [
        {"id": 1, "file_name": "a.png", "width": W, "height": H},
        {"id": 2, "file_name": "missing.png", "width": W, "height": H},
        {"id": 3, "file_name": "c.png", "width": 64, "height": 64},
    ]
    annotations = [
        _ann(1, 1, [30, 10, 40, 30], category=3),  # kept, the largest
        _ann(2, 1, [5, 40, 20, 20], category=5, segmentation=uncompressed),  # kept, uncompressed RLE
        _ann(
            3, 1, [60, 45, 20, 20], category=1, segmentation=compressed
        ),  # kept, compressed RLE (mask at 5, 40)
        _ann(4, 1, [0, 0, 90, 70], iscrowd=1),  # crowd -> filtered
        _ann(5, 1, [80, 5, 5, 5]),  # 25 px < 2% of 8000 -> filtered
        _ann(6, 1, [90, 10, 30, 20]),  # 20 px outside the right edge -> skipped
        _ann(7, 1, [10, 10, 0, 20]),  # zero width -> skipped
        _ann(8, 1, [10, 10, 20, 20], category=99),  # unknown category -> skipped
        _ann(9, 1, [70.5, 50, 30, 30.4], attributes={"color": "red"}),  # overshoots by < 1 px -> clipped
        _ann(10, 2, [10, 10, 30, 30]),  # its image file is missing
    ]
    for k in range(12):  # image 3: 12 objects of growing size, max_objects keeps the 10 largest
        annotations.append(_ann(100 + k, 3, [0, 0, 10 + k, 10 + k], category=(1, 3)[k % 2]))
    categories = [{"id": i, "name": f"cat{i}", "supercategory": "thing"} for i in (1, 3, 5)]
    captions = [
        {"id": 1, "image_id": 1, "caption": "first caption of a"},
        {"id": 2, "image_id": 1, "caption": "second caption of a"},
        {"id": 3, "image_id": 2, "caption": "a caption of a missing file"},
        {"id": 4, "image_id": 3, "caption": "many squares"},
    ]
    paths = {"images": root / "images", "instances": root / "inst.json", "captions": root / "caps.json"}
    paths["instances"].write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )
    paths["captions"].write_text(json.dumps({"images": images, "annotations": captions}))
    return paths


def _uncompressed_counts(mask: np.ndarray) -> list[int]:
    flat = mask.flatten(order="F")  # COCO RLE runs go down columns
    counts, value, run = [], 0, 0
    for pixel in flat:
        if pixel == value:
            run += 1
        else:
            counts.append(run)
            value, run = pixel, 1
    return [*counts, run]


@pytest.fixture
def mini(tmp_path: Path) -> dict[str, Path]:
    return _mini_coco(tmp_path)


def _load(paths: dict[str, Path], **kwargs) -> CocoLayoutDataset:
    kwargs.setdefault("image_size", 64)
    with pytest.warns(UserWarning, match="inst.json.*skipped") as record:
        dataset = CocoLayoutDataset(paths["images"], paths["instances"], paths["captions"], **kwargs)
    assert len(record) == 1
    return dataset


def test_filters_and_counts_bad_entries(mini: dict[str, Path]) -> None:
    dataset = _load(mini)
    assert dict(dataset.skipped) == {
        "box outside image": 1,
        "zero area": 1,
        "unknown category id": 1,
        "missing image file": 1,
    }
    # image 3: sizes 10..21 px in 64x64; 2% of 4096 = 82 px keeps sides >= 10 (100 px): all 12, then 10.
    assert dict(dataset.filtered) == {"crowd": 1, "small object": 1, "beyond max_objects": 2}
    assert [r.image_id for r in dataset.records] == [1, 3]
    assert dataset.category_names == ["<pad>", "cat1", "cat3", "cat5"]


def test_item_keeps_largest_first_with_normalised_boxes_and_masks(mini: dict[str, Path]) -> None:
    item = _load(mini, train=False)[0]
    assert item["num_objects"] == 4 and item["caption"] == "first caption of a"
    # ann 1 (1200 px), ann 9 clipped to 29.5 x 30 (885 px), ann 2 and ann 3 (400 px each, stable order)
    expected = torch.tensor([[30, 10, 40, 30], [70.5, 50, 29.5, 30], [5, 40, 20, 20], [60, 45, 20, 20]])
    torch.testing.assert_close(item["boxes"], expected / torch.tensor([W, H, W, H]))
    assert item["labels"].tolist() == [2, 1, 3, 1]
    assert item["colors"] == ["", "red", "", ""]
    masks = item["masks"]
    assert masks.shape == (4, 64, 64) and set(masks.unique().tolist()) <= {0.0, 1.0}
    # Both RLE encodings hold the square at x 5..25, y 40..60 of the 100 x 80 image.
    torch.testing.assert_close(masks[2], masks[3])
    ys, xs = torch.nonzero(masks[2], as_tuple=True)
    assert xs.min() == round(5 * 64 / W) and xs.max() == round(25 * 64 / W) - 1
    assert ys.min() == round(40 * 64 / H) and ys.max() == round(60 * 64 / H) - 1
    assert abs(masks[0].sum() - 40 * 30 * (64 / W) * (64 / H)) < 40  # polygon mask, resized


def test_max_objects_keeps_largest(mini: dict[str, Path]) -> None:
    item = _load(mini, train=False, max_objects=10)[1]
    sides = (item["boxes"][:, 2] * 64).round().tolist()
    assert sides == [21.0 - k for k in range(10)]


def test_train_draws_captions_eval_is_fixed(mini: dict[str, Path]) -> None:
    train, val = _load(mini, train=True), _load(mini, train=False)
    torch.manual_seed(0)
    assert {train[0]["caption"] for _ in range(30)} == {"first caption of a", "second caption of a"}
    assert {val[0]["caption"] for _ in range(5)} == {"first caption of a"}


def test_collate_pads_to_max_objects(mini: dict[str, Path]) -> None:
    dataset = _load(mini, train=False, image_size=32)
    batch = collate_layouts([dataset[0], dataset[1]], max_objects=10)
    assert batch["image"].shape == (2, 3, 32, 32) and batch["masks"].shape == (2, 10, 32, 32)
    assert batch["object_mask"].sum(dim=1).tolist() == [4, 10] == batch["num_objects"].tolist()
    assert (batch["labels"][0, 4:] == 0).all() and (batch["boxes"][0, 4:] == 0).all()
    assert (batch["labels"][batch["object_mask"]] > 0).all()
    assert batch["image_id"].tolist() == [1, 3] and batch["caption"][1] == "many squares"
    with pytest.raises(ValueError, match="image 3 has 10 objects > max_objects=5"):
        collate_layouts([dataset[1]], max_objects=5)


def test_missing_and_broken_files_name_the_file(tmp_path: Path, mini: dict[str, Path]) -> None:
    with pytest.raises(FileNotFoundError, match="nope.json"):
        CocoLayoutDataset(mini["images"], tmp_path / "nope.json", mini["captions"], 64)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="broken.json.*not valid JSON"):
        CocoLayoutDataset(mini["images"], broken, mini["captions"], 64)
    broken.write_text(json.dumps({"images": []}))
    with pytest.raises(ValueError, match="broken.json.*'annotations'"):
        CocoLayoutDataset(mini["images"], broken, mini["captions"], 64)
