"""``plan_fresh``: the pure plan of one request, no cache involved.

It splits the request into statements at the tokenizer's semicolons, reads utility statements
(SET/SHOW/BEGIN...) by hand, parses the others and runs the passes on each. Its result is picklable
(frozen values, the templates the shape cache needs), so a worker process can compute it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from sqlglot import exp
from gateway.analyzer.dialect import DIALECT
from sqlglot.errors import ParseError, SqlglotError, TokenError
from sqlglot.tokens import Token, TokenType

from gateway.analyzer.errors import not_understood
from gateway.analyzer.limits import AnalysisLimits
from gateway.analyzer.utility import read_utility
from gateway.errors import GatewayError, PolicyDenied, SqlSyntaxError
from gateway.analyzer.writes import WRITE_HEADS, WRITE_ROOTS
from gateway.plan.writes import plan_write
from gateway.plan.passes import PASSES, Pass, PlanEnv, StatementWork
from gateway.plan.types import Analysis, StatementPlan, denied, resolve_named
from gateway.policy.constraints import Value
from gateway.policy.decide import combine
from gateway.policy.naming import Named
from gateway.policy.types import Profile


TOKENIZER = DIALECT.tokenizer()  # one instance: Dialect.tokenize builds a new one per call
SLOT_TYPES = (TokenType.STRING, TokenType.NUMBER)
_log = logging.getLogger("gateway.plan")
_NUMBER = re.compile(r"^(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_MARK = "\x01gwslot"
_MARK_RE = re.compile(r"'\x01gwslot(\d+)\x01'")


@dataclass
class Template:
    """A statement's printed SQL with its literal tokens as slots (the shape cache's entry)."""

    parts: tuple[str, ...]  # text between slots; len(parts) == len(slots) + 1
    slots: list[int]  # token index of each slot's literal
    fixed: dict[int, str] = field(default_factory=dict)  # literal tokens that are not slots: exact text


@dataclass(frozen=True)
class Fresh:
    analysis: Analysis
    templates: tuple[Template | None, ...] | None  # per statement; None: never reuse for its shape


def render_literal(token: Token) -> str | None:
    if token.token_type == TokenType.STRING:
        return "'" + token.text.replace("'", "''") + "'"
    if _NUMBER.match(token.text):
        return token.text
    return None


def first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def tokenize(sql: str) -> list[Token]:
    """The request's tokens (raises SqlSyntaxError)."""
    try:
        return TOKENIZER.tokenize(sql)
    except (TokenError, SqlglotError) as exc:
        raise SqlSyntaxError(f"gateway: the statement could not be read: {first_line(exc)}") from None


def plan_fresh(sql: str, profile: Profile, env: PlanEnv, tokens: list[Token] | None = None,
               passes: tuple[Pass, ...] = PASSES, limits: AnalysisLimits = AnalysisLimits()) -> Fresh:
    """Plan ``sql`` for ``profile``: never raises; a refusal is an Analysis with its error. The length
    and the nesting depth are checked before any parse (``limits``)."""
    try:
        problem: GatewayError | None = limits.check_size(sql)
        if problem is None:
            if tokens is None:
                tokens = tokenize(sql)
            problem = limits.check_depth(tokens)
        if problem is not None:
            return Fresh(denied(problem), None)
        return _plan(sql, tokens, profile, env, passes)
    except GatewayError as error:
        return Fresh(denied(error), None)
    except RecursionError:
        return Fresh(denied(not_understood("the statement is nested too deeply")), None)
    except Exception as exc:  # noqa: BLE001 - an analyzer fault must refuse, never pass or crash
        _log.warning("analyzer_fault: %s: %s", type(exc).__name__, exc)
        return Fresh(denied(not_understood(f"the analyzer could not process the statement ({type(exc).__name__})")), None)


def statement_indexes(tokens: list[Token]) -> list[list[int]]:
    """The token indexes of each statement of a request (split at the tokenizer's semicolons)."""
    chunks: list[list[int]] = [[]]
    for i, token in enumerate(tokens):
        if token.token_type == TokenType.SEMICOLON:
            chunks.append([])
        else:
            chunks[-1].append(i)
    return chunks


def utility_only(tokens: list[Token]) -> bool:
    """Every statement is one the utility reader answers without a parse (SET, SHOW, BEGIN...): cheap
    enough to plan on the event loop."""
    try:
        return all(read_utility([tokens[i] for i in indexes]) is not None
                   for indexes in statement_indexes(tokens) if indexes)
    except GatewayError:
        return True  # refused by the reader itself: as cheap
    except Exception:  # noqa: BLE001 - let the fresh plan (in a worker) report it
        return False


def _plan(sql: str, tokens: list[Token], profile: Profile, env: PlanEnv, passes: tuple[Pass, ...]) -> Fresh:
    chunks = statement_indexes(tokens)
    plans: list[StatementPlan] = []
    templates: list[Template | None] = []
    cacheable = True
    for indexes in chunks:
        if not indexes:
            continue
        chunk = [tokens[i] for i in indexes]
        # a staff write the policy may allow is parsed and planned (plan/writes.py); else refused here
        utility = None if profile.writes and chunk[0].text.upper() in WRITE_HEADS else read_utility(chunk)
        if utility is not None:
            plans.append(StatementPlan(utility.kind, utility.sql, utility.command_tag, setting=utility.setting))
            templates.append(None)
            if utility.kind != "transaction":
                cacheable = False  # names and values are part of the meaning
            continue
        plan, template = _query(sql, chunk, indexes, tokens, profile, env, passes)
        plans.append(plan)
        templates.append(template)
        if template is None:
            cacheable = False  # its literals could not be located: never reuse this SQL
    if not plans:
        plans.append(StatementPlan("empty", "", ""))
        templates.append(None)
    if any(p.kind == "gateway_set" for p in plans) and len(plans) > 1:
        raise SqlSyntaxError("gateway: SET gateway.* must be sent as a statement of its own")
    decision = combine([p.decision for p in plans if p.decision is not None], tuple(c for p in plans for c in p.redacted))
    return Fresh(Analysis(tuple(plans), decision), tuple(templates) if cacheable else None)


def _parse(sql: str, chunk: list[Token]) -> exp.Expr:
    try:
        trees = DIALECT.parser().parse(chunk, sql)
    except ParseError as exc:
        raise SqlSyntaxError(f"gateway: syntax error: {first_line(exc)}") from None
    except SqlglotError as exc:
        raise SqlSyntaxError(f"gateway: the statement could not be parsed: {first_line(exc)}") from None
    found = [t for t in trees if t is not None]
    if len(found) != 1:
        raise SqlSyntaxError("gateway: the statement could not be parsed as one statement")
    return found[0]


def _query(sql: str, chunk: list[Token], indexes: list[int], all_tokens: list[Token], profile: Profile,
           env: PlanEnv, passes: tuple[Pass, ...]) -> tuple[StatementPlan, Template | None]:
    tree = _parse(sql, chunk)
    if profile.writes and isinstance(tree, WRITE_ROOTS):  # a staff write the policy may allow (plan/writes.py)
        return plan_write(tree, sql, profile, env), None
    work = StatementWork(tree, sql)
    try:
        for run in passes:
            work = run(work, env, profile)
    except PolicyDenied as exc:  # keep who the refused statement named, and what it read (subject notices, SPEC 10)
        if work.facts is not None:
            exc.accesses = work.facts.accesses  # type: ignore[attr-defined]
        if work.named:
            token_at = {all_tokens[i].start: i for i in indexes if all_tokens[i].token_type in SLOT_TYPES}
            exc.individuals = resolve_named(_by_token(work.named, token_at), all_tokens)  # type: ignore[attr-defined]
        raise
    assert work.facts is not None and work.decision is not None, "the passes must analyze and decide"
    template = _template(work.tree, set(indexes), all_tokens)
    # the tree ends here: printed without the generator's defensive copy (a deep copy of a 40,000-item
    # list costs more than its parse)
    text = work.tree.sql(dialect="postgres", comments=False, copy=False)
    parts, slot_values = (template.parts, tuple(all_tokens[i].text for i in template.slots)) if template else (None, ())
    named = _by_token(work.named, {all_tokens[i].start: i for i in indexes if all_tokens[i].token_type in SLOT_TYPES})
    plan = StatementPlan("select", text, "SELECT", work.decision.redacted, None, work.facts.accesses, work.decision,
                         work.masked, parts, slot_values, named, work.personal, work.anchored,
                         resolve_named(named, all_tokens))
    return plan, template


def _by_token(named: tuple[Named, ...], token_at: dict[int, int]) -> tuple[Named, ...]:
    """Literal values by token index (stable across a shape), where the literal is a token of its own."""
    out = []
    for item in named:
        values = tuple(Value("token", token_at[v.pos], cast=v.cast) if v.kind == "literal" and v.pos in token_at else v
                       for v in item.values)
        out.append(Named(item.key, item.columns, values, item.array, item.kinds))
    return tuple(out)


def _template(tree: exp.Expr, indexes: set[int], tokens: list[Token]) -> Template | None:
    """Print ``tree`` with its literal tokens as slots."""
    by_start = {tokens[i].start: i for i in indexes if tokens[i].token_type in SLOT_TYPES}
    marked = tree.copy()
    slots: list[int] = []
    taken: set[int] = set()
    for literal in list(marked.find_all(exp.Literal)):
        index = by_start.get(literal.meta.get("start", -1))
        if index is None or index in taken or render_literal(tokens[index]) is None:
            continue
        # in place: Expr.replace() on a member of a long argument list is linear in the list (quadratic
        # over a 40,000-item IN list; bench/analysis_growth.py)
        literal.set("this", f"{_MARK}{len(slots)}\x01")
        literal.set("is_string", True)
        slots.append(index)
        taken.add(index)
    text = marked.sql(dialect="postgres", comments=False, copy=False)  # marked is ours: no second copy
    pieces = _MARK_RE.split(text)
    order = [int(n) for n in pieces[1::2]]
    if len(pieces) != 2 * len(slots) + 1 or sorted(order) != list(range(len(slots))):
        return None  # a literal was printed twice, dropped or moved into another token: no template
    fixed = {i: tokens[i].text for i in indexes if tokens[i].token_type in SLOT_TYPES and i not in taken}
    return Template(parts=tuple(pieces[0::2]), slots=[slots[n] for n in order], fixed=fixed)
