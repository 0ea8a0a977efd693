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
class DurableWaiter(Protocol):
    """Whoever waits for a request record without a future (the wire door's hold, see
    :class:`~gateway.frontdoor.pg.hold.DurableHold`). The sink calls exactly one of the two, once, on
    the event loop, from the one callback that completes the record's batch, in queue order."""

    def durable(self) -> None:
        """The record is on disk (or committed): what waited for it may be released."""

    def failed(self, exc: BaseException) -> None:
        """The record cannot be written (``exc`` is an AuditUnavailable): release nothing it guards."""


@runtime_checkable
class RequestLog(Protocol):
    """A durable, hash-chained request log (see ``docs/request-log.md``)."""

    instance: str
    hasher: LiteralHasher
    #: observes submit -> durable seconds of every record queued by :meth:`submit` (set by the Gateway;
    #: a metrics histogram with ``buckets``, ``counts`` and ``total``), or None
    latency: Any

    @property
    def available(self) -> bool:
        """Records can be written now: False before start, after close and while writes fail."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def append(self, record: Any) -> None:
        """Return once ``record`` is durable; raise AuditUnavailable if it cannot be."""

    def submit(self, record: Any, waiter: DurableWaiter | None = None) -> asyncio.Future[None] | None:
        """Queue ``record``. Without ``waiter``: a future that completes once it is durable (or fails:
        answer nothing). With one: None, and ``waiter.durable()`` or ``waiter.failed(exc)`` is called
        instead (no future, no done-callback, no extra loop turn per record: the wire door's hot path)."""

    def append_nowait(self, record: Any) -> None:
        """Queue ``record`` for the next batch (an alert, say) without waiting for it."""

    def append_outcome(self, outcome: tuple[Any, ...]) -> None:
        """Queue a request's outcome after its answer (a tuple, see
        :func:`gateway.audit.splice.plan_outcome`): folded with the other outcomes of the next batch into
        one ``outcomes`` record, which comes after their ``request`` records in the chain."""

    def build_request_record(self, **fields: Any) -> dict[str, Any]: ...

    async def read_records(self) -> list[dict[str, Any]]:
        """Every record of the log, in chain order (blocking reads happen off the loop)."""

    async def verify(self) -> VerifyResult:
        """Verify every chain of the log with its key."""
