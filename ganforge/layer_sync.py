"""`trainer.sync_batchnorm: true` for ganforge's own normalisation layers as well as torch's.

Lightning's `sync_batchnorm` installs `TorchSyncBatchNorm`, which only converts
`torch.nn.modules.batchnorm._BatchNorm` layers into `torch.nn.SyncBatchNorm` (CUDA tensors only).
A family's own normalisation layer (vidgan's per-frame `FrameBatchNorm`) is no `_BatchNorm`, so it
would silently keep per-rank statistics. `BatchStatisticsSync` does torch's conversion and also
switches on every module that declares a boolean `sync_statistics` attribute; such a module
all-reduces its batch statistics itself, on any backend (gloo on CPU included).

It is meant to be passed as a Trainer plugin exactly when `trainer.sync_batchnorm` is true, so that
one switch controls both kinds of layer (Lightning lets a LayerSync plugin replace its own even when
`sync_batchnorm` is false, hence "exactly when"). Lightning accepts it beside `sync_batchnorm=True`
because it is a `TorchSyncBatchNorm`.
"""

from __future__ import annotations

from pytorch_lightning.plugins.layer_sync import TorchSyncBatchNorm
from torch.nn import Module

SYNC_ATTRIBUTE = "sync_statistics"


def set_statistics_sync(model: Module, enabled: bool) -> int:
    """Set `sync_statistics` on every submodule of `model` that declares it; returns how many."""
    layers = [m for m in model.modules() if isinstance(getattr(m, SYNC_ATTRIBUTE, None), bool)]
    for layer in layers:
        setattr(layer, SYNC_ATTRIBUTE, enabled)
    return len(layers)


class BatchStatisticsSync(TorchSyncBatchNorm):
    """Lightning LayerSync: torch's SyncBatchNorm conversion plus ganforge's `sync_statistics` layers."""

    def apply(self, model: Module) -> Module:
        model = super().apply(model)
        set_statistics_sync(model, True)
        return model

    def revert(self, model: Module) -> Module:
        set_statistics_sync(model, False)
        return super().revert(model)
