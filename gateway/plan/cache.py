"""The analyzer's caches in front of :func:`gateway.plan.fresh.plan_fresh`.

A miss runs the passes. The printed SQL is kept as a *template* whose literal slots are the
statement's literal tokens, keyed by the token shape (every token but the values of plain string and
number literals). A later statement of the same shape - pgbench's simple protocol sends a million
texts of one shape - is tokenized (~10 us), its literals re-quoted into the template, and never
parsed again. Analysis never depends on literal values, so one analysis serves the whole shape.

In front of the shape cache, a *skeleton* cache skips the tokenizer too: one regular expression
splits a plain text (no quoted identifiers, comments, dollar signs or backslashes) into the text
between its literals and the literals themselves, and the skeleton (that text, the literal kinds) is
a dictionary key. A skeleton is learned from a shape hit only when the tokenizer found exactly those
literals (same spans, plain strings and numbers, nothing but whitespace between tokens): then every
text of that skeleton tokenizes the same way, literal for literal, and the hit is a lookup plus
literal splicing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlglot.tokens import Token, TokenType

from gateway.analyzer.classify import Classifier
from gateway.catalog.model import Catalog
from gateway.errors import SqlSyntaxError
from gateway.analyzer.limits import AnalysisLimits
from gateway.plan.hot import SKELETON_CHARS, is_plain, skeleton_analysis, skeleton_key, split_literals, statement_base
from gateway.plan.fresh import SLOT_TYPES, Fresh, Template, plan_fresh, render_literal, tokenize, utility_only
from gateway.plan.passes import PASSES, Pass, PlanEnv
from gateway.plan.types import Analysis, NamedValue, StatementPlan, denied, resolve_named
from gateway.audit.literals import LITERAL_TYPES as _LITERAL_TYPES
from gateway.policy.types import Profile


#: statements longer than this are not tokenized by :meth:`Analyzer.cached`: a worker does it
INLINE_CHARS = 16 * 1024

#: The skeleton split (:func:`gateway.plan.hot.split_literals`, by hand, compiled) is the split of
#: ``('(?:[^']|'')*'|(?<![\w.$])\d+(?:\.\d+)?(?![\w.]))``: a plain string literal (no backslash: the text
#: has none) or a plain number between non-word characters (tests/test_skeleton_split.py). The regular
#: expression it replaced here, ``'(?:[^']+|'')*'...``, backtracked exponentially on an unterminated string
#: (38 s for ``SELECT 'abab...`` of 36 characters, on the event loop, before any parse).
#: what the skeleton cache leaves to the tokenizer: quoted identifiers, dollar quotes and parameters,
#: backslashes, comments, NUL
_NOT_PLAIN = re.compile(r'["$\\\x00]|--|/\*')


_is_plain = is_plain  # ``_NOT_PLAIN.search(sql) is None``, four times faster
_SKELETON_CHARS = SKELETON_CHARS


@dataclass(frozen=True)
class Miss:
    """A statement the caches do not know: what :meth:`Analyzer.fresh` and :meth:`Analyzer.remember` need."""

    pkey: tuple[str, str | None]  # the profile's key and purpose
    shape: tuple | None  # the token shape (the cache key); None: too long to tokenize in the caller
    tokens: list[Token] | None
    inline: bool  # only utility statements (SET, SHOW, BEGIN...): cheap enough for the event loop


@dataclass
class _ShapeEntry:
    analysis: Analysis
    templates: tuple[Template | None, ...]  # per statement; None: a utility statement, its SQL is fixed
    size: int = 0  # estimated bytes held (the cache is bounded by bytes as well as entries)
    # keys of the skeletons that lead here, dropped with it; a key leaves when its skeleton leaves the
    # skeleton cache (a list that kept evicted keys grew without bound on ever new spellings of a shape)
    skeletons: set[tuple] = field(default_factory=set)
    # per statement, what a skeleton hit's copy of it shares (hot.statement_base; None: a fixed
    # statement): made with the entry's first skeleton, its bytes added to ``size``
    bases: tuple[dict[str, Any] | None, ...] | None = None


# What a cache entry holds, in bytes, as tracemalloc measures it (an analysis as it comes back from a
# worker, unpickled; tests/test_analysis_cache_bytes.py checks that these are upper bounds). The caches
# are bounded by these estimates (``cache_bytes``, the ``analysis_cache_mb`` setting), so an estimate
# that is low lets the gateway's memory grow past its setting: the memory bar (bench/memory.py).
_SHAPE_BASE = 2500  # the entry, its Analysis, StatementPlan and template objects
_SHAPE_PER_TOKEN = 200  # the key: a (type, text) pair per token
_SHAPE_PER_SQL_CHAR = 10  # the printed SQL, its template parts, the analysis strings
_SHAPE_PER_ACCESS = 1000  # an access: column, tags, usages
_SHAPE_PER_BASE = 700  # a templated statement's fields as one dict (_ShapeEntry.bases), once a skeleton leads there
_EXACT_BASE = 256  # key, dict slot; the analysis is the shape entry's (a fresh plan)
_EXACT_PER_CHAR = 3
_EXACT_HIT_BASE = 800  # a shape hit's own Analysis and StatementPlan objects
_EXACT_HIT_PER_TOKEN = 220  # the tokens a shape hit keeps (the request record hashes its literals from them)
_EXACT_HIT_PER_CHAR = 6  # the text, and the SQL printed for it


def _shape_size(shape: tuple, analysis: Analysis) -> int:
    """An upper estimate of what a shape entry holds: its key (a pair per token), the printed SQL
    and its template parts, the accesses."""
    return (_SHAPE_BASE + _SHAPE_PER_TOKEN * len(shape)
            + sum(_SHAPE_PER_SQL_CHAR * len(st.sql) + _SHAPE_PER_ACCESS * len(st.accesses) for st in analysis.statements))


def _exact_size(sql: str, analysis: Analysis) -> int:
    """An upper estimate of what an exact-text entry holds (the same figure when it is evicted)."""
    tokens = analysis.tokens
    if tokens is None:
        return _EXACT_BASE + _EXACT_PER_CHAR * len(sql)
    return _EXACT_HIT_BASE + _EXACT_HIT_PER_TOKEN * len(tokens) + _EXACT_HIT_PER_CHAR * len(sql)


class Analyzer:
    """Plans SQL for a profile against one catalog snapshot. Swap the whole object on refresh."""

    def __init__(self, catalog: Catalog, classifier: Classifier, search_path: tuple[str, ...],
                 cache_size: int = 20000, passes: tuple[Pass, ...] = PASSES,
                 limits: AnalysisLimits = AnalysisLimits(), inline_chars: int = INLINE_CHARS,
                 cache_bytes: int = 32 * 1024 * 1024) -> None:
        self.catalog = catalog
        self.classifier = classifier
        self.search_path = search_path
        self.env = PlanEnv(catalog, classifier, search_path)
        self.passes = passes
        self.cache_size = cache_size
        self.limits = limits
        self.inline_chars = inline_chars
        self._exact: dict[tuple[tuple[str, str | None], str], Analysis] = {}
        self._skeletons: dict[tuple[tuple[str, str | None], str, tuple[bool, ...]], _Skeleton] = {}
        self._shapes: dict[tuple[tuple[str, str | None], tuple], _ShapeEntry] = {}
        # bytes: half of cache_bytes for each cache; the oldest entries go first
        self.cache_bytes = cache_bytes
        self._shape_bytes = 0
        self._exact_bytes = 0

    def analyze(self, sql: str, profile: Profile) -> Analysis:
        """The whole plan in this thread: a cache hit, or a fresh plan remembered."""
        found = self.cached(sql, profile)
        if isinstance(found, Analysis):
            return found
        return self.remember(found, sql, self.fresh(sql, profile, found.tokens))

    def cached(self, sql: str, profile: Profile) -> Analysis | Miss:
        """The analysis from the exact or the shape cache (or a refusal that needs no parse), else a
        :class:`Miss` saying what a fresh plan needs. Cheap: at most one tokenization, and none for a
        statement longer than ``inline_chars`` (a 1 MB text takes ~1 s; the fresh plan tokenizes it)."""
        pkey = (profile.key, profile.purpose)  # a tuple: the two strings keep their hashes
        hit = self._exact.get((pkey, sql))
        if hit is not None:
            return hit
        plain = len(sql) <= _SKELETON_CHARS and _is_plain(sql)
        if plain:
            parts = split_literals(sql)  # _LITERAL.split(sql), by hand (compiled)
            skey, literals = skeleton_key(pkey, parts)
            skeleton = self._skeletons.get(skey)
            if skeleton is not None:
                found = skeleton.analysis(parts, literals)
                if found is not None:
                    return found
        if len(sql) > self.inline_chars:
            problem = self.limits.check_size(sql)
            if problem is not None:
                return denied(problem)
            return Miss(pkey, None, None, False)
        try:
            tokens = tokenize(sql)
        except SqlSyntaxError as error:
            return denied(error)
        shape = tuple((t.token_type, None if t.token_type in SLOT_TYPES else t.text) for t in tokens)
        entry = self._shapes.get((pkey, shape))
        if entry is not None:
            analysis = self._from_template(entry, tokens)
            if analysis is not None:
                self._remember_exact(pkey, sql, analysis)
                if plain:
                    self._learn_skeleton(skey, parts, entry, tokens, analysis)  # type: ignore[possibly-undefined]
                return analysis
        return Miss(pkey, shape, tokens, utility_only(tokens))

    def fresh(self, sql: str, profile: Profile, tokens: list[Token] | None = None) -> Fresh:
        """The fresh plan, no cache involved (pure: the analysis workers run this)."""
        return plan_fresh(sql, profile, self.env, tokens, self.passes, self.limits)

    def remember(self, miss: Miss, sql: str, fresh: Fresh) -> Analysis:
        """Keep a fresh plan (made here or in a worker) in the caches; returns its analysis."""
        if fresh.templates is not None and miss.shape is not None:
            shapes = self._shapes
            entry = _ShapeEntry(fresh.analysis, fresh.templates, _shape_size(miss.shape, fresh.analysis))
            old = shapes.pop((miss.pkey, miss.shape), None)
            if old is not None:
                self._drop_shape(old)
            budget = self.cache_bytes // 2
            while shapes and (len(shapes) >= self.cache_size or self._shape_bytes + entry.size > budget):
                self._drop_shape(shapes.pop(next(iter(shapes))))
            if entry.size <= budget:
                shapes[(miss.pkey, miss.shape)] = entry
                self._shape_bytes += entry.size
        self._remember_exact(miss.pkey, sql, fresh.analysis)
        return fresh.analysis

    def _drop_shape(self, entry: _ShapeEntry) -> None:
        """``entry`` left the shape cache: its bytes, and the skeletons that lead to it (a skeleton
        holds its entry: kept, they would keep evicted entries alive past the cache's bound)."""
        self._shape_bytes -= entry.size
        skeletons = self._skeletons
        for skey in entry.skeletons:
            held = skeletons.get(skey)
            if held is not None and held.entry is entry:
                del skeletons[skey]

    @property
    def cache_state(self) -> dict[str, int]:
        return {"shapes": len(self._shapes), "shape_bytes": self._shape_bytes, "exact": len(self._exact),
                "exact_bytes": self._exact_bytes, "skeletons": len(self._skeletons)}

    def _learn_skeleton(self, skey: tuple[tuple[str, str | None], str, tuple[bool, ...]], parts: list[str], entry: _ShapeEntry,
                        tokens: list[Token], analysis: Analysis) -> None:
        """Keep ``skey`` when the tokenizer saw exactly the literals the expression split out (see the
        module docstring), and splicing them reproduces the shape hit just made."""
        had_bases = entry.bases is not None
        skeleton = _Skeleton.learn(parts, entry, tokens)
        if not had_bases and entry.bases is not None:  # made now: the entry (in the shape cache) holds more
            grown = _SHAPE_PER_BASE * sum(base is not None for base in entry.bases)
            entry.size += grown
            self._shape_bytes += grown
        if skeleton is None:
            return
        spliced = skeleton.analysis(parts, parts[1::2])
        if spliced is None or (spliced.statements, spliced.decision, spliced.error) != \
                (analysis.statements, analysis.decision, analysis.error) or \
                [(s.sql, s.slots) for s in spliced.statements] != [(s.sql, s.slots) for s in analysis.statements]:
            return
        skeletons = self._skeletons
        old = skeletons.pop(skey, None)
        if old is not None:
            old.entry.skeletons.discard(skey)
        while len(skeletons) >= self.cache_size:
            key = next(iter(skeletons))
            skeletons.pop(key).entry.skeletons.discard(key)
        skeletons[skey] = skeleton
        entry.skeletons.add(skey)

    def _remember_exact(self, pkey: tuple[str, str | None], sql: str, analysis: Analysis) -> None:
        if len(sql) > 8192:
            return
        exact = self._exact
        size = _exact_size(sql, analysis)  # the same figure when the entry is evicted
        old = exact.pop((pkey, sql), None)
        if old is not None:
            self._exact_bytes -= _exact_size(sql, old)
        if self._exact_bytes + size > self.cache_bytes // 2 or len(exact) >= self.cache_size:
            budget = self.cache_bytes // 2 - size
            while exact and (len(exact) >= self.cache_size or self._exact_bytes > budget):
                key = next(iter(exact))
                self._exact_bytes -= _exact_size(key[1], exact.pop(key))
        self._exact_bytes += size
        exact[(pkey, sql)] = analysis

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
                rendered = render_literal(tokens[slot])
                if rendered is None:
                    return None
                out.append(rendered)
                out.append(part)
            statements.append(_replace_sql(plan, "".join(out), template.parts, tuple(tokens[i].text for i in template.slots),
                                           tokens))
        return Analysis(tuple(statements), entry.analysis.decision, entry.analysis.error, cache="shape", tokens=tokens,
                        origin=entry.analysis)


_PLAIN_TOKENS = {TokenType.STRING: True, TokenType.NUMBER: False}


class _Skeleton:
    """A shape entry reachable without the tokenizer: the token index of each literal of the split
    text, the texts of the other tokens (for named individuals), the literal texts that must match.
    ``hot``: what the compiled cached decision (plan/hit.py) reads of it, in one tuple: the
    statements, the fixed literals, the entry's analysis, whether it plans without a refusal (no
    error, no refused individuals or accesses) and whether it is one read (one ``select``)."""

    __slots__ = ("entry", "texts", "token_of", "fixed", "statements", "hot")

    def __init__(self, entry: _ShapeEntry, texts: list[str], token_of: tuple[int, ...]) -> None:
        self.entry = entry
        self.texts = texts
        self.token_of = token_of
        literal_of = {t: k for k, t in enumerate(token_of)}
        fixed: list[tuple[int, str]] = []
        bases = entry.bases
        if bases is None:  # shared by every skeleton of the entry
            bases = entry.bases = tuple(None if template is None else statement_base(plan, template.parts)
                                        for plan, template in zip(entry.analysis.statements, entry.templates))
        # per statement (hot.skeleton_statements): the cached plan, its template parts (None: a fixed
        # statement), the literal number of each slot, the recipes of the individuals it names, its base
        statements: list[tuple[StatementPlan, tuple[str, ...] | None, tuple[int, ...], tuple[Any, ...],
                               dict[str, Any] | None]] = []
        for plan, template, base in zip(entry.analysis.statements, entry.templates, bases):
            if template is None:
                statements.append((plan, None, (), (), None))
                continue
            fixed.extend((literal_of[i], text) for i, text in template.fixed.items())
            statements.append((plan, template.parts, tuple(literal_of[i] for i in template.slots),
                               _named_recipes(plan, texts, literal_of), base))
        self.fixed = tuple(fixed)
        self.statements = tuple(statements)
        analysis = entry.analysis
        plannable = analysis.error is None and not analysis.refused_individuals and not analysis.refused_accesses
        one_read = len(analysis.statements) == 1 and analysis.statements[0].kind == "select"
        self.hot = (self.statements, self.fixed, analysis, plannable, one_read)

    @classmethod
    def learn(cls, parts: list[str], entry: _ShapeEntry, tokens: list[Token]) -> _Skeleton | None:
        literals = parts[1::2]
        spans: list[tuple[int, int]] = []
        pos = 0
        for k, lit in enumerate(literals):
            pos += len(parts[2 * k])
            spans.append((pos, pos + len(lit) - 1))
            pos += len(lit)
        token_of: list[int] = []
        end = -1
        sql = "".join(parts)
        for i, token in enumerate(tokens):
            if sql[end + 1:token.start].strip():  # a comment, or text no token covers
                return None
            end = token.end
            kind = _PLAIN_TOKENS.get(token.token_type)
            if token.token_type in _LITERAL_TYPES or kind is not None:
                k = len(token_of)
                if kind is None or k >= len(spans) or spans[k] != (token.start, token.end) \
                        or ((lit := literals[k])[0] == "'") is not kind or token.text != _value(lit):
                    return None
                token_of.append(i)
        if len(token_of) != len(spans) or sql[end + 1:].strip():
            return None
        for plan, template in zip(entry.analysis.statements, entry.templates):
            if template is not None and not all(i in token_of for i in (*template.slots, *template.fixed)):
                return None
        return cls(entry, [t.text for t in tokens], tuple(token_of))

    def analysis(self, parts: list[str], literals: list[str]) -> Analysis | None:
        """The analysis of the text split into ``parts`` (its ``literals`` at the odd places)."""
        return skeleton_analysis(self, Analysis, StatementPlan, NamedValue, parts, literals)  # type: ignore[no-any-return]




def _named_recipes(plan: StatementPlan, texts: list[str], literal_of: dict[int, int]) -> tuple[Any, ...]:
    """How :func:`resolve_named_texts` builds each individual ``plan`` names from a skeleton hit's
    literal values: (the NamedValue fields every individual of it shares, ((True, literal number) or
    (False, the part as is), ...), its key, array and kinds, whether every part is a text: what
    ``hot.skeleton_statements`` resolves it with)."""
    recipes = []
    for item in plan.named:
        recipe: list[tuple[bool, Any]] = []
        for value in item.values:
            if value.kind == "param":
                recipe.append((False, value.pos))
            elif value.kind == "token" and 0 <= value.pos < len(texts):
                k = literal_of.get(value.pos)
                recipe.append((True, k) if k is not None else (False, texts[value.pos]))
            else:
                recipe.append((False, value.text))
        texts_only = all(is_literal or isinstance(x, str) for is_literal, x in recipe)
        recipes.append(({"key": item.key, "array": item.array, "kinds": item.kinds}, tuple(recipe),  # shared, parts
                        item.key, item.array, item.kinds, texts_only))
    return tuple(recipes)


def _value(literal: str) -> str:
    """A plain literal's value: a string's text unquoted, a number as written."""
    return literal[1:-1].replace("''", "'") if literal[0] == "'" else literal


def _replace_sql(plan: StatementPlan, sql: str, parts: tuple[str, ...], slots: tuple[str, ...],
                 tokens: list[Token]) -> StatementPlan:
    individuals = resolve_named(plan.named, tokens) if plan.named else ()  # type: ignore[arg-type]
    return StatementPlan(plan.kind, sql, plan.command_tag, plan.redacted, plan.setting, plan.accesses,
                         plan.decision, plan.masked, parts, slots, plan.named, plan.personal, plan.anchored, individuals,
                         plan.write)
