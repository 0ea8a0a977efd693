"""``DurableHold.when_idle``: a session with many records in flight stops reading its client until
none is left; it is woken once they are durable (after the held answers are out) or when one fails,
and again by every later failure (the session then ends). In-process."""

from __future__ import annotations

from gateway.frontdoor.pg.hold import DurableHold


def _hold() -> tuple[DurableHold, list[object]]:
    events: list[object] = []
    return DurableHold(lambda data: events.append(data), lambda message: events.append(("fail", message))), events


def test_woken_once_every_record_is_durable_after_the_answers_are_out() -> None:
    hold, events = _hold()
    for _ in range(3):
        hold.waiting()
    hold.write(b"a")
    hold.write(b"b")
    hold.when_idle(lambda: events.append("woken"))
    assert hold.records == 3
    hold.durable()
    hold.durable()
    assert events == []
    hold.durable()
    assert events == [b"ab", "woken"] and hold.records == 0
    hold.waiting()
    hold.durable()
    assert events == [b"ab", "woken"]  # once


def test_woken_by_a_failure_and_by_each_later_one() -> None:
    hold, events = _hold()
    for _ in range(3):
        hold.waiting()
    hold.write(b"a")
    hold.when_idle(lambda: events.append("woken"))
    hold.failed(RuntimeError("disk"))
    assert events[0] == "woken" and events[1][0] == "fail"  # type: ignore[index]
    hold.when_idle(lambda: events.append("again"))  # the session asks again while two are left
    hold.failed(RuntimeError("disk"))
    assert events[-1] == "again"
    hold.when_idle(lambda: events.append("last"))
    hold.failed(RuntimeError("disk"))
    assert events[-1] == "last" and hold.records == 0
    assert b"a" not in events  # an answer whose record failed is never released
