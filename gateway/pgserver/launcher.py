"""Start and stop a throwaway (or reusable) PostgreSQL on 127.0.0.1 with SCRAM-SHA-256.

>>> with PostgresServer() as pg:            # doctest: +SKIP
...     dsn = pg.create_database("dmv")
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

from gateway.pgserver.binaries import PgServerError, find_pg_bin
from gateway.pgserver.privileges import RunAs, make_traversable, server_user

log = logging.getLogger(__name__)

#: Written in the data folder so that a reused folder knows its superuser and password.
CREDENTIALS_FILE = "gateway-superuser.json"
_BIND_FAILURES = ("could not bind", "Address already in use", "could not create any TCP/IP sockets")
_START_ATTEMPTS = 5


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, then release)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class PostgresServer:
    """A PostgreSQL server owned by this process, listening on 127.0.0.1 only.

    ``data_dir=None`` makes a temporary cluster removed at :meth:`stop`; a given ``data_dir`` is
    initialised on first use and reused afterwards (its superuser and password are kept in
    ``gateway-superuser.json`` inside it). The port is chosen free at every start.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        superuser: str = "postgres",
        password: str | None = None,
        pg_bin: str | os.PathLike[str] | None = None,
        settings: dict[str, str] | None = None,
        timeout: float = 60.0,
    ) -> None:
        self._given_data_dir = Path(data_dir).resolve() if data_dir is not None else None
        self.superuser = superuser
        self.password = password or secrets.token_urlsafe(18)
        self._pg_bin = Path(pg_bin) if pg_bin is not None else None
        self._settings = {"max_connections": "200", **(settings or {})}
        self._timeout = timeout
        self._port: int | None = None
        self._runtime: Path | None = None
        self._temp_root: Path | None = None
        self._data: Path | None = None
        self._as = RunAs()

    # -- public API -----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise PgServerError("the PostgreSQL server is not running")
        return self._port

    @property
    def running(self) -> bool:
        return self._port is not None

    @property
    def data_dir(self) -> Path | None:
        return self._data

    @property
    def bin_dir(self) -> Path:
        return self._pg_bin or find_pg_bin()

    def dsn(self, dbname: str = "postgres") -> str:
        """``postgresql://USER:PASSWORD@127.0.0.1:PORT/DB`` for the superuser."""
        return (
            f"postgresql://{quote(self.superuser, safe='')}:{quote(self.password, safe='')}"
            f"@127.0.0.1:{self.port}/{quote(dbname, safe='')}"
        )

    def start(self) -> PostgresServer:
        """Initialise the cluster if needed and start the server; returns ``self``."""
        if self.running:
            return self
        began = time.monotonic()
        self._pg_bin = self.bin_dir
        self._as = server_user()
        self._prepare_dirs()
        assert self._data is not None
        if not (self._data / "PG_VERSION").exists():
            self._initdb()
        else:
            self._load_credentials()
        self._start_server()
        atexit.register(self.stop)
        log.info(
            "PostgreSQL (%s) ready on 127.0.0.1:%d in %.2fs, data in %s",
            self._pg_bin, self.port, time.monotonic() - began, self._data,
        )
        return self

    def stop(self) -> None:
        """Stop the server (``pg_ctl -m fast``) and remove a temporary cluster. Idempotent."""
        atexit.unregister(self.stop)
        if self._port is not None and self._data is not None:
            done = self._pg_ctl(["-D", str(self._data), "-m", "fast", "-w", "-t", "30", "stop"])
            if done.returncode != 0:
                log.warning("pg_ctl stop failed: %s", (done.stderr or done.stdout).strip())
            else:
                log.info("PostgreSQL on port %d stopped", self._port)
        self._port = None
        for path in (self._runtime, self._temp_root):
            if path is not None:
                shutil.rmtree(path, ignore_errors=True)
        self._runtime = None
        if self._temp_root is not None:
            self._temp_root = None
            self._data = None

    def create_database(self, name: str) -> str:
        """Create database ``name`` (owned by the superuser) and return its DSN."""
        self.execute(f"CREATE DATABASE {_quote_ident(name)}")
        log.info("created database %s", name)
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists, disconnecting its sessions."""
        self.execute(f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)")

    def execute(self, sql: str, dbname: str = "postgres") -> str:
        """Run ``sql`` with psql as the superuser; returns psql's output."""
        env = self._env()
        env["PGPASSWORD"] = self.password
        argv = [
            str(self.bin_dir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
            "-h", "127.0.0.1", "-p", str(self.port), "-U", self.superuser, "-d", dbname, "-c", sql,
        ]
        done = RunAs().run(argv, env=env, cwd=Path(tempfile.gettempdir()), timeout=self._timeout)
        if done.returncode != 0:
            raise PgServerError(f"psql failed ({sql.split()[0]}...): {done.stderr.strip()}")
        return done.stdout

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"127.0.0.1:{self._port}" if self._port else "stopped"
        return f"PostgresServer({where}, data={self._data})"

    # -- internals ------------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C", TZ="UTC")
        return env

    def _prepare_dirs(self) -> None:
        self._runtime = Path(tempfile.mkdtemp(prefix="gwpg-run-"))
        self._as.chown(self._runtime)
        if self._given_data_dir is None:
            self._temp_root = Path(tempfile.mkdtemp(prefix="gwpg-data-"))
            self._as.chown(self._temp_root)
            self._data = self._temp_root / "data"
        else:
            self._data = self._given_data_dir
        if not self._data.exists():
            self._data.mkdir(parents=True, mode=0o700)
        if not (self._data / "PG_VERSION").exists():  # new or empty folder: initdb runs as the server user
            self._data.chmod(0o700)
            self._as.chown(self._data)
        if self._as.uid is not None:
            make_traversable(self._runtime)
            make_traversable(self._data)
            make_traversable(self._pg_bin or self.bin_dir)

    def _initdb(self) -> None:
        assert self._data is not None and self._runtime is not None
        pwfile = self._runtime / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        self._as.chown(pwfile)
        log.info("initdb %s (superuser %s)", self._data, self.superuser)
        done = self._run(
            "initdb", ["-D", str(self._data), "-A", "scram-sha-256", f"--pwfile={pwfile}", "--no-sync",
                       "--no-instructions", "-U", self.superuser, "-E", "UTF8", "--locale=C"],
        )
        pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            raise PgServerError(f"initdb failed: {(done.stderr or done.stdout).strip()}")
        creds = self._data / CREDENTIALS_FILE
        creds.write_text(json.dumps({"superuser": self.superuser, "password": self.password}))
        creds.chmod(0o600)
        self._as.chown(creds)

    def _load_credentials(self) -> None:
        assert self._data is not None
        creds = self._data / CREDENTIALS_FILE
        if not creds.exists():
            raise PgServerError(f"{self._data} holds a cluster but no {CREDENTIALS_FILE}: cannot log in")
        values = json.loads(creds.read_text())
        self.superuser, self.password = values["superuser"], values["password"]
        log.info("reusing the cluster in %s", self._data)

    def _start_server(self) -> None:
        assert self._data is not None and self._runtime is not None
        logfile = self._runtime / "server.log"
        extra = " ".join(f"-c {k}={v}" for k, v in self._settings.items())
        last_error = ""
        for attempt in range(1, _START_ATTEMPTS + 1):
            port = free_port()
            opts = f"-h 127.0.0.1 -p {port} -k {self._runtime} -F {extra}"
            done = self._pg_ctl(["-D", str(self._data), "-l", str(logfile), "-o", opts,
                                 "-w", "-t", str(int(self._timeout)), "start"])
            if done.returncode == 0:
                self._port = port
                return
            tail = logfile.read_text(errors="replace")[-2000:] if logfile.exists() else ""
            last_error = (tail or done.stderr or done.stdout).strip()
            if not any(marker in last_error for marker in _BIND_FAILURES):
                break
            log.info("port %d was taken (attempt %d), retrying with another", port, attempt)
        raise PgServerError(f"PostgreSQL did not start: {last_error}")

    def _pg_ctl(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        return self._run("pg_ctl", args)

    def _run(self, program: str, args: list[str]) -> subprocess.CompletedProcess[str]:
        cwd = self._runtime if self._runtime is not None else Path("/")
        argv = [str(self.bin_dir / program), *args]
        return self._as.run(argv, env=self._env(), cwd=cwd, timeout=self._timeout + 10)
