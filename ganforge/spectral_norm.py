"""Spectral norm whose power iteration and sigma run in fp32, whatever the autocast state.

`torch.nn.utils.parametrizations.spectral_norm` estimates sigma with `torch.mv` and `torch.vdot`.
Under CUDA autocast `mv` runs in bf16/fp16, so sigma (and the normalised weight) carries an
8-bit-mantissa error every step, and the stored singular vectors drift in low precision. CPU
autocast does not cast `mv`, which is why CPU runs never show it. `FP32SpectralNorm` is torch's
parametrization with autocast switched off and the matrix, vectors and sigma in fp32; the
parametrized weight comes back in the weight's own dtype. It registers under the same names as
torch's (`parametrizations.weight.original`, `parametrizations.weight.0._u`, `._v`), so state
dicts written before it load unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import _SpectralNorm

TRANSPOSED_CONVS = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


class FP32SpectralNorm(_SpectralNorm):
    """torch's `_SpectralNorm` computed in fp32 with autocast off; returns W / sigma in W's dtype."""

    @torch.no_grad()
    def _power_method(self, weight_mat: Tensor, n_power_iterations: int) -> None:
        """`n_power_iterations` steps on the matrix (out, in) in fp32; `_u`, `_v` are updated in place."""
        weight_mat, u, v = weight_mat.float(), self._u.float(), self._v.float()
        for _ in range(n_power_iterations):
            u = F.normalize(torch.mv(weight_mat, v), dim=0, eps=self.eps)
            v = F.normalize(torch.mv(weight_mat.H, u), dim=0, eps=self.eps)
        # In place, as torch does: DataParallel replicas share these buffers' storage.
        self._u.copy_(u)
        self._v.copy_(v)

    def forward(self, weight: Tensor) -> Tensor:
        """weight (out, ...) of any float dtype -> weight / sigma, sigma from fp32 arithmetic."""
        with torch.autocast(weight.device.type, enabled=False):
            full = weight.float()
            if weight.ndim == 1:
                return F.normalize(full, dim=0, eps=self.eps).to(weight.dtype)
            weight_mat = self._reshape_weight_to_matrix(full)
            if self.training:
                self._power_method(weight_mat, self.n_power_iterations)
            u = self._u.float().clone(memory_format=torch.contiguous_format)
            v = self._v.float().clone(memory_format=torch.contiguous_format)
            sigma = torch.vdot(u, torch.mv(weight_mat, v))
            return (full / sigma).to(weight.dtype)


def spectral_norm(
    module: nn.Module, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12
) -> nn.Module:
    """Register `FP32SpectralNorm` on `module.<name>` (torch's `spectral_norm` with sigma in fp32).

    The output dimension is 1 for transposed convolutions and 0 otherwise, as in torch.
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"spectral_norm: {type(module).__name__} has no tensor parameter {name!r}")
    dim = 1 if isinstance(module, TRANSPOSED_CONVS) else 0
    parametrize.register_parametrization(module, name, FP32SpectralNorm(weight, n_power_iterations, dim, eps))
    return module
