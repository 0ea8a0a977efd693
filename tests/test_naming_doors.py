"""The naming decision table (tests/fixtures/analyzer/naming.sql) over both front doors of a real
gateway with the shipped policy: outside requesters' searches refused with 42501 / 403, their
look-ups answered; staff searches answered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from frontdoor_pg_support import WireGateway, start_gateway
from gateway.selftest.corpus import PROFILES, load_cases

psycopg = pytest.importorskip("psycopg")

CASES = [c for c in load_cases(Path(__file__).parent / "fixtures" / "analyzer" / "naming.sql") if "$1" not in c.sql]
PAIRS = [pytest.param(c, p, id=f"{c.label}-{p}") for c in CASES for p in c.profiles if p in ("cbi", "gov", "clerk", "ice0")]


@pytest.fixture(scope="module")
def gw(dmv_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WireGateway]:
    yield from start_gateway(dmv_dsn, tmp_path_factory.mktemp("naming-doors"))


def _claim(profile: str) -> tuple[str, dict[str, str]]:
    requester, claim = PROFILES[profile]
    return requester, {k: v for k, v in claim.as_dict().items() if v}


@pytest.mark.parametrize(("case", "profile"), PAIRS)
def test_both_doors(gw: WireGateway, case: Any, profile: str) -> None:
    requester, claim = _claim(profile)
    options = " ".join(f"-c gateway.{k}={v}" for k, v in claim.items())
    with psycopg.connect(host=gw.host, port=gw.port, user=requester, password=f"{requester}-demo-password",
                         dbname="dmv", sslmode="disable", autocommit=True, options=options) as conn:
        try:
            conn.execute(case.sql).fetchall()
            wire = "allow"
        except psycopg.errors.InsufficientPrivilege as exc:
            wire, message = "deny", str(exc)
    r = httpx.post(f"http://{gw.host}:{gw.http_port}/v1/query", json={"sql": case.sql, **claim},
                   headers={"Authorization": f"Bearer {requester}-demo-token"}, timeout=30)
    expected = "allow" if case.expect in ("allow", "redact") else "deny"
    assert wire == expected
    assert (r.status_code == 200) == (expected == "allow"), r.text
    if expected == "deny":
        assert r.status_code == 403 and r.json()["error"]["sqlstate"] == "42501"
        reason = case.meta.get("reason")
        if reason:
            assert reason.lower() in message.lower() and reason.lower() in r.json()["error"]["message"].lower()
