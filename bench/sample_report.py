"""The sample quarterly report: a demo-like run through both front doors, then ``gateway report``
and a headless-chromium picture of it.

    /tmp/venv/bin/python bench/sample_report.py [--out-dir docs] [--persons 5000] [--keep WORK]

Starts its own PostgreSQL (seeded), one ``gateway serve`` process, and drives a realistic mix for
every reference requester over the wire (psycopg) and HTTP (httpx): dmv_clerk at the counter
(service_delivery, some answers redacted, a few refused, one bulk export, one person looked up again
and again), cbi_analyst on criminal cases, ag_counsel under court order 2026CV001234 (and an I-247
detainer refused as not court-issued), gov_office under GOV-2026-0001, ice_ero's attempts (refused,
or answered without anything identifying), the auditor, and a few failed logins. Then
``gateway report --quarter QUARTER --format html`` writes ``report-sample.html`` and chromium
screenshots it to ``report-sample.png`` in --out-dir.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

CASES = ("CR-2026-0042", "CR-2026-0107", "CR-2026-0311")
ORDER = "2026CV001234"


class Drive:
    """Both front doors of one gateway, and a tally of what came back."""

    def __init__(self, pg_port: int, http_port: int) -> None:
        self.pg_port = pg_port
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=30)
        self.tally: Counter[tuple[str, str, str]] = Counter()

    def wire(self, user: str, statements: list[tuple[str, tuple[Any, ...] | None]], password: str | None = None,
             **claims: str) -> None:
        options = " ".join(f"-c gateway.{k}={v}" for k, v in claims.items())
        try:
            conn = psycopg.connect(host="127.0.0.1", port=self.pg_port, user=user, dbname="dmv", options=options,
                                   password=password or f"{user}-demo-password", sslmode="disable", autocommit=True)
        except psycopg.OperationalError:
            self.tally[(user, "wire", "login failed")] += 1
            return
        with conn:
            for sql, params in statements:
                try:
                    conn.execute(sql, params).fetchall()
                    self.tally[(user, "wire", "answered")] += 1
                except psycopg.Error as exc:
                    self.tally[(user, "wire", f"refused {exc.sqlstate}")] += 1

    def post(self, user: str, sql: str, params: list[Any] | None = None, token: str | None = None,
             **claims: str) -> None:
        body: dict[str, Any] = {"sql": sql, **claims}
        if params:
            body["params"] = params
        r = self.http.post("/v1/query", json=body, headers={"Authorization": f"Bearer {token or user + '-demo-token'}"})
        self.tally[(user, "http", str(r.status_code))] += 1


def drive(d: Drive) -> None:
    clerk = {"purpose": "service_delivery"}
    # The DMV counter: renewals and look-ups, over the wire (a desk application) and HTTP (the web app).
    d.wire("dmv_clerk", [
        ("SELECT person_id, first_name, last_name, address_line1, city FROM dmv.persons WHERE person_id = %s", (pid,))
        for pid in range(101, 141)
    ] + [
        ("SELECT license_number, license_class, status, expiry_date FROM dmv.licenses WHERE person_id = %s", (pid,))
        for pid in range(101, 131)
    ] + [
        ("SELECT * FROM dmv.driver_summary WHERE person_id = %s", (pid,)) for pid in range(200, 215)
    ] + [
        ("SELECT person_id, first_name, country_of_citizenship FROM dmv.persons WHERE person_id = 120", None),
        ("SELECT l.license_number, l.credential_type FROM dmv.licenses l WHERE l.person_id = 121", None),
        ("SELECT person_id FROM dmv.persons WHERE place_of_birth = 'Juarez'", None),
        ("SELECT count(*) FROM dmv.licenses WHERE credential_type = 'CO_RCSA'", None),
        ("SELECT plate, make, model FROM dmv.vehicles WHERE owner_person_id = %s", (133,)),
        ("SELECT person_id, first_name, last_name, city FROM dmv.persons WHERE county = 'Denver' LIMIT 250", None),
    ], **clerk)
    for _ in range(7):  # the same person, again and again: a repeated look-up the report flags
        d.post("dmv_clerk", "SELECT first_name, last_name, phone FROM dmv.persons WHERE person_id = $1", [4242], **clerk)
    for pid in range(300, 330):
        d.post("dmv_clerk", "SELECT person_id, first_name, last_name, email FROM dmv.persons WHERE person_id = $1",
               [pid], **clerk)
    d.post("dmv_clerk", "SELECT person_id, immigration_status FROM dmv.lawful_presence WHERE person_id = 301", **clerk)
    d.post("dmv_clerk", "UPDATE dmv.persons SET phone = '555' WHERE person_id = 301", **clerk)

    # CBI: criminal cases, each with its case number; status only with it.
    for case, pids in zip(CASES, ((510, 511, 512), (620, 621), (730,))):
        claims = {"purpose": "criminal_law_enforcement", "case_number": case}
        d.wire("cbi_analyst", [
            ("SELECT p.person_id, p.first_name, p.last_name, v.offense_code, v.offense_date "
             "FROM dmv.persons p JOIN dmv.violations v ON v.person_id = p.person_id WHERE p.person_id = %s", (pid,))
            for pid in pids
        ] + [("SELECT plate, make, model, model_year FROM dmv.vehicles WHERE owner_person_id = %s", (pids[0],))],
            **claims)
        d.post("cbi_analyst", "SELECT person_id, immigration_status FROM dmv.lawful_presence WHERE person_id = $1",
               [pids[0]], **claims)
    d.post("cbi_analyst", "SELECT person_id, immigration_status FROM dmv.lawful_presence WHERE person_id = 512",
           purpose="criminal_law_enforcement")  # no case number: refused
    d.wire("cbi_analyst", [("SELECT 1", None)], password="not-the-password")

    # The Attorney General: a court order, a statute, and an immigration detainer that is not a court order.
    d.wire("ag_counsel", [
        ("SELECT p.person_id, p.first_name, p.last_name, lp.immigration_status, lp.verified_on FROM dmv.persons p "
         "JOIN dmv.lawful_presence lp ON lp.person_id = p.person_id WHERE p.person_id = %s", (pid,))
        for pid in (840, 841)
    ], purpose="court_order", order_reference=ORDER)
    d.post("ag_counsel", "SELECT license_number, status, expiry_date FROM dmv.licenses WHERE person_id = $1", [842],
           purpose="required_by_law", legal_citation="C.R.S. 42-2-121(2)")
    d.post("ag_counsel", "SELECT person_id, immigration_status FROM dmv.lawful_presence WHERE person_id = 843",
           purpose="court_order", order_reference="ICE Form I-247A detainer request")
    d.post("ag_counsel", "SELECT person_id, immigration_status FROM dmv.lawful_presence WHERE person_id = 843",
           purpose="court_order", order_reference=ORDER)

    # The Governor's Office: an authorized study.
    gov = {"purpose": "governor_authorized", "authorization_id": "GOV-2026-0001"}
    d.post("gov_office", "SELECT county, count(*) AS persons FROM dmv.persons GROUP BY county ORDER BY county", **gov)
    d.post("gov_office", "SELECT credential_type, count(*) AS licenses FROM dmv.licenses GROUP BY credential_type",
           **gov)
    d.wire("gov_office", [("SELECT immigration_status, count(*) FROM dmv.lawful_presence GROUP BY 1", None)], **gov)

    # Federal immigration enforcement: everything identifying refused; counts without persons answered.
    ice = {"purpose": "civil_immigration_enforcement"}
    d.post("ice_ero", "SELECT person_id, first_name, last_name, address_line1 FROM dmv.persons "
                      "WHERE last_name = 'Garcia'", **ice)
    d.post("ice_ero", "SELECT person_id, immigration_status FROM dmv.lawful_presence "
                      "WHERE immigration_status = 'NO_LAWFUL_PRESENCE'", **ice)
    d.post("ice_ero", "SELECT make, count(*) FROM dmv.vehicles GROUP BY make ORDER BY 2 DESC LIMIT 5", **ice)
    d.wire("ice_ero", [
        ("SELECT license_number, expiry_date FROM dmv.licenses WHERE limited_term", None),
        ("SELECT count(*) FROM dmv.violations", None),
    ], **ice)
    d.wire("ice_ero", [("SELECT first_name FROM dmv.persons WHERE person_id = 4242", None)],
           purpose="criminal_law_enforcement", case_number="CR-2026-9999")  # not a purpose it may use
    d.post("ice_ero", "SELECT 1", token="guessed-token")

    # The auditor reads the log, never the data.
    d.post("auditor", "SELECT first_name FROM dmv.persons WHERE person_id = 4242")
    d.http.get("/v1/audit/requests?decision=deny", headers={"Authorization": "Bearer auditor-demo-token"})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=ROOT / "docs")
    parser.add_argument("--persons", type=int, default=5000)
    parser.add_argument("--keep", type=Path, help="keep the request log in this folder")
    parser.add_argument("--width", type=int, default=1100)
    parser.add_argument("--height", type=int, default=0, help="screenshot height (default: the page's height)")
    args = parser.parse_args()

    from frontdoor_pg_support import gateway_env, wait_port

    from gateway.commands.report import CHROMIUM_FLAGS, find_chromium
    from gateway.pgserver import PostgresServer
    from gateway.pgserver.launcher import free_port
    from gateway.seed import seed

    now = datetime.now(timezone.utc)
    quarter = f"{now.year}-Q{(now.month - 1) // 3 + 1}"
    work = Path(tempfile.mkdtemp(prefix="sample-report-"))
    audit_dir = args.keep or work / "log"
    audit_dir.mkdir(parents=True, exist_ok=True)
    with PostgresServer() as pg:
        dsn = pg.create_database("dmv")
        asyncio.run(seed(dsn, args.persons, 7))
        pg_port, http_port = free_port(), free_port()
        with open(work / "gateway.log", "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve"], cwd=ROOT, stdout=out,
                                    stderr=subprocess.STDOUT, env=gateway_env(dsn, audit_dir, pg_port, http_port))
            try:
                wait_port(pg_port, proc)
                wait_port(http_port, proc)
                d = Drive(pg_port, http_port)
                drive(d)
                d.http.close()
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
    for (user, door, what), n in sorted(d.tally.items()):
        print(f"  {user:12s} {door:5s} {what:14s} {n:4d}")
    html = args.out_dir / "report-sample.html"
    done = subprocess.run([sys.executable, "-m", "gateway", "report", "--quarter", quarter, "--format", "html",
                           "--out", str(html), str(audit_dir)], cwd=ROOT, capture_output=True, text=True, check=False)
    print(done.stdout + done.stderr, end="")
    if done.returncode != 0:
        return done.returncode
    browser = find_chromium()
    if browser is None:
        print("no chromium: the HTML is written, the picture is not")
        return 1
    height = args.height or _page_height(browser, CHROMIUM_FLAGS, html, args.width, work)
    png = args.out_dir / "report-sample.png"
    subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={work}/profile", "--hide-scrollbars",
                    f"--window-size={args.width},{height}", f"--screenshot={png.resolve()}", html.resolve().as_uri()],
                   capture_output=True, timeout=120, check=True)
    print(f"wrote {png} ({args.width}x{height})")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _page_height(browser: str, flags: tuple[str, ...] | list[str], html: Path, width: int, work: Path) -> int:
    """The rendered page's height in CSS pixels (chromium prints the DOM after a script measures it)."""
    probe = work / "probe.html"
    probe.write_text(html.read_text("utf-8").replace(
        "</body>", "<script>document.body.setAttribute('data-h', document.documentElement.scrollHeight)</script></body>"),
        "utf-8")
    done = subprocess.run([browser, *flags, f"--user-data-dir={work}/profile", f"--window-size={width},800",
                           "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120, check=False)
    marker = done.stdout.split('data-h="', 1)
    return int(marker[1].split('"', 1)[0]) + 20 if len(marker) == 2 else 4000


if __name__ == "__main__":
    raise SystemExit(main())
