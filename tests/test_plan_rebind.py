"""Plan reuse on a prepared Bind (``Gateway.rebind``): a held plan is used again only while
everything it was decided under is the same - the session context (claim), the analyzer (catalog
snapshot and the policy's classification), the policy, the requesters and the profile of the day -
and its request record is the record a fresh plan gets. In-process, on the seeded database's live
catalog; the same changes through a real gateway and real clients are in test_plan_rebind_wire.py."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.config import Settings
from gateway.pipeline import Gateway, SessionContext
from gateway.policy.types import PurposeClaim

POINT = "SELECT person_id, first_name FROM dmv.persons WHERE person_id = $1"


def _gateway(dsn: str, folder: Path) -> Gateway:
    return Gateway.from_settings(Settings(backend_dsn=dsn, audit_path=str(folder / "requests.jsonl"),
                                         analysis_workers=0))


def _ctx(gw: Gateway, purpose: str = "service_delivery") -> SessionContext:
    entry = gw.requesters.lookup("dmv_clerk")
    assert entry is not None
    return SessionContext(requester=entry.requester, claim=PurposeClaim(purpose), session_id="s-1")


def _content(record: Any) -> dict[str, Any]:
    """A record's JSON without what differs between two requests (id and time)."""
    data = record.as_dict() if hasattr(record, "as_dict") else dict(record)
    return {k: v for k, v in data.items() if k not in ("request_id", "time")}


class _Tomorrow(datetime):
    """The clock a day on."""

    @classmethod
    def now(cls, tz: Any = None) -> Any:  # type: ignore[override]
        return datetime.now(tz) + timedelta(days=1)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_rebind_reuses_an_unchanged_plan_and_its_record_is_a_fresh_plans(dmv_dsn: str, tmp_path: Path) -> None:
    async def go() -> None:
        gw = _gateway(dmv_dsn, tmp_path)
        await gw.start()
        try:
            ctx = _ctx(gw)
            held = gw.plan(ctx, POINT, (20,))
            assert held is not None and held.error is None
            ids = set()
            for pid in ("7", "8", "7"):
                again = gw.rebind(ctx, held)
                assert again is not None
                assert again.statements is held.statements and again.profile is held.profile
                assert again.request_id not in ids and again.request_id != held.request_id
                ids.add(again.request_id)
                bound = gw.admit(ctx, again, (pid,))
                assert bound.individuals == (f"person:{pid}",)
                fresh = gw.admit(ctx, gw.plan(ctx, POINT, (20,)), (pid,))
                reused, planned = gw._request_record(ctx, bound, (pid,), None), gw._request_record(ctx, fresh, (pid,), None)
                assert _content(reused) == _content(planned)
                assert _content(reused)["individuals"] == [f"person:{gw.audit.hasher.hash_literal(pid)}"]
                assert reused["request_id"] == bound.request_id
        finally:
            await gw.stop()

    run(go())


def test_rebind_refuses_once_anything_the_plan_depends_on_changed(dmv_dsn: str, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    async def go() -> None:
        gw = _gateway(dmv_dsn, tmp_path)
        await gw.start()
        try:
            ctx = _ctx(gw)

            def held() -> Any:
                plan = gw.plan(ctx, POINT, (20,))
                assert gw.rebind(ctx, plan) is not None
                return plan

            # another claim (SET gateway.purpose makes a new context): decided afresh, here refused
            plan = held()
            other = dataclasses.replace(ctx, claim=PurposeClaim("civil_immigration_enforcement"))
            assert gw.rebind(other, plan) is None
            assert gw.plan(other, POINT, (20,)).error is not None
            # a catalog swap (same snapshot, new analyzer: its caches are the old one's)
            plan = held()
            assert gw.catalog is not None
            gw.set_catalog(gw.catalog)
            assert gw.rebind(ctx, plan) is None
            # a policy and requesters reload
            plan = held()
            assert await gw.reload()
            assert gw.rebind(ctx, plan) is None
            # the requesters or certifications changed on disk (the refresh loop's check)
            plan = held()
            gw._requesters_stamp = ()
            assert gw.reload_certifications()
            assert gw.rebind(ctx, plan) is None
            # a new UTC day: the profile (certification expiry, day caps) is made again
            plan = held()
            tomorrow = time.time() + 86400
            monkeypatch.setattr("gateway.pipeline.time.time", lambda: tomorrow)
            monkeypatch.setattr("gateway.pipeline.datetime", _Tomorrow)
            assert gw.rebind(ctx, plan) is None
            replanned = gw.plan(ctx, POINT, (20,))
            assert replanned.profile is not plan.profile and gw.rebind(ctx, replanned) is not None
            monkeypatch.undo()
            # a refusal is never reused
            refused = gw.plan(other, POINT, (20,))
            assert gw.rebind(other, refused) is None
            assert gw.rebind(ctx, None) is None
        finally:
            await gw.stop()

    run(go())
