"""The request log's writer alone: CPU per request of the event loop thread and of the writer thread.

    python bench/audit_writer.py --clients 8 --requests 20000          # durable (O_DSYNC), 8 sessions
    python bench/audit_writer.py --clients 1 --requests 5000 --no-sync  # records written, not fsync'ed
    python bench/audit_writer.py --clients 8 --waiter    # sessions told durable() directly, no futures

``--clients`` tasks on one event loop (uvloop when installed, as ``gateway serve``) each loop as the
wire door does: a ``request`` record built from a template (fresh id, time, hashed SQL), ``submit``,
wait until it is durable, then ``--work-us`` of Python on the loop (standing in for the relay and the
next request's plan, so the writer competes for the GIL as in a server), then the ``outcome`` record
``append_nowait``. A real file sink (``AuditLog``) in a temporary folder. Prints µs of CPU per request
(user + sys from ``/proc/self/task/*/stat``) for the loop thread and the writer thread, records per
write, and the time from ``submit`` to durable (p50/p99). The log is verified at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.audit.file_sink import AuditLog  # noqa: E402
from gateway.audit.canonical import json_pieces  # noqa: E402
from gateway.audit.record import prepared_request, request_template  # noqa: E402
from gateway.audit.splice import outcome_entry, request_shape, spliced_request  # noqa: E402
from gateway.audit.verify import verify_files  # noqa: E402
from gateway.policy.types import PurposeClaim  # noqa: E402

STATIC = dict(requester="dmv_clerk", agency="Colorado Department of Revenue, Division of Motor Vehicles",
              front_door="wire", client_addr="127.0.0.1:50412", tls=False, claim=PurposeClaim(purpose="service_delivery"),
              statement_kind="select",
              accesses=[{"column": f"dmv.persons.{c}", "tags": ["pii"], "usage": ["output"]}
                        for c in ("first_name", "last_name")] + [{"column": "dmv.persons.person_id", "tags": ["pii"],
                                                                   "usage": ["filter", "output"]}],
              decision="allow", reason="no classified column is read", rule="default", redacted=[], masked=[],
              statutory_request=False, statutory_exclusion="purpose service_delivery is not a statutory request",
              policy_digest="9f" * 32, requester_kind="staff", effective_purpose="service_delivery")
SQL = ("SELECT person_id, first_name, last_name FROM dmv.persons WHERE person_id = "
       "'h:3c5d0e9b1f2a4c6d8e0f1a2b3c4d5e6f'")


def thread_cpu() -> dict[int, tuple[int, int]]:
    out = {}
    for tid in os.listdir("/proc/self/task"):
        text = open(f"/proc/self/task/{tid}/stat").read()
        fields = text[text.rindex(")") + 2:].split()
        out[int(tid)] = (int(fields[11]), int(fields[12]))
    return out


def spin(micros: float) -> None:
    end = time.perf_counter() + micros / 1e6
    while time.perf_counter() < end:
        pass


async def run(args: argparse.Namespace, folder: Path) -> None:
    log = AuditLog(folder / "requests.jsonl", instance="bench", key=b"k" * 32, sync=not args.no_sync,
                   journal_bytes=args.journal_mb * 1024 * 1024)
    await log.start()
    template = request_template(**STATIC)
    waits: list[float] = []
    counter = [0]

    # as the gateway builds it: the SQL's text around its literal hash escaped once per shape
    pieces = json_pieces(SQL.split("'h:3c5d0e9b1f2a4c6d8e0f1a2b3c4d5e6f'"))
    shape = request_shape(template, pieces, pieces)
    hashed = ["h:3c5d0e9b1f2a4c6d8e0f1a2b3c4d5e6f"] * 2

    def record_for(rid: str) -> object:
        if args.prepared:
            return prepared_request(template, request_id=rid, sql_received=SQL, sql_sent=SQL, params=[],
                                    individuals=["person:h:0a1b2c3d4e5f60718293a4b5c6d7e8f9"])
        return spliced_request(shape, rid, "[]", '["person:h:0a1b2c3d4e5f60718293a4b5c6d7e8f9"]', hashed)

    class Session:
        """A callback-driven client as the wire door's hot path is: the log calls ``durable()`` on it
        (a DurableWaiter, no future per request), which does the work, queues the outcome and submits
        the next request."""

        def __init__(self, n: int) -> None:
            self.left = n
            self.done = asyncio.get_running_loop().create_future()
            self.rid = ""
            self.t0 = 0.0
            self.next()

        def next(self) -> None:
            if not self.left:
                self.done.set_result(None)
                return
            self.left -= 1
            counter[0] += 1
            self.rid = f"b{counter[0]:09d}"
            record = record_for(self.rid)
            self.t0 = time.perf_counter()
            log.submit(record, self)

        def durable(self) -> None:
            waits.append(time.perf_counter() - self.t0)
            spin(args.work_us)
            log.append_outcome(outcome_entry(self.rid, "ok", 1, 1, (time.perf_counter() - self.t0) * 1000, None))
            self.next()

        def failed(self, exc: BaseException) -> None:
            self.done.set_exception(exc)

    async def client(n: int) -> None:
        if args.waiter:
            await Session(n).done
            return
        for _ in range(n):
            counter[0] += 1
            rid = f"b{counter[0]:09d}"
            record = record_for(rid)
            t0 = time.perf_counter()
            await log.submit(record)
            waits.append(time.perf_counter() - t0)
            spin(args.work_us)
            log.append_outcome(outcome_entry(rid, "ok", 1, 1, (time.perf_counter() - t0) * 1000, None))
            await asyncio.sleep(0)

    await asyncio.gather(*(client(200) for _ in range(args.clients)))  # warm up
    waits.clear()
    batches0, records0 = log.batches, log.records
    before, wall = thread_cpu(), time.perf_counter()
    per = args.requests // args.clients
    await asyncio.gather(*(client(per) for _ in range(args.clients)))
    wall = time.perf_counter() - wall
    after = thread_cpu()
    n = per * args.clients
    batches, records = log.batches - batches0, log.records - records0
    await log.close()
    ticks = 1e6 / os.sysconf("SC_CLK_TCK")
    main = os.getpid()
    print(f"clients {args.clients} requests {n} sync {not args.no_sync} journal {args.journal_mb} MB waiter {args.waiter} work {args.work_us} µs: "
          f"{n / wall:.0f} req/s, {records / max(1, batches):.1f} records per write, "
          f"{batches / n:.2f} writes per request")
    total = 0.0
    for tid, (u, s) in after.items():
        u0, s0 = before.get(tid, (0, 0))
        du, ds = (u - u0) * ticks / n, (s - s0) * ticks / n
        if tid == main:
            du = max(0.0, du - args.work_us)  # the stand-in work is not the log's
            name = "loop (minus work)"
        else:
            name = f"thread {tid}"
        total += du + ds
        if du + ds >= 0.5:
            print(f"  {name:20s} user {du:6.1f} sys {ds:6.1f} µs/request")
    print(f"  total {total:.1f} µs/request")
    waits.sort()
    print(f"  submit -> durable p50 {waits[len(waits) // 2] * 1e3:.3f} ms, p99 {waits[int(len(waits) * 0.99)] * 1e3:.3f} ms")
    result = verify_files([folder], b"k" * 32)
    print(f"  verify: {'ok' if result.ok else 'FAILED'} ({result.records} records)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--work-us", type=float, default=100.0, help="Python on the loop per request (default 100)")
    parser.add_argument("--no-sync", action="store_true", help="write without O_DSYNC (not durable)")
    parser.add_argument("--journal-mb", type=int, default=8,
                        help="the durability journal's size (gateway/audit/journal.py; 0: append O_DSYNC; default 8)")
    parser.add_argument("--prepared", action="store_true",
                        help="request records as template + values rendered at seal (before the spliced records)")
    parser.add_argument("--waiter", action="store_true",
                        help="sessions as DurableWaiters (the wire door's hot path: no future per request)")
    args = parser.parse_args()
    try:
        import uvloop
        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = asyncio.new_event_loop
    with tempfile.TemporaryDirectory(prefix="audit-writer-") as tmp, asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(run(args, Path(tmp)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
