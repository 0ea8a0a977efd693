"""The request-log record, schema version 1 (documented in ``docs/request-log.md``).

A record is a flat JSON object. Five record types carry requests and events; the chain adds
``seq``, ``prev`` and ``hash`` when the sink writes them (see :mod:`gateway.audit.chain`):

* ``request``: written and made durable *before* any result is released; exactly one per request,
  allowed, redacted or denied, on either front door.
* ``outcomes``: the outcomes of the requests answered since the last batch (rows, distinct persons,
  duration, backend SQLSTATE, status), one compact list entry each (:data:`OUTCOME_FIELDS`), one
  record per batch, after the ``request`` records it answers; joined to each ``request`` by
  ``request_id``. Logs written before it hold one ``outcome`` record per request instead;
  :func:`per_request` reads both as ``outcome`` records.
* ``login_failed``, ``purpose_change``: events without a statement.
* ``checkpoint``: written by the sink itself (start, rotation, periodic, retention, close).

Pure: builds dicts; hashing of literals is done here so that callers cannot forget it.
"""

from __future__ import annotations


from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from gateway import __version__
from gateway.audit.canonical import PreparedRecord, RecordTemplate
from gateway.audit.literals import LiteralHasher
from gateway.audit.splice import utc_now
from gateway.policy.types import JUSTIFICATION_FIELDS, Access, PurposeClaim

SCHEMA_VERSION = 1
RECORD_TYPES = ("request", "outcome", "outcomes", "login_failed", "purpose_change", "checkpoint", "session_start", "session_end",
                "reload", "admin", "alert", "rate_limited")


def format_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """Inverse of :func:`format_time` (also accepts any ISO 8601 form with an offset)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class RequestRecord:
    """Every field of a ``request`` record, before the chain seals it. ``as_dict()`` gives the JSON."""

    request_id: str
    requester: str | None
    agency: str | None
    front_door: str  # "wire" | "http"
    client_addr: str | None
    tls: bool
    purpose: str | None
    justification: Mapping[str, str | None]
    statement_kind: str | None
    sql_received: str | None
    sql_sent: str | None
    params: Sequence[Any]
    accesses: Sequence[Mapping[str, Any]]
    decision: str  # "allow" | "redact" | "deny"
    reason: str
    rule: str
    redacted: Sequence[str]
    masked: Sequence[str]
    statutory_request: bool
    statutory_exclusion: str | None
    policy_digest: str
    instance: str = ""
    registry_entry: Mapping[str, str] | None = None  # the authorization or court order released under
    certification: Mapping[str, str] | None = None  # an external requester's certification, or its lapse
    use_notice: bool = False  # the answer carried the use notice (SPEC 10)
    origin: Mapping[str, str | None] | None = None  # {ori, end_user} a switch or vendor relayed for
    error_code: str | None = None
    sqlstate: str | None = None
    requester_kind: str | None = None
    effective_purpose: str | None = None
    individuals: Sequence[str] = ()
    gateway_version: str = __version__
    time: str = field(default_factory=utc_now)
    type: str = "request"
    schema: int = SCHEMA_VERSION

    def as_dict(self) -> dict[str, Any]:
        return to_dict(self)


_PLAIN = (str, int, float, bool, list, dict, type(None))
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def to_dict(record: Any) -> dict[str, Any]:
    """A record as a plain dict (dataclass or mapping), with sequences as lists."""
    kind = type(record)
    if kind is dict:
        data = dict(record)
    elif is_dataclass(record) and not isinstance(record, type):
        names = _FIELD_NAMES.get(kind)
        if names is None:
            names = _FIELD_NAMES[kind] = tuple(f.name for f in fields(record))
        # shallow: the builders make fresh lists and dicts for every record, no deep copy needed
        data = {name: getattr(record, name) for name in names}
    elif isinstance(record, Mapping):
        data = dict(record)
    else:
        raise TypeError(f"an audit record must be a mapping or a dataclass, not {type(record).__name__}")
    for key, value in data.items():
        if type(value) in _PLAIN:
            continue
        if isinstance(value, tuple):
            data[key] = list(value)
        elif isinstance(value, Mapping):
            data[key] = dict(value)
    data.setdefault("schema", SCHEMA_VERSION)
    data.setdefault("time", utc_now())
    if data.get("type") not in RECORD_TYPES:
        raise ValueError(f"unknown audit record type {data.get('type')!r}")
    return data


def accesses_for_log(accesses: Iterable[Access]) -> list[dict[str, Any]]:
    """Group accesses by base column: ``{"column", "tags", "usage"}`` (sorted, stable)."""
    grouped: dict[str, tuple[set[str], set[str]]] = {}
    for acc in accesses:
        tags, usages = grouped.setdefault(str(acc.column), (set(), set()))
        tags.update(acc.tags)
        usages.add(acc.usage)
    return [
        {"column": col, "tags": sorted(tags), "usage": sorted(usages)}
        for col, (tags, usages) in sorted(grouped.items())
    ]


def _justification(claim: PurposeClaim | Mapping[str, Any] | None) -> tuple[str | None, dict[str, str | None]]:
    if claim is None:
        return None, {name: None for name in JUSTIFICATION_FIELDS}
    data = claim.as_dict() if isinstance(claim, PurposeClaim) else dict(claim)
    return data.get("purpose"), {name: data.get(name) for name in JUSTIFICATION_FIELDS}


def build_request_record(
    *,
    hasher: LiteralHasher,
    request_id: str,
    requester: str | None,
    agency: str | None,
    front_door: str,
    client_addr: str | None = None,
    tls: bool = False,
    claim: PurposeClaim | Mapping[str, Any] | None = None,
    statement_kind: str | None = None,
    sql_received: str | None = None,
    sql_received_hashed: bool = False,
    sql_sent: str | None = None,
    sql_sent_hashed: bool = False,
    params: Sequence[Any] | None = None,
    accesses: Iterable[Access] | Sequence[Mapping[str, Any]] = (),
    decision: str = "deny",
    reason: str = "",
    rule: str = "",
    redacted: Sequence[str] = (),
    masked: Iterable[Any] = (),
    statutory_request: bool = False,
    statutory_exclusion: str | None = None,
    policy_digest: str = "",
    registry_entry: Mapping[str, str] | None = None,
    certification: Mapping[str, str] | None = None,
    use_notice: bool = False,
    origin: Mapping[str, str | None] | None = None,
    error_code: str | None = None,
    sqlstate: str | None = None,
    instance: str = "",
    time: str | None = None,
    requester_kind: str | None = None,
    effective_purpose: str | None = None,
    individuals: Sequence[str] = (),
) -> dict[str, Any]:
    """The ``request`` record as a dict, literals and parameters hashed by ``hasher``.

    ``individuals`` are the individuals the request names as ``key:value``; the values are hashed
    like literals (``person:h:...``).

    ``accesses`` may be :class:`Access` values (grouped by column here) or already-grouped dicts.
    ``masked`` holds the base columns the rewrite replaced by NULL (ColumnRef or ``schema.rel.col``).
    """
    purpose, justification = _justification(claim)
    acc_list = list(accesses)
    logged_accesses = (
        accesses_for_log(acc_list)  # type: ignore[arg-type]
        if acc_list and isinstance(acc_list[0], Access)
        else [dict(a) for a in acc_list]  # type: ignore[arg-type]
    )
    record = RequestRecord(
        request_id=request_id,
        requester=requester,
        agency=agency,
        front_door=front_door,
        client_addr=client_addr,
        tls=tls,
        purpose=purpose,
        justification=justification,
        statement_kind=statement_kind,
        sql_received=sql_received if sql_received_hashed else hasher.hash_sql(sql_received),
        sql_sent=sql_sent if sql_sent_hashed else hasher.hash_sql(sql_sent),
        params=hasher.hash_params(params),
        accesses=logged_accesses,
        decision=decision,
        reason=reason,
        rule=rule,
        redacted=list(redacted),
        masked=sorted(str(m) for m in masked),
        statutory_request=statutory_request,
        statutory_exclusion=None if statutory_request else statutory_exclusion,
        policy_digest=policy_digest,
        instance=instance,
        registry_entry=registry_entry,
        certification=certification,
        use_notice=use_notice,
        origin=origin,
        error_code=error_code,
        sqlstate=sqlstate,
        requester_kind=requester_kind,
        effective_purpose=effective_purpose,
        individuals=[_hash_individual(hasher, i) for i in individuals],
        time=time or utc_now(),
    )
    return record.as_dict()


def hash_individuals(hasher: LiteralHasher, individuals: Iterable[str]) -> list[str]:
    """``key:value`` texts as the record holds them: ``key:h:...`` (values hashed like literals)."""
    return [_hash_individual(hasher, i) for i in individuals]


def _hash_individual(hasher: LiteralHasher, individual: str) -> str:
    key, _, value = individual.partition(":")
    return f"{key}:{hasher.hash_literal(value)}" if hasher.enabled else individual


def build_outcome_record(
    *,
    request_id: str,
    rows_returned: int,
    persons_returned: int | None,
    duration_ms: float,
    backend_sqlstate: str | None = None,
    status: str = "ok",
    instance: str = "",
    time: str | None = None,
) -> dict[str, Any]:
    """A per-request ``outcome`` record (``status``: ok, error, cancelled, refused), as logs before the
    ``outcomes`` record hold them (and :func:`expand_outcomes` reads that record's entries back)."""
    return {
        "schema": SCHEMA_VERSION,
        "type": "outcome",
        "time": time or utc_now(),
        "instance": instance,
        "request_id": request_id,
        "status": status,
        "rows_returned": rows_returned,
        "persons_returned": persons_returned,
        "duration_ms": round(duration_ms, 3),
        "backend_sqlstate": backend_sqlstate,
    }


def build_login_failed_record(
    *,
    user: str | None,
    front_door: str,
    client_addr: str | None,
    tls: bool,
    reason: str,
    request_id: str = "",
    instance: str = "",
    time: str | None = None,
) -> dict[str, Any]:
    """A failed authentication (``user`` is the name claimed; no secret is ever logged)."""
    return {
        "schema": SCHEMA_VERSION,
        "type": "login_failed",
        "time": time or utc_now(),
        "instance": instance,
        "request_id": request_id,
        "requester": user,
        "front_door": front_door,
        "client_addr": client_addr,
        "tls": tls,
        "reason": reason,
        "gateway_version": __version__,
    }


def build_purpose_change_record(
    *,
    requester: str,
    agency: str | None,
    front_door: str,
    client_addr: str | None,
    tls: bool,
    previous_purpose: str | None,
    claim: PurposeClaim | Mapping[str, Any] | None,
    accepted: bool,
    reason: str = "",
    rule: str = "",
    request_id: str = "",
    instance: str = "",
    time: str | None = None,
) -> dict[str, Any]:
    """A session's purpose changed (``SET gateway.purpose``): accepted, or refused with the reason."""
    purpose, justification = _justification(claim)
    return {
        "schema": SCHEMA_VERSION,
        "type": "purpose_change",
        "time": time or utc_now(),
        "instance": instance,
        "request_id": request_id,
        "requester": requester,
        "agency": agency,
        "front_door": front_door,
        "client_addr": client_addr,
        "tls": tls,
        "previous_purpose": previous_purpose,
        "purpose": purpose,
        "justification": justification,
        "decision": "allow" if accepted else "deny",
        "reason": reason,
        "rule": rule,
        "gateway_version": __version__,
    }


#: Members of a ``request`` record that change from one request to the next (the chain adds the last
#: three). Everything else is fixed by the session and the statement shape: see :func:`request_template`.
REQUEST_DYNAMIC = ("request_id", "time", "sql_received", "sql_sent", "params", "individuals", "instance", "seq", "prev")


def request_template(**fields: Any) -> RecordTemplate:
    """The static part of ``request`` records: the keyword arguments of :func:`build_request_record`
    without its dynamic members (:data:`REQUEST_DYNAMIC`), serialized once. A request then supplies
    only its id, time, hashed SQL and parameters (:func:`prepared_request`). Fields a later schema adds
    go to one side or the other; the canonical form is the same as :func:`build_request_record` gives.
    """
    record = build_request_record(hasher=_NO_HASHER, request_id="", sql_received=None, sql_sent=None,
                                  sql_sent_hashed=True, params=None, time="", **fields)
    static = {k: v for k, v in record.items() if k not in REQUEST_DYNAMIC}
    return RecordTemplate(static, REQUEST_DYNAMIC)


def prepared_request(template: RecordTemplate, *, request_id: str, sql_received: str | None, sql_sent: str | None,
                     params: list[Any], time: str | None = None, individuals: list[str] | None = None) -> PreparedRecord:
    """A ``request`` record from its template; SQL, parameters and individuals already hashed by the caller."""
    return PreparedRecord(template, {"request_id": request_id, "time": time or utc_now(),
                                     "sql_received": sql_received, "sql_sent": sql_sent, "params": params,
                                     "individuals": individuals or []})


#: The members of each entry of an ``outcomes`` record, in order: those of an ``outcome`` record, with
#: its duration as ``duration_us`` (whole microseconds) and its time as ``time_us`` (microseconds since
#: 1970, UTC), integers both; ``rows_affected`` only for a staff write (an entry one member shorter
#: otherwise). Schema 1 fixes this order (docs/request-log.md); a record that names its own ``fields``
#: is read by those instead (none does yet: the list would cost ~120 bytes a record).
OUTCOME_FIELDS = ("request_id", "status", "rows_returned", "persons_returned", "duration_us", "backend_sqlstate",
                  "time_us", "rows_affected")
_OUTCOMES = RecordTemplate({"schema": SCHEMA_VERSION, "type": "outcomes"},
                           ("time", "outcomes", "instance", "seq", "prev"))
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def outcomes_record(entries: list[tuple[Any, ...]]) -> PreparedRecord:
    """One ``outcomes`` record of ``entries`` (:func:`gateway.audit.splice.plan_outcome` builds them),
    timed now: what the writer seals for the outcomes queued in one batch."""
    return PreparedRecord(_OUTCOMES, {"time": utc_now(), "outcomes": entries})


def is_outcomes(record: Any) -> bool:
    """``record`` is an ``outcomes`` record as :func:`outcomes_record` builds it (before sealing)."""
    return type(record) is PreparedRecord and record.template is _OUTCOMES


def outcome_time(time_us: int) -> str:
    """An entry's ``time_us`` as a record ``time`` (exact to the microsecond)."""
    return format_time(_EPOCH + timedelta(microseconds=time_us))


def expand_outcomes(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``outcome`` records an ``outcomes`` record folds, in order: the members a per-request
    ``outcome`` record has (:func:`build_outcome_record`: ``time`` from ``time_us``, ``duration_ms``
    from ``duration_us``; ``rows_affected`` for a staff write), and the ``seq`` of the record that
    holds them. Entries are read by :data:`OUTCOME_FIELDS` (or the record's own ``fields``)."""
    names = record.get("fields") or OUTCOME_FIELDS
    base = {"schema": record.get("schema", SCHEMA_VERSION), "type": "outcome", "instance": record.get("instance", "")}
    if "seq" in record:
        base["seq"] = record["seq"]
    out: list[dict[str, Any]] = []
    for entry in record.get("outcomes") or ():
        if not isinstance(entry, (list, tuple)):
            continue
        outcome = dict(base)
        outcome.update(zip(names, entry))
        stamp = outcome.pop("time_us", None)
        outcome["time"] = outcome_time(stamp) if isinstance(stamp, int) else record.get("time")
        if "duration_us" in outcome:
            micros = outcome.pop("duration_us")
            outcome["duration_ms"] = micros / 1000 if isinstance(micros, int) else None
        out.append(outcome)
    return out


def per_request(records: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """``records`` with every ``outcomes`` record replaced by the ``outcome`` records it folds (old
    logs hold those directly): what a reader joining outcomes to requests needs, whatever wrote the log."""
    for record in records:
        if record.get("type") == "outcomes":
            yield from expand_outcomes(record)
        else:
            yield record


_NO_HASHER = LiteralHasher(b"\0" * 32, enabled=False)
