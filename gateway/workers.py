"""``gateway serve --workers N``: a supervisor process and N worker processes, one core each.

The supervisor binds the sockets and forks the workers; it serves nothing itself.

* **Sockets.** For each front door the supervisor binds N listening sockets on the same address
  with ``SO_REUSEPORT`` (the first resolves port 0), and worker k accepts on socket k only. The
  kernel spreads new connections over the N accept queues. The supervisor keeps every socket
  open, so a worker that dies loses no queued connection: they wait in its queue until the
  restarted worker accepts them. A port shared by workers that each bind it themselves would
  lose that queue, and with port 0 each worker would get a different port.
* **Workers** are forked before any thread or event loop exists. Worker k is the gateway as with one
  process, except for the following. It opens its share of the backend connections (``pool_size``
  and ``wire_pool_size`` are totals, divided over the workers, rounded up). Its request log is its own chain: the file
  ``<stem>.w<k><suffix>`` beside the configured path, written as instance ``<instance_name>.w<k>``
  (with the PostgreSQL sink, the same table with instance ``<instance_name>.w<k>``, the column that
  already separates chains). Its connection caps, login throttle and HTTP rate limit are counted in
  the run's shared file (:mod:`gateway.frontdoor.pg.shared`). A CancelRequest that lands on another worker
  is passed on over that worker's unix socket. /metrics asks every other worker over the same
  socket and lists every worker's series, labelled ``worker="wK"`` (:func:`merge_metrics`); the admin
  console's SHOW STATS is the worker's own, with ``gateway_worker`` (k) and ``gateway_workers`` (N).
* **Signals.** SIGHUP is passed to every worker, and each reloads. SIGTERM or SIGINT is passed to
  every worker, and each drains like a single gateway. The supervisor waits for them, then exits.
  A worker that dies is logged and restarted; one that keeps dying at start (three times within
  ten seconds) stops the whole gateway with exit status 1.

Shared across workers without this module: the bulk-access counters (SQLite beside the request
log), the subject-notice queue (an append-only file under ``flock``), certifications (each worker
rereads the requesters file and its side file). In the run's shared file too: the HTTP rate limit
per bearer token. Per worker: the shape caches and the analysis worker pool.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("gateway.workers")

_QUICK_DEATH = 10.0  # a worker that dies sooner than this after its start died "at start"
_QUICK_DEATHS = 3  # this many in a row: give up


@dataclass(frozen=True)
class WorkerSlot:
    """What worker ``index`` of ``count`` is given by the supervisor."""

    index: int
    count: int
    runtime: Path  # the run's folder: the shared door counts, the cancel sockets
    pg_sock: socket.socket | None = None
    http_sock: socket.socket | None = None

    @property
    def name(self) -> str:
        return f"w{self.index}"

    def cancel_socket(self, index: int) -> Path:
        return self.runtime / f"cancel.w{index}.sock"

    @property
    def peers(self) -> list[Path]:
        return [self.cancel_socket(i) for i in range(self.count) if i != self.index]

    @property
    def door_file(self) -> Path:
        from gateway.frontdoor.pg.shared import FILE_NAME

        return self.runtime / FILE_NAME


def chain_path(audit_path: str | Path, index: int) -> Path:
    """Worker ``index``'s request-log file: ``requests.jsonl`` -> ``requests.w0.jsonl`` beside it."""
    path = Path(audit_path)
    return path.with_name(f"{path.stem}.w{index}{path.suffix}")


def worker_settings(settings: Any, index: int) -> Any:
    """The settings worker ``index`` of ``settings.workers`` runs with: its own chain (file and
    instance name), and its share of the backend connections (the pool sizes are the gateway's
    totals, so N workers do not open N times as many connections to PostgreSQL)."""
    count = settings.workers
    wire_total = settings.wire_pool_size or max(20, settings.pool_size * 4)
    return settings.model_copy(update={
        "audit_path": str(chain_path(settings.audit_path, index)),
        "instance_name": f"{settings.instance_name}.w{index}",
        "pool_size": max(1, -(-settings.pool_size // count)),
        "wire_pool_size": max(2, -(-wire_total // count)),
        "workers": 1,
    })


def bind_group(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` listening sockets on ``host:port`` with SO_REUSEPORT (port 0: one port chosen for all)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            try:
                sock.bind((host, port))
            except OSError as exc:
                raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
            port = sock.getsockname()[1]
            sock.listen(1024)
            sock.setblocking(False)
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    return socks


def prepare_key(settings: Any) -> None:
    """Create the log key once, before the workers race to create it (they share it)."""
    from gateway.audit.keyfile import key_path_for, load_or_create_key

    key = Path(settings.audit_key) if settings.audit_key else key_path_for(Path(settings.audit_path))
    load_or_create_key(key)


class Supervisor:
    """Start, watch and stop the workers (see the module docstring). ``run`` returns the exit status."""

    def __init__(self, settings: Any, count: int, worker_main: Callable[[Any, WorkerSlot], int],
                 *, http: bool = True) -> None:
        self.settings = settings
        self.count = count
        self.worker_main = worker_main
        self.http = http
        self.children: dict[int, int] = {}  # pid -> worker index
        self.started: dict[int, float] = {}  # worker index -> when it was started
        self.quick_deaths: dict[int, int] = {}
        self.stopping = False
        self.deadline: float | None = None  # when workers still running are killed
        self.status = 0

    def run(self) -> int:
        from gateway.frontdoor.pg import shared

        settings = self.settings
        prepare_key(settings)
        Path(settings.audit_path).parent.mkdir(parents=True, exist_ok=True)
        self.runtime = Path(tempfile.mkdtemp(prefix="gateway-workers-"))
        shared.reset(self.runtime / shared.FILE_NAME)
        self.pg_socks = bind_group(*settings.pg_address, self.count)
        self.http_socks: list[socket.socket | None] = [None] * self.count
        if self.http:
            try:
                self.http_socks = list(bind_group(*settings.http_address, self.count))
            except BaseException:
                self._close_sockets()
                raise
        pg_port = self.pg_socks[0].getsockname()[1]
        log.info("supervisor %d: %d workers on the PostgreSQL wire protocol %s:%s%s", os.getpid(), self.count,
                 settings.pg_address[0], pg_port,
                 f" and HTTP {settings.http_address[0]}:{self.http_socks[0].getsockname()[1]}"  # type: ignore[union-attr]
                 if self.http_socks[0] is not None else "")
        watched = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD}
        signal.pthread_sigmask(signal.SIG_BLOCK, watched)
        try:
            for index in range(self.count):
                self._spawn(index)
            self._watch(watched)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, watched)
            self._close_sockets()
            shutil.rmtree(self.runtime, ignore_errors=True)
        return self.status

    def _close_sockets(self) -> None:
        for sock in [*getattr(self, "pg_socks", []), *getattr(self, "http_socks", [])]:
            if sock is not None:
                sock.close()

    def _slot(self, index: int) -> WorkerSlot:
        return WorkerSlot(index, self.count, self.runtime, self.pg_socks[index], self.http_socks[index])

    def _spawn(self, index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                signal.pthread_sigmask(signal.SIG_SETMASK, set())
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
                    signal.signal(sig, signal.SIG_DFL)
                for i, sock in enumerate([*self.pg_socks, *self.http_socks]):
                    if sock is not None and i % self.count != index:
                        sock.close()  # only this worker's own sockets
                code = self.worker_main(worker_settings(self.settings, index), self._slot(index))
            except BaseException:  # noqa: BLE001 - a worker must never return into the supervisor's code
                traceback.print_exc()
            finally:
                logging.shutdown()
                os._exit(code)
        self.children[pid] = index
        self.started[index] = time.monotonic()
        log.info("worker w%d started (pid %d)", index, pid)

    def _watch(self, watched: set[signal.Signals]) -> None:
        while self.children:
            deadline = self.deadline
            timeout = 1.0 if deadline is None else max(0.05, min(1.0, deadline - time.monotonic()))
            info = signal.sigtimedwait(watched, timeout)
            if info is not None:
                sig = info.si_signo
                if sig == signal.SIGHUP and not self.stopping:
                    log.info("SIGHUP: passed to %d workers (each reloads)", len(self.children))
                    self._signal_all(signal.SIGHUP)
                elif sig in (signal.SIGTERM, signal.SIGINT) and not self.stopping:
                    self._stop()
                    log.info("%s: stopping %d workers (each drains for up to %g s)", signal.Signals(sig).name,
                             len(self.children), self.settings.shutdown_timeout_ms / 1000)
                    self._signal_all(signal.SIGTERM)
            self._reap()
            if self.deadline is not None and time.monotonic() >= self.deadline and self.children:
                log.error("%d worker(s) still running after the drain: killed", len(self.children))
                self._signal_all(signal.SIGKILL)
                self.deadline = time.monotonic() + 5

    def _stop(self) -> None:
        """From now on no restart; the listening sockets close here too, so that once every worker has
        closed its own (they drain) a new client is refused, as with one process."""
        self.stopping = True
        self._close_sockets()
        self.deadline = time.monotonic() + self.settings.shutdown_timeout_ms / 1000 + 15

    def _signal_all(self, sig: signal.Signals) -> None:
        for pid in list(self.children):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid == 0:
                return
            index = self.children.pop(pid, None)
            if index is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            how = f"exit status {code}" if code >= 0 else f"signal {signal.Signals(-code).name}"
            if self.stopping:
                log.info("worker w%d (pid %d) stopped (%s)", index, pid, how)
                if code not in (0, -signal.SIGTERM):
                    self.status = 1
                continue
            quick = time.monotonic() - self.started.get(index, 0.0) < _QUICK_DEATH
            self.quick_deaths[index] = self.quick_deaths.get(index, 0) + 1 if quick else 0
            if self.quick_deaths[index] >= _QUICK_DEATHS:
                log.error("worker w%d (pid %d) died at start %d times in a row (%s): stopping the gateway",
                          index, pid, self.quick_deaths[index], how)
                self.status = 1
                self._stop()
                self._signal_all(signal.SIGTERM)
                continue
            log.error("worker w%d (pid %d) died (%s): restarting it", index, pid, how)
            if quick:
                time.sleep(0.5 * self.quick_deaths[index])
            self._spawn(index)


_OWN_FAMILIES = ("gateway_worker", "gateway_workers", "gateway_worker_up")  # written by merge_metrics itself


def merge_metrics(texts: dict[int, str | None], *, answered_by: int) -> str:
    """One /metrics page for every worker: each worker's series with a ``worker="wK"`` label (sum them
    in the query: ``sum without (worker) (...)``), each family's HELP and TYPE once, and unlabelled
    ``gateway_worker`` (the worker that answered) and ``gateway_workers``. A worker that did not answer
    (restarting) shows as ``gateway_worker_up{worker="wK"} 0``."""
    families: dict[str, tuple[list[str], list[str]]] = {}
    up: list[str] = []
    for index in sorted(texts):
        text = texts[index]
        up.append(f'gateway_worker_up{{worker="w{index}"}} {0 if text is None else 1}')
        family = ""
        for line in (text or "").splitlines():
            if line.startswith("# HELP ") or line.startswith("# TYPE "):
                family = line.split(" ", 3)[2]
                if family in _OWN_FAMILIES:
                    continue
                headers, _ = families.setdefault(family, ([], []))
                if line not in headers:
                    headers.append(line)
                continue
            if not line.strip() or line.startswith("#"):
                continue
            head, _, value = line.rpartition(" ")
            if family in _OWN_FAMILIES or not head:
                continue
            label = f'worker="w{index}"'
            head = head.replace("{", "{" + label + ",", 1) if "{" in head else f"{head}{{{label}}}"
            families.setdefault(family, ([], []))[1].append(f"{head} {value}")
    out: list[str] = []
    for family in sorted(families):
        headers, samples = families[family]
        out += headers + samples
    count = len(texts)
    out += ["# HELP gateway_worker the worker process that answered this scrape (gateway serve --workers N)",
            "# TYPE gateway_worker gauge", f"gateway_worker {answered_by}",
            "# HELP gateway_workers worker processes", "# TYPE gateway_workers gauge", f"gateway_workers {count}",
            "# HELP gateway_worker_up 1 if that worker answered for this page", "# TYPE gateway_worker_up gauge", *up]
    return "\n".join(out) + "\n"
