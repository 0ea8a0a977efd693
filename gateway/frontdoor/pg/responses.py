"""Ready-made response bytes the front door sends itself (errors, notices, SHOW results)."""

from __future__ import annotations

from gateway.wire import (
    CommandComplete, DataRow, ErrorResponse, FieldDescription, NoticeResponse, ReadyForQuery, RowDescription,
    encode,
)

TEXT_OID = 25


def error(sqlstate: str, message: str, *, fatal: bool = False, detail: str | None = None) -> bytes:
    return encode(ErrorResponse.make(sqlstate, message, severity="FATAL" if fatal else "ERROR", detail=detail))


def notice(message: str, sqlstate: str = "01000") -> bytes:
    return encode(NoticeResponse.make(sqlstate, message))


def ready(status: str) -> bytes:
    return encode(ReadyForQuery(status))


def redaction_notice(columns: tuple[str, ...], request_id: str) -> bytes:
    return notice(f"gateway: redacted columns: {', '.join(columns)} (request {request_id})")


def show_description(name: str) -> bytes:
    return encode(RowDescription((FieldDescription(name, type_oid=TEXT_OID),)))


def show_rows(value: str) -> bytes:
    return encode(DataRow((value.encode("utf-8"),))) + encode(CommandComplete("SHOW"))


def command_complete(tag: str) -> bytes:
    return encode(CommandComplete(tag))
