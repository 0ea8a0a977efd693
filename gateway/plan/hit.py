"""The plan stage on a cache hit, in one compiled call (mypyc, see ``setup.py``; the source is the
fallback, ``GATEWAY_PURE_PYTHON=1``).

:class:`HotPlanner` (one per Gateway: ``gw.hot``) serves the wire session's steady state:

- :meth:`HotPlanner.query`: a Query's one cached read, planned and admitted (``plan_hot`` + ``admit``);
- :meth:`HotPlanner.parse`: an unnamed Parse's plan from the caches (``plan_hot``);
- :meth:`HotPlanner.bind`: a held plan again for a Bind, admitted (``rebind`` + ``admit``), one copy.

Each returns None where it does not apply: a statement the caches do not know, a refusal, a refused
purpose, a session context not profiled yet (or profiled under what is no longer in force), a held
plan that no longer holds. The caller then takes the Gateway's own methods, which decide every case;
what these return is what those would return (tests/test_plan_hit.py compares them field for field).
Nothing here decides anything the Gateway's methods do not: the same caches under the same keys, the
same profile (``Gateway._ctx_profiles``, the same day check), the same basis checks.

What does not change per request is kept per session context (:class:`HotContext`): the profile and
its cache key, the plan's basis, the exact and skeleton caches of the analyzer in force, what admit
checks of the profile (must it name, is it rate limited). A context is used only while the profile
entry it was made from is the Gateway's entry for it and the analyzer, policy and requesters are the
ones in force: a claim change (a new context), a reload, a catalog swap, a certification change or a
new UTC day makes it again.
"""

from __future__ import annotations

from time import time
from typing import Any

from gateway.plan.hot import SKELETON_CHARS, RequestIds, is_plain, literal_values, named, skeleton_statements, split_literals
from gateway.plan.types import NamedValue, StatementPlan
from gateway.policy.types import Profile

_new = object.__new__


class HotContext:
    """What a session context's cached decisions share (see the module docstring)."""

    def __init__(self, gw: Any, ctx: Any, hit: tuple[Any, ...], defaults: dict[str, Any]) -> None:
        self.ctx = ctx
        self.hit = hit  # the Gateway's profile entry this was made from: (ctx, day, profile)
        profile: Any = hit[2]
        self.profile = profile
        analyzer: Any = gw.analyzer
        self.analyzer = analyzer
        self.policy: Any = gw.policy
        self.requesters: Any = gw.requesters
        self.basis = (ctx, analyzer, self.policy, self.requesters)  # Plan.basis (Gateway._finish)
        self.pkey = (profile.key, profile.purpose)  # the analyzer's cache key (Analyzer.cached)
        self.exact: dict[Any, Any] = analyzer._exact
        self.skeletons: dict[Any, Any] = analyzer._skeletons
        naming = profile.naming
        self.must_name = bool(profile.must_name) and naming is not None
        self.max_values: int = naming.max_values if naming is not None else 0
        caps = profile.caps
        self.limited = caps.requests_per_minute is not None or caps.individuals_per_day is not None
        # every Plan field a cached decision of this context gives the same value (``request_plan``:
        # the defaults, the profile, the basis, no error), as one plain dict: a plan is a copy of it
        # with the request's own fields put in
        base: dict[str, Any] = {"request_id": "", "sql": "", "statements": (), "decision": None, "error": None,
                                "profile": profile}
        base.update(defaults)
        base["basis"] = self.basis
        self.plan_base = base

    def current(self, gw: Any, hit: tuple[Any, ...]) -> bool:
        return (self.hit is hit and self.analyzer is gw.analyzer and self.policy is gw.policy
                and self.requesters is gw.requesters)

    def new_plan(self, plan_cls: Any, request_id: str, sql: str, statements: tuple[Any, ...], decision: Any,
                 cache: str, tokens: Any, literals: Any, origin: Any, individuals: tuple[str, ...]) -> Any:
        """``request_plan`` of this context's profile and basis: the Plan of a cached analysis."""
        plan = _new(plan_cls)
        fields: dict[str, Any] = plan.__dict__
        fields.update(self.plan_base)  # a plain dict into an empty one: one copy of its table
        fields["request_id"] = request_id
        fields["sql"] = sql
        fields["statements"] = statements
        fields["decision"] = decision
        fields["cache"] = cache
        fields["tokens"] = tokens
        fields["literals"] = literals
        fields["origin"] = origin
        fields["individuals"] = individuals
        return plan

    def exact_hit(self, sql: str) -> Any:
        """The exact cache's analysis of ``sql`` (``Analyzer.cached``'s first look), or None."""
        return self.exact.get((self.pkey, sql))

    def skeleton_hit(self, sql: str) -> tuple[Any, list[str], list[str]] | None:
        """The skeleton cache's entry of ``sql`` (``Analyzer.cached`` after an exact miss) and the
        text's split (parts, literals), when ``sql`` is plain and its skeleton known; else None."""
        if len(sql) > SKELETON_CHARS or not is_plain(sql):
            return None
        parts = split_literals(sql)
        literals: list[str] = parts[1::2]
        kinds: list[bool] = []
        for lit in literals:
            kinds.append(ord(lit[0]) == 39)
        skeleton = self.skeletons.get((self.pkey, "\x00".join(parts[0::2]), tuple(kinds)))
        if skeleton is None:
            return None
        return skeleton, parts, literals


def _plannable(analysis: Any) -> bool:
    """A cached analysis the cached decision plans: no error, no refused individuals or accesses (the
    refusals are the Gateway's)."""
    return analysis.error is None and not analysis.refused_individuals and not analysis.refused_accesses


class HotPlanner:
    """The Gateway's cached decisions for the wire session's steady state (see the module docstring)."""

    def __init__(self, gw: Any, plan_cls: Any, plan_defaults: dict[str, Any]) -> None:
        self.gw = gw
        self.plan_cls = plan_cls
        self.defaults = plan_defaults
        self.ids: RequestIds = gw._ids  # the Gateway's request ids (made before this, never replaced)
        self.contexts: dict[int, HotContext] = {}

    def context(self, ctx: Any) -> HotContext | None:
        """The context's :class:`HotContext`, while its profile is known, not refused, of today, and
        made under the analyzer, policy and requesters in force; else None."""
        gw = self.gw
        key = id(ctx)
        hit: Any = gw._ctx_profiles.get(key)
        if hit is None or hit[0] is not ctx or hit[2].__class__ is not Profile or hit[1] != int(time() // 86400):
            return None
        found = self.contexts.get(key)
        if found is not None and found.current(gw, hit):
            return found
        if gw.analyzer is None:
            return None
        made = HotContext(gw, ctx, hit, self.defaults)
        contexts = self.contexts
        if len(contexts) > 10000:
            contexts.clear()
        contexts[key] = made  # made holds ctx: its id is not reused while the entry is here
        return made

    def forget(self) -> None:
        self.contexts.clear()

    def query(self, ctx: Any, sql: str) -> Any:
        """A Query's plan, admitted, when it is one read the caches know (``admit(plan_hot(ctx, sql))``;
        the admitted plan may be refused by a per-request rule); else None."""
        hot = self.context(ctx)
        if hot is None:
            return None
        found = hot.exact_hit(sql)
        if found is None:
            return self.skeleton_plan(hot, ctx, sql, True)
        if not _plannable(found):
            return None
        statements: tuple[Any, ...] = found.statements
        if len(statements) != 1 or statements[0].kind != "select":
            return None
        individuals = named(statements, None)
        return self.admitted(hot, ctx, self.exact_plan(hot, sql, found, individuals), individuals)

    def parse(self, ctx: Any, sql: str) -> Any:
        """A Parse's plan when the caches know the statement (``plan_hot(ctx, sql)``); else None."""
        hot = self.context(ctx)
        if hot is None:
            return None
        found = hot.exact_hit(sql)
        if found is None:
            return self.skeleton_plan(hot, ctx, sql, False)
        if not _plannable(found):
            return None
        return self.exact_plan(hot, sql, found, ())

    def bind(self, ctx: Any, held: Any, params: Any) -> Any:
        """``admit(ctx, rebind(ctx, held), params)`` in one copy of ``held``, when it still holds (see
        ``Gateway.rebind``); else None (the caller asks ``Gateway.rebind``, which plans again)."""
        hot = self.context(ctx)
        if hot is None:
            return None
        basis = held.basis
        if basis is None or held.error is not None or held.profile is not hot.profile:
            return None
        if basis is not hot.basis and (basis[0] is not ctx or basis[1] is not hot.analyzer or basis[2] is not hot.policy
                                       or basis[3] is not hot.requesters):
            return None
        individuals = named(held.statements, params)
        plan = _new(held.__class__)
        fields: dict[str, Any] = plan.__dict__
        fields.update(held.__dict__)
        fields["request_id"] = self.ids.next()
        fields["individuals"] = individuals
        return self.admitted(hot, ctx, plan, individuals)

    def exact_plan(self, hot: HotContext, sql: str, analysis: Any, individuals: tuple[str, ...]) -> Any:
        """``Gateway._finish`` of an exact hit without an error, naming ``individuals``."""
        origin = analysis.origin
        return hot.new_plan(self.plan_cls, self.ids.next(), sql, analysis.statements, analysis.decision,
                            analysis.cache, analysis.tokens, analysis.literals,
                            origin if origin is not None else analysis, individuals)

    def skeleton_plan(self, hot: HotContext, ctx: Any, sql: str, query: bool) -> Any:
        """A skeleton hit's plan (``Gateway._finish`` of ``_Skeleton.analysis``, without that analysis:
        the Plan is made from the skeleton's entry directly); ``query``: only one read, admitted,
        its individuals named (``admit``). None where the Gateway decides."""
        split = hot.skeleton_hit(sql)
        if split is None:
            return None
        skeleton, parts, literals = split
        spec: tuple[Any, ...] = skeleton.hot  # (statements, fixed, analysis, plannable, one read)
        plannable: bool = spec[3]
        one_read: bool = spec[4]
        if not plannable or (query and not one_read):
            return None
        values = literal_values(literals)
        fixed: tuple[Any, ...] = spec[1]
        for k, text in fixed:
            if values[k] != text:
                return None
        base = spec[2]  # the shape entry's analysis: the statements' origin
        found: list[str] | None = [] if query else None
        statements = skeleton_statements(spec[0], StatementPlan, NamedValue, literals, values, found)
        individuals: tuple[str, ...] = ()
        if found is not None:
            individuals = tuple(found) if len(found) < 2 else tuple(dict.fromkeys(found))
        plan = hot.new_plan(self.plan_cls, self.ids.next(), sql, statements, base.decision, "skeleton", None,
                            (parts[0::2], tuple(values)), base, individuals)
        if not query:
            return plan
        return self.admitted(hot, ctx, plan, individuals)

    def admitted(self, hot: HotContext, ctx: Any, plan: Any, individuals: tuple[str, ...]) -> Any:
        """``Gateway.admit`` past the binding: the per-request rules, when the profile has any."""
        if hot.limited or (hot.must_name and len(individuals) > hot.max_values):
            return self.gw.admit_named(ctx, plan, individuals)
        return plan
