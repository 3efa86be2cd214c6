"""`t2i data shapes`: COCO files, round trip through CocoLayoutDataset, pixels vs boxes, captions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from t2i.cli import main
from t2i.data import CocoLayoutDataset, relation_holds
from t2i.data.shapes_scenes import COLORS, SHAPES, SIZES


def _render(out: Path, train: int, val: int, seed: int) -> None:
    args = [
        "data",
        "shapes",
        "--out",
        str(out),
        "--train",
        str(train),
        "--val",
        str(val),
        "--seed",
        str(seed),
    ]
    assert main(args) == 0


def _dataset(root: Path, split: str, **kwargs) -> CocoLayoutDataset:
    ann = root / "annotations"
    return CocoLayoutDataset(
        root / "images" / split, ann / f"instances_{split}.json", ann / f"captions_{split}.json", 64, **kwargs
    )


@pytest.fixture(scope="module")
def shapes_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shapes")
    _render(root, train=30, val=6, seed=3)
    return root


def test_writes_coco_files_with_attributes(shapes_root: Path) -> None:
    for split, count in (("train", 30), ("val", 6)):
        inst = json.loads((shapes_root / "annotations" / f"instances_{split}.json").read_text())
        caps = json.loads((shapes_root / "annotations" / f"captions_{split}.json").read_text())
        assert [c["name"] for c in inst["categories"]] == list(SHAPES)
        assert (
            len(inst["images"]) == count
            and len(list((shapes_root / "images" / split).glob("*.png"))) == count
        )
        per_image = np.bincount([a["image_id"] for a in inst["annotations"]], minlength=count + 1)[1:]
        assert per_image.min() >= 1 and per_image.max() <= 3
        for ann in inst["annotations"]:
            x, y, w, h = ann["bbox"]
            assert 0 <= x and 0 <= y and x + w <= 64 and y + h <= 64 and w > 0 and h > 0
            assert ann["iscrowd"] == 0 and ann["area"] > 0
            assert len(ann["segmentation"]) == 1 and len(ann["segmentation"][0]) >= 6
            assert ann["attributes"]["color"] in COLORS and ann["attributes"]["size"] in SIZES
        caption_counts = np.bincount([c["image_id"] for c in caps["annotations"]], minlength=count + 1)[1:]
        assert (caption_counts == 5).all()


def test_dataset_reads_what_the_renderer_wrote(shapes_root: Path) -> None:
    inst = json.loads((shapes_root / "annotations" / "instances_train.json").read_text())
    dataset = _dataset(shapes_root, "train", train=False)
    assert len(dataset) == 30 and not dataset.skipped and not dataset.filtered
    assert dataset.category_names == ["<pad>", *SHAPES]
    for index in range(len(dataset)):
        item = dataset[index]
        anns = sorted(
            (a for a in inst["annotations"] if a["image_id"] == item["image_id"]),
            key=lambda a: a["bbox"][2] * a["bbox"][3],
            reverse=True,
        )
        assert item["num_objects"] == len(anns)
        torch.testing.assert_close(item["boxes"], torch.tensor([a["bbox"] for a in anns]) / 64)
        assert item["labels"].tolist() == [a["category_id"] for a in anns]
        assert item["colors"] == [a["attributes"]["color"] for a in anns]
        assert item["image"].shape == (3, 64, 64) and 0 <= item["image"].min() and item["image"].max() <= 1


def test_boxes_and_masks_match_rendered_colours(shapes_root: Path) -> None:
    dataset = _dataset(shapes_root, "train", train=False)
    palette = torch.tensor(list(COLORS.values()), dtype=torch.float32)  # (C, 3)
    names = list(COLORS)
    for index in range(len(dataset)):
        item = dataset[index]
        pixels = (item["image"] * 255).permute(1, 2, 0)  # (H, W, 3)
        dist = (pixels[..., None, :] - palette).norm(dim=-1)  # (H, W, C)
        nearest, which = dist.min(dim=-1)
        coloured = nearest < 30  # background greys are > 100 away from every palette colour
        boxes_of = {name: torch.zeros(64, 64, dtype=torch.bool) for name in names}
        for box, mask, color in zip(item["boxes"], item["masks"], item["colors"]):
            x, y, w, h = (box * 64).round().int().tolist()
            inside = torch.zeros(64, 64, dtype=torch.bool)
            inside[y : y + h, x : x + w] = True
            boxes_of[color] |= inside
            in_box = which[inside & coloured]
            assert len(in_box) > 0 and names[int(in_box.mode().values)] == color
            mask = mask.bool()
            assert not (mask & ~inside).any(), "mask leaves its box"
            assert (coloured & (which == names.index(color)) & mask).sum() == mask.sum() > 0
        for name, where in boxes_of.items():  # every coloured pixel lies in a box of its colour
            assert not (coloured & (which == names.index(name)) & ~where).any(), (
                f"{name} pixels outside boxes"
            )


def test_captions_name_every_object_and_relations_hold(shapes_root: Path) -> None:
    inst = json.loads((shapes_root / "annotations" / "instances_train.json").read_text())
    caps = json.loads((shapes_root / "annotations" / "captions_train.json").read_text())
    anns = {a["id"]: a for a in inst["annotations"]}
    for cap in caps["annotations"]:
        objects = [a for a in inst["annotations"] if a["image_id"] == cap["image_id"]]
        for obj in objects:
            color, shape = obj["attributes"]["color"], SHAPES[obj["category_id"] - 1]
            assert f"{color} {shape}" in cap["caption"].replace("small ", "").replace("large ", "")
        assert len(cap["relations"]) == len(objects) - 1
        for rel in cap["relations"]:
            subject, obj = anns[rel["subject"]], anns[rel["object"]]
            assert subject["image_id"] == obj["image_id"] == cap["image_id"]
            assert relation_holds(rel["predicate"], subject["bbox"], obj["bbox"])


def test_item_relations_index_the_items_objects(shapes_root: Path) -> None:
    dataset = _dataset(shapes_root, "train", train=False)
    seen = 0
    for index in range(len(dataset)):
        item = dataset[index]
        for i, predicate, j in item["relations"]:
            assert relation_holds(predicate, item["boxes"][i].tolist(), item["boxes"][j].tolist())
            seen += 1
    assert seen > 0


def test_same_seed_same_files(tmp_path: Path) -> None:
    _render(tmp_path / "a", train=3, val=2, seed=7)
    _render(tmp_path / "b", train=3, val=2, seed=7)
    _render(tmp_path / "c", train=3, val=2, seed=8)
    for name in (
        "annotations/instances_val.json",
        "annotations/captions_train.json",
        "images/train/000002.png",
    ):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "images/train/000002.png").read_bytes() != (
        tmp_path / "c" / "images/train/000002.png"
    ).read_bytes()


def test_cli_rejects_bad_counts_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "shapes", "--out", str(tmp_path / "x"), "--train", "0"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("t2i: error:") and "train=0" in err and len(err.splitlines()) == 1
