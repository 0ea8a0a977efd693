"""Naming individuals through the shape cache, and the pure limit rules and their store (real SQLite)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.audit.limits_store import LimitsStore
from gateway.plan.types import NamedValue
from gateway.policy.limits import over_individuals, over_rate, volume_alert
from gateway.policy.model import AlertsSpec
from gateway.policy.types import Caps


def _individuals(analysis: Any) -> list[str]:
    return [i for st in analysis.statements for v in st.individuals for i in v.resolve(None)]


def test_the_shape_cache_names_each_request_s_own_individuals(analysis_env: Any) -> None:
    profile = analysis_env.profile("cbi")
    first = analysis_env.analyzer.analyze("SELECT first_name FROM dmv.persons WHERE person_id = 5", profile)
    second = analysis_env.analyzer.analyze("SELECT first_name FROM dmv.persons WHERE person_id = 1234", profile)
    assert second.cache == "shape"
    assert _individuals(first) == ["person:5"] and _individuals(second) == ["person:1234"]
    combo = analysis_env.analyzer.analyze(
        "SELECT ssn FROM dmv.persons WHERE first_name = 'Ann' AND last_name = 'Lee' AND date_of_birth = '1990-02-03'", profile)
    again = analysis_env.analyzer.analyze(
        "SELECT ssn FROM dmv.persons WHERE first_name = 'Bo' AND last_name = 'Kim' AND date_of_birth = '1971-12-30'", profile)
    assert again.cache == "shape" and _individuals(again) == ["combination:Bo|Kim|1971-12-30"]
    assert _individuals(combo) == ["combination:Ann|Lee|1990-02-03"]


def test_a_list_length_is_part_of_the_shape(analysis_env: Any) -> None:
    profile = analysis_env.profile("cbi")
    ids = ", ".join(str(i) for i in range(1, 26))
    ok = analysis_env.analyzer.analyze(f"SELECT first_name FROM dmv.persons WHERE person_id IN ({ids})", profile)
    over = analysis_env.analyzer.analyze(f"SELECT first_name FROM dmv.persons WHERE person_id IN ({ids}, 26)", profile)
    assert ok.error is None and len(_individuals(ok)) == 25
    assert over.error is not None and over.cache == "miss" and "a list of 26 values" in over.error.message


def test_array_values_are_counted_per_request(analysis_env: Any) -> None:
    profile = analysis_env.profile("cbi")
    analysis = analysis_env.analyzer.analyze("SELECT first_name FROM dmv.persons WHERE person_id = ANY('{1,2,3}')", profile)
    assert analysis.error is None and _individuals(analysis) == ["person:1", "person:2", "person:3"]
    param = NamedValue("person", (1,), array=True)
    assert param.resolve([[7, 8, None]]) == ["person:7", "person:8"]
    assert param.resolve(["{9,10}"]) == ["person:9", "person:10"]
    assert param.resolve([None]) == []


def _combined(n: int, tag: str = "") -> str:
    names = lambda p: ", ".join(f"'{p}{i}{tag}'" for i in range(n))  # noqa: E731
    dates = ", ".join(f"'19{50 + i}-01-0{i % 9 + 1}'" for i in range(n))
    return (f"SELECT count(*) FROM dmv.persons WHERE first_name IN ({names('a')}) AND last_name IN ({names('b')})"
            f" AND date_of_birth IN ({dates})")


def test_a_combination_of_value_lists_is_bounded_before_it_is_built(analysis_env: Any) -> None:
    """Three IN lists on first name, last name and date of birth name every triple: the product was
    built whole (cubic: 40 values each, 64,000 individuals in 1.8 s of analysis; 21 each, 9,261, and
    60-100 ms of event loop at every cache hit). Up to 1,000 it is named as before; past it refused."""
    import time

    from gateway.policy.naming import MAX_COMBINATIONS

    profile = analysis_env.profile("cbi")
    allowed = analysis_env.analyzer.analyze(_combined(10), profile)  # 1,000: the bound
    assert allowed.error is None and len(_individuals(allowed)) == MAX_COMBINATIONS == 1000
    assert "combination:a3|b7|1953-01-04" in _individuals(allowed)
    for n in (11, 40, 200):
        started = time.process_time()
        refused = analysis_env.analyzer.analyze(_combined(n), profile)
        assert time.process_time() - started < 0.5, n
        assert refused.error is not None and refused.error.sqlstate == "54001", refused.error
        assert f"names {n ** 3} individuals" in str(refused.error) and "more than 1000" in str(refused.error)


def test_pure_rules() -> None:
    caps = Caps(rows_per_answer=100, individuals_per_day=200, requests_per_minute=120, bulk_access=False)
    assert over_rate(caps, 120) is None and "more than 120" in (over_rate(caps, 121) or "")
    assert over_individuals(caps, 199, 1) is None and over_individuals(caps, 199, 2) is not None
    assert over_individuals(caps, 250, 0) is None  # naming nobody new is never refused
    assert volume_alert(31, [10] * 30, 3.0, 30) == 10.0
    assert volume_alert(31, [0] * 30, 3.0, 30) is None


def test_store_volume_alert_and_restart(tmp_path: Path) -> None:
    path = tmp_path / "limits.sqlite"
    store = LimitsStore(path, AlertsSpec(volume_factor=3.0, volume_baseline_days=30)).open()
    day = 86400.0
    today = 30 * day + 3600.0
    for d in range(30):  # 30 days of 2 requests each: baseline 2 a day, alert when today passes 6
        for _ in range(2):
            assert store.admit("cbi", "p", Caps(), [], now=d * day + 10).refusal is None
    kinds = [[a["alert"] for a in store.admit("cbi", "p", Caps(), [], now=today + i).alerts] for i in range(8)]
    assert kinds[:6] == [[]] * 6 and kinds[6] == ["volume_spike"] and kinds[7] == []
    store.close()
    again = LimitsStore(path).open()  # counters survive: the same individuals are known after a restart
    caps = Caps(individuals_per_day=2)
    assert again.admit("gov", "p", caps, ["person:h:1", "person:h:2"], now=today).refusal is None
    again.close()
    third = LimitsStore(path).open()
    assert third.admit("gov", "p", caps, ["person:h:1"], now=today + 5).refusal is None
    assert third.admit("gov", "p", caps, ["person:h:3"], now=today + 6).refusal is not None
    peaks = third.peaks("1970-01-01", "1970-12-31")
    assert any(p["what"] == "individuals_per_day" and p["value"] == 2 and p["cap"] == 2 for p in peaks)
    third.close()
