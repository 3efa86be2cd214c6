"""Spectrally normalised, orthogonally initialised layers shared by vidgan's G and D.

Spectral norm (Miyato et al. 2018) and orthogonal init (Saxe et al. 2014) are what BigGAN and
DVD-GAN use for every weight layer. `ganforge.spectral_norm.spectral_norm` (torch's parametrization
with sigma in fp32 under autocast) runs one power iteration per forward in training mode and uses
the stored vectors in eval mode.
"""

from __future__ import annotations

from einops import rearrange
from torch import Tensor, nn

from ganforge.spectral_norm import spectral_norm

SN_LAYERS = (nn.Conv2d, nn.Conv3d, nn.Linear, nn.Embedding)


def orthogonal_sn(layer: nn.Module, use_sn: bool = True) -> nn.Module:
    """Orthogonal-initialise `layer.weight`, zero its bias, then wrap it in spectral norm."""
    nn.init.orthogonal_(layer.weight)
    if getattr(layer, "bias", None) is not None:
        nn.init.zeros_(layer.bias)
    return spectral_norm(layer) if use_sn else layer


def conv2d(cin: int, cout: int, kernel: int = 3, use_sn: bool = True) -> nn.Module:
    """Same-padding 2-D conv, orthogonal init, spectral norm when `use_sn`."""
    return orthogonal_sn(nn.Conv2d(cin, cout, kernel, padding=kernel // 2), use_sn)


def conv3d(cin: int, cout: int, kernel: int = 3, use_sn: bool = True) -> nn.Module:
    """Same-padding 3-D conv (kernel k x k x k over T, H, W), orthogonal init, spectral norm."""
    return orthogonal_sn(nn.Conv3d(cin, cout, kernel, padding=kernel // 2), use_sn)


def linear(cin: int, cout: int, bias: bool = True, use_sn: bool = True) -> nn.Module:
    """Linear layer, orthogonal init, spectral norm when `use_sn`."""
    return orthogonal_sn(nn.Linear(cin, cout, bias=bias), use_sn)


def embedding(num: int, dim: int, use_sn: bool = True) -> nn.Module:
    """Class embedding (projection D, conditional G), orthogonal init, spectral norm."""
    return orthogonal_sn(nn.Embedding(num, dim), use_sn)


def space_to_depth(video: Tensor, patch: int) -> Tensor:
    """Lossless patching (DGMR's space-to-depth): (B, T, C, H, W) -> (B, T, C*p*p, H/p, W/p)."""
    if patch == 1:
        return video
    return rearrange(video, "b t c (h p1) (w p2) -> b t (c p1 p2) h w", p1=patch, p2=patch)


def depth_to_space(video: Tensor, patch: int) -> Tensor:
    """Inverse of `space_to_depth`: (B, T, C*p*p, H, W) -> (B, T, C, H*p, W*p)."""
    if patch == 1:
        return video
    return rearrange(video, "b t (c p1 p2) h w -> b t c (h p1) (w p2)", p1=patch, p2=patch)
