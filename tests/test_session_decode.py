"""The session's lean readers of Query, Execute, Describe and Close bodies agree with the wire codec's
decoders: the same value for every well-formed body, the same protocol error for every malformed one
(the session reads these on every request without building the message objects)."""

from __future__ import annotations

from typing import Any, Callable

from hypothesis import given, settings, strategies as st

from gateway.frontdoor.pg.steady import execute_portal as _execute_portal, query_message as _query_message
from gateway.frontdoor.pg.steady import kind_and_name, query_text as _text
from gateway.wire import Close, Describe, Execute, Query, RemoteProtocolError, encode
from gateway.wire.buffer import Reader


def _kind_and_name(body: bytes, message: object) -> tuple[str, str]:
    return kind_and_name(body, 68 if message is Describe else 67)


def _outcome(read: Callable[[], Any]) -> Any:
    try:
        return ("ok", read())
    except RemoteProtocolError as exc:
        return ("error", type(exc))


# bodies near the real shapes (names, SQL text, NULs, bad UTF-8, short Int32s) as well as arbitrary bytes
_pieces = st.sampled_from([b"", b"\0", b"S", b"P", b"X", b"p1", b"SELECT 1", b"\xff", b"\xc3\xa9", b"\0\0\0\0",
                           b"\0\0\0", "é".encode(), b"\0\0\0\x05"])
_bodies = st.one_of(st.binary(max_size=24), st.lists(_pieces, max_size=5).map(b"".join))


@settings(max_examples=400, deadline=None)
@given(_bodies)
def test_query_text_is_the_codecs(body: bytes) -> None:
    assert _outcome(lambda: _text(body)) == _outcome(lambda: Query.decode(Reader(body)).sql)


@settings(max_examples=400, deadline=None)
@given(_bodies)
def test_execute_portal_is_the_codecs(body: bytes) -> None:
    assert _outcome(lambda: _execute_portal(body)) == _outcome(lambda: Execute.decode(Reader(body)).portal)


@settings(max_examples=400, deadline=None)
@given(_bodies)
def test_describe_and_close_kind_and_name_are_the_codecs(body: bytes) -> None:
    for message in (Describe, Close):
        def codec(message: Any = message) -> tuple[str, str]:
            msg = message.decode(Reader(body))
            return msg.kind, msg.name

        assert _outcome(lambda message=message: _kind_and_name(body, message)) == _outcome(codec)


def test_well_formed_messages_read_back() -> None:
    assert _text(Query("SELECT 'é'").body()) == "SELECT 'é'"
    assert _execute_portal(Execute("p1", 10).body()) == "p1"
    assert _kind_and_name(Describe("S", "stmt").body(), Describe) == ("S", "stmt")
    assert _kind_and_name(Close("P", "").body(), Close) == ("P", "")
    assert _query_message("SELECT 1") == encode(Query("SELECT 1"))
