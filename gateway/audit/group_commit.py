"""What every request-log sink shares: the queue, the writer task and group commit.

A sink subclass implements :meth:`GroupCommitSink._flush` (seal a batch into the chain and make it
durable, or raise) and its own ``start``/``close`` around :meth:`_start_writer`/:meth:`_stop_writer`.
``append`` returns only when the batch holding its record is durable; if the flush fails, every
``append`` of that batch raises :class:`~gateway.errors.AuditUnavailable` and the next batch starts
afresh (the sink rewinds its chain, so a record that was never acknowledged leaves no hole).
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Any

import structlog

from gateway.audit.canonical import PreparedRecord
from gateway.audit.chain import ChainState, checkpoint_record
from gateway.audit.literals import LiteralHasher
from gateway.audit.record import build_request_record, to_dict, utc_now
from gateway.errors import AuditUnavailable

log = structlog.get_logger("gateway.audit")


def _seal_checkpoint(chain: ChainState, checkpoint: dict[str, Any]) -> str:
    body = dict(checkpoint, last_seq=chain.seq, last_hash=chain.prev)
    return chain.seal(body)[1]


class SinkError(Exception):
    """A reason the log cannot be written that is not an OSError (message is for the operator)."""


def describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__


def unavailable(cause: str) -> AuditUnavailable:
    """The requester-facing error: no record, no answer. ``detail`` names the cause for operators."""
    return AuditUnavailable(
        "gateway: the request log cannot be written, so the request is refused",
        detail=f"request log unavailable ({cause}); the gateway retries on the next request",
    )


class GroupCommitSink:
    """Base of :class:`~gateway.audit.file_sink.AuditLog` and :class:`~gateway.audit.pg_sink.PgAuditLog`."""

    #: exceptions a flush may raise that mean "the log is unavailable right now"
    unavailable_errors: tuple[type[BaseException], ...] = (OSError, SinkError)

    def __init__(
        self,
        *,
        instance: str,
        fsync_interval_ms: float,
        hash_literals: bool,
        checkpoint_every: int,
        checkpoint_seconds: float,
        max_batch: int,
    ) -> None:
        self.instance = instance
        self.hash_literals = hash_literals
        self.hasher = LiteralHasher(b"\0" * 32, enabled=hash_literals)  # replaced in start()
        self.checkpoint_every = checkpoint_every
        self.checkpoint_seconds = checkpoint_seconds
        self.max_batch = max_batch
        self._linger = max(0.0, fsync_interval_ms) / 1000.0
        self._chain: ChainState | None = None
        self._queue: collections.deque[tuple[dict[str, Any] | PreparedRecord, asyncio.Future[None] | None]] = collections.deque()
        # the writer's wake-up: a bare future on the loop, not asyncio.Event (whose wait() looks the running
        # loop up, a getpid() system call each time); the loop is taken once, when the writer starts
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Future[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        self._pending: list[dict[str, Any]] = []  # checkpoints written first in the next batch
        self._tip: dict[str, Any] | None = None  # the chain's end after a batch with a checkpoint
        #: the tail anchor is also refreshed after a batch once this many seconds passed since the last one
        #: (one small atomic write a second at most), so a cut tail is seen within about a second, not
        #: only at the next checkpoint (every ``checkpoint_every`` records or ``checkpoint_seconds``)
        self.tip_seconds = 1.0
        self._last_tip = 0.0
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        self._failing: str | None = None
        self.batches = 0
        self.records = 0

    # -- public API ------------------------------------------------------------------------------

    async def append(self, record: Any) -> None:
        """Append ``record`` (dict or dataclass); return once it is durable, else raise
        :class:`AuditUnavailable`. The caller releases no result before this returns."""
        await self.submit(record)

    def submit(self, record: Any) -> asyncio.Future[None]:
        """Queue ``record`` and return a future that completes once it is durable (or fails with
        :class:`AuditUnavailable`): ``append`` without a coroutine, for the hot path."""
        if self._writer is None or self._closing:
            raise AuditUnavailable("gateway: the request log is not open, so the request is refused")
        assert self._loop is not None
        future: asyncio.Future[None] = self._loop.create_future()
        self._queue.append((record if type(record) is PreparedRecord else to_dict(record), future))
        self._wakeup()
        return future

    def append_nowait(self, record: Any) -> None:
        """Queue ``record`` (an ``outcome``, say) for the next batch without waiting; it is made
        durable with that batch. If the batch fails the record is lost and an error is logged."""
        if self._writer is None or self._closing:
            log.error("audit_record_dropped", reason="log closed", type=record.get("type") if type(record) is PreparedRecord else to_dict(record).get("type"))
            return
        self._queue.append((record if type(record) is PreparedRecord else to_dict(record), None))
        self._wakeup()

    def build_request_record(self, **fields: Any) -> dict[str, Any]:
        """:func:`gateway.audit.record.build_request_record` with this log's hasher and instance."""
        fields.setdefault("instance", self.instance)
        return build_request_record(hasher=self.hasher, **fields)

    @property
    def available(self) -> bool:
        """False while the last write failed (for ``/readyz``), before start and after close."""
        return self._writer is not None and not self._closing and self._failing is None

    # -- for subclasses --------------------------------------------------------------------------

    async def _flush(self, records: list[dict[str, Any]]) -> list[Exception | None]:
        raise NotImplementedError

    def _wakeup(self) -> None:
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    def _start_writer(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._writer = self._loop.create_task(self._run(), name=f"audit-writer-{self.instance}")

    async def _stop_writer(self) -> None:
        if self._writer is None or self._closing:
            return
        self._queue.append((checkpoint_record("close", time=utc_now()), None))
        self._closing = True
        self._wakeup()
        await self._writer

    def _seal_batch(self, records: list[dict[str, Any]]) -> tuple[list[str], list[Exception | None]]:
        """Seal pending checkpoints, then ``records`` (with periodic checkpoints) into lines. Every
        checkpoint carries the last ``seq`` and ``hash`` before it; a batch holding one sets
        :attr:`_tip` to the chain's end, which the sink stores outside the log (tail anchor)."""
        assert self._chain is not None
        chain = self._chain
        lines = [_seal_checkpoint(chain, checkpoint) for checkpoint in self._pending]
        tip_due = bool(self._pending)
        errors: list[Exception | None] = []
        for record in records:
            try:
                if record.get("type") == "checkpoint":
                    lines.append(_seal_checkpoint(chain, record))
                    tip_due = True
                else:
                    lines.append(chain.seal(record)[1])
            except (TypeError, ValueError) as exc:
                errors.append(exc)
                continue
            errors.append(None)
            self._since_checkpoint += 1
            now = time.monotonic()
            if self._since_checkpoint >= self.checkpoint_every or now - self._last_checkpoint >= self.checkpoint_seconds:
                lines.append(_seal_checkpoint(chain, checkpoint_record("periodic", time=utc_now(), count=chain.seq + 1)))
                self._since_checkpoint, self._last_checkpoint = 0, now
                tip_due = True
        now = time.monotonic()
        if lines and now - self._last_tip >= self.tip_seconds:
            tip_due = True
        if tip_due:
            self._last_tip = now
        self._tip = {"instance": self.instance, "seq": chain.seq, "hash": chain.prev, "time": utc_now()} if tip_due else None
        return lines, errors

    def _flushed(self, records: int) -> None:
        self._pending.clear()
        self.batches += 1
        self.records += records

    def _note_failure(self, cause: str) -> None:
        if self._failing != cause:
            log.error("audit_log_unavailable", instance=self.instance, error=cause)
        if self._failing is None and self._chain is not None:
            self._pending.append(checkpoint_record("resume", time=utc_now(), after_error=cause))
        self._failing = cause

    # -- the writer task -------------------------------------------------------------------------

    async def _gather(self, loop: asyncio.AbstractEventLoop) -> None:
        """Let tasks that are ready to append do so before the batch closes: yield to the loop while
        the queue keeps growing, for at most ``fsync_interval_ms``. Never sleeps on a timer, so a
        lone client pays nothing and closed-loop clients are not held back."""
        deadline = loop.time() + self._linger
        seen = len(self._queue)
        while seen < self.max_batch and loop.time() < deadline:
            await asyncio.sleep(0)
            if len(self._queue) == seen:
                return
            seen = len(self._queue)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wake = loop.create_future()
                try:
                    await self._wake
                finally:
                    self._wake = None
                continue
            if self._linger and not self._closing:
                await self._gather(loop)
            batch = [self._queue.popleft() for _ in range(min(len(self._queue), self.max_batch))]
            try:
                errors = await self._flush([record for record, _ in batch])
            except Exception as exc:  # noqa: BLE001 - whatever fails, no waiter may hang: refuse them
                if not isinstance(exc, self.unavailable_errors):
                    log.exception("audit_writer_fault", instance=self.instance)
                cause = describe(exc)
                self._note_failure(cause)
                for record, future in batch:
                    if future is None:
                        log.error("audit_record_lost", type=record.get("type"), request_id=record.get("request_id"))
                    elif not future.done():
                        future.set_exception(unavailable(cause))
            else:
                if self._failing is not None:
                    log.warning("audit_log_resumed", instance=self.instance, after_error=self._failing)
                    self._failing = None
                for (record, future), error in zip(batch, errors):
                    if error is not None:
                        log.error("audit_record_invalid", type=record.get("type"), error=str(error))
                    if future is not None and not future.done():
                        if error is None:
                            future.set_result(None)
                        else:
                            future.set_exception(AuditUnavailable(f"gateway: the request record is invalid: {error}"))
