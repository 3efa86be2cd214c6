"""t2i under `sync_batchnorm: true`: every layer that normalises with batch statistics is synchronised.

Lightning's `sync_batchnorm` converts `torch.nn.modules.batchnorm._BatchNorm` subclasses only
(`SyncBatchNorm.convert_sync_batchnorm`); a hand-written batch norm would be skipped silently. The
layout and image stages use only per-sample norms (LayerNorm, GroupNorm, LayoutNorm); the clip
stage's ResNet image tower has BatchNorm2d, which the conversion covers.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

CONFIGS = Path(__file__).parents[2] / "configs" / "t2i"


def unsynchronised_batch_statistics(model: nn.Module) -> list[str]:
    """Names of the modules that normalise with batch statistics and are not SyncBatchNorm.

    Batch norms, and any other module with a `running_mean` buffer (instance norms excepted: they
    normalise each sample on its own).
    """
    return [
        name
        for name, module in model.named_modules()
        if not isinstance(module, (nn.SyncBatchNorm, _InstanceNorm))
        and (isinstance(module, _BatchNorm) or getattr(module, "running_mean", None) is not None)
    ]


def training_module(config: str) -> nn.Module:
    """The LightningModule of a t2i config, built from its model section (no CLIP file: a random tower)."""
    spec = yaml.safe_load((CONFIGS / config).read_text())["model"]
    module_name, class_name = spec["class_path"].rsplit(".", 1)
    init_args = {
        **spec.get("init_args", {}),
        **({"clip_path": None} if "clip_path" in spec["init_args"] else {}),
    }
    return getattr(importlib.import_module(module_name), class_name)(**init_args)


@pytest.mark.parametrize(
    ("config", "batch_norms"),
    [("shapes_layout_tiny.yaml", 0), ("shapes_image_tiny.yaml", 0), ("shapes_clip_tiny.yaml", 19)],
)
def test_sync_batchnorm_converts_every_batch_statistic_layer(config, batch_norms):
    model = training_module(config)
    assert len(unsynchronised_batch_statistics(model)) == batch_norms
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # what Lightning's sync_batchnorm applies
    assert unsynchronised_batch_statistics(converted) == []
    assert sum(isinstance(m, nn.SyncBatchNorm) for m in converted.modules()) == batch_norms


def test_a_hand_written_batch_norm_is_what_the_check_catches():
    class FrameStatsNorm(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("running_mean", torch.zeros(4))

    model = nn.Sequential(nn.BatchNorm2d(4), FrameStatsNorm(), nn.InstanceNorm2d(4, track_running_stats=True))
    assert unsynchronised_batch_statistics(model) == ["0", "1"]
    assert unsynchronised_batch_statistics(nn.SyncBatchNorm.convert_sync_batchnorm(model)) == ["1"]
