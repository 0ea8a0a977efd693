"""Due dates of subject notices: N days after the request, or N business days where the policy says
so (New York VTL 201(12): 3 days; Illinois 625 ILCS 5/6-110.3: 3 business days), skipping weekends
and the policy's holidays. Pure.

>>> from datetime import date
>>> rules = NoticeRules(due_days=3, business_days=True, holidays=(date(2026, 12, 25),))
>>> due_date(date(2026, 12, 23), rules)  # Wed -> Thu, (Fri 25 holiday), Mon 28, Tue 29
datetime.date(2026, 12, 29)
>>> due_date(date(2026, 12, 23), NoticeRules())
datetime.date(2026, 12, 26)
"""

from __future__ import annotations

from datetime import date, timedelta

from pydantic import BaseModel, ConfigDict, Field


class NoticeRules(BaseModel):
    """``notices:`` in the policy file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    due_days: int = Field(3, ge=1, le=60)
    business_days: bool = False  # count only Monday to Friday, holidays excluded
    holidays: tuple[date, ...] = ()
    description: str = ""


def due_date(requested_on: date, rules: NoticeRules) -> date:
    """The day the notice is due: ``due_days`` (business) days after ``requested_on``."""
    if not rules.business_days:
        return requested_on + timedelta(days=rules.due_days)
    holidays = set(rules.holidays)
    day, left = requested_on, rules.due_days
    while left:
        day += timedelta(days=1)
        if day.weekday() < 5 and day not in holidays:
            left -= 1
    return day
