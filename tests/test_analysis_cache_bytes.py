"""The analyzer's caches are bounded by bytes (``analysis_cache_mb``) through estimates of what each
entry holds: the estimates must be upper bounds of what tracemalloc measures, or the gateway's memory
grows past its setting (the memory bar, bench/memory.py). Skeletons leave with their shape entry.
"""

from __future__ import annotations

import gc
import pickle
import tracemalloc
from typing import Any, Callable

import pytest

from gateway.plan.cache import Analyzer

STATEMENTS = [
    "SELECT person_id AS a{i}, last_name FROM dmv.persons WHERE person_id = 5",
    "SELECT p.person_id AS a{i}, p.first_name, v.vin FROM dmv.persons p JOIN dmv.vehicles v "
    "ON v.owner_person_id = p.person_id WHERE p.person_id IN (1, 2, 3, 4, 5, 6, 7, 8)",
    "SELECT count(*) AS a{i} FROM dmv.persons WHERE zip = '80202' AND city = 'Denver'",
    "SELECT person_id AS a{i}, first_name, last_name, zip, city FROM dmv.persons WHERE person_id > 10 "
    "ORDER BY last_name LIMIT 20",
    "SELECT a{i}.person_id FROM (SELECT person_id FROM dmv.persons WHERE zip LIKE '802%') a{i} "
    "WHERE a{i}.person_id < 100",
]
N = 12


def _bytes_per_call(fn: Callable[[int], Any]) -> float:
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(N):
        fn(i)
    gc.collect()
    return (tracemalloc.get_traced_memory()[0] - before) / N


@pytest.fixture
def analyzer(analysis_env: Any) -> Analyzer:
    return Analyzer(analysis_env.catalog, analysis_env.analyzer.classifier, analysis_env.analyzer.search_path)


@pytest.mark.parametrize("template", STATEMENTS, ids=[f"s{k}" for k in range(len(STATEMENTS))])
def test_entry_estimates_are_upper_bounds(analysis_env: Any, analyzer: Analyzer, template: str) -> None:
    profile = analysis_env.profile("clerk")

    def miss(i: int) -> None:  # a new shape, planned by a worker: the analysis comes back pickled
        sql = template.format(i=1000 + i)
        found = analyzer.cached(sql, profile)
        assert not hasattr(found, "statements"), "expected a miss"
        fresh = pickle.loads(pickle.dumps(analyzer.fresh(sql, profile, found.tokens)))  # type: ignore[union-attr]
        analyzer.remember(found, sql, fresh)  # type: ignore[arg-type]

    base = template.format(i=0)

    def shape_hit(i: int) -> None:  # a known shape, a text that is not plain (a comment): an exact entry
        found = analyzer.cached(base.replace("SELECT", f"SELECT /* {i} */", 1), profile)
        assert getattr(found, "cache", None) == "shape"

    miss(-1000)  # the shape of `base`, and everything imported or interned once
    shape_hit(-1)
    tracemalloc.start()
    try:
        state = analyzer.cache_state
        real_miss = _bytes_per_call(miss)
        after = analyzer.cache_state
        estimated_miss = (after["shape_bytes"] - state["shape_bytes"] + after["exact_bytes"] - state["exact_bytes"]) / N
        real_hit = _bytes_per_call(shape_hit)
        estimated_hit = (analyzer.cache_state["exact_bytes"] - after["exact_bytes"]) / N
    finally:
        tracemalloc.stop()
    assert real_miss <= estimated_miss <= 5 * real_miss, (real_miss, estimated_miss)
    assert real_hit <= estimated_hit <= 5 * real_hit, (real_hit, estimated_hit)


def test_bytes_bound_holds_and_skeletons_leave_with_their_shape(analysis_env: Any) -> None:
    env = analysis_env.analyzer
    analyzer = Analyzer(analysis_env.catalog, env.classifier, env.search_path, cache_bytes=200_000)
    profile = analysis_env.profile("clerk")
    for i in range(60):  # each shape twice, plain texts: a miss, then a shape hit that learns a skeleton
        for pid in (1, 2):
            analyzer.analyze(f"SELECT person_id AS a{i}, last_name FROM dmv.persons WHERE person_id = {pid}", profile)
        state = analyzer.cache_state
        assert state["shape_bytes"] <= 100_000 and state["exact_bytes"] <= 100_000, state
    state = analyzer.cache_state
    assert 0 < state["shapes"] < 60
    assert 0 < state["skeletons"] <= state["shapes"], state
    live = {id(entry) for entry in analyzer._shapes.values()}
    assert all(id(skeleton.entry) in live for skeleton in analyzer._skeletons.values())
