"""Frame-prediction scores: OpenSTL's per-frame metrics, over S stochastic samples as mean-of-S and best-of-S.

Per predicted frame, pixels in [0, 1] (OpenSTL, Tan et al. 2023; PredRNN, Wang et al. 2017):
- `mse`, `mae`: squared / absolute error summed over C*H*W (Moving MNIST 64x64 MSE is ~20-100);
- `psnr`: 10 log10(1 / per-pixel MSE) (torchmetrics), capped at MAX_PSNR for identical frames;
- `ssim`: Wang et al. (2004) SSIM, 11x11 Gaussian window (sigma 1.5), data range 1, averaged over the
  window positions that lie inside the frame. torchmetrics computes the SSIM map; its frame mean also
  counts border windows over reflect-padded pixels, so we crop them as Wang's reference code and
  scikit-image do. (OpenSTL's published SSIM used scikit-image's old defaults: a 7x7 uniform window
  and, for float frames, data range 2, which reads higher; compare it for trends, not decimals.)

A stochastic model predicts S samples per context; following SVG (Denton & Fergus 2018) and SAVP
(Lee et al. 2018) we report the mean over the samples and the best sample per sequence, chosen by its
SSIM averaged over the predicted frames (all of that sample's metrics are reported, not the best of
each metric separately).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from ganforge.errors import UserError

METRICS = ("mse", "mae", "psnr", "ssim")
AGGREGATES = ("mean_of_samples", "best_of_samples")
BEST_BY = "ssim"  # SVG/SAVP choose the best sample by SSIM
MAX_PSNR = 100.0  # dB for identical frames (per-pixel MSE <= 1e-10), instead of infinity
SSIM_SIGMA, SSIM_RADIUS = 1.5, 5  # torchmetrics' Gaussian window: 2 * int(3.5 sigma + 0.5) + 1 = 11 taps


def frame_metrics(pred: Tensor, target: Tensor) -> dict[str, Tensor]:
    """Per-frame `mse`, `mae`, `psnr`, `ssim` (B, T) of pred vs target, both (B, T, C, H, W) in [0, 1]."""
    if pred.shape != target.shape or pred.dim() != 5:
        raise ValueError(
            f"pred and target must both be (B, T, C, H, W), got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    if min(pred.shape[-2:]) < 2 * SSIM_RADIUS + 1:
        raise UserError(f"SSIM needs frames of at least 11x11 (its window), got {tuple(pred.shape[-2:])}")
    batch, frames = pred.shape[:2]
    pred_frames, target_frames = pred.float().flatten(0, 1), target.float().flatten(0, 1)  # (B*T, C, H, W)
    diff = (pred_frames - target_frames).flatten(1)
    psnr = peak_signal_noise_ratio(
        pred_frames, target_frames, data_range=1.0, reduction="none", dim=(1, 2, 3)
    )
    _, ssim_map = structural_similarity_index_measure(
        pred_frames, target_frames, sigma=SSIM_SIGMA, data_range=1.0, return_full_image=True
    )
    r = SSIM_RADIUS
    ssim_map = ssim_map[..., r:-r, r:-r]  # keep the windows that lie inside the frame
    scores = {
        "mse": diff.pow(2).sum(dim=1),
        "mae": diff.abs().sum(dim=1),
        "psnr": psnr.clamp(max=MAX_PSNR),
        "ssim": ssim_map.flatten(1).mean(dim=1),
    }
    return {name: value.view(batch, frames) for name, value in scores.items()}


def sample_frame_metrics(pred: Tensor, target: Tensor) -> dict[str, Tensor]:
    """Per-frame metrics (B, S, T) of samples pred (B, S, T, C, H, W) vs target (B, T, C, H, W) in [0, 1]."""
    if pred.dim() != 6 or target.dim() != 5 or pred.shape[:1] + pred.shape[2:] != target.shape:
        raise ValueError(
            f"pred must be (B, S, T, C, H, W) and target (B, T, C, H, W) with matching B, T, C, H, W; "
            f"got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    batch, samples = pred.shape[:2]
    scores = frame_metrics(pred.flatten(0, 1), target.unsqueeze(1).expand_as(pred).flatten(0, 1))
    return {name: scores[name].view(batch, samples, -1) for name in METRICS}


def mean_of_samples(scores: dict[str, Tensor]) -> dict[str, Tensor]:
    """{name: (B, S, T)} -> {name: (B, T)}, averaged over the S samples."""
    return {name: value.mean(dim=1) for name, value in scores.items()}


def best_sample_index(scores: dict[str, Tensor], by: str = BEST_BY) -> Tensor:
    """Index (B,) of each sequence's sample with the highest `by` averaged over frames (higher is better)."""
    return scores[by].mean(dim=2).argmax(dim=1)


def best_of_samples(scores: dict[str, Tensor], by: str = BEST_BY) -> dict[str, Tensor]:
    """{name: (B, S, T)} -> {name: (B, T)}: every metric of the sample `best_sample_index` picks."""
    index = best_sample_index(scores, by)
    rows = torch.arange(index.shape[0], device=index.device)
    return {name: value[rows, index] for name, value in scores.items()}


class PredictionScores:
    """Running sums of mean-of-S and best-of-S per-frame metrics over batches of sequences.

    `update(pred, target)` per batch; `per_step()` gives each metric's mean over sequences at each future
    step, and `means()` the mean over sequences and steps (OpenSTL's "averaged over batch and time").
    """

    def __init__(self) -> None:
        self.sums: dict[str, dict[str, Tensor]] = {aggregate: {} for aggregate in AGGREGATES}
        self.sequences = 0

    def update(self, pred: Tensor, target: Tensor) -> None:
        """Add a batch: pred (B, S, T, C, H, W) and target (B, T, C, H, W) in [0, 1]."""
        scores = sample_frame_metrics(pred, target)
        for aggregate, reduced in zip(AGGREGATES, (mean_of_samples(scores), best_of_samples(scores))):
            for name, value in reduced.items():
                total = value.double().sum(dim=0).cpu()  # (T,)
                previous = self.sums[aggregate].get(name)
                self.sums[aggregate][name] = total if previous is None else previous + total
        self.sequences += pred.shape[0]

    def per_step(self) -> dict[str, dict[str, list[float]]]:
        """{aggregate: {metric: [value at future step 1, ..., T]}}."""
        if self.sequences == 0:
            raise UserError("PredictionScores: no sequences were scored")
        return {
            aggregate: {name: (total / self.sequences).tolist() for name, total in sums.items()}
            for aggregate, sums in self.sums.items()
        }

    def means(self) -> dict[str, dict[str, float]]:
        """{aggregate: {metric: mean over sequences and future steps}}."""
        return {
            aggregate: {name: sum(curve) / len(curve) for name, curve in curves.items()}
            for aggregate, curves in self.per_step().items()
        }
