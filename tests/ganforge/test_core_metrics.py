"""ganforge.metrics: the Fréchet distance against independent references, feature-net training and files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import Tensor, nn

from ganforge.checkpoint import load_checkpoint, read_header
from ganforge.errors import CheckpointError, WrongFamilyError
from ganforge.metrics import (
    FeatureNet,
    FrechetDistance,
    frechet_distance,
    load_feature_net,
    save_feature_net,
    train_feature_net,
)


def reference_distance(real: Tensor, fake: Tensor) -> float:
    """Heusel et al.'s formula with scipy's matrix square root (the original FID code's), in float64."""
    r, f = real.double().numpy(), fake.double().numpy()
    s_r, s_f = np.cov(r, rowvar=False), np.cov(f, rowvar=False)
    root = scipy.linalg.sqrtm(s_r @ s_f).real
    return float(((r.mean(0) - f.mean(0)) ** 2).sum() + np.trace(s_r + s_f - 2 * root))


def features_with_stats(mu: Tensor, sigma: Tensor, n: int = 50, seed: int = 0) -> Tensor:
    """n features (n, D) whose sample mean and unbiased covariance are exactly mu (D,) and sigma (D, D)."""
    x = torch.randn(n, mu.shape[0], generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    x = x - x.mean(0)
    white = x @ torch.linalg.inv(torch.linalg.cholesky(torch.cov(x.T)).T)  # sample covariance I
    return white @ torch.linalg.cholesky(sigma.double()).T + mu.double()


# ---------------------------------------------------------------------------------------------- distance
def numpy_features() -> list[tuple[Tensor, Tensor]]:
    """Two (real, fake) feature sets from numpy's seeded generator (the same on every platform and torch)."""
    rng = np.random.default_rng(0)

    def draw(n: int, d: int, scale: float, shift: float) -> Tensor:
        return torch.from_numpy(rng.standard_normal((n, d)) * scale + shift)

    return [
        (draw(200, 8, 1.0, 0.0), draw(150, 8, 1.5, 0.5)),
        (draw(12, 32, 1.0, 0.0), draw(10, 32, 2.0, -1.0)),
    ]


# What the implementations this wrapper replaced gave on `numpy_features()`: t2i's (torch-fidelity) and
# vidgan's (torchmetrics' `_compute_fid` on torch.cov statistics). The second case has singular covariances.
PREVIOUS = [
    {"t2i": 3.8616894373432658, "vidgan": 3.861689437343273},
    {"t2i": 154.28578000506928, "vidgan": 154.28577972371437},
]


@pytest.mark.parametrize("case", [0, 1])
def test_frechet_distance_keeps_the_previous_values_and_matches_scipy(case: int) -> None:
    real, fake = numpy_features()[case]
    value = frechet_distance(real, fake)
    assert value == pytest.approx(PREVIOUS[case]["t2i"], rel=1e-12)
    assert value == pytest.approx(PREVIOUS[case]["vidgan"], rel=1e-8)
    assert value == pytest.approx(reference_distance(real, fake), rel=1e-8)
    assert frechet_distance(real.float(), fake.float()) == pytest.approx(value, rel=1e-5)
    assert frechet_distance(fake, real) == pytest.approx(value, rel=1e-9)  # symmetric


def test_frechet_distance_of_two_gaussians_has_the_closed_form() -> None:
    mu1, mu2 = torch.tensor([0.0, 1.0, -2.0]), torch.tensor([1.0, 1.0, 0.0])
    var1, var2 = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 1.0, 1.0])
    real, fake = (
        features_with_stats(mu1, torch.diag(var1)),
        features_with_stats(mu2, torch.diag(var2), seed=1),
    )
    # Diagonal covariances: |mu1 - mu2|^2 + sum (sqrt(var1) - sqrt(var2))^2.
    expected = 5.0 + ((var1.sqrt() - var2.sqrt()) ** 2).sum().item()
    assert frechet_distance(real, fake) == pytest.approx(expected, rel=1e-9)
    # Non-commuting covariances: scipy's matrix square root.
    a = torch.tensor([[2.0, 0.8, 0.0], [0.8, 1.0, 0.3], [0.0, 0.3, 0.5]])
    b = torch.tensor([[1.0, 0.0, 0.7], [0.0, 2.0, 0.0], [0.7, 0.0, 3.0]])
    root = scipy.linalg.sqrtm(a.double().numpy() @ b.double().numpy()).real
    expected = 5.0 + np.trace(a.double().numpy() + b.double().numpy() - 2 * root)
    real, fake = features_with_stats(mu1, a), features_with_stats(mu2, b, seed=1)
    assert frechet_distance(real, fake) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    ("real", "fake", "message"),
    [
        (torch.zeros(1, 3), torch.zeros(4, 3), r"real features \(N >= 2, D\), got \(1, 3\)"),
        (torch.zeros(4, 3), torch.zeros(4), r"fake features \(N >= 2, D\), got \(4,\)"),
        (torch.zeros(4, 3), torch.zeros(4, 2), "real features have 3 dimensions, fake features 2"),
    ],
)
def test_frechet_distance_refuses_bad_shapes(real: Tensor, fake: Tensor, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        frechet_distance(real, fake)


def test_frechet_distance_accumulates_batches_through_any_extractor() -> None:
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(4000, 2, generator=gen) * torch.tensor([1.0, 2.0])
    fake = torch.randn(4000, 2, generator=gen) * torch.tensor([2.0, 2.0]) + torch.tensor([3.0, 0.0])
    # Clips (N, T=1, C=1, H=1, W=2) whose "features" are their two pixels.
    metric = FrechetDistance(lambda clips: clips.flatten(1))
    for chunk in real.split(1000):
        metric.update(chunk.view(-1, 1, 1, 1, 2), real=True)
    metric.update(fake.view(-1, 1, 1, 1, 2), real=False)
    assert metric.counts() == (4000, 4000)
    assert metric.compute() == pytest.approx(frechet_distance(real, fake), rel=1e-12)
    assert metric.compute() == pytest.approx(9.0 + (1.0 - 2.0) ** 2 + 0.0, abs=0.3)  # closed form: 10
    with pytest.raises(ValueError, match=">= 2 real and generated items, got 0 and 0"):
        FrechetDistance(lambda clips: clips.flatten(1)).compute()
    with pytest.raises(ValueError, match=r"returned \(8,\) for 8 inputs, expected \(B, D\)"):
        FrechetDistance(lambda x: x.sum(1)).update(torch.zeros(8, 3), real=True)


# ---------------------------------------------------------------------------------------------- training
class TinyNet(FeatureNet):
    """Points (B, 2) -> features (B, 8); the head says which side of the line x0 = x1 a point is on."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.width = width
        self.body = nn.Sequential(nn.Linear(2, width), nn.Tanh())
        self.head = nn.Linear(width, 1)

    def forward(self, points: Tensor) -> Tensor:
        return self.body(points)


POINTS = torch.randn(256, 2, generator=torch.Generator().manual_seed(5))
LABELS = (POINTS[:, :1] > POINTS[:, 1:]).float()


def sample_points(index: Tensor, rng: torch.Generator) -> tuple[Tensor, Tensor]:
    return POINTS[index], LABELS[index]


def test_train_feature_net_learns_is_deterministic_and_leaves_the_callers_rng_alone() -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    steps_seen: list[int] = []
    net, accuracy = train_feature_net(
        TinyNet, sample_points, len(POINTS), 150, 32, seed=1, lr=0.02, on_step=steps_seen.append
    )
    assert torch.equal(torch.get_rng_state(), before)
    assert steps_seen == list(range(150))
    assert isinstance(net, TinyNet) and not net.training
    assert not any(p.requires_grad for p in net.parameters())
    assert accuracy > 0.9
    assert ((net.logits(POINTS) > 0).float() == LABELS).float().mean() > 0.9
    assert net(POINTS).shape == (256, 8)
    again, _ = train_feature_net(TinyNet, sample_points, len(POINTS), 150, 32, seed=1, lr=0.02)
    other, _ = train_feature_net(TinyNet, sample_points, len(POINTS), 150, 32, seed=2, lr=0.02)
    state, same, different = net.state_dict(), again.state_dict(), other.state_dict()
    assert all(torch.equal(state[k], same[k]) for k in state)
    assert not all(torch.equal(state[k], different[k]) for k in state)


def test_train_feature_net_refuses_no_data_or_no_steps() -> None:
    with pytest.raises(ValueError, match="no real items"):
        train_feature_net(TinyNet, sample_points, 0, 10, 4)
    with pytest.raises(ValueError, match="steps=0 must be >= 1"):
        train_feature_net(TinyNet, sample_points, len(POINTS), 0, 4)


# ---------------------------------------------------------------------------------------------- files
def build(config: dict) -> TinyNet:
    return TinyNet(config["width"])


def test_feature_net_files_round_trip_and_headerless_ones_still_load(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = TinyNet(width=4)
    assert save_feature_net(net, tmp_path / "new.pt", "test-fd-local", {"width": 4, "trained_on": "points"})
    assert read_header(load_checkpoint(tmp_path / "new.pt"))["family"] == "test-fd-local"
    torch.save(
        {"width": 4, "state_dict": net.state_dict()}, tmp_path / "old.pt"
    )  # before the artefact format
    for name, config in (("new.pt", {"width": 4, "trained_on": "points"}), ("old.pt", {"width": 4})):
        loaded, loaded_config = load_feature_net(tmp_path / name, "test-fd-local", build)
        assert loaded_config == config and not loaded.training
        assert not any(p.requires_grad for p in loaded.parameters())
        assert torch.equal(loaded(POINTS), net(POINTS))


def test_feature_net_file_errors_are_one_line_and_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "fd.pt"
    save_feature_net(TinyNet(width=4), path, "test-fd-local", {"width": 4})
    with pytest.raises(WrongFamilyError, match="is not a other-fd-local checkpoint") as err:
        load_feature_net(path, "other-fd-local", build)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    save_feature_net(TinyNet(width=4), path, "test-fd-local", {"width": 5})
    torch.save({"state_dict": {}}, tmp_path / "bare.pt")
    for bad, reason in ((path, "RuntimeError"), (tmp_path / "bare.pt", "KeyError")):
        with pytest.raises(
            CheckpointError,
            match=rf"^fd_local net '.*{bad.name}' is not a saved test-fd-local net \({reason}\)$",
        ):
            load_feature_net(bad, "test-fd-local", build)
