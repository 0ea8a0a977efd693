"""The request record the pipeline builds: the fast literal hashing of the SQL sent must give exactly
what the literal hasher gives on the printed SQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.config import Settings
from gateway.audit.record import hash_individuals
from gateway.pipeline import Gateway, SessionContext
from gateway.policy.types import PurposeClaim

STATEMENTS = [
    "SELECT person_id, first_name FROM dmv.persons WHERE person_id = {n} AND zip = '{s}' LIMIT {n}",
    "SELECT {n}::numeric(10,2), '{s}', interval '1 day' FROM dmv.vehicles",
    "SELECT immigration_status FROM dmv.lawful_presence WHERE person_id IN ({n}, {n})",
    "BEGIN; SELECT '{s}' AS x; COMMIT",
]


def test_hashed_sent_sql_equals_the_hasher(dmv_dsn: str, tmp_path: Path) -> None:
    async def go() -> None:
        gw = Gateway.from_settings(Settings(backend_dsn=dmv_dsn, audit_path=str(tmp_path / "requests.jsonl")))
        await gw.start()
        try:
            ctx = SessionContext(requester=gw.requesters.lookup("dmv_clerk").requester,
                                 claim=PurposeClaim("service_delivery"))
            caches = set()
            for shape in STATEMENTS:
                for n, s in ((1, "a"), (22, "it''s $987654321"), (333, "h:00")):
                    plan = gw.plan(ctx, shape.format(n=n, s=s))
                    assert plan.error is None, plan.error
                    caches.add(plan.cache)
                    expected = ";\n".join(gw.audit.hasher.hash_sql(st.sql) for st in plan.statements if st.sql)
                    assert gw._hashed_sent_sql(plan) == expected
                    record = gw._request_record(ctx, plan, None, None)
                    assert "it''s" not in (record["sql_sent"] or "") and "'a'" not in (record["sql_sent"] or "")
                    # whatever cache answered (a skeleton hit hashes its literals once): as the hasher does it
                    assert record["sql_received"] == gw.audit.hasher.hash_sql(plan.sql)
                    assert record["individuals"] == hash_individuals(gw.audit.hasher, plan.named(None))
            assert "shape" in caches and "skeleton" in caches
        finally:
            await gw.stop()

    asyncio.run(go())
