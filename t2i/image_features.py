"""fd_local's feature net (a net trained here on real images, never called FID) and judge files.

Without `--inception`, `t2i eval` trains `LocalFeatureNet` on real images to say which objects
(class, and colour when annotated) each image holds; the Fréchet distance in its feature space is
reported as `fd_local`, comparable only between evaluations that share the same net, never as FID.
FID and the Inception Score from a local Inception file are `t2i.metrics.inception`'s.

Trained judges are `ganforge.checkpoint` artefacts: a ganforge header, their config and weights, read
back with `weights_only=True`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.checkpoint import load_artifact, save_artifact


class LocalFeatureNet(nn.Module):
    """Images (B, 3, H, W) in [0, 1] -> features (B, 128), resized to `image_size` first.

    A 4-block conv net whose pooled features feed a multi-label head (`targets` outputs) during
    training; `forward` returns the features, `logits` the head.
    """

    num_features = 128

    def __init__(self, targets: int, image_size: int = 64, width: int = 32) -> None:
        super().__init__()
        self.image_size = image_size
        layers: list[nn.Module] = []
        cin = 3
        for cout in (width, 2 * width, 4 * width, self.num_features):
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(8, cout), nn.ReLU(), nn.MaxPool2d(2)]
            cin = cout
        self.trunk = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(self.num_features, targets)

    def forward(self, images: Tensor) -> Tensor:
        if images.shape[-1] != self.image_size:
            images = F.interpolate(
                images, size=(self.image_size, self.image_size), mode="bilinear", antialias=True
            )
        return self.trunk(images * 2 - 1)

    def logits(self, images: Tensor) -> Tensor:
        """Multi-label logits (B, targets)."""
        return self.head(self(images))


def train_local_features(
    images: Tensor,
    targets: Tensor,
    steps: int = 800,
    batch_size: int = 64,
    seed: int = 0,
    on_step: Callable[[int], None] | None = None,
) -> LocalFeatureNet:
    """Train a `LocalFeatureNet` on real images (N, 3, H, W) in [0, 1] with multi-hot targets (N, T)."""
    if len(images) == 0:
        raise ValueError("fd_local: no real images to train the feature net on")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = LocalFeatureNet(targets.shape[1], image_size=images.shape[-1])
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()
    for step in range(steps):
        idx = torch.randint(len(images), (min(batch_size, len(images)),), generator=gen)
        loss = F.binary_cross_entropy_with_logits(net.logits(images[idx]), targets[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if on_step is not None:
            on_step(step)
    return net.eval()


# ---------------------------------------------------------------------------------------------- judge files
def save_judge(module: nn.Module, config: dict[str, Any], path: str | os.PathLike, kind: str) -> Path:
    """Write a trained judge (`kind`: "soa", "fd_local", ...) with its config, atomically."""
    return save_artifact(path, f"t2i-judge-{kind}", config, module.state_dict())


def load_judge(path: str | os.PathLike, kind: str) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """(config, state_dict) of a judge written by `save_judge`; CheckpointError naming the file otherwise."""
    return load_artifact(path, f"t2i-judge-{kind}")
