"""An individual's key value as PostgreSQL reads it for the key column's type (SPEC 9).

``person_id = 9``, ``= 09``, ``= '9'``, ``= ' 9'``, ``= 9.0`` and ``= 9e0`` all name person 9: the
request log, the day's individuals and the repeated-lookup alert must count one person once, and two
persons as two. So a value is put in one canonical form for the column's type, the way the backend
compares it: an integer key by its integer value (after the value's own cast, when it has one:
``9.4::bigint`` is 9, ``9.0000000000000001::float8`` is 9.0), a numeric key by its value, a date key in ISO
form, a ``character(n)`` key without its trailing blanks, and any other key (text) exactly as written.
A value the type cannot read as one (PostgreSQL refuses it, or it matches no row) stays as written:
distinct spellings then stay distinct, never merged with another person.

A binary-format parameter (bytes) of an integer key is read by its width (int2, int4, int8) or as
a binary numeric; bytes that are no such value and no UTF-8 text are kept as hex, never decoded
lossily (two persons' ids must not collapse into one replacement character).

>>> canonical("09", "int"), canonical(" +9 ", "int"), canonical("9.0", "int"), canonical("9e0", "int")
('9', '9', '9', '9')
>>> canonical("9.5", "int"), canonical("09", ""), canonical("2001-2-3", "date"), canonical("AB  ", "bpchar")
('9.5', '09', '2001-02-03', 'AB')
>>> canonical("9.4", "int-int"), canonical("9.5", "int-int"), canonical("9.00000000000000001", "int-float8")
('9', '10', '9')
>>> canonical(b"\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x80", "int"), canonical(b"\\x80", "")
('128', '\\\\x80')
"""

from __future__ import annotations

import math
import re
import struct
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

#: format_type() names -> the kind of canonical form (anything else: exact text)
_KINDS = {"bigint": "int", "integer": "int", "smallint": "int", "numeric": "numeric", "date": "date",
          "character": "bpchar", "oid": "int"}

_ONE = Decimal(1)
_SPACE = " \t\n\r\v\f"  # what PostgreSQL's number and date input skips around a value
#: a number as PostgreSQL's input reads it; written so that no text is matched two ways (``\d+\.?\d*``
#: was: a long run of digits followed by something else took quadratic time, 17 s for 16,000 digits, on
#: the event loop: a literal's or a parameter's value of an integer key is read here at admit)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,4})?", re.ASCII)
_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?|(\d{4})(\d{2})(\d{2})", re.ASCII)


def key_kind(type_sql: str) -> str:
    """The canonical form for a key column of type ``type_sql`` (format_type() output)."""
    return _KINDS.get(type_sql.partition("(")[0].strip(), "")


def canonical(value: object, kind: str) -> str:
    """``value`` (a literal's text, a text parameter, or a binary parameter's bytes) as the key of
    ``kind`` reads it."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _binary(bytes(value), kind)
    text = value if isinstance(value, str) else str(value)
    if not kind:
        return text
    if kind == "int":
        if text.isdigit() and text.isascii() and (text[0] != "0" or len(text) == 1):
            return text  # the common spelling, as is
        number = _number(text)
        return str(int(number)) if number is not None and number == number.to_integral_value() else text
    if kind == "int-int":  # a number cast to an integer type: rounded half away from zero (numeric -> int)
        number = _number(text)
        return str(int(number.quantize(_ONE, ROUND_HALF_UP))) if number is not None else text
    if kind == "int-float8" or kind == "int-float4":  # the key compared as a float with the value as a float
        number = _number(text)
        if number is None:
            return text
        value = float(number)
        if kind == "int-float4":
            value = struct.unpack("!f", struct.pack("!f", value))[0] if abs(value) < 3.4e38 else value
        return str(int(value)) if math.isfinite(value) and value.is_integer() else text
    if kind == "numeric":
        number = _number(text)
        if number is None:
            return text
        return str(int(number)) if number == number.to_integral_value() else format(number.normalize(), "f")
    if kind == "date":
        match = _DATE.fullmatch(text.strip(_SPACE))
        if match is None:
            return text
        y, m, d = (int(g) for g in (match.groups()[:3] if match.group(1) else match.groups()[3:]))
        return f"{y:04d}-{m:02d}-{d:02d}" if 1 <= m <= 12 and 1 <= d <= 31 else text
    if kind == "bpchar":
        return text.rstrip(" ")
    return text


def _number(text: str) -> Decimal | None:
    text = text.strip(_SPACE)
    if _NUMBER.fullmatch(text) is None:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    return number if abs(number.adjusted()) <= 40 else None  # no 10**9999 for an int8 key


def _binary(data: bytes, kind: str) -> str:
    if kind == "int-float8" and len(data) == 8:
        return canonical(repr(struct.unpack("!d", data)[0]), kind)
    if kind == "int-float4" and len(data) == 4:
        return canonical(repr(struct.unpack("!f", data)[0]), kind)
    if kind.startswith("int") or kind == "numeric":
        if len(data) in (2, 4, 8):
            return str(int.from_bytes(data, "big", signed=True))
        number = binary_numeric(data)
        if number is not None:
            return canonical(str(number), kind)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "\\x" + data.hex()
    return canonical(text, kind)


def binary_numeric(data: bytes) -> Decimal | None:
    """A numeric in PostgreSQL's binary format (``numeric_send``), or None when ``data`` is not one."""
    if len(data) < 8:
        return None
    ndigits, weight, sign, _dscale = struct.unpack_from("!hhHH", data, 0)
    if ndigits < 0 or len(data) != 8 + 2 * ndigits or sign not in (0, 0x4000) or abs(weight) > 10:
        return None
    digits = struct.unpack_from(f"!{ndigits}H", data, 8)
    if any(d > 9999 for d in digits):
        return None
    value = Decimal(0)
    for i, digit in enumerate(digits):
        value += Decimal(digit).scaleb(4 * (weight - i))
    return -value if sign == 0x4000 else value
