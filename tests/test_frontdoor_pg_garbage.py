"""Malformed bytes after login: FATAL 08P01 for that session only, never a crash, never a traceback."""

from __future__ import annotations

import secrets
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from frontdoor_pg_support import WireGateway, next_message, raw_login, read_until_closed, wire_gw  # noqa: F401 - fixture
from gateway import wire as w


def _answers(gw: WireGateway, payload: bytes, timeout: float = 3) -> list[object]:
    sock = raw_login(gw)
    try:
        sock.sendall(payload)
        sock.settimeout(timeout)
        data = read_until_closed(sock)
    finally:
        sock.close()
    parser = w.BackendParser()
    parser.feed(data)
    out: list[object] = []
    while (msg := parser.next_event()) is not None:
        out.append(msg)
    return out


def test_bad_length_and_unknown_type_are_fatal_08p01(wire_gw: WireGateway) -> None:
    for payload in (b"Q\x00\x00\x00\x02", b"?\x00\x00\x00\x04", b"B\x00\x00\x00\x08\xff\xff\xff\xff",
                    b"P" + struct.pack("!I", 9) + b"a\x00b\x00\x00", w.encode(w.PasswordMessage(b"x"))):
        answers = _answers(wire_gw, payload)
        errors = [m for m in answers if isinstance(m, w.ErrorResponse)]
        assert errors and errors[-1].sqlstate == "08P01" and errors[-1].severity == "FATAL", answers
        assert "Traceback" not in (errors[-1].message or "")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(min_size=1, max_size=64))
def test_random_bytes_after_login(wire_gw: WireGateway, payload: bytes) -> None:
    answers = _answers(wire_gw, payload + w.encode(w.Sync()))
    for msg in answers:
        if isinstance(msg, w.ErrorResponse) and msg.severity == "FATAL":
            assert msg.sqlstate in ("08P01", "57P01") and "Traceback" not in (msg.message or "")


def test_server_still_serves_after_garbage(wire_gw: WireGateway) -> None:
    sock = raw_login(wire_gw)
    sock.sendall(w.encode(w.Query("SELECT 42")))
    sock.settimeout(5)
    parser = w.BackendParser()
    rows = []
    while True:
        msg = parser.next_event()
        if msg is None:
            parser.feed(sock.recv(65536))
            continue
        if isinstance(msg, w.DataRow):
            rows.append(msg.values)
        if isinstance(msg, w.ReadyForQuery):
            break
    sock.sendall(w.encode(w.Terminate()))
    sock.close()
    assert rows == [(b"42",)]


def test_client_gone_mid_result_does_not_poison_the_pool(wire_gw: WireGateway) -> None:
    for _ in range(3):
        sock = raw_login(wire_gw)
        sock.sendall(w.encode(w.Query("SELECT person_id, first_name FROM dmv.persons")))
        sock.close()  # leave while the rows are on their way
    for i in range(6):  # later sessions get clean backend connections
        sock = raw_login(wire_gw)
        sock.sendall(w.encode(w.Query(f"SELECT {i} + 1")))
        sock.settimeout(5)
        parser = w.BackendParser()
        got: list[object] = []
        while not got or not isinstance(got[-1], w.ReadyForQuery):
            msg = parser.next_event()
            if msg is None:
                parser.feed(sock.recv(65536))
            else:
                got.append(msg)
        sock.close()
        rows = [m.values for m in got if isinstance(m, w.DataRow)]
        assert rows == [(str(i + 1).encode(),)], got


def _startup_answers(gw: WireGateway, msg: w.StartupMessage) -> list[object]:
    import socket

    with socket.create_connection((gw.host, gw.port), timeout=5) as sock:
        sock.sendall(w.encode(msg))
        parser = w.BackendParser()
        out: list[object] = []
        while not out or not isinstance(out[-1], (w.AuthenticationSASL, w.ErrorResponse)):
            got = parser.next_event()
            if got is None:
                data = sock.recv(65536)
                if not data:
                    break
                parser.feed(data)
            else:
                out.append(got)
        return out


def test_protocol_version_negotiated_down_to_3_0(wire_gw: WireGateway) -> None:
    answers = _startup_answers(wire_gw, w.StartupMessage((("user", "dmv_clerk"), ("_pq_.x", "1")), (3 << 16) | 2))
    assert answers[0] == w.NegotiateProtocolVersion(0, ("_pq_.x",))
    assert isinstance(answers[1], w.AuthenticationSASL) and "SCRAM-SHA-256" in answers[1].mechanisms


def test_replication_startup_refused(wire_gw: WireGateway) -> None:
    answers = _startup_answers(wire_gw, w.StartupMessage((("user", "dmv_clerk"), ("replication", "database"))))
    assert isinstance(answers[-1], w.ErrorResponse) and answers[-1].sqlstate == "0A000"


def _until_ready(sock, parser: w.BackendParser) -> list[object]:  # type: ignore[no-untyped-def]
    out: list[object] = []
    while not out or not isinstance(out[-1], w.ReadyForQuery):
        msg = parser.next_event()
        if msg is None:
            parser.feed(sock.recv(65536))
        else:
            out.append(msg)
    return out


def test_reused_statement_name_after_a_failed_parse_is_still_rewritten(wire_gw: WireGateway) -> None:
    sock = raw_login(wire_gw, options="-c gateway.purpose=service_delivery")
    sock.settimeout(5)
    parser = w.BackendParser()
    bad = "SELECT person_id, immigration_status FROM dmv.lawful_presence WHERE person_id = 1 + 'x'"
    sock.sendall(w.encode_all(w.Parse("s1", bad), w.Sync()))
    first = _until_ready(sock, parser)
    assert any(isinstance(m, w.ErrorResponse) for m in first)
    good = "SELECT person_id, immigration_status FROM dmv.lawful_presence WHERE person_id = $1"
    sock.sendall(w.encode_all(w.Parse("s1", good, (20,)), w.Bind("", "s1", (), (b"4",)), w.Execute(), w.Sync()))
    second = _until_ready(sock, parser)
    rows = [m.values for m in second if isinstance(m, w.DataRow)]
    assert rows == [(b"4", None)], second
    sock.close()


def test_one_packet_of_hot_cold_and_extended_statements_is_answered_in_order(wire_gw: WireGateway) -> None:
    """The channel runs a client batch on the steady path itself (no task wake-up) and hands the session
    task whatever must wait (here a statement the caches have not seen): the answers keep the client's
    order."""
    sock = raw_login(wire_gw)
    sock.settimeout(10)
    parser = w.BackendParser()
    sock.sendall(w.encode(w.Query("SELECT 42")))  # now a cached plan
    while not isinstance(next_message(sock, parser), w.ReadyForQuery):
        pass
    cold = f"SELECT 7 AS cold_{secrets.token_hex(4)}"  # a shape the caches have not seen: planned in the task
    sock.sendall(b"".join(w.encode(m) for m in (
        w.Query("SELECT 42"), w.Query(cold), w.Query("SELECT 42"),
        w.Parse("", "SELECT 43"), w.Bind("", "", (), (), ()), w.Execute("", 0), w.Sync(),
        w.Query("SELECT 42"))))
    rows: list[object] = []
    ready = 0
    while ready < 5:
        msg = next_message(sock, parser)
        assert not isinstance(msg, w.ErrorResponse), msg
        if isinstance(msg, w.DataRow):
            rows.append(msg.values)
        elif isinstance(msg, w.ReadyForQuery):
            ready += 1
    assert rows == [(b"42",), (b"7",), (b"42",), (b"43",), (b"42",)]
    sock.close()


def test_a_terminate_in_the_same_packet_comes_after_the_answers(wire_gw: WireGateway) -> None:
    """As PostgreSQL answers every message before it reads the next, a Terminate sent right behind
    statements (one write) ends the session only after their answers went out."""
    got = _answers(wire_gw, b"".join(w.encode(m) for m in (
        w.Query("SELECT 42"), w.Parse("", "SELECT 43"), w.Bind("", "", (), (), ()), w.Execute("", 0), w.Sync(),
        w.Terminate())), timeout=10)
    assert [m.values for m in got if isinstance(m, w.DataRow)] == [(b"42",), (b"43",)], got
    assert sum(isinstance(m, w.ReadyForQuery) for m in got) == 2 and not any(isinstance(m, w.ErrorResponse) for m in got)
