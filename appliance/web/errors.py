"""One error shape for the API: {"error": {"code", "message", "details"}} with a stable code and HTTP status."""

from __future__ import annotations

from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from appliance.contract.diner import ErrorBody, ErrorOut
from appliance.domain.errors import DEFAULT_HTTP_STATUS, HTTP_STATUS_BY_CODE, DomainError
from appliance.domain.messages import choose_lang, code_for_http_status, message_for
from appliance.domain.money import format_money
from appliance.errors import TableboxError
from appliance.httpapi import client_went_away
from appliance.web.schemas import encoded

log = structlog.get_logger("appliance.web")

STATUS_BY_CODE = HTTP_STATUS_BY_CODE
DEFAULT_STATUS = DEFAULT_HTTP_STATUS


class ApiError(TableboxError):
    """An HTTP refusal with a stable code; the message is chosen in the diner's language when answered."""

    def __init__(
        self, code: str, status: int | None = None, headers: dict[str, str] | None = None, **details: Any
    ) -> None:
        super().__init__(code)
        self.code = code
        self.status = status or STATUS_BY_CODE.get(code, DEFAULT_STATUS)
        self.details = details
        self.headers = headers or {}


def request_lang(request: Request[Any, Any, Any]) -> str:
    """The diner's language: ?lang=, else the browser's Accept-Language, else Chinese."""
    return choose_lang(request.query_params.get("lang"), request.headers.get("accept-language", ""))


def _money_formatter(request: Request[Any, Any, Any]) -> Any:
    state = request.app.state
    try:
        currency = state.store.store_settings().money
    except Exception:  # a broken store must not hide the original error
        return None
    return lambda minor: format_money(minor, currency)


def error_response(
    request: Request[Any, Any, Any],
    code: str,
    status: int,
    details: dict[str, Any],
    fallback: str,
    headers: dict[str, str] | None = None,
) -> Response[ErrorOut]:
    money = _money_formatter(request) if "total_minor" in details else None
    message = message_for(code, request_lang(request), details, fallback, money)
    body = msgspec.json.encode(ErrorOut(ErrorBody(code, message, details)))
    return Response(content=encoded(ErrorOut, body), status_code=status, media_type="application/json", headers=headers)


def domain_error_handler(request: Request[Any, Any, Any], exc: DomainError) -> Response[ErrorOut]:
    return error_response(
        request, exc.code, STATUS_BY_CODE.get(exc.code, DEFAULT_STATUS), dict(exc.details), exc.message
    )


def api_error_handler(request: Request[Any, Any, Any], exc: ApiError) -> Response[ErrorOut]:
    return error_response(request, exc.code, exc.status, exc.details, exc.code, exc.headers)


def http_exception_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorOut]:
    """Litestar's own refusals (size, routing; a parameter it could not read) in our shape, with our codes and our
    words: litestar's own text (a parser's complaint, a Python repr) never reaches a diner."""
    status = exc.status_code
    if client_went_away(exc):
        log.info("http.client_gone", path=request.url.path, method=request.method)
        return error_response(request, "bad_request", 400, {}, "the client went away")
    if isinstance(exc, ValidationException):
        fields = [
            _field(e.get("key"))
            for e in (exc.extra if isinstance(exc.extra, list) else [exc.extra])
            if isinstance(e, dict)
        ]
        field = fields[0] if fields else ""
        problem = f"{field}: not valid" if field else "not valid"
        errors = [{"field": f, "problem": "not valid"} for f in fields]
        return error_response(
            request, "invalid_body", 422, {"field": field, "problem": problem, "errors": errors}, "invalid body"
        )
    code = code_for_http_status(status)
    if status >= 500:
        log.error("http.error", path=request.url.path, status=status, detail=str(exc.detail))
    return error_response(request, code, status, {}, code, dict(exc.headers or {}))


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorOut]:
    log.exception("http.internal_error", path=request.url.path, error=repr(exc))
    return error_response(request, "internal_error", 500, {}, "internal error")


def _field(key: Any) -> str:
    text = str(key or "")
    return text[5:] if text.startswith("data.") else ("" if text == "data" else text)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    DomainError: domain_error_handler,
    ApiError: api_error_handler,
    HTTPException: http_exception_handler,
    Exception: internal_error_handler,
}
