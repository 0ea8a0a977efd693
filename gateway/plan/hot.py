"""The plan stage's per-request work on a cache hit, compiled (mypyc, see ``setup.py``; the source is
the fallback, ``GATEWAY_PURE_PYTHON=1``): a skeleton hit's statements spliced from the cached ones,
the request's :class:`~gateway.plan.request.Plan`, and the individuals ``Gateway.admit`` binds.

Everything here builds the same frozen values the rest of the plan stage builds (``StatementPlan``,
``NamedValue``, ``Analysis``, ``Plan``), field for field, without their dataclass ``__init__`` (a
frozen dataclass sets each field through ``object.__setattr__``): a copy of the cached value's fields
with the request's own put in. The callers keep the decisions (which cache, which plan); this module
only assembles. Pure.
"""

from __future__ import annotations

from typing import Any, Final

from gateway.plan.keys import canonical

_new = object.__new__


#: "000" to "999": the last three digits of a request id
_D3: Final = tuple([f"{i:03d}" for i in range(1000)])


class RequestIds:
    """Request ids ``<6 hex>-<7 digits>``: one prefix per process start, a counter after it (a native
    class when compiled: the increment runs without the interpreter, so threads never share a number).
    The text before the last three digits is formatted once per thousand ids (the f-string with its
    format spec was ~5,000 instructions an id; this is a concatenation)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.count = 0
        self.block: tuple[int, str] = (-1, "")  # (id // 1000, its text): one tuple, swapped whole

    def next(self) -> str:
        n = self.count + 1
        self.count = n
        high = n // 1000
        block = self.block
        if block[0] != high:
            block = (high, f"{self.prefix}-{high:04d}")  # f"{n:07d}" is f"{high:04d}" and three digits
            self.block = block
        return block[1] + _D3[n - high * 1000]


def skeleton_statements(statements: tuple[Any, ...], statement_cls: Any, named_cls: Any, literals: list[str],
                        values: list[str], found: list[str] | None = None) -> tuple[Any, ...]:
    """A skeleton hit's statements: each cached statement with this text's literals spliced into its
    template (``literals``: their texts as written, ``values``: their values). ``statements`` holds,
    per statement, (cached plan, template parts or None for a fixed statement, the literal number of
    each slot, the recipes of the individuals it names, the plan's fields as one dict with the
    template parts and no individuals: what every text of the shape shares, made once per shape
    entry). A recipe is (the fields every individual of it shares, ((True, literal number) or (False,
    the part as is), ...), its key, whether it is an array, its kinds, whether every part is a text).
    ``found``: given, the ``key:value`` texts of the individuals named are appended to it (what
    :func:`named` of the statements without parameters gives, before its dedup)."""
    out: list[Any] = []
    for entry in statements:
        plan = entry[0]
        pieces = entry[1]
        if pieces is None:
            out.append(plan)
            if found is not None:
                for value in plan.individuals:
                    found.extend(resolve_value(value, None))
            continue
        slots: tuple[int, ...] = entry[2]
        recipes: tuple[Any, ...] = entry[3]
        base: dict[str, Any] = entry[4]
        text = [pieces[0]]
        slot_values: list[str] = []
        i = 1
        for k in slots:
            text.append(literals[k])  # a plain literal's text is its rendering
            text.append(pieces[i])
            slot_values.append(values[k])
            i += 1
        statement = _new(statement_cls)
        fields: dict[str, Any] = statement.__dict__
        fields.update(base)  # a plain dict into an empty one: one copy of its table
        fields["sql"] = "".join(text)
        fields["slots"] = tuple(slot_values)
        if recipes:
            individuals: list[Any] = []
            for recipe in recipes:
                parts: list[Any] = []
                for is_literal, x in recipe[1]:
                    parts.append(values[x] if is_literal else x)
                value = _new(named_cls)
                named_fields: dict[str, Any] = value.__dict__
                named_fields.update(recipe[0])
                named_fields["parts"] = tuple(parts)
                individuals.append(value)
                if found is not None:
                    if recipe[3] or not recipe[5]:  # an array, or a parameter among the parts: as resolve does
                        found.extend(resolve_value(value, None))
                    else:
                        found.append(_resolved(recipe[2], parts, recipe[4]))
            fields["individuals"] = tuple(individuals)
        out.append(statement)
    return tuple(out)


def _resolved(key: str, parts: list[Any], kinds: tuple[str, ...]) -> str:
    """:func:`resolve_value` of a value that is no array and whose parts are all texts (no parameter)."""
    out: list[str] = []
    i = 0
    n = len(kinds)
    for part in parts:
        item: str = part
        out.append(_canonical(item, kinds[i]) if i < n else item)
        i += 1
    return key + ":" + (out[0] if len(out) == 1 else "|".join(out))


def statement_base(plan: Any, pieces: tuple[str, ...]) -> dict[str, Any]:
    """What :func:`skeleton_statements` copies of a cached statement: its fields as one plain dict,
    its template parts in, no individuals (a spliced statement's own are put in)."""
    fields: dict[str, Any] = {}
    fields.update(plan.__dict__)  # a combined table (dict() of an instance's dict, compiled, shares its keys:
    fields["parts"] = pieces      # a copy of such a dict inserts key by key)
    fields["individuals"] = ()
    return fields


#: longer texts have no skeleton entry (not worth one)
SKELETON_CHARS = 4096


def is_plain(sql: str) -> bool:
    """No quoted identifier, dollar sign, backslash, comment or NUL: what the skeleton cache leaves to
    the tokenizer (``plan.cache._NOT_PLAIN.search(sql) is None``, four times faster)."""
    return not ('"' in sql or "$" in sql or "\\" in sql or "\x00" in sql or "--" in sql or "/*" in sql)


def split_literals(sql: str) -> list[str]:
    """``cache._LITERAL.split(sql)`` by hand: the text between the plain literals and the literals, at
    the odd places. A literal is a string ``'...'`` (``''`` inside it is a quote; unterminated, it ends
    at the first quote of its last ``''``, or it is no literal and its quote is text) or a number
    ``d+(.d+)?`` that no word character, ``.`` or ``$`` comes right before and no word character or ``.``
    right after (``d``, word: as Python's ``re`` reads ``\\d`` and ``\\w``, Unicode included). The same
    splits as the regular expression (tests/test_skeleton_split.py, random texts and hypothesis), at a
    fraction of its cost once compiled."""
    out: list[str] = []
    n = len(sql)
    start = 0  # where the current text part began
    i = 0
    while i < n:
        c = ord(sql[i])
        if c == 39:  # a quote
            end = _string_end(sql, i, n)
            if end < 0:
                i += 1
                continue
        elif 48 <= c <= 57 or (c > 127 and sql[i].isdecimal()):
            if i > 0 and _word_dot_dollar(sql, i - 1):
                i += 1
                continue
            end = _number_end(sql, i, n)
            if end < 0:
                i += 1
                continue
        else:
            i += 1
            continue
        out.append(sql[start:i])
        out.append(sql[i:end])
        start = i = end
    out.append(sql[start:])
    return out


def _string_end(sql: str, i: int, n: int) -> int:
    """The end of the string literal whose quote is at ``i``, or -1 when there is none."""
    j = i + 1
    last_pair = -1  # the first quote of the last '' taken: an unterminated string ends there
    while j < n:
        if ord(sql[j]) == 39:
            if j + 1 < n and ord(sql[j + 1]) == 39:
                last_pair = j
                j += 2
                continue
            return j + 1
        j += 1
    return last_pair + 1 if last_pair >= 0 else -1


def _number_end(sql: str, i: int, n: int) -> int:
    """The end of the number whose first digit is at ``i``, or -1 when what follows it makes it none."""
    j = i + 1
    while j < n and _digit(sql, j):
        j += 1
    if j + 1 < n and ord(sql[j]) == 46 and _digit(sql, j + 1):
        j += 2
        while j < n and _digit(sql, j):
            j += 1
    if j < n and (ord(sql[j]) == 46 or _word(sql, j)):
        return -1
    return j


def _digit(sql: str, i: int) -> bool:
    """``re``'s ``\\d`` at ``i``: a Unicode decimal digit."""
    c = ord(sql[i])
    if c < 128:
        return 48 <= c <= 57
    return sql[i].isdecimal()


def _word(sql: str, i: int) -> bool:
    """``re``'s ``\\w`` at ``i``: a Unicode letter or digit, or ``_``."""
    c = ord(sql[i])
    if c < 128:
        return 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122 or c == 95
    return sql[i].isalnum()


def _word_dot_dollar(sql: str, i: int) -> bool:
    c = ord(sql[i])
    return c == 46 or c == 36 or _word(sql, i)


def skeleton_key(pkey: Any, parts: list[str]) -> tuple[Any, list[str]]:
    """The skeleton cache's key of a text split into ``parts`` (the text between the literals, which
    literals are strings) and the literals."""
    literals: list[str] = parts[1::2]
    kinds: list[bool] = []
    for lit in literals:
        kinds.append(lit[0] == "'")
    return (pkey, "\x00".join(parts[0::2]), tuple(kinds)), literals


def literal_values(literals: list[str]) -> list[str]:
    """The values of plain literals as the skeleton split finds them: a string unquoted, a number as written."""
    out: list[str] = []
    for lit in literals:
        out.append(lit[1:-1].replace("''", "'") if lit[0] == "'" else lit)
    return out


def skeleton_analysis(skeleton: Any, analysis_cls: Any, statement_cls: Any, named_cls: Any, parts: list[str],
                      literals: list[str]) -> Any:
    """``_Skeleton.analysis``: the analysis of the text split into ``parts`` (its ``literals`` at the odd
    places) from the skeleton's shape entry, or None when a literal the plan depends on differs."""
    values = literal_values(literals)
    for k, text in skeleton.fixed:
        if values[k] != text:
            return None
    base = skeleton.entry.analysis
    analysis = _new(analysis_cls)
    fields: dict[str, Any] = analysis.__dict__
    fields.update(base.__dict__)
    fields["statements"] = skeleton_statements(skeleton.statements, statement_cls, named_cls, literals, values)
    fields["cache"] = "skeleton"
    fields["tokens"] = None
    fields["literals"] = (parts[0::2], tuple(values))
    fields["origin"] = base
    return analysis


def with_fields(cls: Any, base: dict[str, Any], changes: dict[str, Any]) -> Any:
    """A new ``cls`` value with ``base``'s fields and ``changes`` over them (no ``__init__``)."""
    value = _new(cls)
    fields: dict[str, Any] = value.__dict__
    fields.update(base)
    fields.update(changes)
    return value


def request_plan(plan_cls: Any, defaults: dict[str, Any], request_id: str, sql: str, analysis: Any, profile: Any,
                 basis: Any, individuals: tuple[str, ...] = ()) -> Any:
    """The request's Plan from its analysis (``Gateway._finish`` on the path without a refusal; the
    cached decision of plan/hit.py, which knows the individuals named)."""
    fields: dict[str, Any] = dict(defaults)
    fields["request_id"] = request_id
    fields["sql"] = sql
    fields["statements"] = analysis.statements
    fields["decision"] = analysis.decision
    fields["error"] = analysis.error
    fields["profile"] = profile
    fields["cache"] = analysis.cache
    fields["tokens"] = analysis.tokens
    fields["literals"] = analysis.literals
    origin = analysis.origin
    fields["origin"] = origin if origin is not None else analysis
    fields["basis"] = basis
    fields["individuals"] = individuals
    plan = _new(plan_cls)
    plan.__dict__.update(fields)
    return plan


def named(statements: tuple[Any, ...], params: Any) -> tuple[str, ...]:
    """``Plan.named``: the individuals the statements name, parameters bound, once each, in order."""
    found: list[str] = []
    for st in statements:
        for value in st.individuals:
            found.extend(resolve_value(value, params))
    if len(found) < 2:
        return tuple(found)
    return tuple(dict.fromkeys(found))


def resolve_value(value: Any, params: Any) -> list[str]:
    """``NamedValue.resolve``: ``key:value`` texts of the individuals ``value`` names, with ``params``
    bound; a parameter that is missing or NULL names nobody. An array parameter's elements are left to
    ``value.resolve_array``; the common canonical forms are taken here, the others from
    :func:`gateway.plan.keys.canonical`."""
    parts: tuple[Any, ...] = value.parts
    if value.array and len(parts) == 1:
        return value.resolve_array(params)  # type: ignore[no-any-return]
    kinds: tuple[str, ...] = value.kinds
    out: list[str] = []
    i = 0
    for part in parts:
        if isinstance(part, int):
            if not params or part > len(params) or params[part - 1] is None:
                return []
            item: object = params[part - 1]
        else:
            item = part
        if i < len(kinds):
            out.append(_canonical(item, kinds[i]))
        elif isinstance(item, str):
            out.append(item)
        else:
            out.append(text_of(item))
        i += 1
    return [value.key + ":" + (out[0] if len(out) == 1 else "|".join(out))]


def _canonical(item: object, kind: str) -> str:
    """``keys.canonical(item, kind)``, its common cases inline: a text for an exact key, a plain
    integer's digits for an integer key."""
    if isinstance(item, str):
        if not kind:
            return item
        if kind == "int" and item.isdigit() and item.isascii() and (item[0] != "0" or len(item) == 1):
            return item
    return canonical(item, kind)


def text_of(value: object) -> str:
    """A value's text where its key has no canonical form: bytes decoded (invalid UTF-8 replaced)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def rebound(plan: Any, request_id: str, individuals: tuple[str, ...] | None) -> Any:
    """``plan`` again under another request id (and, not None, other individuals): a copy of its fields."""
    fresh = _new(plan.__class__)
    fields: dict[str, Any] = fresh.__dict__
    fields.update(plan.__dict__)
    fields["request_id"] = request_id
    if individuals is not None:
        fields["individuals"] = individuals
    return fresh


def bound(plan: Any, individuals: tuple[str, ...]) -> Any:
    """``plan`` naming ``individuals`` (admit): a copy of its fields."""
    fresh = _new(plan.__class__)
    fields: dict[str, Any] = fresh.__dict__
    fields.update(plan.__dict__)
    fields["individuals"] = individuals
    return fresh
