"""fd_local's feature net: a net trained here on real images, never called FID.

Without `--inception`, `t2i eval` trains `LocalFeatureNet` on real images to say which objects
(class, and colour when annotated) each image holds (`ganforge.metrics.train_feature_net`); the
Fréchet distance in its feature space (`ganforge.metrics.frechet_distance`) is reported as
`fd_local`, comparable only between evaluations that share the same net, never as FID. FID and the
Inception Score from a local Inception file are `t2i.eval.inception`'s.

Saved nets are `ganforge.metrics` feature-net artefacts of family `FAMILY`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.errors import UserError
from ganforge.metrics import FeatureNet, load_feature_net, save_feature_net, train_feature_net

FAMILY = "t2i-judge-fd_local"  # the ganforge header's family of a saved net


class LocalFeatureNet(FeatureNet):
    """Images (B, 3, H, W) in [0, 1] -> features (B, 128), resized to `image_size` first.

    A 4-block conv net whose pooled features feed a multi-label head (`targets` outputs) during
    training; `forward` returns the features, `logits` the head's (B, targets).
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


def train_local_features(
    images: Tensor,
    targets: Tensor,
    steps: int = 800,
    batch_size: int = 64,
    seed: int = 0,
    device: str | torch.device = "cpu",
    on_step: Callable[[int], None] | None = None,
) -> tuple[LocalFeatureNet, float]:
    """Train a `LocalFeatureNet` on real images (N, 3, H, W) in [0, 1] with multi-hot targets (N, T).

    Returns the net (eval mode, on `device`) and its per-target accuracy on the last 64 batches.
    """
    if len(images) == 0:
        raise UserError("fd_local: no real images to train the feature net on")
    return train_feature_net(
        lambda: LocalFeatureNet(targets.shape[1], image_size=images.shape[-1]),
        lambda index, _: (images[index], targets[index]),
        len(images),
        steps=steps,
        batch_size=min(batch_size, len(images)),
        seed=seed,
        device=device,
        on_step=on_step,
    )


def save_local_features(net: LocalFeatureNet, path: str | os.PathLike, **notes: Any) -> dict[str, Any]:
    """Write the net; returns the config saved with it: `targets`, `image_size`, then `notes` (plain data)."""
    config = {"targets": net.head.out_features, "image_size": net.image_size, **notes}
    save_feature_net(net, path, FAMILY, config)
    return config


def load_local_features(path: str | os.PathLike) -> tuple[LocalFeatureNet, dict[str, Any]]:
    """(net, config) of a file written by `save_local_features`; CheckpointError naming the file otherwise."""
    return load_feature_net(
        path, FAMILY, lambda config: LocalFeatureNet(config["targets"], config["image_size"])
    )
