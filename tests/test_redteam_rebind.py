"""A portal bound under one claim must not be executed under another (SPEC 3, 8).

In a transaction, a named portal outlives a Sync: a client can Bind under an exception purpose,
change ``gateway.*`` with a simple Query, then Execute the portal. The answer must be the one the
claim in force at Execute allows (here: none of the immigration status), never the Bind-time one.
Raw protocol messages, through a real ``gateway serve``.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from frontdoor_pg_support import ROOT, WireGateway, next_message, raw_login, start_gateway
from gateway import wire as w

CBI = "-c gateway.purpose=criminal_law_enforcement -c gateway.case_number=CR-2026-0042"
STATUS = "SELECT immigration_status FROM dmv.lawful_presence WHERE person_id = 1"


@pytest.fixture(scope="module")
def gw(dmv_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WireGateway]:
    yield from start_gateway(dmv_dsn, Path(tmp_path_factory.mktemp("redteam-rebind")))


def _run(sock: socket.socket, *msgs: Any) -> list[Any]:
    """Send ``msgs``; the backend messages up to the ReadyForQuery of each Sync / Query."""
    sock.sendall(b"".join(w.encode(m) for m in msgs))
    parser, out = w.BackendParser(), []
    waits = sum(1 for m in msgs if isinstance(m, (w.Sync, w.Query)))
    while waits:
        msg = next_message(sock, parser)
        out.append(msg)
        if isinstance(msg, w.ReadyForQuery):
            waits -= 1
    return out


def _rows(out: list[Any]) -> list[Any]:
    return [m for m in out if type(m).__name__ == "DataRow"]


def _errors(out: list[Any]) -> list[Any]:
    return [m for m in out if isinstance(m, w.ErrorResponse)]


@pytest.mark.parametrize("change", ["SET gateway.purpose = ''", "SET gateway.case_number = ''",
                                    "SET gateway.purpose = 'service_delivery'", "RESET ALL"])
def test_a_portal_is_executed_under_the_claim_in_force(gw: WireGateway, change: str) -> None:
    if change == "RESET ALL":  # the claim came from SET, so RESET ALL drops it
        sock = raw_login(gw, "cbi_analyst")
        assert not _errors(_run(sock, w.Query("SET gateway.purpose = 'criminal_law_enforcement'"),
                                w.Query("SET gateway.case_number = 'CR-2026-0042'")))
    else:
        sock = raw_login(gw, "cbi_analyst", CBI)
    try:
        _run(sock, w.Query("BEGIN"))
        bound = _run(sock, w.Parse("st", STATUS), w.Bind("p", "st"), w.Sync())
        assert not _errors(bound)
        assert not _errors(_run(sock, w.Query(change)))
        executed = _run(sock, w.Execute("p"), w.Sync())
        values = [v for row in _rows(executed) for v in row.values]
        assert not [v for v in values if v is not None], f"released after {change!r}: {values}"
        assert [e.field("C") for e in _errors(executed)] == ["0A000"]  # refused: bind it again
        _run(sock, w.Query("ROLLBACK"))
    finally:
        sock.close()


def test_a_portal_bound_and_executed_under_one_claim_is_answered(gw: WireGateway) -> None:
    """The control: without a change the portal answers (the test above is not vacuous)."""
    sock = raw_login(gw, "cbi_analyst", CBI)
    try:
        _run(sock, w.Query("BEGIN"))
        assert not _errors(_run(sock, w.Parse("st", STATUS), w.Bind("p", "st"), w.Sync()))
        executed = _run(sock, w.Execute("p"), w.Sync())
        assert len(_rows(executed)) == 1 and not _errors(executed)
        _run(sock, w.Query("ROLLBACK"))
    finally:
        sock.close()


def _reloading_gateway(dmv_dsn: str, tmp_path: Path) -> Iterator[tuple[WireGateway, Path]]:
    requesters = tmp_path / "requesters.yaml"
    for side in (ROOT / "policies").glob("*.yaml"):  # the requesters file names files beside it
        shutil.copy(side, tmp_path / side.name)
    shutil.copy(ROOT / "policies/requesters.example.yaml", requesters)
    audit = tmp_path / "audit"
    audit.mkdir()
    for gw in start_gateway(dmv_dsn, audit, GATEWAY_POLICY=str(tmp_path / "colorado-dmv.yaml"),
                            GATEWAY_REQUESTERS=str(requesters)):
        yield gw, requesters


def _reload(gw: WireGateway, requesters: Path, old: str, new: str) -> None:
    text = requesters.read_text()
    assert old in text
    requesters.write_text(text.replace(old, new, 1))
    before = gw.audit_path.read_text().count('"type":"reload"')
    gw.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 30
    while gw.audit_path.read_text().count('"type":"reload"') == before:
        assert time.monotonic() < deadline, "no reload record"
        time.sleep(0.1)
    last = [json.loads(line) for line in gw.audit_path.read_text().splitlines() if '"type":"reload"' in line][-1]
    assert last["accepted"] is True, last


@pytest.mark.parametrize(("old", "new"), [("purposes: [criminal_law_enforcement]", "purposes: []"),
                                          ("signed_on: 2026-10-01", "signed_on: 2020-10-01")])
def test_a_portal_is_executed_under_the_requesters_in_force(dmv_dsn: str, tmp_path: Path, old: str, new: str) -> None:
    """SIGHUP reloads a requesters file that takes the purpose away (or lets the certification lapse)
    between Bind and Execute."""
    for gw, requesters in _reloading_gateway(dmv_dsn, tmp_path):
        sock = raw_login(gw, "cbi_analyst", CBI)
        try:
            _run(sock, w.Query("BEGIN"))
            assert not _errors(_run(sock, w.Parse("st", STATUS), w.Bind("p", "st"), w.Sync()))
            _reload(gw, requesters, old, new)
            executed = _run(sock, w.Execute("p"), w.Sync())
            released = [v for row in _rows(executed) for v in row.values if v is not None]
            if not _errors(executed):  # the control: a Bind after the reload does not release it
                rebound = _run(sock, w.Bind("p2", "st"), w.Execute("p2"), w.Sync())
                assert not [v for row in _rows(rebound) for v in row.values if v is not None]
            assert not released, f"released after the reload: {released}"
        finally:
            sock.close()


@pytest.mark.parametrize(("old", "new"), [("purposes: [criminal_law_enforcement]", "purposes: []"),
                                          ("\n  cbi_analyst:\n", "\n  cbi_analyst_retired:\n")])
def test_a_reload_applies_to_open_sessions(dmv_dsn: str, tmp_path: Path, old: str, new: str) -> None:
    """A purpose taken away, or the requester taken out of the file, applies to the next statement
    of a session already open, as it does to a new session."""
    for gw, requesters in _reloading_gateway(dmv_dsn, tmp_path):
        with psycopg.connect(gw.dsn("cbi_analyst"), autocommit=True, options=CBI) as conn:
            assert conn.execute(STATUS).fetchall()[0][0] is not None
            _reload(gw, requesters, old, new)
            with pytest.raises(psycopg.Error):  # the control: a new session is refused (or not let in)
                with psycopg.connect(gw.dsn("cbi_analyst"), autocommit=True, options=CBI) as fresh:
                    fresh.execute(STATUS).fetchall()
            released = []
            try:
                released = [r[0] for r in conn.execute(STATUS).fetchall() if r[0] is not None]
            except psycopg.errors.InsufficientPrivilege:
                pass
            assert not released, f"the open session still reads the status: {released}"
