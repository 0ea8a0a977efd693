"""The request record of a plan (SPEC 4): on the hot path a prepared record whose static part is
serialized once per (session, policy, profile, decision, statement origin) and whose request part
splices in only the id, the time and the hashed SQL, parameters and individuals; else a plain dict.
Pure: the sinks seal and write what this builds.
"""

from __future__ import annotations

from typing import Any

from gateway.audit.record import request_template
from gateway.audit.splice import hashed_values, request_record, spliced
from gateway.plan.cache import INLINE_CHARS
from gateway.plan.request import Plan, SessionContext
from gateway.plan.types import StatementPlan
from gateway.policy.policy import Policy
from gateway.policy.types import Profile

_SLOT = "$987654321"  # a placeholder the literal hasher keeps as it is
#: record templates kept (one per session context and statement origin; each holds its origin, the
#: cached analysis, alive: ~3 KB for the template, up to ~10 KB with an analysis the caches evicted);
#: past it they are all dropped and rebuilt on use (bench/memory.py: the memory bar)
TEMPLATES_KEPT = 2000
#: hashed template parts kept (one per statement template)
HASHED_TEMPLATES_KEPT = 4000
#: exact-hit records kept (a prepared statement per session): each keeps its analysis alive after the analyzer's
#: cache evicted it, so the bound is the templates' (20,000 kept 43 MiB of evicted analyses at 100,000 texts)
KNOWN_KEPT = 2000


class RequestRecords:
    """Builds request records for one request log (its literal hasher and record builder), with the
    caches that make a repeated shape cheap."""

    def __init__(self, audit: Any) -> None:
        self.audit = audit
        self._templates: dict[tuple[Any, ...], tuple[tuple[Any, ...], Any]] = {}
        self._hashed_templates: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        # (statements, ctx) by identity -> what a record of them says besides the request's own values
        self._known: dict[tuple[int, int], tuple[Any, ...]] = {}

    def build(self, ctx: SessionContext, plan: Plan, params: Any, sqlstate: str | None, policy: Policy) -> Any:
        """The request record: on the hot path (no error) a prepared record whose static part was
        serialized once per (session claim, statement shape); otherwise a plain dict."""
        if plan.error is not None or sqlstate is not None or not plan.statements:
            return self._dict(ctx, plan, params, sqlstate, policy)
        statements = plan.statements
        known = plan.literals is None and plan.hashed_sql is None  # the same text and plan as before, maybe
        if known:  # a prepared statement's Bind, an exact cache hit: all but the request's own values known
            key = (id(statements), id(ctx))
            kept = self._known.get(key)
            if kept is not None and kept[0] is statements and kept[1] is ctx and kept[2] is policy \
                    and kept[3] is plan.decision and kept[4] is plan.profile and kept[5] == plan.sql \
                    and kept[9] is self.audit.hasher:  # the log's key is set at start
                return request_record(kept[6], plan.request_id, kept[7], kept[8], params,
                                      plan.individuals or plan.named(params), None, self.audit.hasher)
        # every input of _static_fields, by identity (frozen values: the same objects say the same thing)
        refs: tuple[Any, ...]
        if plan.origin is not None:  # the statements' accesses, masks and kinds are the origin's
            refs = (ctx, policy, plan.profile, plan.decision, plan.origin)
            ids: tuple[Any, ...] = (id(ctx), id(policy), id(plan.profile), id(plan.decision), id(plan.origin))
        else:
            refs = (ctx, policy, plan.profile, plan.decision,
                    *[x for st in plan.statements for x in (st.accesses, st.masked, st.redacted, st.kind)])
            ids = tuple(map(id, refs))
        hit = self._templates.get(ids)
        if hit is None or hit[0] != refs:  # tuples compare items by identity first: ids not reused
            template = request_template(**self.static_fields(ctx, plan, sqlstate, policy))
            if len(self._templates) > TEMPLATES_KEPT:
                self._templates.clear()
            self._templates[ids] = hit = (refs, template)  # refs keep the ids from being reused
        hasher = self.audit.hasher
        hashes: dict[str, str] | None = None
        if plan.hashed_sql is not None:  # a long statement: hashed by its analysis worker
            received, sent = plan.hashed_sql
        elif plan.literals is not None and hasher.enabled:  # a skeleton hit: hash each literal value once
            pieces, values = plan.literals
            hashes = hashed_values(hasher, values)
            received = spliced(pieces, values, hashes, hasher)
            sent = hashed_sent_sql(hasher, plan.statements, self._hashed_templates, hashes)
        else:
            received, sent = hasher.hash_sql(plan.sql, plan.tokens), self.hashed_sent_sql(plan)
            if known:  # for the next request of this text and plan (the refs keep the ids from being reused)
                if len(self._known) > KNOWN_KEPT:
                    self._known.clear()
                self._known[(id(statements), id(ctx))] = (statements, ctx, policy, plan.decision, plan.profile,
                                                          plan.sql, hit[1], received, sent, hasher)
        return request_record(hit[1], plan.request_id, received, sent, params, plan.individuals or plan.named(params),
                              hashes, hasher)

    def _dict(self, ctx: SessionContext, plan: Plan, params: Any, sqlstate: str | None, policy: Policy) -> dict[str, Any]:
        hashed = plan.hashed_sql
        if hashed is None and len(plan.sql) > INLINE_CHARS and self.audit.hasher.enabled and not plan.statements:
            # a long statement refused before any analysis: one keyed hash of the whole text, not a
            # tokenization of it on the event loop
            hashed = (f"{self.audit.hasher.hash_literal(plan.sql)} /* statement of {len(plan.sql)} characters, "
                      "refused unanalyzed */", None)
        return self.audit.build_request_record(
            request_id=plan.request_id,
            # a long statement's SQL is hashed by its analysis worker (tokens and HMACs for 40,000
            # literals take a second: not for the event loop)
            sql_received=plan.sql if hashed is None else hashed[0],
            sql_received_hashed=hashed is not None,
            sql_sent=self.hashed_sent_sql(plan) if hashed is None else hashed[1],
            sql_sent_hashed=True,
            params=list(params) if params else None,
            individuals=plan.individuals or plan.named(params),
            **self.static_fields(ctx, plan, sqlstate, policy),
        )

    def static_fields(self, ctx: SessionContext, plan: Plan, sqlstate: str | None, policy: Policy) -> dict[str, Any]:
        """What a request record says that does not change between requests of one session and shape."""
        accesses = [a for st in plan.statements for a in st.accesses]
        masked = [m for st in plan.statements for m in st.masked]
        purpose = ctx.claim.purpose
        profile = plan.profile
        statutory = policy.is_statutory_request(purpose)
        return dict(
            requester=ctx.requester.name,
            agency=ctx.requester.agency,
            front_door=ctx.front_door,
            client_addr=ctx.client_addr,
            tls=ctx.tls,
            claim=ctx.claim,
            statement_kind=plan.statement_kind,
            accesses=accesses,
            decision=plan.decision.action,
            reason=plan.decision.reason,
            rule=plan.decision.rule,
            redacted=plan.redacted,
            masked=masked,
            statutory_request=statutory,
            statutory_exclusion=None if statutory else ("no exception purpose stated" if not purpose else f"purpose {purpose} is not a statutory request"),
            policy_digest=policy.digest,
            registry_entry=profile.entry.as_record() if profile is not None and profile.entry is not None else None,
            certification=certification_field(profile),
            use_notice=plan.use_notice is not None,
            origin=({"ori": ctx.claim.ori, "end_user": ctx.claim.end_user}
                    if ctx.requester.relay or ctx.claim.ori is not None or ctx.claim.end_user is not None else None),
            error_code=plan.error.code if plan.error else None,
            sqlstate=plan.error.sqlstate if plan.error else sqlstate,
            requester_kind=ctx.requester.kind,
            effective_purpose=plan.profile.purpose if plan.profile is not None else None,
        )

    def hashed_sent_sql(self, plan: Plan) -> str | None:
        """The SQL sent, literals as keyed hashes (see :func:`hashed_sent_sql`)."""
        return hashed_sent_sql(self.audit.hasher, plan.statements, self._hashed_templates)


def hashed_sent_sql(hasher: Any, statements: tuple[StatementPlan, ...],
                    cache: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] | None = None,
                    memo: dict[str, str] | None = None) -> str | None:
    """The SQL sent, literals as keyed hashes: template statements hash only their literal values
    (the template's own hashing is done once per shape, kept in ``cache``), others are tokenized by
    the hasher. Pure: the analysis workers run it for long statements."""
    texts = []
    for st in statements:
        if not st.sql:
            continue
        if st.parts is None or not hasher.enabled:
            texts.append(hasher.hash_sql(st.sql))
            continue
        hashed_parts = cache.get(id(st.parts)) if cache is not None else None
        if hashed_parts is None or hashed_parts[0] is not st.parts:
            hashed_parts = (st.parts, _hash_template(hasher, st.parts))
            if cache is not None:
                if len(cache) > HASHED_TEMPLATES_KEPT:
                    cache.clear()
                cache[id(st.parts)] = hashed_parts
        texts.append(spliced(hashed_parts[1], st.slots, memo if memo is not None else {}, hasher))
    return ";\n".join(texts) or None


def certification_field(profile: Profile | None) -> dict[str, str] | None:
    """What the record says of an external requester's certification: the one that applied, or the lapse."""
    if profile is None or not profile.external or profile.no_data:
        return None
    if profile.certification_lapse:
        return {"status": profile.certification_lapse, "detail": profile.certification}
    return {"status": "current", "id": profile.certification}


def _hash_template(hasher: Any, parts: tuple[str, ...]) -> tuple[str, ...]:
    """Hash the literals inside a template's fixed text, keeping the slots between the parts."""
    hashed = hasher.hash_sql(_SLOT.join(parts))
    pieces = tuple(hashed.split(_SLOT))
    if len(pieces) != len(parts):  # a part contained the placeholder text: hash it with the slots shown
        return tuple(hasher.hash_sql(p) for p in parts)
    return pieces
