"""Backpressure through a real gateway: a client that sends and does not read makes the gateway stop
reading the backend (and then the client), so it never buffers answers without bound; once the
client reads, every answer arrives, whole and in order."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from frontdoor_pg_support import WireGateway, raw_login, wire_gw  # noqa: F401 - fixture
from gateway import wire as w

SQL = "SELECT p.person_id, p.first_name, p.last_name, p.date_of_birth FROM dmv.persons p"


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _answers(sock: socket.socket, count: int) -> tuple[int, int, int]:
    """Read ``count`` answers (up to each ReadyForQuery): (bytes, DataRows, ErrorResponses)."""
    parser = w.BackendParser(64 * 1024 * 1024)
    size = rows = errors = ready = 0
    while ready < count:
        msg = parser.next_event()
        if msg is None:
            data = sock.recv(1 << 20)
            if not data:
                raise AssertionError(f"closed after {ready} of {count} answers")
            size += len(data)
            parser.feed(data)
            continue
        if isinstance(msg, w.DataRow):
            rows += 1
        elif isinstance(msg, w.ErrorResponse):
            errors += 1
        elif isinstance(msg, w.ReadyForQuery):
            ready += 1
    return size, rows, errors


def test_a_client_that_does_not_read_is_not_buffered_without_bound(wire_gw: WireGateway) -> None:  # noqa: F811
    sock = raw_login(wire_gw, options="-c gateway.purpose=service_delivery")
    sock.settimeout(60)
    query = w.encode(w.Query(SQL))
    sock.sendall(query)
    one, rows_each, errors = _answers(sock, 1)
    assert errors == 0 and rows_each > 100, "the test query must give a large answer"
    count = 150 * 1024 * 1024 // one + 1  # answers worth ~150 MB, pipelined, none read for a while
    pid = wire_gw.process.pid
    rss_before = _rss_kb(pid)

    sent = threading.Event()

    def send() -> None:
        sock.sendall(query * count)  # blocks once the gateway stops reading this client
        sent.set()

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    peak = rss_before
    for _ in range(30):  # 3 s without reading a byte
        time.sleep(0.1)
        peak = max(peak, _rss_kb(pid))
    assert peak - rss_before < 60_000, f"the gateway grew by {(peak - rss_before) // 1024} MB for a client that does not read"

    size, rows, errors = _answers(sock, count)  # now read: everything arrives, nothing lost
    sender.join(30)
    assert sent.is_set()
    assert errors == 0
    assert rows == rows_each * count
    assert size >= one * count * 0.99
    sock.sendall(w.encode(w.Terminate()))
    sock.close()
