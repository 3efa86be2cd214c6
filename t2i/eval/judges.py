"""The judges `t2i eval` scores images with, trained on REAL data only and cached in a folder.

- `soa.pt`: the SOA object classifier (shape + colour of a crop at a box), `t2i.eval.soa`;
- `fd_local.pt`: the fd_local feature net, `t2i.eval.image_features` (unused when an Inception is given);
- `judge_clip.pt`: a small CLIP for CLIP score and R-precision when no `--clip` is given, trained
  with the clip stage under another seed (so other weights and another data order) than the CLIP
  that conditions the generator. A generator can fit the quirks of its own text encoder; scoring it
  with that encoder would reward exactly that, so `check_independent` refuses it.

Each judge is loaded when its file exists in the folder, otherwise trained and saved there, as a
`ganforge.checkpoint` artefact (a ganforge header, its config and weights, read with weights_only=True).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ganforge.checkpoint import load_artifact, save_artifact
from ganforge.errors import UserError
from t2i.data.coco import CocoLayoutDataset
from t2i.data.shapes_scenes import COLORS
from t2i.eval.image_features import (
    LocalFeatureNet,
    load_local_features,
    save_local_features,
    train_local_features,
)
from t2i.eval.soa import ObjectClassifier, color_index, object_crops, train_object_classifier
from t2i.models.clip_model import CLIP, load_clip

SOA_FAMILY = "t2i-judge-soa"  # the ganforge header's family of a saved SOA classifier
JUDGE_CLIP_SEED = 1  # the clip configs train with seed 0; the judge must differ
JUDGE_CLIP_ARGS = {  # configs/t2i/shapes_clip_tiny.yaml's model: about a minute per 400 steps on a CPU thread
    "embed_dim": 64,
    "image_resolution": 32,
    "vision_width": 16,
    "vision_layers": (1, 1, 1, 1),
    "context_length": 32,
    "text_width": 64,
    "text_layers": 2,
    "lr": 0.003,
    "warmup_steps": 40,
}


def real_tensors(dataset: CocoLayoutDataset, limit: int) -> dict[str, Any]:
    """The first `limit` items stacked: image (K, 3, H, W), boxes (K, N, 4), labels, object_mask, colors."""
    from t2i.data.coco import collate_layouts

    items = [dataset[i] for i in range(min(limit, len(dataset)))]
    return collate_layouts(items, max_objects=max(1, max(item["num_objects"] for item in items)))


def has_colors(batch: dict[str, Any]) -> bool:
    """Whether every object carries a shapes-scenes colour attribute (SOA needs them)."""
    return all(c in COLORS for colors in batch["colors"] for c in colors)


# ---------------------------------------------------------------------------------------------- SOA
def soa_classifier(
    folder: Path,
    real: dict[str, Any],
    num_shapes: int,
    steps: int,
    on_step: Callable[[int], None] | None = None,
) -> tuple[ObjectClassifier, dict[str, Any]]:
    """The SOA classifier from `folder/soa.pt`, or trained on the crops of `real` and saved there."""
    path = folder / "soa.pt"
    if path.exists():
        config, state = load_artifact(path, SOA_FAMILY)
        classifier = ObjectClassifier(config["num_shapes"], len(COLORS))
        classifier.load_state_dict(state)
        return classifier.eval(), {**config, "file": str(path), "trained_now": False}
    present = real["object_mask"]
    crops = object_crops(real["image"], real["boxes"], present)
    shapes = real["labels"][present] - 1
    colors = torch.tensor([color_index(c) for cs in real["colors"] for c in cs])
    classifier = train_object_classifier(crops, shapes, colors, num_shapes, steps=steps, on_step=on_step)
    config = {"num_shapes": num_shapes, "train_crops": len(crops), "steps": steps}
    save_artifact(path, SOA_FAMILY, config, classifier.state_dict())
    return classifier, {**config, "file": str(path), "trained_now": True}


# ---------------------------------------------------------------------------------------------- fd_local
def presence_targets(real: dict[str, Any], num_classes: int) -> Tensor:
    """Multi-hot (K, T): the classes, and (class, colour) pairs when colours exist, in each image."""
    colored = has_colors(real)
    width = num_classes + (num_classes * len(COLORS) if colored else 0)
    targets = torch.zeros(len(real["labels"]), width)
    for k, (labels, present, colors) in enumerate(zip(real["labels"], real["object_mask"], real["colors"])):
        for label, color in zip(labels[present].tolist(), colors):
            targets[k, label] = 1.0
            if colored:
                targets[k, num_classes + label * len(COLORS) + color_index(color)] = 1.0
    return targets


def fd_local_net(
    folder: Path,
    real: dict[str, Any],
    num_classes: int,
    steps: int,
    on_step: Callable[[int], None] | None = None,
) -> tuple[LocalFeatureNet, dict[str, Any]]:
    """The fd_local feature net from `folder/fd_local.pt`, or trained on `real` images and saved there."""
    path = folder / "fd_local.pt"
    if path.exists():
        net, config = load_local_features(path)
        return net, {**config, "file": str(path), "trained_now": False}
    targets = presence_targets(real, num_classes)
    net, accuracy = train_local_features(real["image"], targets, steps=steps, on_step=on_step)
    config = save_local_features(net, path, train_images=len(targets))
    return net, {**config, "steps": steps, "train_accuracy": accuracy, "file": str(path), "trained_now": True}


# ---------------------------------------------------------------------------------------------- judge CLIP
def judge_clip(folder: Path, data_dir: Path, steps: int, progress: bool) -> tuple[CLIP, dict[str, Any]]:
    """The judge CLIP from `folder/judge_clip.pt`, or a small CLIP trained on `data_dir` (seed 1) there."""
    path = folder / "judge_clip.pt"
    if not path.exists():
        import pytorch_lightning as pl

        from t2i.clip_stage import ContrastiveCLIP
        from t2i.data import CocoLayoutDataModule

        pl.seed_everything(JUDGE_CLIP_SEED, workers=True, verbose=False)
        model = ContrastiveCLIP(**JUDGE_CLIP_ARGS, export_path=str(path), seed=JUDGE_CLIP_SEED)
        size = len(CocoLayoutDataModule(str(data_dir), with_masks=False).dataset("train"))
        # Full batches only (drop_last): a small train split gets one batch of all its images.
        data = CocoLayoutDataModule(str(data_dir), image_size=64, batch_size=min(64, size), with_masks=False)
        trainer = pl.Trainer(
            accelerator="auto",
            devices=1,
            max_steps=steps,
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            enable_progress_bar=progress,
            limit_val_batches=0,
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            trainer.fit(model, data)  # writes the state dict to `path` when fitting ends
    return load_clip(path), {"file": str(path), "seed": JUDGE_CLIP_SEED, "steps": steps}


def check_independent(judge: CLIP, towers: list[nn.Module], judge_path: str) -> None:
    """UserError when the judge CLIP's text tower is one that conditions the generator."""
    for tower in towers:
        ours, theirs = judge.token_embedding.weight, tower.token_embedding.weight
        if ours.shape == theirs.shape and torch.allclose(ours.float().cpu(), theirs.float().cpu(), atol=1e-3):
            raise UserError(
                f"--clip '{judge_path}' is the CLIP that conditions the generator; CLIP score and "
                "R-precision need a separately trained one (e.g. configs/t2i/shapes_clip_judge.yaml)"
            )
