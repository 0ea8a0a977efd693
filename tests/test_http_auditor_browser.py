"""The auditor page in headless chromium (Debian's; skipped without it): sign in, filter the log,
open one request, open the quarterly report. Screenshots go to $GATEWAY_SCREENSHOTS when set
(docs/screenshots/ holds the ones committed), else to the test's tmp folder."""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
from http_browser import Browser, find_chromium
from http_support import ServerThread, token

pytestmark = pytest.mark.slow


def _traffic(url: str) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        def q(who: str, sql: str, **body: object) -> None:
            client.post("/v1/query", json={"sql": sql, **body}, headers=token(who))

        status = "SELECT p.first_name, lp.immigration_status FROM dmv.persons p JOIN dmv.lawful_presence lp USING (person_id) WHERE p.person_id = $1"
        for n in range(1, 4):
            q("dmv_clerk", status, params=[n], purpose="service_delivery")
        q("dmv_clerk", "SELECT license_number, expiry_date FROM dmv.licenses WHERE person_id = $1", params=[12])
        q("cbi_analyst", status, params=[7], purpose="criminal_law_enforcement", case_number="CR-2026-0042")
        q("cbi_analyst", status, params=[7], purpose="criminal_law_enforcement")
        q("ag_counsel", status, params=[9], purpose="court_order", order_reference="2026CV001234")
        q("ag_counsel", status, params=[9], purpose="court_order", order_reference="I-247 detainer")
        q("gov_office", status, params=[11], purpose="governor_authorized", authorization_id="GOV-2026-0001")
        q("ice_ero", "SELECT first_name, address_line1 FROM dmv.persons WHERE last_name = 'Garcia'",
          purpose="civil_immigration_enforcement")
        q("ice_ero", "SELECT count(*) FROM dmv.lawful_presence WHERE immigration_status = 'DACA'",
          purpose="civil_immigration_enforcement")
        client.post("/v1/query", json={"sql": "SELECT 1"}, headers={"Authorization": "Bearer guess"})


def test_auditor_page_in_chromium(dmv_dsn: str, tmp_path: Path) -> None:
    binary = find_chromium()
    if binary is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    shots = Path(os.environ.get("GATEWAY_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    now = datetime.now(timezone.utc)
    quarter = f"{now.year}-Q{(now.month - 1) // 3 + 1}"
    with ServerThread(dmv_dsn, tmp_path / "log" / "requests.jsonl") as server:
        _traffic(server.url)
        browser = Browser(binary)
        try:
            browser.goto(f"{server.url}/audit/")
            assert browser.evaluate("!!document.querySelector('input[name=token]')")
            browser.screenshot(shots / "auditor-1-sign-in.png")

            browser.submit("document.querySelector('input[name=token]').value = 'auditor-demo-token';"
                           "document.querySelector('form').submit()")
            text = browser.evaluate("document.body.innerText")
            assert "signed in as auditor" in text and "ice_ero" in text
            assert browser.evaluate("document.cookie") == ""  # HttpOnly: scripts cannot read the token
            browser.screenshot(shots / "auditor-2-request-log.png")

            browser.submit("document.querySelector('select[name=decision]').value = 'deny';"
                           "document.querySelector('form.filters').submit()")
            decisions = browser.evaluate("[...document.querySelectorAll('tbody .badge')].map(b => b.textContent)")
            assert decisions and set(decisions) <= {"deny", "login_failed", "purpose_change"}
            assert "decision=deny" in browser.evaluate("location.search")
            browser.screenshot(shots / "auditor-3-filtered-denials.png")

            browser.goto(f"{server.url}/audit/?requester=cbi_analyst&decision=allow")
            browser.submit("document.querySelector('tbody a').click()")
            detail = browser.evaluate("document.body.innerText")
            assert "CR-2026-0042" in detail and "dmv.lawful_presence.immigration_status" in detail
            browser.screenshot(shots / "auditor-4-one-request.png")

            browser.goto(f"{server.url}/audit/")
            browser.submit(f"document.querySelector('input[name=quarter]').value = '{quarter}';"
                           "document.querySelectorAll('form.filters')[1].submit()")
            assert browser.evaluate("document.querySelectorAll('svg').length") >= 1
            assert quarter in browser.evaluate("document.body.innerText")
            browser.screenshot(shots / "auditor-5-quarterly-report.png")
        finally:
            browser.close()
    assert sorted(p.name for p in shots.glob("auditor-*.png")) == [
        "auditor-1-sign-in.png", "auditor-2-request-log.png", "auditor-3-filtered-denials.png",
        "auditor-4-one-request.png", "auditor-5-quarterly-report.png"]
    assert all(p.stat().st_size > 5000 for p in shots.glob("auditor-*.png"))
    assert shutil.which(binary)
