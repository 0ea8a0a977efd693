"""Canonical JSON without re-serializing what does not change: record templates.

The chain signs the canonical JSON of a record (sorted keys, no spaces, UTF-8 kept; see
:mod:`gateway.audit.chain`). Most members of a ``request`` record are the same for every request of
one session and one statement shape (requester, purpose, accesses, decision, policy digest...); only
a few change (request id, time, the hashed SQL and parameters, and the chain's ``seq``/``prev``).
A :class:`RecordTemplate` serializes the static members once, in key order, into the text between
the dynamic ones; a :class:`PreparedRecord` is a template plus its dynamic values and renders to the
very bytes ``json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` gives,
so verification (which re-serializes the parsed line) is unchanged.

Pure: no I/O.

>>> t = RecordTemplate({"type": "request", "schema": 1, "requester": "dmv_clerk"}, ("time", "seq"))
>>> r = PreparedRecord(t, {"time": "2026-07-01T12:00:00.000000Z", "seq": 7})
>>> r.render() == canonical_dumps(r.as_dict())
True
>>> r.render()
'{"requester":"dmv_clerk","schema":1,"seq":7,"time":"2026-07-01T12:00:00.000000Z","type":"request"}'
"""

from __future__ import annotations

import hashlib
import json
import json.encoder
import math
from collections.abc import Iterable, Mapping
from typing import Any

try:  # the C accelerator json itself uses; the pure function gives the same text
    from _json import encode_basestring as _encode_str  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - CPython always has it
    from json.encoder import py_encode_basestring as _encode_str  # type: ignore[attr-defined,no-redef]


def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


#: json's own C encoder with the options below, made once: ``json.dumps`` with keyword options builds a
#: ``JSONEncoder`` and a C encoder on every call, which cost more than encoding a small record (a
#: batch's ``outcomes``, a checkpoint). No circular check (records are trees); no shared state.
_ENCODER: Any = None
_make_encoder = getattr(json.encoder, "c_make_encoder", None)
if _make_encoder is not None:
    _ENCODER = _make_encoder(None, _not_json, _encode_str, None, ":", ",", True, False, False)


def canonical_dumps(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 kept, no NaN: the form the chain signs, the very text of
    ``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)``
    (TypeError for what JSON cannot hold, ValueError for NaN and infinities)."""
    if _ENCODER is not None:
        return "".join(_ENCODER(value, 0))
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dump_value(value: Any) -> str:
    """One JSON value in canonical form: the very text :func:`canonical_dumps` gives, without it for
    the types records carry on the hot path (strings, None, ints, bools, finite floats, lists of
    strings); anything else (and NaN or infinity, which it refuses) goes through it."""
    kind = type(value)
    if kind is str:
        return _encode_str(value)  # type: ignore[no-any-return]
    if value is None:
        return "null"
    if kind is int:
        return int.__repr__(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is float:
        if math.isfinite(value):
            return float.__repr__(value)  # what json's encoder writes for a finite float
        return canonical_dumps(value)  # raises ValueError (allow_nan=False)
    if kind is list or kind is tuple:
        if not value:
            return "[]"
        texts: list[str] = []
        for v in value:
            if type(v) is not str:
                return canonical_dumps(value)
            texts.append(_encode_str(v))
        return "[" + ",".join(texts) + "]"
    return canonical_dumps(value)


class Signer:
    """HMAC-SHA256 under one key with the key's inner and outer pads hashed once (RFC 2104): each
    digest then costs two hash-object copies instead of a new HMAC context, the same digest as
    ``hmac.digest(key, data, "sha256")``.

    >>> import hmac
    >>> Signer(b"k" * 32).hexdigest(b"data") == hmac.digest(b"k" * 32, b"data", "sha256").hex()
    True
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        key = key + b"\0" * (64 - len(key))
        self._inner = hashlib.sha256(bytes([b ^ 0x36 for b in key]))
        self._outer = hashlib.sha256(bytes([b ^ 0x5C for b in key]))

    def hexdigest(self, data: bytes) -> str:
        inner = self._inner.copy()
        inner.update(data)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()

    def state(self) -> Any:
        """A copy of the inner hash after the key's pad: update it with a message (in as many pieces
        as it comes), then :meth:`finish` its ``digest()``."""
        return self._inner.copy()

    def finish(self, inner_digest: bytes) -> str:
        """The HMAC (hex) from the inner hash's digest of the message."""
        outer = self._outer.copy()
        outer.update(inner_digest)
        return outer.hexdigest()


def seal_prepared(record: PreparedRecord, signer: Signer, instance: str, seq: int, prev: str) -> tuple[bytes, str]:
    """The log line (UTF-8, newline ended) of a prepared record chained as ``seq`` after ``prev``, and
    its hash: the canonical JSON with ``instance``/``seq``/``prev``, then ``"hash"`` as its last member."""
    values = record.values
    values["instance"] = instance
    values["seq"] = seq
    values["prev"] = prev
    body = record.template.render(values).encode("utf-8")
    digest = signer.hexdigest(body)
    return body[:-1] + b',"hash":"' + digest.encode("ascii") + b'"}\n', digest


def seal_spliced(record: SplicedRecord, signer: Signer, instance_json: str, seq: int, prev: str) -> tuple[bytes, str]:
    """:func:`seal_prepared` for a spliced record (``instance_json``: the instance as JSON text): the
    chain's three members set into its parts, the parts joined; the HMAC goes on from the state its
    shape keeps after the static head (the same digest as over the whole text)."""
    shape = record.shape
    parts = record.parts
    parts[shape.instance_at] = instance_json
    parts[shape.prev_at] = prev
    parts[shape.seq_at] = str(seq)
    rest = "".join(parts[1:]).encode("utf-8")  # all but the head, without the closing brace
    signed = shape.signed
    if signed is None or signed[0] is not signer:
        state = signer.state()
        state.update(shape.head)
        signed = shape.signed = (signer, state)
    inner = signed[1].copy()
    inner.update(rest)
    inner.update(b"}")
    digest = signer.finish(inner.digest())
    return b"".join([shape.head, rest, b',"hash":"', digest.encode("ascii"), b'"}\n']), digest


def seal_run(records: list[Any], start: int, stop: int, signer: Signer, instance: str, seq: int, prev: str,
             lines: list[bytes]) -> tuple[int, int, str]:
    """Seal ``records[start:stop]`` into ``lines`` for as long as they are prepared (or spliced)
    records that serialize: the index reached, and the chain's new ``seq`` and ``prev``. The caller
    handles the record at that index (a dict, or one that does not serialize) its own way."""
    i = start
    instance_json = ""
    while i < stop:
        record = records[i]
        if isinstance(record, SplicedRecord):
            if not instance_json:
                instance_json = _encode_str(instance)
            line, digest = seal_spliced(record, signer, instance_json, seq + 1, prev)
        elif isinstance(record, PreparedRecord):
            try:
                line, digest = seal_prepared(record, signer, instance, seq + 1, prev)
            except (TypeError, ValueError):
                break
        else:
            break
        lines.append(line)
        seq += 1
        prev = digest
        i += 1
    return i, seq, prev


class RecordTemplate:
    """The static members of a family of records, serialized once around named dynamic slots.

    ``static`` holds members that never change for this template; ``dynamic`` names the members each
    record supplies (a name in both is a mistake). Extra members can be added to either side freely:
    the order is always the sorted order of all names.
    """

    __slots__ = ("static", "dynamic", "_pieces", "_order")

    def __init__(self, static: Mapping[str, Any], dynamic: Iterable[str]) -> None:
        self.static = dict(static)
        self.dynamic = tuple(dynamic)
        overlap = set(self.static) & set(self.dynamic)
        if overlap:
            raise ValueError(f"members both static and dynamic: {sorted(overlap)}")
        names = sorted(set(self.static) | set(self.dynamic))
        pieces: list[str] = []
        order: list[str] = []
        text = "{"
        for i, name in enumerate(names):
            sep = "," if i else ""
            if name in self.static:
                text += sep + _encode_str(name) + ":" + canonical_dumps(self.static[name])
            else:
                pieces.append(text + sep + _encode_str(name) + ":")
                order.append(name)
                text = ""
        pieces.append(text + "}")
        self._pieces = tuple(pieces)
        self._order = tuple(order)

    def render(self, values: Mapping[str, Any]) -> str:
        """The canonical JSON of the record with ``values`` for the dynamic members (all required)."""
        pieces = self._pieces
        out = [pieces[0]]
        append = out.append
        for i, name in enumerate(self._order, 1):
            append(dump_value(values[name]))
            append(pieces[i])
        return "".join(out)


class PreparedRecord:
    """A record as a template and its dynamic values; ``render()`` is its canonical JSON.

    The chain adds ``instance``/``seq``/``prev`` (see :meth:`gateway.audit.chain.ChainState.seal`), so
    a template for chained records lists them as dynamic.
    """

    __slots__ = ("template", "values")

    def __init__(self, template: RecordTemplate, values: dict[str, Any]) -> None:
        self.template = template
        self.values = values

    def render(self) -> str:
        return self.template.render(self.values)

    def get(self, name: str, default: Any = None) -> Any:
        if name in self.values:
            return self.values[name]
        return self.template.static.get(name, default)

    def __getitem__(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        return self.template.static[name]

    def as_dict(self) -> dict[str, Any]:
        data = dict(self.template.static)
        data.update(self.values)
        return data


class LineShape:
    """The canonical JSON of a family of records as the text between its per-record values, which
    are JSON text already (or raw text inside quotes the pieces hold): built once per template and
    statement shape (see :func:`line_shape`), so that a record is a list of those pieces with its
    values between them (:class:`SplicedRecord`) and its serialization a join.

    ``names``: the member each value belongs to, in order (a member split into several values, the
    literal hashes of an SQL text, appears once per value); ``instance_at``, ``prev_at``, ``seq_at``:
    the index in a record's parts of the chain's members, set at seal. ``head`` is the text before
    the first value (UTF-8): the HMAC's state after it is kept per signer (``signed``)."""

    __slots__ = ("pieces", "names", "kind", "head", "instance_at", "prev_at", "seq_at", "signed")

    def __init__(self, pieces: tuple[str, ...], names: tuple[str, ...], kind: str) -> None:
        if len(pieces) != len(names) + 1 or not pieces[-1].endswith("}"):
            raise ValueError("a line shape is one piece more than its values, ending its object")
        self.pieces = pieces[:-1] + (pieces[-1][:-1],)  # the closing brace is added at seal
        self.names = names
        self.kind = kind
        self.head = pieces[0].encode("utf-8")
        self.instance_at = 2 * names.index("instance") + 1
        self.prev_at = 2 * names.index("prev") + 1
        self.seq_at = 2 * names.index("seq") + 1
        self.signed: tuple[Signer, Any] | None = None


def line_shape(template: RecordTemplate, inline: Mapping[str, tuple[str, ...]]) -> LineShape:
    """The line shape of ``template``'s records where each member of ``inline`` is given as the text
    around its values: one piece (a value that is the same in every record: merged into the text),
    or n + 1 pieces around n raw values (e.g. ``('"', '"')``: a string that needs no escaping,
    written between quotes). Every other dynamic member is one value of JSON text. ``prev`` is always
    inline between quotes (hex), ``instance`` and ``seq`` JSON text (set at seal)."""
    inline = dict(inline)
    inline["prev"] = ('"', '"')
    pieces: list[str] = []
    names: list[str] = []
    text = template._pieces[0]
    for i, name in enumerate(template._order):
        around = inline.get(name)
        if around is None:
            pieces.append(text)
            names.append(name)
            text = template._pieces[i + 1]
            continue
        text += around[0]
        for piece in around[1:]:
            pieces.append(text)
            names.append(name)
            text = piece
        text += template._pieces[i + 1]
    pieces.append(text)
    kind = template.static.get("type")
    return LineShape(tuple(pieces), tuple(names), kind if isinstance(kind, str) else "")


def json_pieces(pieces: Iterable[str], quote: str = "'") -> tuple[str, ...]:
    """The pieces of a JSON string around raw values, for text ``pieces`` (one more than the values)
    with each value written between ``quote`` (the request log's literal hashes: ``'h:...'``): the
    text JSON-escaped once, with the string's own quotes: ``json_pieces(["a = ", ";"])`` gives the
    pieces ``"a = '`` and ``';"``, and a value ``v`` between them is the JSON of ``"a = 'v';"``."""
    escaped = [_encode_str(p)[1:-1] for p in pieces]
    if len(escaped) == 1:
        return ('"' + escaped[0] + '"',)
    out = ['"' + escaped[0] + quote]
    for p in escaped[1:-1]:
        out.append(quote + p + quote)
    out.append(quote + escaped[-1] + '"')
    return tuple(out)


class SplicedRecord:
    """A record as its line shape's pieces with its values between them (``parts``, the chain's
    members empty until sealed): what :func:`seal_spliced` joins. ``request_id``: the one member the
    sinks read on the hot path (refused requests, lost records); :meth:`as_dict` parses the text."""

    __slots__ = ("shape", "parts", "request_id")

    def __init__(self, shape: LineShape, parts: list[str], request_id: str) -> None:
        self.shape = shape
        self.parts = parts
        self.request_id = request_id

    def render(self) -> str:
        """The canonical JSON (without ``instance``, ``seq``, ``prev`` while not sealed)."""
        return canonical_dumps(self.as_dict())

    def as_dict(self) -> dict[str, Any]:
        shape = self.shape
        parts = list(self.parts)
        sealed = parts[shape.seq_at] != ""
        if not sealed:
            parts[shape.instance_at], parts[shape.seq_at] = '""', "0"
        data: dict[str, Any] = json.loads("".join(parts) + "}")
        if not sealed:
            for name in ("instance", "seq", "prev"):
                del data[name]
        return data

    def get(self, name: str, default: Any = None) -> Any:
        if name == "type":
            return self.shape.kind
        if name == "request_id":
            return self.request_id
        return self.as_dict().get(name, default)

    def __getitem__(self, name: str) -> Any:
        if name == "type":
            return self.shape.kind
        if name == "request_id":
            return self.request_id
        return self.as_dict()[name]


#: the record classes the sinks seal without a dict (``type(record) in PREPARED``)
PREPARED = (PreparedRecord, SplicedRecord)
