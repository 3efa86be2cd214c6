"""Bivariate Gaussian mixtures: the box-centre and box-size densities of the Obj-GAN box generator.

Obj-GAN (Li et al. 2019, §3.1) models each box centre (x, y) and size (w, h) with a K-component
mixture; every component has a weight pi, a mean (mux, muy), standard deviations (sx, sy) and a
correlation rho, as in sketch-rnn (Ha & Eck 2018, eq. 2). Sampling with a temperature tau follows
sketch-rnn: pi is softened to softmax(logits / tau) and both deviations shrink by sqrt(tau), so
tau -> 0 picks the heaviest component and returns its mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ganforge.errors import UserError

PARAMS_PER_COMPONENT = 6  # logit, mux, muy, log sx, log sy, rho
# Box coordinates are pixel counts / image side, i.e. discrete: without a floor the deviations collapse
# onto single values, the NLL diverges and its gradients swamp the decoder. 2% of the image side
# (about a pixel at 64 px) keeps them tame and is below any visible difference in a layout.
MIN_LOG_STD = math.log(0.02)
RHO_MAX = 0.95  # |rho| < 1 keeps the covariance invertible (shapes boxes have w == h exactly)
_LOG_2PI = math.log(2 * math.pi)


@dataclass
class BivariateMixture:
    """A batch of K-component bivariate Gaussian mixtures over leading dims `...`.

    logits: (..., K) unnormalised component weights.
    mean: (..., K, 2) component means (x, y).
    log_std: (..., K, 2) log standard deviations, >= MIN_LOG_STD.
    rho: (..., K) correlation of x and y, in (-RHO_MAX, RHO_MAX).
    """

    logits: Tensor
    mean: Tensor
    log_std: Tensor
    rho: Tensor

    @classmethod
    def from_raw(cls, raw: Tensor) -> BivariateMixture:
        """Mixture from a network output (..., 6K), laid out as K logits, K mux, K muy, K log sx,
        K log sy, K unconstrained rho."""
        if raw.shape[-1] % PARAMS_PER_COMPONENT:
            raise ValueError(f"BivariateMixture: last dim {raw.shape[-1]} is not a multiple of 6")
        # fp32 even under bf16 autocast: the NLL subtracts nearby quantities and divides by 1 - rho^2.
        logits, mux, muy, log_sx, log_sy, rho = raw.float().chunk(PARAMS_PER_COMPONENT, dim=-1)
        log_std = torch.stack([log_sx, log_sy], dim=-1).clamp_min(MIN_LOG_STD)
        return cls(logits, torch.stack([mux, muy], dim=-1), log_std, RHO_MAX * torch.tanh(rho))

    @property
    def components(self) -> int:
        """K."""
        return self.logits.shape[-1]

    def log_prob(self, value: Tensor) -> Tensor:
        """log p(value) (...) of points (..., 2): logsumexp_k [log pi_k + log N(value; mu_k, Sigma_k)]."""
        std = self.log_std.exp()
        z = (value.unsqueeze(-2) - self.mean) / std  # (..., K, 2) standardised offsets
        one_minus_rho2 = 1 - self.rho.square()
        mahalanobis = (z.square().sum(-1) - 2 * self.rho * z[..., 0] * z[..., 1]) / one_minus_rho2
        log_normal = -_LOG_2PI - self.log_std.sum(-1) - 0.5 * one_minus_rho2.log() - 0.5 * mahalanobis
        return torch.logsumexp(torch.log_softmax(self.logits, dim=-1) + log_normal, dim=-1)

    def nll(self, value: Tensor) -> Tensor:
        """Negative log-likelihood (...) of points (..., 2)."""
        return -self.log_prob(value)

    def sample(self, temperature: float = 1.0, rng: torch.Generator | None = None) -> Tensor:
        """Points (..., 2): a component from softmax(logits / tau), then its Gaussian with std * sqrt(tau).

        `temperature=0` is exact: the heaviest component's mean. Draws use `rng` only.
        """
        if temperature < 0:
            raise UserError(f"BivariateMixture.sample: temperature={temperature}; expected >= 0")
        flat_logits = self.logits.reshape(-1, self.components)
        if temperature == 0:
            index = flat_logits.argmax(-1)
        else:
            probs = torch.softmax(flat_logits / temperature, dim=-1)
            index = torch.multinomial(probs, 1, generator=rng).squeeze(-1)
        rows = torch.arange(len(index), device=index.device)
        mean = self.mean.reshape(-1, self.components, 2)[rows, index]  # (M, 2)
        if temperature == 0:
            return mean.reshape(*self.logits.shape[:-1], 2)
        std = self.log_std.reshape(-1, self.components, 2)[rows, index].exp() * math.sqrt(temperature)
        rho = self.rho.reshape(-1, self.components)[rows, index]
        eps = torch.randn(mean.shape, generator=rng, device=mean.device, dtype=mean.dtype)
        # Correlated pair from independent normals: y uses rho * e0 + sqrt(1 - rho^2) * e1.
        x = mean[:, 0] + std[:, 0] * eps[:, 0]
        y = mean[:, 1] + std[:, 1] * (rho * eps[:, 0] + (1 - rho.square()).sqrt() * eps[:, 1])
        return torch.stack([x, y], dim=-1).reshape(*self.logits.shape[:-1], 2)
