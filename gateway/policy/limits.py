"""Caps and rate limits (SPEC section 9), pure: which caps apply, and whether a request passes them
given the counts so far. The counts themselves live in a store beside the request log
(``gateway/audit/limits_store.py``).

>>> from gateway.policy.model import LimitsSpec
>>> caps_for(LimitsSpec(), kind="external", requester="cbi_analyst", purpose="criminal_law_enforcement")
Caps(rows_per_answer=100, individuals_per_day=200, requests_per_minute=120, bulk_access=False)
>>> caps_for(LimitsSpec(), kind="internal", requester="dmv_clerk", purpose=None).bulk_access
True
"""

from __future__ import annotations

from gateway.policy.model import LimitSpec, LimitsSpec
from gateway.policy.types import Caps

_FIELDS = ("rows_per_answer", "individuals_per_day", "requests_per_minute", "bulk_access")


def caps_for(spec: LimitsSpec, *, kind: str, requester: str, purpose: str | None) -> Caps:
    """The caps for one requester and purpose: the level (outside / staff), then the requester's
    override, then its override for this purpose; each key left out keeps the value above."""
    levels: list[LimitSpec] = [spec.staff if kind == "internal" else spec.outside]
    levels += [o for o in spec.overrides if o.requester == requester and o.purpose is None]
    levels += [o for o in spec.overrides if o.requester == requester and o.purpose is not None and o.purpose == purpose]
    values: dict[str, object] = {"bulk_access": kind == "internal"}
    for level in levels:
        for name in _FIELDS:
            value = getattr(level, name)
            if value is not None:
                values[name] = value
    return Caps(**values)  # type: ignore[arg-type]


def over_rate(caps: Caps, requests_this_minute: int) -> str | None:
    """Why a request past the per-minute cap is refused (``requests_this_minute`` counts it), or None."""
    cap = caps.requests_per_minute
    if cap is not None and requests_this_minute > cap:
        return f"more than {cap} requests in one minute (the cap for this requester and purpose); wait and retry"
    return None


def over_individuals(caps: Caps, named_today: int, new: int) -> str | None:
    """Why naming ``new`` more individuals today is refused, or None (``named_today``: distinct so far)."""
    cap = caps.individuals_per_day
    if cap is not None and new and named_today + new > cap:
        return (f"this request would name {named_today + new} distinct individuals today, more than {cap} "
                f"(the cap for this requester and purpose)")
    return None


def repeat_alert(times_named: int, threshold: int) -> bool:
    """Alert exactly when an individual reaches ``threshold`` namings in the window (not again after)."""
    return times_named == threshold


def volume_alert(today: int, previous_days: list[int], factor: float, baseline_days: int) -> float | None:
    """The baseline average when ``today`` first goes over ``factor`` times it, else None.

    The baseline is the average over the ``baseline_days`` days before today (days without requests
    count as 0), once there is at least one earlier day with requests.

    >>> volume_alert(31, [10] * 30, 3.0, 30)
    10.0
    >>> volume_alert(32, [10] * 30, 3.0, 30) is None   # already alerted at 31
    True
    """
    if not any(previous_days):
        return None
    average = sum(previous_days[-baseline_days:]) / baseline_days
    threshold = int(factor * average) + 1
    return average if today == max(threshold, 1) else None
