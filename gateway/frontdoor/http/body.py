"""The body of ``POST /v1/query``, validated field by field with messages a client can act on.

>>> parse_query_body(b'{"sql": "select 1", "params": [1], "purpose": "service_delivery"}').params
(1,)
>>> try:
...     parse_query_body(b'{"sql": "select 1", "colour": "red"}')
... except BodyError as exc:
...     print(exc.code, str(exc)[:43])
invalid_body gateway: unknown field 'colour' in the body
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gateway.policy.types import CLAIM_FIELDS as _CLAIM_FIELDS, JUSTIFICATION_FIELDS, PurposeClaim

CLAIM_FIELDS = _CLAIM_FIELDS
FIELDS = ("sql", "params", *CLAIM_FIELDS, "limit", "offset")
MAX_SQL_CHARS = 1_000_000
MAX_PARAMS = 10_000
MAX_CLAIM_CHARS = 500


class BodyError(ValueError):
    """The body is not acceptable; ``code`` is ``invalid_json`` or ``invalid_body``."""

    def __init__(self, message: str, code: str = "invalid_body") -> None:
        super().__init__(f"gateway: {message}")
        self.code = code


@dataclass(frozen=True)
class QueryBody:
    sql: str
    params: tuple[Any, ...]
    claim: PurposeClaim
    limit: int | None
    offset: int


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null",
            int: "integer", float: "number"}.get(type(value), type(value).__name__)


def _optional_int(data: dict[str, Any], name: str, minimum: int) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BodyError(f"field '{name}' must be an integer, not {_type_name(value)}")
    if value < minimum:
        raise BodyError(f"field '{name}' must be at least {minimum}")
    return value


def _param_ok(value: Any, depth: int = 0) -> bool:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return True
    if isinstance(value, list) and depth < 6:
        return all(_param_ok(v, depth + 1) for v in value)
    return isinstance(value, dict) and depth == 0  # a json/jsonb parameter


def parse_query_body(raw: bytes) -> QueryBody:
    """Parse and validate; raises :class:`BodyError` naming the field at fault."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BodyError(f"the body is not valid JSON ({exc.__class__.__name__})", "invalid_json") from None
    except RecursionError:  # e.g. 2 MB of '[': json's decoder gives up (it was a 500 internal_error)
        raise BodyError("the body nests arrays or objects too deeply", "invalid_json") from None
    if not isinstance(data, dict):
        raise BodyError(f"the body must be a JSON object, not {_type_name(data)}", "invalid_json")
    for name in data:
        if name not in FIELDS:
            raise BodyError(f"unknown field {name!r} in the body; fields are: {', '.join(FIELDS)}")
    sql = data.get("sql")
    if sql is None:
        raise BodyError("field 'sql' is required")
    if not isinstance(sql, str):
        raise BodyError(f"field 'sql' must be a string, not {_type_name(sql)}")
    if not sql.strip():
        raise BodyError("field 'sql' is empty")
    if len(sql) > MAX_SQL_CHARS or "\x00" in sql:
        raise BodyError("field 'sql' is too long or holds a NUL character")
    params = data.get("params")
    if params is None:
        params = []
    if not isinstance(params, list):
        raise BodyError(f"field 'params' must be an array, not {_type_name(params)}")
    if len(params) > MAX_PARAMS:
        raise BodyError(f"field 'params' holds more than {MAX_PARAMS} values")
    for n, value in enumerate(params, 1):
        if not _param_ok(value):
            raise BodyError(f"parameter ${n} must be a string, number, boolean, null, array or object")
    claim: dict[str, str | None] = {}
    for name in CLAIM_FIELDS:
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            raise BodyError(f"field {name!r} must be a string or null, not {_type_name(value)}")
        if value is not None and (len(value) > MAX_CLAIM_CHARS or "\x00" in value):
            raise BodyError(f"field {name!r} is too long or holds a NUL character")
        claim[name] = value.strip() or None if value is not None else None
    return QueryBody(
        sql=sql,
        params=tuple(params),
        claim=PurposeClaim(**claim),
        limit=_optional_int(data, "limit", 1),
        offset=_optional_int(data, "offset", 0) or 0,
    )
