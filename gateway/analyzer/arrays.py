"""The elements of a PostgreSQL array written as text (``'{1,2}'``, ``'[1:3]={1,2,3}'``, ``'{{1,2},{3}}'``).

A request that names its individuals with ``person_id = ANY('{...}')`` or a text array parameter
names each element (SPEC 9: at most 25, each counted towards the day's individuals, each owed a
subject notice). So the count must be PostgreSQL's: ``array_in`` accepts dimension decorations
(``[1:60]=``), nested braces, double-quoted elements with backslash escapes and whitespace around
elements, and flattens a multidimensional array for ``= ANY``. This reader is lenient where
PostgreSQL refuses the text (the statement then fails at the backend and releases nothing) and
exact where it accepts it.

>>> array_elements("[1:3]={1, 2 ,3}")
['1', '2', '3']
>>> array_elements('{{1,2},{"3",NULL}}')
['1', '2', '3', None]
>>> array_elements('{"a\\\\"b", c d}')
['a"b', 'c d']
>>> array_elements("{}")
[]
"""

from __future__ import annotations

import struct

_INTS = {21: 2, 23: 4, 20: 8}  # int2, int4, int8: element OID -> width
_TEXTS = frozenset({25, 1043, 1042, 19})  # text, varchar, bpchar, name


def binary_array_elements(data: bytes) -> list[str | None] | None:
    """The elements of an array in PostgreSQL's binary format (``array_recv``: dimensions, flags, the
    element type, then each element's length and bytes), every dimension flattened; integers and text
    as their text, other elements as hex. None when ``data`` is not a well-formed binary array."""
    try:
        ndim, _flags, elem = struct.unpack_from("!iiI", data, 0)
        if not 0 <= ndim <= 6:
            return None
        pos, count = 12, 1 if ndim else 0
        for _ in range(ndim):
            size, _lower = struct.unpack_from("!ii", data, pos)
            if size < 0:
                return None
            count *= size
            pos += 8
        out: list[str | None] = []
        for _ in range(count):
            (length,) = struct.unpack_from("!i", data, pos)
            pos += 4
            if length < 0:
                out.append(None)
                continue
            item = data[pos:pos + length]
            if len(item) != length:
                return None
            pos += length
            if _INTS.get(elem) == length:
                out.append(str(int.from_bytes(item, "big", signed=True)))
            elif elem in _TEXTS:
                out.append(bytes(item).decode("utf-8", "replace"))
            else:
                out.append(bytes(item).hex())
        return out if pos == len(data) else None
    except struct.error:
        return None


def _skip_dimensions(text: str) -> str:
    """``text`` without a leading ``[l:u][l:u]=`` decoration (whitespace allowed around it)."""
    rest = text.lstrip()
    if not rest.startswith("["):
        return rest
    while rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            return rest
        rest = rest[end + 1:].lstrip()
    return rest[1:].lstrip() if rest.startswith("=") else rest


def array_elements(text: str, delimiter: str = ",") -> list[str | None]:
    """The leaf elements of array text ``text``, in order (``None``: an unquoted NULL)."""
    body = _skip_dimensions(text)
    if not body.startswith("{"):
        return [text.strip()]  # not an array's text: the value itself (PostgreSQL refuses it)
    out: list[str | None] = []
    depth = 0
    chars: list[str] = []
    keep = 0  # chars[:keep] is the element: unquoted whitespace after its last character is not
    quoted = False  # the element has a quoted or escaped part: never NULL
    in_quotes = False
    pending = False  # an element has started since the last delimiter or brace

    def finish() -> None:
        nonlocal chars, keep, quoted, pending
        if pending:
            value = "".join(chars[:keep])
            out.append(None if not quoted and value.upper() == "NULL" else value)
        chars, keep, quoted, pending = [], 0, False, False

    i, n = 0, len(body)
    while i < n:
        c = body[i]
        if c == "\\" and i + 1 < n:
            chars.append(body[i + 1])
            keep, quoted, pending = len(chars), True, True
            i += 2
            continue
        if in_quotes:
            if c == '"':
                in_quotes = False
            else:
                chars.append(c)
                keep = len(chars)
        elif c == '"':
            in_quotes = quoted = pending = True
            keep = len(chars)
        elif c == "{":
            depth += 1
            chars, keep, quoted, pending = [], 0, False, False
        elif c == "}":
            finish()
            depth -= 1
            if depth <= 0:
                break
        elif c == delimiter and depth >= 1:
            finish()
        elif c.isspace():
            if pending:
                chars.append(c)
        else:
            chars.append(c)
            keep, pending = len(chars), True
        i += 1
    return out
