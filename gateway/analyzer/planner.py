"""From SQL text and a profile to what runs: the analyzer's entry point, with its caches.

A miss parses, resolves, traces, decides, masks and prints each statement. The printed SQL is kept
as a *template* whose literal slots are the statement's literal tokens, keyed by the token shape
(every token but the values of plain string and number literals). A later statement of the same
shape - pgbench's simple protocol sends a million texts of one shape - is tokenized (~10 us), its
literals re-quoted into the template, and never parsed again. Analysis never depends on literal
values, so one analysis serves the whole shape.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from sqlglot import exp
from sqlglot.dialects.postgres import Postgres
from sqlglot.errors import ParseError, SqlglotError, TokenError
from sqlglot.tokens import Token, TokenType

from gateway.analyzer.errors import not_understood
from gateway.analyzer.trace import trace
from gateway.analyzer.utility import read_utility
from gateway.catalog.classify import Classifier
from gateway.catalog.model import Catalog, Relation
from gateway.errors import GatewayError, SqlSyntaxError
from gateway.policy.decide import decide
from gateway.policy.types import Access, ColumnRef, Decision, Profile
from gateway.rewrite.mask import apply_masks
from gateway.rewrite.names import preserve_output_names

_DIALECT = Postgres()
_TOKENIZER = _DIALECT.tokenizer()  # one instance: Dialect.tokenize builds a new one per call
_log = logging.getLogger("gateway.analyzer")
_SLOT_TYPES = (TokenType.STRING, TokenType.NUMBER)
_NUMBER = re.compile(r"^(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_MARK = "\x01gwslot"
_MARK_RE = re.compile(r"'\x01gwslot(\d+)\x01'")


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

    @property
    def redacted(self) -> tuple[str, ...]:
        return redacted_columns(self.statements)


def redacted_columns(statements: tuple[StatementPlan, ...]) -> tuple[str, ...]:
    """Every redacted output column of ``statements``, once each, in order."""
    out: list[str] = []
    for st in statements:
        out.extend(c for c in st.redacted if c not in out)
    return tuple(out)


@dataclass
class _Template:
    parts: tuple[str, ...]  # text between slots; len(parts) == len(slots) + 1
    slots: list[int]  # token index of each slot's literal
    fixed: dict[int, str] = field(default_factory=dict)  # literal tokens that are not slots: exact text


@dataclass
class _ShapeEntry:
    analysis: Analysis
    templates: list[_Template | None]  # per statement; None: a utility statement, its SQL is fixed


def _render(token: Token) -> str | None:
    if token.token_type == TokenType.STRING:
        return "'" + token.text.replace("'", "''") + "'"
    if _NUMBER.match(token.text):
        return token.text
    return None


def _deny(error: GatewayError) -> Analysis:
    return Analysis((), Decision("deny", error.message.removeprefix("gateway: "), rule=error.rule or ""), error)


class Analyzer:
    """Analyzes SQL for a profile against one catalog snapshot. Swap the whole object on refresh."""

    def __init__(self, catalog: Catalog, classifier: Classifier, search_path: tuple[str, ...],
                 cache_size: int = 20000) -> None:
        self.catalog = catalog
        self.classifier = classifier
        self.search_path = search_path
        self.cache_size = cache_size
        self._exact: dict[tuple[str, str], Analysis] = {}
        self._shapes: dict[tuple[str, tuple], _ShapeEntry] = {}

    # -- public --------------------------------------------------------------------------------
    def analyze(self, sql: str, profile: Profile) -> Analysis:
        pkey = f"{profile.key}|{profile.purpose}"
        hit = self._exact.get((pkey, sql))
        if hit is not None:
            return hit
        try:
            tokens = _TOKENIZER.tokenize(sql)
        except (TokenError, SqlglotError) as exc:
            return _deny(SqlSyntaxError(f"gateway: the statement could not be read: {_first_line(exc)}"))
        shape = tuple((t.token_type, None if t.token_type in _SLOT_TYPES else t.text) for t in tokens)
        entry = self._shapes.get((pkey, shape))
        if entry is not None:
            analysis = self._from_template(entry, tokens)
            if analysis is not None:
                self._remember_exact(pkey, sql, analysis)
                return analysis
        analysis, templates = self._analyze_fresh(sql, tokens, profile)
        if templates is not None:
            if len(self._shapes) >= self.cache_size:
                self._shapes.clear()
            self._shapes[(pkey, shape)] = _ShapeEntry(analysis, templates)
        self._remember_exact(pkey, sql, analysis)
        return analysis

    # -- caches --------------------------------------------------------------------------------
    def _remember_exact(self, pkey: str, sql: str, analysis: Analysis) -> None:
        if len(sql) > 8192:
            return
        if len(self._exact) >= self.cache_size:
            self._exact.clear()
        self._exact[(pkey, sql)] = analysis

    def _from_template(self, entry: _ShapeEntry, tokens: list[Token]) -> Analysis | None:
        statements = []
        for plan, template in zip(entry.analysis.statements, entry.templates):
            if template is None:
                statements.append(plan)
                continue
            if any(tokens[i].text != text for i, text in template.fixed.items()):
                return None
            out = [template.parts[0]]
            for slot, part in zip(template.slots, template.parts[1:]):
                rendered = _render(tokens[slot])
                if rendered is None:
                    return None
                out.append(rendered)
                out.append(part)
            statements.append(_replace_sql(plan, "".join(out), template.parts, tuple(tokens[i].text for i in template.slots)))
        return Analysis(tuple(statements), entry.analysis.decision, entry.analysis.error, cache="shape")

    # -- analysis ------------------------------------------------------------------------------
    def _analyze_fresh(self, sql: str, tokens: list[Token], profile: Profile) -> tuple[Analysis, list[_Template | None] | None]:
        chunks: list[list[Token]] = [[]]
        chunk_index: list[list[int]] = [[]]
        for i, token in enumerate(tokens):
            if token.token_type == TokenType.SEMICOLON:
                chunks.append([])
                chunk_index.append([])
            else:
                chunks[-1].append(token)
                chunk_index[-1].append(i)
        plans: list[StatementPlan] = []
        templates: list[_Template | None] = []
        cacheable = True
        try:
            for chunk, indexes in zip(chunks, chunk_index):
                if not chunk:
                    continue
                utility = read_utility(chunk)
                if utility is not None:
                    plans.append(StatementPlan(utility.kind, utility.sql, utility.command_tag, setting=utility.setting))
                    templates.append(None)
                    if utility.kind != "transaction":
                        cacheable = False  # names and values are part of the meaning
                    continue
                plan, template = self._query(sql, chunk, indexes, tokens, profile)
                plans.append(plan)
                templates.append(template)
                if template is None:
                    cacheable = False  # its literals could not be located: never reuse this SQL
        except GatewayError as error:
            return _deny(error), None
        except RecursionError:
            return _deny(not_understood("the statement is nested too deeply")), None
        except Exception as exc:  # noqa: BLE001 - an analyzer fault must refuse, never pass or crash
            _log.warning("analyzer_fault", error=f"{type(exc).__name__}: {exc}")
            return _deny(not_understood(f"the analyzer could not process the statement ({type(exc).__name__})")), None
        if not plans:
            plans.append(StatementPlan("empty", "", ""))
            templates.append(None)
        if any(p.kind == "gateway_set" for p in plans) and len(plans) > 1:
            error = SqlSyntaxError("gateway: SET gateway.* must be sent as a statement of its own")
            return _deny(error), None
        decisions = [p.decision for p in plans if p.decision is not None]
        redacted = tuple(c for p in plans for c in p.redacted)
        if redacted:
            decision = Decision("redact", "; ".join(d.reason for d in decisions if d.action == "redact"),
                                rule="policy.redact.output", redacted=redacted)
        elif decisions:
            decision = decisions[0]
        else:
            decision = Decision("allow", "no data is read", rule="policy.allow.utility")
        return Analysis(tuple(plans), decision), (templates if cacheable else None)

    def _query(self, sql: str, chunk: list[Token], indexes: list[int], all_tokens: list[Token],
               profile: Profile) -> tuple[StatementPlan, _Template | None]:
        try:
            trees = _DIALECT.parser().parse(chunk, sql)
        except ParseError as exc:
            raise SqlSyntaxError(f"gateway: syntax error: {_first_line(exc)}") from None
        except SqlglotError as exc:
            raise SqlSyntaxError(f"gateway: the statement could not be parsed: {_first_line(exc)}") from None
        trees = [t for t in trees if t is not None]
        if len(trees) != 1:
            raise SqlSyntaxError("gateway: the statement could not be parsed as one statement")
        tree = trees[0]
        result = trace(tree, sql, self.catalog, self.search_path)
        if profile.no_data and result.tables:
            from gateway.errors import PolicyDenied

            raise PolicyDenied(f"gateway: requester {profile.requester} may not read data; {profile.reason}",
                               rule="policy.no_data")
        accesses = [
            Access(use.column, self.classifier.column_tags(use.column), use.usage, use.output_name)  # type: ignore[arg-type]
            for use in result.lineage.uses
        ]
        for table in result.tables:
            row_tags, _note = self.classifier.row_tags(table.relation)
            if row_tags:
                accesses.append(Access(ColumnRef(table.relation.schema, table.relation.name, "*"), row_tags, "where"))
        decision = decide(accesses, profile)
        if decision.action == "deny":
            from gateway.errors import PolicyDenied

            raise PolicyDenied(f"gateway: {decision.reason}", rule=decision.rule)

        def masked_for(relation: Relation) -> frozenset[str]:
            return frozenset(
                c.name for c in relation.columns
                if profile.action_for(self.classifier.column_tags(ColumnRef(relation.schema, relation.name, c.name))) != "allow"
            )

        masked = apply_masks(result.tables, masked_for)
        tree = result.tree if result.tree.parent is None else result.tree.root()
        preserve_output_names(tree, sql)
        template = self._template(tree, set(indexes), all_tokens)
        text = tree.sql(dialect="postgres", comments=False)
        parts, slot_values = (template.parts, tuple(all_tokens[i].text for i in template.slots)) if template else (None, ())
        plan = StatementPlan("select", text, "SELECT", decision.redacted, None, tuple(accesses), decision, tuple(masked),
                             parts, slot_values)
        return plan, template

    def _template(self, tree: exp.Expr, indexes: set[int], tokens: list[Token]) -> _Template | None:
        """Print ``tree`` with its literal tokens as slots."""
        by_start = {tokens[i].start: i for i in indexes if tokens[i].token_type in _SLOT_TYPES}
        marked = tree.copy()
        slots: list[int] = []
        for literal in list(marked.find_all(exp.Literal)):
            index = by_start.get(literal.meta.get("start", -1))
            if index is None or index in slots or _render(tokens[index]) is None:
                continue
            literal.replace(exp.Literal.string(f"{_MARK}{len(slots)}\x01"))
            slots.append(index)
        text = marked.sql(dialect="postgres", comments=False)
        pieces = _MARK_RE.split(text)
        order = [int(n) for n in pieces[1::2]]
        if len(pieces) != 2 * len(slots) + 1 or sorted(order) != list(range(len(slots))):
            return None  # a literal was printed twice, dropped or moved into another token: no template
        fixed = {i: tokens[i].text for i in indexes if tokens[i].token_type in _SLOT_TYPES and i not in slots}
        return _Template(parts=tuple(pieces[0::2]), slots=[slots[n] for n in order], fixed=fixed)


def _replace_sql(plan: StatementPlan, sql: str, parts: tuple[str, ...], slots: tuple[str, ...]) -> StatementPlan:
    return StatementPlan(plan.kind, sql, plan.command_tag, plan.redacted, plan.setting, plan.accesses,
                         plan.decision, plan.masked, parts, slots)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
