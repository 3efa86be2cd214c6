"""SOA (semantic object accuracy): the scores by hand, and the object classifier learning real crops."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from t2i.data import CocoLayoutDataModule
from t2i.data.shapes_scenes import ShapesSpec, render_shapes
from t2i.eval.judges import has_colors, presence_targets, real_tensors
from t2i.eval.soa import NamedObject, classify, color_index, object_crops, soa_scores, train_object_classifier


def test_soa_scores_by_hand() -> None:
    red_circle, blue_square, red_square = NamedObject(0, 0), NamedObject(1, 2), NamedObject(1, 0)
    named = [[red_circle, blue_square], [red_circle], [red_square, blue_square]]
    found = [[(0, 0), (1, 0)], [(0, 0)], [(1, 0), (1, 2)]]  # image 0 paints the square red
    scores = soa_scores(found, named)
    # Per kind: red circle 2/2, blue square 1/2, red square 1/1 -> SOA-C = (1 + 0.5 + 1) / 3.
    assert scores["soa_c"] == pytest.approx(2.5 / 3)
    assert scores["soa_i"] == pytest.approx((0.5 + 1 + 1) / 3)
    # Two-object captions with different colours: images 0 (fails) and 2 (binds both).
    assert scores["color_binding"] == pytest.approx(0.5) and scores["color_binding_captions"] == 2
    with pytest.raises(ValueError, match="2 images but 3 captions"):
        soa_scores(found[:2], named)


def test_classifier_trained_on_real_crops_names_held_out_objects(tmp_path: Path) -> None:
    render_shapes(tmp_path, ShapesSpec(train=200, val=40, size=64, seed=3))
    data = CocoLayoutDataModule(str(tmp_path), image_size=64, with_masks=False)
    train, val = real_tensors(data.dataset("train"), 200), real_tensors(data.dataset("val"), 40)
    assert has_colors(train)
    present = train["object_mask"]
    colors = torch.tensor([color_index(c) for cs in train["colors"] for c in cs])
    crops = object_crops(train["image"], train["boxes"], present)
    classifier = train_object_classifier(
        crops, train["labels"][present] - 1, colors, num_shapes=4, steps=100, batch_size=64
    )
    shapes, predicted_colors = classify(
        classifier, object_crops(val["image"], val["boxes"], val["object_mask"])
    )
    true_shapes = val["labels"][val["object_mask"]] - 1
    true_colors = torch.tensor([color_index(c) for cs in val["colors"] for c in cs])
    assert (shapes == true_shapes).float().mean() > 0.9
    assert (predicted_colors == true_colors).float().mean() > 0.9
    # Multi-hot fd_local targets: classes, then (class, colour) pairs.
    targets = presence_targets(val, num_classes=5)
    assert targets.shape == (40, 5 + 5 * 6) and targets[:, 0].sum() == 0  # label 0 is padding
    for k in range(40):
        labels = set(val["labels"][k][val["object_mask"][k]].tolist())
        assert set(targets[k, :5].nonzero().flatten().tolist()) == labels
