"""The request log end to end, through the real front doors of a real ``gateway serve`` process.

* one ``request`` record per request over a mixed batch on both front doors (psycopg on the wire,
  httpx on HTTP), each record's decision matching what the client saw, an ``outcome`` for every
  answered request, ``login_failed`` and ``purpose_change`` events, and ``gateway audit verify``;
* no record, no answer: the log file is a symlink to ``/dev/full`` (a real ENOSPC), so the wire gets
  SQLSTATE 58030 and HTTP a 503, the process keeps running, and after the repair requests are
  answered and logged again;
* a gateway killed with SIGKILL in the middle of a stream leaves a log that verifies and holds every
  request a client got an answer for;
* the PostgreSQL sink with two gateway processes (two instances) writing concurrently.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from frontdoor_pg_support import ROOT, start_gateway

from gateway.audit.keyfile import read_key
from gateway.audit.literals import LiteralHasher
from gateway.audit.record import per_request
from gateway.audit.verify import iter_records

FAST_HTTP = {"GATEWAY_HTTP_RATE_PER_SECOND": "100000", "GATEWAY_HTTP_RATE_BURST": "100000"}


@dataclass(frozen=True)
class Served:
    """A running ``gateway serve`` and where its two front doors listen."""

    process: subprocess.Popen[bytes]
    pg_port: int
    http_port: int
    audit_dir: Path

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def connect(self, user: str = "dmv_clerk", password: str | None = None, purpose: str | None = None,
                **claims: str) -> psycopg.Connection[Any]:
        pairs = ([("purpose", purpose)] if purpose else []) + list(claims.items())
        options = " ".join(f"-c gateway.{k}={v}" for k, v in pairs)
        return psycopg.connect(host="127.0.0.1", port=self.pg_port, user=user, dbname="dmv",
                               password=password or f"{user}-demo-password", options=options,
                               sslmode="disable", autocommit=True, connect_timeout=10)

    def query(self, client: httpx.Client, user: str, body: dict[str, Any], token: str | None = None) -> httpx.Response:
        return client.post(f"{self.http_url}/v1/query", json=body,
                           headers={"Authorization": f"Bearer {token or user + '-demo-token'}"})


@contextmanager
def serve(dsn: str, audit_dir: Path, **extra_env: str) -> Iterator[Served]:
    """``gateway serve`` as a subprocess (tests/frontdoor_pg_support.py), its log beside the audit dir."""
    audit_dir.mkdir(parents=True, exist_ok=True)
    gateways = start_gateway(dsn, audit_dir, log_path=audit_dir.parent / f"{audit_dir.name}-gateway.log",
                             **{**FAST_HTTP, **extra_env})
    gw = next(gateways)
    try:
        yield Served(gw.process, gw.port, gw.http_port, audit_dir)
    finally:
        gateways.close()


def audit_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", "audit", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)


def assert_verifies(*args: str) -> str:
    result = audit_cli("verify", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def records_of(audit_dir: Path) -> list[dict[str, Any]]:
    return list(iter_records([audit_dir]))


def by_type(records: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The records of one type, a batch's ``outcomes`` record read as its per-request ``outcome`` records."""
    return [r for r in per_request(records) if r.get("type") == kind]


# -- 1. a mixed batch on both front doors ------------------------------------------------------


@dataclass
class WireSent:
    """One statement sent over the wire and what the client saw."""

    sql: str  # as the gateway receives it ($n placeholders)
    params: tuple[Any, ...] | None
    seen: str  # "rows", "redacted", "error"
    sqlstate: str | None = None
    rows: int = 0
    request_id: str | None = None  # only when the client was told it (notices, errors)
    expected_decision: str = ""


def _wire_batch(gw: Served) -> tuple[list[WireSent], list[str]]:
    """Send the mixed wire batch; return what was sent (requests only) and the SETs sent."""
    sent: list[WireSent] = []
    sets: list[str] = []

    def run(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...] | None, decision: str) -> WireSent:
        notices: list[str] = []
        conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
        gateway_sql = sql
        for i in range(sql.count("%s")):
            gateway_sql = gateway_sql.replace("%s", f"${i + 1}", 1)
        item = WireSent(gateway_sql, params, "rows", expected_decision=decision)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                rows = len(cur.fetchall()) if cur.description else 0
                while cur.nextset():
                    rows += len(cur.fetchall()) if cur.description else 0
            item.rows = rows
            redactions = [n for n in notices if "redacted columns" in n]
            if redactions:
                item.seen = "redacted"
                item.request_id = redactions[0].rsplit("(request ", 1)[1].rstrip(")")
        except psycopg.Error as exc:
            item.seen, item.sqlstate = "error", exc.sqlstate
            message = str(exc.diag.message_primary or "")
            if "(request " in message:
                item.request_id = message.rsplit("(request ", 1)[1].split(")")[0]
        sent.append(item)
        return item

    with gw.connect("dmv_clerk", purpose="service_delivery") as conn:
        run(conn, "SELECT person_id, first_name, last_name FROM dmv.persons WHERE person_id = %s", (42,), "allow")
        run(conn, "SELECT count(*) FROM dmv.vehicles", None, "allow")
        run(conn, "SELECT person_id, country_of_citizenship FROM dmv.persons WHERE person_id = 7", None, "redact")
        run(conn, "SELECT person_id, place_of_birth FROM dmv.persons WHERE person_id = %s", (8,), "redact")
        run(conn, "SELECT person_id FROM dmv.persons WHERE country_of_citizenship = 'MX'", None, "deny")
        run(conn, "SELECT person_id FROM dmv.persons ORDER BY place_of_birth LIMIT %s", (3,), "deny")
        run(conn, "SELEC person_id FROM dmv.persons", None, "deny")
        run(conn, "SELECT 1 AS one; SELECT license_number FROM dmv.licenses WHERE person_id = 9", None, "allow")
        conn.execute("SET gateway.purpose = 'court_order'")  # not one of dmv_clerk's purposes
        sets.append("court_order")
        run(conn, "SELECT first_name FROM dmv.persons WHERE person_id = 11", None, "deny")
        conn.execute("SET gateway.purpose = 'service_delivery'")
        sets.append("service_delivery")
        run(conn, "SELECT first_name FROM dmv.persons WHERE person_id = 11", None, "allow")
    with gw.connect("cbi_analyst", purpose="criminal_law_enforcement", case_number="CR-2026-0042") as conn:
        run(conn, "SELECT immigration_status FROM dmv.lawful_presence WHERE person_id = %s", (12,), "allow")
    with gw.connect("ice_ero", purpose="civil_immigration_enforcement") as conn:
        run(conn, "SELECT first_name FROM dmv.persons WHERE person_id = 13", None, "deny")
    return sent, sets


def _http_batch(gw: Served) -> tuple[list[tuple[dict[str, Any], httpx.Response]], int]:
    """Send the mixed HTTP batch; return (body, response) of each request and the bad-token count."""
    answered: list[tuple[dict[str, Any], httpx.Response]] = []
    bodies = [
        ("dmv_clerk", {"sql": "SELECT person_id, first_name FROM dmv.persons WHERE person_id = $1", "params": [42],
                       "purpose": "service_delivery"}),
        ("dmv_clerk", {"sql": "SELECT person_id, country_of_citizenship FROM dmv.persons WHERE person_id = 7",
                       "purpose": "service_delivery"}),
        ("dmv_clerk", {"sql": "SELECT person_id FROM dmv.persons WHERE country_of_citizenship = 'MX'"}),
        ("dmv_clerk", {"sql": "SELEC 1"}),
        ("dmv_clerk", {"sql": "SELECT first_name FROM dmv.persons WHERE person_id = 1", "purpose": "court_order",
                       "order_reference": "2026CV001234"}),
        ("dmv_clerk", {"sql": "SELECT 1; SELECT 2"}),
        ("ag_counsel", {"sql": "SELECT immigration_status FROM dmv.lawful_presence WHERE person_id = 3",
                        "purpose": "court_order", "order_reference": "2026CV001234"}),
        ("ice_ero", {"sql": "SELECT count(*) FROM dmv.vehicles", "purpose": "civil_immigration_enforcement"}),
    ]
    with httpx.Client(timeout=30) as client:
        for user, body in bodies:
            answered.append((body, gw.query(client, user, body)))
        bad = [gw.query(client, "dmv_clerk", {"sql": "SELECT 1"}, token="not-a-token") for _ in range(2)]
    assert all(r.status_code == 401 for r in bad)
    return answered, len(bad)


def _http_decision(response: httpx.Response) -> str:
    if response.status_code == 200:
        return "redact" if response.json()["redacted"] else "allow"
    return "deny"


def test_one_record_per_request_on_both_front_doors(dmv_dsn: str, tmp_path: Path) -> None:
    audit_dir = tmp_path / "log"
    with serve(dmv_dsn, audit_dir) as gw:
        wire_sent, sets = _wire_batch(gw)
        http_sent, bad_tokens = _http_batch(gw)
        with pytest.raises(psycopg.OperationalError):
            gw.connect("cbi_analyst", password="wrong-password")
        assert gw.process.poll() is None
    records = records_of(audit_dir)
    key = read_key(audit_dir / "audit.key")
    hasher = LiteralHasher(key)
    requests = by_type(records, "request")
    outcomes = {r["request_id"]: r for r in by_type(records, "outcome")}

    # Exactly one request record per request id, and per front door as many as were sent.
    ids = Counter(r["request_id"] for r in requests)
    assert all(n == 1 for n in ids.values()), ids.most_common(3)
    doors = Counter(r["front_door"] for r in requests)
    assert doors == {"wire": len(wire_sent), "http": len(http_sent)}, doors

    # The wire: one session at a time, so the records come in the order the statements were sent.
    wire_records = [r for r in requests if r["front_door"] == "wire"]
    for sent, rec in zip(wire_sent, wire_records):
        assert rec["sql_received"] == hasher.hash_sql(sent.sql), (sent.sql, rec["sql_received"])
        assert rec["decision"] == sent.expected_decision, (sent, rec["decision"], rec["reason"])
        if sent.request_id is not None:
            assert rec["request_id"] == sent.request_id
        if sent.params and rec["decision"] != "deny":  # a denial at Parse comes before the values; hashed (psycopg sends ints in binary: see test_binary_parameters_are_searchable)
            assert len(rec["params"]) == len(sent.params) and all(p.startswith("h:") for p in rec["params"])
        if rec["decision"] == "deny":
            assert sent.seen == "error" and rec["sqlstate"] == sent.sqlstate, (sent, rec)
            assert sent.request_id == rec["request_id"]  # a denial names its request
        else:
            assert sent.seen == ("redacted" if rec["decision"] == "redact" else "rows"), (sent, rec)
            assert rec["request_id"] in outcomes, f"no outcome for answered {rec['request_id']}"
            assert outcomes[rec["request_id"]]["rows_returned"] == sent.rows
    # What reached the log is hashed: no literal value of the batch is in clear.
    raw = "".join(p.read_text() for p in audit_dir.glob("*.jsonl"))
    assert "'MX'" not in raw and "Lima" not in raw

    # HTTP: every answer carries its request id; the record says what the client saw.
    http_records = {r["request_id"]: r for r in requests if r["front_door"] == "http"}
    for body, response in http_sent:
        rid = response.json().get("request_id") or response.json()["error"]["request_id"]
        rec = http_records[rid]
        assert rec["sql_received"] == hasher.hash_sql(body["sql"])
        assert rec["decision"] == _http_decision(response), (body, response.text, rec)
        if response.status_code == 200:
            assert outcomes[rid]["rows_returned"] == response.json()["row_count"]
            assert rec["redacted"] == response.json()["redacted"]
        else:
            assert rec["error_code"] == response.json()["error"]["code"], (rec, response.text)
    statuses = sorted(r.status_code for _, r in http_sent)
    assert statuses == [200, 200, 200, 200, 400, 400, 403, 403], statuses

    # Events: failed logins on both doors, and the two purpose changes.
    failed = by_type(records, "login_failed")
    assert Counter(r["front_door"] for r in failed) == {"wire": 1, "http": bad_tokens}
    assert [r["requester"] for r in failed if r["front_door"] == "wire"] == ["cbi_analyst"]
    changes = by_type(records, "purpose_change")
    assert [(c["previous_purpose"], c["purpose"]) for c in changes] == [
        ("service_delivery", sets[0]), (sets[0], sets[1])]
    # The chain is intact, and the process stopped cleanly (a close checkpoint ends it).
    assert records[-1]["type"] == "checkpoint" and records[-1]["reason"] == "close"
    assert_verifies(str(audit_dir))


# -- 2. no record, no answer --------------------------------------------------------------------


def test_unwritable_log_refuses_every_request_and_recovers(dmv_dsn: str, tmp_path: Path) -> None:
    audit_dir = tmp_path / "log"
    audit_dir.mkdir()
    active = audit_dir / "requests.jsonl"
    active.symlink_to("/dev/full")  # every write: ENOSPC
    with serve(dmv_dsn, audit_dir) as gw, httpx.Client(timeout=30) as client:
        # Simple then extended protocol, twice each: the first failure and the known outage. A new
        # session each time: the front door may end a session whose answer it had to withhold.
        for sql, params in (("SELECT first_name FROM dmv.persons WHERE person_id = 5", None),
                            ("SELECT first_name FROM dmv.persons WHERE person_id = %s", (5,))) * 2:
            with gw.connect("dmv_clerk", purpose="service_delivery") as conn, conn.cursor() as cur, \
                    pytest.raises(psycopg.Error) as info:
                cur.execute(sql, params)
                pytest.fail(f"answered without a record: {cur.fetchall()}")
            assert info.value.sqlstate == "58030", info.value
            assert "request log" in str(info.value)
        r = gw.query(client, "dmv_clerk", {"sql": "SELECT first_name FROM dmv.persons WHERE person_id = 5",
                                           "purpose": "service_delivery"})
        assert r.status_code == 503 and r.json()["error"]["code"] == "audit_unavailable", r.text
        assert "rows" not in r.json()
        ready = client.get(f"{gw.http_url}/readyz")
        assert ready.status_code == 503, ready.text
        assert gw.process.poll() is None  # still running

        active.unlink()  # repaired: the path is free again, the next write creates a real file
        with gw.connect("dmv_clerk", purpose="service_delivery") as conn:
            assert conn.execute("SELECT first_name FROM dmv.persons WHERE person_id = %s", (5,)).fetchall()
        r = gw.query(client, "dmv_clerk", {"sql": "SELECT first_name FROM dmv.persons WHERE person_id = 5",
                                           "purpose": "service_delivery"})
        assert r.status_code == 200, r.text
        answered_http = r.json()["request_id"]
        assert client.get(f"{gw.http_url}/readyz").status_code == 200
    records = records_of(audit_dir)
    requests = by_type(records, "request")
    assert len(requests) == 2 and answered_http in {r["request_id"] for r in requests}
    assert Counter(r["front_door"] for r in requests) == {"wire": 1, "http": 1}
    assert all(r["request_id"] in {o["request_id"] for o in by_type(records, "outcome")} for r in requests)
    resumed = [r for r in records if r.get("reason") == "resume"]
    assert resumed and "No space left on device" in resumed[0]["after_error"]
    assert_verifies(str(audit_dir))


# -- 3. SIGKILL in the middle of a stream --------------------------------------------------------


def _stream(gw: Served, stop: threading.Event, answered: list[str], user: str, body: dict[str, Any]) -> None:
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            try:
                r = gw.query(client, user, body)
            except httpx.HTTPError:
                return  # the gateway died
            if r.status_code in (200, 403):  # an answer, allowed or refused, that names its request
                payload = r.json()
                answered.append(payload.get("request_id") or payload["error"]["request_id"])


def _wire_stream(gw: Served, stop: threading.Event, count: list[int]) -> None:
    try:
        with gw.connect("dmv_clerk", purpose="service_delivery") as conn:
            while not stop.is_set():
                conn.execute("SELECT first_name FROM dmv.persons WHERE person_id = %s", (count[0] % 2000 + 1,))
                count[0] += 1
    except psycopg.Error:
        return


def test_sigkill_mid_stream_leaves_a_log_that_verifies(dmv_dsn: str, tmp_path: Path) -> None:
    audit_dir = tmp_path / "log"
    answered: list[str] = []
    wire_count = [0]
    stop = threading.Event()
    with serve(dmv_dsn, audit_dir) as gw:
        bodies = [("dmv_clerk", {"sql": "SELECT first_name FROM dmv.persons WHERE person_id = $1", "params": [3],
                                 "purpose": "service_delivery"}),
                  ("dmv_clerk", {"sql": "SELECT person_id FROM dmv.persons WHERE place_of_birth = 'Lima'"}),
                  ("cbi_analyst", {"sql": "SELECT immigration_status FROM dmv.lawful_presence WHERE person_id = 4",
                                   "purpose": "criminal_law_enforcement", "case_number": "CR-2026-0042"})]
        threads = [threading.Thread(target=_stream, args=(gw, stop, answered, user, body)) for user, body in bodies * 2]
        threads += [threading.Thread(target=_wire_stream, args=(gw, stop, wire_count)) for _ in range(2)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while len(answered) < 300 and time.monotonic() < deadline:
            time.sleep(0.05)
        gw.process.send_signal(signal.SIGKILL)
        gw.process.wait(10)
        stop.set()
        for t in threads:
            t.join(15)
    assert len(answered) >= 300 and wire_count[0] > 0, (len(answered), wire_count)
    output = assert_verifies(str(audit_dir))
    logged = {r["request_id"] for r in by_type(records_of(audit_dir), "request")}
    missing = [rid for rid in answered if rid not in logged]
    assert not missing, f"{len(missing)} answered requests are not in the log: {missing[:5]}"
    assert len(logged) >= len(answered) + wire_count[0]  # the wire's answered requests are there too
    assert not [r for r in records_of(audit_dir) if r.get("reason") == "close"]  # it never closed

    # One write() per batch rarely tears under SIGKILL; a power cut can. Make the tear for real: the
    # first half of a record, no newline, at the end of the active file. It is a warning, not a break.
    active = audit_dir / "requests.jsonl"
    if "torn" not in output:
        last = active.read_bytes().rstrip(b"\n").rsplit(b"\n", 1)[-1]
        with open(active, "ab") as fh:
            fh.write(last[: len(last) // 2])
    torn = assert_verifies(str(audit_dir))
    assert "torn" in torn, torn

    # A restart on the same log sets the torn file aside and continues the chain in a new file.
    with serve(dmv_dsn, audit_dir) as gw, httpx.Client(timeout=30) as client:
        r = gw.query(client, *bodies[0])
        assert r.status_code == 200, r.text
    assert len(list(audit_dir.glob("requests.*.jsonl"))) == 1  # the torn file, renamed
    after = assert_verifies(str(audit_dir))
    assert "chain intact" in after, after
    assert r.json()["request_id"] in {x["request_id"] for x in by_type(records_of(audit_dir), "request")}
    rotated = [x for x in records_of(audit_dir) if x.get("reason") == "rotate"]
    assert rotated and rotated[0]["torn"] is True


# -- 4. the PostgreSQL sink, two processes --------------------------------------------------------


def test_pg_sink_two_gateways_writing_concurrently(dmv_dsn: str, fresh_db: Callable[[str], str],
                                                   tmp_path: Path) -> None:
    audit_dsn = fresh_db("audit_e2e")
    key_file = tmp_path / "audit.key"
    key_file.write_text(os.urandom(32).hex() + "\n")
    key_file.chmod(0o600)
    env = {"GATEWAY_AUDIT_DSN": audit_dsn, "GATEWAY_AUDIT_KEY": str(key_file)}
    per_instance: dict[str, list[str]] = {"east": [], "west": []}
    wire_counts = {"east": [0], "west": [0]}
    with serve(dmv_dsn, tmp_path / "east", GATEWAY_INSTANCE_NAME="east", **env) as east, \
            serve(dmv_dsn, tmp_path / "west", GATEWAY_INSTANCE_NAME="west", **env) as west:
        stop = threading.Event()
        threads = []
        for name, gw in (("east", east), ("west", west)):
            body = {"sql": "SELECT first_name FROM dmv.persons WHERE person_id = $1", "params": [9],
                    "purpose": "service_delivery"}
            threads += [threading.Thread(target=_stream, args=(gw, stop, per_instance[name], "dmv_clerk", body))
                        for _ in range(3)]
            threads.append(threading.Thread(target=_wire_stream, args=(gw, stop, wire_counts[name])))
        for t in threads:
            t.start()
        time.sleep(4)
        stop.set()
        for t in threads:
            t.join(15)
        assert east.process.poll() is None and west.process.poll() is None
    assert not list((tmp_path / "east").glob("*.jsonl"))  # nothing went to the file sink
    assert all(len(ids) > 20 for ids in per_instance.values()), {k: len(v) for k, v in per_instance.items()}
    out = assert_verifies("--dsn", audit_dsn, "--key", str(key_file))
    rows = _audit_rows(audit_dsn)
    for name in ("east", "west"):
        lines = [json.loads(line) for inst, line in rows if inst == name]
        assert [r["seq"] for r in lines] == list(range(1, len(lines) + 1))
        req = [r for r in lines if r["type"] == "request"]
        ids = {r["request_id"] for r in req}
        assert len(ids) == len(req)  # one record per request
        assert set(per_instance[name]) <= ids
        assert len(req) == len(per_instance[name]) + wire_counts[name][0], (name, len(req))
        assert lines[-1]["reason"] == "close"
    assert "east" in out and "west" in out


def _audit_rows(dsn: str) -> list[tuple[str, str]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return [(i, line) for i, line in conn.execute(
            "SELECT instance, line FROM gateway_request_log ORDER BY instance, seq").fetchall()]


# -- 5. what an auditor finds again, and known gaps of the wire front door -------------------------


def _search(audit_dir: Path, *args: str) -> list[dict[str, Any]]:
    result = audit_cli("search", str(audit_dir), "--type", "request", "--json", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_search_finds_values_sent_over_both_front_doors(dmv_dsn: str, tmp_path: Path) -> None:
    """A license number sent in the SQL text (wire), as a text parameter (wire) and as an HTTP
    parameter is found by ``gateway audit search --license``, though the log holds only hashes."""
    audit_dir = tmp_path / "log"
    with serve(dmv_dsn, audit_dir) as gw, httpx.Client(timeout=30) as client:
        with gw.connect("dmv_clerk", purpose="service_delivery") as conn:
            number = conn.execute("SELECT license_number FROM dmv.licenses ORDER BY license_id LIMIT 1").fetchone()[0]
            conn.execute(f"SELECT status FROM dmv.licenses WHERE license_number = '{number}'").fetchall()
            conn.execute("SELECT status FROM dmv.licenses WHERE license_number = %s", (number,)).fetchall()
        r = gw.query(client, "dmv_clerk", {"sql": "SELECT status FROM dmv.licenses WHERE license_number = $1",
                                           "params": [number], "purpose": "service_delivery"})
        assert r.status_code == 200, r.text
    assert number not in "".join(p.read_text() for p in audit_dir.glob("*.jsonl"))
    found = _search(audit_dir, "--license", number)
    assert Counter(x["front_door"] for x in found) == {"wire": 2, "http": 1}, found
    assert r.json()["request_id"] in {x["request_id"] for x in found}


def test_binary_parameters_are_searchable_by_value(dmv_dsn: str, tmp_path: Path) -> None:
    audit_dir = tmp_path / "log"
    with serve(dmv_dsn, audit_dir) as gw, gw.connect("dmv_clerk", purpose="service_delivery") as conn:
        conn.execute("SELECT first_name FROM dmv.persons WHERE person_id = %s", (1234,)).fetchall()
    assert len(_search(audit_dir, "--person", "1234")) == 1


def _refusals_and_requests(dmv_dsn: str, audit_dir: Path, batches: list[str]) -> tuple[list[Any], list[Any]]:
    seen = []
    with serve(dmv_dsn, audit_dir) as gw, gw.connect("dmv_clerk", purpose="service_delivery") as conn:
        for sql in batches:
            with pytest.raises(psycopg.Error) as info:
                conn.execute(sql)
            seen.append(("deny", info.value.sqlstate))
    return seen, [(r["decision"], r["sqlstate"]) for r in by_type(records_of(audit_dir), "request")]


def test_refused_mixed_gateway_setting_batches_are_logged(dmv_dsn: str, tmp_path: Path) -> None:
    """A Query mixing SET gateway.* with other statements is refused (42601), and the refusal logged."""
    seen, logged = _refusals_and_requests(dmv_dsn, tmp_path / "log", [
        "SET gateway.purpose = 'court_order'; SELECT first_name FROM dmv.persons LIMIT 1",
        "SET gateway.case_number = 'CR-2026-0042'; SHOW gateway.purpose"])
    assert seen == logged == [("deny", "42601")] * 2


def test_refused_show_batch_is_logged(dmv_dsn: str, tmp_path: Path) -> None:
    seen, logged = _refusals_and_requests(dmv_dsn, tmp_path / "log", ["SHOW gateway.purpose; SELECT 1"])
    assert seen == [("deny", "0A000")] and logged == seen
