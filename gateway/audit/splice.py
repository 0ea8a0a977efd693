"""The request log's per-request work, compiled (mypyc, see ``setup.py``; the source is the fallback,
``GATEWAY_PURE_PYTHON=1``): the record time, the literal hashes spliced into a statement's text
between its fixed pieces, the prepared ``request`` record (a template serialized once, see
:mod:`gateway.audit.canonical`, and this request's values), and a request's outcome as the tuple an
``outcomes`` record lists (:func:`plan_outcome`; the writer folds a batch's outcomes into one record).

What these build is what :mod:`gateway.audit.requests` and :mod:`gateway.audit.record` always built:
the same members, the same canonical JSON (``tests/test_audit_canonical.py``). Pure.
"""

from __future__ import annotations

import time
from typing import Any

from gateway.audit.canonical import PreparedRecord, RecordTemplate
from gateway.errors import RowLimitExceeded

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


#: the SQLSTATE of an answer over the requester's rows per answer (RowLimitExceeded): refused whole
ROW_CAP_SQLSTATE: str = RowLimitExceeded.sqlstate


def duration_us(duration_ms: Any) -> int | None:
    """A duration in milliseconds as whole microseconds (rounded half up), as an ``outcomes`` entry
    holds it: an int, so that the record needs no float formatting; None when it is not a finite
    number (an entry has no duration then)."""
    if isinstance(duration_ms, int):
        return duration_ms * 1000
    if isinstance(duration_ms, float):
        value: float = duration_ms
        if 0.0 <= value < 1e15:
            return int(value * 1000.0 + 0.5)
        if -1e15 < value < 0.0:
            return -int(0.5 - value * 1000.0)
    return None


def outcome_entry(request_id: str, status: str, rows_returned: Any, persons_returned: Any, duration_ms: Any,
                  backend_sqlstate: str | None, rows_affected: Any = None) -> tuple[Any, ...]:
    """One request's outcome as an ``outcomes`` record lists it (the members of
    :data:`gateway.audit.record.OUTCOME_FIELDS`, in order): the duration in whole microseconds
    (:func:`duration_us`), the time now in microseconds since 1970 (UTC), ``rows_affected`` last and
    only for a staff write. Other numbers go in as given."""
    now = time.time_ns() // 1000
    if rows_affected is None:
        return (request_id, status, rows_returned, persons_returned, duration_us(duration_ms), backend_sqlstate, now)
    return (request_id, status, rows_returned, persons_returned, duration_us(duration_ms), backend_sqlstate, now,
            rows_affected)


def plan_outcome(plan: Any, rows: int, duration_ms: float, sqlstate: str | None, persons: Any = None,
                 status: str = "ok", rows_affected: Any = None) -> tuple[Any, ...]:
    """The outcome of ``plan``'s answer (:meth:`gateway.pipeline.Gateway.log_outcome`, and the wire
    door's steady path directly): a staff write's with the rows it affected (persons not counted); an
    answer over its row cap (``sqlstate`` 54000) refused with no row; otherwise, unless given, the
    distinct persons as far as the plan knows them, what :func:`gateway.plan.request.persons_returned`
    says (in one pass over the statements here: ``tests/test_plan_hot.py`` checks they agree): none
    when no row came back or the answer carries no personal data, the individuals it names when it
    names them all (at most one a row), else ``rows``."""
    personal = False
    anchored = True
    for st in plan.statements:
        if st.kind == "write":
            if rows_affected is None:
                rows_affected = 0
        elif st.personal:
            personal = True
            if not st.anchored:
                anchored = False
    if rows_affected is not None:
        return outcome_entry(plan.request_id, status, rows, None, duration_ms, sqlstate, rows_affected)
    if status == "ok" and sqlstate == ROW_CAP_SQLSTATE:
        status, rows = "refused", 0
    if persons is None and status == "ok":
        if rows == 0 or not personal:
            persons = 0
        else:
            individuals = plan.individuals
            persons = min(len(individuals), rows) if individuals and anchored else rows
    return outcome_entry(plan.request_id, status, rows, persons, duration_ms, sqlstate)
