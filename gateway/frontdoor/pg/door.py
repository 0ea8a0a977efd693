"""Limits at the wire door: connection counts, login deadlines, idle timeouts, file descriptors.

    door = Door(DoorLimits.from_settings(settings))
    refusal = door.admit(host)          # None, or the FATAL error for a client over a limit
    ...  door.leave(host)
    door.sweep(sessions, now)           # closes sessions idle past their timeout

A refused client gets FATAL 53300 with the limit's name and the gateway logs it (at most one line a
second per limit, with the count since the last line, so a flood cannot flood the log too).
"""

from __future__ import annotations

import logging
import resource
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from gateway.errors import TooManyConnections

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DoorLimits:
    max_message_before_login: int = 16 * 1024
    max_message: int = 16 * 1024 * 1024
    startup_timeout: float = 10.0
    auth_timeout: float = 15.0
    idle_session_timeout: float = 3600.0  # 0: never
    idle_in_transaction_timeout: float = 300.0  # 0: never
    max_connections: int = 2000
    max_per_address: int = 500
    max_per_requester: int = 500
    fd_headroom: int = 64
    max_session_statements: int = 1000  # named prepared statements (and named portals) per session

    @classmethod
    def from_settings(cls, s: Any) -> DoorLimits:
        return cls(s.max_message_bytes_before_login, s.max_message_bytes, s.startup_timeout_ms / 1000,
                   s.auth_timeout_ms / 1000, s.idle_session_timeout_ms / 1000, s.idle_in_transaction_timeout_ms / 1000,
                   s.max_connections, s.max_connections_per_address, s.max_connections_per_requester, s.fd_headroom,
                   s.wire_max_session_statements)


def fit_file_descriptors(limits: DoorLimits, backend_connections: int) -> DoorLimits:
    """Raise the soft RLIMIT_NOFILE to what the limits need (each client may hold a backend
    connection) plus headroom; when the hard limit is lower, lower ``max_connections`` and say so."""
    from dataclasses import replace

    need = 2 * limits.max_connections + backend_connections + limits.fd_headroom
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < need:
        fitted = max(1, (soft - backend_connections - limits.fd_headroom) // 2)
        log.warning("only %d file descriptors: max_connections lowered from %d to %d (fd_headroom %d)",
                    soft, limits.max_connections, fitted, limits.fd_headroom)
        return replace(limits, max_connections=fitted)
    return limits


class _Throttled:
    """One log line a second per kind of refusal, with the count since the last line."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._count: Counter[str] = Counter()

    def warn(self, kind: str, message: str) -> None:
        self._count[kind] += 1
        now = time.monotonic()
        if now - self._last.get(kind, 0.0) >= 1.0:
            n = self._count.pop(kind)
            self._last[kind] = now
            log.warning("%s%s", message, f" ({n} refused since the last line)" if n > 1 else "")


class Door:
    def __init__(self, limits: DoorLimits) -> None:
        self.limits = limits
        self.total = 0
        self.by_address: Counter[str] = Counter()
        self.by_requester: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()  # kind -> count (metrics)
        self._log = _Throttled()

    # -- connections ---------------------------------------------------------------------------
    def admit(self, host: str) -> TooManyConnections | None:
        """Count a new client from ``host``; the refusal when it is over a limit (then do not leave())."""
        if self.total >= self.limits.max_connections:
            return self._refuse_total(host)
        if self.by_address[host] >= self.limits.max_per_address:
            return self._refuse_address(host)
        self.total += 1
        self.by_address[host] += 1
        return None

    def leave(self, host: str) -> None:
        self.total -= 1
        self.by_address[host] -= 1
        if self.by_address[host] <= 0:
            del self.by_address[host]

    def admit_requester(self, name: str, host: str) -> TooManyConnections | None:
        if self.by_requester[name] >= self.limits.max_per_requester:
            return self._refuse_requester(name, host)
        self.by_requester[name] += 1
        return None

    def leave_requester(self, name: str) -> None:
        self.by_requester[name] -= 1
        if self.by_requester[name] <= 0:
            del self.by_requester[name]

    def _refuse_total(self, host: str) -> TooManyConnections:
        return self._refuse("max_connections", f"gateway: sorry, too many clients already "
                            f"({self.limits.max_connections}, setting max_connections)", host)

    def _refuse_address(self, host: str) -> TooManyConnections:
        return self._refuse("max_connections_per_address", f"gateway: too many connections from {host} "
                            f"({self.limits.max_per_address}, setting max_connections_per_address)", host)

    def _refuse_requester(self, name: str, host: str) -> TooManyConnections:
        return self._refuse("max_connections_per_requester", f"gateway: too many connections for requester "
                            f"{name} ({self.limits.max_per_requester}, setting max_connections_per_requester)", host)

    def _refuse(self, kind: str, message: str, host: str) -> TooManyConnections:
        self.refused[kind] += 1
        self._log.warn(kind, f"refused a client from {host}: {message.removeprefix('gateway: ')}")
        return TooManyConnections(message, rule=f"limits.{kind}")

    # -- idle sessions -------------------------------------------------------------------------
    @property
    def sweep_interval(self) -> float:
        timeouts = [t for t in (self.limits.idle_session_timeout, self.limits.idle_in_transaction_timeout) if t > 0]
        return min(5.0, max(0.2, min(timeouts) / 4)) if timeouts else 0.0

    def idle_expired(self, session: Any, now: float) -> tuple[str, str] | None:
        """(sqlstate, message) when ``session`` has waited for its client past its timeout."""
        since = session.idle_since
        if not since or session.relay.busy:
            return None
        in_transaction = session.relay.status != "I"
        timeout = self.limits.idle_in_transaction_timeout if in_transaction else self.limits.idle_session_timeout
        if timeout <= 0 or now - since < timeout:
            return None
        if in_transaction:
            return ("25P03", f"gateway: terminating connection due to idle-in-transaction timeout ({timeout:g} s, "
                             "setting idle_in_transaction_timeout_ms)")
        return ("57P05", f"gateway: terminating connection due to idle-session timeout ({timeout:g} s, "
                         "setting idle_session_timeout_ms)")
