"""The relay's refusals: one shape {"error": {"code", "message", "details"}}, a stable code, its HTTP status,
and what it says to a diner in Chinese or English (the box's own messages for the codes both use)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException

from appliance.contract.diner import ErrorBody, ErrorOut
from appliance.domain.errors import DEFAULT_HTTP_STATUS, HTTP_STATUS_BY_CODE, DomainError
from appliance.domain.messages import choose_lang, code_for_http_status
from appliance.domain.messages import message_for as box_message_for
from appliance.errors import TableboxError
from appliance.httpapi import client_went_away

log = structlog.get_logger("sync.relay")

STATUS_BY_CODE: dict[str, int] = {
    **HTTP_STATUS_BY_CODE,  # the box's codes: a refusal the box sent back keeps its status
    # the relay's own
    "restaurant_offline": 503,
    "menu_unavailable": 503,
    "unknown_store": 404,
    # signed box requests
    "missing_signature": 401,
    "bad_signature": 401,
    "stale_timestamp": 401,
    "replayed_nonce": 401,
}
DEFAULT_STATUS = DEFAULT_HTTP_STATUS

# The relay's own refusals; every other code is worded as the box words it (appliance/domain/messages.py).
RELAY_MESSAGES: dict[str, dict[str, str]] = {
    "restaurant_offline": {
        "en": "The restaurant is offline: join the store Wi-Fi to order.",
        "zh": "餐厅暂时无法通过网络接单：请连接店内 Wi-Fi 点餐。",
    },
    "menu_unavailable": {
        "en": "The menu is not available yet: join the store Wi-Fi to order.",
        "zh": "菜单暂不可用：请连接店内 Wi-Fi 点餐。",
    },
    "unknown_store": {"en": "This restaurant is not known here.", "zh": "未找到该餐厅。"},
    "storage_unavailable": {"en": "The order was NOT taken: please try again.", "zh": "订单未提交成功，请重试。"},
    "internal_error": {"en": "Something went wrong on our side. Please try again.", "zh": "系统出错，请重试。"},
}


class _Missing(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def message_for(code: str, lang: str, details: Mapping[str, Any], fallback: str) -> str:
    texts = RELAY_MESSAGES.get(code)
    if texts is None:
        return box_message_for(code, lang, details, fallback)
    return (texts.get(lang) or texts["en"]).format_map(_Missing(details))


def status_for(code: str) -> int:
    return STATUS_BY_CODE.get(code, DEFAULT_STATUS)


class RelayError(TableboxError):
    """A refusal with a stable code; its message is chosen in the diner's language when answered."""

    def __init__(
        self,
        code: str,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        message: str | None = None,
        **details: Any,
    ) -> None:
        super().__init__(code)
        self.code = code
        self.status = status or status_for(code)
        self.headers = headers or {}
        self.message = message
        self.details = details


def request_lang(request: Request[Any, Any, Any]) -> str:
    """?lang=, else Accept-Language, else Chinese (the same rule as the box)."""
    return choose_lang(request.query_params.get("lang"), request.headers.get("accept-language", ""))


def error_response(
    request: Request[Any, Any, Any],
    code: str,
    status: int,
    details: dict[str, Any],
    message: str,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    body = msgspec.json.encode(ErrorOut(ErrorBody(code, message, details)))
    return Response(content=body, status_code=status, media_type="application/json", headers=headers)


def relay_error_handler(request: Request[Any, Any, Any], exc: RelayError) -> Response[Any]:
    message = exc.message or message_for(exc.code, request_lang(request), exc.details, exc.code)
    return error_response(request, exc.code, exc.status, exc.details, message, exc.headers)


def domain_error_handler(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    """A refusal of the contract's checks (a body's form, `appliance.contract.decode`) in the relay's words."""
    details = dict(exc.details)
    return error_response(
        request,
        exc.code,
        status_for(exc.code),
        details,
        message_for(exc.code, request_lang(request), details, exc.code),
    )


def http_exception_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """litestar's own refusals (size, routing) in the relay's shape and words (never litestar's own text); a client
    that closed the connection mid-request is an info line, not a server error."""
    status = exc.status_code
    if client_went_away(exc):
        log.info("relay.client_gone", path=request.url.path[:200], method=request.method)
        status, code = 400, "bad_request"
    else:
        code = code_for_http_status(status)
    if status >= 500:
        log.error("relay.http_error", path=request.url.path, status=status, detail=str(exc.detail))
    return error_response(
        request,
        code,
        status,
        {},
        message_for(code, request_lang(request), {}, code),
        dict(exc.headers or {}),
    )


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("relay.internal_error", path=request.url.path, error=repr(exc))
    return error_response(
        request, "internal_error", 500, {}, message_for("internal_error", request_lang(request), {}, "internal error")
    )


EXCEPTION_HANDLERS: dict[Any, Any] = {
    RelayError: relay_error_handler,
    DomainError: domain_error_handler,
    HTTPException: http_exception_handler,
    Exception: internal_error_handler,
}
