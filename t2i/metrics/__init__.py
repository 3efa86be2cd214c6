"""t2i metrics."""

from t2i.metrics.retrieval import r_precision

__all__ = ["r_precision"]
