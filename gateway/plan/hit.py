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

from gateway.plan.hot import SKELETON_CHARS, RequestIds, is_plain, named, request_plan, skeleton_analysis, split_literals
from gateway.plan.types import Analysis, NamedValue, StatementPlan
from gateway.policy.types import Profile

_new = object.__new__


class HotContext:
    """What a session context's cached decisions share (see the module docstring)."""

    def __init__(self, gw: Any, ctx: Any, hit: tuple[Any, ...]) -> None:
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

    def current(self, gw: Any, hit: tuple[Any, ...]) -> bool:
        return (self.hit is hit and self.analyzer is gw.analyzer and self.policy is gw.policy
                and self.requesters is gw.requesters)

    def analysis(self, sql: str) -> Any:
        """The cached analysis of ``sql`` (``Analyzer.cached``: the exact cache, then the skeleton
        cache) when it plans without a refusal, else None (the shape cache, a fresh plan and every
        refusal are the Gateway's)."""
        found = self._cached(sql)
        if found is None or found.error is not None or found.refused_individuals or found.refused_accesses:
            return None
        return found

    def _cached(self, sql: str) -> Any:
        pkey = self.pkey
        found = self.exact.get((pkey, sql))
        if found is not None:
            return found
        if len(sql) > SKELETON_CHARS or not is_plain(sql):
            return None
        parts = split_literals(sql)
        literals: list[str] = parts[1::2]
        kinds: list[bool] = []
        for lit in literals:
            kinds.append(ord(lit[0]) == 39)
        skeleton = self.skeletons.get((pkey, "\x00".join(parts[0::2]), tuple(kinds)))
        if skeleton is None:
            return None
        return skeleton_analysis(skeleton, Analysis, StatementPlan, NamedValue, parts, literals)


class HotPlanner:
    """The Gateway's cached decisions for the wire session's steady state (see the module docstring)."""

    def __init__(self, gw: Any, plan_cls: Any, plan_defaults: dict[str, Any]) -> None:
        self.gw = gw
        self.plan_cls = plan_cls
        self.defaults = plan_defaults
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
        made = HotContext(gw, ctx, hit)
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
        analysis = hot.analysis(sql)
        if analysis is None:
            return None
        statements: tuple[Any, ...] = analysis.statements
        if len(statements) != 1 or statements[0].kind != "select":
            return None
        individuals = named(statements, None)
        return self.admitted(hot, ctx, self.plan(hot, sql, analysis, individuals), individuals)

    def parse(self, ctx: Any, sql: str) -> Any:
        """A Parse's plan when the caches know the statement (``plan_hot(ctx, sql)``); else None."""
        hot = self.context(ctx)
        if hot is None:
            return None
        analysis = hot.analysis(sql)
        if analysis is None:
            return None
        return self.plan(hot, sql, analysis, ())

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
        fields["request_id"] = self.gw._ids.next()
        fields["individuals"] = individuals
        return self.admitted(hot, ctx, plan, individuals)

    def plan(self, hot: HotContext, sql: str, analysis: Any, individuals: tuple[str, ...]) -> Any:
        """``Gateway._finish`` of a cached analysis without an error, naming ``individuals``."""
        ids: RequestIds = self.gw._ids
        return request_plan(self.plan_cls, self.defaults, ids.next(), sql, analysis, hot.profile, hot.basis, individuals)

    def admitted(self, hot: HotContext, ctx: Any, plan: Any, individuals: tuple[str, ...]) -> Any:
        """``Gateway.admit`` past the binding: the per-request rules, when the profile has any."""
        if hot.limited or (hot.must_name and len(individuals) > hot.max_values):
            return self.gw.admit_named(ctx, plan, individuals)
        return plan
