"""Bind parameters as the request log keeps them: the values they stand for where the type is known.

Text-format parameters are decoded as UTF-8; binary ones of a known integer or text type are decoded
too, so that an auditor's search by a person id or license number finds binary parameters as well.
Anything else is kept as bytes (the record's literal hashing takes it from there).

    bind_params([b"42", b"\\x00\\x00\\x00\\x07"], (0, 1), (23, 23))  ->  ("42", "7")
"""

from __future__ import annotations

from collections.abc import Sequence

_BINARY_INTS = {21: 2, 23: 4, 20: 8}  # int2, int4, int8: OID -> width
_BINARY_TEXT = frozenset({25, 1043, 1042, 19})  # text, varchar, bpchar, name


def bind_params(values: Sequence[bytes | bytearray | memoryview | None], formats: Sequence[int],
                param_types: Sequence[int] = ()) -> tuple[object, ...]:
    """``values`` and ``formats`` as a Bind message carries them (one format for all, or one each)."""
    out: list[object] = []
    for i, value in enumerate(values):
        fmt = formats[0] if len(formats) == 1 else (formats[i] if i < len(formats) else 0)
        oid = param_types[i] if i < len(param_types) else 0
        if value is None:
            out.append(None)
        elif fmt == 0 or oid in _BINARY_TEXT:
            out.append(bytes(value).decode("utf-8", "replace"))
        elif _BINARY_INTS.get(oid) == len(value):
            out.append(str(int.from_bytes(value, "big", signed=True)))
        else:
            out.append(value)
    return tuple(out)
