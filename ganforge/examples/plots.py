"""Small matplotlib figures, as PNG files or image tensors (headless Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor


def _scatter_figure(real: Tensor, fake: Tensor) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.scatter(real[:, 0], real[:, 1], s=2, alpha=0.5, label="real")
    ax.scatter(fake[:, 0], fake[:, 1], s=2, alpha=0.5, label="generated")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", markerscale=4)
    fig.tight_layout()
    return fig


def scatter_real_fake(real: Tensor, fake: Tensor, path: str | Path) -> None:
    """Scatter real (N, 2) and generated (M, 2) points into a PNG at `path`."""
    import matplotlib.pyplot as plt

    fig = _scatter_figure(real, fake)
    fig.savefig(path)
    plt.close(fig)


def scatter_image(real: Tensor, fake: Tensor) -> Tensor:
    """The same scatter as an image tensor (3, 500, 500) float in [0, 1]."""
    import matplotlib.pyplot as plt

    fig = _scatter_figure(real, fake)
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    plt.close(fig)
    return torch.from_numpy(rgba[..., :3].copy()).permute(2, 0, 1).float() / 255.0
