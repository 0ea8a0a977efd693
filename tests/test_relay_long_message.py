"""The relay gathers a long backend message (a big DataRow) in linear time, and forwards what it
forwarded before whatever the chunks it arrives in.

It rejoined the start of a message not yet whole with every new chunk and rescanned it: a 16 MB
DataRow in 64 kB chunks cost 0.27 s of event loop (4x per doubling), 64 MB (the largest message it
takes) seconds, for every client of the gateway."""

from __future__ import annotations

import struct
import time

from hypothesis import given, settings, strategies as st

from gateway.frontdoor.pg.relay import QUERY, Pending, Relay


def _msg(t: bytes, body: bytes) -> bytes:
    return t + struct.pack("!I", len(body) + 4) + body


def _row(size: int) -> bytes:
    return _msg(b"D", b"\x00\x01" + struct.pack("!I", size) + b"x" * size)


_DONE = _msg(b"C", b"SELECT 1\x00") + _msg(b"Z", b"I")


def _relay() -> tuple[Relay, list[bytes], list[int]]:
    out: list[bytes] = []
    rows: list[int] = []
    relay = Relay(out.append, lambda data: None, lambda plan, n, t0, state: rows.append(n), max_message=1 << 30)
    return relay, out, rows


def _feed(stream: bytes, cuts: list[int], answers: int, plan: object = None) -> tuple[bytes, list[int], Relay]:
    relay, out, rows = _relay()
    for _ in range(answers):
        relay.expect(Pending(QUERY, plan, cap=0))
    pos = 0
    for cut in sorted(set(cuts)) + [len(stream)]:
        if cut > pos:
            relay.feed(stream[pos:cut])
            pos = cut
    return b"".join(out), rows, relay


def test_a_long_message_is_gathered_in_linear_time() -> None:
    def cost(size: int) -> float:
        stream = _row(size) + _DONE
        relay, out, rows = _relay()
        relay.expect(Pending(QUERY, object(), cap=0))
        started = time.process_time()
        for i in range(0, len(stream), 65536):
            relay.feed(stream[i:i + 65536])
        took = time.process_time() - started
        assert b"".join(out) == stream and rows == [1]
        return took

    cost(1 << 20)  # warm
    large = min(cost(32 << 20) for _ in range(2))
    # the rejoining relay took ~1.1 s for 32 MB (4x per doubling); gathering takes a few ms
    assert large < 0.4, f"32 MB in 64 kB chunks took {large:.2f} s on the relay"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([b"D", b"N", b"T"]), st.binary(max_size=40)), max_size=12),
       st.lists(st.integers(min_value=0, max_value=2000), max_size=30), st.integers(min_value=0, max_value=300))
def test_any_chunking_forwards_the_same_bytes_and_counts(messages: list[tuple[bytes, bytes]], cuts: list[int],
                                                         big: int) -> None:
    stream = b"".join(_msg(t, body) for t, body in messages) + _row(big) + _DONE
    plan = object()
    whole, whole_rows, _ = _feed(stream, [], 1, plan)
    chunked, chunked_rows, relay = _feed(stream, [c % (len(stream) + 1) for c in cuts], 1, plan)
    assert whole == chunked == stream
    assert whole_rows == chunked_rows == [sum(1 for t, _ in messages if t == b"D") + 1]
    assert not relay.busy


@given(st.integers(min_value=1, max_value=200), st.integers(min_value=0, max_value=10_000))
def test_a_message_cut_anywhere_is_forwarded_once_whole(size: int, cut_seed: int) -> None:
    first = _row(size) + _DONE
    last = _row(size // 2 + 1)  # waits for more after the stream
    relay, out, rows = _relay()
    relay.expect(Pending(QUERY, object(), cap=0))
    relay.expect(Pending(QUERY, object(), cap=0))
    stream = first + last
    cut = cut_seed % (len(stream) - 3)
    for piece in (stream[:cut], stream[cut:-3]):
        if piece:
            relay.feed(piece)
    assert b"".join(out) == first  # nothing of the partial last message is forwarded
    relay.feed(stream[-3:] + _DONE)
    assert b"".join(out) == stream + _DONE and rows == [1, 1]
