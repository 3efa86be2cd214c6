"""Run summaries shared by the bench scripts (a helper module, not a benchmark)."""

from __future__ import annotations

import statistics


def summary(values: list[float]) -> dict[str, float]:
    """Median, min and max of repeated measurements (seconds, rates, ratios: units unchanged)."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}
