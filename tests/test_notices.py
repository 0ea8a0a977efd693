"""Subject notices (SPEC 10): due dates, the queue and its commands, resolving named individuals to
persons on a real database, and a notice queued for an ice_ero look-up through a real gateway."""

from __future__ import annotations

import asyncio
import csv
import http.server
import io
import json
import re
import subprocess
import sys
import threading
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import pytest

from gateway.notices.due import NoticeRules, due_date
from gateway.notices.queue import NoticeQueue
from gateway.notices.service import SubjectNotices
from gateway.pipeline import Plan
from tests.compliance_support import write_files
from tests.frontdoor_pg_support import ROOT, start_gateway

KEYS = {"person": ["dmv.persons.person_id", "dmv.licenses.person_id", "dmv.vehicles.owner_person_id"],
        "license_number": ["dmv.licenses.license_number"], "plate": ["dmv.vehicles.plate"]}
COMBINATIONS = [["dmv.persons.first_name", "dmv.persons.last_name", "dmv.persons.date_of_birth"]]


@pytest.mark.parametrize(("asked", "rules", "due"), [
    (date(2026, 12, 4), NoticeRules(), date(2026, 12, 7)),  # Friday + 3 calendar days
    (date(2026, 12, 4), NoticeRules(business_days=True), date(2026, 12, 9)),  # Fri -> Mon, Tue, Wed
    (date(2026, 12, 23), NoticeRules(business_days=True, holidays=(date(2026, 12, 24), date(2026, 12, 25))),
     date(2026, 12, 30)),  # Wed -> (Thu, Fri holidays, weekend) Mon 28, Tue 29, Wed 30
    (date(2026, 12, 31), NoticeRules(due_days=5, business_days=True, holidays=(date(2027, 1, 1),)), date(2027, 1, 8)),
])
def test_due_dates(asked: date, rules: NoticeRules, due: date) -> None:
    assert due_date(asked, rules) == due


def _queue_some(path: Path) -> SubjectNotices:
    service = SubjectNotices(NoticeQueue(path), NoticeRules())
    old = datetime.now(timezone.utc) - timedelta(days=10)
    service.enqueue(request_id="r-old", requester="ice_ero", agency="ICE", reason="immigration agency",
                    asked="civil_immigration_enforcement: dmv.persons.first_name", persons=["person:1", "person:2", "person:1"],
                    when=old)
    service.enqueue(request_id="r-new", requester="ag_counsel", agency="AG", reason="court order",
                    asked="court_order: dmv.lawful_presence.immigration_status", persons=["person:3"],
                    when=datetime.now(timezone.utc))
    return service


def _cli(queue: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", "notices", "--queue", str(queue), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)


def test_queue_and_commands(tmp_path: Path) -> None:
    queue = tmp_path / "subject-notices.ndjson"
    _queue_some(queue)
    listed = json.loads(_cli(queue, "list", "--json").stdout)
    assert [n["person"] for n in listed] == ["person:1", "person:2", "person:3"]  # one per person named
    assert "first_name" in listed[0]["asked"] and listed[0]["agency"] == "ICE"
    overdue = json.loads(_cli(queue, "list", "--json", "--overdue").stdout)
    assert [n["id"] for n in overdue] == ["N-r-old-1", "N-r-old-2"]
    assert "OVERDUE" in _cli(queue, "list").stdout

    assert _cli(queue, "mark-sent", "N-r-old-1").returncode == 0
    assert _cli(queue, "mark-sent", "N-r-old-1").returncode == 2  # already sent
    assert _cli(queue, "defer", "N-r-old-2", "--reason", "sealed by the court").returncode == 0
    assert _cli(queue, "mark-sent", "NOPE").returncode == 2
    states = {n["id"]: n for n in json.loads(_cli(queue, "list", "--json").stdout)}
    assert states["N-r-old-1"]["status"] == "sent" and states["N-r-old-2"]["deferred_reason"] == "sealed by the court"
    assert json.loads(_cli(queue, "list", "--json", "--overdue").stdout) == []

    exported = _cli(queue, "export", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [r["id"] for r in rows] == ["N-r-new-1"] and rows[0]["person"] == "person:3"


def test_push_to_a_webhook(tmp_path: Path) -> None:
    queue = tmp_path / "subject-notices.ndjson"
    _queue_some(queue)
    received: list[object] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the handler API
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/notices"
        pushed = _cli(queue, "push", "--webhook", url)
        assert pushed.returncode == 0, pushed.stderr
        assert [n["id"] for n in received[0]] == ["N-r-old-1", "N-r-old-2", "N-r-new-1"]  # type: ignore[index]
        again = _cli(queue, "push", "--webhook", url)
        assert again.returncode == 0 and "no notice to push" in again.stdout and len(received) == 1
    finally:
        server.shutdown()
    SubjectNotices(NoticeQueue(queue), NoticeRules()).enqueue(
        request_id="r-3", requester="ice_ero", agency="ICE", reason="x", asked="y", persons=["person:9"],
        when=datetime.now(timezone.utc))
    down = _cli(queue, "push", "--webhook", "http://127.0.0.1:1/x")
    assert down.returncode == 1 and "not reachable" in down.stderr
    assert NoticeQueue(queue).get("N-r-3-1").exported_at is None  # still to push


def test_named_individuals_resolve_to_persons(dmv_dsn: str, tmp_path: Path) -> None:
    async def go() -> None:
        conn = await asyncpg.connect(dmv_dsn)
        try:
            lic = await conn.fetchrow("SELECT license_number, person_id FROM dmv.licenses ORDER BY license_id LIMIT 1")
            veh = await conn.fetchrow("SELECT plate, owner_person_id FROM dmv.vehicles ORDER BY vehicle_id LIMIT 1")
            per = await conn.fetchrow("SELECT first_name, last_name, date_of_birth::text AS dob, person_id FROM dmv.persons "
                                      "ORDER BY person_id LIMIT 1")
        finally:
            await conn.close()
        pool = await asyncpg.create_pool(dmv_dsn, min_size=1, max_size=2)
        try:
            service = SubjectNotices(NoticeQueue(tmp_path / "q.ndjson"), NoticeRules(), keys=KEYS,
                                     combinations=COMBINATIONS, pool=pool)
            persons = await service.resolve([
                "person:77", f"license_number:{lic['license_number']}", f"plate:{veh['plate']}",
                f"combination:{per['first_name']}|{per['last_name']}|{per['dob']}", "license_number:NO-SUCH"])
        finally:
            await pool.close()
        assert persons == ["person:77", f"person:{lic['person_id']}", f"person:{veh['owner_person_id']}",
                           f"person:{per['person_id']}", "license_number:NO-SUCH"]

    asyncio.run(go())


def _business_days_after(day: date, n: int, holidays: set[date]) -> date:
    while n:
        day += timedelta(days=1)
        if day.weekday() < 5 and day not in holidays:
            n -= 1
    return day


@pytest.mark.skipif(not hasattr(Plan, "named"), reason="needs the anchor analysis (the individuals a request names)")
def test_ice_lookup_queues_a_notice_with_its_due_date(dmv_dsn: str, tmp_path: Path) -> None:
    today = datetime.now(timezone.utc).date()
    holidays = {today + timedelta(days=1), today + timedelta(days=2)}
    rules = ("notices:\n  due_days: 3\n  business_days: true\n  holidays: ["
             + ", ".join(d.isoformat() for d in sorted(holidays)) + "]\n")
    def business_days(text: str) -> str:  # the shipped notices section, made business days with our holidays
        replaced, count = re.subn(r"(?ms)^notices:\n.*?\]\n", rules, text, count=1)
        assert count == 1
        return replaced

    policy, requesters = write_files(tmp_path, policy_edit=business_days)
    for gw in start_gateway(dmv_dsn, tmp_path, GATEWAY_POLICY=str(policy), GATEWAY_REQUESTERS=str(requesters)):
        done = gw.psql("ice_ero", "SELECT license_class FROM dmv.licenses WHERE license_number = 'NOPE-1'")
        assert "gateway" in done.stderr or done.returncode == 0
        person = gw.psql("ice_ero", "SELECT first_name FROM dmv.persons WHERE person_id = 12")
        assert person.returncode != 0  # refused, and the person is still owed a notice
    notices = NoticeQueue(tmp_path / "subject-notices.ndjson").notices()
    mine = [n for n in notices if n.person == "person:12"]
    assert mine and mine[0].requester == "ice_ero" and "immigration agency" in mine[0].reason
    assert mine[0].due == _business_days_after(today, 3, holidays).isoformat()
    assert "dmv.persons.first_name" in mine[0].asked
