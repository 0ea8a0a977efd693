"""Answers held back until their request records are durable (no record, no answer).

A read may run on the backend while its request record is still being written (the fsync overlaps
the query). Whatever the relay would write to the client meanwhile waits here, in order, and is
released when every record it waits for is durable. If one of them fails, nothing held is ever
released and the session is ended with FATAL 58030.

    hold = DurableHold(write_now, fail)
    hold.wait_for(future)     # a record being written
    hold.waiting()            # the same, the record's done-callback calls hold.done(future)
    hold.write(data)          # to the client, now or once the records are durable
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from gateway.errors import AuditUnavailable, GatewayError


class DurableHold:
    __slots__ = ("_write_now", "_fail", "_waiting", "_held", "_failed")

    def __init__(self, write_now: Callable[[bytes], None], fail: Callable[[str], None]) -> None:
        self._write_now = write_now  # to the client's transport
        self._fail = fail  # ends the session with this message (the answer's record failed)
        self._waiting = 0
        self._held: list[bytes] = []
        self._failed = False

    @property
    def active(self) -> bool:
        """Records not yet durable (or one failed): answers are held."""
        return bool(self._waiting) or self._failed

    def write(self, data: bytes) -> None:
        if self._failed:
            return  # nothing more reaches this client
        if self._waiting:
            self._held.append(data)
            return
        self._write_now(data)

    def wait_for(self, record: asyncio.Future[None]) -> None:
        """Hold answers from now on until ``record`` is durable."""
        self._waiting += 1
        record.add_done_callback(self._done)

    def waiting(self) -> None:
        """Hold answers from now on until the record whose done-callback is :meth:`done` is durable
        (the caller has it called: one callback for the record instead of one each)."""
        self._waiting += 1

    def _done(self, task: asyncio.Future[None]) -> None:
        self._waiting -= 1
        if self._failed:
            return
        problem = task.exception() if not task.cancelled() else AuditUnavailable("gateway: the request log write was cancelled")
        if problem is not None:
            # an answer whose record failed must never be released: drop what is held, end the session
            self._held.clear()
            self._failed = True
            self._fail(problem.client_message() if isinstance(problem, GatewayError)
                       else "gateway: the request log is unavailable")
            return
        if not self._waiting and self._held:
            data = b"".join(self._held)
            self._held.clear()
            self._write_now(data)

    done = _done  # the record's done-callback, for :meth:`waiting`
