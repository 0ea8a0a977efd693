"""``gateway serve``: run both front doors until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

HELP = "run the gateway (PostgreSQL wire protocol and HTTP front doors)"
DESCRIPTION = (
    "Serve requesters on the PostgreSQL wire protocol (GATEWAY_PG_LISTEN, default 127.0.0.1:6432) and, "
    "when installed, the HTTP API (GATEWAY_HTTP_LISTEN). Settings come from --config and GATEWAY_* "
    "environment variables; GATEWAY_BACKEND_DSN is required."
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, help="YAML settings file (env GATEWAY_* overrides it)")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="serving processes, one core each, under a supervisor (setting workers, env "
                             "GATEWAY_WORKERS; default 1: one process). Each worker writes its own request-log "
                             "chain (requests.w0.jsonl, ...); gateway audit verify reads them all")


async def serve(settings: object, *, announce: bool = True, on_ready: Callable[[Any], None] | None = None,
                worker: Any = None) -> None:
    """Run until SIGINT/SIGTERM; everything started is stopped before returning. ``worker``: this is
    one of ``--workers N`` (a :class:`~gateway.workers.WorkerSlot`), serving the supervisor's sockets."""
    from gateway.frontdoor.pg.runner import start_services, stop_services

    services = await start_services(settings, worker=worker)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    log = logging.getLogger("gateway.serve")
    reloads: set[asyncio.Task[Any]] = set()

    def reload() -> None:  # SIGHUP: policy and requesters, atomically (a broken file keeps the old ones)
        log.info("SIGHUP: reloading %s and %s", settings.policy, settings.requesters)  # type: ignore[attr-defined]
        task = loop.create_task(services.gw.reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    for sig, handler in ((signal.SIGINT, stop.set), (signal.SIGTERM, stop.set), (signal.SIGHUP, reload)):
        try:
            loop.add_signal_handler(sig, handler)
        except (NotImplementedError, RuntimeError):
            pass
    if announce and worker is not None:
        log.info("worker %s (pid %d) serving; request log chain %s", worker.name, os.getpid(),
                 settings.audit_dsn and f"instance {settings.instance_name} in {settings.audit_table}"  # type: ignore[attr-defined]
                 or settings.audit_path)  # type: ignore[attr-defined]
    elif announce:
        pg = services.pg
        log.info("PostgreSQL wire protocol on %s:%s%s", pg.host, pg.port, " (TLS available)" if pg.ssl_ctx else "")
        if services.http_port is not None:
            log.info("HTTP API on %s", settings.http_listen)  # type: ignore[attr-defined]
        else:
            log.info("HTTP front door not installed; serving the wire protocol only")
        examples = services.gw.requesters.example_credentials_in_use()
        if examples:
            log.warning("running with the documented EXAMPLE credentials of %s: replace them before real use",
                        ", ".join(examples))
    if on_ready is not None:
        on_ready(services)
    try:
        await stop.wait()
    finally:
        drain = settings.shutdown_timeout_ms / 1000  # type: ignore[attr-defined]
        log.info("stopping: no new connections; in-flight requests may finish for %g s", drain)
        await stop_services(services, drain=drain)


def refuse_unlawful_policy(settings: Any) -> None:
    """Raise ConfigError naming every problem when the policy or requesters break the law (SB21-131)."""
    from gateway.errors import ConfigError
    from gateway.identity.requesters import load_requesters
    from gateway.policy.lawcheck import law_problems
    from gateway.policy.load import load_policy
    from gateway.shipped import locate

    result = law_problems(load_policy(locate(settings.policy, "policy file")),
                          load_requesters(locate(settings.requesters, "requesters file")))
    if result.problems:
        lines = "\n  ".join(result.problems)
        raise ConfigError(f"refusing to start: the policy breaks the law ({len(result.problems)} problem(s); "
                          f"see gateway check-policy):\n  {lines}")


def run(args: argparse.Namespace) -> int:
    from gateway.config import load_settings
    from gateway.errors import ConfigError, GatewayError
    from gateway.frontdoor.pg.runner import new_event_loop

    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(args.config)
        if not settings.backend_dsn:
            raise ConfigError("no backend database: set GATEWAY_BACKEND_DSN (or backend_dsn in --config)")
        if args.workers is not None:
            if not 1 <= args.workers <= 256:
                raise ConfigError(f"--workers must be from 1 to 256 (got {args.workers})")
            settings = settings.model_copy(update={"workers": args.workers})
        refuse_unlawful_policy(settings)
        if settings.workers > 1:
            return _supervise(settings)
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            runner.run(serve(settings))
    except (ConfigError, GatewayError, OSError) as exc:
        print(f"gateway serve: {exc}", file=sys.stderr)
        return 1
    return 0


def _supervise(settings: Any) -> int:
    """``--workers N``: the supervisor (see :mod:`gateway.workers`)."""
    from gateway.frontdoor.pg.runner import find_http_server
    from gateway.workers import Supervisor

    return Supervisor(settings, settings.workers, _worker_main, http=find_http_server() is not None).run()


def _worker_main(settings: Any, worker: Any) -> int:
    """One worker process (forked by the supervisor): the gateway on the supervisor's sockets."""
    from gateway.errors import ConfigError, GatewayError
    from gateway.frontdoor.pg.runner import new_event_loop

    prefix = f"%(asctime)s %(levelname)s [{worker.name}] %(name)s: %(message)s"
    for handler in logging.getLogger().handlers:
        handler.setFormatter(logging.Formatter(prefix))
    try:  # structlog lines (pipeline, request log) say the worker too
        import structlog

        structlog.contextvars.bind_contextvars(worker=worker.name)
    except ImportError:
        pass
    try:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            runner.run(serve(settings, worker=worker))
    except (ConfigError, GatewayError, OSError) as exc:
        print(f"gateway serve: worker {worker.name}: {exc}", file=sys.stderr)
        return 1
    return 0
