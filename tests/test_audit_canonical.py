"""Record templates give exactly the canonical JSON the chain signs, for any dynamic values."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from gateway.audit.canonical import PreparedRecord, RecordTemplate, canonical_dumps
from gateway.audit.chain import ChainState, check_hash
from gateway.audit.literals import LiteralHasher
from gateway.audit.record import (
    REQUEST_DYNAMIC, build_outcome_record, build_request_record, expand_outcomes, outcome_time, outcomes_record,
    prepared_request, request_template,
)
from gateway.audit.splice import outcome_entry
from gateway.policy.types import PurposeClaim

_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False, allow_infinity=False),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                     max_leaves=8)

STATIC = dict(requester="dmv_clerk", agency="Colorado DMV", front_door="wire", client_addr="127.0.0.1:1",
              tls=False, claim=PurposeClaim(purpose="service_delivery"), statement_kind="select",
              accesses=[{"column": "dmv.persons.first_name", "tags": ["pii"], "usage": ["output"]}],
              decision="allow", reason="ok", rule="r", redacted=["x\u00e9"], masked=[], statutory_request=False,
              statutory_exclusion="no exception purpose stated", policy_digest="abc")


@given(st.dictionaries(st.text(max_size=8), _json, max_size=6), st.lists(st.text(max_size=8), max_size=4, unique=True),
       st.data())
def test_template_renders_canonical_json(static, dynamic_names, data):
    dynamic = [n for n in dynamic_names if n not in static]
    template = RecordTemplate(static, dynamic)
    record = PreparedRecord(template, {n: data.draw(_json) for n in dynamic})
    assert record.render() == canonical_dumps(record.as_dict())


@given(st.text(), st.one_of(st.none(), st.text()), st.lists(st.one_of(st.none(), st.text(), st.binary()), max_size=3))
def test_prepared_request_is_the_dict_record(request_id, sql, params):
    hasher = LiteralHasher(b"k" * 32)
    plain = build_request_record(hasher=hasher, request_id=request_id, sql_received=sql, sql_sent=sql,
                                 params=params, time="2026-07-01T00:00:00.000000Z", **STATIC)
    prepared = prepared_request(request_template(**STATIC), request_id=request_id, sql_received=hasher.hash_sql(sql),
                                sql_sent=hasher.hash_sql(sql), params=hasher.hash_params(params),
                                time="2026-07-01T00:00:00.000000Z")
    fast, slow = ChainState(b"c" * 32, "gw"), ChainState(b"c" * 32, "gw")
    sealed, line = fast.seal(prepared)
    assert line == slow.seal(plain)[1]
    assert sealed == {**plain, "instance": "gw", "seq": 1, "prev": sealed["prev"], "hash": sealed["hash"]}


def test_prepared_records_chain_and_verify():
    key = b"k" * 32
    fast, slow = ChainState(key, "gw"), ChainState(key, "gw")
    template = request_template(**STATIC)
    for i in range(3):
        prepared = prepared_request(template, request_id=f"r{i}", sql_received="select 1", sql_sent="select 1",
                                    params=[], time="2026-07-01T00:00:00.000000Z")
        sealed, line = fast.seal(prepared)
        slow_sealed, slow_line = slow.seal(prepared.as_dict())
        assert line == slow_line and check_hash(fast.key, sealed)
        outcomes = outcomes_record([outcome_entry(f"r{i}", "ok", i, None, 1.23456, None)])
        sealed, line = fast.seal(outcomes)
        assert line == slow.seal(outcomes.as_dict())[1] and check_hash(fast.key, sealed)
    assert set(REQUEST_DYNAMIC) >= {"seq", "prev", "instance"}


_scalar_or_list = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(), st.floats(),
    st.lists(st.text(max_size=6), max_size=4), st.tuples(st.text(max_size=4), st.text(max_size=4)),
    st.lists(st.one_of(st.integers(), st.floats(allow_nan=False), st.none()), max_size=3), _json,
)


@given(_scalar_or_list)
def test_dump_value_is_canonical_json_byte_for_byte(value):
    """The hot path's serializer gives exactly json.dumps's text for every value a record carries, or
    refuses exactly what json.dumps refuses (NaN and infinities, allow_nan=False)."""
    from gateway.audit.canonical import dump_value

    try:
        expected = canonical_dumps(value)
    except ValueError:
        with pytest.raises(ValueError):
            dump_value(value)
        return
    assert dump_value(value) == expected


@given(st.binary(max_size=200), st.binary(max_size=3000))
def test_signer_is_hmac_sha256(key, data):
    import hmac

    from gateway.audit.canonical import Signer

    assert Signer(key).hexdigest(data) == hmac.digest(key, data, "sha256").hex()


_outcome = st.tuples(st.text(max_size=6), st.sampled_from(["ok", "error", "cancelled", "refused"]),
                     st.integers(0, 10**6), st.one_of(st.none(), st.integers(min_value=0)),
                     st.one_of(st.floats(-1e9, 1e9), st.integers(0, 10**6)),
                     st.one_of(st.none(), st.text(max_size=5)), st.one_of(st.none(), st.integers(0, 10**6)))


@given(st.lists(_outcome, min_size=1, max_size=12))
def test_an_outcomes_record_seals_like_its_dict_and_reads_back_as_the_built_outcomes(outcomes):
    """The folded record's line is the canonical JSON of the dict record (what verify re-serializes),
    and read back from the line each entry is the per-request ``outcome`` record the builder makes
    (with the chain position of the record that holds it)."""
    import json

    entries = [outcome_entry(*o) for o in outcomes]
    record = outcomes_record(entries)
    fast, slow = ChainState(b"c" * 32, "gw"), ChainState(b"c" * 32, "gw")
    line = fast.seal_bytes(record)
    assert line.decode("utf-8") == slow.seal(record.as_dict())[1]
    assert (fast.seq, fast.prev) == (slow.seq, slow.prev)
    read = expand_outcomes(json.loads(line))
    assert len(read) == len(outcomes)
    for (rid, status, rows, persons, duration, sqlstate, affected), entry, got in zip(outcomes, entries, read):
        plain = build_outcome_record(request_id=rid, rows_returned=rows, persons_returned=persons,
                                     duration_ms=entry[4] / 1000 if entry[4] is not None else None,
                                     backend_sqlstate=sqlstate, status=status, time=outcome_time(entry[6]), instance="gw")
        assert got == {**plain, "seq": 1, **({} if affected is None else {"rows_affected": affected})}


@given(st.one_of(_json, st.dictionaries(st.text(max_size=4), st.floats(), max_size=3), st.lists(st.floats(), max_size=3),
                 st.tuples(st.integers(), st.none(), st.text(max_size=3))))
def test_canonical_dumps_is_json_dumps_with_the_canonical_options(value):
    """The cached C encoder gives json.dumps's text, and refuses what it refuses, the same way."""
    import json

    try:
        expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        with pytest.raises(ValueError):
            canonical_dumps(value)
        return
    assert canonical_dumps(value) == expected


def test_canonical_dumps_refuses_what_json_cannot_hold():
    with pytest.raises(TypeError, match="not JSON serializable"):
        canonical_dumps({"a": object()})
    with pytest.raises(TypeError):
        canonical_dumps({1: "x", "b": "y"})  # keys of two types cannot be sorted, as in json.dumps
