"""Learning: the layout stage learns object sets and spatial relations from text on a small shapes set.

The text tower is a small CLIP text transformer trained from scratch with the box likelihood (no
weights are downloaded); the shape generator trains adversarially alongside, as in the real stage.
Held-out captions are those of the val split (images never seen in training).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from t2i.data import CocoLayoutDataset, ShapesSpec, collate_layouts, render_shapes
from t2i.eval.layout_metrics import LayoutAccuracy, caption_sizes, score_layout
from t2i.layout_stage import LayoutGAN

CLASSES = ["circle", "square", "triangle", "diamond"]
G_STEPS = 1000


class InMemory(Dataset):
    """Items of a CocoLayoutDataset rasterised once; training items draw one of the 5 captions."""

    def __init__(self, source: CocoLayoutDataset) -> None:
        self.items = [source[i] for i in range(len(source))]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = dict(self.items[index])
        item["caption"] = item["captions"][int(torch.randint(len(item["captions"]), ()))]
        return item


def _dataset(root: Path, split: str) -> CocoLayoutDataset:
    ann = root / "annotations"
    return CocoLayoutDataset(
        root / "images" / split,
        ann / f"instances_{split}.json",
        ann / f"captions_{split}.json",
        image_size=32,
        max_objects=4,
        train=split == "train",
    )


@pytest.mark.slow
def test_layouts_follow_captions_on_held_out_captions(tmp_path: Path) -> None:
    render_shapes(tmp_path, ShapesSpec(train=1000, val=100, size=64, seed=0))
    train = DataLoader(
        InMemory(_dataset(tmp_path, "train")),
        batch_size=64,
        shuffle=True,
        drop_last=True,
        collate_fn=partial(collate_layouts, max_objects=4),
    )
    pl.seed_everything(0, verbose=False)
    model = LayoutGAN(
        CLASSES,
        max_objects=4,
        text_trainable=True,
        text_embed_dim=64,
        text_width=64,
        text_layers=1,
        box_hidden=64,
        box_layers=2,
        box_dropout=0.0,
        box_lr=1e-3,
        text_lr=1e-3,
        mask_size=8,
        layout_size=16,
        shape_hidden=32,
        shape_channels=16,
        d_channels=8,
        gan=LayoutGAN.gan_options(ema_decay=0.9),
    )
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=G_STEPS,  # generator steps
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, train)

    val = _dataset(tmp_path, "val")
    model.eval()
    metric = LayoutAccuracy()
    names = model.class_names
    for start in range(0, len(val), 50):
        batch = collate_layouts([val[i] for i in range(start, min(start + 50, len(val)))], max_objects=4)
        layouts = model.generate_layouts(batch["caption"], torch.Generator().manual_seed(start))
        for b, layout in enumerate(layouts):
            true = batch["labels"][b][batch["object_mask"][b]].tolist()
            sizes = caption_sizes(batch["caption"][b], batch["colors"][b], [names[i] for i in true])
            pred = ([names.index(x.label) for x in layout], [(x.x, x.y, x.w, x.h) for x in layout])
            metric.update([score_layout(*pred, true, batch["relations"][b], sizes)])
    values = metric.compute()
    assert values["object_set_accuracy"] >= 0.8, values
    assert values["relation_accuracy"] >= 0.8, values
