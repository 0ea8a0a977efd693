"""The compiled per-request work of the plan stage and the request log (gateway/plan/hot.py,
gateway/audit/splice.py) builds what the plain constructors and builders build. In-process, no
database; tests/test_compiled_hotpath.py runs this file again with the pure-Python modules forced."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, strategies as st

from gateway.audit.canonical import canonical_dumps
from gateway.audit.literals import LiteralHasher
from gateway.audit.record import (
    build_outcome_record, build_request_record, expand_outcomes, hash_individuals, outcome_time, request_template,
)
from gateway.audit.splice import hashed_values, outcome_entry, plan_outcome, request_record, spliced, utc_now
from gateway.plan import hot
from gateway.plan.request import Plan
from gateway.plan.types import Analysis, NamedValue, StatementPlan
from gateway.policy.types import Decision, PurposeClaim

STATIC = dict(requester="dmv_clerk", agency="Colorado DMV", front_door="wire", client_addr="127.0.0.1:1",
              tls=False, claim=PurposeClaim(purpose="service_delivery"), statement_kind="select",
              accesses=[{"column": "dmv.persons.first_name", "tags": ["pii"], "usage": ["output"]}],
              decision="allow", reason="ok", rule="r", redacted=[], masked=[], statutory_request=False,
              statutory_exclusion="no exception purpose stated", policy_digest="abc")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")

_values = st.lists(st.one_of(st.none(), st.text(max_size=6), st.binary(max_size=4), st.integers()), max_size=3)


@given(_values, st.lists(st.sampled_from(["person:1", "person:", "plate:AB-1", "combination:a|b", "x"]), max_size=3),
       st.booleans(), st.booleans())
def test_the_spliced_request_record_is_the_built_one(params, individuals, enabled, known):
    """Parameters and individuals hashed (an individual a text parameter or a literal names hashed
    once, from what was hashed already): the record renders to the dict record's canonical JSON."""
    hasher = LiteralHasher(b"k" * 32, enabled=enabled)
    hashes = hashed_values(hasher, ("1", "AB-1")) if known and enabled else None
    record = request_record(request_template(**STATIC), "r-1", "select 1", "select 1", tuple(params),
                            tuple(individuals), hashes, hasher)
    moment = record.values["time"]
    assert TIME.fullmatch(moment)
    plain = build_request_record(hasher=hasher, request_id="r-1", sql_received="select 1", sql_received_hashed=True,
                                 sql_sent="select 1", sql_sent_hashed=True, params=params,
                                 individuals=individuals, time=moment, **STATIC)
    assert record.values["individuals"] == hash_individuals(hasher, individuals)
    assert record.as_dict() == {k: v for k, v in plain.items() if k != "instance"}
    record.values.update(instance="gw", seq=7, prev="p")  # what the chain adds
    assert record.render() == canonical_dumps({**plain, "instance": "gw", "seq": 7, "prev": "p"})


@given(st.lists(st.text(max_size=5), max_size=4))
def test_literals_spliced_between_pieces_are_hashed_once_each(values):
    hasher = LiteralHasher(b"k" * 32)
    pieces = [f"<{i}>" for i in range(len(values) + 1)]
    hashes = hashed_values(hasher, tuple(values))
    assert hashes == {v: hasher.hash_literal(v) for v in values}
    expected = pieces[0] + "".join(f"'{hasher.hash_literal(v)}'{p}" for v, p in zip(values, pieces[1:]))
    assert spliced(pieces, values, hashes, hasher) == expected
    assert spliced(pieces, values, {}, hasher) == expected  # nothing known: each hashed here


@given(st.one_of(st.integers(0, 10**6), st.floats(0, 1e6)), st.one_of(st.none(), st.integers(0, 9)),
       st.sampled_from(["ok", "error", "refused"]), st.one_of(st.none(), st.just("57014")),
       st.one_of(st.none(), st.integers(0, 99)))
def test_the_outcome_entry_reads_back_as_the_built_outcome(duration, persons, status, sqlstate, affected):
    """Read back, an entry is the per-request outcome record with its duration to the microsecond and
    its time now, to the microsecond; a staff write's carries its rows affected."""
    import time

    from gateway.audit.splice import duration_us

    before = time.time_ns() // 1000
    entry = outcome_entry("r1", status, 3, persons, duration, sqlstate, affected)
    assert before <= entry[6] <= time.time_ns() // 1000 and entry[4] == duration_us(duration)
    (read,) = expand_outcomes({"type": "outcomes", "schema": 1, "instance": "gw", "outcomes": [list(entry)]})
    plain = build_outcome_record(request_id="r1", rows_returned=3, persons_returned=persons,
                                 duration_ms=duration_us(duration) / 1000, backend_sqlstate=sqlstate, status=status,
                                 time=outcome_time(entry[6]), instance="gw")
    assert read == (plain if affected is None else {**plain, "rows_affected": affected})
    assert abs(read["duration_ms"] - duration) <= 0.0005 + 1e-12 * duration
    assert TIME.fullmatch(read["time"])


@given(st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans()), min_size=1, max_size=3),
       st.lists(st.sampled_from(["person:1", "person:2", "plate:X"]), max_size=3), st.integers(0, 5))
def test_the_plan_outcome_counts_persons_as_the_plan_does(flags, individuals, rows):
    """Any statements (read or write, personal or not, anchored or not) and individuals: the persons
    the outcome counts are persons_returned's, and a plan with a write is a staff write's outcome."""
    from gateway.plan.request import persons_returned

    statements = tuple(_statement(kind="write" if write else "select", personal=personal, anchored=anchored)
                       for write, personal, anchored in flags)
    plan = Plan("r-9", "sql", statements, Decision("allow", "ok"), None, None, "skeleton",
                individuals=tuple(individuals))
    entry = plan_outcome(plan, rows, 0.5, None)
    if any(write for write, _, _ in flags):
        assert entry[3] is None and entry[7] == 0
    else:
        assert entry[3] == persons_returned(plan, rows) and len(entry) == 7


@given(st.floats(-1e9, 1e9), st.integers(-10**9, 10**9))
def test_a_duration_is_whole_microseconds(ms, whole):
    from gateway.audit.splice import duration_us

    assert type(duration_us(ms)) is int and abs(duration_us(ms) - ms * 1000) <= 0.5 + 1e-9 * abs(ms * 1000)
    assert duration_us(whole) == whole * 1000
    assert duration_us(float("nan")) is None and duration_us(float("inf")) is None and duration_us(None) is None


def test_the_plan_outcome_is_what_log_outcome_always_recorded() -> None:
    """A read counts its distinct persons as the plan knows them; an answer over the row cap is refused
    with no row; an error keeps its SQLSTATE; a staff write carries its rows affected, persons not counted."""
    from gateway.plan.request import persons_returned

    decision = Decision("allow", "ok")
    named = Plan("r-1", "sql", (_statement(anchored=True),), decision, None, None, "skeleton",
                 individuals=("person:1", "person:2"))
    search = Plan("r-2", "sql", (_statement(),), decision, None, None, "skeleton")
    write = Plan("r-3", "sql", (_statement(kind="write", personal=False),), decision, None, None, "skeleton")
    for plan, rows in ((named, 5), (named, 1), (named, 0), (search, 7)):
        entry = plan_outcome(plan, rows, 1.5, None)
        assert entry[:6] == (plan.request_id, "ok", rows, persons_returned(plan, rows), 1500, None) and len(entry) == 7
    assert plan_outcome(named, 5, 1.0, None)[3] == 2 and plan_outcome(search, 7, 1.0, None)[3] == 7
    assert plan_outcome(search, 120, 2.0, "54000")[:6] == ("r-2", "refused", 0, None, 2000, "54000")
    assert plan_outcome(search, 0, 2.0, "57014", status="cancelled")[:6] == ("r-2", "cancelled", 0, None, 2000, "57014")
    assert plan_outcome(search, 0, 2.0, None, persons=4)[3] == 4
    assert plan_outcome(write, 0, 2.0, None)[:6] + plan_outcome(write, 0, 2.0, None)[7:] == \
        ("r-3", "ok", 0, None, 2000, None, 0)
    assert plan_outcome(search, 1, 2.0, None, rows_affected=3)[7] == 3
    assert plan_outcome(write, 0, 2.0, "23505", status="error", rows_affected=0)[1:3] == ("error", 0)


def test_utc_now_is_the_current_second() -> None:
    import time

    before = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    now = utc_now()
    after = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    assert TIME.fullmatch(now) and before <= now[:19] <= after


def _statement(**changes: object) -> StatementPlan:
    fields: dict[str, object] = dict(kind="select", sql="SELECT a FROM t WHERE x = 1 AND y = 'q'", command_tag="SELECT",
                                     redacted=("a",), parts=("SELECT a FROM t WHERE x = ", " AND y = ", ""),
                                     slots=("1", "q"), personal=True)
    fields.update(changes)
    return StatementPlan(**fields)  # type: ignore[arg-type]


def test_skeleton_statements_are_the_constructed_ones() -> None:
    """A cached statement with another text's literals spliced in, and the individuals it names made
    from their recipes, equals the statement built by its constructor with those values."""
    cached = _statement(individuals=(NamedValue("person", ("1",)),))
    recipes = (({"key": "person", "array": False, "kinds": ("int",)}, ((True, 0),), "person", False, ("int",), True),
               ({"key": "combination", "array": False, "kinds": ()}, ((True, 1), (False, "x"), (False, 2)),
                "combination", False, (), False))
    fixed = _statement(kind="transaction", sql="BEGIN", parts=None, slots=())
    base = hot.statement_base(cached, cached.parts)
    entries = ((fixed, None, (), (), None), (cached, cached.parts, (0, 1), recipes, base))
    literals, values = ["042", "'it''s'"], hot.literal_values(["042", "'it''s'"])
    assert values == ["042", "it's"]
    found: list[str] = []
    out = hot.skeleton_statements(entries, StatementPlan, NamedValue, literals, values, found)
    assert out[0] is fixed
    expected = _statement(sql="SELECT a FROM t WHERE x = 042 AND y = 'it''s'", slots=("042", "it's"),
                          individuals=(NamedValue("person", ("042",), kinds=("int",)),
                                       NamedValue("combination", ("it's", "x", 2))))
    assert out[1] == expected and out[1].parts is cached.parts
    assert out[1].individuals[1].resolve(["p1", "p2"]) == ["combination:it's|x|p2"]
    assert out[1].__dict__ == expected.__dict__  # every field, compared or not
    assert found == ["person:42"] == [i for v in out[1].individuals for i in v.resolve(None)]  # $2 unbound: nobody
    assert base["individuals"] == () and base["parts"] is cached.parts and cached.individuals  # the base, untouched
    assert hot.skeleton_statements(entries, StatementPlan, NamedValue, literals, values) == out  # found is optional


def test_skeleton_key_and_literals() -> None:
    parts = ["SELECT ", "1", " WHERE x = ", "'a'", ""]
    key, literals = hot.skeleton_key(("k", None), parts)
    assert key == (("k", None), "SELECT \x00 WHERE x = \x00", (False, True)) and literals == ["1", "'a'"]


def test_the_request_plan_bound_and_rebound_are_the_constructed_ones() -> None:
    from gateway.pipeline import _PLAN_DEFAULTS

    decision = Decision("allow", "ok")
    statements = (_statement(individuals=(NamedValue("person", (1,)), NamedValue("person", ("7",)))),)
    analysis = Analysis(statements, decision, cache="skeleton", literals=(["a", "b"], ("1",)))
    basis = ("ctx", "analyzer", "policy", "requesters")
    plan = hot.request_plan(Plan, _PLAN_DEFAULTS, "r-1", "sql", analysis, None, basis)
    expected = Plan("r-1", "sql", statements, decision, None, None, "skeleton", literals=analysis.literals,
                    origin=analysis, basis=basis)
    assert plan.__dict__ == expected.__dict__
    assert hot.named(statements, ["7"]) == ("person:7",) == plan.named(["7"])  # once each
    assert hot.named(statements, ["5"]) == ("person:5", "person:7")
    assert hot.named(statements, [None]) == ("person:7",)  # a NULL parameter names nobody
    bound = hot.bound(plan, ("person:5",))
    assert bound.__dict__ == {**plan.__dict__, "individuals": ("person:5",)} and plan.individuals == ()
    again = hot.rebound(bound, "r-2", ())
    assert again.__dict__ == {**plan.__dict__, "request_id": "r-2"}
    assert hot.rebound(bound, "r-3", None).individuals == ("person:5",)


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12) | st.sampled_from(['"', "\\", "\n", "\x00", "é", "'"])


@given(st.lists(_text, min_size=1, max_size=4), st.lists(_text, min_size=1, max_size=4), _values,
       st.lists(st.sampled_from(["person:1", "person:", "plate:AB-1", 'k"ey:x', "x"]), max_size=3),
       st.sampled_from(["pieces", "whole", "slot"]), st.text(max_size=6))
def test_the_spliced_request_line_is_the_built_records(received, sent, params, individuals, form, request_id):
    """A request record spliced from its line shape (the static members and the SQL's escaped pieces
    serialized once, the literal hashes, parameters, individuals, id and time per record) seals to
    the very line the dict record seals to, chain members and HMAC included; its as_dict is the record."""
    from gateway.audit.canonical import json_pieces
    from gateway.audit.chain import ChainState
    from gateway.audit.splice import request_members, request_shape, spliced_request

    hasher = LiteralHasher(b"k" * 32)
    values = [f"v{i}" for i in range(len(received) - 1)]  # literal values, some repeated in the sent SQL
    slots = [values[i % len(values)] if values else f"s{i}" for i in range(len(sent) - 1)]
    hashes = hashed_values(hasher, tuple(values))
    sql_received = spliced(received, values, hashes, hasher)
    sql_sent = spliced(sent, slots, hashes, hasher)
    template = request_template(**STATIC)
    if form == "pieces":  # a skeleton hit: the hashes between pieces escaped once
        shape = request_shape(template, json_pieces(received), json_pieces(sent))
        middle = [hashes[v] for v in values] + [hasher.hash_literal(v) for v in slots]
    elif form == "whole":  # an exact hit: the hashed SQL the same in every record
        shape = request_shape(template, (canonical_dumps(sql_received),), (canonical_dumps(sql_sent),))
        middle = []
    else:  # the SQL given whole per record
        shape = request_shape(template, None, None)
        middle = [canonical_dumps(sql_received), canonical_dumps(sql_sent)]
    members = request_members(tuple(params), tuple(individuals), hashes, hasher)
    record = spliced_request(shape, request_id, members[0], members[1], middle)
    moment = record.get("time")
    assert TIME.fullmatch(moment)
    plain = build_request_record(hasher=hasher, request_id=request_id, sql_received=sql_received,
                                 sql_received_hashed=True, sql_sent=sql_sent, sql_sent_hashed=True, params=params,
                                 individuals=individuals, time=moment, **STATIC)
    assert record.as_dict() == {k: v for k, v in plain.items() if k != "instance"}
    assert record["request_id"] == request_id and record.get("type") == "request"
    fast, slow = ChainState(b"c" * 32, "g\"w"), ChainState(b"c" * 32, "g\"w")
    for _ in range(2):  # sealed again (a batch retried after an outage): the same chain
        line = fast.seal_bytes(record)
        assert line.decode("utf-8") == slow.seal(plain)[1]
        assert (fast.seq, fast.prev) == (slow.seq, slow.prev)
    assert record.as_dict() == {**plain, "instance": "g\"w", "seq": 2, "prev": record.as_dict()["prev"]}


@given(st.integers(min_value=0, max_value=2**34))
def test_the_time_of_a_second_is_strftimes(second):
    import time

    from gateway.audit.splice import _tick

    assert _tick(second)[1] == time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))


def test_request_members_with_hashing_off_keep_the_values() -> None:
    from gateway.audit.splice import request_members

    hasher = LiteralHasher(b"k" * 32, enabled=False)
    assert request_members(("a\"b", 1, None, b"\x01"), ("person:7",), None, hasher) == \
        (canonical_dumps(["a\"b", 1, None, "\\x01"]), '["person:7"]')
    with pytest.raises(ValueError):  # NaN is not JSON: the record must not serialize
        request_members((float("nan"),), (), None, hasher)
