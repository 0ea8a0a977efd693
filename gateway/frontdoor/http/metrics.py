"""The process-wide metrics registry lives in :mod:`gateway.metrics` (both front doors count there)."""

from gateway.metrics import Metrics

__all__ = ["Metrics"]
