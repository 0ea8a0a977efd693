"""The memory bar (issue 8): RSS of every gateway process after many distinct statement texts, then
with many idle clients. Not a tps benchmark and not part of the test suite (a small run of it is:
tests/test_bench_memory.py).

    nice -n 10 python bench/memory.py                   # 100,000 texts, then 200 idle clients
    python bench/memory.py --texts 2000 --idle 20 --hold 2 --json

It starts its own PostgreSQL (small seed) and a real ``gateway serve`` (the default settings: one
serving process, its analysis workers, transaction pooling, durable request log), then

1. sends ``--texts`` distinct statement texts over ``--connections`` sessions, pipelined. Every text
   is new to the gateway, in five kinds (the ``--mix`` shares):

   * ``skeleton``: plain texts of a few shapes with new literals (the skeleton cache: no tokenizer);
   * ``token``: texts of a few shapes with new literals, not plain (a quoted identifier or a comment):
     the tokenizer and the shape cache, and the exact-text cache keeps each;
   * ``shape``: a new shape every second text (a new column alias): a cold analysis in a worker, a
     new shape entry; the second text of the shape (another literal) learns a skeleton;
   * ``unnamed``: extended protocol, unnamed Parse of a new shape each, Bind/Execute/Sync;
   * ``named``: extended protocol, a named statement of a new shape each, Bind/Execute/Close/Sync;

2. opens ``--idle`` more sessions, logs them in and leaves them idle for ``--hold`` seconds;
3. reports VmRSS and VmHWM (the peak) of each gateway process (the serving process and every
   descendant: analysis workers, ``--workers`` processes) at start, after the texts and with the idle
   clients, and the analysis cache gauges from /metrics. The bar: the serving process below
   ``--bar-mb`` (200) with the idle clients; the sum over all processes is printed beside it.

Every answer is checked: a text refused by the gateway (an ErrorResponse) counts as ``refused`` and is
listed by SQLSTATE; a bench whose texts are refused measures the refusal path, not the caches.
Extra settings for the gateway: ``--gateway-env NAME=VALUE`` (e.g. GATEWAY_ANALYSIS_CACHE_MB=32).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway import wire as w  # noqa: E402

KINDS = ("skeleton", "token", "shape", "unnamed", "named")
DEFAULT_MIX = (0.35, 0.25, 0.3, 0.07, 0.03)
READY = b"Z\x00\x00\x00\x05"


# ---- the texts ------------------------------------------------------------------------------------

def statement(kind: str, i: int) -> tuple[str, bytes]:
    """Text number ``i`` of ``kind`` and the wire bytes that send it (distinct for every ``i``)."""
    pid = 1 + i % 997
    if kind == "skeleton":
        sql = (f"SELECT person_id, first_name, last_name FROM dmv.persons WHERE person_id = {i}",
               f"SELECT zip, city FROM dmv.persons WHERE zip = '{i:07d}'",
               f"SELECT person_id FROM dmv.persons WHERE person_id > {i} ORDER BY person_id LIMIT 2")[i % 3]
        return sql, w.encode(w.Query(sql))
    if kind == "token":
        sql = (f'SELECT "person_id", first_name FROM dmv.persons WHERE person_id = {i}',
               f"SELECT person_id, city FROM dmv.persons /* run {i % 7} */ WHERE person_id = {i}")[i % 2]
        return sql, w.encode(w.Query(sql))
    if kind == "shape":  # each shape twice: a miss, then a shape hit that learns a skeleton
        sql = f"SELECT person_id AS p{i // 2}, last_name FROM dmv.persons WHERE person_id = {pid}"
        return sql, w.encode(w.Query(sql))
    sql = f"SELECT person_id AS x{i}, zip FROM dmv.persons WHERE person_id = $1"
    param = (str(pid).encode(),)
    if kind == "unnamed":
        return sql, (w.encode(w.Parse("", sql, (20,))) + w.encode(w.Bind("", "", (0,), param, (0,)))
                     + w.encode(w.Execute("", 0)) + w.encode(w.Sync()))
    name = f"s{i}"
    return sql, (w.encode(w.Parse(name, sql, (20,))) + w.encode(w.Bind("", name, (0,), param, (0,)))
                 + w.encode(w.Execute("", 0)) + w.encode(w.Close("S", name)) + w.encode(w.Sync()))


def plan_texts(total: int, mix: tuple[float, ...]) -> list[tuple[str, int]]:
    """(kind, i) for ``total`` texts in the shares of ``mix``, interleaved."""
    counts = [int(total * share) for share in mix]
    counts[0] += total - sum(counts)
    order: list[tuple[str, int]] = []
    made = [0] * len(KINDS)
    for n in range(total):
        # the kind furthest behind its share goes next: the kinds interleave evenly
        k = min(range(len(KINDS)), key=lambda j: (made[j] / counts[j]) if counts[j] else 2.0)
        order.append((KINDS[k], made[k]))
        made[k] += 1
    return order


# ---- a raw wire client ----------------------------------------------------------------------------

from soak import _login as login  # noqa: E402 - the same raw SCRAM login as the soak's clients


class Tally:
    def __init__(self) -> None:
        self.answered = 0
        self.refused: dict[str, int] = {}
        self.first_refusals: list[str] = []


async def send_texts(host: str, port: int, order: list[tuple[str, int]], tally: Tally, depth: int) -> None:
    """One session: the texts of ``order`` in pipelined groups of ``depth``; every answer read."""
    reader, writer = await login(host, port)
    parser = w.BackendParser()
    try:
        for start in range(0, len(order), depth):
            group = order[start:start + depth]
            writer.write(b"".join(statement(kind, i)[1] for kind, i in group))
            ready = 0
            while ready < len(group):
                msg = parser.next_event()
                if msg is None:
                    data = await reader.read(1 << 16)
                    if not data:
                        raise ConnectionError("the gateway closed the session")
                    parser.feed(data)
                    continue
                if isinstance(msg, w.ReadyForQuery):
                    ready += 1
                elif isinstance(msg, w.ErrorResponse):
                    code = msg.sqlstate or "?"
                    tally.refused[code] = tally.refused.get(code, 0) + 1
                    if len(tally.first_refusals) < 5:
                        kind, i = group[min(ready, len(group) - 1)]
                        tally.first_refusals.append(f"{code} {msg.message} <- {statement(kind, i)[0][:100]}")
                elif isinstance(msg, w.CommandComplete):
                    tally.answered += 1
        writer.write(w.encode(w.Terminate()))
    finally:
        writer.close()


# ---- the gateway's processes ----------------------------------------------------------------------

def _status(pid: int) -> dict[str, int]:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def family(root: int) -> list[int]:
    """``root`` and all its descendants (from /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _role(pid: int, root: int) -> str:
    if pid == root:
        return "serve"
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "gone"
    return "analysis worker" if "analysis_pool" in cmd else "child"


def snapshot(root: int) -> list[dict[str, object]]:
    rows = []
    for pid in family(root):
        status = _status(pid)
        if status:
            rows.append({"pid": pid, "role": _role(pid, root), "rss_kb": status.get("VmRSS", 0),
                         "hwm_kb": status.get("VmHWM", 0)})
    return rows


def cache_gauges(http_port: int) -> dict[str, float]:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=10).read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        if line.startswith(("gateway_analysis_cache_", "gateway_analysis_workers_", "gateway_backend_pool")):
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                pass
    return out


# ---- the run --------------------------------------------------------------------------------------

def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway serve exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gateway serve did not listen within {seconds} s:\n{log.read_text()[-3000:]}")


async def drive(args: argparse.Namespace, pg_port: int, http_port: int, pid: int) -> dict[str, object]:
    phases: dict[str, object] = {"start": snapshot(pid)}
    order = plan_texts(args.texts, tuple(args.mix))
    tally = Tally()
    t0 = time.monotonic()
    n = args.connections
    curve: list[dict[str, object]] = []  # the serving process's RSS as the texts go in

    async def sample() -> None:
        while True:
            serve = _status(pid)
            curve.append({"texts": tally.answered + sum(tally.refused.values()),
                          "seconds": round(time.monotonic() - t0, 1),
                          "rss_kb": serve.get("VmRSS", 0), "hwm_kb": serve.get("VmHWM", 0)})
            await asyncio.sleep(args.sample_seconds)

    sampler = asyncio.create_task(sample())
    try:
        await asyncio.gather(*(send_texts("127.0.0.1", pg_port, order[k::n], tally, args.depth)
                               for k in range(n)))
    finally:
        sampler.cancel()
    texts_seconds = time.monotonic() - t0
    serve = _status(pid)
    curve.append({"texts": tally.answered + sum(tally.refused.values()), "seconds": round(texts_seconds, 1),
                  "rss_kb": serve.get("VmRSS", 0), "hwm_kb": serve.get("VmHWM", 0)})
    phases["after_texts"] = snapshot(pid)
    gauges_texts = cache_gauges(http_port)
    idle = []
    for k in range(0, args.idle, 20):  # logins in groups: SCRAM costs the gateway a few ms each
        idle += await asyncio.gather(*(login("127.0.0.1", pg_port) for _ in range(min(20, args.idle - k))))
    peak: list[dict[str, object]] = []
    t_end = time.monotonic() + args.hold
    while True:
        snap = snapshot(pid)
        if not peak or sum(int(r["rss_kb"]) for r in snap) > sum(int(r["rss_kb"]) for r in peak):  # type: ignore[call-overload]
            peak = snap
        if time.monotonic() >= t_end:
            break
        await asyncio.sleep(min(1.0, args.hold))
    phases["idle_clients"] = snapshot(pid)
    phases["idle_peak"] = peak
    alive = sum(1 for _, wr in idle if not wr.is_closing())
    for _, writer in idle:
        writer.write(w.encode(w.Terminate()))
        writer.close()
    return {"texts": args.texts, "mix": dict(zip(KINDS, args.mix)), "connections": n, "depth": args.depth,
            "texts_seconds": round(texts_seconds, 1), "answered": tally.answered, "refused": tally.refused,
            "first_refusals": tally.first_refusals, "idle_clients": args.idle, "idle_alive": alive,
            "cache_after_texts": gauges_texts, "cache_at_end": cache_gauges(http_port), "phases": phases,
            "curve": curve}


def report(result: dict[str, object], bar_mb: float) -> str:
    lines = [f"texts: {result['texts']} ({', '.join(f'{k} {v:.0%}' for k, v in result['mix'].items())}) "  # type: ignore[attr-defined]
             f"in {result['texts_seconds']} s over {result['connections']} sessions; answered {result['answered']}, "
             f"refused {result['refused'] or 'none'}; idle clients {result['idle_alive']}/{result['idle_clients']}",
             "", "| phase | process | pid | VmRSS MB | VmHWM MB |", "|---|---|---|---|---|"]
    phases = result["phases"]
    for phase, rows in phases.items():  # type: ignore[attr-defined]
        for row in rows:
            lines.append(f"| {phase} | {row['role']} | {row['pid']} | {row['rss_kb'] / 1024:.1f} | "
                         f"{row['hwm_kb'] / 1024:.1f} |")
        lines.append(f"| {phase} | **all** | | {sum(r['rss_kb'] for r in rows) / 1024:.1f} | "
                     f"{sum(r['hwm_kb'] for r in rows) / 1024:.1f} |")
    curve = result.get("curve") or []
    if curve:
        # about ten points of the curve: texts answered -> the serving process's RSS and peak
        step = max(1, len(curve) // 10)  # type: ignore[arg-type]
        points = curve[::step] + ([curve[-1]] if (len(curve) - 1) % step else [])  # type: ignore[index]
        lines += ["", "| texts | seconds | serve VmRSS MB | serve VmHWM MB |", "|---|---|---|---|"]
        lines += [f"| {p['texts']:,} | {p['seconds']} | {p['rss_kb'] / 1024:.1f} | {p['hwm_kb'] / 1024:.1f} |"
                  for p in points]
    serve = [r for r in phases["idle_clients"] if r["role"] == "serve"]  # type: ignore[index]
    rss = serve[0]["rss_kb"] / 1024 if serve else float("nan")
    hwm = serve[0]["hwm_kb"] / 1024 if serve else float("nan")
    verdict = "met" if rss < bar_mb and hwm < bar_mb else "MISSED"
    lines += ["", f"bar: serving process < {bar_mb:.0f} MB with the idle clients: VmRSS {rss:.1f} MB, "
              f"peak {hwm:.1f} MB: {verdict}",
              "caches after the texts: " + json.dumps({k.replace("gateway_analysis_cache_", ""): v for k, v in
                                                        result["cache_after_texts"].items()  # type: ignore[attr-defined]
                                                        if k.startswith("gateway_analysis_cache_")})]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, default=100_000, help="distinct statement texts (default 100000)")
    ap.add_argument("--mix", type=float, nargs=5, default=DEFAULT_MIX, metavar=KINDS,
                    help=f"shares of {', '.join(KINDS)} (default {' '.join(map(str, DEFAULT_MIX))})")
    ap.add_argument("--connections", type=int, default=8, help="sessions sending the texts (default 8)")
    ap.add_argument("--depth", type=int, default=32, help="texts pipelined per write (default 32)")
    ap.add_argument("--idle", type=int, default=200, help="idle clients held afterwards (default 200)")
    ap.add_argument("--hold", type=float, default=10.0, help="seconds the idle clients are held (default 10)")
    ap.add_argument("--persons", type=int, default=2000)
    ap.add_argument("--bar-mb", type=float, default=200.0)
    ap.add_argument("--gateway-env", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--sample-seconds", type=float, default=5.0,
                    help="the serving process's RSS is sampled this often while the texts go in (default 5)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = ap.parse_args()
    if abs(sum(args.mix) - 1.0) > 1e-6:
        ap.error("--mix shares must add up to 1")

    from gateway.pgserver import PostgresServer, free_port
    from gateway.seed import seed

    work = Path(tempfile.mkdtemp(prefix="gateway-memory-"))
    server = PostgresServer().start()
    proc = None
    try:
        dsn = server.create_database("dmv_memory")
        asyncio.run(seed(dsn, args.persons, 3))
        pg_port, http_port = free_port(), free_port()
        env = dict(os.environ, GATEWAY_BACKEND_DSN=dsn, GATEWAY_PG_LISTEN=f"127.0.0.1:{pg_port}",
                   GATEWAY_HTTP_LISTEN=f"127.0.0.1:{http_port}",
                   GATEWAY_POLICY=str(ROOT / "policies/colorado-dmv.yaml"),
                   GATEWAY_REQUESTERS=str(ROOT / "policies/requesters.example.yaml"),
                   GATEWAY_AUDIT_PATH=str(work / "requests.jsonl"),
                   GATEWAY_ANALYSIS_TIMEOUT_MS="120000",  # a loaded machine: cold analyses refused would not be cached
                   GATEWAY_MAX_CONNECTIONS_PER_ADDRESS=str(args.idle + args.connections + 50),
                   GATEWAY_MAX_CONNECTIONS_PER_REQUESTER=str(args.idle + args.connections + 50))
        for item in args.gateway_env:
            name, _, value = item.partition("=")
            env[name] = value
        log_path = work / "gateway.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve"], cwd=ROOT, env=env, stdout=log,
                                    stderr=subprocess.STDOUT)
            wait_port(pg_port, proc, log_path)
            time.sleep(1.0)  # the analysis workers up
            result = asyncio.run(drive(args, pg_port, http_port, proc.pid))
            result["gateway_alive_at_end"] = proc.poll() is None
            proc.send_signal(signal.SIGTERM)
            result["exit_code"] = proc.wait(60)
        print(report(result, args.bar_mb))
        if args.json:
            print(json.dumps(result))
        return 0 if result["gateway_alive_at_end"] else 1
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
