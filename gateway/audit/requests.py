"""The request record of a plan (SPEC 4): on the hot path a prepared record whose static part is
serialized once per (session, policy, profile, decision, statement origin) and whose request part
splices in only the id, the time and the hashed SQL, parameters and individuals; else a plain dict.
Pure: the sinks seal and write what this builds.
"""

from __future__ import annotations

from typing import Any

from gateway.audit.canonical import LineShape, RecordTemplate, dump_value, json_pieces
from gateway.audit.record import request_template
from gateway.audit.splice import literal_hash, request_members, request_record, request_shape, spliced, spliced_request
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
#: line shapes of skeleton hits kept, over all templates (one per template and received text's pieces
#: between its literals: ~2.5 KB each; past it the templates are all dropped and rebuilt on use)
SHAPES_KEPT = 4000


class RequestRecords:
    """Builds request records for one request log (its literal hasher and record builder), with the
    caches that make a repeated shape cheap."""

    def __init__(self, audit: Any) -> None:
        self.audit = audit
        self._templates: dict[tuple[Any, ...], tuple[tuple[Any, ...], Any, dict[Any, Any]]] = {}
        self._hashed_templates: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        # (statements, ctx) by identity -> what a record of them says besides the request's own values
        self._known: dict[tuple[int, int], tuple[Any, ...]] = {}
        self._shapes = 0  # line shapes kept in the templates' entries

    def build(self, ctx: SessionContext, plan: Plan, params: Any, sqlstate: str | None, policy: Policy) -> Any:
        """The request record: on the hot path (no error) a spliced record whose static part and SQL
        text were serialized once per (session claim, statement shape); otherwise a plain dict."""
        if plan.error is not None or sqlstate is not None or not plan.statements:
            return self._dict(ctx, plan, params, sqlstate, policy)
        statements = plan.statements
        hasher = self.audit.hasher
        known = plan.literals is None and plan.hashed_sql is None  # the same text and plan as before, maybe
        if known:  # a prepared statement's Bind, an exact cache hit: all but the request's own values known
            key = (id(statements), id(ctx))
            kept = self._known.get(key)
            if kept is not None and kept[0] is statements and kept[1] is ctx and kept[2] is policy \
                    and kept[3] is plan.decision and kept[4] is plan.profile and kept[5] == plan.sql \
                    and kept[9] is hasher:  # the log's key is set at start
                return self._record(kept[10], kept[6], plan, params, None, [], kept[7], kept[8])
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
                self._shapes = 0
            # refs keep the ids from being reused; the line shapes of this template's records by their
            # received SQL's pieces (None: the SQL given whole per record)
            self._templates[ids] = hit = (refs, template, {})
        template = hit[1]
        shapes: dict[Any, Any] = hit[2]
        if plan.hashed_sql is not None:  # a long statement: hashed by its analysis worker
            received, sent = plan.hashed_sql
        elif plan.literals is not None and hasher.enabled:  # a skeleton hit: hash each literal value once
            pieces, values = plan.literals
            skey = pieces if type(pieces) is tuple else tuple(pieces)
            entry = shapes.get(skey)
            if entry is None or entry[0] is not hasher or not _same_statements(entry[1], statements):
                entry = (hasher, _markers(statements),
                         request_shape(template, json_pieces(skey), _sent_pieces(hasher, statements, self._hashed_templates)))
                self._shapes += 1
                if self._shapes > SHAPES_KEPT:
                    self._shapes = 1
                    self._templates.clear()
                    self._templates[ids] = hit = (refs, template, {})
                    shapes = hit[2]
                shapes[skey] = entry
            signer = hasher._signer
            hashes: dict[str, str] = {}
            middle: list[str] = []
            for value in values:
                hashed = hashes.get(value)
                if hashed is None:
                    hashed = hashes[value] = literal_hash(hasher, signer, value)
                middle.append(hashed)
            for st in statements:
                if st.parts is not None and st.sql:
                    for value in st.slots:
                        hashed = hashes.get(value)
                        if hashed is None:
                            hashed = hashes[value] = literal_hash(hasher, signer, value)
                        middle.append(hashed)
            return self._record(entry[2], template, plan, params, hashes, middle, None, None)
        else:
            received, sent = hasher.hash_sql(plan.sql, plan.tokens), self.hashed_sent_sql(plan)
            if known:  # for the next request of this text and plan (the refs keep the ids from being reused)
                if len(self._known) > KNOWN_KEPT:
                    self._known.clear()
                shape = request_shape(template, (dump_value(received),), (dump_value(sent),))
                self._known[(id(statements), id(ctx))] = (statements, ctx, policy, plan.decision, plan.profile,
                                                          plan.sql, template, received, sent, hasher, shape)
                return self._record(shape, template, plan, params, None, [], received, sent)
        whole: LineShape | None = shapes.get(None)
        if whole is None:
            whole = shapes[None] = request_shape(template, None, None)
        return self._record(whole, template, plan, params, None, [dump_value(received), dump_value(sent)], received, sent)

    def _record(self, shape: LineShape, template: RecordTemplate, plan: Plan, params: Any,
                hashes: dict[str, str] | None, middle: list[str], received: str | None, sent: str | None) -> Any:
        """The spliced record of ``shape``; with hashing off, a parameter JSON cannot hold (NaN) makes
        a prepared record instead, which the sink refuses at seal as any record that does not serialize."""
        hasher = self.audit.hasher
        individuals = plan.individuals or plan.named(params)
        if hasher.enabled:
            members = request_members(params, individuals, hashes, hasher)
        else:
            try:
                members = request_members(params, individuals, hashes, hasher)
            except (TypeError, ValueError):
                return request_record(template, plan.request_id, received, sent, params, individuals, None, hasher)
        return spliced_request(shape, plan.request_id, members[0], members[1], middle)

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


def _markers(statements: tuple[StatementPlan, ...]) -> tuple[Any, ...]:
    """What a line shape's sent SQL was made of: each statement's template parts, or the statement."""
    return tuple([st.parts if st.parts is not None else st for st in statements])


def _same_statements(markers: tuple[Any, ...], statements: tuple[StatementPlan, ...]) -> bool:
    if len(markers) != len(statements):
        return False
    for marker, st in zip(markers, statements):
        if marker is not (st.parts if st.parts is not None else st):
            return False
    return True


def _sent_pieces(hasher: Any, statements: tuple[StatementPlan, ...],
                 cache: dict[int, tuple[tuple[str, ...], tuple[str, ...]]]) -> tuple[str, ...]:
    """The JSON text of :func:`hashed_sent_sql` around the hashes of the statements' slot values
    (which a record gives): each template's text hashed and escaped once (a statement without
    parts is the same text in every record)."""
    pieces: list[str] = [""]
    texts = 0
    for st in statements:
        if not st.sql:
            continue
        if texts:
            pieces[-1] += ";\n"
        texts += 1
        if st.parts is None:
            pieces[-1] += hasher.hash_sql(st.sql)
            continue
        hashed_parts = cache.get(id(st.parts))
        if hashed_parts is None or hashed_parts[0] is not st.parts:
            hashed_parts = (st.parts, _hash_template(hasher, st.parts))
            if len(cache) > HASHED_TEMPLATES_KEPT:
                cache.clear()
            cache[id(st.parts)] = hashed_parts
        pieces[-1] += hashed_parts[1][0]
        pieces.extend(hashed_parts[1][1:])
    if not texts:
        return ("null",)
    return json_pieces(pieces)
