"""Files the package ships (the reference policy and the example requesters), found from any folder.

``gateway serve`` and ``gateway demo`` name ``policies/colorado-dmv.yaml`` by default. A path that
exists (absolute, or relative to the working folder) is used as it is; a default name that does not
exist there is the copy inside the installed package (``gateway/policies/``, a link to the project's
``policies/`` in a source tree). Anything else that cannot be found is a ConfigError that names the
file and every place looked.
"""

from __future__ import annotations

from pathlib import Path

from gateway.errors import ConfigError

SHIPPED = Path(__file__).resolve().parent / "policies"


def shipped_file(name: str) -> Path | None:
    """The packaged copy of ``policies/NAME`` (or ``NAME``), when the package ships one."""
    path = Path(name)
    if path.is_absolute() or (len(path.parts) == 2 and path.parts[0] != "policies") or len(path.parts) > 2:
        return None
    candidate = SHIPPED / path.name
    return candidate if candidate.is_file() else None


def locate(name: str, what: str = "file") -> str:
    """The path to read for ``name``; raises ConfigError naming where it looked."""
    path = Path(name).expanduser()
    looked = [path if path.is_absolute() else Path.cwd() / path]
    if looked[0].is_file():
        return str(path)
    shipped = shipped_file(name)
    if shipped is not None:
        return str(shipped)
    if not path.is_absolute():
        looked.append(SHIPPED / path.name)
    places = " and ".join(str(p) for p in looked)
    raise ConfigError(f"{what} {name} not found (looked at {places})")
