"""Start and stop the whole gateway (pipeline, wire front door, HTTP front door when present).

``serve.py`` and ``demo.py`` run it in the main thread. :class:`ThreadedGateway` runs the same thing on
its own event loop in a background thread (benchmarks, experiments). Client tests run ``gateway serve``
as a subprocess instead: libpq's blocking ``PQcancel`` holds the GIL while it waits for the gateway,
which would deadlock a gateway living in the same process.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.backend.pool import BackendPool
from gateway.backend.target import BackendTarget
from gateway.frontdoor.pg.door import DoorLimits, fit_file_descriptors
from gateway.frontdoor.pg.server import PgServer, make_ssl_context

log = logging.getLogger(__name__)

#: seconds the interpreter lets one thread hold the GIL while another waits for it (CPython's default
#: is 5 ms). The request log's writer thread gives the GIL up in each of its system calls (the wait
#: for work, the O_DSYNC write, the hand-back to the loop; some fifteen for the tip file's rewrite once
#: a second) and, while the event loop is busy without a pause, got it back only after that long
#: each time: a client pipelining 10,000 named Parses kept the loop busy for 0.1-0.4 s, and another
#: client's answer, held until its record is durable, waited 20-210 ms (strace: the writer's futex
#: waits timing out at 5.1 ms, one per system call). At 0.5 ms each hand-back is at most that; the CPU
#: per request under pgbench did not change measurably (serve_cpu.py, 8 clients).
GIL_SWITCH_INTERVAL = 0.0005


def share_the_gil() -> None:
    """Make the GIL change hands within :data:`GIL_SWITCH_INTERVAL` while threads wait for it (the
    whole process: the serving process has the loop, the request log's writer and little else)."""
    sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_INTERVAL))


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (it relays faster), else the default loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


@dataclass
class Services:
    gw: Any
    pg: PgServer
    pool: BackendPool
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    http_port: int | None = None


def find_http_server() -> Callable[..., Any] | None:
    """``gateway.frontdoor.http.serve_http`` if that front door is installed."""
    try:
        module = importlib.import_module("gateway.frontdoor.http")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("gateway.frontdoor.http"):
            return None
        raise
    return getattr(module, "serve_http", None)


async def start_services(settings: Any, gw: Any = None, *, http: bool = True, worker: Any = None) -> Services:
    """Start the pipeline and both front doors; raises on a configuration or backend problem.
    ``worker`` (a :class:`~gateway.workers.WorkerSlot`): serve on the sockets the supervisor bound."""
    from gateway.pipeline import Gateway

    share_the_gil()  # the request log's writer gets its turn while the loop is busy
    gw = gw or Gateway.from_settings(settings)
    await gw.start()
    target = BackendTarget.from_dsn(settings.backend_dsn)
    pool = BackendPool(target, gw.backend_startup_options, size=settings.wire_pool_size or max(20, settings.pool_size * 4),
                       acquire_timeout=settings.wire_pool_wait_ms / 1000, max_waiting=settings.wire_pool_queue,
                       max_prepared=settings.wire_max_prepared_statements)
    host, port = settings.pg_address
    limits = fit_file_descriptors(DoorLimits.from_settings(settings), pool.size + settings.pool_size
                                  + settings.analysis_workers)
    pg = PgServer(gw, pool, host=host, port=port, ssl_ctx=make_ssl_context(settings.tls_cert, settings.tls_key),
                  cert_file=settings.tls_cert, require_tls=settings.require_tls, limits=limits,
                  pool_mode=settings.pool_mode, worker=worker)
    try:
        await pg.start()
    except BaseException:
        await pool.close()
        await gw.stop()
        raise
    services = Services(gw, pg, pool)
    if hasattr(gw, "gauge_sources"):
        gw.gauge_sources.append(pg.gauges)
        if worker is not None:  # which worker answered (/metrics, SHOW STATS)
            gw.gauge_sources.append(lambda: {"gateway_worker": worker.index, "gateway_workers": worker.count})
    serve_http = find_http_server() if http else None
    if worker is not None and worker.http_sock is None:
        serve_http = None  # the supervisor found no HTTP front door to bind
    if serve_http is not None:
        http_host, http_port = settings.http_address
        sock = worker.http_sock if worker is not None else None
        if sock is not None:
            http_port = sock.getsockname()[1]
        services.http_port = http_port
        app = _shared_http_app(gw, settings, worker) if worker is not None else None
        task = asyncio.create_task(serve_http(gw, http_host, http_port, sock=sock, app=app))
        task.add_done_callback(_report_http_exit)
        services.tasks.append(task)
    return services


def _shared_http_app(gw: Any, settings: Any, worker: Any) -> Any:
    """The HTTP app of one of ``--workers N``: its rate limit per token counted over every worker."""
    from gateway.frontdoor.http.app import build_app
    from gateway.frontdoor.pg.shared import SharedRateLimiter

    from gateway.frontdoor.pg.server import peer_call
    from gateway.workers import merge_metrics

    app = build_app(gw)
    app.state.limiter = SharedRateLimiter(worker.door_file, rate=settings.http_rate_per_second,
                                          burst=settings.http_rate_burst)

    async def every_worker_metrics(own: str) -> str:
        others = await asyncio.gather(*(peer_call(worker.cancel_socket(i), b"M") for i in range(worker.count)
                                        if i != worker.index))
        texts: dict[int, str | None] = {worker.index: own}
        peers = [i for i in range(worker.count) if i != worker.index]
        texts.update({i: (t.decode() if t else None) for i, t in zip(peers, others)})
        return merge_metrics(texts, answered_by=worker.index)

    app.state.every_worker_metrics = every_worker_metrics
    return app


def _report_http_exit(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the HTTP front door stopped: %s", task.exception())


async def stop_services(services: Services, *, drain: float = 0.0) -> None:
    """Stop everything; with ``drain`` seconds, in-flight wire requests may finish first."""
    if drain > 0:
        await services.pg.drain(drain)
    await services.pg.stop()
    for task in services.tasks:
        task.cancel()
    if services.tasks:
        await asyncio.wait(services.tasks, timeout=5)
    await services.pool.close()
    await services.gw.stop()


class ThreadedGateway:
    """The gateway on a background thread: ``start()`` returns once it listens; ``stop()`` ends it."""

    def __init__(self, settings: Any, *, http: bool = False) -> None:
        self.settings = settings
        self.http = http
        self.services: Services | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None

    @property
    def port(self) -> int:
        assert self.services is not None
        return self.services.pg.port

    @property
    def gw(self) -> Any:
        assert self.services is not None
        return self.services.gw

    def start(self, timeout: float = 60.0) -> ThreadedGateway:
        self._thread = threading.Thread(target=self._main, name="gateway", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the gateway did not start in time")
        if self._error is not None:
            raise self._error
        return self

    def _main(self) -> None:
        loop = self.loop = new_event_loop()
        try:
            loop.run_until_complete(self._run())
        finally:
            loop.close()

    async def _run(self) -> None:
        self._stop = asyncio.Event()
        try:
            self.services = await start_services(self.settings, http=self.http)
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stop.wait()
        await stop_services(self.services)

    def call(self, coro: Any, timeout: float = 30.0) -> Any:
        """Run a coroutine on the gateway's loop and wait for its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None and self._thread is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(30)
