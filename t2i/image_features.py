"""Features for Fréchet distances: a local Inception file (FID), else a net trained here (fd_local).

FID (Heusel et al. 2017) is computed by torchmetrics' `FrechetInceptionDistance` with a custom
feature extractor, so nothing is downloaded:
- `InceptionFeatures` loads a local Inception-v3: the StyleGAN2-ADA TorchScript
  (`inception-2015-12-05.pt`, called as `net(uint8 images, return_features=True)` -> (N, 2048)), or
  a torchvision `inception_v3` state dict (2048-d pool features of 299 x 299 inputs);
- without one, `LocalFeatureNet` is trained here on real images to say which objects (class, and
  colour when annotated) each image holds; the distance in its feature space is reported as
  `fd_local`, comparable only between evaluations that share the same net, never as FID.

Trained judges are saved with a ganforge header and read back with `weights_only=True`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance

from ganforge import __version__
from ganforge.checkpoint import (
    FORMAT_VERSION,
    HEADER_KEY,
    CheckpointError,
    atomic_torch_save,
    load_checkpoint,
)

INCEPTION_SIZE = 299


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


class InceptionFeatures(nn.Module):
    """Inception-v3 pool features (B, 2048) of images (B, 3, H, W) in [0, 1], from a local weights file."""

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__()
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"--inception '{path}' does not exist; expected a local Inception-v3 file"
            )
        try:
            self.net = torch.jit.load(str(path), map_location="cpu").eval()
            self.torchscript = True
        except RuntimeError:
            self.net = _torchvision_inception(path)
            self.torchscript = False
        with torch.no_grad():  # 2048 for Inception-v3; read from the file's own output
            self.num_features = int(self(torch.zeros(1, 3, 64, 64)).shape[-1])

    def forward(self, images: Tensor) -> Tensor:
        if self.torchscript:  # StyleGAN2-ADA convention: uint8 in, resizing inside
            return self.net((images.clamp(0, 1) * 255).round().to(torch.uint8), return_features=True)
        images = F.interpolate(images, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", antialias=True)
        mean = images.new_tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)  # torchvision's ImageNet stats
        std = images.new_tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        return self.net((images - mean) / std)


def _torchvision_inception(path: Path) -> nn.Module:
    from torchvision.models import inception_v3

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - unpickling raises many types
        raise ValueError(
            f"--inception '{path}' is neither a TorchScript Inception nor a torchvision inception_v3 "
            f"state dict ({type(err).__name__})"
        ) from None
    net = inception_v3(weights=None, aux_logits=True, init_weights=False)
    try:
        net.load_state_dict(state)
    except (RuntimeError, TypeError) as err:
        first = str(err).strip().splitlines()[0][:160]
        raise ValueError(
            f"--inception '{path}' is not a torchvision inception_v3 state dict ({first})"
        ) from None
    net.fc = nn.Identity()  # pool features instead of ImageNet logits
    return net.eval()


@torch.no_grad()
def frechet_distance(extractor: nn.Module, real: Tensor, fake: Tensor, batch_size: int = 100) -> float:
    """Fréchet distance between the extractor's features of real (N, 3, H, W) and fake (M, 3, H, W) images."""
    metric = FrechetInceptionDistance(feature=extractor.eval(), normalize=True, reset_real_features=False)
    for images, is_real in ((real, True), (fake, False)):
        for start in range(0, len(images), batch_size):
            metric.update(images[start : start + batch_size].float(), real=is_real)
    return float(metric.compute())


# ---------------------------------------------------------------------------------------------- judge files
def save_judge(module: nn.Module, config: dict[str, Any], path: str | os.PathLike, kind: str) -> Path:
    """Write a trained judge (`kind`: "soa", "fd_local", ...) with its config, atomically."""
    header = {
        "format_version": FORMAT_VERSION,
        "family": f"t2i-judge-{kind}",
        "ganforge_version": __version__,
    }
    atomic_torch_save({HEADER_KEY: header, "config": config, "state_dict": module.state_dict()}, path)
    return Path(path)


def load_judge(path: str | os.PathLike, kind: str) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """(config, state_dict) of a judge written by `save_judge`; CheckpointError naming the file otherwise."""
    ckpt = load_checkpoint(path, family=f"t2i-judge-{kind}")
    if not isinstance(ckpt.get("config"), dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise CheckpointError(f"judge file '{path}' lacks its config or state_dict")
    return ckpt["config"], ckpt["state_dict"]
