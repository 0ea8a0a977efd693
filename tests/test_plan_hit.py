"""The compiled cached decisions (gateway/plan/hit.py, ``gw.hot``) decide what the Gateway's own
methods decide: ``hot.query`` is ``admit(plan(...))`` for a Query's one cached read, ``hot.parse`` is
the plan, ``hot.bind`` is ``admit(rebind(held), params)``, field for field but the request id; where
they do not apply (a miss, a refusal, a refused purpose, a context not profiled yet, a plan that no
longer holds) they say None and the Gateway's methods decide. In-process on the seeded database's
catalog; the same checks once more with the pure-Python modules forced (a subprocess)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

#: (text with {n} and {s} for a fresh literal, parameterized?) for every kind of cached statement
TEXTS = [
    "SELECT person_id, first_name, last_name FROM dmv.persons WHERE person_id = {n}",
    "SELECT first_name FROM dmv.persons WHERE first_name = '{s}' AND last_name = '{s}' AND date_of_birth = '1990-02-03'",
    "SELECT immigration_status FROM dmv.lawful_presence WHERE person_id IN ({n}, {n})",
    "SELECT * FROM dmv.persons WHERE person_id = {n} LIMIT 10",
    "SELECT plate FROM dmv.vehicles WHERE plate = '{s}'",
    "SELECT count(*) FROM dmv.persons",
    "SELECT person_id FROM dmv.persons",  # no individual named: refused where the profile must name
    "BEGIN; SELECT '{s}' AS x; COMMIT",  # three statements: not hot.query's
    "SET application_name = 'x{n}'",  # not a read
    "SELECT nosuch FROM dmv.persons WHERE person_id = {n}",  # a refusal (cached as one)
    'SELECT "first_name" FROM dmv.persons WHERE person_id = {n}',  # not plain: the shape cache's
    "SELECT first_name FROM dmv.persons WHERE person_id IN (" + ", ".join(["{n}"] * 30) + ")",  # more than max_values
]
PARAMETERIZED = [
    ("SELECT person_id, first_name FROM dmv.persons WHERE person_id = $1", [("4242",), ("09",), (None,), (b"\x00\x00\x00\x07",)]),
    ("SELECT plate FROM dmv.vehicles WHERE plate = $1 OR plate = $2", [("AB-1", "AB-2"), ("AB-1", None)]),
    ("SELECT first_name FROM dmv.persons WHERE person_id = ANY($1)",
     [("{1,2,3}",), (None,), ("{" + ",".join(str(i) for i in range(40)) + "}",), ("{1,2}",)]),
]
#: the corpus's requester and claim (gateway/selftest/corpus.py): internal (no caps), external (caps, must
#: name), a court order, a governor's authorization, an immigration agency, no purpose, a refused purpose
WHO = ["clerk", "cbi", "ag", "gov", "ice", "auditor", "clerk0", "ice_sd", "cbi0", "ice_co"]


def _gateway(catalog: Any, log_dir: Path) -> Any:
    from gateway.audit.file_sink import AuditLog
    from gateway.config import Settings
    from gateway.identity.requesters import load_requesters
    from gateway.pipeline import Gateway
    from gateway.policy.load import load_policy

    settings = Settings(policy=str(ROOT / "policies/colorado-dmv.yaml"),
                        requesters=str(ROOT / "policies/requesters.example.yaml"), audit_path=str(log_dir / "r.jsonl"))
    audit = AuditLog(log_dir / "r.jsonl", instance="gw", sync=False, key=b"k" * 32)
    gw = Gateway(settings, load_policy(settings.policy), load_requesters(settings.requesters), audit)
    gw.set_catalog(catalog)
    return gw


def _context(gw: Any, profile: str) -> Any:
    from gateway.plan.request import SessionContext
    from gateway.selftest.corpus import PROFILES

    name, claim = PROFILES[profile]
    entry = gw.requesters.lookup(name)
    return SessionContext(requester=entry.requester, claim=claim, client_addr="127.0.0.1:1", session_id=f"s-{profile}")


def _same(hot: Any, reference: Any) -> None:
    """Every field of the two plans but the request id (and the refusal's message, which names it)."""
    a, b = dict(hot.__dict__), dict(reference.__dict__)
    assert a.pop("request_id") != b.pop("request_id")
    assert type(hot) is type(reference)
    assert a.keys() == b.keys()
    for key in a:
        if key == "error" and a[key] is not None:
            assert type(a[key]) is type(b[key]) and a[key].sqlstate == b[key].sqlstate, key
        elif key == "decision" and a["error"] is not None:
            assert a[key].action == b[key].action and a[key].rule == b[key].rule
        else:
            assert a[key] == b[key], (key, a[key], b[key])
    for x, y in zip(hot.statements, reference.statements):  # what equality leaves out
        assert (x.sql, x.parts, x.slots, x.individuals) == (y.sql, y.parts, y.slots, y.individuals)


def run_checks(catalog: Any) -> dict[str, int]:
    """Every comparison; how many plans each compiled call gave (None: the Gateway's methods decided)."""
    counts = {"query": 0, "parse": 0, "bind": 0, "none": 0, "refused": 0}
    with tempfile.TemporaryDirectory() as tmp:
        gw = _gateway(catalog, Path(tmp))
        for name in WHO:
            ctx = _context(gw, name)
            assert gw.hot.query(ctx, "SELECT 1") is None  # not profiled yet: the Gateway's plan_hot profiles it
            for round_ in range(4):
                for k, text in enumerate(TEXTS):
                    sql = text.format(n=1 + round_ * 37 + k, s=f"v{round_}''{k}")
                    reference = gw.plan(ctx, sql)  # plans (and learns) what the caches do not know yet
                    admitted = gw.admit(ctx, reference)
                    got = gw.hot.query(ctx, sql)
                    if got is None:
                        counts["none"] += 1
                        single = len(reference.statements) == 1 and reference.statements[0].kind == "select"
                        assert round_ < 2 or reference.error is not None or not single or reference.cache == "shape" \
                            or reference.profile is None, (name, sql, reference.cache)
                    else:
                        counts["query"] += 1
                        counts["refused"] += got.error is not None
                        _same(got, admitted)
                    parsed = gw.hot.parse(ctx, sql)
                    if parsed is not None:
                        counts["parse"] += 1
                        _same(parsed, reference)
            for sql, bindings in PARAMETERIZED:
                held = gw.plan(ctx, sql, (25,))
                parsed = gw.hot.parse(ctx, sql)
                if parsed is not None:
                    _same(parsed, gw.plan(ctx, sql, (25,)))
                for params in bindings:
                    again = gw.rebind(ctx, held)
                    got = gw.hot.bind(ctx, held, params)
                    if again is None or held.error is not None:
                        assert got is None
                        continue
                    counts["bind"] += 1
                    assert got is not None, (name, sql)
                    counts["refused"] += got.error is not None
                    _same(got, gw.admit(ctx, again, params))
                    held = got  # the session holds the last Bind's plan
            _stale(gw, ctx, held)
    return counts


def _stale(gw: Any, ctx: Any, held: Any) -> None:
    """What a plan was decided under changed: the compiled calls give nothing of the old decision."""
    sql = "SELECT person_id, first_name FROM dmv.persons WHERE person_id = 7"
    if held.basis is None:
        return
    claimed = replace(ctx, claim=replace(ctx.claim, purpose="service_delivery"))  # a SET makes a new context
    assert gw.hot.bind(claimed, held, ("1",)) is None
    assert gw.hot.query(claimed, sql) is None  # the new context is not profiled yet
    old_policy, old_analyzer = gw.policy, gw.analyzer
    gw.set_catalog(gw.catalog)  # a catalog swap: a new analyzer, its caches empty
    assert gw.hot.bind(ctx, held, ("1",)) is None and gw.rebind(ctx, held) is None
    assert gw.hot.query(ctx, sql) is None
    gw.plan(ctx, sql)
    assert gw.hot.parse(ctx, sql) is not None or gw.plan(ctx, sql).error is not None
    gw.policy = replace(old_policy)  # a reload: another policy object
    assert gw.hot.parse(ctx, sql) is None or gw.hot.parse(ctx, sql).basis[2] is gw.policy
    gw.policy = old_policy
    gw._forget_profiles()  # a certification change: every profile made again
    assert gw.hot.query(ctx, sql) is None
    assert old_analyzer is not gw.analyzer


def test_the_compiled_decisions_are_the_gateways(analysis_env: Any) -> None:
    counts = run_checks(analysis_env.catalog)
    assert counts["query"] > 100 and counts["parse"] > 200 and counts["bind"] > 30 and counts["none"] > 100, counts
    assert counts["refused"] >= 3, counts  # admit's own refusals (an array naming too many individuals) among them


def test_the_pure_python_decisions_are_the_gateways(analysis_env: Any, tmp_path: Path) -> None:
    path = tmp_path / "catalog.pickle"
    path.write_bytes(pickle.dumps(analysis_env.catalog))
    code = ("import pickle, runpy, sys; from gateway import _pure; import gateway.plan.hit as hit; "
            "assert hit.__file__.endswith('.py'); "
            f"checks = runpy.run_path({str(Path(__file__))!r}); "
            f"print(checks['run_checks'](pickle.loads(open({str(path)!r}, 'rb').read())))")
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "GATEWAY_PURE_PYTHON": "1"}, cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "'query'" in done.stdout
