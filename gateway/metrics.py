"""Prometheus metrics, written by hand in the text exposition format (no extra dependency).

Counters and histograms are keyed by label tuples; :meth:`Metrics.render` writes them with the
gauges a caller supplies (pool size, pool in use, request log availability) at scrape time.

>>> m = Metrics()
>>> m.count("gateway_requests_total", decision="allow", front_door="http", purpose="none")
>>> 'gateway_requests_total{decision="allow",front_door="http",purpose="none"} 1' in m.render()
True
"""

from __future__ import annotations

import bisect
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
AUDIT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

HELP: dict[str, tuple[str, str]] = {
    "gateway_requests_total": ("counter", "Requests planned, by decision, front door and purpose."),
    "gateway_http_requests_total": ("counter", "HTTP responses, by endpoint and status."),
    "gateway_http_rate_limited_total": ("counter", "HTTP requests refused by the per-token rate limit."),
    "gateway_request_duration_seconds": ("histogram", "Time from receipt to answer of a query, by front door."),
    "gateway_audit_append_seconds": ("histogram", "Time to make a request record durable."),
    "gateway_backend_pool_size": ("gauge", "Connections open in the backend pool used by the HTTP front door."),
    "gateway_backend_pool_in_use": ("gauge", "Connections of that pool in use."),
    "gateway_audit_available": ("gauge", "1 when the request log can be written, else 0."),
}

Labels = tuple[tuple[str, str], ...]


def _labels(labels: Labels, extra: tuple[tuple[str, str], ...] = ()) -> str:
    pairs = labels + extra
    if not pairs:
        return ""
    text = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
    return "{" + text + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class _Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value

    def since(self, started: float) -> Callable[[Any], None]:
        """A done-callback that observes the seconds from ``started`` (``time.perf_counter()``) to its call."""
        return partial(_observe_since, self, started)


def _observe_since(hist: _Histogram, started: float, _done: Any) -> None:
    hist.observe(time.perf_counter() - started)


class _Counter:
    """One label set of a counter, resolved once (the hot path counts without building labels)."""

    __slots__ = ("_cells", "_key")

    def __init__(self, cells: dict[Labels, float], key: Labels) -> None:
        self._cells = cells
        self._key = key

    def inc(self, amount: float = 1.0) -> None:
        self._cells[self._key] += amount


class Metrics:
    """One registry per app (wiring by constructor; the wire front door may share it)."""

    def __init__(self) -> None:
        self._counters: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
        self._histograms: dict[str, dict[Labels, _Histogram]] = defaultdict(dict)

    def count(self, name: str, amount: float = 1.0, **labels: str) -> None:
        self._counters[name][tuple(sorted(labels.items()))] += amount

    def counter(self, name: str, **labels: str) -> _Counter:
        """The counter ``name`` with ``labels``, to count on it again and again."""
        key = tuple(sorted(labels.items()))
        cells = self._counters[name]
        cells[key] += 0.0  # shown from now on, like a counted one
        return _Counter(cells, key)

    def observe(self, name: str, seconds: float, **labels: str) -> None:
        self.histogram(name, **labels).observe(seconds)

    def histogram(self, name: str, **labels: str) -> _Histogram:
        """The histogram ``name`` with ``labels`` (made on first use)."""
        key = tuple(sorted(labels.items()))
        hist = self._histograms[name].get(key)
        if hist is None:
            buckets = AUDIT_BUCKETS if name.startswith("gateway_audit") else LATENCY_BUCKETS
            hist = self._histograms[name][key] = _Histogram(buckets)
        return hist

    def render(self, gauges: Mapping[str, float] | None = None) -> str:
        lines: list[str] = []
        for name in sorted(set(self._counters) | set(self._histograms) | set(gauges or {})):
            kind, text = HELP.get(name, ("gauge" if gauges and name in gauges else "untyped", name))
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
            for labels, value in sorted(self._counters.get(name, {}).items()):
                lines.append(f"{name}{_labels(labels)} {_number(value)}")
            for labels, hist in sorted(self._histograms.get(name, {}).items()):
                running = 0
                for bound, n in zip((*hist.buckets, float("inf")), hist.counts):
                    running += n
                    le = "+Inf" if bound == float("inf") else repr(bound)
                    lines.append(f"{name}_bucket{_labels(labels, (('le', le),))} {running}")
                lines.append(f"{name}_sum{_labels(labels)} {repr(hist.total)}")
                lines.append(f"{name}_count{_labels(labels)} {running}")
            if gauges and name in gauges:
                lines.append(f"{name} {_number(gauges[name])}")
        return "\n".join(lines) + "\n"
