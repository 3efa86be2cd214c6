"""`t2i eval`: SOA, colour binding, relation accuracy, FID (or fd_local), CLIP score and R-precision.

For every image of the evaluation split (first caption each, as AttnGAN / Obj-GAN evaluate) the
model generates one image twice: from its own predicted layout (the full pipeline) and from the
ground-truth layout (boxes and shapes; Obj-GAN reports both). metrics.json holds, per condition:
- soa_c, soa_i, color_binding (`t2i.eval.soa`; shapes-scenes data only, colours are annotated there),
  with the same numbers on the real images as the ceiling;
- relation_accuracy, object_set_accuracy, size_accuracy of the predicted layouts
  (`t2i.eval.layout_metrics`);
- fid and is (Inception Score, mean and std over 10 splits) when `--inception` holds the TF-Inception
  weights that published tables use; fd_inception_v3 / fd_torchscript (not FID, with a warning) for
  other Inception files (`t2i.eval.inception`); without one, fd_local (`t2i.eval.image_features`: not FID);
- clip_score (mean cosine of judge-CLIP image and caption embeddings, GALIP's convention) and
  r_precision (AttnGAN protocol, 100 candidates), with `--clip` or a judge CLIP trained here under
  another seed (`t2i.eval.judges`); real images give the ceiling.
Judges trained here are cached in `--judges` (default: a `judges/` folder beside `--out`).
`--max-captions N` scores the first N val images, one caption each (published COCO FIDs use 30,000
captions of COCO 2014 val).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ganforge.cli import alias, parse_options
from ganforge.devices import DEFAULT_DEVICE, DEVICE_HELP, resolve_device
from ganforge.errors import UserError, run_guarded

if TYPE_CHECKING:  # imported where used, so `t2i eval --help` stays fast
    from rich.progress import Progress

    from t2i.eval.inception import InceptionFile
    from t2i.pipeline import TextToImage

PROG = "t2i eval"
FD_LOCAL_NOTE = (
    "Fréchet distance in the features of a small conv net trained here to name the objects of real images. "
    "Not FID: comparable only between evaluations that share this net (the same --judges folder)"
)
R_PRECISION_CANDIDATES = 100
MASK_SIZE = 16  # side of the box-frame masks of ground-truth layouts


@dataclass(frozen=True)
class EvalOptions:
    """`t2i eval` options (see `build_parser` for each one's meaning)."""

    ckpt_path: str
    data: str
    out: str
    clip: str | None = None
    inception: str | None = None
    layout_ckpt: str | None = None
    split: str = "val"
    train_split: str = "train"
    images_subdir: str = "images/{split}"
    max_captions: int | None = None
    seed: int = 0
    judges: str | None = None
    judge_images: int = 5000
    soa_steps: int = 1500
    fd_steps: int = 800
    clip_steps: int = 400
    batch_size: int = 64
    device: str = DEFAULT_DEVICE
    quiet: bool = False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Score a t2i model on a COCO-format split: SOA, colour binding, relation accuracy, FID "
        "and IS (with the TF-Inception weights; fd_* with another --inception, fd_local without), CLIP score "
        "and R-precision, for predicted and ground-truth layouts.",
    )
    alias(parser, "--ckpt_path", "--ckpt", required=True, help="t2i bundle or image-stage checkpoint (.ckpt)")
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
    parser.add_argument("--device", default=DEFAULT_DEVICE, help=DEVICE_HELP)
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
    from t2i.eval.soa import classify, object_crops, soa_scores

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
    from t2i.eval.retrieval import r_precision
    from t2i.models.clip_model import encode_images, tokenize
    from t2i.models.text import text_features

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
    from t2i.eval.layout_metrics import LayoutAccuracy, caption_sizes, score_layout

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
@dataclass
class Evaluation:
    """What `load` prepares: the model, the scored images and the judges' settings."""

    model: TextToImage
    device: torch.device
    real: dict[str, Any]  # `judges.real_tensors` of the evaluation split
    names: list[str]  # class names, "__background__" first
    colored: bool  # shapes-scenes colours annotated: SOA and colour binding are scored
    inception: InceptionFile | None
    folder: Path  # cached judges
    datamodule_args: dict[str, Any]  # CocoLayoutDataModule arguments shared by every split


@dataclass
class Judges:
    """The networks that score images and where each came from (metrics.json's `judges`)."""

    classifier: torch.nn.Module | None  # SOA, with colours only
    extractor: Any  # Inception features or the fd_local net
    fd_name: str  # the Fréchet distance's key: fid, fd_inception_v3, fd_torchscript or fd_local
    clip: Any
    records: dict[str, Any]


def check_options(options: EvalOptions) -> None:
    for name in ("max_captions", "judge_images", "soa_steps", "fd_steps", "clip_steps", "batch_size"):
        value = getattr(options, name)
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')}={value} must be >= 1")
    if Path(options.out).suffix != ".json":
        raise UserError(f"--out '{options.out}' must be a .json file")
    if not Path(options.data).is_dir():
        raise FileNotFoundError(
            f"--data '{options.data}' is not a directory (expected annotations/ and images/)"
        )
    for flag in ("clip", "inception"):
        path = getattr(options, flag)
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(f"--{flag} '{path}' does not exist")


def load(options: EvalOptions) -> Evaluation:
    """Check the options, load the model and the evaluation split (one caption per image)."""
    from t2i.data import CocoLayoutDataModule
    from t2i.eval import judges
    from t2i.eval.inception import IS_SPLITS, inspect_inception
    from t2i.pipeline import TextToImage

    check_options(options)
    inception = inspect_inception(options.inception) if options.inception is not None else None
    if inception is not None and inception.warning() is not None:
        print(f"{PROG}: warning: {inception.warning()}", file=sys.stderr)
    device = resolve_device(options.device)
    folder = Path(options.judges) if options.judges else Path(options.out).parent / "judges"
    folder.mkdir(parents=True, exist_ok=True)
    model = TextToImage.from_checkpoint(options.ckpt_path, device, options.layout_ckpt)
    names = model.image.class_names
    datamodule_args = {
        "image_size": model.image_size,
        "train_split": options.train_split,
        "images_subdir": options.images_subdir,
        "max_objects": 10,
    }
    data = CocoLayoutDataModule(options.data, val_split=options.split, **datamodule_args)
    evaluation = data.dataset("val")
    if list(evaluation.category_names) != names:
        raise UserError(
            f"--data categories {evaluation.category_names[1:]} differ from the model's {names[1:]}"
        )
    real = judges.real_tensors(evaluation, options.max_captions or len(evaluation))
    if inception is not None and inception.is_tf_inception and len(real["caption"]) < IS_SPLITS:
        raise UserError(
            f"--inception: the Inception Score needs >= {IS_SPLITS} captions (one per split), "
            f"{len(real['caption'])} given (--max-captions, split '{options.split}')"
        )
    colored = judges.has_colors(real)
    return Evaluation(model, device, real, names, colored, inception, folder, datamodule_args)


def train_judges(options: EvalOptions, evaluation: Evaluation, progress: Progress) -> Judges:
    """The SOA classifier (with colours), the Fréchet feature net and the judge CLIP: loaded or trained."""
    from t2i.data import CocoLayoutDataModule
    from t2i.eval import judges
    from t2i.eval.inception import InceptionFeatures
    from t2i.models.clip_model import load_clip

    folder, names, inception = evaluation.folder, evaluation.names, evaluation.inception
    records: dict[str, Any] = {}
    classifier = None
    needs_train = evaluation.colored or inception is None
    boxes_only = CocoLayoutDataModule(options.data, with_masks=False, **evaluation.datamodule_args)
    train = judges.real_tensors(boxes_only.dataset("train"), options.judge_images) if needs_train else None
    if evaluation.colored:
        task = progress.add_task("SOA classifier", total=options.soa_steps)
        classifier, records["soa"] = judges.soa_classifier(
            folder, train, len(names) - 1, options.soa_steps, lambda _: progress.advance(task)
        )
    if inception is not None:
        progress.add_task(f"load {inception.kind} ({inception.fd_name})", total=None)
        extractor, fd_name = InceptionFeatures(inception).to(evaluation.device), inception.fd_name
        records[fd_name] = inception_record(inception)
    else:
        task = progress.add_task("fd_local feature net", total=options.fd_steps)
        extractor, record = judges.fd_local_net(
            folder, train, len(names), options.fd_steps, lambda _: progress.advance(task)
        )
        fd_name, records["fd_local"] = "fd_local", record | {"note": FD_LOCAL_NOTE}
    if options.clip is not None:
        judge, record = load_clip(options.clip), {"file": str(options.clip)}
    else:
        progress.add_task("judge CLIP (cached after the first run)", total=None)
        judge, record = judges.judge_clip(folder, Path(options.data), options.clip_steps, progress=False)
    model = evaluation.model
    towers = [model.image.text_encoder] + ([model.layout.generator.text] if model.layout else [])
    judges.check_independent(judge, towers, record["file"])
    records["clip"] = record
    return Judges(classifier, extractor, fd_name, judge.to(evaluation.device).eval(), records)


def generate_all(
    model: TextToImage, real: dict[str, Any], options: EvalOptions, progress: Progress
) -> dict[str, Any]:
    """Images (K, 3, H, W) and layouts for both conditions, in batches of --batch-size captions."""
    from t2i.models.layout import boxes_from_tensors
    from t2i.models.layout.mask_generator import crop_masks
    from t2i.models.layout.order import mention_order

    names = model.image.class_names
    true_masks = crop_masks(real["masks"], real["boxes"], MASK_SIZE)
    truth = []
    for k, caption in enumerate(real["caption"]):  # in mention order, as the layout stage draws them
        boxes = boxes_from_tensors(
            real["labels"][k], real["boxes"][k], real["object_mask"][k], names, true_masks[k]
        )
        order = mention_order(caption, [box.label for box in boxes], real["colors"][k][: len(boxes)])
        truth.append([boxes[i] for i in order])
    out: dict[str, Any] = {"predicted_layout": ([], []), "ground_truth_layout": ([], truth)}
    task = progress.add_task("generate (predicted and ground-truth layouts)", total=len(truth))
    for index, start in enumerate(range(0, len(truth), options.batch_size)):
        captions = real["caption"][start : start + options.batch_size]
        pred = model.generate(captions, seed=options.seed + index)
        out["predicted_layout"][0].append(pred.images[:, 0])
        out["predicted_layout"][1].extend(per[0] for per in pred.layouts)
        given = model.generate(
            captions, seed=options.seed + index, layouts=truth[start : start + options.batch_size]
        )
        out["ground_truth_layout"][0].append(given.images[:, 0])
        progress.advance(task, len(captions))
    return {key: (torch.cat(images), layouts) for key, (images, layouts) in out.items()}


def score(evaluation: Evaluation, judged: Judges, generated: dict[str, Any], seed: int) -> dict[str, Any]:
    """metrics.json's scores: `real` (the ceiling), one entry per condition, with colours soa_c_vs_real."""
    from ganforge.metrics import frechet_distance
    from t2i.eval.inception import extract, inception_score
    from t2i.eval.soa import NamedObject, color_index

    real = evaluation.real
    named = (
        [
            [NamedObject(int(label) - 1, color_index(c)) for label, c in zip(labels[present], colors)]
            for labels, present, colors in zip(real["labels"], real["object_mask"], real["colors"])
        ]
        if evaluation.colored
        else []
    )
    truth_layouts = generated["ground_truth_layout"][1]
    scores: dict[str, Any] = {"real": clip_metrics(judged.clip, real["image"], real["caption"], seed)}
    real_features, real_logits = extract(judged.extractor, real["image"])
    if real_logits is not None:
        scores["real"] |= inception_score(real_logits, seed)
    if evaluation.colored:
        scores["real"] |= soa_metrics(judged.classifier, real["image"], truth_layouts, named)
    for condition, (images, layouts) in generated.items():
        values = clip_metrics(judged.clip, images, real["caption"], seed)
        features, logits = extract(judged.extractor, images)
        values[judged.fd_name] = frechet_distance(real_features, features)
        if logits is not None:
            values |= inception_score(logits, seed)
        if evaluation.colored:
            values |= soa_metrics(judged.classifier, images, layouts, named)
        values |= layout_metrics(layouts, real, evaluation.names)
        scores[condition] = values
    if evaluation.colored:
        scores["soa_c_vs_real"] = {
            c: scores[c]["soa_c"] / max(scores["real"]["soa_c"], 1e-9) for c in generated
        }
    return scores


def report(result: dict[str, Any], fd_name: str, colored: bool, out: Path) -> None:
    """Write metrics.json and print the one-line summary of the predicted-layout condition."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    pred = result["predicted_layout"]
    summary = f"{fd_name}={pred[fd_name]:.4g}"
    if "is" in pred:
        summary += f" is={pred['is']:.4g}+-{pred['is_std']:.3g}"
    summary += f" clip_score={pred['clip_score']:.4f}"
    summary += f" r_precision={pred.get('r_precision', float('nan')):.3f}"
    summary += f" relation_accuracy={pred['relation_accuracy']:.3f}"
    if colored:
        summary += f" soa_c={pred['soa_c']:.3f} (real {result['real']['soa_c']:.3f})"
    print(f"{PROG}: {result['images']} images, predicted layouts: {summary} -> {out}")


def run(options: EvalOptions) -> dict[str, Any]:
    """Score the checkpoint and write metrics.json; returns what was written."""
    from rich.progress import Progress

    evaluation = load(options)
    result: dict[str, Any] = {
        "checkpoint": str(options.ckpt_path),
        "data": str(options.data),
        "split": options.split,
        "images": len(evaluation.real["caption"]),
        "seed": options.seed,
    }
    with Progress(disable=options.quiet) as progress:
        judged = train_judges(options, evaluation, progress)
        generated = generate_all(evaluation.model, evaluation.real, options, progress)
    result["judges"] = judged.records
    result |= score(evaluation, judged, generated, options.seed)
    report(result, judged.fd_name, evaluation.colored, Path(options.out))
    return result


def main(argv: list[str]) -> int:
    """`t2i eval ...` (argv without the command name); returns the exit code."""
    options = parse_options(build_parser(), EvalOptions, argv)
    return run_guarded(PROG, lambda: run(options))
