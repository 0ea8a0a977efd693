"""Which modules of the hot path are compiled (mypyc, see ``setup.py``), and forcing their sources.

With ``GATEWAY_PURE_PYTHON=1`` in the environment, the modules of :data:`COMPILED` are imported from
their ``.py`` sources even where a compiled extension sits beside them: the fallback the project
ships is exercised by the test suite, and a suspected compiler problem can be ruled out in place.
"""

from __future__ import annotations

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
    "gateway.audit.canonical",
    "gateway.frontdoor.pg.relay",
)


def pure_forced() -> bool:
    return os.environ.get("GATEWAY_PURE_PYTHON", "").lower() in ("1", "true", "yes")


class _SourceFinder:
    """A meta path finder that resolves the compiled modules to their ``.py`` files only."""

    @staticmethod
    def find_spec(name: str, path: Sequence[str] | None, target: ModuleType | None = None) -> object:
        if name not in COMPILED or not path:
            return None
        leaf = name.rpartition(".")[2] + ".py"
        for folder in path:
            candidate = os.path.join(folder, leaf)
            if os.path.isfile(candidate):
                loader = importlib.machinery.SourceFileLoader(name, candidate)
                return importlib.util.spec_from_file_location(name, candidate, loader=loader)
        return None


def install() -> None:
    """Force the sources if the environment asks for it (called by ``gateway/__init__.py``)."""
    if pure_forced() and not any(isinstance(f, _SourceFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _SourceFinder())  # type: ignore[arg-type]


def compiled_modules() -> dict[str, bool]:
    """Each hot-path module and whether the running process uses its compiled extension."""
    import importlib

    out = {}
    for name in COMPILED:
        module = importlib.import_module(name)
        out[name] = not str(getattr(module, "__file__", "")).endswith(".py")
    return out
