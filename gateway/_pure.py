"""Which modules of the hot path are compiled (mypyc, see ``setup.py``), and forcing their sources.

With ``GATEWAY_PURE_PYTHON=1`` in the environment, the modules of :data:`COMPILED` are imported from
their ``.py`` sources even where a compiled extension sits beside them: the fallback the project
ships is exercised by the test suite, and a suspected compiler problem can be ruled out in place.
A source edited after the build (its hash no longer the one ``setup.py`` recorded in
``_hotpath_sources.txt``) is imported as source too, so a stale extension never shadows new code; and
then every module of the list is (one build, all or nothing: the compiled message classes cannot be
subclassed by interpreted ones, and a compiled module would see another's compiled classes, not the
edited source's).
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from types import ModuleType

#: The compiled hot path, as module names (setup.py lists the same files).
COMPILED = (
    "gateway.wire.framing",
    "gateway.wire.buffer",
    "gateway.wire.encode",
    "gateway.wire.message",
    "gateway.wire.auth",
    "gateway.wire.frontend",
    "gateway.wire.backend",
    "gateway.audit.canonical",
    "gateway.frontdoor.pg.relay",
    "gateway.backend.prepared",
    "gateway.backend.wire_conn",
    "gateway.backend.pool",
    "gateway.plan.hot",
    "gateway.plan.hit",
    "gateway.audit.splice",
    "gateway.audit.requests",
    "gateway.frontdoor.pg.steady",
    "gateway.wire.parser",
    "gateway.frontdoor.pg.hold",
    "gateway.frontdoor.pg.channel",
)


def pure_forced() -> bool:
    return os.environ.get("GATEWAY_PURE_PYTHON", "").lower() in ("1", "true", "yes")


def _built_hashes() -> dict[str, str]:
    try:
        text = open(os.path.join(os.path.dirname(__file__), "_hotpath_sources.txt"), encoding="ascii").read()
    except OSError:
        return {}
    return dict(line.split(" ", 1) for line in text.split("\n") if " " in line)


class _SourceFinder:
    """A meta path finder that resolves a compiled module to its ``.py`` file when the sources are
    forced or the source differs from the one compiled; otherwise the normal import finds the build."""

    def __init__(self, forced: bool) -> None:
        self.forced = forced
        self.built = _built_hashes()
        self._others: dict[str, bool] = {}  # module -> every other module of the build is current

    def find_spec(self, name: str, path: Sequence[str] | None, target: ModuleType | None = None) -> object:
        if name not in COMPILED or not path:
            return None
        leaf = name.rpartition(".")[2] + ".py"
        for folder in path:
            candidate = os.path.join(folder, leaf)
            if os.path.isfile(candidate):
                if not self.forced and self._current(name, candidate) and self._others_current(name):
                    return None  # the extension beside it was built from this very source, and the rest too
                loader = importlib.machinery.SourceFileLoader(name, candidate)
                return importlib.util.spec_from_file_location(name, candidate, loader=loader)
        return None

    def _others_current(self, name: str) -> bool:
        known = self._others.get(name)
        if known is None:
            package = os.path.dirname(os.path.abspath(__file__))
            known = self._others[name] = all(
                self._current(other, os.path.join(package, *other.split(".")[1:]) + ".py")
                for other in COMPILED if other != name)
        return known

    def _current(self, name: str, source: str) -> bool:
        built = self.built.get(name)
        if built is None:
            return False
        with open(source, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest() == built


def install() -> None:
    """Put the finder first on the meta path (called by ``gateway/__init__.py``)."""
    if not any(isinstance(f, _SourceFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _SourceFinder(pure_forced()))  # type: ignore[arg-type]


def compiled_modules() -> dict[str, bool]:
    """Each hot-path module and whether the running process uses its compiled extension."""
    import importlib

    out = {}
    for name in COMPILED:
        module = importlib.import_module(name)
        out[name] = not str(getattr(module, "__file__", "")).endswith(".py")
    return out
