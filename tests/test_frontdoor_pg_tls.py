"""TLS on the wire front door: sslmode=require, SCRAM-SHA-256-PLUS channel binding, plaintext refused."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from frontdoor_pg_support import WireGateway, start_gateway

psycopg = pytest.importorskip("psycopg")
asyncpg = pytest.importorskip("asyncpg")
pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI needed to make a test certificate")


@pytest.fixture(scope="module")
def tls_gw(dmv_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WireGateway]:
    folder = Path(tmp_path_factory.mktemp("tls"))
    cert, key = folder / "server.crt", folder / "server.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    yield from start_gateway(dmv_dsn, folder, GATEWAY_TLS_CERT=str(cert), GATEWAY_TLS_KEY=str(key),
                             GATEWAY_REQUIRE_TLS="true")


def _connect(gw: WireGateway, **kwargs: str):  # type: ignore[no-untyped-def]
    return psycopg.connect(host=gw.host, port=gw.port, user="dmv_clerk", password="dmv_clerk-demo-password",
                           dbname="dmv", **kwargs)


def test_tls_with_channel_binding(tls_gw: WireGateway) -> None:
    with _connect(tls_gw, sslmode="require", channel_binding="require") as conn:
        assert conn.pgconn.ssl_in_use
        assert conn.execute("SELECT count(*) FROM dmv.persons").fetchone()[0] > 0


def test_tls_without_channel_binding_and_verify_full(tls_gw: WireGateway) -> None:
    cert = tls_gw.audit_path.parent / "server.crt"
    with _connect(tls_gw, sslmode="verify-full", sslrootcert=str(cert), channel_binding="disable") as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_plaintext_refused_when_tls_required(tls_gw: WireGateway) -> None:
    with pytest.raises(psycopg.OperationalError, match="requires TLS"):
        _connect(tls_gw, sslmode="disable")


def test_asyncpg_over_tls(tls_gw: WireGateway) -> None:
    async def main() -> int:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = await asyncpg.connect(host=tls_gw.host, port=tls_gw.port, user="dmv_clerk", database="dmv",
                                     password="dmv_clerk-demo-password", ssl=ctx)
        try:
            return int(await conn.fetchval("SELECT $1::int * 2", 21))
        finally:
            await conn.close()

    assert asyncio.run(main()) == 42
