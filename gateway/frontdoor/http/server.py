"""``serve_http(gw, host, port)``: uvicorn in the current event loop, beside the wire front door.

The socket is bound here (so a port in use is a clear OSError, not uvicorn's ``sys.exit``); signals
stay with the caller (``gateway serve``), which stops the server by cancelling this coroutine.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import structlog
import uvicorn

from gateway.frontdoor.http.app import build_app

log = structlog.get_logger("gateway.http")


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the process that embeds it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv6 when ``host`` has a colon)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen for HTTP on {host}:{port}: {exc.strerror}") from None
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def serve_http(gw: Any, host: str, port: int, *, app: Any = None, sock: socket.socket | None = None,
                     started: asyncio.Event | None = None) -> None:
    """Serve the HTTP front door until cancelled (then shut down gracefully and re-raise)."""
    settings = gw.settings
    sock = sock or bind(host, port)
    config = uvicorn.Config(
        app or build_app(gw), lifespan="off", log_config=None, access_log=False, server_header=False,
        ssl_certfile=getattr(settings, "tls_cert", None) or None, ssl_keyfile=getattr(settings, "tls_key", None) or None,
        timeout_graceful_shutdown=5,
    )
    server = _EmbeddedServer(config)
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    bound = sock.getsockname()
    log.info("http_listening", address=f"{bound[0]}:{bound[1]}", tls=bool(getattr(settings, "tls_cert", None)))
    try:
        if started is not None:
            while not server.started and not task.done():
                await asyncio.sleep(0.01)
            started.set()
        await asyncio.shield(task)
    except asyncio.CancelledError:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await task
        raise
    finally:
        sock.close()
