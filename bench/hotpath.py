"""The wire hot path by stage, in-process: one PgSession driven with canned client bytes and canned
backend replies (no sockets), durable request log on (a real file, write + fdatasync per batch).

    python bench/hotpath.py                      # µs of CPU per request, by stage and end to end
    python bench/hotpath.py --callgrind          # instructions per request under valgrind (repeatable)
    python bench/hotpath.py --modes simple --requests 20000

Modes: ``simple`` (Query with a fresh literal each time, a shape-cache hit), ``extended`` (unnamed
Parse/Bind/Describe/Execute/Sync, as pgbench -M extended), ``prepared`` (named statement parsed once,
then Bind/Execute/Sync, as pgbench -M prepared). Stages, each run alone in a loop over the same
objects the session uses:

* ``framing``: client bytes into the parser, whole messages out, decoded for dispatch;
* ``plan``: ``gw.plan`` on a shape hit (a literal never seen before; prepared: none per request);
* ``record``: the request record built (literal and parameter hashing included);
* ``seal``: the record chained, HMAC'ed and serialized into its log line;
* ``relay``: the canned backend answer walked by the relay and forwarded (rows counted);
* ``outcome``: the outcome built as the session queues it, and sealed eight to an ``outcomes`` record;
* ``session``: the whole thing end to end through ``PgSession.run`` with the real file sink, CPU of
  every thread of the process (``time.process_time``) per request, fdatasync included; ``--clients``
  closed-loop sessions at once (8 by default), so records share group-commit batches as in a server.

The first run needs a PostgreSQL (started here, tiny seed) to read the live catalog once; it is kept
in a pickle beside the bench (``--catalog``) so that runs under valgrind never touch a database.
With ``--callgrind``, each (mode, stage) runs twice under ``valgrind --tool=callgrind`` with two loop
counts; the difference of the instruction totals over the difference of the counts is the stage's
instructions per request, startup and imports cancelled out.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODES = ("simple", "extended", "prepared")
STAGES = ("framing", "plan", "record", "seal", "relay", "outcome", "session")
SQL = "SELECT person_id, first_name, last_name FROM dmv.persons WHERE person_id = {pid}"
SQL_PARAM = "SELECT person_id, first_name, last_name FROM dmv.persons WHERE person_id = $1"
BATCH = [0.0]  # records per group-commit batch in the last session stage
CLIENTS = [8]  # concurrent sessions in the session stage (--clients)
CHECK = [False]  # --check: the session stage verifies every answer the clients got
DEFAULT_CATALOG = Path(tempfile.gettempdir()) / "gateway-hotpath-catalog.pickle"


# ---- canned bytes ---------------------------------------------------------------------------

def _client_bytes(mode: str, i: int) -> bytes:
    from gateway.wire import Bind, Describe, Execute, Parse, Query, Sync, encode

    pid = 1 + (i * 7919) % 100_000
    if mode == "simple":
        return encode(Query(SQL.format(pid=pid)))
    param = (str(pid).encode(),)
    if mode == "extended":
        return (encode(Parse("", SQL_PARAM, (20,))) + encode(Bind("", "", (0,), param, (0,)))
                + encode(Describe("P", "")) + encode(Execute("", 0)) + encode(Sync()))
    return encode(Bind("", "p1", (0,), param, (0,))) + encode(Execute("", 0)) + encode(Sync())


def _prepare_bytes() -> bytes:
    from gateway.wire import Describe, Parse, Sync, encode

    return encode(Parse("p1", SQL_PARAM, (20,))) + encode(Describe("S", "p1")) + encode(Sync())


def _backend_reply(mode: str) -> bytes:
    from gateway.wire import (
        BindComplete, CommandComplete, DataRow, FieldDescription, ParseComplete, ReadyForQuery, RowDescription,
        encode,
    )

    fields = (FieldDescription("person_id", 0, 0, 20, 8, -1, 0), FieldDescription("first_name", 0, 0, 25, -1, -1, 0),
              FieldDescription("last_name", 0, 0, 25, -1, -1, 0))
    row = encode(DataRow((b"4242", b"Maria", b"Lopez")))
    done = encode(CommandComplete("SELECT 1")) + encode(ReadyForQuery("I"))
    if mode == "simple":
        return encode(RowDescription(fields)) + row + done
    if mode == "extended":
        return encode(ParseComplete()) + encode(BindComplete()) + encode(RowDescription(fields)) + row + done
    return encode(BindComplete()) + row + done


def _prepare_reply() -> bytes:
    from gateway.wire import (
        FieldDescription, ParameterDescription, ParseComplete, ReadyForQuery, RowDescription, encode,
    )

    fields = (FieldDescription("person_id", 0, 0, 20, 8, -1, 0),)
    return (encode(ParseComplete()) + encode(ParameterDescription((20,))) + encode(RowDescription(fields))
            + encode(ReadyForQuery("I")))


# ---- the catalog, once from a real database -----------------------------------------------------

def load_or_fetch_catalog(path: Path) -> Any:
    if path.exists():
        return pickle.loads(path.read_bytes())
    from gateway.pgserver import PostgresServer
    from gateway.seed import seed

    with PostgresServer() as pg:
        dsn = pg.create_database("dmv")
        asyncio.run(seed(dsn, 200, 1))
        catalog = asyncio.run(fetch_catalog(dsn))
    path.write_bytes(pickle.dumps(catalog))
    return catalog


async def fetch_catalog(dsn: str) -> Any:
    """The catalog of the database at ``dsn``, as the gateway introspects it."""
    import asyncpg

    from gateway.catalog.introspect import load_catalog

    conn = await asyncpg.connect(dsn, server_settings={"search_path": "pg_catalog"})
    try:
        return await load_catalog(conn)
    finally:
        await conn.close()


# ---- fakes for the two sockets ----------------------------------------------------------------

class _Transport:
    def get_write_buffer_size(self) -> int:
        return 0


class _Writer:
    """The client socket: answers land here; a ReadyForQuery wakes the client for its next request."""

    def __init__(self) -> None:
        self.transport = _Transport()
        self.bytes = 0
        self.turn: asyncio.Future[None] | None = None
        self.kept: bytearray | None = bytearray() if CHECK[0] else None  # --check: every byte answered

    def write(self, data: bytes) -> None:
        self.bytes += len(data)
        if self.kept is not None:
            self.kept += data
        if b"Z\x00\x00\x00\x05" in data and self.turn is not None and not self.turn.done():
            self.turn.set_result(None)

    def close(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False


class _Channel:
    """The client: sends request ``i`` once the answer to ``i - 1`` is out (a closed-loop client)."""

    def __init__(self, requests: list[bytes], first: bytes = b"") -> None:
        from gateway.wire import FrontendParser

        self.parser = FrontendParser()
        self.parser.in_startup = False
        self.writer = _Writer()
        self.requests = requests
        self.first = first
        self.sent = 0
        self.loop = asyncio.get_running_loop()  # once: get_running_loop() is a getpid() call each time

    async def fill(self) -> None:
        from gateway.frontdoor.pg.session import SessionClosed

        loop = self.loop
        if self.writer.turn is not None:
            await self.writer.turn
        if self.first:
            data, self.first = self.first, b""
        elif self.sent < len(self.requests):
            data = self.requests[self.sent]
            self.sent += 1
        else:
            raise SessionClosed()
        self.writer.turn = loop.create_future()
        self.parser.feed(data)


class _Backend:
    """The backend socket: every write is answered on the next loop turn with the canned reply.

    It carries what the session reads of a real ``BackendConnection`` (``gateway/backend/wire_conn.py``):
    the statements it holds under the gateway's names, whose unnamed statement it holds, the startup
    settings applied. A new attribute there that the session reads belongs here too; the bench test
    (tests/test_bench_hotpath.py) runs every mode so that a missing one fails the suite, not a measurement.
    """

    alive = True
    status = "I"

    def __init__(self, replies: list[bytes]) -> None:
        from gateway.backend.prepared import PreparedSet

        self.prepared = PreparedSet()
        self.unnamed: object = None
        self.applied: dict[str, str] | None = {}
        self.transport = _Transport()
        self.replies = replies
        self.feed: Any = None
        self.sent = 0
        self.loop = asyncio.get_running_loop()

    def write(self, data: bytes) -> None:
        reply = self.replies[min(self.sent, len(self.replies) - 1)]
        self.sent += 1
        self.loop.call_soon(self.feed, reply)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


# ---- the gateway, without a database ------------------------------------------------------------

def make_gateway(catalog: Any, log_dir: Path) -> tuple[Any, Any]:
    from gateway.audit.file_sink import AuditLog
    from gateway.config import Settings
    from gateway.identity.requesters import load_requesters
    from gateway.pipeline import Gateway, SessionContext
    from gateway.policy.load import load_policy
    from gateway.policy.types import PurposeClaim

    settings = Settings(policy=str(ROOT / "policies/colorado-dmv.yaml"),
                        requesters=str(ROOT / "policies/requesters.example.yaml"),
                        audit_path=str(log_dir / "requests.jsonl"))
    audit = AuditLog(log_dir / "requests.jsonl", instance=settings.instance_name, sync=True, key=b"k" * 32)
    gw = Gateway(settings, load_policy(settings.policy), load_requesters(settings.requesters), audit)
    gw.set_catalog(catalog)
    gw.settle_heap()  # as Gateway.start() does
    entry = gw.requesters.lookup("dmv_clerk")
    assert entry is not None
    ctx = SessionContext(requester=entry.requester, claim=PurposeClaim(purpose="service_delivery"),
                         client_addr="127.0.0.1:5000", session_id="s-bench")
    return gw, ctx


# ---- stages -------------------------------------------------------------------------------------

async def run_stage(mode: str, stage: str, n: int, catalog: Any, log_dir: Path) -> float:
    """Run ``stage`` ``n`` times; CPU seconds (all threads) spent in the loop."""
    from gateway.frontdoor.pg.relay import EXEC, EXT, QUERY, SYNC, Pending, Relay
    from gateway.frontdoor.pg.session import PgSession, _params
    from gateway.wire import Bind, Parse, Query
    from gateway.wire.buffer import Reader

    gw, ctx = make_gateway(catalog, log_dir)
    await gw.audit.start()
    warm = [_client_bytes(mode, n + 1 + i) for i in range(50)]
    requests = [_client_bytes(mode, i) for i in range(n)]
    sql_of = (lambda i: SQL.format(pid=1 + (i * 7919) % 100_000)) if mode == "simple" else (lambda i: SQL_PARAM)
    base_plan = gw.plan(ctx, sql_of(0), () if mode == "simple" else (20,))
    reply = _backend_reply(mode)
    bind_body = Bind("", "p1", (0,), (b"4242",), (0,)).body()
    try:
        if stage == "session":
            return await _run_session(mode, gw, ctx, warm, requests, reply, CLIENTS[0])
        if stage == "plan" and mode == "prepared":
            return 0.0  # a prepared statement is planned at Parse, never per request
        chain = gw.audit._chain
        record = gw._request_record(ctx, base_plan, () if mode == "simple" else ("4242",), None)
        relay = Relay(lambda data: None, lambda data: None, lambda plan, rows, t0, state: None)
        t0 = time.process_time()
        if stage == "framing":
            from gateway.wire import FrontendParser

            parser = FrontendParser()
            parser.in_startup = False
            for data in requests:
                parser.feed(data)
                raw = parser.next_raw()
                while raw is not None:
                    t = raw[0]
                    if t == 81:
                        Query.decode(Reader(raw[1]))
                    elif t == 80:
                        Parse.decode(Reader(raw[1]))
                    elif t == 66:
                        Bind.decode(Reader(raw[1]))
                    raw = parser.next_raw()
        elif stage == "plan":
            for i in range(n):
                gw.plan(ctx, sql_of(i), () if mode == "simple" else (20,))
        elif stage == "record":
            for i in range(n):
                params = () if mode == "simple" else _params(Bind.decode(Reader(bind_body)), (20,))
                gw._request_record(ctx, base_plan, params, None)
        elif stage == "seal":
            for _ in range(n):
                chain.seal(record)
        elif stage == "relay":
            for _ in range(n):
                if mode == "simple":
                    relay.expect(Pending(QUERY, base_plan))
                else:
                    if mode == "extended":
                        relay.expect(Pending(EXT))
                    relay.expect(Pending(EXT))
                    if mode == "extended":
                        relay.expect(Pending(EXT))
                    relay.expect(Pending(EXEC, base_plan))
                    relay.expect(Pending(SYNC))
                relay.feed(reply)
        elif stage == "outcome":  # the outcome as the session queues it, and its share of a batch's record
            from gateway.audit.record import outcomes_record
            from gateway.audit.splice import plan_outcome

            batch: list[tuple[object, ...]] = []
            for _ in range(n):
                batch.append(plan_outcome(base_plan, 1, 0.123, None))
                if len(batch) == 8:  # a batch at 8 clients
                    chain.seal(outcomes_record(batch))
                    batch = []
        else:
            raise SystemExit(f"unknown stage {stage}")
        _ = PgSession  # imported for the session stage
        return time.process_time() - t0
    finally:
        await gw.audit.close()


async def _run_session(mode: str, gw: Any, ctx: Any, warm: list[bytes], requests: list[bytes], reply: bytes,
                       clients: int) -> float:
    from gateway.frontdoor.pg.session import PgSession, SessionClosed

    async def drive(batch: list[bytes]) -> None:
        first = _prepare_bytes() if mode == "prepared" else b""
        channel = _Channel(batch, first)
        backend = _Backend(([_prepare_reply()] if first else []) + [reply])
        session = PgSession(gw, channel, backend, ctx)
        backend.feed = session.relay.feed
        try:
            await session.run()
        except SessionClosed:
            pass
        if channel.writer.turn is not None:
            await channel.writer.turn
        if channel.writer.kept is not None:
            _check_answers(mode, bytes(channel.writer.kept), len(batch))

    await drive(warm)
    t0 = time.process_time()
    batches, records = gw.audit.batches, gw.audit.records
    await asyncio.gather(*(drive(requests[k::clients]) for k in range(clients)))
    spent = time.process_time() - t0
    BATCH[0] = (gw.audit.records - records) / max(1, gw.audit.batches - batches)
    return spent


def _check_answers(mode: str, data: bytes, requests: int) -> None:
    """--check: each request was answered with its row and ReadyForQuery, and nothing was refused (a bench
    whose fakes no longer fit the session would otherwise measure error paths without noticing)."""
    from gateway.wire import BackendParser, DataRow, ErrorResponse, ReadyForQuery

    parser = BackendParser()
    parser.feed(data)
    counts = {"rows": 0, "ready": 0}
    while (msg := parser.next_event()) is not None:
        if isinstance(msg, ErrorResponse):
            raise SystemExit(f"bench --check: {mode}: the session refused a request: {msg.message}")
        if isinstance(msg, DataRow):
            counts["rows"] += 1
        elif isinstance(msg, ReadyForQuery):
            counts["ready"] += 1
    expected = {"rows": requests, "ready": requests + (1 if mode == "prepared" else 0)}
    if counts != expected:
        raise SystemExit(f"bench --check: {mode}: answers {counts}, expected {expected}")


def quiet_logs() -> None:
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


def measure(mode: str, stage: str, n: int, catalog: Any) -> float:
    with tempfile.TemporaryDirectory(prefix="gateway-hotpath-") as tmp:
        loop = new_loop()
        try:
            return loop.run_until_complete(run_stage(mode, stage, n, catalog, Path(tmp)))
        finally:
            loop.close()


# ---- callgrind ----------------------------------------------------------------------------------

def callgrind_instructions(mode: str, stage: str, n: int, catalog_path: Path) -> int:
    with tempfile.TemporaryDirectory(prefix="gateway-callgrind-") as tmp:
        out = Path(tmp) / "cg.out"
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no",
               sys.executable, __file__, "--child", mode, stage, str(n), "--catalog", str(catalog_path),
               "--clients", str(CLIENTS[0])]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"valgrind failed: {done.stderr[-800:]}")
        text = out.read_text()
        total = re.search(r"^(?:summary|totals):\s*(\d+)", text, re.M)
        if not total:
            raise RuntimeError("no instruction total in the callgrind output")
        return int(total.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument("--requests", type=int, default=5000, help="requests per stage (default 5000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per stage; the fastest counts (default 3)")
    parser.add_argument("--callgrind", action="store_true", help="instructions per request under valgrind")
    parser.add_argument("--callgrind-requests", type=int, nargs=2, default=(200, 1200), metavar=("N1", "N2"),
                        help="the two loop counts whose difference gives instructions per request")
    parser.add_argument("--catalog", type=Path, default=DEFAULT_CATALOG,
                        help="the catalog pickle (made on first use from a throwaway PostgreSQL)")
    parser.add_argument("--clients", type=int, default=8,
                        help="concurrent sessions in the session stage; records share fdatasync batches (default 8)")
    parser.add_argument("--check", action="store_true",
                        help="verify every answer of the session stage (a row and ReadyForQuery each, no error)")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "STAGE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    CLIENTS[0] = args.clients
    CHECK[0] = args.check
    quiet_logs()
    catalog = load_or_fetch_catalog(args.catalog)
    if args.child:
        mode, stage, n = args.child
        measure(mode, stage, int(n), catalog)
        return 0
    if args.callgrind:
        if not shutil.which("valgrind"):
            print("needs valgrind (apt-get install valgrind)", file=sys.stderr)
            return 2
        n1, n2 = args.callgrind_requests
        print(f"| mode | {' | '.join(args.stages)} |  (instructions per request, callgrind, N={n1}..{n2})")
        print("|---|" + "---|" * len(args.stages))
        for mode in args.modes:
            cells = []
            for stage in args.stages:
                if stage == "plan" and mode == "prepared":
                    cells.append("-")
                    continue
                a = callgrind_instructions(mode, stage, n1, args.catalog)
                b = callgrind_instructions(mode, stage, n2, args.catalog)
                cells.append(f"{(b - a) / (n2 - n1):,.0f}")
                print(f"  {mode} {stage}: {cells[-1]}", file=sys.stderr, flush=True)
            print(f"| {mode} | {' | '.join(cells)} |", flush=True)
        return 0
    print(f"| mode | {' | '.join(args.stages)} |  (µs of CPU per request, best of {args.repeat}, "
          f"{args.requests} requests)")
    print("|---|" + "---|" * len(args.stages))
    for mode in args.modes:
        cells = []
        for stage in args.stages:
            if stage == "plan" and mode == "prepared":
                cells.append("-")
                continue
            best = min(measure(mode, stage, args.requests, catalog) for _ in range(args.repeat))
            cells.append(f"{best / args.requests * 1e6:.1f}")
        print(f"| {mode} | {' | '.join(cells)} |", flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
