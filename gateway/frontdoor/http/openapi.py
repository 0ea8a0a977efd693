"""The OpenAPI 3.1 document of the HTTP API, served at ``/openapi.json``.

Written by hand next to the code it describes; ``tests/test_http_openapi.py`` keeps it true (every
route is documented and every documented path is a route; every example validates).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway import __version__
from gateway.audit.search import EVENT_TYPES
from gateway.frontdoor.http.errors import ERROR_CODES
from gateway.policy.types import PURPOSES

_NULLABLE_STRING = {"type": ["string", "null"], "maxLength": 500}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str, codes: tuple[str, ...]) -> dict[str, Any]:
    example = {"error": {"code": codes[0], "message": f"gateway: {ERROR_CODES[codes[0]][1]} (request 1a2b3c-0000042)",
                         "request_id": "1a2b3c-0000042"}}
    return {"description": f"{description} (codes: {', '.join(codes)})",
            "content": {"application/json": {"schema": _ref("Error"), "example": example}}}


SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["error"], "additionalProperties": False,
        "properties": {"error": {
            "type": "object", "required": ["code", "message", "request_id"],
            "properties": {
                "code": {"type": "string", "enum": sorted(ERROR_CODES)},
                "message": {"type": "string"},
                "request_id": {"type": ["string", "null"]},
                "sqlstate": {"type": "string", "pattern": "^[0-9A-Z]{5}$"},
            },
        }},
    },
    "QueryRequest": {
        "type": "object", "required": ["sql"], "additionalProperties": False,
        "properties": {
            "sql": {"type": "string", "minLength": 1, "description": "one SELECT (or one staff write the policy grants, "
                    "docs/staff-writes.md); placeholders $1..$n"},
            "params": {"type": "array", "description": "values bound to $1..$n server-side",
                       "items": {"type": ["string", "number", "integer", "boolean", "null", "array", "object"]}},
            "purpose": {"type": ["string", "null"], "enum": [*PURPOSES, None]},
            "case_number": _NULLABLE_STRING, "legal_citation": _NULLABLE_STRING,
            "order_reference": _NULLABLE_STRING, "authorization_id": _NULLABLE_STRING,
            "ori": _NULLABLE_STRING, "end_user": _NULLABLE_STRING,
            "limit": {"type": "integer", "minimum": 1, "description": "page size (at most the server's row limit)"},
            "offset": {"type": "integer", "minimum": 0, "description": "rows to skip"},
        },
    },
    "QueryResponse": {
        "type": "object", "required": ["request_id", "columns", "rows", "redacted", "row_count"],
        "properties": {
            "request_id": {"type": "string"},
            "columns": {"type": "array", "items": {
                "type": "object", "required": ["name", "type"],
                "properties": {"name": {"type": "string"}, "type": {"type": "string"}, "type_oid": {"type": "integer"}},
            }},
            "rows": {"type": "array", "items": {"type": "array"}},
            "redacted": {"type": "array", "items": {"type": "string"}},
            "row_count": {"type": "integer", "minimum": 0},
            "offset": {"type": "integer", "minimum": 0},
            "limit": {"type": "integer", "minimum": 1},
            "has_more": {"type": "boolean"},
            "command": {"type": "string", "description": "a staff write: its command tag (UPDATE 2, INSERT 0 1); "
                        "row_count is then the rows it affected and rows its RETURNING rows"},
            "notice": {"type": "string", "description": "the use notice, on every answer released under an "
                       "exception purpose: the data may not be used or passed on for civil immigration enforcement"},
        },
    },
    "Health": {"type": "object", "required": ["status"],
               "properties": {"status": {"type": "string"}, "version": {"type": "string"}}},
    "Ready": {"type": "object", "required": ["status", "checks"], "properties": {
        "status": {"type": "string", "enum": ["ready", "not ready"]},
        "checks": {"type": "object", "additionalProperties": {"type": "string"}}}},
    "Record": {"type": "object", "required": ["type", "time"], "description": "a request-log record (docs/request-log.md)",
               "properties": {"type": {"type": "string"}, "time": {"type": "string"},
                              "request_id": {"type": ["string", "null"]}}},
    "SearchResponse": {"type": "object", "required": ["records", "total", "limit", "offset"], "properties": {
        "records": {"type": "array", "items": _ref("Record")}, "total": {"type": "integer", "minimum": 0},
        "limit": {"type": "integer"}, "offset": {"type": "integer"}}},
    "RecordResponse": {"type": "object", "required": ["record"], "properties": {"record": _ref("Record")}},
}

_QUERY_EXAMPLE = {"request_id": "1a2b3c-0000007",
                  "columns": [{"name": "person_id", "type": "int8", "type_oid": 20},
                              {"name": "immigration_status", "type": "text", "type_oid": 25}],
                  "rows": [[42, None]], "redacted": ["immigration_status"], "row_count": 1,
                  "offset": 0, "limit": 10000, "has_more": False}
_RECORD_EXAMPLE = {"type": "request", "time": "2026-07-01T12:00:00.000000Z", "request_id": "1a2b3c-0000007",
                   "requester": "dmv_clerk", "decision": "redact"}


def _string_param(name: str, description: str, *, where: str = "query", enum: list[str] | None = None,
                  array: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if enum:
        schema["enum"] = enum
    if array:
        schema = {"type": "array", "items": schema}
    return {"name": name, "in": where, "required": where == "path", "description": description, "schema": schema}


_SEARCH_PARAMS = [
    _string_param("requester", "requester name (exact)"),
    _string_param("agency", "agency (substring, any case)"),
    _string_param("purpose", "purpose token, or none", enum=["none", *PURPOSES]),
    _string_param("decision", "decision", enum=["allow", "redact", "deny"]),
    {**_string_param("since", "from this time (ISO 8601)"), "schema": {"type": "string", "format": "date-time"}},
    {**_string_param("until", "before this time (ISO 8601)"), "schema": {"type": "string", "format": "date-time"}},
    _string_param("person", "a person id named in the SQL or parameters (repeatable)", array=True),
    _string_param("license", "a license number named in the SQL or parameters (repeatable)", array=True),
    _string_param("value", "any other literal value (repeatable)", array=True),
    _string_param("sql_contains", "text in the SQL as logged (literals are hashed)"),
    {**_string_param("type", "record types (repeatable)", array=True),
     "schema": {"type": "array", "items": {"type": "string", "enum": list(EVENT_TYPES)}}},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 1000000000}},
]
_QUARTER = {"name": "quarter", "in": "path", "required": True, "schema": {"type": "string", "pattern": r"^\d{4}-?[Qq][1-4]$"},
            "example": "2026-Q3"}
_REQUEST_ID = {"name": "request_id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
_AUDITOR_ERRORS = {"400": _error("invalid filter", ("invalid_query",)),
                   "401": _error("missing or bad token", ("authentication_failed",)),
                   "403": _error("not an auditor", ("forbidden",)),
                   "429": _error("rate limited", ("rate_limited",))}
_HTML = {"text/html": {"schema": {"type": "string"}}}
_PAGE = {"200": {"description": "an HTML page", "content": _HTML},
         "400": {"description": "invalid filter (the page says why)", "content": _HTML},
         "401": {"description": "not signed in: the sign-in page", "content": _HTML},
         "403": {"description": "not an auditor: the sign-in page", "content": _HTML},
         "404": {"description": "no such record", "content": _HTML},
         "429": {"description": "rate limited", "content": _HTML}}
_REDIRECT = {"303": {"description": "redirect to /audit/"}}

PATHS: dict[str, Any] = {
    "/v1/query": {"post": {
        "summary": "Run one SELECT under a stated purpose", "operationId": "query",
        "security": [{"bearer": []}],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": _ref("QueryRequest"),
            "example": {"sql": "SELECT p.person_id, lp.immigration_status FROM dmv.persons p JOIN dmv.lawful_presence lp "
                               "USING (person_id) WHERE p.person_id = $1", "params": [42], "purpose": "service_delivery"}}}},
        "responses": {
            "200": {"description": "the rows; redacted columns come back as NULL and are listed in `redacted`",
                    "headers": {"X-Request-Id": {"schema": {"type": "string"}}},
                    "content": {"application/json": {"schema": _ref("QueryResponse"), "example": _QUERY_EXAMPLE}}},
            "400": _error("bad body, bad SQL, a statement other than one SELECT, a bad parameter, or a database error",
                          ("invalid_body", "invalid_json", "syntax_error", "statement_not_allowed", "invalid_parameter",
                           "backend_error")),
            "401": _error("missing or bad token", ("authentication_failed",)),
            "403": _error("policy denial", ("policy_denied", "purpose_refused", "not_understood")),
            "413": _error("body too large", ("body_too_large",)),
            "415": _error("not JSON", ("unsupported_media_type",)),
            "429": _error("rate or row limit", ("rate_limited", "row_limit_exceeded")),
            "503": _error("backend or request log unavailable", ("backend_unavailable", "audit_unavailable")),
        }}},
    "/v1/audit/requests": {"get": {
        "summary": "Search the request log (auditors)", "operationId": "auditSearch", "security": [{"bearer": []}],
        "parameters": _SEARCH_PARAMS,
        "responses": {"200": {"description": "matching records, newest first", "content": {"application/json": {
            "schema": _ref("SearchResponse"),
            "example": {"records": [_RECORD_EXAMPLE], "total": 1, "limit": 100, "offset": 0}}}}, **_AUDITOR_ERRORS}}},
    "/v1/audit/requests/{request_id}": {"get": {
        "summary": "One request with its outcome (auditors)", "operationId": "auditRecord", "security": [{"bearer": []}],
        "parameters": [_REQUEST_ID],
        "responses": {"200": {"description": "the record", "content": {"application/json": {
            "schema": _ref("RecordResponse"), "example": {"record": _RECORD_EXAMPLE}}}},
            "404": _error("no such request", ("not_found",)), **_AUDITOR_ERRORS}}},
    "/v1/reports/{quarter}": {"get": {
        "summary": "The quarterly report (auditors)", "operationId": "report", "security": [{"bearer": []}],
        "parameters": [_QUARTER, _string_param("format", "html (default), csv or json", enum=["html", "csv", "json"]),
                       *({"name": n, "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000000000}}
                         for n in ("bulk_persons", "requests_per_requester", "repeated_lookups"))],
        "responses": {"200": {"description": "the report", "content": {
            "text/html": {"schema": {"type": "string"}}, "text/csv": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}}}}, **_AUDITOR_ERRORS}}},
    "/healthz": {"get": {"summary": "The process answers", "operationId": "healthz", "responses": {
        "200": {"description": "up", "content": {"application/json": {"schema": _ref("Health"),
                                                                        "example": {"status": "ok", "version": __version__}}}}}}},
    "/readyz": {"get": {"summary": "Backend reachable and request log writable", "operationId": "readyz", "responses": {
        "200": {"description": "ready", "content": {"application/json": {"schema": _ref("Ready"), "example": {
            "status": "ready", "checks": {"backend": "ok", "request_log": "ok"}}}}},
        "503": {"description": "not ready", "content": {"application/json": {"schema": _ref("Ready")}}}}}},
    "/metrics": {"get": {"summary": "Prometheus metrics", "operationId": "metrics", "responses": {
        "200": {"description": "text exposition format", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
    "/openapi.json": {"get": {"summary": "This document", "operationId": "openapi", "responses": {
        "200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
    "/docs": {"get": {"summary": "This document as a browsable HTML page (no script, no CDN)", "operationId": "apiDocs",
                      "responses": {"200": {"description": "an HTML page", "content": _HTML}}}},
    "/audit/": {"get": {"summary": "Auditor page: sign-in, or the filtered request log", "operationId": "auditPage",
                        "parameters": [p for p in _SEARCH_PARAMS if p["name"] not in ("limit", "offset", "value")],
                        "responses": _PAGE}},
    "/audit/login": {"post": {"summary": "Sign in with a token (sets an HttpOnly cookie)", "operationId": "auditLogin",
                              "requestBody": {"content": {"application/x-www-form-urlencoded": {"schema": {
                                  "type": "object", "properties": {"token": {"type": "string"}}}}}},
                              "responses": {**_REDIRECT, **_PAGE, "413": {"description": "form too large", "content": _HTML}}}},
    "/audit/logout": {"post": {"summary": "Sign out", "operationId": "auditLogout", "responses": _REDIRECT}},
    "/audit/requests/{request_id}": {"get": {"summary": "Auditor page: one request", "operationId": "auditRequestPage",
                                             "parameters": [_REQUEST_ID], "responses": _PAGE}},
    "/audit/report": {"get": {"summary": "Auditor page: the quarterly report", "operationId": "auditReportPage",
                              "parameters": [{"name": "quarter", "in": "query", "schema": {"type": "string"}},
                                             _string_param("format", "html, csv or json", enum=["html", "csv", "json"])],
                              "responses": {**_PAGE, "200": {"description": "the report", "content": {
                                  **_HTML, "text/csv": {"schema": {"type": "string"}},
                                  "application/json": {"schema": {"type": "object"}}}}}}},
}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Gateway HTTP API", "version": __version__,
                 "description": "Purpose-bound access to the DMV database; see docs/http-api.md."},
        "paths": PATHS,
        "components": {"schemas": SCHEMAS, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "description": "a requester's token (requesters file)"},
            "auditorCookie": {"type": "apiKey", "in": "cookie", "name": "gateway_auditor"}}},
    }


async def openapi_endpoint(request: Request) -> Response:
    return JSONResponse(request.app.state.openapi)
