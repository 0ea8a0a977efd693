"""``gateway certification add|list|revoke`` against a running gateway: the change is picked up, the
denial names the lapse, the record names the certification that applied."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.compliance_support import compliance_gateway, last_request
from tests.frontdoor_pg_support import ROOT, WireGateway

NAME = "SELECT first_name FROM dmv.persons WHERE person_id = 7"
CLAIM = {"purpose": "criminal_law_enforcement", "case_number": "CR-2026-0042"}


def cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", "certification", "--requesters", str(folder / "requesters.yaml"),
                           "--policy", str(folder / "policy.yaml"), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("certs")


@pytest.fixture(scope="module")
def gw(dmv_dsn: str, folder: Path) -> Iterator[WireGateway]:
    yield from compliance_gateway(dmv_dsn, folder, GATEWAY_REFRESH_INTERVAL_MS="200")  # the file check: 5 s by default


def _wait_for(gw: WireGateway, want_ok: bool) -> subprocess.CompletedProcess[str]:
    deadline = time.monotonic() + 20
    while True:
        done = gw.psql("cbi_analyst", NAME, **CLAIM)
        if (done.returncode == 0) == want_ok or time.monotonic() > deadline:
            return done
        time.sleep(0.1)


def test_add_list_revoke(gw: WireGateway, folder: Path) -> None:
    stale = gw.psql("cbi_analyst", NAME, **CLAIM)
    assert stale.returncode != 0 and "certification_expired" in stale.stderr

    refused = cli(folder, "add", "cbi_analyst", "--signer", "J. Doe, Director", "--signed-on", "2026-11-20",
                  "--form-version", "CO-105 v2", "--no-immigration-use")
    assert refused.returncode == 2 and "both clauses" in refused.stderr
    unknown = cli(folder, "add", "nobody", "--signer", "x", "--signed-on", "2026-11-20", "--form-version", "v2",
                  "--no-immigration-use", "--no-redisclosure")
    assert unknown.returncode == 2 and "no requester" in unknown.stderr

    signed = (date.today() - timedelta(days=340)).isoformat()  # expires within 30 days
    added = cli(folder, "add", "cbi_analyst", "--signer", "J. Doe, Director", "--signed-on", signed,
                "--form-version", "CO-105 v2", "--no-immigration-use", "--no-redisclosure", "--id", "CBI-2026-B")
    assert added.returncode == 0, added.stderr
    assert (folder / "certifications.yaml").exists()
    fresh = _wait_for(gw, want_ok=True)
    assert fresh.returncode == 0, fresh.stderr
    assert last_request(gw, "cbi_analyst")["certification"] == {"status": "current", "id": "CBI-2026-B"}

    listed = json.loads(cli(folder, "list", "--json").stdout)
    mine = {r["id"]: r for r in listed if r["requester"] == "cbi_analyst"}
    assert mine["CBI-2026-B"]["status"] == "current" and mine["CBI-2026-B"]["signer"] == "J. Doe, Director"
    assert mine["CBI_ANALYST-CERT-2026"]["status"] == "expired"
    assert any(r["requester"] == "ice_ero" and r["status"] == "missing" for r in listed)
    expiring = json.loads(cli(folder, "list", "--json", "--expiring", "30").stdout)
    assert [r["id"] for r in expiring] == ["CBI-2026-B"]
    table = cli(folder, "list")
    assert table.returncode == 0 and "CBI-2026-B" in table.stdout

    revoked = cli(folder, "revoke", "CBI-2026-B", "--reason", "agency withdrew its signature")
    assert revoked.returncode == 0, revoked.stderr
    again = _wait_for(gw, want_ok=False)
    assert again.returncode != 0
    # the expired one is now the latest that still counts for nothing: the lapse is named
    assert "certification_expired" in again.stderr or "certification_missing" in again.stderr
    assert cli(folder, "revoke", "NOPE", "--reason", "x").returncode == 2


def test_revoking_the_only_certification_says_missing(gw: WireGateway, folder: Path) -> None:
    revoked = cli(folder, "revoke", "AG_COUNSEL-CERT-2026", "--reason", "test", "--on", "2026-01-01")
    assert revoked.returncode == 0, revoked.stderr
    deadline = time.monotonic() + 20
    while True:
        done = gw.psql("ag_counsel", NAME, purpose="court_order", order_reference="2026CV001234")
        if done.returncode != 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert "certification_missing" in done.stderr and "revoked" in done.stderr
    assert last_request(gw, "ag_counsel")["certification"]["status"] == "certification_missing"
