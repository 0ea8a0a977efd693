"""The relay on its own (no sockets): order, chunking, row counts, marker swap, synthetic answers."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway import wire as w
from gateway.frontdoor.pg import responses
from gateway.frontdoor.pg.relay import EXEC, EXT, MARKER_SQL, QUERY, SYNC, Pending, Relay

PARSE_BIND_EXEC = [w.ParseComplete(), w.BindComplete()]


def make() -> tuple[Relay, list[bytes], list[bytes], list[tuple[object, int, str | None]]]:
    client: list[bytes] = []
    backend: list[bytes] = []
    outcomes: list[tuple[object, int, str | None]] = []
    relay = Relay(client.append, backend.append, lambda plan, rows, t0, state: outcomes.append((plan, rows, state)))
    return relay, client, backend, outcomes


def feed_chunked(relay: Relay, data: bytes, cuts: list[int]) -> None:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    for a, b in zip(points, points[1:]):
        relay.feed(data[a:b])


@given(st.integers(0, 30), st.lists(st.integers(0, 10_000), max_size=20))
def test_extended_batch_any_chunking(rows: int, cuts: list[int]) -> None:
    relay, client, _, outcomes = make()
    for entry in (Pending(EXT), Pending(EXT), Pending(EXEC, plan="p1"), Pending(SYNC)):
        relay.expect(entry)
    msgs = [*PARSE_BIND_EXEC, *(w.DataRow((b"x", None)) for _ in range(rows)), w.CommandComplete(f"SELECT {rows}"),
            w.ReadyForQuery("I")]
    data = w.encode_all(*msgs)
    feed_chunked(relay, data, cuts)
    assert b"".join(client) == data
    assert outcomes == [("p1", rows, None)]
    assert not relay.busy and relay.status == "I"


@given(st.lists(st.integers(0, 10_000), max_size=10))
def test_marker_error_is_swapped_and_batch_skipped(cuts: list[int]) -> None:
    relay, client, _, outcomes = make()
    mine = responses.error("42501", "gateway: denied (request r-1)")
    relay.expect(Pending(EXT))  # Parse ok
    relay.expect(Pending(EXT, data=mine))  # the marker Parse
    relay.synthetic(b"SYNTHETIC-SKIPPED")  # answered in a failed batch: dropped like PostgreSQL would
    relay.expect(Pending(EXEC, plan="p"))  # skipped by the backend
    relay.expect(Pending(SYNC))
    relay.synthetic(responses.command_complete("SET"), ready=True)  # after the batch: kept, in order
    backend_error = w.ErrorResponse.make("42P01", f'relation "{MARKER_SQL.split(chr(34))[1]}" does not exist')
    data = w.encode_all(w.ParseComplete(), backend_error, w.ReadyForQuery("E"))
    feed_chunked(relay, data, cuts)
    out = b"".join(client)
    expected = (w.encode(w.ParseComplete()) + mine + w.encode(w.ReadyForQuery("E"))
                + responses.command_complete("SET") + responses.ready("E"))
    assert out == expected
    assert outcomes == [("p", 0, "42501")]


def test_real_backend_error_passes_through() -> None:
    relay, client, _, outcomes = make()
    relay.expect(Pending(QUERY, plan="q", data=responses.error("42501", "gateway: x")))
    err = w.ErrorResponse.make("25P02", "current transaction is aborted")
    data = w.encode_all(err, w.ReadyForQuery("E"))
    relay.feed(data)
    assert b"".join(client) == data
    assert outcomes == [("q", 0, "25P02")]


def test_simple_query_counts_rows_of_all_statements() -> None:
    relay, client, _, outcomes = make()
    relay.expect(Pending(QUERY, plan="q"))
    msgs = [w.RowDescription(()), w.DataRow((b"1",)), w.CommandComplete("SELECT 1"),
            w.RowDescription(()), w.DataRow((b"2",)), w.DataRow((b"3",)), w.CommandComplete("SELECT 2"),
            w.ReadyForQuery("T")]
    relay.feed(w.encode_all(*msgs))
    assert outcomes == [("q", 3, None)] and relay.status == "T"


def test_copy_in_is_failed_by_the_gateway() -> None:
    relay, client, backend, _ = make()
    relay.expect(Pending(QUERY, plan="q"))
    relay.feed(w.encode(w.CopyInResponse(0, ())))
    assert client == [] or b"".join(client) == b""
    parser = w.FrontendParser()
    parser.in_startup = False
    parser.feed(b"".join(backend))
    assert isinstance(parser.next_event(), w.CopyFail)


def test_swallowed_answers_are_not_relayed() -> None:
    relay, client, _, _ = make()
    relay.expect(Pending(EXT, swallow=True))  # Close of a re-prepared statement
    relay.expect(Pending(EXT, swallow=True))  # its new Parse
    relay.expect(Pending(EXT))  # the client's Bind
    relay.expect(Pending(SYNC))
    relay.feed(w.encode_all(w.CloseComplete(), w.ParseComplete(), w.BindComplete(), w.ReadyForQuery("I")))
    assert b"".join(client) == w.encode_all(w.BindComplete(), w.ReadyForQuery("I"))
