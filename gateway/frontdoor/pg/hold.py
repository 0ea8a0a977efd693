"""Answers held back until their request records are durable (no record, no answer).

A read may run on the backend while its request record is still being written (the fsync overlaps
the query). Whatever the relay would write to the client meanwhile waits here, in order, and is
released when every record it waits for is durable. If one of them fails, nothing held is ever
released and the session is ended with FATAL 58030.

    hold = DurableHold(write_now, fail)
    audit.submit(record, hold)  # the hold is the record's DurableWaiter (gateway/audit/sink.py)
    hold.waiting()              # hold answers from now on; the sink calls hold.durable() or hold.failed(exc)
    hold.write(data)            # to the client, now or once the records are durable

The sink tells the hold from the one loop callback that completes the record's batch: no future and
no done-callback per record.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.errors import GatewayError


class DurableHold:
    __slots__ = ("_write_now", "_fail", "_waiting", "_held", "_failed", "_idle")

    def __init__(self, write_now: Callable[[bytes], None], fail: Callable[[str], None]) -> None:
        self._write_now = write_now  # to the client's transport
        self._fail = fail  # ends the session with this message (the answer's record failed)
        self._waiting = 0
        self._held: list[bytes] = []
        self._failed = False
        self._idle: Callable[[], None] | None = None  # called once no record is left (or one failed)

    @property
    def records(self) -> int:
        """Records submitted with this hold that are not durable yet."""
        return self._waiting

    def when_idle(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` (once) when no record is left waiting, after the held answers are released, or
        when one fails: a session with many records in flight stops reading its client until then."""
        self._idle = wake

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

    def waiting(self) -> None:
        """Hold answers from now on until the record this hold was submitted with is durable (the sink
        calls :meth:`durable` or :meth:`failed` once for it, on a later loop callback, never before
        ``submit`` returns)."""
        self._waiting += 1

    def durable(self) -> None:
        """A record this hold waits for is durable: once none is left, release what is held."""
        self._waiting -= 1
        if not self._waiting and self._held and not self._failed:
            held = self._held
            data = b"".join(held) if len(held) > 1 else held[0]
            held.clear()
            self._write_now(data)
        if not self._waiting:
            self._wake()

    def _wake(self) -> None:
        wake = self._idle
        if wake is not None:
            self._idle = None
            wake()

    def failed(self, exc: BaseException) -> None:
        """A record this hold waits for cannot be written: an answer whose record failed is never
        released; drop what is held and end the session."""
        self._waiting -= 1
        self._wake()  # every time: after the first failure, later ones end the records still waited for
        if self._failed:
            return
        self._held.clear()
        self._failed = True
        self._fail(exc.client_message() if isinstance(exc, GatewayError) else "gateway: the request log is unavailable")
