"""Frozen values the plan stage hands to the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.errors import GatewayError
from gateway.policy.types import Access, Decision


@dataclass(frozen=True)
class StatementPlan:
    kind: str  # select | transaction | set | show | gateway_set | gateway_show | noop | empty
    sql: str
    command_tag: str
    redacted: tuple[str, ...] = ()
    setting: tuple[str, str | None] | None = None
    accesses: tuple[Access, ...] = ()
    decision: Decision | None = None
    masked: tuple[str, ...] = ()
    # the printed SQL as template parts and the literal values between them (shape-cached statements):
    # lets the request log hash the literals without tokenizing the printed SQL again
    parts: tuple[str, ...] | None = field(default=None, compare=False)
    slots: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class Analysis:
    statements: tuple[StatementPlan, ...]
    decision: Decision
    error: GatewayError | None = None
    cache: str = "miss"  # "exact" | "shape" | "miss"
    # on a shape hit, the tokens of the analyzed text: the request log hashes its literals without
    # tokenizing it again (never pickled across to an analysis worker: only set by the cache)
    tokens: Any = field(default=None, compare=False, repr=False)

    @property
    def redacted(self) -> tuple[str, ...]:
        return redacted_columns(self.statements)


def redacted_columns(statements: tuple[StatementPlan, ...]) -> tuple[str, ...]:
    """Every redacted output column of ``statements``, once each, in order."""
    return tuple(dict.fromkeys(c for st in statements for c in st.redacted))


def denied(error: GatewayError) -> Analysis:
    return Analysis((), Decision("deny", error.message.removeprefix("gateway: "), rule=error.rule or ""), error)
