"""Evaluation shared by every family: the Fréchet distance, and the local feature nets behind `fd_local`.

- `frechet_distance(real, fake)`: ||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2)) between Gaussians
  fitted to two feature sets (Heusel et al. 2017), in float64. The statistics and the distance are
  torch-fidelity's (`fid_features_to_statistics`, `fid_statistics_to_metric`: np.cov, and the square
  root's trace from the eigenvalues of S_r S_f). `FrechetDistance` accumulates features batch by batch
  through any feature extractor. The number is FID or FVD only under the published Inception / I3D.
- `train_feature_net`: without those networks each family trains a small `FeatureNet` on real data
  (vidgan: real vs frame-shuffled clips; t2i: which objects an image holds) and reports the Fréchet
  distance in its feature space as `fd_local`. The loop is the same for both: Adam, binary
  cross-entropy on the net's head, batches drawn with replacement from a seeded `torch.Generator`.
- `save_feature_net` / `load_feature_net`: such nets as `ganforge.checkpoint` artefacts (header, config,
  weights; read with weights_only=True). Files written before the artefact format, a plain
  `{**config, "state_dict": ...}`, still load.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.checkpoint import load_artifact, load_state_file, save_artifact
from ganforge.errors import CheckpointError, NotGANForgeCheckpointError, UserError

FeatureExtractor = Callable[[Tensor], Tensor]  # a batch (B, ...) -> features (B, D)
ACCURACY_WINDOW = 64  # `train_feature_net` reports the accuracy over this many last batches


# ---------------------------------------------------------------------------------------------- distance
def frechet_distance(real: Tensor, fake: Tensor) -> float:
    """Fréchet distance between Gaussians fitted to features real (N, D) and fake (M, D), N, M >= 2.

    Means and unbiased covariances (np.cov's) in float64; torch-fidelity computes both and the distance.
    """
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric

    for name, features in (("real", real), ("fake", fake)):
        if features.dim() != 2 or features.shape[0] < 2:
            raise ValueError(
                f"Fréchet distance needs {name} features (N >= 2, D), got {tuple(features.shape)}"
            )
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real features have {real.shape[1]} dimensions, fake features {fake.shape[1]}")
    stats = [fid_features_to_statistics(f.detach().double().cpu()) for f in (real, fake)]
    return float(fid_statistics_to_metric(*stats, verbose=False)[KEY_METRIC_FID])


class FrechetDistance:
    """The Fréchet distance between real and generated sets, fed batch by batch through a feature extractor.

    `update(batch, real=...)` with any batch (B, ...) the extractor takes, returning features (B, D);
    `compute()` once both sides hold at least two items. Name the result after the extractor.
    """

    def __init__(self, extractor: FeatureExtractor) -> None:
        self.extractor = extractor
        self.features: dict[bool, list[Tensor]] = {True: [], False: []}

    @torch.no_grad()
    def update(self, batch: Tensor, real: bool) -> None:
        """Extract and keep (in float64, on the CPU) the features of `batch` (B, ...)."""
        features = self.extractor(batch)
        if features.dim() != 2 or features.shape[0] != batch.shape[0]:
            raise ValueError(
                f"the feature extractor returned {tuple(features.shape)} for {batch.shape[0]} inputs, "
                "expected (B, D)"
            )
        self.features[real].append(features.detach().double().cpu())

    def counts(self) -> tuple[int, int]:
        """(real items, generated items) seen so far."""
        return tuple(sum(f.shape[0] for f in self.features[real]) for real in (True, False))

    def compute(self) -> float:
        """`frechet_distance` of everything seen so far."""
        real, fake = self.counts()
        if real < 2 or fake < 2:
            raise UserError(f"Fréchet distance needs >= 2 real and generated items, got {real} and {fake}")
        return frechet_distance(torch.cat(self.features[True]), torch.cat(self.features[False]))


# ---------------------------------------------------------------------------------------------- feature nets
class FeatureNet(nn.Module):
    """A feature extractor trained through a classification head.

    Subclasses define `forward(inputs (B, ...)) -> features (B, D)` and `head`, a module from the
    features to logits (B, K) used only for training.
    """

    head: nn.Module

    def logits(self, inputs: Tensor) -> Tensor:
        """Training logits (B, K) of inputs (B, ...)."""
        return self.head(self(inputs))


BatchSampler = Callable[[Tensor, torch.Generator], tuple[Tensor, Tensor]]


def train_feature_net(
    build: Callable[[], FeatureNet],
    sample: BatchSampler,
    size: int,
    steps: int,
    batch_size: int,
    seed: int = 0,
    lr: float = 1e-3,
    device: str | torch.device = "cpu",
    on_step: Callable[[int], None] | None = None,
) -> tuple[FeatureNet, float]:
    """Train a feature net with Adam and binary cross-entropy on its logits.

    Args:
        build: makes the untrained net; it runs on the CPU with the RNG seeded by `seed` (the caller's
            RNG state is left as it was), so the initialisation does not depend on `device`.
        sample: `sample(index (B,), rng) -> (inputs (B', ...), targets (B', K))`, one batch from
            the real items at `index` (drawn with replacement); targets in {0, 1} match `net.logits`.
            It may draw more randomness (negatives, augmentation) from `rng`.
        size: how many real items `index` draws from.
        steps, batch_size, lr: Adam steps, items per step, learning rate.
        seed: seeds the initialisation and the `rng` that `sample` gets.
        device: where the net trains; each batch is moved there.
        on_step: called with the step index after each step (progress bars).

    Returns:
        The net (eval mode, no gradients, on `device`) and its accuracy, (logit > 0) == target over
        all targets, averaged over the last `ACCURACY_WINDOW` batches. Deterministic for a given seed,
        device and thread count.
    """
    if size < 1:
        raise UserError("no real items to train the feature net on")
    if steps < 1:
        raise UserError(f"feature net steps={steps} must be >= 1")
    rng = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build()
    net.to(device).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    accuracies: deque[Tensor] = deque(maxlen=ACCURACY_WINDOW)
    for step in range(steps):
        inputs, targets = sample(torch.randint(0, size, (batch_size,), generator=rng), rng)
        inputs, targets = inputs.to(device), targets.to(device)
        logits = net.logits(inputs)
        loss = F.binary_cross_entropy_with_logits(logits, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        accuracies.append(((logits.detach() > 0).float() == targets).float().mean())
        if on_step is not None:
            on_step(step)
    accuracy = sum(a.item() for a in accuracies) / len(accuracies)  # one host sync per batch, at the end
    return net.eval().requires_grad_(False), accuracy


def save_feature_net(net: nn.Module, path: str | os.PathLike, family: str, config: dict[str, Any]) -> Path:
    """Write `net`'s weights with the `config` that rebuilds it, as a `family` artefact, atomically."""
    return save_artifact(path, family, config, net.state_dict())


def load_feature_net(
    path: str | os.PathLike,
    family: str,
    build: Callable[[dict[str, Any]], nn.Module],
    what: str = "fd_local net",
) -> tuple[nn.Module, dict[str, Any]]:
    """(net, config) of a file written by `save_feature_net` for `family`; the net in eval mode, no gradients.

    `build(config)` makes the untrained net whose weights are loaded strictly. A file written before the
    artefact format (`{**config, "state_dict": weights}`, no header) still loads.

    Raises:
        CheckpointError: one line naming the file ("<what> '<path>' ...") when it is unreadable, of another
            family, or its config or weights do not rebuild the net.
    """
    try:
        config, state = load_artifact(path, family)
    except NotGANForgeCheckpointError:  # saved before the artefact format
        saved = load_state_file(path, what=what)
        config, state = (saved, saved.get("state_dict")) if isinstance(saved, dict) else ({}, None)
        config = {k: v for k, v in config.items() if k != "state_dict"}
    try:
        net = build(config)
        net.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{what} '{path}' is not a saved {family} net ({type(err).__name__})") from None
    return net.eval().requires_grad_(False), config
