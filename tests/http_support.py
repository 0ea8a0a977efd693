"""Helpers for the HTTP front door tests: a real Gateway on the seeded database, driven either in
one event loop (``asyncio.Runner``) with httpx's ASGI transport, or served by uvicorn on a free port
in a background thread (for schemathesis and chromium)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from pathlib import Path
from typing import Any

import httpx

from gateway.config import Settings
from gateway.audit.record import per_request
from gateway.frontdoor.http import build_app
from gateway.frontdoor.http.server import bind, serve_http
from gateway.pipeline import Gateway

ROOT = Path(__file__).resolve().parent.parent
POLICY = str(ROOT / "policies" / "colorado-dmv.yaml")
REQUESTERS = str(ROOT / "policies" / "requesters.example.yaml")


def token(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {name}-demo-token"}


def make_gateway(dsn: str, audit_path: Path, **settings: Any) -> Gateway:
    return Gateway.from_settings(Settings(backend_dsn=dsn, audit_path=str(audit_path), policy=POLICY,
                                          requesters=REQUESTERS, **settings))


def log_records(audit_path: Path) -> list[dict[str, Any]]:
    """The log's records in order, a batch's ``outcomes`` record read as its per-request ``outcome`` records."""
    out = []
    for path in sorted(audit_path.parent.glob("*.jsonl")):
        out += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return list(per_request(out))


class Client:
    """Calls the app in the runner's loop (where the gateway's pool and log writer live)."""

    def __init__(self, runner: asyncio.Runner, app: Any) -> None:
        self.runner = runner
        self.app = app

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, client=("127.0.0.1", 50000))
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                return await client.request(method, url, **kwargs)

        return self.runner.run(go())

    def query(self, requester: str | None, body: Any, **kwargs: Any) -> httpx.Response:
        headers = token(requester) if requester else {}
        return self.request("POST", "/v1/query", json=body, headers=headers, **kwargs)

    def get(self, url: str, requester: str | None = None, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, headers=token(requester) if requester else {}, **kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    """A gateway and its HTTP front door served by uvicorn on 127.0.0.1:PORT in a background thread."""

    def __init__(self, dsn: str, audit_path: Path, **app_options: Any) -> None:
        self.dsn, self.audit_path, self.app_options = dsn, audit_path, app_options
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.task: asyncio.Task[None] | None = None
        self.sock = bind("127.0.0.1", 0)
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())

    async def _main(self) -> None:
        gw = make_gateway(self.dsn, self.audit_path)
        try:
            await gw.start()
            started = asyncio.Event()
            self.task = asyncio.ensure_future(serve_http(gw, "127.0.0.1", self.port, sock=self.sock, started=started,
                                                         app=build_app(gw, **self.app_options)))
            await started.wait()
            self.ready.set()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            self.error = exc
            self.ready.set()
        finally:
            await gw.stop()

    def __enter__(self) -> ServerThread:
        self.thread.start()
        self.ready.wait(60)
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *exc: object) -> None:
        if self.task is not None:
            self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(30)
