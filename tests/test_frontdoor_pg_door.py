"""Limits at the wire door, through a real gateway: slow-loris and pre-auth floods are cut by their
deadlines and bounded in memory; connection limits refuse with 53300 and a log line; idle sessions
are closed past their timeouts."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from frontdoor_pg_support import WireGateway, raw_login, read_until_closed, start_gateway
from gateway import wire as w

psycopg = pytest.importorskip("psycopg")

LIMITS = {
    "GATEWAY_STARTUP_TIMEOUT_MS": "1000", "GATEWAY_AUTH_TIMEOUT_MS": "1500",
    "GATEWAY_MAX_CONNECTIONS": "60", "GATEWAY_MAX_CONNECTIONS_PER_ADDRESS": "50",
    "GATEWAY_MAX_CONNECTIONS_PER_REQUESTER": "6",
    "GATEWAY_IDLE_SESSION_TIMEOUT_MS": "2500", "GATEWAY_IDLE_IN_TRANSACTION_TIMEOUT_MS": "1500",
}


@pytest.fixture(scope="module")
def door_gw(dmv_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WireGateway]:
    yield from start_gateway(dmv_dsn, Path(tmp_path_factory.mktemp("door-audit")), **LIMITS)


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _closed_within(sock: socket.socket, seconds: float) -> bytes:
    sock.settimeout(seconds)
    return read_until_closed(sock)


def _startup(user: str = "dmv_clerk") -> bytes:
    return w.encode(w.StartupMessage((("user", user), ("database", "dmv"))))


def test_slow_loris_is_cut_by_the_startup_deadline(door_gw: WireGateway) -> None:
    rss_before = _rss_kb(door_gw.process.pid)
    socks = []
    for _ in range(30):
        s = socket.create_connection((door_gw.host, door_gw.port))
        s.sendall(_startup()[:3])  # a few bytes of the length, then nothing
        socks.append(s)
    t0 = time.monotonic()
    for s in socks:
        _closed_within(s, 10)
        s.close()
    took = time.monotonic() - t0
    assert took < 5, f"slow-loris connections still open after {took:.1f} s"
    assert _rss_kb(door_gw.process.pid) - rss_before < 30_000
    assert door_gw.process.poll() is None


def test_stalled_login_is_cut_by_the_auth_deadline(door_gw: WireGateway) -> None:
    s = socket.create_connection((door_gw.host, door_gw.port))
    s.sendall(_startup())  # then never answers the SASL request
    t0 = time.monotonic()
    data = _closed_within(s, 10)
    assert time.monotonic() - t0 < 5
    assert b"canceling authentication due to timeout" in data


def test_pre_auth_flood_of_huge_messages_is_bounded(door_gw: WireGateway) -> None:
    """20 clients each announce a 60 MB SASL message: refused at the header, nothing buffered."""
    rss_before = _rss_kb(door_gw.process.pid)
    socks = []
    for _ in range(20):
        s = socket.create_connection((door_gw.host, door_gw.port))
        s.sendall(_startup())
        socks.append(s)
    chunk = b"x" * (1 << 20)
    for s in socks:
        s.settimeout(5)
        s.recv(4096)  # AuthenticationSASL
        try:
            s.sendall(b"p" + struct.pack("!I", 60 * 1024 * 1024) + chunk)
        except OSError:
            pass
    answers = [_closed_within(s, 10) for s in socks]
    for s in socks:
        s.close()
    # refused at the length header (a malformed SASL message is a failed login): FATAL, then closed
    assert all(b"FATAL" in a and (b"28P01" in a or b"08P01" in a) for a in answers), answers[:1]
    assert _rss_kb(door_gw.process.pid) - rss_before < 50_000
    assert door_gw.process.poll() is None


def test_connections_per_address_are_capped_with_a_clear_error(door_gw: WireGateway) -> None:
    held = [socket.create_connection((door_gw.host, door_gw.port)) for _ in range(50)]
    try:
        time.sleep(0.3)
        with pytest.raises(psycopg.OperationalError) as info:
            psycopg.connect(door_gw.dsn("dmv_clerk"), connect_timeout=10)
        assert "too many connections from 127.0.0.1" in str(info.value)
        assert "max_connections_per_address" in str(info.value)
    finally:
        for s in held:
            s.close()
    time.sleep(0.5)
    log = (door_gw.audit_path.parent / "gateway.log").read_text()
    assert "refused a client from 127.0.0.1" in log
    with psycopg.connect(door_gw.dsn("dmv_clerk")) as conn:  # a slot is free again
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_connections_per_requester_are_capped(door_gw: WireGateway) -> None:
    conns = [psycopg.connect(door_gw.dsn("cbi_analyst")) for _ in range(6)]
    try:
        with pytest.raises(psycopg.OperationalError) as info:
            psycopg.connect(door_gw.dsn("cbi_analyst"))
        assert "too many connections for requester cbi_analyst" in str(info.value)
        with psycopg.connect(door_gw.dsn("dmv_clerk")) as other:  # another requester is not affected
            assert other.execute("SELECT 1").fetchone() == (1,)
    finally:
        for conn in conns:
            conn.close()


def test_idle_session_and_idle_in_transaction_timeouts(door_gw: WireGateway) -> None:
    idle = raw_login(door_gw)
    in_tx = raw_login(door_gw)
    in_tx.sendall(w.encode(w.Query("BEGIN")))
    time.sleep(0.3)
    t0 = time.monotonic()
    tx_answer = _closed_within(in_tx, 10)
    tx_took = time.monotonic() - t0
    idle_answer = _closed_within(idle, 10)
    assert b"idle-in-transaction timeout" in tx_answer
    assert b"idle-session timeout" in idle_answer
    assert tx_took < 4
    busy = psycopg.connect(door_gw.dsn("dmv_clerk"), autocommit=True)  # a session that keeps asking stays
    for _ in range(6):
        busy.execute("SELECT 1").fetchone()
        time.sleep(0.5)
    busy.close()
