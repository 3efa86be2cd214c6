"""A clean console for every fit: Lightning's messages that never concern a ganforge run are dropped.

Each entry says why it is noise here. Real warnings (bad files skipped, non-finite steps, the W&B
offline fallback, a logging interval longer than an epoch) still print.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pytorch_lightning.callbacks import RichModelSummary
from rich.console import Console
from rich.table import Table

NOISE_WARNINGS = (
    # Raised whenever `srun` is on PATH, also on a Slurm login node or a laptop with Slurm client tools.
    # Inside a job launched by srun, SLURMEnvironment is used and the hint never fires.
    r".*The `srun` command is available on your system but is not used.*",
    # Lightning's own pytree helper, calling a torch API deprecated in torch 2.14.
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",
    # Our iterable datasets know their per-rank length exactly (ganforge.resumable shards by rank).
    r".*Your `IterableDataset` has `__len__` defined.*",
    # The EMA copy of G is kept in eval mode on purpose (ganforge.ema); so are frozen text towers.
    r".*module\(s\) in eval mode at the start of training.*",
    # ParameterSummary prints no size estimate, which bf16 would make inaccurate.
    r".*Precision bf16-mixed is not supported by the model summary.*",
    # GANModule checkpoints after a batch's last optimiser step and resumes exactly
    # (tests/fault/test_kill_resume.py); Lightning's advice to save pre-step states is noise here.
    r".*ModelCheckpoint with manual optimization.*",
    # The t2i stages tokenise captions on the host batch in the module's on_before_batch_transfer
    # (no host sync in the step); no ganforge data module defines that hook, so nothing is overridden.
    r".*You have overridden `on_before_batch_transfer` in `LightningModule` but have passed in a.*",
)
NOISE_LOG_LINES = (
    "try installing [litlogger]",  # an advertisement, printed at every Trainer start
    "Skipping setting a default `ModelSummary` callback",  # ParameterSummary replaces it on purpose
)


class _DropLines(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(line in message for line in NOISE_LOG_LINES)


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Within the block, drop `NOISE_WARNINGS` and `NOISE_LOG_LINES`; everything else passes."""
    drop = _DropLines()
    rank_zero = logging.getLogger("pytorch_lightning.utilities.rank_zero")  # Lightning's info lines
    rank_zero.addFilter(drop)
    try:
        with warnings.catch_warnings():
            for pattern in NOISE_WARNINGS:
                warnings.filterwarnings("ignore", message=pattern)
            yield
    finally:
        rank_zero.removeFilter(drop)


class ParameterSummary(RichModelSummary):
    """Lightning's model summary without its FLOPs column (0 without an `example_input_array`), mode
    column and size estimate (inaccurate under bf16): names, types and parameter counts."""

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int = 0,
        **summarize_kwargs: Any,
    ) -> None:
        from pytorch_lightning.utilities.model_summary import get_human_readable_count

        columns = [(name, values) for name, values in summary_data if name not in ("FLOPs", "Mode")]
        table = Table(header_style="bold magenta")
        for name, _ in columns:
            table.add_column(name)
        for row in zip(*(values for _, values in columns)):
            table.add_row(*row)
        console = Console()
        console.print(table)
        console.print(
            f"params: {get_human_readable_count(trainable_parameters)} trainable, "
            f"{get_human_readable_count(total_parameters - trainable_parameters)} not trainable "
            "(EMA copies, frozen towers)"
        )
