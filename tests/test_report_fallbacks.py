"""The quarterly report when the front doors leave ``persons_returned`` null (they do not count
distinct persons yet), and the weekly chart's time line."""

from __future__ import annotations

from typing import Any

from gateway.audit.literals import LiteralHasher
from gateway.audit.record import build_outcome_record, build_request_record
from gateway.audit.report import Quarter, Verification, build_report
from gateway.audit.report_render import all_weeks, to_html

HASHER = LiteralHasher(bytes(range(32)))
Q4 = Quarter.parse("2026-Q4")
OK = Verification(True, "chain intact")
NAME = {"column": "dmv.persons.last_name", "tags": ["pii"], "usage": ["output"]}
WHERE_ONLY = {"column": "dmv.persons.county", "tags": ["pii"], "usage": ["where"]}


def pair(rid: str, rows: int, accesses: list[dict[str, Any]], decision: str = "allow",
         masked: tuple[str, ...] = (), persons: int | None = None) -> list[dict[str, Any]]:
    return [
        build_request_record(hasher=HASHER, request_id=rid, requester="dmv_clerk", agency="Colorado DMV",
                             front_door="wire", claim={"purpose": "service_delivery"}, statement_kind="select",
                             sql_received="select 1", accesses=accesses, decision=decision, masked=masked,
                             time="2026-11-26T10:00:00.000000Z"),
        build_outcome_record(request_id=rid, rows_returned=rows, persons_returned=persons, duration_ms=1.0,
                             time="2026-11-26T10:00:00.100000Z"),
    ]


def test_bulk_falls_back_to_rows_that_released_personal_information() -> None:
    records = (pair("big", 250, [NAME]) + pair("small", 20, [NAME]) + pair("counts", 500, [WHERE_ONLY])
               + pair("masked", 300, [NAME], decision="redact", masked=("dmv.persons.last_name",))
               + pair("counted", 150, [NAME], persons=40))
    bulk = [u for u in build_report(records, Q4, OK).unusual if u.kind == "bulk"]
    assert [(u.count, "big" in u.detail, "persons not counted" in u.detail) for u in bulk] == [(250, True, True)]


def test_counted_persons_win_over_rows() -> None:
    bulk = [u for u in build_report(pair("r", 150, [NAME], persons=120), Q4, OK).unusual if u.kind == "bulk"]
    assert [(u.count, u.detail) for u in bulk] == [(120, "120 persons in request r")]


def test_weekly_chart_covers_the_whole_quarter() -> None:
    report = build_report(pair("a", 1, [NAME]), Q4, OK)
    weeks = all_weeks(report)
    assert weeks[0].key == "2026-09-28" and weeks[-1].key == "2026-12-28" and len(weeks) == 14
    assert sum(w.total for w in weeks) == 1 and [w.key for w in weeks if w.total] == ["2026-11-23"]
    assert to_html(report).count("<svg") == 4
