"""Shorthands for the refusals the analyzer raises (all fail closed)."""

from __future__ import annotations

from gateway.errors import PolicyDenied, QueryNotUnderstood


def not_understood(what: str) -> QueryNotUnderstood:
    return QueryNotUnderstood(f"gateway: {what}; the gateway refuses what it cannot fully analyze", rule="analyzer.fail_closed")


def refused(what: str, rule: str) -> PolicyDenied:
    return PolicyDenied(f"gateway: {what}", rule=rule)
