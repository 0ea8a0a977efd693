"""The request log's per-request work, compiled (mypyc, see ``setup.py``; the source is the fallback,
``GATEWAY_PURE_PYTHON=1``): the record time, the literal hashes spliced into a statement's text
between its fixed pieces, and the prepared ``request`` and ``outcome`` records (a template serialized
once, see :mod:`gateway.audit.canonical`, and this request's values).

What these build is what :mod:`gateway.audit.requests` and :mod:`gateway.audit.record` always built:
the same members, the same canonical JSON (``tests/test_audit_canonical.py``). Pure.
"""

from __future__ import annotations

import time
from typing import Any

from gateway.audit.canonical import PreparedRecord, RecordTemplate

_SECOND: list[Any] = [-1, ""]  # the last whole second formatted (strftime is slow on the hot path)


def utc_now() -> str:
    """The current time as ``2026-07-01T12:00:00.123456Z`` (UTC, microseconds)."""
    micros = time.time_ns() // 1000
    second = micros // 1_000_000
    fraction = micros - second * 1_000_000
    if second != _SECOND[0]:
        _SECOND[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _SECOND[0] = second
    return f"{_SECOND[1]}.{fraction:06d}Z"


def hashed_values(hasher: Any, values: tuple[str, ...]) -> dict[str, str]:
    """Each literal value's keyed hash, once per distinct value."""
    out: dict[str, str] = {}
    for value in values:
        if value not in out:
            out[value] = hasher.hash_literal(value)
    return out


def spliced(pieces: Any, values: Any, hashes: dict[str, str], hasher: Any) -> str:
    """The text with ``'<hash>'`` of each value between ``pieces`` (one piece more than values);
    ``hashes``: values hashed already (others are hashed here)."""
    out: list[str] = [pieces[0]]
    i = 1
    for value in values:
        hashed = hashes.get(value)
        if hashed is None:
            hashed = hasher.hash_literal(value)
        out.append("'" + hashed + "'")
        out.append(pieces[i])
        i += 1
    return "".join(out)


def request_record(template: RecordTemplate, request_id: str, received: str | None, sent: str | None,
                   params: Any, individuals: Any, hashes: dict[str, str] | None, hasher: Any) -> PreparedRecord:
    """The request's record from its template: id, time, SQL and hashed parameters and individuals
    spliced in. ``hashes``: literal values already hashed (an individual a literal or a text parameter
    names is hashed once)."""
    hashed_params: list[Any]
    if params and hasher.enabled:
        hashed_params = []
        for p in params:
            hashed_params.append(hasher.hash_literal(p))
        if individuals:  # an individual a text parameter names is hashed once, like it
            known: dict[str, str] = {} if hashes is None else dict(hashes)
            for p, h in zip(params, hashed_params):
                if p.__class__ is str:
                    known[p] = h
            hashes = known
    else:
        hashed_params = hasher.hash_params(params)
    hashed_individuals: list[str] = []
    if individuals:
        enabled = hasher.enabled
        for individual in individuals:
            if not enabled:
                hashed_individuals.append(individual)
                continue
            key, _, value = individual.partition(":")
            hashed = hashes.get(value) if hashes is not None else None
            if hashed is None:
                hashed = hasher.hash_literal(value)
            hashed_individuals.append(key + ":" + hashed)
    return PreparedRecord(template, {"request_id": request_id, "time": utc_now(), "sql_received": received,
                                     "sql_sent": sent, "params": hashed_params, "individuals": hashed_individuals})


def outcome_record(template: RecordTemplate, request_id: str, rows_returned: Any, persons_returned: Any,
                   duration_ms: Any, backend_sqlstate: str | None, status: str) -> PreparedRecord:
    """An ``outcome`` record from its template (see :func:`gateway.audit.record.prepared_outcome`). The
    numbers untyped: they go into the record as given (an int duration stays an int)."""
    return PreparedRecord(template, {
        "request_id": request_id, "time": utc_now(), "rows_returned": rows_returned,
        "persons_returned": persons_returned, "duration_ms": round(duration_ms, 3),
        "backend_sqlstate": backend_sqlstate, "status": status,
    })
