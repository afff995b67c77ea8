"""The diner API under /api/v1/tables/{token}: table info, menu, orders, live events, waiter and bill requests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from typing import Any, Literal

import msgspec
import structlog
from litestar import Controller, Request, Response, get, post, route
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery
from litestar.response import ServerSentEvent, ServerSentEventMessage

from appliance.contract.decode import MAX_JSON_DEPTH, check_json_body, strict_decode
from appliance.contract.diner import (
    ErrorOut,
    MenuOut,
    OrderIn,
    OrderOut,
    ServiceRequestIn,
    ServiceRequestOut,
    TableInfoOut,
    VisitOrdersOut,
)
from appliance.contract.menu import render_store
from appliance.db.diner_input import order_request
from appliance.db.order_events import OrderEvent, events_for_session
from appliance.db.orders import last_event_id, session_orders, submit_order
from appliance.db.tables import (
    ServiceRequest,
    Table,
    live_session,
    open_requests,
    request_service,
    resolve_token,
)
from appliance.db.writer import WriterClosed
from appliance.diner_page.delivery import MENUS, deliver
from appliance.domain.errors import DomainError
from appliance.domain.orders import ORDERING, Channel
from appliance.domain.tokens import read_table_token
from appliance.ratelimit import RateLimiter, retry_after
from appliance.web.errors import ApiError, request_lang
from appliance.web.localize import localize_order, session_view
from appliance.web.schemas import encoded

log = structlog.get_logger("appliance.orders")

JSON = "application/json"


def _errors(*codes: int) -> dict[int, ResponseSpec]:
    meaning = {
        400: f"Not JSON, an empty body, or JSON nested deeper than {MAX_JSON_DEPTH} levels (`malformed_json`).",
        403: "A forged code (`forged_token`) or another restaurant's code (`other_store`).",
        409: "`price_changed` (details.total_minor is the fresh total), `store_closed`, `table_not_open`, `no_open_visit`.",
        410: "The table was re-keyed: an old sticker (`table_rekeyed`), or the table was removed (`table_gone`).",
        413: "The body is larger than max_body_bytes (`body_too_large`).",
        415: "The body was not sent as `application/json` (`unsupported_media_type`).",
        422: "A line cannot be ordered (`sold_out`, `not_enough_stock`, `unknown_item`, `unavailable_now`, "
        "`variant_required`, `unknown_variant`, `invalid_option`, `text_too_long`; details.line names it), "
        "`idempotency_key_reused`, or a body of the wrong shape (`invalid_body`, details.field).",
        429: "Too many requests from this table or address (`rate_limited`); see Retry-After.",
        503: "The order could not be stored (`storage_unavailable`), the box's disk is nearly full (`disk_full`, "
        "nothing was stored; see Retry-After) or the box is restarting (`shutting_down`).",
    }
    return {c: ResponseSpec(data_container=ErrorOut, description=meaning[c]) for c in codes}


def _state(request: Request[Any, Any, Any]) -> State:
    return request.app.state


def _table(request: Request[Any, Any, Any], token: str) -> Table:
    state = _state(request)
    host = request.client.host if request.client else "?"
    wait = state.address_limiter.hit(host)
    if wait:
        raise ApiError("rate_limited", headers={"Retry-After": retry_after(wait)}, scope="address")
    store = state.store
    tables = state.read_cache.get(store.read).tables
    return resolve_token(tables.get, store.secret, store.store_id, token)


class OldStickerCallIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What an old sticker's page sends: a waiter is all it can call (no bill for a table it cannot order at)."""

    kind: Literal["waiter"]


# An old sticker's waiter calls per table and minute (a burst of this many, then this many a minute): a person
# holding a sticker taken home cannot keep calling staff to a table; the table's own limit applies as well.
OLD_STICKER_CALLS_PER_MINUTE = 1


def _old_sticker_table(request: Request[Any, Any, Any], token: str) -> tuple[Table, bool]:
    """The table a genuine code of this store names, old or current: (table, True) for an old sticker (a code the
    table's re-keying voided), (table, False) for the current one. A forged code, another store's or a removed
    table is refused as on every other call."""
    try:
        return _table(request, token), False
    except DomainError as exc:
        if exc.code != "table_rekeyed":
            raise
    store = _state(request).store
    ref = read_table_token(store.secret, store.store_id, token)  # verified by resolve_token above
    table = _state(request).read_cache.get(store.read).tables.get(ref.table_id)
    assert table is not None  # resolve_token refused a missing table as table_gone
    return table, True


def _limit_old_sticker(request: Request[Any, Any, Any], table: Table) -> None:
    state = _state(request)
    limiter = state.get("old_sticker_limiter")
    if limiter is None:
        limiter = state["old_sticker_limiter"] = RateLimiter(OLD_STICKER_CALLS_PER_MINUTE)
    wait = limiter.hit(table.id)
    if wait:
        raise ApiError("rate_limited", headers={"Retry-After": retry_after(wait)}, scope="table")


def _first_lang(request: Request[Any, Any, Any]) -> str:
    """The store's first language: the menu's own names (order lines show a translated dish's original under it)."""
    store = _state(request).store
    return str(_state(request).read_cache.get(store.read).settings.languages[0])


def _limit_table(request: Request[Any, Any, Any], table: Table) -> None:
    wait = _state(request).table_limiter.hit(table.id)
    if wait:
        raise ApiError("rate_limited", headers={"Retry-After": retry_after(wait)}, scope="table")


DISK_FULL_RETRY_SECONDS = "30"


def _require_space(request: Request[Any, Any, Any]) -> None:
    """Refuse before writing when the disk is nearly full: a clean 503 now beats SQLite failing midway."""
    space = _state(request).space
    if not space.enough():
        log.error(
            "store.disk_full",
            free_mb=(space.last_free or 0) // (1024 * 1024),
            min_free_mb=space.min_free_bytes // (1024 * 1024),
        )
        raise ApiError("disk_full", headers={"Retry-After": DISK_FULL_RETRY_SECONDS})


async def _write(request: Request[Any, Any, Any], fn: Any, *args: Any) -> Any:
    try:
        return await _state(request).store.writer.run(fn, *args)
    except WriterClosed:
        raise ApiError("shutting_down") from None
    except DomainError:
        raise
    except Exception as exc:  # the transaction did not commit: nothing was taken
        log.error("store.write_failed", error=repr(exc))
        raise ApiError("storage_unavailable") from None


async def _body(request: Request[Any, Any, Any], kind: type[Any]) -> Any:
    """The request's JSON body decoded strictly as `kind` (appliance.contract.decode: the relay and the relay link
    check orders the same way): 400 for an empty body or one that is not JSON or nests too deep, 415 for a body not
    sent as application/json, 413 beyond max_body_bytes, 422 naming the field for the wrong shape. litestar never
    parses a body here (its parse is lax, and it would answer an empty body with its own text)."""
    body = await request.body()
    check_json_body(request.headers.get("content-type"), body)
    return strict_decode(body, kind)


def _json(value: Any, status: int = 200) -> Response[Any]:
    return Response(content=msgspec.json.encode(value), status_code=status, media_type=JSON)


def table_view(state: State, table: Table) -> TableInfoOut:
    """The store and this table as GET /api/v1/tables/{token} gives them (the diner page embeds the same)."""
    store = state.store
    settings = state.read_cache.get(store.read).settings
    session = live_session(store.read, table.id)
    open_now = settings.open_at(settings.minute_of_day())
    takes_orders = open_now and (
        (session is not None and session.status in ORDERING) or not settings.tables_need_staff_open
    )
    return msgspec.convert(
        {
            "store": render_store(settings, open_now),
            "table": {
                "name": table.name,
                "area": table.area,
                "seats": table.seats,
                "takes_orders": takes_orders,
                "session": session_view(session),
            },
        },
        TableInfoOut,
    )


class DinerController(Controller):
    path = "/api/v1/tables/{token:str}"
    tags = ["diner"]
    # What the operations answer, described exactly in /schema (appliance.httpapi).
    SHAPES = (TableInfoOut, MenuOut, OrderOut, VisitOrdersOut, ServiceRequestOut, ErrorOut)

    @get("/", operation_id="getTable", summary="The store and this table", responses=_errors(403, 410, 429))
    async def table_info(self, request: Request[Any, Any, Any], token: FromPath[str]) -> TableInfoOut:
        """Who and where the diner is: the restaurant (name, currency, languages, open now?) and the table,
        with its open visit if there is one."""
        return table_view(_state(request), _table(request, token))

    @get(
        "/menu",
        operation_id="getMenu",
        summary="The menu in the diner's language",
        responses={
            304: ResponseSpec(data_container=None, description="Not modified (If-None-Match matched the ETag)."),
            **_errors(403, 410, 429),
        },
    )
    async def menu(
        self, request: Request[Any, Any, Any], token: FromPath[str], lang: FromQuery[str | None] = None
    ) -> Response[MenuOut]:
        """Categories, dishes, variants, option groups with min/max choices, prices in minor units, sold-out
        and available-now flags, and the menu version. `lang` (zh, en, ...) picks the translation; the answer
        carries an ETag, so a phone re-asking with If-None-Match gets 304 when nothing changed."""
        _table(request, token)
        state = _state(request)
        snap = state.read_cache.get(state.store.read)
        language = request_lang(request)
        if language not in snap.settings.languages:
            language = snap.settings.languages[0]
        etag, body = state.rendered.get(snap, language, snap.settings.minute_of_day())
        # compressed like the page (each menu body once, br or gzip by Accept-Encoding), 304 on If-None-Match
        answer = deliver(body, request.headers, cache=MENUS, vary=("Accept-Language",), etag=etag)
        return Response(
            content=encoded(MenuOut, answer.body),
            status_code=answer.status,
            media_type=JSON,
            headers=answer.headers,
        )

    @post(
        "/orders",
        operation_id="submitOrder",
        summary="Submit an order",
        status_code=201,
        responses={
            200: ResponseSpec(
                data_container=OrderOut, description="The same order again: this client_key was already submitted."
            ),
            **_errors(400, 403, 409, 410, 413, 415, 422, 429, 503),
        },
    )
    async def submit(self, request: Request[Any, Any, Any], token: FromPath[str]) -> Response[OrderOut]:
        """Price the lines from the box's own menu and store the order, its kitchen tickets and its ERP
        delivery in one durable transaction before answering 201. `expected_total_minor` (the total the
        phone showed) makes a stale total a 409 `price_changed` instead of a surprise. Retrying with the
        same `client_key` returns the original order with 200, never a second one."""
        started = time.perf_counter()
        data: OrderIn = await _body(request, OrderIn)
        table = _table(request, token)
        _limit_table(request, table)
        lang = request_lang(request)
        wanted = order_request(data, lang=lang, channel=Channel.LAN)
        store = _state(request).store
        _require_space(request)
        result = await _write(request, submit_order, table, wanted, store.write_cache)
        order = result.order
        if result.created:
            log.info(
                "order.submitted",
                order_id=order["id"],
                ticket_no=order["ticket_no"],
                table=table.name,
                lines=len(order["lines"]),
                total_minor=order["total_minor"],
                latency_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            if result.sold_out_now:
                log.info("menu.sold_out", item_ids=result.sold_out_now, reason="stock")
        else:
            log.info("order.repeated", order_id=order["id"], table=table.name)
        return _json(localize_order(order, lang, _first_lang(request)), 201 if result.created else 200)

    @route("/orders", http_method=["OPTIONS"], include_in_schema=False)
    async def orders_options(self) -> Response[None]:
        """litestar 2 answers OPTIONS on a path with a GET and a POST naming only one of them (its issue #4169)."""
        return Response(content=None, status_code=204, headers={"Allow": "GET, OPTIONS, POST"})

    @get("/orders", operation_id="listVisitOrders", summary="This visit's orders", responses=_errors(403, 410, 429))
    async def visit_orders(self, request: Request[Any, Any, Any], token: FromPath[str]) -> VisitOrdersOut:
        """The orders of the table's current visit with their status and lines, and the running total
        (cancelled orders excluded). Empty when the table has no open visit."""
        table = _table(request, token)
        store = _state(request).store
        lang = request_lang(request)
        session = live_session(store.read, table.id)
        orders = session_orders(store.read, session.id) if session else []
        first = _first_lang(request)
        return msgspec.convert(
            {
                "session": session_view(session),
                "orders": [localize_order(o, lang, first) for o in orders],
                "total_minor": sum(o["total_minor"] for o in orders if o["status"] != "cancelled"),
            },
            VisitOrdersOut,
        )

    @get(
        "/events",
        operation_id="streamEvents",
        summary="Live status of this visit's orders (server-sent events)",
        media_type="text/event-stream",
        responses=_errors(403, 410, 429),
    )
    async def events(self, request: Request[Any, Any, Any], token: FromPath[str]) -> ServerSentEvent:
        """A `text/event-stream`. First a `snapshot` event (the visit's orders and their status), then an
        `order` event for every status change or voided line of that visit (`{event_id, order_id, ticket_no, from, to,
        line_no, reason, order_status, total_minor, at}`), each with its id; a reconnect with
        `Last-Event-ID` gets the events it missed instead of the snapshot. Comments keep the line alive."""
        table = _table(request, token)
        state = _state(request)
        hub = state.hub
        queue = hub.subscribe(table.id)
        last_header = request.headers.get("last-event-id", "")
        resume_after = int(last_header) if last_header.isdigit() else None
        keepalive = state.settings.events_keepalive_seconds

        def snapshot() -> tuple[ServerSentEventMessage, int]:
            """The visit as it is now, and the last event id it already reflects (read in the same snapshot)."""
            with state.store.read:
                upto = last_event_id(state.store.read)
                session = live_session(state.store.read, table.id)
                orders = session_orders(state.store.read, session.id) if session else []
            data = {
                "session": session_view(session),
                "orders": [
                    {"id": o["id"], "ticket_no": o["ticket_no"], "status": o["status"], "total_minor": o["total_minor"]}
                    for o in orders
                ],
            }
            message = ServerSentEventMessage(event="snapshot", data=msgspec.json.encode(data).decode(), id=str(upto))
            return message, upto

        async def stream() -> AsyncGenerator[ServerSentEventMessage, None]:
            sent = hub.last_id
            try:
                yield ServerSentEventMessage(data=None, comment="tablebox", retry=3000)
                session = live_session(state.store.read, table.id)
                # A stream belongs to one visit: the one open now, or else the first one that starts. The next
                # party at this table never sees this party's orders, nor this stream theirs.
                visit = session.id if session else None
                if resume_after is not None and session is not None:
                    for row in events_for_session(state.store.read, session.id, resume_after):
                        sent = max(sent, row.id)
                        yield _event_message(row)
                else:
                    message, sent = snapshot()
                    yield message
                while True:
                    try:
                        row = await asyncio.wait_for(queue.get(), keepalive)
                    except TimeoutError:
                        yield ServerSentEventMessage(data=None, comment="keepalive")
                        continue
                    if not isinstance(row, OrderEvent):  # RESYNC: the reader fell behind
                        message, sent = snapshot()
                        yield message
                        continue
                    if visit is None:
                        visit = row.session_id
                    if row.session_id == visit and row.id > sent:
                        sent = row.id
                        yield _event_message(row)
            finally:
                hub.unsubscribe(table.id, queue)

        return ServerSentEvent(stream(), headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @post(
        "/requests",
        operation_id="requestService",
        summary="Call the waiter or ask for the bill",
        status_code=201,
        responses={
            200: ResponseSpec(
                data_container=ServiceRequestOut, description="The same request is already waiting for staff."
            ),
            **_errors(400, 403, 409, 410, 413, 415, 422, 429, 503),
        },
    )
    async def service_request(
        self, request: Request[Any, Any, Any], token: FromPath[str]
    ) -> Response[ServiceRequestOut]:
        """`waiter` calls staff to the table; `bill` asks for the bill (the visit becomes bill_requested).
        A request of the same kind still waiting is answered again with 200 instead of being repeated."""
        data: ServiceRequestIn = await _body(request, ServiceRequestIn)
        table = _table(request, token)
        _limit_table(request, table)
        _require_space(request)
        answer: tuple[ServiceRequest, bool] = await _write(request, request_service, table, data.kind)
        row, created = answer
        log.info("table.request", table=table.name, kind=data.kind, created=created)
        return _json(
            {"id": row.id, "kind": row.kind, "created_at": row.created_at, "already_waiting": not created},
            201 if created else 200,
        )

    @post(
        "/old-sticker-call",
        operation_id="oldStickerCall",
        summary="Call a waiter from an old sticker's page",
        status_code=201,
        responses={
            200: ResponseSpec(
                data_container=ServiceRequestOut, description="A waiter call is already waiting for staff."
            ),
            **_errors(400, 403, 410, 413, 415, 422, 429, 503),
        },
    )
    async def old_sticker_call(
        self, request: Request[Any, Any, Any], token: FromPath[str]
    ) -> Response[ServiceRequestOut]:
        """The button on the page an old sticker opens (410 `table_rekeyed`): the old code still names its table,
        so a diner sitting there can call a waiter, who brings the new code (`kind` is `waiter`, nothing else). The call is
        stored with source `old_sticker` (the console's tables screen says to bring the new code) and logged as
        `table.old_sticker_call`; it is limited to OLD_STICKER_CALLS_PER_MINUTE new calls per table besides the usual
        limits (a call still waiting is answered 200 `already_waiting` without taking one); a current code makes an
        ordinary call."""
        await _body(request, OldStickerCallIn)
        table, old = _old_sticker_table(request, token)
        waiting = next(
            (r for r in open_requests(_state(request).store.read) if r.table_id == table.id and r.kind == "waiter"),
            None,
        )
        if waiting is not None:  # already called: said again, costing no call of the old sticker's few
            return _json(
                {"id": waiting.id, "kind": "waiter", "created_at": waiting.created_at, "already_waiting": True}, 200
            )
        if old:
            _limit_old_sticker(request, table)
        _limit_table(request, table)
        _require_space(request)
        source = "old_sticker" if old else None
        answer: tuple[ServiceRequest, bool] = await _write(request, request_service, table, "waiter", source)
        row, created = answer
        log.info("table.old_sticker_call" if old else "table.request", table=table.name, kind="waiter", created=created)
        return _json(
            {"id": row.id, "kind": row.kind, "created_at": row.created_at, "already_waiting": not created},
            201 if created else 200,
        )


def _event_message(row: OrderEvent) -> ServerSentEventMessage:
    return ServerSentEventMessage(event="order", data=msgspec.json.encode(row.payload()).decode(), id=str(row.id))
