"""``gateway.*`` settings with PostgreSQL's scoping, driven by transaction events (pure).

PostgreSQL undoes a ``SET`` when its transaction (or a savepoint past it) rolls back, ends a
``SET LOCAL`` with its transaction, and clears everything on ``RESET ALL``/``DISCARD ALL``. Pools
rely on that to hand a connection to the next user, so the purpose claim follows the same rules.

>>> s = ClaimScope()
>>> _ = s.set("purpose", "court_order"); s.claim.purpose
'court_order'
>>> s.event("begin"); _ = s.set("purpose", "required_by_law"); s.event("rollback"); s.claim.purpose
'court_order'
>>> s.event("begin"); _ = s.set("purpose", None, local=True); s.claim.purpose is None
True
>>> s.event("commit"); s.claim.purpose
'court_order'
>>> s.event("begin"); s.event("savepoint", "a"); _ = s.set("purpose", "x"); s.event("rollback_to", "a")
>>> s.claim.purpose
'court_order'
>>> s.event("commit"); s.reset_all(); s.claim.purpose is None
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.policy.types import CLAIM_FIELDS, PurposeClaim

Values = dict[str, str | None]


@dataclass
class _Frame:
    name: str | None  # None: the transaction itself; else a savepoint
    session: Values
    local: Values


@dataclass
class ClaimScope:
    """The session's claim as PostgreSQL would scope it. ``claim`` is the effective value."""

    session: Values = field(default_factory=dict)
    local: Values = field(default_factory=dict)
    frames: list[_Frame] = field(default_factory=list)

    defaults: Values = field(default_factory=dict)  # the startup values: RESET goes back to them

    @classmethod
    def starting_with(cls, claim: PurposeClaim) -> ClaimScope:
        """A session whose startup packet set ``claim`` (its defaults, as in PostgreSQL)."""
        defaults = {k: v for k, v in claim.as_dict().items() if v is not None}
        return cls(session=dict(defaults), defaults=defaults)

    def copy(self) -> ClaimScope:
        """An independent copy (try a change, keep it only if it could be logged)."""
        return ClaimScope(dict(self.session), dict(self.local), list(self.frames), self.defaults)

    @property
    def in_transaction(self) -> bool:
        return bool(self.frames)

    @property
    def claim(self) -> PurposeClaim:
        values = {**self.session, **self.local}
        return PurposeClaim(**{k: values.get(k) for k in CLAIM_FIELDS})

    def set(self, key: str, value: str | None, *, local: bool = False) -> bool:
        """``SET [LOCAL] gateway.KEY`` (``None``: RESET / DEFAULT). False when it has no effect
        (``SET LOCAL`` outside a transaction block, which PostgreSQL answers with a warning)."""
        if key not in CLAIM_FIELDS:
            raise KeyError(key)
        if value is None and not local:
            value = self.defaults.get(key)
        if local:
            if not self.frames:
                return False
            self.local[key] = value
            return True
        self.session[key] = value
        self.local.pop(key, None)
        return True

    def reset_all(self) -> None:
        """``RESET ALL`` (transactional, like any SET) and ``DISCARD ALL`` (outside a transaction)."""
        self.session = dict(self.defaults)
        self.local = {}

    def discard_all(self) -> None:
        """``DISCARD ALL``: back to the startup values (the pooled connection's next user starts clean)."""
        self.reset_all()

    def event(self, kind: str, name: str | None = None) -> None:
        """A transaction event: begin, commit, rollback, savepoint NAME, release NAME, rollback_to NAME."""
        if kind == "begin":
            if not self.frames:
                self.frames.append(_Frame(None, dict(self.session), dict(self.local)))
        elif kind == "commit":
            self.frames.clear()
            self.local = {}
        elif kind == "rollback":
            if self.frames:
                self.session = dict(self.frames[0].session)
            self.frames.clear()
            self.local = {}
        elif kind == "savepoint":
            if self.frames:
                self.frames.append(_Frame(name, dict(self.session), dict(self.local)))
        elif kind in ("release", "rollback_to"):
            index = self._savepoint(name)
            if index is None:
                return  # the backend answers "savepoint does not exist" and aborts the transaction
            frame = self.frames[index]
            if kind == "rollback_to":
                self.session, self.local = dict(frame.session), dict(frame.local)
                del self.frames[index + 1:]
            else:
                del self.frames[index:]
        else:
            raise ValueError(f"unknown transaction event {kind!r}")

    def _savepoint(self, name: str | None) -> int | None:
        for i in range(len(self.frames) - 1, 0, -1):
            if self.frames[i].name == name:
                return i
        return None


def transaction_event(kind: str, sql: str) -> tuple[str, str | None] | None:
    """The event a planned utility statement is, from the normalised text the analyzer printed.

    >>> transaction_event("transaction", 'ROLLBACK TO SAVEPOINT "a"')
    ('rollback_to', 'a')
    >>> transaction_event("transaction", "BEGIN ISOLATION LEVEL SERIALIZABLE"), transaction_event("set", "RESET ALL")
    (('begin', None), ('reset_all', None))
    """
    if kind == "set":
        return {"RESET ALL": ("reset_all", None), "DISCARD ALL": ("discard_all", None)}.get(sql)
    if kind != "transaction":
        return None
    for prefix, event in (("ROLLBACK TO SAVEPOINT ", "rollback_to"), ("RELEASE SAVEPOINT ", "release"),
                          ("SAVEPOINT ", "savepoint")):
        if sql.startswith(prefix):
            return event, sql[len(prefix):].strip('"')
    word = sql.split(" ", 1)[0]
    return {"BEGIN": ("begin", None), "COMMIT": ("commit", None), "ROLLBACK": ("rollback", None)}.get(word)


__all__ = ["ClaimScope", "transaction_event"]
