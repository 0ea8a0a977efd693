"""The request record built from the policy's own frozen values (Access, Decision, PurposeClaim)."""

from __future__ import annotations

import json

import pytest

from gateway.audit.literals import LiteralHasher
from gateway.audit.record import build_outcome_record, build_request_record, to_dict
from gateway.audit.report import barred_reason, released_columns
from gateway.policy.types import Access, ColumnRef, Decision, PurposeClaim

STATUS = ColumnRef("dmv", "lawful_presence", "immigration_status")
NAME = ColumnRef("dmv", "persons", "last_name")


def test_record_from_policy_values_is_json_and_complete() -> None:
    decision = Decision("redact", "status not released for service_delivery", "purpose.service_delivery",
                        redacted=("immigration_status",), masked=frozenset({STATUS}))  # fmt: skip
    accesses = [
        Access(STATUS, frozenset({"immigration_status"}), "output", "immigration_status"),
        Access(NAME, frozenset({"pii"}), "output", "last_name"),
        Access(NAME, frozenset({"pii"}), "where"),
    ]
    record = build_request_record(
        hasher=LiteralHasher(b"k" * 32), request_id="r1", requester="dmv_clerk", agency="Colorado DMV",
        front_door="http", client_addr="127.0.0.1", tls=False, claim=PurposeClaim("service_delivery"),
        statement_kind="select", sql_received="select * from x where last_name = 'Doe'", sql_sent="select 1",
        params=["Doe"], accesses=accesses, decision=decision.action, reason=decision.reason, rule=decision.rule,
        redacted=decision.redacted, masked=decision.masked, statutory_request=False,
        statutory_exclusion="internal agency use", policy_digest="sha256:1", instance="gw1",
    )  # fmt: skip
    text = json.dumps(record)
    assert "Doe" not in text
    assert record["accesses"] == [
        {"column": "dmv.lawful_presence.immigration_status", "tags": ["immigration_status"], "usage": ["output"]},
        {"column": "dmv.persons.last_name", "tags": ["pii"], "usage": ["output", "where"]},
    ]
    assert record["masked"] == ["dmv.lawful_presence.immigration_status"]
    assert record["justification"] == {"case_number": None, "legal_citation": None, "order_reference": None,
                                       "authorization_id": None}  # fmt: skip
    assert record["time"].endswith("Z") and len(record["time"]) == 27
    for member in ("schema", "type", "instance", "request_id", "requester", "agency", "front_door", "client_addr",
                   "tls", "purpose", "statement_kind", "sql_received", "sql_sent", "params", "decision", "reason",
                   "rule", "redacted", "statutory_request", "statutory_exclusion", "policy_digest",
                   "gateway_version"):  # fmt: skip
        assert member in record
    assert released_columns(record, "immigration") == () and barred_reason(record) is None


def test_outcome_and_validation() -> None:
    out = build_outcome_record(request_id="r1", rows_returned=3, persons_returned=2, duration_ms=1.23456)
    assert out["type"] == "outcome" and out["duration_ms"] == 1.235
    with pytest.raises(ValueError, match="nonsense"):
        to_dict({"type": "nonsense"})
