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
from typing import Any, Final

from gateway.audit.canonical import (
    LineShape, PreparedRecord, RecordTemplate, SplicedRecord, dump_value, json_pieces, line_shape,
)
from gateway.errors import RowLimitExceeded

try:  # the C accelerator json itself uses (as canonical.py)
    from _json import encode_basestring as _encode_str  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - CPython always has it
    from json.encoder import py_encode_basestring as _encode_str  # type: ignore[attr-defined,no-redef]

_D2: Final = tuple([f"{i:02d}" for i in range(100)])
_D3: Final = tuple([f"{i:03d}" for i in range(1000)])


class _Clock:
    """The last whole second formatted, and its day (strftime once a day, not once a second)."""

    def __init__(self) -> None:
        self.second: tuple[int, str] = (-1, "")  # one tuple, swapped whole: threads read it unlocked
        self.day: tuple[int, str] = (-1, "")


_CLOCK: Final = _Clock()


def utc_now() -> str:
    """The current time as ``2026-07-01T12:00:00.123456Z`` (UTC, microseconds)."""
    micros = time.time_ns() // 1000
    second = micros // 1_000_000
    known = _CLOCK.second
    if known[0] != second:
        known = _tick(second)
    fraction = micros - second * 1_000_000
    ms = fraction // 1000
    return f"{known[1]}{_D3[ms]}{_D3[fraction - ms * 1000]}Z"


def _tick(second: int) -> tuple[int, str]:
    """The text of ``second`` up to its fraction (``2026-07-01T12:00:00.``), kept for the next call."""
    day = second // 86400
    date = _CLOCK.day
    if date[0] != day:
        date = _CLOCK.day = (day, time.strftime("%Y-%m-%dT", time.gmtime(day * 86400)))
    into = second - day * 86400
    hours = into // 3600
    minutes = (into - hours * 3600) // 60
    known = (second, f"{date[1]}{_D2[hours]}:{_D2[minutes]}:{_D2[into - hours * 3600 - minutes * 60]}.")
    _CLOCK.second = known
    return known


def literal_hash(hasher: Any, signer: Any, value: Any) -> str:
    """``hasher.hash_literal(value)`` (``'h:'`` + 16 hex digits), with the hasher's signer called
    here for a text (literals and text parameters), without the interpreted method."""
    if value.__class__ is str:
        return "h:" + signer.hexdigest(value.encode("utf-8", "surrogatepass"))[:16]
    return hasher.hash_literal(value)  # type: ignore[no-any-return]


def hashed_values(hasher: Any, values: tuple[str, ...]) -> dict[str, str]:
    """Each literal value's keyed hash, once per distinct value."""
    out: dict[str, str] = {}
    signer = hasher._signer
    for value in values:
        if value not in out:
            out[value] = literal_hash(hasher, signer, value)
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


#: the members of a request record's line shape before its SQL and after it (:func:`request_shape`)
_REQUEST_HEAD: Final = ("individuals", "instance", "params", "prev", "request_id", "seq")


def request_shape(template: RecordTemplate, received: tuple[str, ...] | None, sent: tuple[str, ...] | None) -> LineShape:
    """The line shape of ``template``'s request records. ``received``/``sent``: None (one value of JSON
    text per record), or the member's JSON text around the literal hashes each record gives
    (:func:`gateway.audit.canonical.json_pieces`; one piece: the same text in every record)."""
    inline: dict[str, tuple[str, ...]] = {"time": ('"', '"')}
    if received is not None:
        inline["sql_received"] = received
    if sent is not None:
        inline["sql_sent"] = sent
    shape = line_shape(template, inline)
    names = shape.names
    if names[:6] != _REQUEST_HEAD or names[-1] != "time" or any(n not in ("sql_received", "sql_sent") for n in names[6:-1]):
        raise ValueError(f"not a request record's members: {names}")
    return shape


def spliced_request(shape: LineShape, request_id: str, params: str, individuals: str, middle: list[str]) -> SplicedRecord:
    """A request record of ``shape``: its parameters and individuals (JSON text), and ``middle``, the
    values of its SQL members (the literal hashes, or JSON text: what the shape leaves to each record);
    the time now. The chain's members stay empty until sealed."""
    p = shape.pieces
    if len(middle) != len(p) - 8:
        raise ValueError(f"{len(middle)} values for a shape of {len(p) - 8}")
    parts = [p[0], individuals, p[1], "", p[2], params, p[3], "", p[4], _encode_str(request_id), p[5], "", p[6]]
    i = 7
    for value in middle:
        parts.append(value)
        parts.append(p[i])
        i += 1
    parts.append(utc_now())
    parts.append(p[i])
    return SplicedRecord(shape, parts, request_id)


def request_members(params: Any, individuals: Any, hashes: dict[str, str] | None, hasher: Any) -> tuple[str, str]:
    """A request's hashed parameters and individuals as JSON text (what :func:`request_record` puts
    in its values; an individual a literal or a text parameter names hashed once). Raises ValueError
    or TypeError for a value JSON cannot hold (parameters kept as they are, hashing off)."""
    enabled: bool = hasher.enabled
    signer = hasher._signer
    if params and enabled:
        hashed_params: list[str] = []
        for p in params:
            hashed_params.append(literal_hash(hasher, signer, p))
        params_json = '["' + '","'.join(hashed_params) + '"]'  # 'h:<hex>' or 'null': nothing to escape
        if individuals:
            known: dict[str, str] = {} if hashes is None else dict(hashes)
            for p, h in zip(params, hashed_params):
                if p.__class__ is str:
                    known[p] = h
            hashes = known
    elif params:
        params_json = dump_value(hasher.hash_params(params))
    else:
        params_json = "[]"
    if not individuals:
        return params_json, "[]"
    if not enabled:
        return params_json, dump_value(list(individuals))
    out: list[str] = []
    for individual in individuals:
        key, _, value = individual.partition(":")
        hashed = hashes.get(value) if hashes is not None else None
        if hashed is None:
            hashed = literal_hash(hasher, signer, value)
        out.append(_encode_str(key + ":" + hashed))
    return params_json, "[" + ",".join(out) + "]"


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
