"""Build the compiled hot path with mypyc; fall back to pure Python when it cannot be built.

The modules in :data:`COMPILED` (wire framing, codec helpers and message classes, relay forwarding,
the request record's canonical JSON) are compiled into C extensions beside their ``.py`` sources, which stay in
the package: a module whose extension is missing (or that ``GATEWAY_PURE_PYTHON=1`` forces, see
``gateway/_pure.py``) is imported from its source. ``GATEWAY_NO_COMPILE=1`` skips the build; a build
that fails (no compiler, no Python headers, mypyc missing) warns and installs pure Python. Beside
them, one plain C extension (:data:`DISK`, no mypyc): the request log's disk thread; without it the
log's writer thread makes every write, as before.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

#: The compiled hot path (the same list is in gateway/_pure.py, which can force the sources).
COMPILED = [
    "gateway/wire/framing.py",
    "gateway/wire/buffer.py",
    "gateway/wire/encode.py",
    "gateway/wire/message.py",
    "gateway/wire/auth.py",
    "gateway/wire/frontend.py",
    "gateway/wire/backend.py",
    "gateway/audit/canonical.py",
    "gateway/frontdoor/pg/relay.py",
    "gateway/backend/prepared.py",
    "gateway/backend/wire_conn.py",
    "gateway/backend/pool.py",
    "gateway/plan/hot.py",
    "gateway/plan/hit.py",
    "gateway/audit/splice.py",
    "gateway/audit/requests.py",
    "gateway/frontdoor/pg/steady.py",
    "gateway/wire/parser.py",
    "gateway/frontdoor/pg/hold.py",
    "gateway/frontdoor/pg/channel.py",
]


def _warn(message: str) -> None:
    print(f"warning: dmv-gateway: {message}; installing the pure-Python modules", file=sys.stderr)


class OptionalBuildExt(build_ext):
    """build_ext that never fails the install: an extension that does not build is left out."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any build failure means "use the pure modules"
            _forget_sources()
            _warn(f"the compiled hot path did not build ({exc})")

    def build_extension(self, ext) -> None:  # type: ignore[no-untyped-def]
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            if ext.name == DISK.name:  # plain C, not mypyc: the request log then writes from its Python thread
                print(f"warning: dmv-gateway: {ext.name} did not build ({exc}); the request log's writes "
                      "stay on its Python thread", file=sys.stderr)
                return
            _forget_sources()  # an older extension may still sit beside its source: never trust it
            _warn(f"{ext.name} did not build ({exc})")


def _record_sources() -> None:
    """Write the hash of each compiled source beside the package (``gateway/_hotpath_sources.txt``,
    generated, not in git): a source edited after the build no longer matches, and ``gateway/_pure.py``
    then imports that source instead of the stale extension."""
    lines = []
    for path in COMPILED:
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        lines.append(f"{path[:-3].replace('/', '.')} {digest}\n")
    Path("gateway/_hotpath_sources.txt").write_text("".join(lines))


def _forget_sources() -> None:
    """No record, no compiled import: every hot-path module is then imported from its source."""
    Path("gateway/_hotpath_sources.txt").unlink(missing_ok=True)


#: The request log's disk thread (plain C, no mypyc): durable writes made without the GIL
#: (gateway/audit/_disk.c); without it the log's writer thread makes them, as before.
DISK = Extension("gateway.audit._disk", ["gateway/audit/_disk.c"], extra_compile_args=["-O2"])


def ext_modules() -> list[object]:
    if os.environ.get("GATEWAY_NO_COMPILE", "").lower() in ("1", "true", "yes"):
        _forget_sources()
        return []
    return [DISK, *_mypyc_modules()]


def _mypyc_modules() -> list[object]:
    try:
        from mypyc.build import mypycify
    except ImportError:
        _forget_sources()
        _warn("mypyc is not installed")
        return []
    try:
        # only the compiled modules are type-checked; what they import is used as declared, not compiled
        flags = ["--follow-imports=silent", "--ignore-missing-imports", "--no-warn-unused-ignores"]
        # the group library inside the package (gateway/_hotpath__mypyc*.so), so that an editable
        # install finds it beside the modules
        modules = list(mypycify([*flags, *COMPILED], opt_level="3", group_name="gateway._hotpath"))
    except BaseException as exc:  # noqa: BLE001 - mypyc exits on a type error: still install
        _forget_sources()
        _warn(f"mypyc could not compile the hot path ({exc})")
        return []
    _record_sources()  # the sources the extensions are being built from
    return modules


setup(ext_modules=ext_modules(), cmdclass={"build_ext": OptionalBuildExt})
