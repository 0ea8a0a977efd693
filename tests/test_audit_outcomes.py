"""A batch's outcomes are one ``outcomes`` record: sealed after the requests they answer, durable with
the batch, none lost on close, and read by search, the report and the compliance figures exactly as
the per-request ``outcome`` records of older logs (a log may hold both kinds). In-process."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gateway.audit.file_sink import AuditLog
from gateway.audit.literals import LiteralHasher
from gateway.audit.record import build_outcome_record, per_request
from gateway.audit.report_compliance import _writes
from gateway.audit.search import SearchQuery, join_outcomes, search, table_row
from gateway.audit.splice import outcome_entry
from gateway.audit.verify import iter_records, verify_files
from tests.audit_samples import outcomes_dict

KEY = bytes(range(32))
T = "2026-08-01T10:00:0{}.000000Z"
US = 1785578400_000000  # 2026-08-01T10:00:00Z in microseconds


def request(rid: str, *, write: bool = False, second: int = 0) -> dict[str, Any]:
    return {"schema": 1, "type": "request", "time": T.format(second), "instance": "gw", "request_id": rid,
            "requester": "clerk", "agency": "DMV", "decision": "allow", "statement_kind": "write" if write else "select",
            "sql_received": "SELECT 1"}


def test_a_log_across_an_upgrade_reads_both_kinds_of_outcome() -> None:
    """Old per-request ``outcome`` records and a new ``outcomes`` record in one log: every request is
    joined with its own outcome, the staff writes' rows affected are counted from both."""
    records = [
        request("r1"), build_outcome_record(request_id="r1", rows_returned=4, persons_returned=4, duration_ms=1.0,
                                            instance="gw", time=T.format(1)),
        request("w1", write=True),
        {**build_outcome_record(request_id="w1", rows_returned=0, persons_returned=None, duration_ms=1.0,
                                instance="gw", time=T.format(2)), "rows_affected": 1},
        request("r2", second=3), request("w2", write=True, second=3), request("r3", second=3),  # refused later: none
        outcomes_dict([["r2", "ok", 1, 1, 500, None, US + 4_000_000],
                       ["w2", "ok", 0, None, 2000, None, US + 4_000_100, 2]], instance="gw"),
    ]
    joined = {r["request_id"]: r for r in join_outcomes(records) if r["type"] == "request"}
    assert joined["r1"]["outcome"]["rows_returned"] == 4
    assert joined["r2"]["outcome"] == build_outcome_record(request_id="r2", rows_returned=1, persons_returned=1,
                                                           duration_ms=0.5, instance="gw",
                                                           time="2026-08-01T10:00:04.000000Z")
    assert joined["w2"]["outcome"]["rows_affected"] == 2 and joined["w2"]["outcome"]["persons_returned"] is None
    assert "outcome" not in joined["r3"]
    assert [table_row(r)[6] for r in search(records, SearchQuery(), LiteralHasher(KEY))] == ["4", "0", "1", "0", ""]
    writes = _writes(records, datetime(2026, 7, 1, tzinfo=timezone.utc), datetime(2026, 10, 1, tzinfo=timezone.utc))
    assert [(w["requester"], w["writes"], w["rows_affected"]) for w in writes] == [("clerk", 2, 3)]


def test_one_batch_outcomes_are_one_record_after_their_requests_and_none_is_lost_on_close(tmp_path: Path) -> None:
    """Requests and outcomes queued in one loop turn go in one batch: one ``outcomes`` record, where the
    last outcome stood (after the requests it answers); outcomes queued just before close are written."""

    async def go() -> int:
        log = AuditLog(tmp_path / "requests.jsonl", instance="gw", key=KEY)
        await log.start()
        await log.append(request("r0"))
        first = log.batches
        futures = [log.submit(request(f"r{i}")) for i in range(1, 6)]
        for i in range(0, 5):  # r0's outcome and four more, queued before the batch is taken
            log.append_outcome(outcome_entry(f"r{i}", "ok", i, i, 0.25, None))
        futures.append(log.submit(request("r6")))
        await asyncio.gather(*futures)
        log.append_outcome(outcome_entry("r5", "error", 0, None, 1.0, "57014"))
        log.append_outcome(outcome_entry("r6", "ok", 1, None, 1.0, None, 1))
        await log.close()  # right away: the close checkpoint comes after them
        return log.batches - first

    batches = asyncio.run(go())
    raw = list(iter_records([tmp_path]))
    folded = [r for r in raw if r["type"] == "outcomes"]
    assert len(folded) <= batches  # at most one a batch
    kinds = [r["type"] if r["type"] != "checkpoint" else r["reason"] for r in raw]
    if batches == 2:  # the usual case: r1..r6 and r0..r4's outcomes in one batch, the last two and close
        assert kinds == ["start", "request", "request", "request", "request", "request", "request", "outcomes",
                         "request", "outcomes", "close"]
        assert [e[0] for e in raw[7]["outcomes"]] == ["r0", "r1", "r2", "r3", "r4"]
        assert len((tmp_path / "requests.jsonl").read_bytes().splitlines()[7]) < 5 * 120  # five outcomes, one line
    assert folded[-1]["outcomes"][-2:] == [["r5", "error", 0, None, 1000, "57014", folded[-1]["outcomes"][-2][6]],
                                           ["r6", "ok", 1, None, 1000, None, folded[-1]["outcomes"][-1][6], 1]]
    seen: set[str] = set()
    for record in per_request(raw):  # every outcome after its own request in the chain
        if record["type"] == "request":
            seen.add(record["request_id"])
        elif record["type"] == "outcome":
            assert record["request_id"] in seen
    assert sum(r["type"] == "outcome" for r in per_request(raw)) == 7
    assert verify_files([tmp_path], KEY).ok


def test_an_outcomes_record_that_names_its_fields_is_read_by_them() -> None:
    record = {"type": "outcomes", "schema": 1, "instance": "gw", "time": T.format(5),
              "fields": ["status", "request_id", "duration_us", "rows_returned", "extra"],
              "outcomes": [["ok", "r1", 1500, 2, "x"], ["error", "r2", None, 0, "y"]]}
    first, second = per_request([record])
    assert (first["request_id"], first["status"], first["duration_ms"], first["rows_returned"]) == ("r1", "ok", 1.5, 2)
    assert first["time"] == T.format(5) and first["extra"] == "x"  # no time_us: the record's time
    assert second["duration_ms"] is None and second["type"] == "outcome"


def test_a_gateway_log_holding_all_three_outcome_forms_reads_and_verifies(dmv_dsn: str, tmp_path: Path) -> None:
    """A real gateway's log (its requests' outcomes in ``outcomes`` records without ``fields``), into
    which the gateway's own chain writer seals an older gateway's forms: a per-request ``outcome``
    record, and an ``outcomes`` record that lists its ``fields``. per_request, search, the HTTP audit
    views and report, the compliance write figures and ``gateway audit verify`` read all three."""
    from http_support import Client, make_gateway

    from gateway.audit.keyfile import read_key
    from gateway.audit.record import OUTCOME_FIELDS
    from gateway.frontdoor.http import build_app

    path = tmp_path / "requests.jsonl"
    with asyncio.Runner() as runner:
        gw = make_gateway(dmv_dsn, path)
        runner.run(gw.start())
        try:
            client = Client(runner, build_app(gw, rate_per_second=10_000, rate_burst=10_000))
            r = client.query("dmv_clerk", {"sql": "SELECT first_name FROM dmv.persons WHERE person_id = $1",
                                           "params": [77], "purpose": "service_delivery"})
            assert r.status_code == 200, r.text
            real_id = r.json()["request_id"]
            for _ in range(400):  # the outcome is queued without waiting: it goes with the next batch or the linger
                raw = list(iter_records([tmp_path]))
                if any(rec["type"] == "outcomes" for rec in raw):
                    break
                runner.run(asyncio.sleep(0.005))
            written = [rec for rec in raw if rec["type"] == "outcomes"]
            assert written and all("fields" not in rec for rec in written)  # this gateway's form
            real = next(rec for rec in raw if rec.get("request_id") == real_id)
            base = {k: v for k, v in real.items() if k not in ("seq", "prev", "hash")}
            now_us = int(datetime.now(timezone.utc).timestamp() * 1_000_000)
            older = [  # sealed into the same chain by the gateway's own writer
                {**base, "request_id": "legacy-w1", "statement_kind": "write"},
                {**build_outcome_record(request_id="legacy-w1", rows_returned=0, persons_returned=None, duration_ms=2.0,
                                        instance=base["instance"], time=base["time"]), "rows_affected": 3},
                {**base, "request_id": "fielded-w2", "statement_kind": "write"},
                {**outcomes_dict([["fielded-w2", "ok", 0, None, 1500, None, now_us, 2]], instance=base["instance"]),
                 "fields": list(OUTCOME_FIELDS)},
            ]
            for record in older:
                runner.run(gw.audit.append(record))
            views = {rid: client.get(f"/v1/audit/requests/{rid}", "auditor").json()["record"]
                     for rid in (real_id, "legacy-w1", "fielded-w2")}
            quarter = f"{datetime.now(timezone.utc).year}-Q{(datetime.now(timezone.utc).month - 1) // 3 + 1}"
            report = client.get(f"/v1/reports/{quarter}?format=json", "auditor").json()
        finally:
            runner.run(gw.stop())

    expected = {real_id: (1, None), "legacy-w1": (0, 3), "fielded-w2": (0, 2)}
    got = {rid: (view["outcome"]["rows_returned"], view["outcome"].get("rows_affected")) for rid, view in views.items()}
    assert got == expected
    assert views["fielded-w2"]["outcome"]["duration_ms"] == 1.5
    assert report["totals"]["requests"] == 3 and report["totals"]["allow"] == 3
    records = list(iter_records([tmp_path]))
    outcomes = {o["request_id"]: o for o in per_request(records) if o["type"] == "outcome"}
    assert {rid: (o["rows_returned"], o.get("rows_affected")) for rid, o in outcomes.items()} == expected
    found = search(records, SearchQuery(), LiteralHasher(read_key(tmp_path / "audit.key")))
    assert {r["request_id"]: r["outcome"]["rows_returned"] for r in found if r["type"] == "request"} == {
        rid: rows for rid, (rows, _) in expected.items()}
    quarter_start = datetime(datetime.now(timezone.utc).year, 1, 1, tzinfo=timezone.utc)
    writes = _writes(records, quarter_start, datetime(quarter_start.year + 1, 1, 1, tzinfo=timezone.utc))
    assert [(w["requester"], w["writes"], w["rows_affected"]) for w in writes] == [("dmv_clerk", 2, 5)]
    assert verify_files([tmp_path], read_key(tmp_path / "audit.key")).ok
    cli = subprocess.run([sys.executable, "-m", "gateway", "audit", "verify", str(tmp_path)], capture_output=True,
                         text=True, timeout=120, check=False)
    assert cli.returncode == 0, cli.stdout + cli.stderr
