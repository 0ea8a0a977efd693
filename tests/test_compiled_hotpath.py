"""The hot path is tested both ways: compiled (mypyc, when the build made it) and pure Python
(``GATEWAY_PURE_PYTHON=1``, the fallback a machine without a compiler installs)."""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from gateway import _pure

ROOT = Path(__file__).resolve().parents[1]
HOT_PATH_TESTS = ["tests/test_wire_codec.py", "tests/test_audit_canonical.py", "tests/test_frontdoor_pg_relay.py",
                  "tests/test_plan_hot.py", "tests/test_session_decode.py",
                  "tests/test_skeleton_split.py"]


def _modules(env: dict[str, str]) -> dict[str, bool]:
    done = subprocess.run([sys.executable, "-c", "import json, gateway._pure as p; print(json.dumps(p.compiled_modules()))"],
                          env=env, capture_output=True, text=True, check=True, cwd="/")
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_pure_python_is_forced_by_the_environment() -> None:
    modules = _modules({**os.environ, "GATEWAY_PURE_PYTHON": "1"})
    assert set(modules) == set(_pure.COMPILED)
    assert not any(modules.values())


def test_the_compiled_build_is_used_when_present() -> None:
    finder = _pure._SourceFinder(forced=False)
    built = []
    for name in _pure.COMPILED:
        folder = ROOT / Path(*name.split(".")).parent
        leaf = name.rpartition(".")[2]
        if list(folder.glob(leaf + ".*.so")) and finder._current(name, str(folder / (leaf + ".py"))):
            built.append(name)  # an extension built from the source as it is now
    if not built:
        pytest.skip("no current compiled build beside the sources (GATEWAY_NO_COMPILE, a failed build, or "
                    "sources edited since)")
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_PURE_PYTHON"}
    modules = _modules(env)
    if len(built) < len(_pure.COMPILED):  # all or nothing: one stale or missing extension, all from source
        assert not any(modules.values()), modules
        return
    assert all(modules.values()), modules


class _PureRun:
    """The hot-path suites in a pytest of their own with the pure modules forced. Started when the test
    run is collected (tests/conftest.py), so it runs on the second core while the tests before this
    one run on the first (the suite is otherwise one test at a time); the test waits for its result."""

    def __init__(self) -> None:
        self.output = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed by result()
        self.proc = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *HOT_PATH_TESTS],
                                     env={**os.environ, "GATEWAY_PURE_PYTHON": "1"}, stdout=self.output,
                                     stderr=subprocess.STDOUT, text=True, cwd=ROOT)
        atexit.register(self.stop)

    def result(self, timeout: float) -> tuple[int, str]:
        try:
            code = self.proc.wait(timeout)
        finally:
            self.stop()
        self.output.seek(0)
        return code, self.output.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


_pure_run: _PureRun | None = None


def start_pure_run() -> None:
    global _pure_run
    if _pure_run is None:
        _pure_run = _PureRun()


def test_hot_path_suites_pass_in_pure_python() -> None:
    """The codec, canonical-JSON, relay and plan/record splice suites once more with the pure modules forced."""
    start_pure_run()  # already running unless this module was collected some other way
    assert _pure_run is not None
    code, output = _pure_run.result(timeout=900)
    assert code == 0, output[-5000:]


def test_a_source_edited_after_the_build_is_imported_as_source(tmp_path: Path) -> None:
    """A stale extension never shadows new code: the finder compares the source with the build's hash."""
    source = tmp_path / "framing.py"
    source.write_text("X = 1\n")
    finder = _pure._SourceFinder(forced=False)
    import hashlib

    package = ROOT / "gateway"
    current = {name: hashlib.sha256((package / Path(*name.split(".")[1:])).with_suffix(".py").read_bytes()).hexdigest()
               for name in _pure.COMPILED}
    finder.built = {**current, "gateway.wire.framing": hashlib.sha256(b"X = 1\n").hexdigest()}
    assert finder.find_spec("gateway.wire.framing", [str(tmp_path)]) is None  # current: the build is used
    source.write_text("X = 2\n")
    spec = finder.find_spec("gateway.wire.framing", [str(tmp_path)])
    assert spec is not None and str(spec.origin).endswith("framing.py")  # type: ignore[attr-defined]
    # one module of the build edited: every module of the list is imported from its source
    stale = _pure._SourceFinder(forced=False)
    stale.built = {**current, "gateway.wire.message": "0" * 64}
    relay = package / "frontdoor" / "pg"
    assert stale.find_spec("gateway.frontdoor.pg.relay", [str(relay)]) is not None
    whole = _pure._SourceFinder(forced=False)
    whole.built = dict(current)
    assert whole.find_spec("gateway.frontdoor.pg.relay", [str(relay)]) is None
    assert _pure._SourceFinder(forced=True).find_spec("gateway.wire.framing", [str(tmp_path)]) is not None
    assert finder.find_spec("gateway.wire.parser", [str(tmp_path)]) is None  # not a compiled module
