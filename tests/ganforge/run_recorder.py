"""A Lightning callback for the final-checkpoint tests: records what a fit ends with.

Added with `--trainer.callbacks+=run_recorder.RunRecorder --trainer.callbacks.out=DIR` (this folder is
on sys.path under pytest). It writes:
- `DIR/final_state.pt`: the module's state dict in memory when training ends;
- `DIR/val_<stage>.json`: the `val/*` metrics of the latest validation pass of a fit or a validate run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytorch_lightning as pl
import torch


class RunRecorder(pl.Callback):
    def __init__(self, out: str) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        metrics["global_step"] = trainer.global_step
        (self.out / f"val_{trainer.state.fn.value}.json").write_text(json.dumps(metrics, indent=1))

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        torch.save(
            {k: v.detach().clone() for k, v in pl_module.state_dict().items()}, self.out / "final_state.pt"
        )
