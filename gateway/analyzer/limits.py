"""Bounds checked before a statement is parsed: its length, then its nesting depth from the tokens.

The compiled parser overflows the C stack (the process dies) on subqueries nested ~8,000 deep and the
pure-Python one raises RecursionError from ~6,000; every later pass recurses too. A linear scan of the
tokens refuses deep statements before any of that runs.

>>> from sqlglot.dialects.postgres import Postgres
>>> tokens = Postgres().tokenizer().tokenize("SELECT ((1)), CASE WHEN NOT NOT x THEN 1 END")
>>> nesting_depth(tokens)  # CASE, then NOT NOT inside it
3
>>> AnalysisLimits(max_depth=1).check_depth(tokens).code
'statement_too_complex'
>>> AnalysisLimits(max_statement_chars=5).check_size("SELECT 1").code
'statement_too_large'

``ARRAY[...]`` constructors are counted apart: sqlglot first tries ``ARRAY[`` as a type, parses the
whole bracket, gives up and parses it again as a constructor, so each nested level doubles the work
(25 levels: minutes, in 200 characters; found by tests/fuzz/fuzz_sql.py). PostgreSQL arrays have at
most 6 dimensions (MAXDIM), so deeper constructors could never run anyway.

>>> array_depth(Postgres().tokenizer().tokenize("SELECT ARRAY[ARRAY[1], x[1]], (ARRAY[(ARRAY[2])])"))
2
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlglot.tokens import Token, TokenType

from gateway.errors import StatementTooComplex, StatementTooLarge

_OPEN = frozenset({TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.L_BRACE, TokenType.CASE})
_CLOSE = frozenset({TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.R_BRACE, TokenType.END})
#: prefix operators the parser handles by recursion: a run of them nests like parentheses
_PREFIX = frozenset({TokenType.NOT, TokenType.DASH, TokenType.PLUS, TokenType.TILDE})


def nesting_depth(tokens: Sequence[Token]) -> int:
    """The deepest nesting of brackets, CASE ... END and runs of prefix operators, in one pass."""
    depth = deepest = run = 0
    open_, close, prefix = _OPEN, _CLOSE, _PREFIX
    for token in tokens:
        kind = token.token_type
        if kind in open_:
            depth += 1
            if depth + run > deepest:
                deepest = depth + run
        elif kind in close:
            depth -= 1
        if kind in prefix:
            run += 1
            if depth + run > deepest:
                deepest = depth + run
        else:
            run = 0
    return deepest


#: PostgreSQL's MAXDIM: an ARRAY[...] constructor nested deeper makes an array it refuses.
MAX_ARRAY_DEPTH = 6


def array_depth(tokens: Sequence[Token]) -> int:
    """The deepest nesting of ``ARRAY[`` constructors (other brackets in between do not count)."""
    brackets: list[bool] = []  # for each open [, whether it opened an ARRAY constructor
    depth = deepest = 0
    previous = None
    for token in tokens:
        kind = token.token_type
        if kind is TokenType.L_BRACKET:
            is_array = previous is TokenType.ARRAY
            brackets.append(is_array)
            if is_array:
                depth += 1
                if depth > deepest:
                    deepest = depth
        elif kind is TokenType.R_BRACKET and brackets:
            if brackets.pop():
                depth -= 1
        previous = kind
    return deepest


@dataclass(frozen=True)
class AnalysisLimits:
    """What the analyzer accepts; settings ``max_statement_chars`` and ``max_nesting_depth``."""

    max_statement_chars: int = 1_000_000
    max_depth: int = 256

    def check_size(self, sql: str) -> StatementTooLarge | None:
        if len(sql) > self.max_statement_chars:
            return StatementTooLarge(
                f"gateway: the statement is {len(sql)} characters long; the gateway analyzes at most "
                f"{self.max_statement_chars} (setting max_statement_chars)", rule="limits.statement_size")
        return None

    def check_depth(self, tokens: Sequence[Token]) -> StatementTooComplex | None:
        depth = nesting_depth(tokens)
        if depth > self.max_depth:
            return StatementTooComplex(
                f"gateway: the statement nests {depth} levels deep; the gateway analyzes at most "
                f"{self.max_depth} (setting max_nesting_depth)", rule="limits.nesting_depth")
        arrays = array_depth(tokens) if depth > MAX_ARRAY_DEPTH else 0
        if arrays > MAX_ARRAY_DEPTH:
            return StatementTooComplex(
                f"gateway: the statement nests ARRAY[...] constructors {arrays} deep; PostgreSQL arrays have "
                f"at most {MAX_ARRAY_DEPTH} dimensions", rule="limits.array_depth")
        return None
