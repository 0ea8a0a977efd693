"""Run PostgreSQL's programs as an unprivileged user when we are root (initdb refuses root)."""

from __future__ import annotations

import logging
import os
import pwd
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from gateway.pgserver.binaries import PgServerError

log = logging.getLogger(__name__)

#: The system user created when we run as root and no ``postgres`` user exists.
FALLBACK_USER = "gatewaypg"


@dataclass(frozen=True)
class RunAs:
    """Who runs initdb/pg_ctl: ``None`` ids mean "the current user"."""

    uid: int | None = None
    gid: int | None = None
    name: str | None = None

    def chown(self, path: Path) -> None:
        """Give ``path`` to the server user (no-op when not root)."""
        if self.uid is not None and self.gid is not None:
            os.chown(path, self.uid, self.gid)

    def run(self, argv: list[str], *, env: dict[str, str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` as this user, capturing its output."""
        kwargs: dict[str, object] = {}
        if self.uid is not None:
            kwargs = {"user": self.uid, "group": self.gid, "extra_groups": []}
        return subprocess.run(  # noqa: S603 - argv built by the launcher, no shell
            argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
        )


def server_user() -> RunAs:
    """The user to run the server as: ourselves, or (as root) ``postgres`` / ``gatewaypg``."""
    if os.geteuid() != 0:
        return RunAs()
    for name in ("postgres", FALLBACK_USER):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return RunAs(entry.pw_uid, entry.pw_gid, name)
    log.info("running as root: creating system user %s for PostgreSQL", FALLBACK_USER)
    done = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", FALLBACK_USER],
        capture_output=True, text=True, check=False,
    )
    if done.returncode not in (0, 9):  # 9: the user already exists (a concurrent launcher)
        raise PgServerError(f"cannot create system user {FALLBACK_USER}: {done.stderr.strip()}")
    entry = pwd.getpwnam(FALLBACK_USER)
    return RunAs(entry.pw_uid, entry.pw_gid, FALLBACK_USER)


def make_traversable(path: Path) -> None:
    """Add search permission for others on every parent of ``path`` that lacks it."""
    for parent in reversed(path.resolve().parents):
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            log.info("making %s traversable (o+x) for the PostgreSQL user", parent)
            os.chmod(parent, mode | stat.S_IXOTH)
