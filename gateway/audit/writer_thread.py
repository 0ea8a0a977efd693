"""A request-log writer on its own thread: whole batches sealed and written there, one wake-up each way.

The event loop only queues: ``submit``/``append_nowait`` append to a deque (atomic under the GIL) and,
only when the writer thread sleeps, wake it through an eventfd (one ``write``), at the end of the
loop iteration, so that everything the sessions served in that iteration queued is one batch. The thread takes
everything queued, seals it into the chain, writes it durably (:meth:`ThreadWriter._flush_sync`, which
releases the GIL in the kernel), and hands the whole batch back to the loop with one
eventfd the loop watches (``add_reader``), where its waiters are told (:meth:`GroupCommitSink._settle`).
While the disk works the loop keeps queueing, so batches grow with load by themselves (no linger timer, a
lone client waits for nothing).

The hand-back is a reader of the loop's own, not ``call_soon_threadsafe``: a callback queued that way
runs only after every I/O callback of the loop iteration in which it arrived (at 8 clients, the next
requests' plans and records, about 350 µs), while a reader runs in the iteration, in the order the
kernel made the eventfd ready among the sockets. The thread writes that eventfd without releasing the
GIL (libc's ``eventfd_write`` through ``ctypes.PyDLL``), as ``call_soon_threadsafe`` did.

Records nobody waits for (``append_nowait``: outcomes, alerts) do not start a write of their own:
they go with the next request's record, or after ``fsync_interval_ms`` (the linger) if none comes.
A lone client's request thus waits for one write (its own), not for its previous outcome's first, and
under load outcome-only writes disappear.

The loop lane: where the C disk thread is built (``gateway/audit/_disk.c``) and the subclass can
(:meth:`ThreadWriter._lane_ready`: the file sink with its journal, nothing unusual due), the kick
writes the batch from the loop instead: sealed and appended there (:meth:`ThreadWriter._lane_write`),
its one durable write handed to the disk thread, a pthread that never takes the GIL and signals the
same eventfd when done (:meth:`ThreadWriter._lane_finish` settles the batch). Whoever writes a batch
holds ``_claim`` (the lane from its kick to its finish, the thread for a batch the loop handed it with
``_slow``): one batch in flight at a time. Rotation, reopening, an outage's retries, the tip file
(:meth:`ThreadWriter._store_tip`) and close stay on the thread (:meth:`ThreadWriter._serve_slow`).

Compared with a writer task that ran each batch's write in an executor: no executor future and no
``call_soon_threadsafe`` per hand-over in each direction, no task switch per batch on the loop, and the
seal runs on the thread while the loop is free to read sockets. Durable before release is unchanged:
a waiter is told only after the batch holding its record came back from ``_flush_sync``.
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import os
import select
import threading
import time
from typing import Any

import structlog

from gateway._pure import pure_forced
from gateway.audit.chain import checkpoint_record
from gateway.audit.group_commit import GroupCommitSink
from gateway.audit.record import utc_now

log = structlog.get_logger("gateway.audit")


def _held_eventfd_write() -> Any:
    """libc's ``eventfd_write(fd, value)`` called with the GIL held (``ctypes.PyDLL``), or
    ``os.eventfd_write`` (which releases it) where libc has none."""
    try:
        func = ctypes.PyDLL(None).eventfd_write
    except (AttributeError, OSError):
        return os.eventfd_write
    func.argtypes = [ctypes.c_int, ctypes.c_uint64]
    func.restype = ctypes.c_int
    return func


_signal = _held_eventfd_write()


def _disk_type() -> Any:
    """The C disk thread's type (``gateway/audit/_disk.c``), or None where it was not built (or
    ``GATEWAY_PURE_PYTHON`` forces the sources): the writer thread then makes every write itself."""
    if pure_forced():
        return None
    try:
        from gateway.audit._disk import Disk
    except ImportError:
        return None
    return Disk


DISK = _disk_type()


class ThreadWriter(GroupCommitSink):
    """A :class:`GroupCommitSink` whose writer is a dedicated thread around a blocking flush."""

    def __init__(self, *, lane: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: batches may be written from the loop (see "The loop lane" above) where the subclass can
        self.lane = lane and DISK is not None
        self._disk: Any = None  # the C disk thread, while the writer runs with the lane
        self._claim = threading.Lock()  # held by whoever writes a batch now: the lane (loop) or the thread
        self._lane_batch: tuple[list[Any], list[Exception | None], Any] | None = None  # in flight on the disk
        self._lane_idle: asyncio.Future[None] | None = None  # close() waits for the lane's batch
        self._slow = False  # the loop asks the thread for the next batch (the lane cannot take it)
        self.lane_batches = 0  # batches written from the loop (for tests and benchmarks)
        self._tips: collections.deque[Any] = collections.deque()  # tail anchors for the thread to store
        self._thread: threading.Thread | None = None
        self._efd = -1
        # batches back from the thread, in order: (batch, errors, cause); the thread signals _done_efd
        self._done: collections.deque[tuple[list[Any], list[Exception | None] | None, str | None]] = collections.deque()
        self._done_efd = -1
        self._idle = False  # the thread sleeps (or is about to) on the eventfd: wake it
        self._kick_armed = False  # a wake-up is scheduled for the end of this loop iteration
        self._later: asyncio.TimerHandle | None = None  # a wake-up for records nobody waits for
        self._stopped: asyncio.Future[None] | None = None
        self._retry_at = 0.0

    def _flush_sync(self, records: list[Any]) -> list[Exception | None]:
        """Seal ``records`` into the chain and make them durable (blocking; on the writer thread)."""
        raise NotImplementedError

    def _store_tip(self, tip: Any) -> None:
        """On the writer thread, after the batch it anchors was handed back: store the chain's end
        outside the log (the file sink's tip file); work that need not delay that batch's answers."""

    def _repair(self) -> None:
        """On the writer thread, before anything else: undo what a failed lane batch left behind."""

    # -- the loop lane (subclasses that can write a batch from the loop) --------------------------

    def _lane_ready(self) -> bool:
        """On the loop, holding the claim: whether the next batch can be written from the loop."""
        return False

    def _lane_write(self, records: list[Any]) -> tuple[list[Exception | None], Any, tuple[int, bytes, int, int]]:
        """On the loop: seal ``records`` and write them without waiting for the disk; return the seal's
        errors, state for :meth:`_lane_written`, and the durable write for the disk thread
        ``(fd, data, offset, sync_fd)``. Raises (nothing left behind) when the batch cannot be written."""
        raise NotImplementedError

    def _lane_written(self, state: Any, err: int) -> Exception | None:
        """On the loop, once the disk thread's write ended with ``err`` (0: durable): None, or the
        exception that refuses the batch (after which :meth:`_repair` runs on the thread)."""
        raise NotImplementedError

    def _note_tip(self) -> None:
        """The batch just written set a tail anchor: queue it for the thread (:meth:`_store_tip`)."""
        if self._tip is not None:
            self._tips.append(self._tip)
            self._tip = None

    def _chores(self) -> None:
        """On the thread: the tail anchor queued last (older ones are superseded by it)."""
        tip = None
        tips = self._tips
        while tips:
            tip = tips.popleft()
        if tip is not None:
            self._store_tip(tip)

    # -- on the loop -------------------------------------------------------------------------------

    def _start_writer(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = self._loop.create_future()
        self._efd = os.eventfd(0, os.EFD_CLOEXEC)
        self._done_efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self._loop.add_reader(self._done_efd, self._on_done)
        if self.lane:
            self._disk = DISK(self._done_efd)
        self._thread = threading.Thread(target=self._thread_main, name=f"audit-writer-{self.instance}", daemon=True)
        self._started = True
        self._thread.start()

    def _on_done(self) -> None:
        """On the loop, when the thread signals: settle every batch it handed back, in order."""
        try:
            os.eventfd_read(self._done_efd)
        except BlockingIOError:
            pass
        done = self._done
        while done:
            self._settle(*done.popleft())
        if self._disk is not None:
            if self._lane_batch is not None:
                self._lane_finish()
            if self._queue and not self._kick_armed and not self._claim.locked():
                if self._urgent:
                    self._kick()
                else:
                    self._wakeup_later()

    def _wakeup(self) -> None:
        """Wake a sleeping writer once the loop has run what is ready now (``call_soon``, no timer):
        records queued by every session served in this loop iteration go into one batch. With the
        lane, the kick writes that batch from the loop unless a batch is being written (whose end
        kicks again)."""
        if not self._kick_armed and (self._idle if self._disk is None else not self._claim.locked()):
            self._kick_armed = True
            assert self._loop is not None
            self._loop.call_soon(self._kick)

    def _wakeup_later(self) -> None:
        """A record nobody waits for (an outcome, an alert) was queued: it need not be written at once
        (a write of its own would take the disk from the next request). A sleeping writer is woken
        after the linger (``fsync_interval_ms``) unless a request's record wakes it first; then both go
        in one write."""
        if (self._idle or self._disk is not None) and not self._kick_armed and self._later is None:
            assert self._loop is not None
            self._later = self._loop.call_later(self._linger, self._kick_late)

    def _kick(self) -> None:
        self._kick_armed = False
        if self._later is not None:
            self._later.cancel()
            self._later = None
        if self._disk is not None:
            self._lane_kick()
        elif self._idle:
            self._idle = False
            os.eventfd_write(self._efd, 1)

    def _kick_late(self) -> None:
        self._later = None
        self._urgent = True  # the linger is over: write what is queued
        if self._disk is not None:
            self._lane_kick()
        elif self._idle:
            self._idle = False
            os.eventfd_write(self._efd, 1)

    def _lane_kick(self) -> None:
        """Write what is queued: from the loop when the subclass can (:meth:`_lane_ready`), else by
        waking the thread for it. Nothing when a batch is being written (its end kicks again)."""
        if self._closing or not (self._queue or self._held) or not self._claim.acquire(False):
            return
        try:
            ready = self._lane_ready()
        except Exception:  # noqa: BLE001 - whatever the check trips on, the thread's path handles it
            log.exception("audit_lane_check_failed", instance=self.instance)
            ready = False
        if not ready:
            self._claim.release()
            self._slow = True
            os.eventfd_write(self._efd, 1)
            return
        self._urgent = False
        batch = self._take_batch()
        try:
            errors, state, (fd, data, offset, sync_fd) = self._lane_write([entry[0] for entry in batch])
            self._disk.submit(fd, data, offset, sync_fd)
        except Exception as exc:  # noqa: BLE001 - whatever fails, no waiter may hang: refuse them
            cause = self._batch_failed(batch, exc)
            self._retry_at = time.monotonic() + self.retry_seconds
            self._claim.release()
            self._settle(batch, None, cause)
            os.eventfd_write(self._efd, 1)  # the thread repairs, and retries what is held
            return
        self._lane_batch = (batch, errors, state)

    def _lane_finish(self) -> None:
        """On the loop: the disk thread's write of the lane's batch ended; settle the batch."""
        err = self._disk.result()
        if err is None:
            return
        assert self._lane_batch is not None
        batch, errors, state = self._lane_batch
        self._lane_batch = None
        try:
            exc = self._lane_written(state, err)
        except Exception as fault:  # noqa: BLE001
            exc = fault
        if exc is None:
            self.lane_batches += 1
            self._batch_done(batch, errors)
            self._note_tip()
            self._claim.release()
            self._settle(batch, errors, None)
            if self._tips or self._slow:
                os.eventfd_write(self._efd, 1)
        else:
            cause = self._batch_failed(batch, exc)
            self._retry_at = time.monotonic() + self.retry_seconds
            self._claim.release()
            self._settle(batch, None, cause)
            os.eventfd_write(self._efd, 1)
        if self._lane_idle is not None and not self._lane_idle.done():
            self._lane_idle.set_result(None)

    async def _stop_writer(self) -> None:
        if self._thread is None or self._closing:
            return
        while self._lane_batch is not None:  # the thread writes the rest: the lane's batch ends first
            assert self._loop is not None
            self._lane_idle = self._loop.create_future()
            await self._lane_idle
        self._queue.append((checkpoint_record("close", time=utc_now()), None, 0.0))
        self._closing = True
        if self._later is not None:
            self._later.cancel()
            self._later = None
        self._idle = False
        os.eventfd_write(self._efd, 1)
        assert self._stopped is not None
        await self._stopped
        self._thread.join()
        self._thread = None
        if self._disk is not None:
            self._disk.close()
            self._disk = None
        os.close(self._efd)
        self._efd = -1
        self._close_done()

    def _close_done(self) -> None:
        if self._done_efd >= 0:
            assert self._loop is not None
            self._loop.remove_reader(self._done_efd)
            self._on_done()  # nothing handed back is left unsettled
            os.close(self._done_efd)
            self._done_efd = -1

    def _thread_stopped(self) -> None:
        self._close_done()  # batches handed back before the thread stopped are settled first
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)

    # -- on the writer thread ----------------------------------------------------------------------

    def _sleep(self) -> None:
        """Wait for the loop's wake-up. While only records nobody waits for are queued, for the linger
        at most (then they are written); while records are held across an outage, until the retry time."""
        self._idle = True
        queue = self._queue
        if self._closing or (queue and self._urgent):  # queued between the check and the flag: the loop saw no sleeper
            self._idle = False
            return
        timeout: float | None = self._linger if queue else None
        if self._held:
            retry = max(0.0, self._retry_at - time.monotonic())
            timeout = retry if timeout is None else min(timeout, retry)
        if timeout is None:
            os.eventfd_read(self._efd)  # releases the GIL; one read per wake-up
        elif select.select([self._efd], [], [], timeout)[0]:
            os.eventfd_read(self._efd)
        elif queue:
            self._urgent = True  # the linger passed without a request: write what waits
        self._idle = False

    def _sleep_lane(self) -> None:
        """With the lane: wait to be woken (a batch the lane cannot write, a tail anchor to store,
        close), or, while records are held across an outage, until the retry time. Records queued
        while nobody writes are the loop's to write: it is told (its ``_on_done`` kicks)."""
        self._idle = True
        free = not self._claim.locked()
        if free and (self._closing or self._slow):
            return
        if self._queue and free:
            _signal(self._done_efd, 1)
        if self._held and free:
            if select.select([self._efd], [], [], max(0.0, self._retry_at - time.monotonic()))[0]:
                os.eventfd_read(self._efd)
        else:
            os.eventfd_read(self._efd)  # releases the GIL; one read per wake-up

    def _serve_slow(self) -> None:
        """The thread's loop with the lane: batches the loop hands it (``_slow``: rotation, reopening,
        an outage's retries, close), and the chores."""
        queue = self._queue
        back = self._hand_back
        while True:
            self._repair()
            self._chores()
            retry = bool(self._held) and time.monotonic() >= self._retry_at and self._failing is not None
            if not (self._slow or self._closing or retry) or not self._claim.acquire(False):
                if self._closing and not queue and not self._claim.locked():
                    return
                self._sleep_lane()
                continue
            self._idle = False
            self._slow = False
            self._repair()  # again, holding the claim: a lane batch may have failed since the first
            if not queue and (self._closing or not self._held):  # at close, what is held is given up
                self._claim.release()
                if self._closing:
                    return
                continue
            self._urgent = False
            batch = self._take_batch()
            try:
                errors = self._flush_sync([entry[0] for entry in batch])
            except Exception as exc:  # noqa: BLE001 - whatever fails, no waiter may hang: refuse them
                cause = self._batch_failed(batch, exc)
                self._retry_at = time.monotonic() + self.retry_seconds
                self._claim.release()
                back(batch, None, cause)
            else:
                self._batch_done(batch, errors)
                self._note_tip()
                self._claim.release()
                back(batch, errors, None)

    def _hand_back(self, batch: list[Any], errors: list[Exception | None] | None, cause: str | None) -> None:
        """On the thread: give a batch back to the loop (settled by :meth:`_on_done`)."""
        self._done.append((batch, errors, cause))
        _signal(self._done_efd, 1)

    def _thread_main(self) -> None:
        assert self._loop is not None
        call = self._loop.call_soon_threadsafe
        back = self._hand_back
        queue = self._queue
        try:
            if self._disk is not None:
                self._serve_slow()
                return
            while True:
                if not queue:
                    if self._closing:
                        return
                    if not self._held or time.monotonic() < self._retry_at:
                        self._sleep()
                        continue
                elif not (self._urgent or self._closing or self._held):
                    self._sleep()  # only records nobody waits for: they go with the next request's
                    continue
                self._urgent = False
                batch = self._take_batch()
                try:
                    errors = self._flush_sync([entry[0] for entry in batch])
                except Exception as exc:  # noqa: BLE001 - whatever fails, no waiter may hang: refuse them
                    cause = self._batch_failed(batch, exc)
                    self._retry_at = time.monotonic() + self.retry_seconds
                    back(batch, None, cause)
                else:
                    self._batch_done(batch, errors)
                    self._note_tip()
                    back(batch, errors, None)
                    self._chores()
        except BaseException:  # a bug here must not leave the waiters and close() hanging
            log.exception("audit_writer_thread_died", instance=self.instance)
            self._failing = cause = self._failing or "the writer thread stopped"
            self._closing = True  # submit refuses from now on; what is queued is refused, not left hanging
            left = list(queue)
            queue.clear()
            back(left, None, cause)
            raise
        finally:
            self._abandon_held()
            try:
                call(self._thread_stopped)
            except RuntimeError:  # the loop is closed already
                pass
