"""ganforge: a shared PyTorch Lightning core for GANs (losses, EMA, checkpoints, CLI helpers).

Exports load lazily so that light commands (`vidgan data ...`) do not pay Lightning's import time.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["EMA", "GANModule", "NonFiniteLossError", "UserError", "__version__"]

_EXPORTS = {
    "EMA": "ganforge.ema",
    "GANModule": "ganforge.module",
    "NonFiniteLossError": "ganforge.errors",
    "UserError": "ganforge.errors",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ganforge' has no attribute {name!r}")
