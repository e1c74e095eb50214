"""JSON errors of the gateway: ``{"error": {"code", "message"}}`` (CONTRACT.md section 5).

Handlers raise :class:`ApiError` (or one of its helpers); the app turns it, and anything
Starlette raises, into that shape. Validation errors also carry ``details``: one entry per
problem with the field ``path`` (``parameters.brightness``, ``actions[2].delay_ms``).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

# HTTP status -> the default machine-readable code.
CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    501: "not_implemented",
    503: "unavailable",
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or CODES.get(status, "error")
        self.details = details
        self.headers = headers

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            err["details"] = self.details
        return {"error": err}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def error_response(
    status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return ApiError(status, message, code, headers=headers).response()


def validation_error(problems: list[tuple[str, str]], status: int = 422) -> ApiError:
    """One error for a list of ``(path, message)`` problems; the message names the first."""
    details = [{"path": p, "message": m} for p, m in problems]
    first_path, first_msg = problems[0]
    where = first_path or "body"
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    return ApiError(status, f"{where}: {first_msg}{more}", details=details)


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} not found")


def unauthorized(message: str) -> ApiError:
    return ApiError(401, message, headers={"WWW-Authenticate": 'Bearer realm="homestream"'})


def unavailable_reason(exc: BaseException) -> str | None:
    """A message when ``exc`` means a backing server is down (-> 503)."""
    mod = type(exc).__module__
    if mod.startswith(("psycopg", "psycopg_pool")) and type(exc).__name__ in (
        "OperationalError",
        "PoolTimeout",
        "InterfaceError",
    ):
        return "PostgreSQL is unavailable; try again shortly"
    if mod.startswith("redis") and type(exc).__name__ in ("ConnectionError", "TimeoutError"):
        return "Redis is unavailable; try again shortly"
    if mod.startswith("cimpl") or "KafkaException" in type(exc).__name__:
        return "Kafka is unavailable; try again shortly"
    return None
