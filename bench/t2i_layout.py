"""Layout-stage quality on shapes-scenes (docs/results.md): the table, text pathways, novel compositions.

    .venv/bin/python bench/t2i_layout.py --minutes 60          # the docs/results.md numbers (CPU budget)
    .venv/bin/python bench/t2i_layout.py --minutes 2 --train 400 --val 80 --data /tmp/shapes_small   # smoke

Steps, all on CPU within `--minutes` of training (rendering, caching and evaluation come on top):
1. render shapes-scenes (`--train` + `--val` images, 64 px) unless `--data` holds it;
2. hold out colour-shape-relation combinations: a fraction of the (colour shape, colour shape, axis)
   combinations, e.g. (red circle, blue square, left/right); no training image has a caption that
   relates such a pair along that axis (in either direction), and val captions that do form the
   "novel" subset;
3. train a small CLIP contrastively (the clip stage) on the remaining training images;
4. train the layout stage (`configs/t2i/shapes_layout.yaml`) with several text pathways:
   the frozen CLIP's sentence embedding alone, attention over the frozen CLIP's token features,
   the fine-tuned CLIP tower, and the tower trained from scratch (the shipped config); plus the
   shipped config with Obj-GAN's largest-first ("area") teaching order instead of mention order;
5. score every caption of every val image (5 per image): object-set, relation, size accuracy on the
   seen and novel subsets, and mask IoU of masks drawn on ground-truth boxes; the same for a trivial
   baseline (the mean training layout of the caption's class set; box-shaped masks).
Writes `--out` (JSON) and prints the Markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import re
import time
from collections import Counter, defaultdict
from functools import partial
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import yaml
from torch.utils.data import DataLoader, Dataset

from t2i.clip_stage import ContrastiveCLIP
from t2i.data import CocoLayoutDataset, collate_layouts
from t2i.data.shapes_scenes import COLORS, SHAPES, ShapesSpec, render_shapes
from t2i.eval.layout_metrics import LayoutAccuracy, caption_sizes, mask_iou, score_layout
from t2i.layout_stage import LayoutGAN
from t2i.models.clip_model import save_clip
from t2i.models.layout.mask_generator import box_indicator, paste_masks

ROOT = Path(__file__).resolve().parents[1]
LAYOUT_CONFIG = ROOT / "configs" / "t2i" / "shapes_layout.yaml"
CLIP_CONFIG = ROOT / "configs" / "t2i" / "shapes_clip.yaml"
AXIS = {"left of": "x", "right of": "x", "above": "y", "below": "y"}
CLIP_SHARE = 0.15  # of --minutes for the small CLIP; the rest is split evenly over the layout runs
VARIANTS = {  # name -> LayoutGAN overrides (clip_path is filled in)
    "sentence, frozen CLIP": {"text_conditioning": "sentence", "text_trainable": False},
    "tokens, frozen CLIP": {"text_conditioning": "tokens", "text_trainable": False},
    "tokens, fine-tuned CLIP": {"text_conditioning": "tokens", "text_trainable": True},
    "tokens, tower from scratch": {"text_conditioning": "tokens", "text_trainable": True, "clip_path": None},
    "tokens, tower from scratch, area order": {
        "text_conditioning": "tokens",
        "text_trainable": True,
        "clip_path": None,
        "object_order": "area",
    },
}


# ----------------------------------------------------------------------------------- data
def combination(kinds: dict[int, str], relation: dict[str, Any]) -> tuple[str, str, str]:
    """(kind, kind, axis) of a caption relation, kinds sorted: the same key for both directions."""
    a, b = sorted((kinds[relation["subject"]], kinds[relation["object"]]))
    return a, b, AXIS[relation["predicate"]]


def hold_out_combinations(fraction: float, seed: int) -> set[tuple[str, str, str]]:
    """A random `fraction` of all (colour shape, colour shape, axis) combinations."""
    kinds = sorted(f"{c} {s}" for c in COLORS for s in SHAPES)
    combos = [(a, b, axis) for i, a in enumerate(kinds) for b in kinds[i + 1 :] for axis in ("x", "y")]
    rng = random.Random(seed)
    return set(rng.sample(combos, max(1, round(fraction * len(combos)))))


def write_seen_split(root: Path, work: Path, held_out: set[tuple[str, str, str]]) -> int:
    """Write `work`/{instances,captions}_train_seen.json: the train split of `root` without the images
    that touch `held_out`; returns how many images were dropped."""
    ann = root / "annotations"
    instances = json.loads((ann / "instances_train.json").read_text())
    captions = json.loads((ann / "captions_train.json").read_text())
    kinds = {
        a["id"]: f"{a['attributes']['color']} {SHAPES[a['category_id'] - 1]}"
        for a in instances["annotations"]
    }
    dropped = {
        c["image_id"]
        for c in captions["annotations"]
        if any(combination(kinds, r) in held_out for r in c["relations"])
    }
    for doc in (instances, captions):
        doc["images"] = [i for i in doc["images"] if i["id"] not in dropped]
        doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] not in dropped]
    work.mkdir(parents=True, exist_ok=True)
    (work / "instances_train_seen.json").write_text(json.dumps(instances))
    (work / "captions_train_seen.json").write_text(json.dumps(captions))
    return len(dropped)


def dataset(
    images: Path, annotations: Path, split: str, train: bool, with_masks: bool = True
) -> CocoLayoutDataset:
    """The shapes split `split` at 64 px: json files in `annotations`, pictures in `images`."""
    return CocoLayoutDataset(
        images,
        annotations / f"instances_{split}.json",
        annotations / f"captions_{split}.json",
        image_size=64,
        max_objects=4,
        train=train,
        with_masks=with_masks,
    )


class CachedLayouts(Dataset):
    """A `CocoLayoutDataset` held in memory (masks as bool) with a random caption per access.

    Rasterising the polygons costs as much as a training step; the layout stage never reads the
    image, so items carry a 1x1 placeholder.
    """

    def __init__(self, source: CocoLayoutDataset) -> None:
        self.items = []
        for index in range(len(source)):
            item = source[index]
            item["masks"] = item["masks"].bool()
            item["image"] = torch.zeros(3, 1, 1)
            self.items.append(item)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = dict(self.items[index])
        item["caption"] = item["captions"][int(torch.randint(len(item["captions"]), ()))]
        item["masks"] = item["masks"].float()
        return item


# ----------------------------------------------------------------------------------- training
def model_args() -> dict[str, Any]:
    return dict(yaml.safe_load(LAYOUT_CONFIG.read_text())["model"]["init_args"])


def fit(module: pl.LightningModule, loader: DataLoader, minutes: float, max_steps: int) -> dict[str, float]:
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=max_steps,
        max_time={"seconds": max(1, round(60 * minutes))},
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
    )
    start = time.perf_counter()
    trainer.fit(module, loader)
    return {"seconds": round(time.perf_counter() - start, 1), "optimizer_steps": trainer.global_step}


def train_clip(records: CocoLayoutDataset, minutes: float, out: Path) -> Path:
    args = dict(yaml.safe_load(CLIP_CONFIG.read_text())["model"]["init_args"])
    module = ContrastiveCLIP(**args)
    batch = yaml.safe_load(CLIP_CONFIG.read_text())["data"]["init_args"]["batch_size"]
    loader = DataLoader(records, batch_size=batch, shuffle=True, drop_last=True, collate_fn=collate_layouts)
    fit(module, loader, minutes, max_steps=10**9)
    return save_clip(module.clip, out)


# ----------------------------------------------------------------------------------- evaluation
def caption_rows(records: CocoLayoutDataset) -> list[dict[str, Any]]:
    """One row per (val image, caption): caption, true labels, relations, colours."""
    rows = []
    for rec in records.records:
        for caption, relations in zip(rec.captions, rec.relations):
            rows.append(
                {
                    "caption": caption,
                    "labels": [o.label for o in rec.objects],
                    "colors": [o.color for o in rec.objects],
                    "relations": relations,
                    "kinds": [f"{o.color} {SHAPES[o.label - 1]}" for o in rec.objects],
                }
            )
    return rows


def is_novel(row: dict[str, Any], held_out: set[tuple[str, str, str]]) -> bool:
    return any(
        tuple(sorted((row["kinds"][s], row["kinds"][o]))) + (AXIS[p],) in held_out
        for s, p, o in row["relations"]
    )


def score_rows(
    rows: list[dict[str, Any]], layouts: list[list[tuple[int, list[float]]]], names: list[str]
) -> dict:
    metric = LayoutAccuracy()
    for row, layout in zip(rows, layouts):
        sizes = caption_sizes(row["caption"], row["colors"], [names[label] for label in row["labels"]])
        pred_labels, pred_boxes = [label for label, _ in layout], [box for _, box in layout]
        metric.update([score_layout(pred_labels, pred_boxes, row["labels"], row["relations"], sizes)])
    values = metric.compute()
    values.pop("mask_iou")
    return {**values, "captions": len(rows)}


def model_layouts(model: LayoutGAN, captions: list[str], seed: int) -> list[list[tuple[int, list[float]]]]:
    index = {name: i for i, name in enumerate(model.class_names)}
    out = []
    generator = torch.Generator().manual_seed(seed)
    for start in range(0, len(captions), 256):
        for layout in model.generate_layouts(captions[start : start + 256], generator):
            out.append([(index[b.label], [b.x, b.y, b.w, b.h]) for b in layout])
    return out


@torch.no_grad()
def model_mask_iou(model: LayoutGAN, val: CachedLayouts, seed: int) -> float:
    """Mean IoU of EMA-generator masks drawn on ground-truth boxes (64 px), one draw per val image."""
    generator, net, ious = torch.Generator().manual_seed(seed), model.ema.model, []
    for start in range(0, len(val), 256):
        batch = collate_layouts(
            [
                val.items[i] | {"masks": val.items[i]["masks"].float()}
                for i in range(start, min(start + 256, len(val)))
            ],
            4,
        )
        text = net.encode(batch["caption"])
        layout = model._true_layout(batch)
        masks = net.masks(text, layout, net.noise(layout, generator))
        pasted = paste_masks(masks, layout.boxes, 64, 64)
        ious.append(mask_iou(pasted[layout.object_mask], batch["masks"][layout.object_mask]))
    return float(torch.cat(ious).mean())


def box_mask_iou(val: CachedLayouts) -> float:
    """Baseline mask IoU: every object's mask is its whole box."""
    ious = []
    for item in val.items:
        filled = box_indicator(item["boxes"], 64, 64)
        ious.append(mask_iou(filled, item["masks"].float()))
    return float(torch.cat(ious).mean())


class MeanLayoutBaseline:
    """The trivial baseline: read the class set off the caption ("<colour> <shape>" phrases), then
    draw the mean training layout of that class set (objects matched by class, then by area rank)."""

    def __init__(self, train: CocoLayoutDataset) -> None:
        sums: dict[tuple[int, ...], torch.Tensor] = {}
        counts: Counter[tuple[int, ...]] = Counter()
        per_class: dict[int, list[torch.Tensor]] = defaultdict(list)
        for rec in train.records:
            objects = sorted(rec.objects, key=lambda o: (o.label, -o.box[2] * o.box[3]))
            key = tuple(o.label for o in objects)
            boxes = torch.tensor([o.box for o in objects]) / torch.tensor([rec.width, rec.height] * 2)
            sums[key] = sums.get(key, torch.zeros_like(boxes)) + boxes
            counts[key] += 1
            for o, box in zip(objects, boxes):
                per_class[o.label].append(box)
        self.means = {key: sums[key] / counts[key] for key in sums}
        self.class_means = {label: torch.stack(boxes).mean(0) for label, boxes in per_class.items()}
        self.pattern = re.compile(rf"\b({'|'.join(COLORS)}) ({'|'.join(SHAPES)})\b")

    def layout(self, caption: str) -> list[tuple[int, list[float]]]:
        objects = sorted({m.groups() for m in self.pattern.finditer(caption)})
        key = tuple(sorted(SHAPES.index(shape) + 1 for _, shape in objects))
        if key in self.means:
            return [(label, box.tolist()) for label, box in zip(key, self.means[key])]
        return [(label, self.class_means[label].tolist()) for label in key]


# ----------------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="training budget for all runs together")
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "shapes", help="shapes-scenes root")
    parser.add_argument(
        "--work", type=Path, default=ROOT / "runs" / "bench_t2i_layout", help="split files, CLIP"
    )
    parser.add_argument(
        "--clip",
        type=Path,
        default=None,
        help="use this CLIP file instead of training one (if it saw the full train split, novel "
        "combinations are held out from the layout stage only)",
    )
    parser.add_argument(
        "--train", type=int, default=10000, help="train images to render when --data is empty"
    )
    parser.add_argument("--val", type=int, default=1000)
    parser.add_argument("--held-out", type=float, default=0.05, help="fraction of combinations held out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "t2i_layout.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pl.seed_everything(args.seed, verbose=False)
    root = args.data
    if not (root / "annotations" / "instances_train.json").exists():
        render_shapes(root, ShapesSpec(train=args.train, val=args.val, size=64, seed=args.seed))
    held_out = hold_out_combinations(args.held_out, args.seed)
    dropped = write_seen_split(root, args.work, held_out)

    start = time.perf_counter()
    train_images = root / "images" / "train"
    train_records = dataset(train_images, args.work, "train_seen", train=True)
    train = CachedLayouts(train_records)
    val_records = dataset(root / "images" / "val", root / "annotations", "val", train=False)
    val = CachedLayouts(val_records)
    cache_seconds = time.perf_counter() - start
    rows = caption_rows(val_records)
    novel = [is_novel(row, held_out) for row in rows]
    subsets = {
        "all": rows,
        "seen": [r for r, n in zip(rows, novel) if not n],
        "novel": [r for r, n in zip(rows, novel) if n],
    }
    names = val_records.category_names

    clip_minutes = 0.0 if args.clip else CLIP_SHARE * args.minutes
    clip_path = args.clip or train_clip(
        dataset(train_images, args.work, "train_seen", train=True, with_masks=False),
        clip_minutes,
        args.work / "clip.pt",
    )
    per_run = (args.minutes - clip_minutes) / len(args.variants)
    base_args = model_args()
    loader = DataLoader(
        train, batch_size=64, shuffle=True, drop_last=True, collate_fn=partial(collate_layouts, max_objects=4)
    )
    results: dict[str, Any] = {}
    for name in args.variants:
        overrides = {"clip_path": str(clip_path), **VARIANTS[name]}
        pl.seed_everything(args.seed, verbose=False)
        model = LayoutGAN(**{**base_args, **overrides})
        run = fit(model, loader, per_run, max_steps=10**9)
        model.eval()
        layouts = model_layouts(model, [r["caption"] for r in rows], args.seed)
        by_row = dict(zip(map(id, rows), layouts))
        scores = {k: score_rows(v, [by_row[id(r)] for r in v], names) for k, v in subsets.items()}
        results[name] = {"train": run, **scores, "mask_iou": model_mask_iou(model, val, args.seed)}
        print(name, json.dumps(results[name]), flush=True)

    baseline = MeanLayoutBaseline(train_records)
    base_layouts = {id(r): baseline.layout(r["caption"]) for r in rows}
    results["baseline: mean layout of the class set"] = {
        **{k: score_rows(v, [base_layouts[id(r)] for r in v], names) for k, v in subsets.items()},
        "mask_iou": box_mask_iou(val),
    }
    report = {
        "budget_minutes": args.minutes,
        "threads": args.threads,
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads",
        "data": {
            "train_images": len(train),
            "train_images_dropped_for_novel": dropped,
            "val_images": len(val),
            "val_captions": len(rows),
            "novel_captions": len(subsets["novel"]),
            "held_out_combinations": len(held_out),
            "cache_seconds": round(cache_seconds, 1),
        },
        "layout_config": str(LAYOUT_CONFIG.relative_to(ROOT)),
        "clip": {"trained_minutes": clip_minutes, "given": None if args.clip is None else str(args.clip)},
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, allow_nan=True) + "\n")
    print(markdown(report))


def markdown(report: dict[str, Any]) -> str:
    def pct(value: float) -> str:
        return "n/a" if value is None or math.isnan(value) else f"{100 * value:.1f}"

    lines = [
        "| layout model | object set | relation | relation (unique classes) | size | mask IoU "
        "| novel: object set | novel: relation |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in report["results"].items():
        a, n = r["all"], r["novel"]
        lines.append(
            f"| {name} | {pct(a['object_set_accuracy'])} | {pct(a['relation_accuracy'])} | "
            f"{pct(a['relation_accuracy_unique'])} | {pct(a['size_accuracy'])} | {pct(r['mask_iou'])} | "
            f"{pct(n['object_set_accuracy'])} | {pct(n['relation_accuracy'])} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
