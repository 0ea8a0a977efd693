"""Properties of the sans-IO codec: round trips, chunking invariance, garbage gives a protocol error."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import wire as w
from gateway.wire.frontend import FRONTEND_TYPES

text = st.text(alphabet=st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=30)
name = text
i16 = st.integers(-(2**15), 2**15 - 1)
i32 = st.integers(-(2**31), 2**31 - 1)
u32 = st.integers(0, 2**32 - 1)
value = st.one_of(st.none(), st.binary(max_size=40))
key = st.binary(min_size=4, max_size=32)

frontend_typed = st.one_of(
    st.builds(w.Query, text),
    st.builds(w.Parse, name, text, st.tuples() | st.lists(u32, max_size=5).map(tuple)),
    st.builds(w.Bind, name, name, st.lists(st.sampled_from([0, 1]), max_size=4).map(tuple),
              st.lists(value, max_size=4).map(tuple), st.lists(st.sampled_from([0, 1]), max_size=4).map(tuple)),
    st.builds(w.Describe, st.sampled_from("SP"), name),
    st.builds(w.Close, st.sampled_from("SP"), name),
    st.builds(w.Execute, name, i32),
    st.just(w.Sync()), st.just(w.Flush()), st.just(w.Terminate()),
    st.builds(w.PasswordMessage, st.binary(max_size=40)),
    st.builds(w.FunctionCall, u32, st.lists(i16, max_size=3).map(tuple), st.lists(value, max_size=3).map(tuple), i16),
    st.builds(w.CopyData, st.binary(max_size=40)), st.just(w.CopyDone()), st.builds(w.CopyFail, text),
)

field_code = st.sampled_from(list("SVCMDHPpqWstcdnFLR"))
fields = st.lists(st.tuples(field_code, text), max_size=6).map(tuple)
backend_msgs = st.one_of(
    st.just(w.AuthenticationOk()), st.just(w.AuthenticationCleartextPassword()),
    st.builds(w.AuthenticationMD5Password, st.binary(min_size=4, max_size=4)),
    st.builds(w.AuthenticationSASL, st.lists(text.filter(bool), max_size=3).map(tuple)),
    st.builds(w.AuthenticationSASLContinue, st.binary(max_size=40)),
    st.builds(w.AuthenticationSASLFinal, st.binary(max_size=40)),
    st.builds(w.AuthenticationOther, st.sampled_from([2, 7, 8, 9]), st.binary(max_size=10)),
    st.builds(w.ErrorResponse, fields), st.builds(w.NoticeResponse, fields),
    st.builds(w.ParameterStatus, text, text), st.builds(w.BackendKeyData, i32, key),
    st.builds(w.ReadyForQuery, st.sampled_from("ITE")),
    st.builds(w.RowDescription, st.lists(st.builds(w.FieldDescription, text, u32, i16, u32, i16, i32, i16),
                                         max_size=4).map(tuple)),
    st.builds(w.DataRow, st.lists(value, max_size=5).map(tuple)),
    st.builds(w.CommandComplete, text),
    st.builds(w.ParameterDescription, st.lists(u32, max_size=5).map(tuple)),
    st.builds(w.NegotiateProtocolVersion, i32, st.lists(text, max_size=3).map(tuple)),
    st.builds(w.CopyInResponse, st.integers(0, 1), st.lists(st.integers(0, 1), max_size=3).map(tuple)),
    st.builds(w.CopyOutResponse, st.integers(0, 1), st.lists(st.integers(0, 1), max_size=3).map(tuple)),
    st.builds(w.NotificationResponse, i32, text, text),
    st.builds(w.FunctionCallResponse, value),
    st.sampled_from([w.ParseComplete(), w.BindComplete(), w.CloseComplete(), w.NoData(),
                     w.PortalSuspended(), w.EmptyQueryResponse(), w.CopyDone()]),
    st.builds(w.CopyData, st.binary(max_size=40)),
)
startup_msgs = st.one_of(
    st.builds(w.StartupMessage, st.lists(st.tuples(text.filter(bool), text), max_size=5).map(tuple),
              st.integers(0, 5).map(lambda minor: (3 << 16) | minor)),
    st.just(w.SSLRequest()), st.just(w.GSSENCRequest()), st.builds(w.CancelRequest, i32, key),
)


def drain(parser: w.FrontendParser | w.BackendParser) -> list[object]:
    out = []
    while (msg := parser.next_event()) is not None:
        out.append(msg)
    return out


def parse_frontend(data: bytes, chunk: int | None = None, startup: bool = False) -> list[object]:
    p = w.FrontendParser()
    p.in_startup = startup
    out: list[object] = []
    step = chunk or max(len(data), 1)
    for i in range(0, len(data), step):
        p.feed(data[i:i + step])
        out.extend(drain(p))
    assert p.buffered == 0
    return out


def parse_backend(data: bytes, chunk: int | None = None) -> list[object]:
    p = w.BackendParser()
    out: list[object] = []
    step = chunk or max(len(data), 1)
    for i in range(0, len(data), step):
        p.feed(data[i:i + step])
        out.extend(drain(p))
    assert p.buffered == 0
    return out


@given(st.lists(frontend_typed, max_size=8))
def test_frontend_round_trip_any_chunking(msgs: list[object]) -> None:
    data = w.encode_all(*msgs)
    assert parse_frontend(data) == msgs
    assert parse_frontend(data, chunk=1) == msgs
    assert parse_frontend(data, chunk=7) == msgs


@given(st.lists(backend_msgs, max_size=8))
def test_backend_round_trip_any_chunking(msgs: list[object]) -> None:
    data = w.encode_all(*msgs)
    assert parse_backend(data) == msgs
    assert parse_backend(data, chunk=1) == msgs
    frames = list(w.iter_frames(data))
    assert len(frames) == len(msgs) and w.complete_prefix(data) == len(data)


@given(startup_msgs, st.lists(frontend_typed, max_size=3))
def test_startup_phase_then_typed(first: object, rest: list[object]) -> None:
    data = w.encode(first)
    got = parse_frontend(data, startup=True)
    assert got == [first]
    if isinstance(first, w.StartupMessage):
        both = data + w.encode_all(*rest)
        assert parse_frontend(both, chunk=1, startup=True) == [first, *rest]


@given(st.builds(w.SASLInitialResponse, text, st.none() | st.binary(max_size=30)))
def test_sasl_initial_round_trip(msg: w.SASLInitialResponse) -> None:
    (raw,) = parse_frontend(w.encode(msg))
    assert w.SASLInitialResponse.from_password(raw) == msg


def _garbage_frontend(data: bytes, startup: bool) -> None:
    p = w.FrontendParser(max_message=1 << 16)
    p.in_startup = startup
    try:
        p.feed(data)
        drain(p)
    except w.RemoteProtocolError:
        return


def _garbage_backend(data: bytes) -> None:
    p = w.BackendParser(max_message=1 << 16)
    try:
        p.feed(data)
        drain(p)
    except w.RemoteProtocolError:
        return


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200), st.booleans())
def test_arbitrary_bytes_give_messages_or_protocol_error(data: bytes, startup: bool) -> None:
    _garbage_frontend(data, startup)
    _garbage_backend(data)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(frontend_typed, min_size=1, max_size=4), st.lists(backend_msgs, min_size=1, max_size=4),
       st.data())
def test_mutated_streams_give_messages_or_protocol_error(front: list[object], back: list[object],
                                                         data: st.DataObject) -> None:
    for raw, feed in ((w.encode_all(*front), lambda b: _garbage_frontend(b, False)),
                      (w.encode_all(*back), _garbage_backend)):
        buf = bytearray(raw)
        for _ in range(data.draw(st.integers(1, 4))):
            pos = data.draw(st.integers(0, len(buf) - 1))
            buf[pos] = data.draw(st.integers(0, 255))
        feed(bytes(buf))
        parser = w.BackendParser(max_message=1 << 16)
        try:  # one byte at a time: the same invariant
            for i in range(len(buf)):
                parser.feed(bytes(buf[i:i + 1]))
                drain(parser)
        except w.RemoteProtocolError:
            pass


def test_length_limits() -> None:
    p = w.FrontendParser(max_message=100)
    p.in_startup = False
    p.feed(b"Q\x00\x01\x00\x00")
    with pytest.raises(w.RemoteProtocolError, match="length"):
        p.next_event()
    with pytest.raises(w.RemoteProtocolError):  # stays broken
        p.next_event()
    p = w.FrontendParser()
    p.feed(b"\x00\x00\x00\x03")
    with pytest.raises(w.RemoteProtocolError, match="startup"):
        p.next_event()
    p = w.FrontendParser()
    p.feed(w.encode(w.StartupMessage((("user", "x" * 20000),))))
    with pytest.raises(w.RemoteProtocolError, match="startup"):
        p.next_event()


def test_unknown_type_and_version() -> None:
    p = w.FrontendParser()
    p.in_startup = False
    p.feed(b"?\x00\x00\x00\x04")
    with pytest.raises(w.RemoteProtocolError, match="unknown message type"):
        p.next_event()
    p = w.FrontendParser()
    p.feed(b"\x00\x00\x00\x08\x00\x02\x00\x00")
    with pytest.raises(w.RemoteProtocolError, match="protocol 2.0"):
        p.next_event()


def test_local_errors_on_unsendable_messages() -> None:
    with pytest.raises(w.LocalProtocolError):
        w.encode(w.Query("a\0b"))
    with pytest.raises(w.LocalProtocolError):
        w.encode(w.Execute("", 2**40))
    with pytest.raises(w.LocalProtocolError):
        w.encode(w.ReadyForQuery("X"))
    with pytest.raises(w.LocalProtocolError):
        w.encode(object())


def test_cancel_then_data_is_an_error() -> None:
    p = w.FrontendParser()
    p.feed(w.encode(w.CancelRequest(1, b"abcd")) + b"x")
    assert p.next_event() == w.CancelRequest(1, b"abcd")
    with pytest.raises(w.RemoteProtocolError):
        p.next_event()


def test_error_helpers() -> None:
    err = w.ErrorResponse.make("42501", "gateway: denied", detail="d")
    (back,) = parse_backend(w.encode(err))
    assert back.sqlstate == "42501" and back.message == "gateway: denied" and back.severity == "ERROR"


def test_frontend_types_are_unique() -> None:
    assert len(FRONTEND_TYPES) == 14


@settings(max_examples=30, deadline=None)
@given(st.integers(60_000, 300_000), st.sampled_from([1_000, 7_919, 65_536, 131_072]), st.integers(0, 3))
def test_long_messages_gathered_over_many_reads(size: int, chunk: int, small: int) -> None:
    """A message longer than the gathering threshold, between small ones, read in chunks of any size:
    the same messages come out, and nothing is left buffered."""
    msgs = [w.Query("SELECT 1")] * small + [w.Query("SELECT '" + "x" * size + "'"), w.Sync(), w.Query("SELECT 2")]
    assert parse_frontend(w.encode_all(*msgs), chunk) == msgs
    assert parse_backend(w.encode_all(w.DataRow((b"y" * size,)), w.ReadyForQuery("I")), chunk) == [
        w.DataRow((b"y" * size,)), w.ReadyForQuery("I")]


def test_a_bad_length_in_a_gathered_message_is_a_protocol_error() -> None:
    p = w.FrontendParser(max_message=1 << 20)
    p.in_startup = False
    p.feed(b"Q" + (1 << 19).to_bytes(4, "big") + b"x" * 70_000)  # long and incomplete: gathered
    assert p.next_raw() is None and p.buffered == 70_005
    p = w.FrontendParser(max_message=1 << 16)
    p.in_startup = False
    p.feed(b"Q\x00\x00\x00\x08abc\x00Q\x00")  # a whole message, then the start of the next one
    assert p.next_raw() == (81, b"abc\x00")
    p.feed(b"\xff\xff\xff" + b"z" * 70_000)  # its length (over max_message) arrives with a long read
    with pytest.raises(w.RemoteProtocolError):
        p.next_raw()
