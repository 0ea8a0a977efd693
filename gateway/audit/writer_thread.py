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


class ThreadWriter(GroupCommitSink):
    """A :class:`GroupCommitSink` whose writer is a dedicated thread around a blocking flush."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
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

    def _after_batch(self) -> None:
        """On the writer thread, after a batch that was made durable was handed back: work that need
        not delay its answers (the file sink's tip file)."""

    # -- on the loop -------------------------------------------------------------------------------

    def _start_writer(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = self._loop.create_future()
        self._efd = os.eventfd(0, os.EFD_CLOEXEC)
        self._done_efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self._loop.add_reader(self._done_efd, self._on_done)
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

    def _wakeup(self) -> None:
        """Wake a sleeping writer once the loop has run what is ready now (``call_soon``, no timer):
        records queued by every session served in this loop iteration go into one batch."""
        if self._idle and not self._kick_armed:
            self._kick_armed = True
            assert self._loop is not None
            self._loop.call_soon(self._kick)

    def _wakeup_later(self) -> None:
        """A record nobody waits for (an outcome, an alert) was queued: it need not be written at once
        (a write of its own would take the disk from the next request). A sleeping writer is woken
        after the linger (``fsync_interval_ms``) unless a request's record wakes it first; then both go
        in one write."""
        if self._idle and not self._kick_armed and self._later is None:
            assert self._loop is not None
            self._later = self._loop.call_later(self._linger, self._kick_late)

    def _kick(self) -> None:
        self._kick_armed = False
        if self._later is not None:
            self._later.cancel()
            self._later = None
        if self._idle:
            self._idle = False
            os.eventfd_write(self._efd, 1)

    def _kick_late(self) -> None:
        self._later = None
        self._urgent = True  # the linger is over: write what is queued
        if self._idle:
            self._idle = False
            os.eventfd_write(self._efd, 1)

    async def _stop_writer(self) -> None:
        if self._thread is None or self._closing:
            return
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
                    back(batch, errors, None)
                    self._after_batch()
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
