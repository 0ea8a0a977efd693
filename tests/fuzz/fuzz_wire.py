"""Fuzz target: the wire codec (frontend and backend parsers, framing).

Properties checked on every input, beyond "no exception but ProtocolError":
- fed one byte at a time or all at once, a parser gives the same messages and fails the same way;
- every message a parser returns encodes back to bytes that parse to an equal message;
- ``iter_frames`` and ``complete_prefix`` agree, and agree with the parsers' framing.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from gateway import wire as w  # noqa: E402
from gateway.wire.errors import ProtocolError  # noqa: E402
from gateway.wire.frontend import CancelRequest, GSSENCRequest, SSLRequest, StartupMessage  # noqa: E402

_STARTUP_TYPES = (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest)


def _parser(kind: int, startup: bool) -> w.FrontendParser | w.BackendParser:
    if kind == 1:
        return w.BackendParser(max_message=1 << 16)
    p = w.FrontendParser(max_message=1 << 16)
    p.in_startup = startup
    return p


def _drain(parser: w.FrontendParser | w.BackendParser, out: list[object]) -> bool:
    """Append every whole message; True if the parser refused the bytes."""
    try:
        while (msg := parser.next_event()) is not None:
            out.append(msg)
    except ProtocolError:
        return True
    return False


def _whole(kind: int, startup: bool, data: bytes) -> tuple[list[object], bool]:
    p = _parser(kind, startup)
    p.feed(data)
    out: list[object] = []
    return out, _drain(p, out)


def _bytewise(kind: int, startup: bool, data: bytes) -> tuple[list[object], bool]:
    p = _parser(kind, startup)
    out: list[object] = []
    for i in range(len(data)):
        p.feed(data[i:i + 1])
        if _drain(p, out):
            return out, True
    return out, False


def _round_trip(kind: int, msg: object) -> None:
    raw = w.encode(msg)  # type: ignore[arg-type]
    again, broken = _whole(kind, isinstance(msg, _STARTUP_TYPES), raw)
    assert not broken and again == [msg], (msg, raw, again)


def one_input(data: bytes) -> None:
    if not data:
        return
    mode, body = data[0] % 3, data[1:]
    if mode == 2:  # framing alone
        try:
            frames = list(w.iter_frames(body, 0, 1 << 16))
        except ProtocolError:
            frames = None
        try:
            prefix = w.complete_prefix(body, 0, 1 << 16)
        except ProtocolError:
            prefix = None
        assert (frames is None) == (prefix is None), (frames, prefix)
        if frames is not None:
            assert prefix == (frames[-1][2] if frames else 0)
            assert all(a[2] == b[1] for a, b in zip(frames, frames[1:]))
        return
    startup = mode == 0 and data[0] & 4 == 0  # the frontend parser before or after the startup packet
    kind = 1 if mode == 1 else 0
    whole, broken = _whole(kind, startup, body)
    split, broken_split = _bytewise(kind, startup, body)
    assert whole == split and broken == broken_split, (whole, split, broken, broken_split)
    for msg in whole:
        _round_trip(kind, msg)


def seeds() -> list[bytes]:
    """One input of each message kind, for both parsers."""
    fe = [w.Query("select 1"), w.Parse("s1", "select $1", (23,)), w.Bind("", "s1", (0,), (b"7", None), (1,)),
          w.Describe("S", "s1"), w.Execute("", 0), w.Sync(), w.Flush(), w.Close("P", ""), w.Terminate(),
          w.CopyData(b"x"), w.CopyDone(), w.CopyFail("no"), w.FunctionCall(1, (0,), (b"1",), 0),
          w.SASLInitialResponse("SCRAM-SHA-256", b"n,,n=,r=abc")]
    be = [w.AuthenticationOk(), w.AuthenticationSASL(("SCRAM-SHA-256",)), w.AuthenticationMD5Password(b"salt"),
          w.ParameterStatus("a", "b"), w.BackendKeyData(1, b"1234"), w.ReadyForQuery("T"),
          w.RowDescription((w.FieldDescription("a"),)), w.DataRow((b"1", None)), w.CommandComplete("SELECT 1"),
          w.ErrorResponse.make("42501", "no"), w.NoticeResponse.make("01000", "n"), w.ParseComplete(),
          w.BindComplete(), w.NoData(), w.EmptyQueryResponse(), w.ParameterDescription((23, 25)),
          w.NegotiateProtocolVersion(0, ("_pq_.x",)), w.CopyInResponse(0, (0,)), w.NotificationResponse(1, "c", "p")]
    startup = [w.StartupMessage((("user", "u"), ("database", "d"))), w.SSLRequest(), w.GSSENCRequest(),
               w.CancelRequest(1, b"abcd")]
    out = [b"\x00" + b"".join(w.encode(m) for m in startup[:1] + fe)]
    out += [b"\x04" + w.encode(m) for m in fe]
    out += [b"\x00" + w.encode(m) for m in startup]
    out += [b"\x01" + w.encode(m) for m in be]
    out += [b"\x02" + b"".join(w.encode(m) for m in be)]
    return out


#: Inputs the fuzzer once found (each its own regression; see tests/test_fuzz_atheris.py).
REGRESSIONS: list[bytes] = [
    # a NoticeResponse field code 0x95: decoded, then the encoder refused it (LocalProtocolError);
    # the decoder now refuses non-ASCII field codes as the protocol error they are
    b'\x01N\x00\x00\x00\x1fSNOTICE\x00VNOTICE\x00\x9501000\x00Mn\x00\x00',
]
