"""Bivariate Gaussian mixture: NLL against torch.distributions, temperature limits, sample moments."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import MultivariateNormal

from t2i.models.layout.mixture import MIN_LOG_STD, RHO_MAX, BivariateMixture


def _mixture(batch: int, components: int, rng: torch.Generator) -> BivariateMixture:
    return BivariateMixture.from_raw(torch.randn(batch, 6 * components, generator=rng))


def test_nll_equals_multivariate_normal_per_component_plus_logsumexp(rng: torch.Generator) -> None:
    mix = _mixture(7, 5, rng)
    points = torch.rand(7, 2, generator=rng) * 2 - 0.5
    std = mix.log_std.exp()
    cov = torch.stack(
        [
            torch.stack([std[..., 0] ** 2, mix.rho * std[..., 0] * std[..., 1]], -1),
            torch.stack([mix.rho * std[..., 0] * std[..., 1], std[..., 1] ** 2], -1),
        ],
        -2,
    )  # (B, K, 2, 2)
    per_component = MultivariateNormal(mix.mean, covariance_matrix=cov).log_prob(points[:, None])  # (B, K)
    expected = -torch.logsumexp(torch.log_softmax(mix.logits, -1) + per_component, dim=-1)
    torch.testing.assert_close(mix.nll(points), expected, rtol=1e-5, atol=1e-5)


def test_from_raw_keeps_deviations_and_correlation_in_range() -> None:
    raw = torch.zeros(3, 30)
    raw[:, 15:25] = -50.0  # log stds far below the floor
    raw[0, 25:] = 1e3  # rho -> +RHO_MAX
    raw[1, 25:] = -1e3
    mix = BivariateMixture.from_raw(raw)
    assert mix.components == 5 and mix.mean.shape == (3, 5, 2)
    assert torch.all(mix.log_std == MIN_LOG_STD)
    assert torch.allclose(mix.rho[0], torch.full((5,), RHO_MAX)) and torch.allclose(mix.rho[1], -mix.rho[0])
    assert torch.isfinite(mix.nll(torch.rand(3, 2))).all()
    with pytest.raises(ValueError, match="multiple of 6"):
        BivariateMixture.from_raw(torch.zeros(2, 31))


def test_temperature_to_zero_returns_the_heaviest_component_mean(rng: torch.Generator) -> None:
    mix = _mixture(64, 5, rng)
    heaviest = mix.logits.argmax(-1)
    means = mix.mean[torch.arange(64), heaviest]
    assert torch.equal(mix.sample(0.0), means)  # exact at 0
    near_zero = mix.sample(1e-10, torch.Generator().manual_seed(1))
    torch.testing.assert_close(near_zero, means, atol=1e-3, rtol=0)


def test_every_draw_at_small_temperature_is_some_component_mean(rng: torch.Generator) -> None:
    mix = _mixture(16, 5, rng)
    mix.logits = torch.zeros_like(mix.logits)  # equal weights stay equal at any temperature
    draws = mix.sample(1e-10, torch.Generator().manual_seed(2))
    distance = (draws[:, None] - mix.mean).norm(dim=-1).min(dim=-1).values
    assert distance.max() < 1e-3


def test_samples_have_the_component_mean_and_covariance() -> None:
    mean, std, rho = torch.tensor([0.3, -0.2]), torch.tensor([0.5, 0.2]), 0.7
    raw = torch.tensor([0.0, *mean.tolist(), *std.log().tolist(), math.atanh(rho / RHO_MAX)])
    mix = BivariateMixture.from_raw(raw.expand(40000, 6))
    for temperature in (1.0, 0.25):
        draws = mix.sample(temperature, torch.Generator().manual_seed(3))
        torch.testing.assert_close(draws.mean(0), mean, atol=0.01, rtol=0)
        scaled = std * math.sqrt(temperature)
        torch.testing.assert_close(draws.std(0), scaled, atol=0.01, rtol=0)
        corr = torch.corrcoef(draws.T)[0, 1]
        assert abs(corr - rho) < 0.02


def test_sampling_is_reproducible_and_rejects_negative_temperature(rng: torch.Generator) -> None:
    mix = _mixture(8, 5, rng)
    a = mix.sample(0.4, torch.Generator().manual_seed(5))
    b = mix.sample(0.4, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="temperature=-0.1"):
        mix.sample(-0.1)
