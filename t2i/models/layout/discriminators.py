"""Mask discriminators of the shape generator (Obj-GAN §3.1): an instance D per box, a global D per layout.

The instance D judges one box-frame mask with projection conditioning on its class (Miyato &
Koyama 2018: logit = psi(phi(x)) + <embed(y), phi(x)>); the global D judges the whole layout as
per-class mask channels on the image grid. Both use spectral normalisation.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ganforge.errors import UserError
from ganforge.spectral_norm import spectral_norm


def _down_stack(in_channels: int, channels: int, size: int) -> tuple[nn.Sequential, int]:
    """Strided 4x4 convs from (in_channels, size, size) down to 4x4; returns it and its out channels."""
    blocks: list[nn.Module] = []
    width, current = in_channels, size
    out = channels
    while current > 4:
        blocks += [spectral_norm(nn.Conv2d(width, out, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
        width, current, out = out, current // 2, min(out * 2, 8 * channels)
    return nn.Sequential(*blocks), width


def _check_size(name: str, size: int) -> None:
    if size < 4 or size & (size - 1):
        raise UserError(f"{name}: input size {size}; expected a power of two >= 4")


class InstanceMaskDiscriminator(nn.Module):
    """Logits (K,) for box-frame masks (K, M, M) of classes (K,)."""

    def __init__(self, num_classes: int, mask_size: int, channels: int = 32) -> None:
        super().__init__()
        _check_size("InstanceMaskDiscriminator", mask_size)
        self.features, width = _down_stack(1, channels, mask_size)
        self.head = spectral_norm(nn.Linear(width * 16, channels * 4))
        self.out = spectral_norm(nn.Linear(channels * 4, 1))
        self.embed = spectral_norm(nn.Embedding(num_classes, channels * 4))

    def forward(self, masks: Tensor, labels: Tensor) -> Tensor:
        """masks (K, M, M) in [0, 1], labels (K,) -> logits (K,)."""
        phi = nn.functional.leaky_relu(self.head(self.features(masks[:, None] * 2 - 1).flatten(1)), 0.2)
        return self.out(phi)[:, 0] + (self.embed(labels) * phi).sum(-1)


class GlobalLayoutDiscriminator(nn.Module):
    """Logits (B,) for layouts given as per-class mask channels (B, C, S, S), C = classes without padding."""

    def __init__(self, num_classes: int, layout_size: int, channels: int = 32) -> None:
        super().__init__()
        _check_size("GlobalLayoutDiscriminator", layout_size)
        self.features, width = _down_stack(num_classes - 1, channels, layout_size)
        self.out = spectral_norm(nn.Linear(width * 16, 1))
        self.layout_size = layout_size

    def forward(self, layout: Tensor) -> Tensor:
        """layout (B, C, S, S) in [0, 1] -> logits (B,)."""
        return self.out(self.features(layout * 2 - 1).flatten(1))[:, 0]


class MaskDiscriminators(nn.Module):
    """The instance and the global discriminator, held together as the GANModule's D."""

    def __init__(self, num_classes: int, mask_size: int, layout_size: int, channels: int = 32) -> None:
        super().__init__()
        self.instance = InstanceMaskDiscriminator(num_classes, mask_size, channels)
        self.layout = GlobalLayoutDiscriminator(num_classes, layout_size, channels)


def layout_channels(masks: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """Image-frame masks (B, N, S, S) with labels (B, N) -> per-class maxima (B, num_classes - 1, S, S).

    Padded objects (label 0) are dropped; overlapping objects of one class merge by max.
    """
    # Not F.one_hot: it reads the labels' range on the host, a sync on a GPU.
    classes = torch.arange(1, num_classes, device=labels.device)
    one_hot = (labels[..., None] == classes).to(masks.dtype)  # (B, N, C)
    weighted = masks[:, :, None] * one_hot[..., None, None]  # (B, N, C, S, S)
    return weighted.amax(dim=1)
