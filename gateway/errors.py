"""One error tree for every layer: each error carries its SQLSTATE, HTTP status and a stable code.

Front doors turn a :class:`GatewayError` into an ErrorResponse (wire) or a JSON error (HTTP) without
knowing which layer raised it. Messages shown to requesters start with ``gateway:``.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error a requester may see. Never carries a classified value."""

    sqlstate = "XX000"
    http_status = 500
    code = "internal_error"

    def __init__(self, message: str, *, detail: str | None = None, rule: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.rule = rule

    def client_message(self, request_id: str | None = None) -> str:
        text = self.message if self.message.startswith("gateway:") else f"gateway: {self.message}"
        if request_id:
            text = f"{text} (request {request_id})"
        return text


class PolicyDenied(GatewayError):
    """The policy refuses the request (a classified column influences the result, a barred statement...)."""

    sqlstate = "42501"
    http_status = 403
    code = "policy_denied"


class PurposeRefused(PolicyDenied):
    """The stated purpose is unknown, not allowed for this requester, or lacks a valid justification."""

    code = "purpose_refused"


class QueryNotUnderstood(PolicyDenied):
    """The analyzer cannot fully understand the statement, so it is refused (fail closed)."""

    code = "not_understood"


class FeatureNotSupported(GatewayError):
    """A protocol feature or statement form the gateway does not offer (replication, mixed batches)."""

    sqlstate = "0A000"
    http_status = 400
    code = "feature_not_supported"


class InvalidSetting(GatewayError):
    sqlstate = "22023"
    http_status = 400
    code = "invalid_parameter_value"


class TransactionAborted(GatewayError):
    sqlstate = "25P02"
    http_status = 400
    code = "in_failed_sql_transaction"


class UnknownSetting(GatewayError):
    sqlstate = "42704"
    http_status = 400
    code = "undefined_object"


class SqlSyntaxError(GatewayError):
    sqlstate = "42601"
    http_status = 400
    code = "syntax_error"


class BadRequest(GatewayError):
    sqlstate = "08P01"
    http_status = 400
    code = "bad_request"


class AuthenticationFailed(GatewayError):
    sqlstate = "28P01"
    http_status = 401
    code = "authentication_failed"


class LimitExceeded(GatewayError):
    sqlstate = "53400"
    http_status = 429
    code = "limit_exceeded"


class RateLimited(LimitExceeded):
    """A requester is past its requests per minute or named individuals per day (SPEC section 9)."""

    code = "rate_limit_exceeded"


class RowLimitExceeded(GatewayError):
    """An answer is larger than the requester's rows per answer: refused whole, nothing released."""

    sqlstate = "54000"
    http_status = 429
    code = "row_limit_exceeded"


class AuditUnavailable(GatewayError):
    """The request log cannot be written: no record, no answer."""

    sqlstate = "58030"
    http_status = 503
    code = "audit_unavailable"


class BackendUnavailable(GatewayError):
    sqlstate = "08006"
    http_status = 503
    code = "backend_unavailable"


class ConfigError(Exception):
    """A configuration, policy or requesters file is invalid (operator error, not a requester's)."""


class StatementTooLarge(GatewayError):
    """The statement text is longer than the gateway analyzes (``max_statement_chars``)."""

    sqlstate = "54000"
    http_status = 400
    code = "statement_too_large"


class StatementTooComplex(GatewayError):
    """The statement nests too deeply, names more individuals by combined value lists than the gateway
    expands (``policy.naming.MAX_COMBINATIONS``), or its analysis ran past its deadline or ended its worker."""

    sqlstate = "54001"
    http_status = 400
    code = "statement_too_complex"


class TooManyConnections(GatewayError):
    """A connection limit (total, per client address, per requester) is reached."""

    sqlstate = "53300"
    http_status = 503
    code = "too_many_connections"
