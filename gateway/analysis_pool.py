"""Cold analyses off the event loop: a few worker processes, each with its own analyzer.

    pool = AnalysisPool(workers=2, timeout=5.0)
    await pool.start()
    pool.load(catalog, policy, search_path, limits)   # on every catalog or policy swap
    fresh, _ = await pool.analyze(sql, profile)       # a plan.fresh.Fresh; refusals inside it
    await pool.stop()

A worker parses, qualifies, traces, decides and rewrites (``Analyzer.fresh``, pure); the caches stay
in the gateway process, so a shape-cache hit never crosses a pipe. Past its deadline a worker is
killed and replaced and the statement refused (54001); a worker that dies (the compiled parser can
overflow the C stack) is replaced the same way; the gateway process is never at risk. The catalog
and the policy reach a worker before its next job (pickled once per generation).
"""

from __future__ import annotations

import asyncio
import copy
import copyreg
import itertools
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
import types
from collections import deque
from multiprocessing.connection import Connection
from typing import Any

from gateway.errors import StatementTooComplex

log = logging.getLogger(__name__)


def _proxy(items: dict[Any, Any]) -> types.MappingProxyType[Any, Any]:
    return types.MappingProxyType(items)


# the policy holds read-only mapping views; they travel as the dicts they show
copyreg.pickle(types.MappingProxyType, lambda view: (_proxy, (dict(view),)))


_WARM_UP = "SELECT a.x, count(*) FROM (SELECT 1 AS x WHERE 2 > 1) a GROUP BY a.x ORDER BY 1"


def _worker_main(conn: Connection) -> None:
    """A worker: load catalogs, analyze statements, until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the gateway decides when its workers end
    try:
        os.nice(10)  # the event loop (every other client) comes first on a busy machine
    except OSError:
        pass
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a drain of the gateway needs them; EOF ends them
    from gateway.plan.cache import Analyzer
    from gateway.analyzer.classify import Classifier
    from gateway.policy.types import Profile

    analyzer: Any = None
    hasher: Any = None
    conn.send_bytes(b"ready")
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        kind, *rest = pickle.loads(data)
        if kind == "load":
            catalog, policy, search_path, limits, hasher = rest
            analyzer = Analyzer(catalog, Classifier(catalog, policy, search_path), search_path, cache_size=0,
                                limits=limits)
            analyzer.fresh(_WARM_UP, Profile("warm-up", None, (), "deny", no_data=True))  # first-use costs, now
            continue
        job, sql, profile, hash_sql = rest
        try:
            fresh = analyzer.fresh(sql, profile)
            hashed = None
            if hash_sql and hasher is not None:
                from gateway.pipeline import hashed_sent_sql

                hashed = (hasher.hash_sql(sql), hashed_sent_sql(hasher, fresh.analysis.statements))
            result: Any = (fresh, hashed)
        except BaseException as exc:  # noqa: BLE001 - report, never die silently
            result = exc if isinstance(exc, Exception) else RuntimeError(type(exc).__name__)
        try:
            conn.send_bytes(pickle.dumps((job, result), protocol=pickle.HIGHEST_PROTOCOL))
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            conn.send_bytes(pickle.dumps((job, RuntimeError(f"unpicklable result: {exc}"))))


class _Worker:
    """One worker: ``python -m gateway.analysis_pool FD`` on one end of a socket pair (a process of
    its own, never a fork of the gateway's threads and loop, and never a re-run of its ``__main__``)."""

    def __init__(self, ids: itertools.count) -> None:
        parent, child = socket.socketpair()
        self.id = next(ids)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway.analysis_pool", str(child.fileno())], pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL, close_fds=True, start_new_session=False)
        finally:
            child.close()
        self.conn = Connection(parent.detach())
        self.generation = -1  # catalog generation loaded
        self.ready = False
        self.job: tuple[int, asyncio.Future[Any]] | None = None
        self.dead = False
        self.fd = -1

    def kill(self) -> None:
        self.dead = True
        try:
            self.process.kill()
        except OSError:
            pass
        try:
            self.conn.close()
        except OSError:
            pass


class AnalysisPool:
    """``workers`` processes; ``timeout`` seconds per analysis, waiting for a free worker included."""

    def __init__(self, workers: int = 2, timeout: float = 5.0) -> None:
        self.size = max(1, workers)
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._jobs = itertools.count(1)
        self._workers: list[_Worker] = []
        self._idle: deque[_Worker] = deque()
        self._waiters: deque[asyncio.Future[_Worker]] = deque()
        self._payload = b""
        self._generation = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self.stats = {"analyses": 0, "timeouts": 0, "crashes": 0, "restarts": 0}

    # -- life cycle ----------------------------------------------------------------------------
    def spawn(self) -> None:
        """Start the worker processes and return at once (on the loop); :meth:`start` waits for them."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            for _ in range(self.size):
                self._spawn()

    async def start(self, ready_timeout: float = 60.0) -> None:
        """Start the workers (unless :meth:`spawn` did) and wait until each has started (imports take
        ~1 s on a busy machine)."""
        self.spawn()
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline and not all(w.ready for w in self._workers):
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self._closed = True
        for worker in self._workers:
            self._forget(worker)
            worker.kill()
        for worker in self._workers:
            await asyncio.get_running_loop().run_in_executor(None, _reap, worker.process)
        self._workers.clear()
        self._idle.clear()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(StatementTooComplex("gateway: the gateway is shutting down"))

    def load(self, catalog: Any, policy: Any, search_path: tuple[str, ...], limits: Any, hasher: Any = None) -> None:
        """The catalog, policy and limits every later analysis uses (sent to each worker when idle), and
        the request log's literal hasher (its literal sub-key only, never the chain key) for long
        statements' SQL."""
        if hasher is not None:
            hasher = copy.copy(hasher)
            hasher._sql_cache = {}  # noqa: SLF001 - the key, not the parent's cache, travels
        self._payload = pickle.dumps(("load", catalog, policy, search_path, limits, hasher),
                                     protocol=pickle.HIGHEST_PROTOCOL)
        self._generation += 1
        for worker in list(self._idle):  # waiting on their pipe: they read it at once
            self._send_catalog(worker)

    def _send_catalog(self, worker: _Worker) -> None:
        if worker.generation != self._generation and self._payload:
            try:
                worker.conn.send_bytes(self._payload)
                worker.generation = self._generation
            except OSError as exc:
                log.warning("analysis worker %d: cannot send it the catalog: %s", worker.id, exc)
                self._died(worker)

    @property
    def state(self) -> dict[str, int]:
        busy = sum(1 for w in self._workers if w.job is not None)
        return {"workers": len(self._workers), "busy": busy, "waiting": len(self._waiters), **self.stats}

    # -- analysis ------------------------------------------------------------------------------
    async def analyze(self, sql: str, profile: Any, *, hash_sql: bool = False) -> tuple[Any, Any]:
        """``(Fresh, hashed)`` from a worker: the fresh plan, and with ``hash_sql`` the received and sent
        SQL hashed for the request log (else None). Raises StatementTooComplex past the deadline or
        when its worker dies (the caller turns that into a refusal with a record)."""
        assert self._loop is not None, "the analysis pool is not started"
        deadline = time.monotonic() + self.timeout
        worker = await self._acquire(deadline)
        job = next(self._jobs)
        future: asyncio.Future[Any] = self._loop.create_future()
        worker.job = (job, future)
        try:
            if worker.generation != self._generation:
                worker.conn.send_bytes(self._payload)
                worker.generation = self._generation
            worker.conn.send_bytes(pickle.dumps(("analyze", job, sql, profile, hash_sql), protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:
            self._died(worker)
        self.stats["analyses"] += 1
        try:
            result = await asyncio.wait_for(future, max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            self.stats["timeouts"] += 1
            log.warning("analysis of a %d-character statement passed its %.1f s deadline: worker %d killed",
                        len(sql), self.timeout, worker.id)
            self._died(worker, crashed=False)
            raise StatementTooComplex(
                f"gateway: the statement took longer than {self.timeout:g} s to analyze and was refused "
                "(setting analysis_timeout_ms)", rule="limits.analysis_time") from None
        except asyncio.CancelledError:
            if worker.job is not None and worker.job[0] == job:  # the client went away: the work is wasted
                self._died(worker, crashed=False)
            raise
        if isinstance(result, Exception):
            raise result
        return result

    async def _acquire(self, deadline: float) -> _Worker:
        while self._idle:
            worker = self._idle.popleft()
            if not worker.dead:
                return worker
        assert self._loop is not None
        waiter: asyncio.Future[_Worker] = self._loop.create_future()
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(waiter, max(0.0, deadline - time.monotonic()))
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._release(waiter.result())  # handed over just as we gave up: pass it on
            if isinstance(exc, asyncio.TimeoutError):
                self.stats["timeouts"] += 1
                raise StatementTooComplex(
                    f"gateway: every analysis worker stayed busy for {self.timeout:g} s; the statement was "
                    "refused (settings analysis_workers, analysis_timeout_ms)", rule="limits.analysis_time") from None
            raise
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _release(self, worker: _Worker) -> None:
        if worker.dead or self._closed:
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(worker)
                return
        self._idle.append(worker)

    # -- workers -------------------------------------------------------------------------------
    def _spawn(self) -> None:
        assert self._loop is not None
        worker = _Worker(self._ids)
        self._workers.append(worker)
        worker.fd = worker.conn.fileno()
        self._loop.add_reader(worker.fd, self._readable, worker)
        # uvloop makes a watched fd non-blocking; messages are written to an idle worker that reads them
        # at once and read whole once readable, so blocking calls are what the framing needs
        os.set_blocking(worker.fd, True)

    def _readable(self, worker: _Worker) -> None:
        try:
            data = worker.conn.recv_bytes()
        except (EOFError, OSError) as exc:
            log.debug("analysis worker %d: %r", worker.id, exc)
            self._died(worker)
            return
        if not worker.ready:
            worker.ready = data == b"ready"
            self._send_catalog(worker)
            if not worker.dead:
                self._release(worker)
            return
        try:
            job, result = pickle.loads(data)
        except Exception as exc:  # noqa: BLE001 - a garbled answer is a dead worker
            log.warning("analysis worker %d sent an unreadable answer: %s", worker.id, exc)
            self._died(worker)
            return
        current = worker.job
        worker.job = None
        if current is not None and current[0] == job and not current[1].done():
            current[1].set_result(result)
        self._release(worker)

    def _forget(self, worker: _Worker) -> None:
        if self._loop is not None and not worker.conn.closed:
            try:
                self._loop.remove_reader(worker.fd)
            except (OSError, ValueError):
                pass

    def _died(self, worker: _Worker, *, crashed: bool = True) -> None:
        """End ``worker`` (killed or crashed), fail its job, start a replacement."""
        if worker.dead and worker not in self._workers:
            return
        self._forget(worker)
        worker.kill()
        if worker in self._workers:
            self._workers.remove(worker)
        if crashed:
            self.stats["crashes"] += 1
            code = worker.process.poll()
            log.error("analysis worker %d ended (exit code %s); its statement is refused and the worker replaced",
                      worker.id, code)
        current, worker.job = worker.job, None
        if current is not None and not current[1].done():
            current[1].set_exception(StatementTooComplex(
                "gateway: the analyzer could not process the statement (its worker process ended); "
                "the statement was refused", rule="limits.analysis_crash"))
        asyncio.get_running_loop().run_in_executor(None, worker.process.wait, 5)  # reap it
        if not self._closed:
            self.stats["restarts"] += 1
            self._spawn()


def _reap(process: subprocess.Popen[bytes]) -> None:
    try:
        process.wait(2)
    except subprocess.TimeoutExpired:
        pass


if __name__ == "__main__":
    _worker_main(Connection(int(sys.argv[1])))
