"""ganforge: a shared PyTorch Lightning core for GANs (losses, EMA, checkpoints, CLI helpers)."""

__version__ = "0.1.0"

from ganforge.ema import EMA  # noqa: E402
from ganforge.module import GANModule, NonFiniteLossError  # noqa: E402

__all__ = ["EMA", "GANModule", "NonFiniteLossError", "__version__"]
