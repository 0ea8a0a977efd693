"""A request-log writer on its own thread: whole batches sealed and written there, one wake-up each way.

The event loop only queues: ``submit``/``append_nowait`` append to a deque (atomic under the GIL) and,
only when the writer thread sleeps, wake it through an eventfd (one ``write``), at the end of the
loop iteration, so that everything the sessions served in that iteration queued is one batch. The thread takes
everything queued, seals it into the chain, writes it durably (:meth:`ThreadWriter._flush_sync`, which
releases the GIL in the kernel), and hands the whole batch back to the loop with one
``call_soon_threadsafe``, where its waiters are told (:meth:`GroupCommitSink._settle`). While the disk works the loop keeps
queueing, so batches grow with load by themselves (no linger timer, a lone client waits for nothing).

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


class ThreadWriter(GroupCommitSink):
    """A :class:`GroupCommitSink` whose writer is a dedicated thread around a blocking flush."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._thread: threading.Thread | None = None
        self._efd = -1
        self._idle = False  # the thread sleeps (or is about to) on the eventfd: wake it
        self._kick_armed = False  # a wake-up is scheduled for the end of this loop iteration
        self._later: asyncio.TimerHandle | None = None  # a wake-up for records nobody waits for
        self._stopped: asyncio.Future[None] | None = None
        self._retry_at = 0.0

    def _flush_sync(self, records: list[Any]) -> list[Exception | None]:
        """Seal ``records`` into the chain and make them durable (blocking; on the writer thread)."""
        raise NotImplementedError

    # -- on the loop -------------------------------------------------------------------------------

    def _start_writer(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = self._loop.create_future()
        self._efd = os.eventfd(0, os.EFD_CLOEXEC)
        self._thread = threading.Thread(target=self._thread_main, name=f"audit-writer-{self.instance}", daemon=True)
        self._started = True
        self._thread.start()

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

    def _thread_stopped(self) -> None:
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

    def _thread_main(self) -> None:
        assert self._loop is not None
        call = self._loop.call_soon_threadsafe
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
                    call(self._settle, batch, None, cause)
                else:
                    self._batch_done(batch, errors)
                    call(self._settle, batch, errors, None)
        except BaseException:  # a bug here must not leave the waiters and close() hanging
            log.exception("audit_writer_thread_died", instance=self.instance)
            self._failing = cause = self._failing or "the writer thread stopped"
            self._closing = True  # submit refuses from now on; what is queued is refused, not left hanging
            left = list(queue)
            queue.clear()
            call(self._settle, left, None, cause)
            raise
        finally:
            self._abandon_held()
            try:
                call(self._thread_stopped)
            except RuntimeError:  # the loop is closed already
                pass
