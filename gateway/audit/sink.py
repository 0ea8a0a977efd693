"""What the rest of the gateway relies on from a request log: :class:`RequestLog`.

Both sinks (:class:`~gateway.audit.file_sink.AuditLog`, :class:`~gateway.audit.pg_sink.PgAuditLog`)
implement it; the pipeline writes through it and the auditor endpoints read back through it, so no
caller looks at a sink's path, table or key.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from gateway.audit.literals import LiteralHasher
    from gateway.audit.verify import VerifyResult


@runtime_checkable
class RequestLog(Protocol):
    """A durable, hash-chained request log (see ``docs/request-log.md``)."""

    instance: str
    hasher: LiteralHasher

    @property
    def available(self) -> bool:
        """Records can be written now: False before start, after close and while writes fail."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def append(self, record: Any) -> None:
        """Return once ``record`` is durable; raise AuditUnavailable if it cannot be."""

    def submit(self, record: Any) -> asyncio.Future[None]:
        """Queue ``record``; the future completes once it is durable (or fails: answer nothing)."""

    def append_nowait(self, record: Any) -> None:
        """Queue ``record`` for the next batch (an outcome, after the answer)."""

    def build_request_record(self, **fields: Any) -> dict[str, Any]: ...

    async def read_records(self) -> list[dict[str, Any]]:
        """Every record of the log, in chain order (blocking reads happen off the loop)."""

    async def verify(self) -> VerifyResult:
        """Verify every chain of the log with its key."""
