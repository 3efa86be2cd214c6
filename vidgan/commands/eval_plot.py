"""The `vidgan eval` figure: each metric against the future step, mean-of-S and best-of-S (headless PNG)."""

from __future__ import annotations

from pathlib import Path

from vidgan.metrics import METRICS

LABELS = {"mse": "MSE (per frame)", "mae": "MAE (per frame)", "psnr": "PSNR (dB)", "ssim": "SSIM"}
AGGREGATE_LABELS = {"mean_of_samples": "mean of S", "best_of_samples": "best of S (by SSIM)"}


def plot_metric_curves(per_step: dict[str, dict[str, list[float]]], path: str | Path, title: str) -> None:
    """per_step {aggregate: {metric: [value per future step]}} -> a 2x2 PNG at `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(2, 2, figsize=(9, 6.5), dpi=100)
    for ax, name in zip(axes.flat, METRICS):
        for aggregate, curves in per_step.items():
            steps = range(1, len(curves[name]) + 1)
            ax.plot(steps, curves[name], marker="o", markersize=3, label=AGGREGATE_LABELS[aggregate])
        ax.set_xlabel("future step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(LABELS[name])
        ax.grid(alpha=0.3)
    axes.flat[0].legend()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
