"""Small matplotlib figures written to PNG (headless Agg backend)."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor


def scatter_real_fake(real: Tensor, fake: Tensor, path: str | Path) -> None:
    """Scatter real (N, 2) and generated (M, 2) points into a PNG at `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.scatter(real[:, 0], real[:, 1], s=2, alpha=0.5, label="real")
    ax.scatter(fake[:, 0], fake[:, 1], s=2, alpha=0.5, label="generated")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", markerscale=4)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
