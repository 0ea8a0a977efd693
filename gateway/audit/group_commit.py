"""What every request-log sink shares: the queue, group commit, and records kept across an outage.

A sink writes batches: everything queued since the last batch is sealed into the chain and made
durable at once. ``submit``/``append`` complete only when the batch holding their record is durable;
if the batch fails, each of them fails with :class:`~gateway.errors.AuditUnavailable` (no record, no
answer) and the sink rewinds its chain, so a record that was never acknowledged leaves no hole.

Whoever waits is a :class:`~gateway.audit.sink.DurableWaiter` (``durable()`` / ``failed(exc)``): the
wire door's hold passes itself to ``submit(record, hold)``, and ``submit(record)`` / ``append`` wrap a
future in one. One loop callback per batch (:meth:`GroupCommitSink._settle`) tells every waiter of the
batch in queue order and observes the latency histogram inline, so a request costs no future, no
done-callback and no loop turn of its own.

A request's outcome is queued as a plain tuple (``append_outcome``, after its answer: see
:func:`gateway.audit.splice.plan_outcome`); the writer folds all outcomes it takes in one batch into
one ``outcomes`` record, sealed where the batch's last outcome stood, so every outcome still comes
after its request's record in the chain and a batch costs one outcome record, not one per request.

Records queued without a waiter (outcomes, ``append_nowait``: an ``alert``)
are *held* when their batch fails, in order, up to ``outage_buffer_bytes``, and written at the head
of the first batch that succeeds (retried every :attr:`GroupCommitSink.retry_seconds` while held).
Past the bound they are lost, never silently: the next batch that succeeds starts with a
``records_lost`` checkpoint naming how many and for which request ids.

Two writers drive a sink: :class:`GroupCommitSink` itself runs an asyncio task around an async
:meth:`GroupCommitSink._flush` (the PostgreSQL sink); :class:`gateway.audit.writer_thread.ThreadWriter`
runs a dedicated thread around a blocking flush (the file sink).
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from bisect import bisect_left
from typing import TYPE_CHECKING, Any

import structlog

from gateway.audit.canonical import PREPARED, PreparedRecord, SplicedRecord, seal_run
from gateway.audit.chain import ChainState, checkpoint_record
from gateway.audit.literals import LiteralHasher
from gateway.audit.record import build_request_record, is_outcomes, outcomes_record, to_dict, utc_now
from gateway.errors import AuditUnavailable

if TYPE_CHECKING:
    from gateway.audit.sink import DurableWaiter

log = structlog.get_logger("gateway.audit")
_perf_counter = time.perf_counter


def _seal_checkpoint(chain: ChainState, checkpoint: dict[str, Any]) -> bytes:
    body = dict(checkpoint, last_seq=chain.seq, last_hash=chain.prev)
    return chain.seal(body)[1].encode("utf-8")


#: a queued record (or an outcome: a tuple, folded into the batch's ``outcomes`` record), whoever waits
#: for it to be durable (None: nobody waits), and when it was submitted (``time.perf_counter()``; 0.0:
#: not observed in the latency histogram)
Entry = tuple["dict[str, Any] | PreparedRecord | SplicedRecord | tuple[Any, ...]", "DurableWaiter | None", float]
#: request ids named in one ``records_lost`` checkpoint at most (the count is always exact)
MAX_LOST_IDS = 10_000
#: refused request ids remembered (oldest forgotten first), and for how long after the last refusal
MAX_REFUSED_IDS = 50_000
REFUSED_SECONDS = 120.0


class FutureWaiter:
    """A :class:`~gateway.audit.sink.DurableWaiter` that completes a future (``await append(...)``,
    ``submit(record)``: the cold paths, the HTTP door and tests)."""

    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[None]) -> None:
        self.future = future

    def durable(self) -> None:
        if not self.future.done():  # its awaiter may have been cancelled
            self.future.set_result(None)

    def failed(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)


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
    #: while records are held across an outage, the writer tries again this often without new work
    retry_seconds = 0.5

    def __init__(
        self,
        *,
        instance: str,
        fsync_interval_ms: float,
        hash_literals: bool,
        checkpoint_every: int,
        checkpoint_seconds: float,
        max_batch: int,
        outage_buffer_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self.instance = instance
        self.hash_literals = hash_literals
        self.hasher = LiteralHasher(b"\0" * 32, enabled=hash_literals)  # replaced in start()
        self.checkpoint_every = checkpoint_every
        self.checkpoint_seconds = checkpoint_seconds
        self.max_batch = max_batch
        self.outage_buffer_bytes = outage_buffer_bytes
        self._linger = max(0.0, fsync_interval_ms) / 1000.0
        self._chain: ChainState | None = None
        self._queue: collections.deque[Entry] = collections.deque()
        # the writer task's wake-up: a bare future on the loop, not asyncio.Event (whose wait() looks the
        # running loop up, a getpid() system call each time); the loop is taken once, when the writer starts
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Future[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._started = False
        self._closing = False
        #: someone waits for a queued record (``submit``); a queue of records nobody waits for (outcomes)
        #: may wait for the next request's batch (see :class:`~gateway.audit.writer_thread.ThreadWriter`)
        self._urgent = False
        # -- owned by the writer (task or thread) --
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
        self._held: list[Entry] = []  # records without a waiter kept across an outage, in order
        self._held_bytes = 0
        self._lost = 0  # records dropped past the bound since the last batch that succeeded
        self._lost_ids: list[str] = []
        self._lost_types: collections.Counter[str] = collections.Counter()
        # request ids whose request record was refused: an outcome queued for one of them (the wire door
        # runs a read while its record is being written, and drops the answer if the record fails) is
        # not written, since the request has no record and got no answer; kept a while after an outage
        self._refused: dict[str, None] = {}
        self._refused_until = 0.0
        self.batches = 0
        self.records = 0
        self.latency: Any = None  # a histogram of submit -> durable seconds (the Gateway sets it)

    # -- public API ------------------------------------------------------------------------------

    async def append(self, record: Any) -> None:
        """Append ``record`` (dict or dataclass); return once it is durable, else raise
        :class:`AuditUnavailable`. The caller releases no result before this returns. (Not observed
        in the latency histogram: that is :meth:`submit`'s, the request records'.)"""
        if not self._started or self._closing:
            raise AuditUnavailable("gateway: the request log is not open, so the request is refused")
        assert self._loop is not None
        future: asyncio.Future[None] = self._loop.create_future()
        self._queue.append((record if type(record) in PREPARED else to_dict(record), FutureWaiter(future), 0.0))
        self._urgent = True
        self._wakeup()
        await future

    def submit(self, record: Any, waiter: DurableWaiter | None = None) -> asyncio.Future[None] | None:
        """Queue ``record``; once it is durable ``waiter.durable()`` is called, if it cannot be
        ``waiter.failed(exc)`` (exc an :class:`AuditUnavailable`), from the one loop callback of its
        batch, never from this call. Without ``waiter``: return a future completed the same way."""
        if not self._started or self._closing:
            raise AuditUnavailable("gateway: the request log is not open, so the request is refused")
        future: asyncio.Future[None] | None = None
        if waiter is None:
            assert self._loop is not None
            future = self._loop.create_future()
            waiter = FutureWaiter(future)
        self._queue.append((record if type(record) in PREPARED else to_dict(record), waiter, _perf_counter()))
        self._urgent = True
        self._wakeup()
        return future

    def append_nowait(self, record: Any) -> None:
        """Queue ``record`` (an ``outcome``, say) for the next batch without waiting; it is made
        durable with that batch, or held across an outage (see the module docstring)."""
        if not self._started or self._closing:
            log.error("audit_record_dropped", reason="log closed", type=record.get("type") if type(record) in PREPARED else to_dict(record).get("type"))
            return
        self._queue.append((record if type(record) in PREPARED else to_dict(record), None, 0.0))
        self._wakeup_later()

    def append_outcome(self, outcome: tuple[Any, ...]) -> None:
        """Queue a request's outcome, an entry of an ``outcomes`` record (``plan_outcome`` builds it),
        after its answer: folded with the other outcomes of the next batch into one record, made durable
        with that batch, or held across an outage like any record nobody waits for."""
        if not self._started or self._closing:
            log.error("audit_record_dropped", reason="log closed", type="outcome", request_id=outcome[0])
            return
        self._queue.append((outcome, None, 0.0))
        self._wakeup_later()

    def build_request_record(self, **fields: Any) -> dict[str, Any]:
        """:func:`gateway.audit.record.build_request_record` with this log's hasher and instance."""
        fields.setdefault("instance", self.instance)
        return build_request_record(hasher=self.hasher, **fields)

    @property
    def available(self) -> bool:
        """False while the last write failed (for ``/readyz``), before start and after close."""
        return self._started and not self._closing and self._failing is None

    @property
    def held(self) -> int:
        """Records waiting out an outage (for tests and ``/metrics``)."""
        return len(self._held)

    # -- for subclasses --------------------------------------------------------------------------

    async def _flush(self, records: list[Any]) -> list[Exception | None]:
        raise NotImplementedError

    def _wakeup(self) -> None:
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    def _wakeup_later(self) -> None:
        """A record nobody waits for was queued (the writer task writes it as any other)."""
        self._wakeup()

    def _start_writer(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._writer = self._loop.create_task(self._run(), name=f"audit-writer-{self.instance}")
        self._started = True

    async def _stop_writer(self) -> None:
        if self._writer is None or self._closing:
            return
        self._queue.append((checkpoint_record("close", time=utc_now()), None, 0.0))
        self._closing = True
        self._wakeup()
        await self._writer

    def _seal_batch(self, records: list[Any]) -> tuple[list[bytes], list[Exception | None]]:
        """Seal pending checkpoints (and a ``records_lost`` one), then ``records`` (with periodic
        checkpoints) into lines (UTF-8 bytes). Every checkpoint carries the last ``seq`` and ``hash``
        before it; a batch holding one sets :attr:`_tip` to the chain's end, which the sink stores
        outside the log. The errors list is empty when every record sealed (the usual case), else one
        entry per record (None for those that sealed)."""
        assert self._chain is not None
        chain = self._chain
        lines = [_seal_checkpoint(chain, checkpoint) for checkpoint in self._pending] if self._pending else []
        if self._lost:
            lines.append(_seal_checkpoint(chain, self._lost_checkpoint()))
        tip_due = bool(lines)
        append = lines.append
        errors: list[Exception | None] = []
        left = self.checkpoint_every - self._since_checkpoint
        i, n = 0, len(records)
        while i < n:
            if left > 0:  # the hot path: a run of prepared records, sealed in one compiled call
                j, chain.seq, chain.prev = seal_run(records, i, min(n, i + left), chain.signer, chain.instance,
                                                    chain.seq, chain.prev, lines)
                if errors and j > i:
                    errors.extend([None] * (j - i))
                left -= j - i
                i = j
            if left > 0 and i < n:  # a dict record (event, checkpoint), or a record that does not serialize
                record = records[i]
                i += 1
                try:
                    if type(record) not in PREPARED and record.get("type") == "checkpoint":
                        append(_seal_checkpoint(chain, record))
                        tip_due = True
                    else:
                        append(chain.seal(record)[1].encode("utf-8"))
                except (TypeError, ValueError) as exc:
                    if not errors:
                        errors = [None] * (i - 1)
                    errors.append(exc)
                    continue
                if errors:
                    errors.append(None)
                left -= 1
            if left <= 0:
                self._periodic(lines, chain)
                left = self.checkpoint_every
                tip_due = True
        self._since_checkpoint = self.checkpoint_every - left
        now = time.monotonic()  # the clock read once a batch, not once a record
        if self._since_checkpoint and now - self._last_checkpoint >= self.checkpoint_seconds:
            self._periodic(lines, chain)
            tip_due = True
        if lines and now - self._last_tip >= self.tip_seconds:
            tip_due = True
        if tip_due:
            self._last_tip = now
            self._tip = {"instance": self.instance, "seq": chain.seq, "hash": chain.prev, "time": utc_now()}
        else:
            self._tip = None
        return lines, errors

    def _periodic(self, lines: list[bytes], chain: ChainState) -> None:
        lines.append(_seal_checkpoint(chain, checkpoint_record("periodic", time=utc_now(), count=chain.seq + 1)))
        self._since_checkpoint, self._last_checkpoint = 0, time.monotonic()

    def _lost_checkpoint(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"lost": self._lost, "request_ids": list(self._lost_ids),
                                 "types": dict(sorted(self._lost_types.items())),
                                 "outage_buffer_bytes": self.outage_buffer_bytes}
        if self._lost > len(self._lost_ids):
            extra["request_ids_not_listed"] = self._lost - len(self._lost_ids)
        return checkpoint_record("records_lost", time=utc_now(), **extra)

    def _flushed(self, records: int) -> None:
        self._pending.clear()
        if self._lost:
            log.warning("audit_records_lost_recorded", instance=self.instance, lost=self._lost)
            self._lost, self._lost_ids, self._lost_types = 0, [], collections.Counter()
        self.batches += 1
        self.records += records

    def _note_failure(self, cause: str) -> None:
        if self._failing != cause:
            log.error("audit_log_unavailable", instance=self.instance, error=cause)
        if self._failing is None and self._chain is not None:
            self._pending.append(checkpoint_record("resume", time=utc_now(), after_error=cause))
        self._failing = cause

    # -- a batch, on the writer's side (task or thread) -------------------------------------------

    def _take_batch(self) -> list[Entry]:
        """Records held across an outage first, then what is queued (at most ``max_batch`` of it), the
        outcomes among them folded into one ``outcomes`` record (:func:`_fold_outcomes`)."""
        queue = self._queue
        batch = self._held
        if batch:
            self._held, self._held_bytes = [], 0
        else:
            batch = []
        popleft, append = queue.popleft, batch.append
        for _ in range(min(len(queue), self.max_batch)):
            append(popleft())
        if self._refused:
            batch = self._drop_refused_outcomes(batch)
        return _fold_outcomes(batch)

    def _drop_refused_outcomes(self, batch: list[Entry]) -> list[Entry]:
        if time.monotonic() > self._refused_until:
            self._refused.clear()
            return batch
        refused = self._refused
        kept: list[Entry] = []
        for entry in batch:
            record = entry[0]
            if entry[1] is None:
                request_id = record[0] if type(record) is tuple else \
                    record.get("request_id") if record.get("type") == "outcome" else None
                if request_id is not None and request_id in refused:
                    log.info("audit_outcome_of_refused_request", instance=self.instance, request_id=request_id)
                    continue
            kept.append(entry)
        return kept

    def _batch_failed(self, batch: list[Entry], exc: Exception) -> str:
        """Note the outage; hold the batch's records nobody waits for (bounded); return the cause."""
        if not isinstance(exc, self.unavailable_errors):
            log.exception("audit_writer_fault", instance=self.instance)  # called inside the except
        cause = describe(exc)
        self._note_failure(cause)
        refused = self._refused
        for entry in batch:
            if entry[1] is None:
                if is_outcomes(entry[0]):  # held as the outcomes it folds: folded again when written
                    for outcome in entry[0].values["outcomes"]:
                        self._hold((outcome, None, 0.0))
                else:
                    self._hold(entry)
            elif entry[0].get("type") == "request" and entry[0].get("request_id") is not None:
                refused[str(entry[0].get("request_id"))] = None
        while len(refused) > MAX_REFUSED_IDS:
            del refused[next(iter(refused))]
        self._refused_until = time.monotonic() + REFUSED_SECONDS
        return cause

    def _hold(self, entry: Entry) -> None:
        record = entry[0]
        size = _size_of(record)
        if self._held_bytes + size <= self.outage_buffer_bytes:
            self._held.append(entry)
            self._held_bytes += size
            return
        self._lose(record)

    def _lose(self, record: dict[str, Any] | PreparedRecord | SplicedRecord | tuple[Any, ...]) -> None:
        kind, request_id = _kind_and_id(record)
        self._lost += 1
        self._lost_types[kind] += 1
        if request_id is not None and len(self._lost_ids) < MAX_LOST_IDS:
            self._lost_ids.append(str(request_id))
        log.error("audit_record_lost", instance=self.instance, type=kind, request_id=request_id,
                  reason=f"outage buffer full ({self.outage_buffer_bytes} bytes)")

    def _abandon_held(self) -> None:
        """The writer stops with records still held (the log never came back before close)."""
        for record, _, _ in self._held:
            kind, request_id = _kind_and_id(record)
            if kind != "checkpoint":
                log.error("audit_record_lost", instance=self.instance, type=kind, request_id=request_id,
                          reason="log closed during an outage")
        self._held, self._held_bytes = [], 0

    def _batch_done(self, batch: list[Entry], errors: list[Exception | None]) -> None:
        if self._failing is not None:
            log.warning("audit_log_resumed", instance=self.instance, after_error=self._failing)
            self._failing = None
        if errors:  # empty: every record sealed
            for (record, _, _), error in zip(batch, errors):
                if error is not None:
                    log.error("audit_record_invalid", type=record.get("type"), error=str(error),
                              request_ids=[o[0] for o in record.values["outcomes"]] if is_outcomes(record) else None)

    def _settle(self, batch: list[Entry], errors: list[Exception | None] | None, cause: str | None) -> None:
        """On the loop, one call per batch: tell its waiters, in order, that their records are durable
        (or refused with ``cause``), and observe the latency histogram for the batch inline (no Python
        call per record for it). A waiter that raises is logged; the others are still told."""
        if errors is None:
            for _, waiter, _ in batch:
                if waiter is not None:
                    try:
                        waiter.failed(unavailable(cause or "unknown error"))
                    except Exception:  # noqa: BLE001 - every other waiter must still be told
                        log.exception("audit_waiter_failed")
            return
        now = _perf_counter()
        hist = self.latency
        if hist is not None:
            buckets, counts = hist.buckets, hist.counts
        total = 0.0
        if not errors:  # every record of the batch is durable (the usual case)
            for _, waiter, started in batch:
                if waiter is not None:
                    try:
                        waiter.durable()
                    except Exception:  # noqa: BLE001
                        log.exception("audit_waiter_failed")
                    if started and hist is not None:
                        seconds = now - started
                        counts[bisect_left(buckets, seconds)] += 1
                        total += seconds
        else:
            for (_, waiter, started), error in zip(batch, errors):
                if waiter is None:
                    continue
                try:
                    if error is None:
                        waiter.durable()
                    else:
                        waiter.failed(AuditUnavailable(f"gateway: the request record is invalid: {error}"))
                except Exception:  # noqa: BLE001
                    log.exception("audit_waiter_failed")
                if error is None and started and hist is not None:
                    seconds = now - started
                    counts[bisect_left(buckets, seconds)] += 1
                    total += seconds
        if total:
            hist.total += total

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
        try:
            while True:
                if not self._queue:
                    if self._closing:
                        return
                    self._wake = loop.create_future()
                    retry = loop.call_later(self.retry_seconds, self._wakeup) if self._held else None
                    try:
                        await self._wake
                    finally:
                        self._wake = None
                        if retry is not None:
                            retry.cancel()
                    if not self._queue and not self._held:
                        continue
                if self._linger and not self._closing and self._queue:
                    await self._gather(loop)
                batch = self._take_batch()
                try:
                    errors = await self._flush([entry[0] for entry in batch])
                except Exception as exc:  # noqa: BLE001 - whatever fails, no waiter may hang: refuse them
                    self._settle(batch, None, self._batch_failed(batch, exc))
                else:
                    self._batch_done(batch, errors)
                    self._settle(batch, errors, None)
        finally:
            self._abandon_held()


def _fold_outcomes(batch: list[Entry]) -> list[Entry]:
    """``batch`` with its outcomes (tuples) folded into one ``outcomes`` record where the last of them
    stood: after every request record of the batch that one of them answers (a request's record is
    queued before its outcome), and the other records keep their order."""
    entries: list[tuple[Any, ...]] = []
    for entry in batch:
        if type(entry[0]) is tuple:
            entries.append(entry[0])
    if not entries:
        return batch
    folded: list[Entry] = []
    left = len(entries)
    for entry in batch:
        if type(entry[0]) is not tuple:
            folded.append(entry)
            continue
        left -= 1
        if not left:
            folded.append((outcomes_record(entries), None, 0.0))
    return folded


def _kind_and_id(record: dict[str, Any] | PreparedRecord | SplicedRecord | tuple[Any, ...]) -> tuple[str, Any]:
    """A queued record's type and request id (an outcome's tuple: ``outcome`` and its first member)."""
    if type(record) is tuple:
        return "outcome", record[0]
    return str(record.get("type")), record.get("request_id")


def _size_of(record: dict[str, Any] | PreparedRecord | SplicedRecord | tuple[Any, ...]) -> int:
    """About how many bytes a held record costs (its JSON; only computed during an outage)."""
    data = record.as_dict() if type(record) in PREPARED else record  # an outcome's tuple as it is
    try:
        return 160 + len(json.dumps(data, default=str, separators=(",", ":")))
    except (TypeError, ValueError):
        return 1024
