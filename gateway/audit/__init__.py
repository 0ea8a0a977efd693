"""The request log: records, hash chain, sinks (file, PostgreSQL), verify, search, quarterly report.

What the pipeline uses::

    log = AuditLog(path, instance="gw1")          # or PgAuditLog(dsn, instance=..., key_path=...)
    await log.start()
    record = log.build_request_record(request_id=..., requester=..., ...)
    await log.append(record)                       # durable, or raises AuditUnavailable
    log.append_outcome(outcome_entry(rid, "ok", rows, persons, ms, None))  # after the answer
    await log.close()

See ``docs/request-log.md`` for the record schema.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public names and their modules, imported on first use so that the pure parts (record, chain,
#: verify, report) can be imported without asyncio, asyncpg or structlog.
_EXPORTS = {
    "AuditLog": "gateway.audit.file_sink",
    "PgAuditLog": "gateway.audit.pg_sink",
    "LiteralHasher": "gateway.audit.literals",
    "hash_literal": "gateway.audit.literals",
    "SCHEMA_VERSION": "gateway.audit.record",
    "RequestRecord": "gateway.audit.record",
    "build_request_record": "gateway.audit.record",
    "build_outcome_record": "gateway.audit.record",
    "outcome_entry": "gateway.audit.splice",
    "per_request": "gateway.audit.record",
    "build_login_failed_record": "gateway.audit.record",
    "build_purpose_change_record": "gateway.audit.record",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'gateway.audit' has no attribute {name!r}")
