"""Coverage-guided fuzzing with atheris (libFuzzer), each target for a bounded time.

Targets (``tests/fuzz/``): the wire codec (``fuzz_wire``: frontend and backend parsers, framing),
the startup and authentication path (``fuzz_auth``: startup packets, ``session_settings``, SASL
messages, the SCRAM server) and the analyzer on grammar-shaped SQL (``fuzz_sql``). Each runs in its
own process (libFuzzer exits the process) for ``GATEWAY_FUZZ_SECONDS`` seconds (default 5; 0 skips),
on the pure-Python codec so that atheris can steer by its coverage.

A crash fails the test with the input; add that input to the target's ``REGRESSIONS`` once the bug
is fixed. ``test_fuzz_regressions`` replays them (and the seeds) in-process, with or without atheris.

Without atheris (``pip install -e '.[fuzz]'``) the fuzzing tests are skipped, saying so.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

FUZZ_DIR = Path(__file__).parent / "fuzz"
TARGETS = ("fuzz_wire", "fuzz_auth", "fuzz_sql")
SECONDS = int(os.environ.get("GATEWAY_FUZZ_SECONDS", "5"))

sys.path.insert(0, str(FUZZ_DIR))


@pytest.fixture(scope="module")
def fuzz_env(analysis_env, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """The seeded catalog, the policy and the clerk's profile, pickled for fuzz_sql."""
    import gateway.analysis_pool  # noqa: F401 - registers the pickling of mapping proxies

    path = tmp_path_factory.mktemp("fuzz") / "env.pickle"
    path.write_bytes(pickle.dumps((analysis_env.analyzer.env, analysis_env.profile("clerk"))))
    return path


def _module(name: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, FUZZ_DIR / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_regressions(target: str, fuzz_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every input a fuzzer once crashed on, and every seed, passes the target's checks (no atheris needed)."""
    monkeypatch.setenv("GATEWAY_FUZZ_ENV", str(fuzz_env))
    module = _module(target)
    inputs = list(module.REGRESSIONS) + list(module.seeds())
    for data in inputs:
        module.one_input(data)
    assert inputs


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_with_atheris(target: str, fuzz_env: Path, tmp_path: Path) -> None:
    if importlib.util.find_spec("atheris") is None:
        pytest.skip("atheris is not installed (pip install -e '.[fuzz]'): the coverage-guided fuzzing did not run")
    if SECONDS <= 0:
        pytest.skip("GATEWAY_FUZZ_SECONDS=0: the coverage-guided fuzzing did not run")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, data in enumerate(_module(target).seeds() + list(_module(target).REGRESSIONS)):
        (corpus / f"seed{i}").write_bytes(data)
    env = dict(os.environ, GATEWAY_PURE_PYTHON="1", GATEWAY_FUZZ_ENV=str(fuzz_env))
    cmd = [sys.executable, str(FUZZ_DIR / "_atheris.py"), target, f"-max_total_time={SECONDS}", "-timeout=30",
           "-rss_limit_mb=2048", "-max_len=4096", f"-artifact_prefix={tmp_path}/", "-print_final_stats=1", str(corpus)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=SECONDS + 180)
    found = sorted(p for p in tmp_path.iterdir() if p.name.startswith(("crash-", "timeout-", "oom-", "leak-")))
    tail = "\n".join(proc.stderr.splitlines()[-40:])
    assert proc.returncode == 0 and not found, (
        f"{target} found a failing input; fix it, then add it to {target}.REGRESSIONS:\n"
        + "".join(f"  {p.name}: {p.read_bytes()!r}\n" for p in found) + tail)
    runs = [line for line in proc.stderr.splitlines() if line.startswith("stat::number_of_executed_units")]
    assert runs and int(runs[0].split(":")[-1]) > 0, tail  # it really ran inputs
