"""`t2i eval`: SOA, colour binding, relation accuracy, FID (or fd_local), CLIP score and R-precision.

For every image of the evaluation split (first caption each, as AttnGAN / Obj-GAN evaluate) the
model generates one image twice: from its own predicted layout (the full pipeline) and from the
ground-truth layout (boxes and shapes; Obj-GAN reports both). metrics.json holds, per condition:
- soa_c, soa_i, color_binding (`t2i.soa`; shapes-scenes data only, colours are annotated there),
  with the same numbers on the real images as the ceiling;
- relation_accuracy, object_set_accuracy, size_accuracy of the predicted layouts
  (`t2i.metrics.layout`);
- fid and is (Inception Score, mean and std over 10 splits) when `--inception` holds the TF-Inception
  weights that published tables use; fd_inception_v3 / fd_torchscript (not FID, with a warning) for
  other Inception files (`t2i.metrics.inception`); without one, fd_local (`t2i.image_features`: not FID);
- clip_score (mean cosine of judge-CLIP image and caption embeddings, GALIP's convention) and
  r_precision (AttnGAN protocol, 100 candidates), with `--clip` or a judge CLIP trained here under
  another seed (`t2i.judges`); real images give the ceiling.
Judges trained here are cached in `--judges` (default: a `judges/` folder beside `--out`).
`--max-captions N` scores the first N val images, one caption each (published COCO FIDs use 30,000
captions of COCO 2014 val).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ganforge.devices import DEVICE_HELP, resolve_device
from ganforge.errors import run_guarded

if TYPE_CHECKING:  # imported where used, so `t2i eval --help` stays fast
    from t2i.metrics.inception import InceptionFile

PROG = "t2i eval"
FD_LOCAL_NOTE = (
    "Fréchet distance in the features of a small conv net trained here to name the objects of real images. "
    "Not FID: comparable only between evaluations that share this net (the same --judges folder)"
)
R_PRECISION_CANDIDATES = 100
MASK_SIZE = 16  # side of the box-frame masks of ground-truth layouts


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Score a t2i model on a COCO-format split: SOA, colour binding, relation accuracy, FID "
        "and IS (with the TF-Inception weights; fd_* with another --inception, fd_local without), CLIP score "
        "and R-precision, for predicted and ground-truth layouts.",
    )
    parser.add_argument("--ckpt", required=True, help="t2i bundle or image-stage checkpoint (.ckpt)")
    parser.add_argument(
        "--data", required=True, help="dataset root (annotations/, images/), e.g. data/shapes"
    )
    parser.add_argument("--clip", default=None, help="local CLIP file judging CLIP score and R-precision")
    parser.add_argument(
        "--inception",
        default=None,
        help="local Inception-v3 file: torch-fidelity's TF-Inception state dict (pt_inception-2015-12-05) "
        "gives fid and is; a torchvision inception_v3 state dict or a TorchScript net gives fd_* (not FID)",
    )
    parser.add_argument("--out", required=True, help="metrics.json to write")
    parser.add_argument(
        "--layout-ckpt", default=None, help="layout-stage checkpoint (default: the image stage's)"
    )
    parser.add_argument("--split", default="val", help="split to evaluate (default val; COCO 2014: val2014)")
    parser.add_argument(
        "--train-split", default="train", help="split the judges learn from (default train; COCO: train2014)"
    )
    parser.add_argument(
        "--images-subdir",
        default="images/{split}",
        help="image folder below --data with {split} filled in (default images/{split}; COCO: {split})",
    )
    parser.add_argument(
        "--max-captions",
        type=int,
        default=None,
        help="score the first N images of the split, one caption each (default: all; published COCO FIDs "
        "use 30,000)",
    )
    parser.add_argument("--seed", type=int, default=0, help="batch i generates with seed + i")
    parser.add_argument("--judges", default=None, help="folder of cached judges (default: OUT_DIR/judges)")
    parser.add_argument("--judge-images", type=int, default=5000, help="train images the judges learn from")
    parser.add_argument("--soa-steps", type=int, default=1500, help="training steps of a new SOA classifier")
    parser.add_argument("--fd-steps", type=int, default=800, help="training steps of a new fd_local net")
    parser.add_argument("--clip-steps", type=int, default=400, help="training steps of a new judge CLIP")
    parser.add_argument("--batch-size", type=int, default=64, help="captions per generation batch")
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


# ---------------------------------------------------------------------------------------------- scores
def layout_batch(layouts: list[list[Any]]) -> tuple[Tensor, Tensor]:
    """Boxes (K, N, 4) and object_mask (K, N) of K `Box` lists (N the longest, at least 1)."""
    count = max(1, max(len(layout) for layout in layouts))
    boxes, present = torch.zeros(len(layouts), count, 4), torch.zeros(len(layouts), count, dtype=torch.bool)
    for k, layout in enumerate(layouts):
        for n, box in enumerate(layout):
            boxes[k, n], present[k, n] = torch.tensor([box.x, box.y, box.w, box.h]), True
    return boxes, present


def soa_metrics(classifier: torch.nn.Module, images: Tensor, layouts: list[list[Any]], named: list) -> dict:
    """SOA-C, SOA-I and colour binding of images (K, 3, H, W) classified at their layouts' boxes."""
    from t2i.soa import classify, object_crops, soa_scores

    boxes, present = layout_batch(layouts)
    shapes, colors = classify(classifier, object_crops(images, boxes, present))
    owner = present.nonzero()[:, 0].tolist()  # the image of every crop
    found: list[list[tuple[int, int]]] = [[] for _ in layouts]
    for k, shape, color in zip(owner, shapes.tolist(), colors.tolist()):
        found[k].append((shape, color))
    return soa_scores(found, named)


@torch.no_grad()
def clip_metrics(judge: Any, images: Tensor, captions: list[str], seed: int, batch: int = 128) -> dict:
    """Mean cosine CLIP score and top-1 R-precision of images (K, 3, H, W) with their captions."""
    from t2i.clip_model import encode_images, tokenize
    from t2i.metrics.retrieval import r_precision
    from t2i.text import text_features

    device = next(judge.parameters()).device
    image_emb, text_emb = [], []
    for start in range(0, len(images), batch):
        image_emb.append(encode_images(judge, images[start : start + batch].to(device)).float().cpu())
        tokens = tokenize(captions[start : start + batch], judge.context_length).to(device)
        text_emb.append(text_features(judge, tokens).sentence.float().cpu())
    image, text = F.normalize(torch.cat(image_emb), dim=-1), F.normalize(torch.cat(text_emb), dim=-1)
    out = {"clip_score": float((image * text).sum(-1).mean())}
    candidates = min(R_PRECISION_CANDIDATES, len(images))
    if candidates >= 2:
        out["r_precision"] = r_precision(image, text, candidates, torch.Generator().manual_seed(seed))
        out["r_precision_candidates"] = candidates
    return out


def layout_metrics(layouts: list[list[Any]], real: dict[str, Any], names: list[str]) -> dict[str, float]:
    """Relation, object-set and size accuracy of predicted layouts against the captions' ground truth."""
    from t2i.metrics.layout import LayoutAccuracy, caption_sizes, score_layout

    metric = LayoutAccuracy()
    scores = []
    for k, layout in enumerate(layouts):
        present = real["object_mask"][k]
        true_labels = real["labels"][k][present].tolist()
        stated = caption_sizes(real["caption"][k], real["colors"][k], [names[i] for i in true_labels])
        pred_labels = [names.index(box.label) for box in layout]
        pred_boxes = [(box.x, box.y, box.w, box.h) for box in layout]
        scores.append(score_layout(pred_labels, pred_boxes, true_labels, real["relations"][k], stated))
    metric.update(scores)
    values = metric.compute()
    return {k: values[k] for k in ("relation_accuracy", "object_set_accuracy", "size_accuracy")}


def inception_record(source: InceptionFile) -> dict[str, Any]:
    """metrics.json's record of an `InceptionFile`: path, kind, hash, and why it is not comparable."""
    record = {"inception": str(source.path), "kind": source.kind, "sha256": source.sha256}
    record["published_weights"] = source.published
    if source.warning() is not None:
        record["warning"] = source.warning()
    return record


# ---------------------------------------------------------------------------------------------- run
def check_args(args: argparse.Namespace) -> None:
    for name in ("max_captions", "judge_images", "soa_steps", "fd_steps", "clip_steps", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')}={value} must be >= 1")
    if Path(args.out).suffix != ".json":
        raise ValueError(f"--out '{args.out}' must be a .json file")
    if not Path(args.data).is_dir():
        raise FileNotFoundError(
            f"--data '{args.data}' is not a directory (expected annotations/ and images/)"
        )
    for flag in ("clip", "inception"):
        path = getattr(args, flag)
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(f"--{flag} '{path}' does not exist")


def generate_all(model: Any, real: dict[str, Any], args: argparse.Namespace, progress: Any) -> dict[str, Any]:
    """Images (K, 3, H, W) and layouts for both conditions, in batches of --batch-size captions."""
    from t2i.layout import boxes_from_tensors
    from t2i.layout.shapes import crop_masks

    names = model.image.class_names
    true_masks = crop_masks(real["masks"], real["boxes"], MASK_SIZE)
    truth = [
        boxes_from_tensors(real["labels"][k], real["boxes"][k], real["object_mask"][k], names, true_masks[k])
        for k in range(len(real["caption"]))
    ]
    out: dict[str, Any] = {"predicted_layout": ([], []), "ground_truth_layout": ([], truth)}
    task = progress.add_task("generate (predicted and ground-truth layouts)", total=len(truth))
    for index, start in enumerate(range(0, len(truth), args.batch_size)):
        captions = real["caption"][start : start + args.batch_size]
        pred = model.generate(captions, seed=args.seed + index)
        out["predicted_layout"][0].append(pred.images[:, 0])
        out["predicted_layout"][1].extend(per[0] for per in pred.layouts)
        given = model.generate(
            captions, seed=args.seed + index, layouts=truth[start : start + args.batch_size]
        )
        out["ground_truth_layout"][0].append(given.images[:, 0])
        progress.advance(task, len(captions))
    return {key: (torch.cat(images), layouts) for key, (images, layouts) in out.items()}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Score the checkpoint and write metrics.json; returns what was written."""
    from rich.progress import Progress

    from t2i import judges
    from t2i.clip_model import load_clip
    from t2i.data import CocoLayoutDataModule
    from t2i.metrics.inception import (
        IS_SPLITS,
        InceptionFeatures,
        extract,
        frechet_distance,
        inception_score,
        inspect_inception,
    )
    from t2i.pipeline import TextToImage
    from t2i.soa import NamedObject, color_index

    check_args(args)
    inception = inspect_inception(args.inception) if args.inception is not None else None
    if inception is not None and inception.warning() is not None:
        print(f"{PROG}: warning: {inception.warning()}", file=sys.stderr)
    device = resolve_device(args.device)
    out_path = Path(args.out)
    folder = Path(args.judges) if args.judges else out_path.parent / "judges"
    folder.mkdir(parents=True, exist_ok=True)
    model = TextToImage.from_checkpoint(args.ckpt, device, args.layout_ckpt)
    names = model.image.class_names
    layout = {"train_split": args.train_split, "images_subdir": args.images_subdir, "max_objects": 10}
    data = CocoLayoutDataModule(args.data, image_size=model.image_size, val_split=args.split, **layout)
    evaluation = data.dataset("val")
    if list(evaluation.category_names) != names:
        raise ValueError(
            f"--data categories {evaluation.category_names[1:]} differ from the model's {names[1:]}"
        )
    real = judges.real_tensors(evaluation, args.max_captions or len(evaluation))
    if inception is not None and inception.is_tf_inception and len(real["caption"]) < IS_SPLITS:
        raise ValueError(
            f"--inception: the Inception Score needs >= {IS_SPLITS} captions (one per split), "
            f"{len(real['caption'])} given (--max-captions, split '{args.split}')"
        )
    colored = judges.has_colors(real)
    result: dict[str, Any] = {"checkpoint": str(args.ckpt), "data": str(args.data), "split": args.split}
    result |= {"images": len(real["caption"]), "seed": args.seed, "judges": {}}
    with Progress(disable=args.quiet) as progress:
        needs_train = colored or inception is None
        boxes_only = CocoLayoutDataModule(args.data, image_size=model.image_size, with_masks=False, **layout)
        train = judges.real_tensors(boxes_only.dataset("train"), args.judge_images) if needs_train else None
        if colored:
            task = progress.add_task("SOA classifier", total=args.soa_steps)
            classifier, record = judges.soa_classifier(
                folder, train, len(names) - 1, args.soa_steps, lambda _: progress.advance(task)
            )
            result["judges"]["soa"] = record
        if inception is not None:
            progress.add_task(f"load {inception.kind} ({inception.fd_name})", total=None)
            extractor, fd_name = InceptionFeatures(inception).to(device), inception.fd_name
            result["judges"][fd_name] = inception_record(inception)
        else:
            task = progress.add_task("fd_local feature net", total=args.fd_steps)
            extractor, record = judges.fd_local_net(
                folder, train, len(names), args.fd_steps, lambda _: progress.advance(task)
            )
            fd_name, result["judges"]["fd_local"] = "fd_local", record | {"note": FD_LOCAL_NOTE}
        if args.clip is not None:
            judge, record = load_clip(args.clip), {"file": str(args.clip)}
        else:
            progress.add_task("judge CLIP (cached after the first run)", total=None)
            judge, record = judges.judge_clip(folder, Path(args.data), args.clip_steps, progress=False)
        towers = [model.image.text_encoder] + ([model.layout.generator.text] if model.layout else [])
        judges.check_independent(judge, towers, record["file"])
        result["judges"]["clip"] = record
        judge = judge.to(device).eval()
        generated = generate_all(model, real, args, progress)
    named = (
        [
            [NamedObject(int(label) - 1, color_index(c)) for label, c in zip(labels[present], colors)]
            for labels, present, colors in zip(real["labels"], real["object_mask"], real["colors"])
        ]
        if colored
        else []
    )
    truth_layouts = generated["ground_truth_layout"][1]
    result["real"] = clip_metrics(judge, real["image"], real["caption"], args.seed)
    real_features, real_logits = extract(extractor, real["image"])
    if real_logits is not None:
        result["real"] |= inception_score(real_logits, args.seed)
    if colored:
        result["real"] |= soa_metrics(classifier, real["image"], truth_layouts, named)
    for condition, (images, layouts) in generated.items():
        scores = clip_metrics(judge, images, real["caption"], args.seed)
        features, logits = extract(extractor, images)
        scores[fd_name] = frechet_distance(real_features, features)
        if logits is not None:
            scores |= inception_score(logits, args.seed)
        if colored:
            scores |= soa_metrics(classifier, images, layouts, named)
        scores |= layout_metrics(layouts, real, names)
        result[condition] = scores
    if colored:
        result["soa_c_vs_real"] = {
            c: result[c]["soa_c"] / max(result["real"]["soa_c"], 1e-9) for c in generated
        }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    pred = result["predicted_layout"]
    summary = f"{fd_name}={pred[fd_name]:.4g}"
    if "is" in pred:
        summary += f" is={pred['is']:.4g}+-{pred['is_std']:.3g}"
    summary += f" clip_score={pred['clip_score']:.4f}"
    summary += f" r_precision={pred.get('r_precision', float('nan')):.3f}"
    summary += f" relation_accuracy={pred['relation_accuracy']:.3f}"
    if colored:
        summary += f" soa_c={pred['soa_c']:.3f} (real {result['real']['soa_c']:.3f})"
    print(f"{PROG}: {result['images']} images, predicted layouts: {summary} -> {out_path}")
    return result


def main(argv: list[str]) -> int:
    """`t2i eval ...` (argv without the command name); returns the exit code."""
    args = build_parser().parse_args(argv)
    return run_guarded(PROG, lambda: run(args))
