"""What one client session may make the gateway hold: named prepared statements and named portals are
bounded (``wire_max_session_statements``); one more is refused with 54000, as PostgreSQL refuses
what is past its own limits, and the session goes on."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from frontdoor_pg_support import WireGateway, raw_login, start_gateway

pytest.importorskip("psycopg")

SQL = "SELECT zip FROM dmv.persons WHERE person_id = $1"
CAP = 5


@pytest.fixture(scope="module")
def capped_gw(dmv_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WireGateway]:
    yield from start_gateway(dmv_dsn, Path(tmp_path_factory.mktemp("capped-audit")),
                             GATEWAY_WIRE_MAX_SESSION_STATEMENTS=str(CAP))


def _batch(sock: socket.socket, *messages: object) -> list[object]:
    """Send ``messages`` and a Sync; the decoded answers up to and with ReadyForQuery."""
    from gateway import wire as w

    sock.sendall(b"".join(w.encode(m) for m in messages) + w.encode(w.Sync()))  # type: ignore[arg-type]
    parser = w.BackendParser()
    out: list[object] = []
    while True:
        msg = parser.next_event()
        if msg is None:
            data = sock.recv(65536)
            assert data, f"the gateway closed the connection after {out}"
            parser.feed(data)
            continue
        out.append(msg)
        if isinstance(msg, w.ReadyForQuery):
            return out


def _kinds(answers: list[object]) -> list[str]:
    return [type(m).__name__ for m in answers]


def _error(answers: list[object]) -> tuple[str, str]:
    from gateway import wire as w

    errors = [m for m in answers if isinstance(m, w.ErrorResponse)]
    assert len(errors) == 1, _kinds(answers)
    return str(errors[0].field("C")), str(errors[0].field("M"))


def test_one_named_statement_past_the_cap_is_refused_and_the_session_goes_on(capped_gw: WireGateway) -> None:
    from gateway import wire as w

    sock = raw_login(capped_gw)
    try:
        answers = _batch(sock, *(w.Parse(f"s{i}", SQL, ()) for i in range(CAP)))
        assert _kinds(answers) == ["ParseComplete"] * CAP + ["ReadyForQuery"]

        # one more: refused, and the rest of the batch skipped to its Sync (as after any error)
        answers = _batch(sock, w.Parse(f"s{CAP}", SQL, ()), w.Bind("", "s0", (), (b"1",)), w.Execute("", 0))
        state, message = _error(answers)
        assert state == "54000" and message.startswith("gateway:"), message
        assert f"holds {CAP} named prepared statements" in message and "wire_max_session_statements" in message
        assert _kinds(answers) == ["ErrorResponse", "ReadyForQuery"]

        # the unnamed statement is not counted; the statements held still run
        answers = _batch(sock, w.Parse("", SQL, ()), w.Bind("", "", (), (b"2",)), w.Execute("", 0),
                         w.Bind("", "s4", (), (b"3",)), w.Execute("", 0))
        assert "ErrorResponse" not in _kinds(answers), answers
        assert _kinds(answers).count("DataRow") == 2 and _kinds(answers).count("CommandComplete") == 2

        # a name held already is PostgreSQL's duplicate (42P05), not the cap
        assert _error(_batch(sock, w.Parse("s1", SQL, ())))[0] == "42P05"

        # one closed, one more fits
        answers = _batch(sock, w.Close("S", "s0"), w.Parse(f"s{CAP}", SQL, ()))
        assert _kinds(answers) == ["CloseComplete", "ParseComplete", "ReadyForQuery"]
        assert _error(_batch(sock, w.Parse("one_more", SQL, ())))[0] == "54000"
    finally:
        sock.close()


def test_one_named_portal_past_the_cap_is_refused_and_the_session_goes_on(capped_gw: WireGateway) -> None:
    from gateway import wire as w

    sock = raw_login(capped_gw)
    try:
        assert "ErrorResponse" not in _kinds(_batch(sock, w.Parse("s", SQL, ())))
        answers = _batch(sock, *(w.Bind(f"p{i}", "s", (), (str(i + 1).encode(),)) for i in range(CAP)))
        assert _kinds(answers) == ["BindComplete"] * CAP + ["ReadyForQuery"]

        state, message = _error(_batch(sock, w.Bind(f"p{CAP}", "s", (), (b"9",)), w.Execute(f"p{CAP}", 0)))
        assert state == "54000" and message.startswith("gateway:"), message
        assert f"holds {CAP} named portals" in message

        # a portal held is bound again (same name), the unnamed one is not counted
        answers = _batch(sock, w.Bind("p1", "s", (), (b"7",)), w.Execute("p1", 0),
                         w.Bind("", "s", (), (b"8",)), w.Execute("", 0))
        assert "ErrorResponse" not in _kinds(answers), answers
        assert _kinds(answers).count("DataRow") == 2

        answers = _batch(sock, w.Close("P", "p0"), w.Bind(f"p{CAP}", "s", (), (b"9",)), w.Execute(f"p{CAP}", 0))
        assert "ErrorResponse" not in _kinds(answers), answers
        assert _kinds(answers)[:2] == ["CloseComplete", "BindComplete"]
    finally:
        sock.close()


def test_the_cap_is_a_setting() -> None:
    from gateway.config import load_settings
    from gateway.frontdoor.pg.door import DoorLimits

    # the door's own default (sessions made without settings, the benchmarks') is the setting's
    assert DoorLimits.from_settings(load_settings(None, env={})).max_session_statements \
        == DoorLimits().max_session_statements
    settings = load_settings(None, env={"GATEWAY_WIRE_MAX_SESSION_STATEMENTS": "20000"})
    assert DoorLimits.from_settings(settings).max_session_statements == 20000
