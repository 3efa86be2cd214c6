"""Test helper: whether a layer's weight is spectrally normalised (torch's parametrization or ganforge's)."""

from __future__ import annotations

from torch import nn
from torch.nn.utils.parametrizations import _SpectralNorm


def has_spectral_norm(layer: nn.Module, name: str = "weight") -> bool:
    """True when `layer.<name>` is produced by a spectral-norm parametrization (torch's or ours)."""
    plist = getattr(getattr(layer, "parametrizations", None), name, None)
    return plist is not None and any(isinstance(p, _SpectralNorm) for p in plist)
