"""The pipeline: what both front doors call. It composes identity, policy, analyzer, rewrite and
the request log; the front doors never reach the backend or the policy on their own.

    plan = gw.plan(ctx, sql)            # analyze + decide + rewrite (cached), never raises
    await gw.log_request(ctx, plan)     # durable before anything is forwarded
    ... forward plan.statements[i].sql ...
    gw.log_outcome(ctx, plan, rows=n, duration_ms=t)
"""

from __future__ import annotations

import asyncio
import gc
import secrets
import time
from collections.abc import Callable
from dataclasses import MISSING, replace
from dataclasses import fields as dataclass_fields
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

import structlog

from gateway import __version__
from gateway.analyzer import settings as pg_settings
from gateway.analyzer.classify import Classifier
from gateway.analyzer.limits import AnalysisLimits
from gateway.audit.limits_store import LimitsStore
from gateway.audit.splice import plan_outcome
from gateway.audit.sink import DurableWaiter, RequestLog
from gateway.catalog.model import Catalog
from gateway.config import Settings
from gateway.errors import (
    BackendUnavailable,
    FeatureNotSupported,
    GatewayError,
    PolicyDenied,
    PurposeRefused,
    RateLimited,
    RowLimitExceeded,
    StatementTooComplex,
)
from gateway.identity.requesters import Requesters, load_requesters
from gateway.metrics import Metrics
from gateway.audit.requests import RequestRecords, hashed_sent_sql
from gateway.plan.cache import Analyzer, Miss
from gateway.plan.hit import HotPlanner
from gateway.plan.hot import RequestIds, bound, rebound, request_plan
from gateway.plan.hot import named as named_in
from gateway.plan.request import (
    CATALOG_SCHEMAS, Plan, SessionContext, nothing_profile, persons_returned, refused_plan, use_notice_text,
)
from gateway.plan.types import Analysis, StatementPlan, denied
from gateway.policy.load import load_policy
from gateway.policy.policy import Policy
from gateway.policy.types import GATEWAY_SETTINGS, PURPOSES, ColumnRef, Decision, Profile, Requester

log = structlog.get_logger("gateway")

PlannedStatement = StatementPlan



class Gateway:
    """One per process: the policy, the requesters, the live catalog and the request log."""

    def __init__(self, settings: Settings, policy: Policy, requesters: Requesters, audit: RequestLog,
                 *, refresh_seconds: float | None = None) -> None:
        self.settings = settings
        self.policy = policy
        self.requesters = requesters
        self.audit = audit
        # the catalog, requesters and certification check (settings.refresh_interval_ms unless given)
        self.refresh_seconds = settings.refresh_interval_ms / 1000 if refresh_seconds is None else refresh_seconds
        self.pool: Any = None  # asyncpg pool: catalog introspection and the HTTP front door
        self.catalog: Catalog | None = None
        self.analyzer: Analyzer | None = None
        self.server_params: dict[str, str] = {}
        self._catalog_fp = ""
        self._refresh_task: asyncio.Task[None] | None = None
        self._ids = RequestIds(secrets.token_hex(3))
        self._profiles: dict[tuple[Any, ...], Profile | PurposeRefused] = {}
        # the same by session context object (hashing a frozen requester per request costs more than
        # the rest of a cached decision): id(ctx) -> (ctx, UTC day, profile or refusal)
        self._ctx_profiles: dict[int, tuple[SessionContext, int, Profile | PurposeRefused]] = {}
        self.metrics = Metrics()  # shared by both front doors; served at /metrics
        self._request_counters: dict[tuple[str, str, str], Any] = {}
        self._append_seconds = self.metrics.histogram("gateway_audit_append_seconds")
        self._requesters_stamp = self._stamp_requesters()
        self.limits = AnalysisLimits(settings.max_statement_chars, settings.max_nesting_depth)
        self.analysis_pool: Any = None  # AnalysisPool once started with analysis_workers > 0
        self.gauge_sources: list[Any] = [self._own_gauges]  # callables -> {name: value}, served at /metrics
        self.notices = _subject_notices(settings, policy)
        self._agencies: dict[str, bool] = {}  # requester name -> is an immigration agency

        self.caps_store: LimitsStore | None = None  # caps, rate limits and alerts; opened on first use
        self._started = False
        #: the cached decisions of the wire session's steady state, compiled (plan/hit.py)
        self.hot = HotPlanner(self, Plan, _PLAN_DEFAULTS)

    @property
    def audit(self) -> RequestLog:
        return self._audit

    @audit.setter
    def audit(self, audit: RequestLog) -> None:
        self._audit = audit
        self.records = RequestRecords(audit)  # its caches hold the log's literal hashes

    # -- life cycle ----------------------------------------------------------------------------
    @classmethod
    def from_settings(cls, settings: Settings) -> Gateway:
        from gateway.shipped import locate

        policy = load_policy(locate(settings.policy, "policy file"))
        requesters = load_requesters(locate(settings.requesters, "requesters file"))
        return cls(settings, policy, requesters, open_request_log(settings))

    @property
    def backend_startup_options(self) -> dict[str, str]:
        """What every backend session starts with (``gateway.analyzer.settings`` is the one table)."""
        return pg_settings.backend_startup_options(self.settings.statement_timeout_ms)

    async def start(self) -> None:
        import asyncpg

        if not self.settings.backend_dsn:
            raise GatewayError("gateway: no backend DSN is configured (GATEWAY_BACKEND_DSN)")
        options = {k: v for k, v in self.backend_startup_options.items() if k not in ("client_encoding",)}
        workers = None
        if self.settings.analysis_workers > 0:  # their imports run while the catalog loads and the log opens
            from gateway.analysis_pool import AnalysisPool

            workers = AnalysisPool(self.settings.analysis_workers, self.settings.analysis_timeout_ms / 1000)
            workers.spawn()
        try:
            try:
                self.pool = await asyncpg.create_pool(self.settings.backend_dsn, min_size=1,
                                                      max_size=self.settings.pool_size, server_settings=options)
            except (OSError, asyncpg.PostgresError) as exc:
                raise BackendUnavailable(f"gateway: the backend database is not reachable: {exc}") from None
            async with self.pool.acquire() as conn:
                await self._load_catalog(conn)
                self.server_params = {
                    "server_version": str(conn.get_settings().server_version),
                    "TimeZone": str(conn.get_settings().TimeZone),
                }
            await self.audit.start()
        except BaseException:
            if workers is not None:
                await workers.stop()
            raise
        if workers is not None:  # loaded after the log has started: its literal hasher goes to the workers
            self.analysis_pool = workers
            await workers.start()
            self._load_workers()
        self.notices.pool = self.pool
        if not self.settings.audit_sync:
            log.warning("audit_not_durable", message="audit_sync is off: request records are not fsync'ed; "
                        "a crash can lose answered requests. Use this for benchmarks only.")
        self._refresh_task = asyncio.create_task(self._refresh_loop())
        self._started = True
        self.settle_heap()
        for name in self.requesters.example_credentials_in_use():
            log.warning("example_credentials", requester=name,
                        message="running with the documented example credentials; replace them before real use")

    async def stop(self) -> None:
        if self._refresh_task is not None:
            self._refresh_task.cancel()
            try:
                await self._refresh_task
            except asyncio.CancelledError:
                pass
        await self.notices.drain()
        await self.audit.close()
        if self.analysis_pool is not None:
            await self.analysis_pool.stop()
        if self.caps_store is not None:
            self.caps_store.close()
            self.caps_store = None
        if self.pool is not None:
            await self.pool.close()
        if self._started:
            self._started = False
            gc.unfreeze()  # what this gateway kept alive may go now

    def settle_heap(self) -> None:
        """Move what is alive now (catalog, analyzer, policy, imports) out of the garbage collector's
        reach: a full collection would otherwise walk all of it again and again while requests come
        in (measured: 30-90 µs of CPU per request at pgbench rates). Called once started and after each
        catalog swap (the old snapshot is collected first)."""
        gc.unfreeze()
        gc.collect()
        gc.freeze()

    async def _load_catalog(self, conn: Any) -> None:
        from gateway.catalog.introspect import catalog_fingerprint, load_catalog

        self._catalog_fp = await catalog_fingerprint(conn)
        catalog = await load_catalog(conn)
        self.set_catalog(catalog)
        if self._started:
            self.settle_heap()

    def set_catalog(self, catalog: Catalog) -> None:
        """Swap in a new catalog snapshot and a fresh analyzer (its caches belong to the old one)."""
        search_path = tuple(self.policy.search_path)
        self.catalog = catalog
        self.analyzer = Analyzer(catalog, Classifier(catalog, self.policy, search_path), search_path,
                                 limits=self.limits, cache_bytes=self.settings.analysis_cache_mb * 1024 * 1024)
        self._load_workers()
        log.info("catalog_loaded", relations=len(catalog.relations), version=catalog.version)

    def gauges(self) -> dict[str, float]:
        """Current state for /metrics: analysis workers and caches here, the wire door and its pool from
        the front door (it adds a source)."""
        out: dict[str, float] = {}
        for source in self.gauge_sources:
            try:
                out.update(source())
            except Exception:  # noqa: BLE001 - a gauge must never break /metrics
                pass
        return out

    def _own_gauges(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.analysis_pool is not None:
            for key, value in self.analysis_pool.state.items():
                out[f"gateway_analysis_workers_{key}"] = value
        if self.analyzer is not None:
            for key, value in self.analyzer.cache_state.items():
                out[f"gateway_analysis_cache_{key}"] = value
        return out

    def _load_workers(self) -> None:
        """Ship the catalog, policy and limits the analyzer uses to the analysis workers."""
        if self.analysis_pool is not None and self.catalog is not None:
            self.analysis_pool.load(self.catalog, self.policy, tuple(self.policy.search_path), self.limits,
                                    getattr(self.audit, "hasher", None))

    async def _refresh_loop(self) -> None:
        from gateway.catalog.introspect import catalog_fingerprint

        while True:
            await asyncio.sleep(self.refresh_seconds)
            try:
                async with self.pool.acquire() as conn:
                    if await catalog_fingerprint(conn) != self._catalog_fp:
                        await self._load_catalog(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a failed refresh keeps the old snapshot
                log.warning("catalog_refresh_failed", error=str(exc))
            self.reload_certifications()

    def _stamp_requesters(self) -> tuple[Any, ...]:
        from gateway.identity.certifications import side_file

        source = self.requesters.source
        if not source or source.startswith("<"):
            return ()
        stamps = []
        for path in (Path(source), side_file(source)):
            try:
                st = path.stat()
                stamps.append((st.st_mtime_ns, st.st_size))
            except OSError:
                stamps.append(None)
        return tuple(stamps)

    def reload_certifications(self) -> bool:
        """Reload the requesters file when it or the certifications beside it changed (``gateway
        certification add|revoke``); a bad file keeps what was loaded. True when something changed."""
        stamp = self._stamp_requesters()
        if stamp == self._requesters_stamp:
            return False
        self._requesters_stamp = stamp
        try:
            fresh = load_requesters(self.requesters.source)
        except Exception as exc:  # noqa: BLE001 - keep the loaded requesters; say why
            log.error("requesters_reload_failed", error=str(exc))
            return False
        self.requesters = fresh
        self._forget_profiles()
        self._agencies.clear()
        log.info("requesters_reloaded", source=fresh.source)
        return True

    async def reload(self) -> bool:
        """Reload the policy and the requesters files together (SIGHUP, the admin console's RELOAD):
        both parse and pass the law check, or neither is taken and the old ones keep serving. Either
        way a clear log line and a ``reload`` record. True when the new files are in force."""
        from gateway.policy.lawcheck import law_problems

        try:
            policy = load_policy(self.settings.policy)
            requesters = load_requesters(self.settings.requesters)
            problems = law_problems(policy, requesters).problems
            if problems:
                raise ValueError("the policy breaks the law: " + "; ".join(problems))
        except Exception as exc:  # noqa: BLE001 - a broken file is refused, the old policy stays
            error = str(exc).strip() or type(exc).__name__
            log.error("reload_refused", error=error, policy=self.settings.policy, requesters=self.settings.requesters,
                      message="the new policy/requesters files were refused; the loaded ones stay in force")
            await self._log_reload(False, error)
            return False
        old_digest = self.policy.digest
        self.policy, self.requesters = policy, requesters
        fresh_notices = _subject_notices(self.settings, policy)  # due-date rules and keys follow the policy
        self.notices.rules, self.notices.keys = fresh_notices.rules, fresh_notices.keys
        self.notices.combinations = fresh_notices.combinations
        self._requesters_stamp = self._stamp_requesters()
        self._forget_profiles()
        self._agencies.clear()
        if self.catalog is not None:
            self.set_catalog(self.catalog)  # the classifier and the workers follow the new policy
        log.info("reloaded", policy=self.settings.policy, requesters=self.settings.requesters,
                 policy_digest=policy.digest, previous_digest=old_digest)
        await self._log_reload(True, None)
        return True

    async def _log_reload(self, accepted: bool, error: str | None) -> None:
        try:
            await self.log_event(None, kind="reload", accepted=accepted, error=error, policy=self.settings.policy,
                                 requesters=self.settings.requesters, policy_digest=self.policy.digest)
        except Exception as exc:  # noqa: BLE001 - the reload itself stands; the log line says it
            log.error("reload_record_failed", error=str(exc))

    def _current(self, requester: Requester) -> Requester:
        """``requester`` as the requesters file defines it now: a session outlives a reload, and what it
        may do (purposes, kind, certification) is what the file says now; one the file no longer
        holds may do nothing (raises PurposeRefused)."""
        entry = self.requesters.lookup(requester.name)
        if entry is None:
            raise PurposeRefused(f"gateway: purpose refused: requester {requester.name} is no longer in the "
                                 "requesters file", rule="requester.removed")
        return requester if entry.requester == requester else entry.requester

    async def refresh_catalog(self) -> None:
        async with self.pool.acquire() as conn:
            await self._load_catalog(conn)

    # -- planning ------------------------------------------------------------------------------
    def _forget_profiles(self) -> None:
        """The policy, the requesters or their certifications changed: every profile is made again."""
        self._profiles.clear()
        self._ctx_profiles.clear()
        self.hot.forget()

    def profile(self, ctx: SessionContext) -> Profile:
        """The requester's profile for its current claim (raises PurposeRefused). Cached per session
        context object and UTC day; a reload or a certification change forgets them all."""
        day = int(time.time() // 86400)
        hit = self._ctx_profiles.get(id(ctx))
        if hit is not None and hit[0] is ctx and hit[1] == day:
            cached = hit[2]
        else:
            now = datetime.now(timezone.utc)
            key = (ctx.requester, ctx.claim, now.date())
            found = self._profiles.get(key)
            if found is None:
                try:
                    found = self.policy.profile_for(self._current(ctx.requester), ctx.claim, now)
                except PurposeRefused as exc:
                    found = exc
                if len(self._profiles) > 10000:
                    self._profiles.clear()
                self._profiles[key] = found
            cached = found
            if len(self._ctx_profiles) > 10000:
                self._ctx_profiles.clear()
            self._ctx_profiles[id(ctx)] = (ctx, now.toordinal() - _EPOCH_ORDINAL, cached)  # ctx held: id not reused
        if isinstance(cached, PurposeRefused):
            raise cached
        return cached

    def plan(self, ctx: SessionContext, sql: str, param_type_oids: tuple[int, ...] = ()) -> Plan:
        """Plan in this thread, whatever the cost (tools and tests; the front doors use plan_hot/plan_cold)."""
        analyzer = self.analyzer
        assert analyzer is not None, "the gateway is not started"
        profile, refused = self._profile_or_refusal(ctx)
        return self._finish(ctx, sql, analyzer.analyze(sql, profile), profile, refused)

    def _profile_or_refusal(self, ctx: SessionContext) -> tuple[Profile, PurposeRefused | None]:
        """The session's profile, or (a refused purpose) the profile that reads nothing and why."""
        try:
            return self.profile(ctx), None
        except PurposeRefused as exc:
            return nothing_profile(ctx), exc

    def plan_hot(self, ctx: SessionContext, sql: str, param_type_oids: tuple[int, ...] = ()) -> Plan | None:
        """The plan when the caches (or a cheap check) answer; ``None`` when a cold analysis is needed:
        then ``await plan_cold(...)``. Written ``gw.plan_hot(...) or await gw.plan_cold(...)``, a hit
        costs no coroutine."""
        plan = self.hot.parse(ctx, sql)  # the exact or skeleton cache, compiled (plan/hit.py)
        if plan is not None:
            return plan  # type: ignore[no-any-return]
        analyzer = self.analyzer
        assert analyzer is not None, "the gateway is not started"
        hit = self._ctx_profiles.get(id(ctx))  # profile(), inlined for the common case: known, not refused
        if hit is not None and hit[0] is ctx and hit[2].__class__ is Profile and hit[1] == int(time.time() // 86400):
            profile: Profile = hit[2]  # type: ignore[assignment]
            refused = None
        else:
            profile, refused = self._profile_or_refusal(ctx)
        analysis = analyzer.cached(sql, profile)
        if analysis.__class__ is Miss:
            if not analysis.inline and self.analysis_pool is not None:  # type: ignore[union-attr]
                return None
            analysis = analyzer.remember(analysis, sql, analyzer.fresh(sql, profile, analysis.tokens))  # type: ignore[arg-type, union-attr]
        return self._finish(ctx, sql, analysis, profile, refused)  # type: ignore[arg-type]

    async def plan_cold(self, ctx: SessionContext, sql: str, param_type_oids: tuple[int, ...] = ()) -> Plan:
        """The plan, analyzing in a worker process when the caches do not know the statement; a worker
        past its deadline or dead refuses the statement (54001), never the gateway."""
        analyzer = self.analyzer
        assert analyzer is not None, "the gateway is not started"
        profile, refused = self._profile_or_refusal(ctx)
        found = analyzer.cached(sql, profile)
        if isinstance(found, Analysis):
            analysis = found
        elif found.inline or self.analysis_pool is None:
            analysis = analyzer.remember(found, sql, analyzer.fresh(sql, profile, found.tokens))
        else:
            long = found.shape is None  # not tokenized here: the worker hashes its SQL for the record too
            try:
                fresh, hashed = await self.analysis_pool.analyze(sql, profile, hash_sql=long)
                analysis = analyzer.remember(found, sql, fresh)
            except StatementTooComplex as exc:  # deadline or dead worker: this statement only, not cached
                analysis, hashed = denied(exc), None
            plan = self._finish(ctx, sql, analysis, profile, refused)
            if hashed is not None and plan.statements == analysis.statements:
                plan = replace(plan, hashed_sql=hashed)
            return plan
        return self._finish(ctx, sql, analysis, profile, refused)

    def _finish(self, ctx: SessionContext, sql: str, analysis: Analysis, profile: Profile,
                refused: PurposeRefused | None) -> Plan:
        request_id = self._ids.next()
        if refused is not None:
            # A session whose purpose is refused may still SET/RESET/SHOW its settings and end its
            # transaction (planned with a profile that reads nothing); anything else is refused.
            if analysis.error is None and all(s.kind not in ("select", "write") for s in analysis.statements):
                return Plan(request_id, sql, analysis.statements, analysis.decision, None, None, analysis.cache)
            return Plan(request_id, sql, (), Decision("deny", refused.message.removeprefix("gateway: "),
                                                      rule=refused.rule or "purpose"), refused, None)
        plan = request_plan(Plan, _PLAN_DEFAULTS, request_id, sql, analysis, profile,
                            None if analysis.error is not None else (ctx, self.analyzer, self.policy, self.requesters))
        if analysis.refused_individuals or analysis.refused_accesses:
            # a refusal names its individuals too (literals only: no parameters yet)
            named = dict.fromkeys(i for v in analysis.refused_individuals for i in v.resolve(None))
            plan = replace(plan, individuals=tuple(named), refused_accesses=analysis.refused_accesses)
        return plan

    def holds(self, ctx: SessionContext, plan: Plan) -> bool:
        """Whether ``plan`` was decided under what is in force now (see :meth:`rebind`): False after the
        session's claim changed, a reload, a catalog swap, a new UTC day, and for plans without a basis
        (refusals). The wire front door checks it at Execute for a portal bound earlier."""
        basis = plan.basis
        if basis is None or basis[0] is not ctx or basis[1] is not self.analyzer or basis[2] is not self.policy \
                or basis[3] is not self.requesters:
            return False
        hit = self._ctx_profiles.get(id(ctx))
        return not (hit is None or hit[0] is not ctx or hit[2] is not plan.profile or hit[1] != int(time.time() // 86400))

    def rebind(self, ctx: SessionContext, plan: Plan | None) -> Plan | None:
        """``plan`` again for one more request (a fresh request id, no individuals bound yet) when
        nothing it was decided under has changed, else None (plan afresh). The wire front door holds
        a prepared statement's plan and calls this on each Bind: an unchanged statement is not
        planned again. What a plan depends on, each checked by identity: the session context (its
        claim; a SET makes a new one), the analyzer (the catalog snapshot and the policy's
        classification: a catalog swap or a reload makes a new one), the policy and the requesters
        (reload), and the profile this context has now (made again after a reload, a requesters or
        certification change, and on a new UTC day). Refusals are never reused."""
        if plan is None or not self.holds(ctx, plan):
            return None
        return rebound(plan, self._ids.next(), ())  # admit binds this request's individuals

    def new_request_id(self) -> str:
        return self._ids.next()

    # -- caps and rate limits (SPEC 9) -------------------------------------------------------------
    def admit(self, ctx: SessionContext, plan: Plan, params: Any = None) -> Plan:
        """The plan with the individuals it names bound, or refused when a per-request rule fails:
        an array parameter naming too many individuals, requests per minute, individuals per day.
        Every refusal goes to the request log as the request's record (the caller logs the plan)."""
        if plan.error is not None or plan.profile is None:
            return plan
        named = named_in(plan.statements, params)  # plan.named(params)
        if named or plan.individuals:
            plan = bound(plan, named)  # plan.with_individuals(named)
        return self.admit_named(ctx, plan, named)

    def admit_named(self, ctx: SessionContext, plan: Plan, named: tuple[str, ...]) -> Plan:
        """:meth:`admit` of a plan that names ``named`` (its individuals, bound): the per-request rules.
        The steady state's compiled admit (plan/hit.py) calls this when the profile has rules to check."""
        profile = plan.profile
        assert profile is not None
        naming = profile.naming
        if profile.must_name and naming is not None and plan.personal and len(named) > naming.max_values:
            return refused_plan(plan, PolicyDenied(
                f"gateway: an individual must be named: the request names {len(named)} individuals, more than "
                f"{naming.max_values} (an array parameter counts each element)", rule="policy.name_the_individual"))
        caps = profile.caps
        if caps.requests_per_minute is None and caps.individuals_per_day is None:
            return plan
        hasher = self.audit.hasher
        hashed = [f"{k}:{hasher.hash_literal(v)}" for k, _, v in (i.partition(":") for i in named)]
        try:
            verdict = self._limits_store().admit(ctx.requester.name, profile.purpose, caps, hashed)
            for alert in verdict.alerts:
                self._alert(ctx, plan, alert)
        except Exception as exc:  # noqa: BLE001 - counters that cannot be kept refuse the request (fail closed)
            log.error("limits_unavailable", error=f"{type(exc).__name__}: {exc}")
            return refused_plan(plan, RateLimited("gateway: the request counters are unavailable; the request is refused",
                                              rule="limits.unavailable"))
        if verdict.refusal is not None:
            return refused_plan(plan, RateLimited(f"gateway: rate limit: {verdict.refusal}", rule=verdict.rule))
        return plan

    def _limits_store(self) -> LimitsStore:
        if self.caps_store is None:
            self.caps_store = LimitsStore(Path(self.settings.audit_path).parent / "limits.sqlite",
                                      self.policy.file.alerts).open()
        return self.caps_store

    def _alert(self, ctx: SessionContext, plan: Plan, alert: dict[str, Any]) -> None:
        from gateway.audit.record import utc_now

        self.audit.append_nowait({
            "schema": 1, "type": "alert", "time": utc_now(), "instance": self.settings.instance_name,
            "request_id": plan.request_id, "requester": ctx.requester.name, "agency": ctx.requester.agency,
            "requester_kind": ctx.requester.kind, "purpose": plan.profile.purpose if plan.profile else None,
            "front_door": ctx.front_door, **alert,
        })
        log.warning("alert", requester=ctx.requester.name, alert=alert.get("alert"))

    def refuse_cursor(self, ctx: SessionContext, plan: Plan) -> FeatureNotSupported:
        """A cursor (an Execute with a row limit) for a requester with a row cap: refused, recorded."""
        error = FeatureNotSupported(
            "gateway: cursors (fetching an answer in parts) are refused to this requester; run the statement "
            f"to completion, at most {plan.row_cap} rows", rule="limits.no_export")
        self.log_outcome(ctx, plan, rows=0, duration_ms=0.0, sqlstate=error.sqlstate, status="refused")
        return error

    def refuse_rows(self, ctx: SessionContext, plan: Plan, rows: int, duration_ms: float,
                    record: bool = True) -> RowLimitExceeded:
        """The error for an answer over the row cap, and (``record``) its outcome record: status
        ``refused``, no row released."""
        error = RowLimitExceeded(
            f"gateway: row limit exceeded: the answer has more than {plan.row_cap} rows, the cap per answer for "
            f"this requester and purpose; it is refused whole, nothing released (request {plan.request_id})",
            rule="limits.rows_per_answer")
        self.metrics.count("gateway_refusals_total", rule="limits.rows_per_answer", front_door=ctx.front_door)
        if record:
            self.log_outcome(ctx, plan, rows=0, duration_ms=duration_ms, sqlstate=error.sqlstate, status="refused")
        return error

    # -- staff writes the policy allows (policy/writes.py) -------------------------------------------
    async def run_write(self, plan: Plan, bind: Any, *, as_text: bool = False) -> Any:
        """Run the plan's one allowed write (``backend/writes.py``); raises a GatewayError (the caller
        logs the outcome). ``bind(parameter types)`` gives the parameters asyncpg binds."""
        from gateway.backend.writes import run_write

        st = plan.statements[0]
        profile, catalog, analyzer = plan.profile, self.catalog, self.analyzer
        assert st.write is not None and profile is not None and catalog is not None and analyzer is not None
        classifier = analyzer.classifier

        def hidden(table: tuple[str, str]) -> frozenset[str] | None:
            relation = catalog.relation(*table)
            if relation is None:
                return None
            return frozenset(c.name for c in relation.columns if profile.action_for(
                classifier.column_tags(ColumnRef(relation.schema, relation.name, c.name))) != "allow")

        from gateway.policy.writes import REQUIRED_BY_LAW

        schema, table = st.write.table
        target = catalog.relation(schema, table)
        status = frozenset() if profile.purpose == REQUIRED_BY_LAW or target is None else frozenset(
            c.name for c in target.columns
            if classifier.column_tags(ColumnRef(schema, table, c.name)) & profile.status_tags)
        return await run_write(self.pool, st.sql, st.write, bind, hidden, as_text=as_text, status=status,
                               row_cap=plan.row_cap)

    async def describe_write(self, sql: str) -> Any:
        """(parameter type oids, RETURNING fields) of a planned write, from the backend."""
        from gateway.backend.writes import describe

        return await describe(self.pool, sql)

    # -- session settings ------------------------------------------------------------------------
    def validate_setting(self, name: str, value: str | None) -> str | None:
        """An error message for an invalid ``gateway.*`` value, or None."""
        if name not in GATEWAY_SETTINGS:
            return f"gateway: unknown gateway setting {name}"
        if name == "gateway.purpose" and value not in (None, "") and value not in PURPOSES:
            return f"gateway: unknown purpose {value!r}; purposes are: {', '.join(PURPOSES)}"
        if value is not None and len(value) > 500:
            return f"gateway: the value of {name} is too long"
        return None

    def show_value(self, ctx: SessionContext, name: str) -> str:
        """What SHOW answers for a setting the gateway answers itself."""
        if name.lower().startswith("gateway."):
            return getattr(ctx.claim, name.lower().removeprefix("gateway."), None) or ""
        known = pg_settings.setting(name)
        if known is None:
            return ""
        if known.answer == "search_path":
            return ", ".join(self.policy.search_path)
        if known.answer == "requester":
            return ctx.requester.name
        return known.value or ""

    # -- request log ---------------------------------------------------------------------------
    def _request_record(self, ctx: SessionContext, plan: Plan, params: Any, sqlstate: str | None) -> Any:
        """The request record (``audit/requests.py``)."""
        return self.records.build(ctx, plan, params, sqlstate, self.policy)

    def _hashed_sent_sql(self, plan: Plan) -> str | None:
        """The SQL sent, literals as keyed hashes (see :func:`hashed_sent_sql`)."""
        return self.records.hashed_sent_sql(plan)


    def submit_request(self, ctx: SessionContext, plan: Plan, params: Any = None, sqlstate: str | None = None,
                       waiter: DurableWaiter | None = None) -> asyncio.Future[None] | None:
        """Queue the request's record. Without ``waiter``: a future that completes once it is durable
        (or fails with AuditUnavailable: then answer nothing). With one (the wire door's hold, its hot
        path): None, and the log calls ``waiter.durable()`` or ``waiter.failed(exc)`` from the one
        loop callback of the record's batch (see ``gateway/audit/sink.py``). The log observes the
        submit -> durable histogram itself, once per batch."""
        labels = (plan.decision.action, ctx.front_door, ctx.claim.purpose or "none")
        counter = self._request_counters.get(labels)
        if counter is None:
            counter = self._request_counters[labels] = self.metrics.counter(
                "gateway_requests_total", decision=labels[0], front_door=labels[1], purpose=labels[2])
        counter.inc()
        audit = self.audit
        if audit.latency is not self._append_seconds:  # a log set (or swapped) after the Gateway was made
            audit.latency = self._append_seconds
        record = self.records.build(ctx, plan, params, sqlstate, self.policy)
        owed = self._notice_owed(ctx, plan)
        if waiter is None:
            future = audit.submit(record)
            assert future is not None
            if owed is not None:
                future.add_done_callback(lambda f: self._queue_notices(f, ctx, plan, params, owed))
            return future
        if owed is not None:
            waiter = _NoticesAfter(waiter, partial(self._queue_notices, None, ctx, plan, params, owed))
        audit.submit(record, waiter)
        return None

    # -- subject notices (SPEC 10) ------------------------------------------------------------------
    def _notice_owed(self, ctx: SessionContext, plan: Plan) -> str | None:
        """Why this request owes the persons it names a notice, or None."""
        agency = self._agencies.get(ctx.requester.name)
        if agency is None:
            from gateway.policy.lawcheck import is_immigration_agency

            agency = self._agencies[ctx.requester.name] = is_immigration_agency(ctx.requester)
        if agency:
            return f"request by an immigration agency ({ctx.requester.agency})"
        profile = plan.profile
        if profile is not None and profile.purpose == "court_order" and plan.error is None \
                and plan.decision.action != "deny":
            entry = profile.entry
            return f"release under a court order ({entry.label if entry else ctx.claim.order_reference})"
        return None

    def _queue_notices(self, future: asyncio.Future[None] | None, ctx: SessionContext, plan: Plan, params: Any,
                       reason: str) -> None:
        if future is not None and (future.cancelled() or future.exception() is not None):
            return  # no record, no answer: nothing was asked of the database
        individuals = getattr(plan, "individuals", ()) or (plan.named(params) if hasattr(plan, "named") else ())
        columns = sorted({str(a.column) for st in plan.statements for a in st.accesses}
                         | {str(a.column) for a in plan.refused_accesses})
        asked = f"{(plan.profile.purpose if plan.profile else None) or 'no purpose'}: " + (", ".join(columns) or "no column")
        self.notices.submit(request_id=plan.request_id, requester=ctx.requester.name, agency=ctx.requester.agency,
                            reason=reason, asked=asked[:500], individuals=tuple(individuals))

    async def log_request(self, ctx: SessionContext, plan: Plan, params: Any = None, sqlstate: str | None = None) -> None:
        """Write the request's record durably (raises AuditUnavailable: then answer nothing)."""
        await self.submit_request(ctx, plan, params, sqlstate)

    def log_outcome(self, ctx: SessionContext, plan: Plan, *, rows: int, duration_ms: float,
                    sqlstate: str | None = None, persons: int | None = None, status: str = "ok",
                    rows_affected: int | None = None) -> None:
        """Queue the request's outcome (made durable with the next batch, folded with the batch's other
        outcomes into one ``outcomes`` record; the answer does not wait). A staff write's carries the
        rows it affected; an answer over its row cap (54000) is refused with no row; see
        :func:`gateway.audit.splice.plan_outcome`, which the wire door's steady path calls directly."""
        self.audit.append_outcome(plan_outcome(plan, rows, duration_ms, sqlstate, persons, status, rows_affected))

    async def log_event(self, ctx: SessionContext | None, kind: str, **fields: Any) -> None:
        from gateway.audit import record as records

        instance = self.settings.instance_name
        if kind == "login_failed":
            rec = records.build_login_failed_record(instance=instance, **fields)
        elif kind == "purpose_change" and ctx is not None:
            rec = records.build_purpose_change_record(
                requester=ctx.requester.name, agency=ctx.requester.agency, front_door=ctx.front_door,
                client_addr=ctx.client_addr, tls=ctx.tls, instance=instance, **fields)
        else:
            rec = {"schema": 1, "type": kind, "time": records.utc_now(), "instance": instance,
                   "requester": ctx.requester.name if ctx else None, **fields}
        await self.audit.append(rec)




class _NoticesAfter:
    """A request's waiter, and then its subject notices queued once its record is durable (SPEC 10)."""

    __slots__ = ("_waiter", "_then")

    def __init__(self, waiter: DurableWaiter, then: Callable[[], None]) -> None:
        self._waiter = waiter
        self._then = then

    def durable(self) -> None:
        self._waiter.durable()
        self._then()

    def failed(self, exc: BaseException) -> None:
        self._waiter.failed(exc)  # no record, no answer: nothing was asked of the database


def _subject_notices(settings: Settings, policy: Policy) -> Any:
    from gateway.notices.queue import NoticeQueue, queue_path
    from gateway.notices.service import SubjectNotices

    naming = getattr(policy.file, "individuals", None)  # the anchor analysis's keys, when the policy has them
    keys = dict(getattr(naming, "keys", None) or {})
    combinations = tuple(getattr(naming, "combinations", None) or ())
    return SubjectNotices(NoticeQueue(queue_path(settings.audit_path)), policy.file.notices, keys=keys,
                          combinations=combinations)










_EPOCH_ORDINAL = datetime(1970, 1, 1).toordinal()
_PLAN_DEFAULTS = {f.name: f.default for f in dataclass_fields(Plan) if f.default is not MISSING}  # day numbers as time.time() // 86400 counts them





def open_request_log(settings: Settings) -> RequestLog:
    """The request log the settings name: a PostgreSQL table when ``audit_dsn`` is set, else a file."""
    key_path = Path(settings.audit_key) if settings.audit_key else None
    if settings.audit_dsn:
        from gateway.audit.pg_sink import PgAuditLog

        return PgAuditLog(settings.audit_dsn, instance=settings.instance_name, key_path=key_path,
                          table=settings.audit_table, fsync_interval_ms=settings.audit_fsync_interval_ms,
                          hash_literals=settings.audit_hash_literals, retention_days=settings.audit_retention_days,
                          outage_buffer_bytes=settings.audit_outage_buffer_bytes)
    from gateway.audit.file_sink import AuditLog

    return AuditLog(Path(settings.audit_path), instance=settings.instance_name, key_path=key_path,
                    fsync_interval_ms=settings.audit_fsync_interval_ms, hash_literals=settings.audit_hash_literals,
                    retention_days=settings.audit_retention_days, rotate_bytes=settings.audit_rotate_bytes,
                    sync=settings.audit_sync, outage_buffer_bytes=settings.audit_outage_buffer_bytes,
                    journal_bytes=settings.audit_journal_mb * 1024 * 1024)


__all__ = ["CATALOG_SCHEMAS", "Gateway", "Plan", "PlannedStatement", "SessionContext", "__version__", "hashed_sent_sql",
           "persons_returned", "use_notice_text"]
