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
import math
from collections.abc import Iterable, Mapping
from typing import Any

try:  # the C accelerator json itself uses; the pure function gives the same text
    from _json import encode_basestring as _encode_str  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - CPython always has it
    from json.encoder import py_encode_basestring as _encode_str  # type: ignore[attr-defined,no-redef]


def canonical_dumps(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 kept, no NaN: the form the chain signs."""
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
        if all(type(v) is str for v in value):
            return "[" + ",".join([_encode_str(v) for v in value]) + "]"
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


def seal_run(records: list[Any], start: int, stop: int, signer: Signer, instance: str, seq: int, prev: str,
             lines: list[bytes]) -> tuple[int, int, str]:
    """Seal ``records[start:stop]`` into ``lines`` for as long as they are prepared records that
    serialize: the index reached, and the chain's new ``seq`` and ``prev``. The caller handles the
    record at that index (a dict, or one that does not serialize) its own way."""
    i = start
    while i < stop:
        record = records[i]
        if not isinstance(record, PreparedRecord):
            break
        try:
            line, digest = seal_prepared(record, signer, instance, seq + 1, prev)
        except (TypeError, ValueError):
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
