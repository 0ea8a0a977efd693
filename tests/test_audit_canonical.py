"""Record templates give exactly the canonical JSON the chain signs, for any dynamic values."""

from __future__ import annotations

from hypothesis import given, strategies as st

from gateway.audit.canonical import PreparedRecord, RecordTemplate, canonical_dumps
from gateway.audit.chain import ChainState, check_hash
from gateway.audit.literals import LiteralHasher
from gateway.audit.record import (
    REQUEST_DYNAMIC, build_outcome_record, build_request_record, prepared_outcome, prepared_request,
    request_template,
)
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
        outcome = prepared_outcome(request_id=f"r{i}", rows_returned=i, persons_returned=None, duration_ms=1.23456)
        plain = build_outcome_record(request_id=f"r{i}", rows_returned=i, persons_returned=None, duration_ms=1.23456,
                                     time=outcome.values["time"])
        assert fast.seal(outcome)[1] == slow.seal(plain)[1]
    assert set(REQUEST_DYNAMIC) >= {"seq", "prev", "instance"}
