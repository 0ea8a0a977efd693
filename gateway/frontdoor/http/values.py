"""PostgreSQL values <-> JSON for the HTTP front door.

Results: dates and timestamps as ISO 8601 strings, numerics as strings (no precision lost), bytea as
base64, arrays as arrays, json/jsonb as JSON, NaN/Infinity floats as strings, anything else as its
text. Parameters: JSON values converted to what the placeholder's type needs (``"2026-01-31"`` for a
date, ``"42"`` or ``42`` for a bigint...), so the values are bound server-side, never spliced.

>>> encode_value(Decimal("12.50"), "numeric"), encode_value(b"\\x01\\x02", "bytea")
('12.50', 'AQI=')
>>> coerce_param("2026-01-31", "date", 1)
datetime.date(2026, 1, 31)
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

INTEGER_TYPES = frozenset({"int2", "int4", "int8", "oid", "xid", "cid", "regclass", "regproc", "regtype"})
FLOAT_TYPES = frozenset({"float4", "float8"})
TEXT_TYPES = frozenset({"text", "varchar", "bpchar", "name", "char", "unknown", "citext", "xml"})
JSON_TYPES = frozenset({"json", "jsonb"})


def column_type_name(type_name: str, kind: str) -> str:
    """``_int4`` (an array) -> ``int4[]``; scalar names unchanged."""
    if kind == "array" and type_name.startswith("_"):
        return f"{type_name[1:]}[]"
    return type_name


def element_type(type_name: str) -> str:
    """An array type's element type, in either spelling: ``_int4`` (pg_type) or ``int4[]`` (asyncpg).

    >>> element_type("_int4"), element_type("int8[]"), element_type("text")
    ('int4', 'int8', 'text')
    """
    if type_name.endswith("[]"):
        return type_name[:-2]
    return type_name[1:] if type_name.startswith("_") else type_name


def _duration(delta: dt.timedelta) -> str:
    """ISO 8601 duration of a timedelta: ``P1DT2H3M4.5S``."""
    sign = "-" if delta < dt.timedelta(0) else ""
    delta = abs(delta)
    hours, rest = divmod(delta.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    secs = f"{seconds}.{delta.microseconds:06d}".rstrip("0").rstrip(".") if delta.microseconds else str(seconds)
    return f"{sign}P{delta.days}DT{hours}H{minutes}M{secs}S"


def encode_value(value: Any, type_name: str = "") -> Any:
    """One value from asyncpg as JSON-ready data (see the module docstring)."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value).replace("inf", "Infinity").replace("nan", "NaN")
    if isinstance(value, str):
        if type_name in JSON_TYPES:
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (dt.date, dt.time)):  # datetime is a date
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return _duration(value)
    if isinstance(value, list):
        inner = element_type(type_name)
        return [encode_value(v, inner) for v in value]
    if isinstance(value, tuple):
        return [encode_value(v) for v in value]
    if hasattr(value, "items") and callable(value.items):  # asyncpg.Record (composite), dict
        return {str(k): encode_value(v) for k, v in value.items()}
    if hasattr(value, "lower") and hasattr(value, "upper") and hasattr(value, "isempty"):  # asyncpg.Range
        return {"lower": encode_value(value.lower), "upper": encode_value(value.upper),
                "lower_inc": value.lower_inc, "upper_inc": value.upper_inc, "empty": value.isempty}
    if hasattr(value, "as_string"):  # asyncpg BitString
        return value.as_string()
    return str(value)


class ParamError(ValueError):
    """A parameter does not fit its placeholder; the message names the placeholder and type only."""


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return int(value.strip())
    raise ValueError


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "t", "yes", "on", "1", "false", "f", "no", "off", "0"):
        return value.strip().lower() in ("true", "t", "yes", "on", "1")
    raise ValueError


def _timestamp(value: Any, aware: bool) -> dt.datetime:
    moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if aware and moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    if not aware and moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return moment


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    raise ValueError


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError
    return float(value)


def _numeric(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError
    return Decimal(str(value).strip())


_SCALARS: dict[str, Any] = {
    "float4": _float,
    "float8": _float,
    "numeric": _numeric,
    "bool": _boolean,
    "date": lambda v: dt.date.fromisoformat(str(v)),
    "timestamp": lambda v: _timestamp(v, False),
    "timestamptz": lambda v: _timestamp(v, True),
    "time": lambda v: dt.time.fromisoformat(str(v)),
    "uuid": lambda v: uuid.UUID(str(v)),
    "bytea": lambda v: base64.b64decode(str(v), validate=True),
}


def coerce_param(value: Any, type_name: str, position: int, kind: str = "scalar") -> Any:
    """``value`` (from JSON) as the Python value asyncpg binds for ``type_name``; raises ParamError."""
    if value is None:
        return None
    try:
        if kind == "array" or (type_name.startswith("_") and isinstance(value, list)):
            if not isinstance(value, list):
                raise ValueError
            inner = element_type(type_name)
            # a nested list is the next dimension of the same array (asyncpg binds nested lists)
            return [coerce_param(v, type_name, position, "array") if isinstance(v, list) else coerce_param(v, inner, position)
                    for v in value]
        if type_name in JSON_TYPES:
            return value if isinstance(value, str) else json.dumps(value)
        if isinstance(value, (list, dict)):
            raise ValueError
        if type_name in INTEGER_TYPES:
            return _integer(value)
        if type_name in _SCALARS:
            return _SCALARS[type_name](value)
        return _text(value)
    except (ValueError, TypeError, InvalidOperation, binascii.Error, OverflowError):
        hint = " (base64)" if type_name == "bytea" else " (ISO 8601)" if type_name.startswith(("date", "time")) else ""
        raise ParamError(f"gateway: parameter ${position} does not fit type {type_name}{hint}") from None
