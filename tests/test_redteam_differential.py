"""The compiled hot path and the pure-Python one (``GATEWAY_PURE_PYTHON=1``) give the same answers and
write the same request records for the same requests, through a real ``gateway serve`` each.

Both gateways share one log key, so a hashed literal, parameter or individual is the same text in
both logs; what differs by nature (request ids, times, durations, the chain's links, ports) is left
out of the comparison. Every client way in: psycopg simple and extended (prepared too), asyncpg
(binary parameters), and a raw pipeline of Parse/Bind/Execute without a Sync between them.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import re
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from frontdoor_pg_support import WireGateway, raw_login, start_gateway
from gateway.audit.keyfile import key_path_for
from gateway.audit.literals import hash_literal
from gateway.audit.record import per_request
from gateway.notices.queue import NoticeQueue

CBI = "-c gateway.purpose=criminal_law_enforcement -c gateway.case_number=CR-2026-0042"
COURT = "-c gateway.purpose=court_order -c gateway.order_reference=2026CV001234"
KEY = bytes(range(32))

SIMPLE = [
    ("dmv_clerk", "", "SELECT 1 AS one"),
    ("dmv_clerk", "", "SELECT person_id, first_name FROM dmv.persons WHERE person_id = 7"),
    ("dmv_clerk", "", "SELECT person_id, immigration_status FROM dmv.lawful_presence WHERE person_id = 7"),
    ("dmv_clerk", "", "SELECT count(*) FROM dmv.lawful_presence WHERE immigration_status = 'ASYLEE'"),
    ("dmv_clerk", "", "SELECT 1/0"),
    ("dmv_clerk", "", "SELEC 1"),
    ("dmv_clerk", "", "SELECT 1; SELECT person_id FROM dmv.persons WHERE person_id = 3"),
    ("dmv_clerk", "", "BEGIN; SELECT 2; COMMIT"),
    ("dmv_clerk", "", "SET application_name = 'x'; SHOW application_name"),
    ("cbi_analyst", CBI, "SELECT person_id, first_name FROM dmv.persons WHERE person_id IN (3, 05, '8')"),
    ("cbi_analyst", CBI, "SELECT person_id, first_name FROM dmv.persons WHERE person_id IN (3, 5, 8)"),
    ("cbi_analyst", CBI, "SELECT person_id, first_name FROM dmv.persons WHERE person_id = ANY('{4,6}')"),
    ("cbi_analyst", CBI, "SELECT person_id, first_name FROM dmv.persons WHERE first_name LIKE 'A%'"),
    ("cbi_analyst", CBI, "SELECT p.first_name, l.immigration_status FROM dmv.persons p JOIN dmv.lawful_presence l "
                         "USING (person_id) WHERE p.person_id = 11"),
    ("cbi_analyst", CBI, "SELECT first_name FROM dmv.persons WHERE person_id = 11 OR person_id = 12"),
    ("ag_counsel", COURT, "SELECT immigration_status FROM dmv.lawful_presence WHERE person_id = 15"),
    ("ag_counsel", COURT, "SELECT immigration_status FROM dmv.lawful_presence WHERE person_id = 16"),
    ("ice_ero", "", "SELECT count(*) FROM dmv.persons WHERE person_id = 17"),
    ("ice_ero", "", "SELECT first_name FROM dmv.persons WHERE person_id = 17"),
]
EXTENDED = [
    ("dmv_clerk", "", "SELECT person_id, first_name FROM dmv.persons WHERE person_id = %s", [7]),
    ("dmv_clerk", "", "SELECT person_id, immigration_status FROM dmv.lawful_presence WHERE person_id = %s", [9]),
    ("cbi_analyst", CBI, "SELECT person_id, first_name FROM dmv.persons WHERE person_id = %s", ["09"]),
    ("cbi_analyst", CBI, "SELECT person_id, first_name FROM dmv.persons WHERE person_id = ANY(%s)", [[3, 5]]),
    ("cbi_analyst", CBI, "SELECT person_id, first_name FROM dmv.persons WHERE person_id > %s", [5]),
    ("ag_counsel", COURT, "SELECT immigration_status FROM dmv.lawful_presence WHERE person_id = %s", [18]),
]


def _gateway(dmv_dsn: str, directory: Path, **env: str) -> Iterator[WireGateway]:
    directory.mkdir(parents=True, exist_ok=True)
    key = key_path_for(directory / "requests.jsonl")
    key.write_bytes(KEY)
    key.chmod(0o600)
    yield from start_gateway(dmv_dsn, directory, **env)


@pytest.fixture(scope="module")
def pair(dmv_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WireGateway, WireGateway]]:
    root = tmp_path_factory.mktemp("redteam-differential")
    compiled = _gateway(dmv_dsn, root / "compiled")
    pure = _gateway(dmv_dsn, root / "pure", GATEWAY_PURE_PYTHON="1")
    first = next(compiled)
    try:
        second = next(pure)
        try:
            yield first, second
        finally:
            pure.close()
    finally:
        compiled.close()


_ID = re.compile(r"\(request [0-9a-f]+-[0-9]+\)|request [0-9a-f]+-[0-9]+")


def _clean(text: str) -> str:
    return _ID.sub("(request)", text)


def _psycopg(gw: WireGateway) -> list[Any]:
    out: list[Any] = []
    for user, options, sql in SIMPLE:
        with psycopg.connect(gw.dsn(user), autocommit=True, options=options) as conn:
            notices: list[str] = []
            conn.add_notice_handler(lambda d, n=notices: n.append(_clean(d.message_primary or "")))
            try:
                cur = conn.execute(sql.encode(), prepare=False)  # bytes: the simple protocol
                rows = cur.fetchall() if cur.description else None
                out.append((sql, [(c.name, c.type_code) for c in cur.description or ()], rows, notices))
            except psycopg.Error as exc:
                out.append((sql, exc.sqlstate, _clean(str(exc)), notices))
    for prepare in (False, True):
        for user, options, sql, args in EXTENDED:
            with psycopg.connect(gw.dsn(user), autocommit=True, options=options) as conn:
                try:
                    for _ in range(2 if prepare else 1):
                        cur = conn.execute(sql, args, prepare=prepare)
                    out.append((sql, prepare, [(c.name, c.type_code) for c in cur.description or ()], cur.fetchall()))
                except psycopg.Error as exc:
                    out.append((sql, prepare, exc.sqlstate, _clean(str(exc))))
    return out


def _asyncpg(gw: WireGateway) -> list[Any]:
    async def main() -> list[Any]:
        out: list[Any] = []
        conn = await asyncpg.connect(host=gw.host, port=gw.port, user="cbi_analyst", password="cbi_analyst-demo-password",
                                     database="dmv", ssl=False, server_settings={"options": CBI})
        try:
            for sql, args in (("SELECT person_id, first_name FROM dmv.persons WHERE person_id = $1", (130,)),
                              ("SELECT person_id, first_name FROM dmv.persons WHERE person_id = $1", (131,)),
                              ("SELECT person_id, first_name FROM dmv.persons WHERE person_id = ANY($1::bigint[])", ([3, 200],)),
                              ("SELECT person_id FROM dmv.persons WHERE person_id = $1 AND first_name = $2", (5, "x")),
                              ("SELECT person_id, first_name FROM dmv.persons WHERE person_id < $1", (5,))):
                try:
                    out.append((sql, [tuple(r) for r in await conn.fetch(sql, *args)]))
                except asyncpg.PostgresError as exc:
                    out.append((sql, exc.sqlstate, _clean(str(exc))))
        finally:
            await conn.close()
        return out

    return asyncio.run(main())


def _msg(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


def _frames(data: bytes) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos + 5 <= len(data):
        (length,) = struct.unpack_from("!i", data, pos + 1)
        kind, body = chr(data[pos]), data[pos + 5:pos + 1 + length]
        out.append((kind, _clean(body.decode("utf-8", "replace")) if kind in "DCEN" else ""))
        pos += 1 + length
    return out


def _raw_pipeline(gw: WireGateway) -> bytes:
    """Parse once, then Bind/Execute five persons without a Sync between them, then one Sync."""
    sock = raw_login(gw, "dmv_clerk")
    try:
        data = _msg(b"P", b"s1\0SELECT first_name FROM dmv.persons WHERE person_id = $1\0\0\0")
        for pid in (21, 22, 23, 24, 25):
            value = str(pid).encode()
            data += _msg(b"B", b"\0s1\0\0\0\0\x01" + struct.pack("!i", len(value)) + value + b"\0\0")
            data += _msg(b"E", b"\0\0\0\0\0")
        sock.sendall(data + _msg(b"S", b""))
        got = b""
        while not got.endswith(_msg(b"Z", b"I")):
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
        return got
    finally:
        sock.close()


_VARYING = {"time", "request_id", "seq", "prev", "hash", "mac", "duration_ms", "session_id", "client_addr",
            "instance", "pid", "started", "ended", "at", "due"}


def _records(gw: WireGateway, before: int) -> list[dict[str, Any]]:
    """The records written after the first ``before`` lines of the log."""
    deadline = time.monotonic() + 10
    while True:  # every session's end is written (after its client left: not before the answers)
        lines = gw.audit_path.read_text().splitlines()
        if sum('"session_start"' in x for x in lines) == sum('"session_end"' in x for x in lines) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    out, outcomes = [], []
    for record in per_request(json.loads(line) for line in lines[before:]):
        kept = {k: (_clean(v) if isinstance(v, str) else v) for k, v in record.items() if k not in _VARYING}
        (outcomes if record.get("type") == "outcome" else out).append(kept)
    # a batch's outcomes are one record, and where a batch ends is timing: the outcomes compared as a set
    return out + sorted(outcomes, key=lambda r: json.dumps(r, sort_keys=True))


def _brief(records: list[dict[str, Any]]) -> list[str]:
    return [f"{r.get('type')} {r.get('requester')} {r.get('sql_received') or r.get('reason') or r.get('status') or ''}"[:150]
            for r in records]


def test_compiled_and_pure_python_answer_and_record_alike(pair: tuple[WireGateway, WireGateway]) -> None:
    results = []
    for gw in pair:
        before = len(gw.audit_path.read_text().splitlines())
        answers = (_psycopg(gw), _asyncpg(gw), _frames(_raw_pipeline(gw)))
        results.append((answers, _records(gw, before)))
    (answers_a, records_a), (answers_b, records_b) = results
    notices = [sorted(n.person for n in NoticeQueue(gw.audit_path.parent / "subject-notices.ndjson").notices()) for gw in pair]
    assert notices[0] == notices[1]
    for person, count in (("person:15", 1), ("person:16", 1), ("person:18", 3), ("person:17", 2)):
        assert notices[0].count(person) == count, (person, notices[0])
    assert answers_a == answers_b
    assert _brief(records_a) == _brief(records_b), "\n".join(difflib.unified_diff(_brief(records_a), _brief(records_b),
                                                                                 lineterm="", n=1))
    for a, b in zip(records_a, records_b):
        assert a == b
    # and the records say what the requests were: the individuals by the log key's hash of the canonical value
    requests = [r for r in records_a if r.get("type") == "request"]
    h = {v: hash_literal(v, KEY) for v in ("3", "5", "8", "9", "15", "18", "130", "131")}
    assert any(r.get("individuals") == [f"person:{h['3']}", f"person:{h['5']}", f"person:{h['8']}"] for r in requests)
    assert sum(r.get("individuals") == [f"person:{h['15']}"] for r in requests) == 1
    assert sum(r.get("individuals") == [f"person:{h['18']}"] for r in requests) == 3  # court order: once unprepared, twice prepared
    assert any(r.get("individuals") == [f"person:{h['130']}"] for r in requests)
    assert any(r.get("individuals") == [f"person:{h['9']}"] for r in requests)


# ---- in process: a cached plan decides what a fresh plan decides ------------------------------------
# Two in-process gateways on the same catalog, policy, requesters and log key. ``hot`` keeps its caches
# (every text of a shape is planned twice with other literals first: a miss, a shape hit, a skeleton
# learned, so the compared text is a cache hit), ``fresh`` has its caches emptied before every plan.
# For random literals, purposes and parameters, both must decide the same: the decision and its rule,
# the error, every statement (SQL sent, masks, redactions, accesses, who it names), the individuals
# admit binds, and the request record (all but its request id and time).

INT_FORMS = ("{}", "0{}", "'{}'", "' {}'", "{}.0", "{}e0", "'+{}'", "{}::bigint", "CAST({} AS int4)", "{}.4::bigint",
             "-{}", "({})")
SETTINGS = ("DateStyle", "search_path", "role", "standard_conforming_strings", "TimeZone", "application_name",
            "default_transaction_read_only", "session_authorization", "data_directory", "jit", "work_mem")
SHAPES = (
    "SELECT person_id, first_name FROM dmv.persons WHERE person_id = {i}",
    "SELECT person_id, immigration_status FROM dmv.lawful_presence WHERE person_id = {i}",
    "SELECT p.first_name, l.immigration_status FROM dmv.persons p JOIN dmv.lawful_presence l USING (person_id) "
    "WHERE p.person_id = {i}",
    "SELECT first_name FROM dmv.persons WHERE person_id IN ({i}, {i})",
    "SELECT first_name FROM dmv.persons WHERE person_id = {i} OR person_id = {i}",
    "SELECT zip, city FROM dmv.persons WHERE zip = {s}",
    "SELECT count(*) FROM dmv.lawful_presence WHERE immigration_status = {s}",
    "SELECT person_id FROM dmv.persons WHERE person_id > {i} ORDER BY person_id LIMIT {n}",
    "SELECT person_id, place_of_birth FROM dmv.persons ORDER BY {n} LIMIT 5",
    "SELECT first_name, last_name FROM dmv.persons WHERE last_name = {s} AND date_of_birth = {d}",
    "SELECT plate, make FROM dmv.vehicles WHERE plate = {s}",
    "SELECT set_config({g}, {s}, true)",
    "SELECT current_setting({g})",
    "SELECT {i} AS one",
)
PARAM_SHAPES = (
    "SELECT person_id, first_name FROM dmv.persons WHERE person_id = $1",
    "SELECT person_id, immigration_status FROM dmv.lawful_presence WHERE person_id = $1",
    "SELECT first_name FROM dmv.persons WHERE person_id = ANY($1)",
)
CLAIMS = (  # (requester, claim fields): allowed ones, and refused ones (a purpose not the requester's, none)
    ("dmv_clerk", {"purpose": "service_delivery"}),
    ("cbi_analyst", {"purpose": "criminal_law_enforcement", "case_number": "CR-2026-0042"}),
    ("ag_counsel", {"purpose": "court_order", "order_reference": "2026CV001234"}),
    ("ag_counsel", {"purpose": "required_by_law", "legal_citation": "C.R.S. 24-72-204"}),
    ("gov_office", {"purpose": "governor_authorized", "authorization_id": "GA-2026-7"}),
    ("ice_ero", {"purpose": "civil_immigration_enforcement"}),
    ("dmv_clerk", {"purpose": "criminal_law_enforcement", "case_number": "CR-1"}),
    ("cbi_analyst", {}),
    ("auditor", {"purpose": "service_delivery"}),
)


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


_str_literal = st.builds(_sql_text, st.one_of(st.sampled_from(["ASYLEE", "US_CITIZEN", "80202", "Smith", "AB-123", ""]),
                                              st.text(alphabet="ab'9 %_\\", max_size=6)))
_setting_literal = st.builds(_sql_text, st.sampled_from(SETTINGS))
DATE_FORMS = ("'{}'", "DATE '{}'", "'{} 00:00'", "{}")
_FIELD = re.compile(r"\{([isdgn])\}")


@st.composite
def _texts(draw: st.DrawFn) -> tuple[str, str, str]:
    """A shape, filled three times (two warm-up texts and the compared one): each literal keeps its
    form (``09``, ``'9'``, ``9::bigint``, ...) and takes another value, so the three are one shape."""
    shape = draw(st.sampled_from(SHAPES))
    fields = _FIELD.findall(shape)
    forms = [draw(st.sampled_from(INT_FORMS)) if f == "i" else draw(st.sampled_from(DATE_FORMS)) if f == "d" else ""
             for f in fields]

    def value(kind: str, form: str) -> str:
        if kind == "i":
            return form.format(draw(st.integers(1, 120)))
        if kind == "d":
            return form.format(draw(st.sampled_from(["1980-01-02", "19800102", "1990-12-31", "x"])))
        if kind == "n":
            return str(draw(st.integers(1, 3)))
        return draw(_setting_literal if kind == "g" else _str_literal)

    def fill() -> str:
        it = iter(zip(fields, forms))
        return _FIELD.sub(lambda m: value(*next(it)), shape)

    return fill(), fill(), fill()


_param = st.one_of(st.integers(1, 120).map(str), st.sampled_from(["09", " 9", "9.0", "+9", "-1", "x", "{3,5}", "{}"]),
                   st.none())


class _Pair:
    """The two in-process gateways and a session context per claim, each gateway its own."""

    def __init__(self, catalog: Any, root: Path) -> None:
        from gateway.audit.file_sink import AuditLog
        from gateway.config import Settings
        from gateway.identity.requesters import load_requesters
        from gateway.pipeline import Gateway
        from gateway.policy.load import load_policy

        self.gateways = []
        for name in ("hot", "fresh"):
            (root / name).mkdir()
            settings = Settings(policy="policies/colorado-dmv.yaml", requesters="policies/requesters.example.yaml",
                                audit_path=str(root / name / "requests.jsonl"))
            audit = AuditLog(root / name / "requests.jsonl", instance="gw", sync=True, key=KEY)
            gw = Gateway(settings, load_policy(settings.policy), load_requesters(settings.requesters), audit)
            gw.set_catalog(catalog)
            self.gateways.append(gw)
        self.contexts: dict[tuple[int, int], Any] = {}

    def ctx(self, which: int, claim: int) -> Any:
        from gateway.plan.request import SessionContext
        from gateway.policy.types import PurposeClaim

        found = self.contexts.get((which, claim))
        if found is None:
            user, fields = CLAIMS[claim]
            entry = self.gateways[which].requesters.lookup(user)
            assert entry is not None, user
            found = self.contexts[(which, claim)] = SessionContext(
                requester=entry.requester, claim=PurposeClaim(**fields), client_addr="127.0.0.1:5000", session_id="s-1")
        return found

    def fresh_plan(self, claim: int, sql: str, oids: tuple[int, ...] = ()) -> Any:
        gw = self.gateways[1]
        analyzer = gw.analyzer
        for cache in (analyzer._exact, analyzer._shapes, analyzer._skeletons):
            cache.clear()
        analyzer._exact_bytes = analyzer._shape_bytes = 0
        return gw.plan(self.ctx(1, claim), sql, oids)


@pytest.fixture(scope="module")
def planners(analysis_env: Any, tmp_path_factory: pytest.TempPathFactory) -> _Pair:
    return _Pair(analysis_env.catalog, tmp_path_factory.mktemp("plan-differential"))


def _decided(plan: Any) -> dict[str, Any]:
    """What a plan decides (everything but its request id and the caches' bookkeeping)."""
    error = plan.error
    return {
        "decision": (plan.decision.action, plan.decision.rule, _clean(plan.decision.reason)),
        "error": None if error is None else (type(error).__name__, getattr(error, "sqlstate", None), _clean(error.message)),
        "statements": [(s.kind, s.sql, s.command_tag, tuple(s.redacted), s.setting, tuple(s.masked), s.personal,
                        s.anchored, None if s.decision is None else (s.decision.action, s.decision.rule),
                        tuple(map(repr, s.accesses)), tuple(map(repr, s.named)), tuple(map(repr, s.individuals)))
                       for s in plan.statements],
        "individuals": tuple(plan.individuals),
        "refused_accesses": tuple(map(repr, plan.refused_accesses)),
        "profile": None if plan.profile is None else plan.profile.purpose,
    }


def _record(gw: Any, ctx: Any, plan: Any, params: Any) -> dict[str, Any]:
    """The request record the gateway would submit for ``plan``, without its request id and time."""
    built = gw._request_record(ctx, plan, params, None)
    record = dict(built.as_dict() if hasattr(built, "as_dict") else built)
    return {k: (_clean(v) if isinstance(v, str) else v) for k, v in record.items() if k not in ("request_id", "time")}


def _both(planners: _Pair, claim: int, hot_plan: Any, fresh_plan: Any, params: Any) -> tuple[Any, Any]:
    hot, fresh = planners.gateways
    hot_ctx, fresh_ctx = planners.ctx(0, claim), planners.ctx(1, claim)
    a = hot.admit(hot_ctx, hot_plan, params)
    b = fresh.admit(fresh_ctx, fresh_plan, params)
    assert _decided(a) == _decided(b), (a.sql, CLAIMS[claim])
    assert _record(hot, hot_ctx, a, params) == _record(fresh, fresh_ctx, b, params), (a.sql, CLAIMS[claim])
    return a, b


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_texts(), st.integers(0, len(CLAIMS) - 1))
def test_a_cached_plan_decides_what_a_fresh_plan_decides(planners: _Pair, texts: tuple[str, str, str], claim: int) -> None:
    hot = planners.gateways[0]
    ctx = planners.ctx(0, claim)
    for warm in texts[:2]:
        hot.plan_hot(ctx, warm)
    plan = hot.plan_hot(ctx, texts[2])
    assert plan is not None  # no analysis pool in process: a miss is analyzed inline
    _both(planners, claim, plan, planners.fresh_plan(claim, texts[2]), ())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(PARAM_SHAPES), st.integers(0, len(CLAIMS) - 1), st.lists(_param, min_size=3, max_size=3))
def test_a_reused_plan_binds_what_a_fresh_plan_binds(planners: _Pair, sql: str, claim: int, params: list[Any]) -> None:
    """An unnamed Parse's exact hit (``plan_hot`` again) and a prepared statement's Bind (``rebind``)
    against a fresh plan, each Bind with its own parameter."""
    hot = planners.gateways[0]
    ctx = planners.ctx(0, claim)
    held = hot.plan_hot(ctx, sql, (20,))
    assert held is not None
    for param in params:
        again = hot.plan_hot(ctx, sql, (20,))
        _both(planners, claim, again, planners.fresh_plan(claim, sql, (20,)), (param,))
        rebound = hot.rebind(ctx, held)
        if held.error is None and held.profile is not None:
            assert rebound is not None, "a plan whose basis is unchanged is reused"
        _both(planners, claim, rebound or hot.plan_hot(ctx, sql, (20,)), planners.fresh_plan(claim, sql, (20,)), (param,))
