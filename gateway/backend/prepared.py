"""What one backend connection holds as prepared statements under the gateway's names.

Client sessions never prepare under their own names on a pooled connection: a statement is prepared
as ``gw_<hash of rewritten SQL and parameter types>``, so clients that prepare the same text share one
backend statement, and a session can run its statements on whichever connection it gets (PgBouncer's
``max_prepared_statements``). The set is bounded; the least recently used statement is closed first.

Every change (Parse, Close, DISCARD ALL) is *projected* when it is sent and *settled* when its answer
comes: confirmed, or undone if the backend refused or skipped it (an error earlier in the batch). So
the gateway never believes the backend holds a statement it lacks, or the reverse.

    held = PreparedSet(limit=200)
    if name not in held:
        change = held.add(name)       # send Parse(name, ...); the relay calls change(True / False)
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict, deque
from collections.abc import Callable

PREFIX = "gw_"


def server_name(sql: str, param_types: tuple[int, ...]) -> str:
    """The backend name of a rewritten statement with these parameter types."""
    digest = hashlib.blake2b(sql.encode(), digest_size=12)
    digest.update(b"\0" + ",".join(map(str, param_types)).encode())
    return PREFIX + digest.hexdigest()


class PreparedCounters:
    """Pool-wide counts, for /metrics and SHOW POOLS."""

    __slots__ = ("parses", "shared", "evicted", "client_parses")

    def __init__(self) -> None:
        self.parses = 0  # Parse messages the gateway sent (first prepare or re-prepare on another connection)
        self.shared = 0  # a client's Parse answered from what the connection already held
        self.evicted = 0  # statements closed to stay within the bound
        self.client_parses = 0  # named Parse messages from clients

    def stats(self) -> dict[str, int]:
        return {"prepared_parses_total": self.parses, "prepared_shared_total": self.shared,
                "prepared_evicted_total": self.evicted, "prepared_client_parses_total": self.client_parses}


class _Change:
    __slots__ = ("owner", "op", "name")

    def __init__(self, owner: PreparedSet, op: str, name: str) -> None:
        self.owner = owner
        self.op = op
        self.name = name

    def __call__(self, ok: bool) -> None:
        self.owner._settle(self, ok)


def _apply(held: OrderedDict[str, None], op: str, name: str) -> None:
    if op == "add":
        held[name] = None
        held.move_to_end(name)
    elif op == "close":
        held.pop(name, None)
    else:  # clear
        held.clear()


class PreparedSet:
    def __init__(self, limit: int = 200) -> None:
        self.limit = max(1, limit)
        self.counters = PreparedCounters()
        self._confirmed: OrderedDict[str, None] = OrderedDict()
        self._projected: OrderedDict[str, None] = OrderedDict()
        self._inflight: deque[_Change] = deque()

    def __contains__(self, name: str) -> bool:
        return name in self._projected

    def __len__(self) -> int:
        return len(self._projected)

    def touch(self, name: str) -> None:
        """``name`` was used: it is evicted last."""
        self._projected.move_to_end(name)

    def add(self, name: str) -> Callable[[bool], None]:
        return self._change("add", name)

    def close(self, name: str) -> Callable[[bool], None]:
        return self._change("close", name)

    def clear(self) -> Callable[[bool], None]:
        return self._change("clear", "")

    def victims(self, keep: str) -> list[str]:
        """Statements to close so that adding one more stays within the bound (``keep`` is spared)."""
        out = []
        excess = len(self._projected) + 1 - self.limit
        for name in self._projected:
            if excess <= 0:
                break
            if name != keep:
                out.append(name)
                excess -= 1
        return out

    def reset(self) -> None:
        """The backend holds nothing any more (a new connection, or DISCARD ALL by the pool)."""
        self._confirmed.clear()
        self._projected.clear()
        self._inflight.clear()

    def _change(self, op: str, name: str) -> _Change:
        change = _Change(self, op, name)
        _apply(self._projected, op, name)
        self._inflight.append(change)
        return change

    def _settle(self, change: _Change, ok: bool) -> None:
        try:
            self._inflight.remove(change)
        except ValueError:
            return  # reset meanwhile
        if ok:
            _apply(self._confirmed, change.op, change.name)
            return
        # the backend did not do it: what it holds is the confirmed state plus the changes still in flight
        projected = OrderedDict((k, None) for k in self._projected if k in self._confirmed)
        for k in self._confirmed:
            projected.setdefault(k, None)
        for pending in self._inflight:
            _apply(projected, pending.op, pending.name)
        self._projected = projected
