"""The public relay (protocol v1): phones off the store Wi-Fi order through it, boxes behind NAT long-poll it.

Box API (every request signed, see appliance/contract/signing.py; the store is the one the signature names, never the path):
`GET /v1/box/inbox?after=SEQ&wait=0..25`, `PUT /v1/box/menu`, `POST /v1/box/events`.
Phone API, the box's diner API shape under `/s/{store_id}/api/v1/tables/{token}`: the store and the menu from
the box's last push, orders and waiter/bill requests into the store's inbox (only while its box polls), and the
box's answers back (order list, server-sent events); and, as on the box, `POST .../old-sticker-call`: a waiter call
from the page an old sticker opens, into the inbox marked `old_sticker`. The relay never prices nor confirms anything itself: a
phone hears "accepted" only once the box's own "accepted" event has arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
import structlog
from litestar import Litestar, Request, Response, Router, get, post, put, route
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.params import FromPath
from litestar.response import ServerSentEvent, ServerSentEventMessage

from appliance import __version__
from appliance.contract.decode import check_json_body, clean_note, strict_decode
from appliance.contract.diner import RelayedOrderIn, ServiceRequestIn
from appliance.contract.relay import (
    OLD_STICKER,
    BoxEvents,
    InboxMessage,
    InboxPage,
    MenuPush,
    OldStickerCallIn,
    for_phone,
    table_code_hash,
)
from appliance.contract.signing import STORE_HEADER, Refusal, verify
from appliance.diner_page import HTML, SERVICE_WORKER, boot_json, page
from appliance.diner_page.delivery import (
    ASSETS,
    MENUS,
    PAGES,
    CompressedBodies,
    asset,
    deliver,
    request_page_lang,
)
from appliance.diner_page.refusal import LANGS, old_sticker_call_url, refusal_page
from appliance.domain.errors import DomainError
from appliance.domain.tokens import peek_table_token
from appliance.httpapi import ExactJsonRenderPlugin
from appliance.quietgc import quiet_gc
from appliance.ratelimit import RateLimiter, retry_after
from appliance.sdnotify import Notifier
from sync.relay.description import ANSWERS, REQUEST_BODIES, SHAPES, parameters
from sync.relay.errors import EXCEPTION_HANDLERS, RelayError, message_for, request_lang, status_for
from sync.relay.images import BOX_IMAGE_ROUTES, IMAGE_ROUTE
from sync.relay.settings import RelaySettings
from sync.relay.storage import NOTIFY_CHANNEL, Listener, Message, NewEvent, Storage, StoreRow, UnknownStore, iso

log = structlog.get_logger("sync.relay")
T = TypeVar("T")

JSON = "application/json"
MAX_WAIT_SECONDS = 25
MAX_MESSAGES = 100
TOKEN = re.compile(r"[a-z2-7]{32}")  # the box's table code: 32 lower-case base32 characters
STORE_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
SECRET_CACHE_SECONDS = 300.0
PURGE_EVERY_SECONDS = 60.0
MENU_CACHE_STORES = 256
RELAY_LIMITER_KEYS = 50_000  # many stores' phones and addresses in one process
# A table code the relay refuses (forged, another store's, an old sticker, a removed table) costs its address this
# many requests of its per-minute budget: a diner mistyping a code now and then does not notice, a script trying
# codes is slowed to a few a minute (`RateLimiter.charge`).
CODE_REFUSAL_COST = 10
# Waiter calls from an old sticker per table and minute (a burst of this many, then this many a minute), as on the box
# (appliance.web.diner.OLD_STICKER_CALLS_PER_MINUTE): a sticker someone took home cannot keep calling staff.
OLD_STICKER_CALLS_PER_MINUTE = 1
_ENCODE = msgspec.json.Encoder(order="sorted")


class Wakeups:
    """One asyncio.Event per key (a store) for those waiting in this process; `wake` sets it and starts a new
    one. Take `waiter()` BEFORE reading the database: a message stored after the read still wakes it."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def waiter(self, key: str) -> asyncio.Event:
        event = self._events.get(key)
        if event is None:
            event = self._events[key] = asyncio.Event()
        return event

    def wake(self, key: str) -> None:
        event = self._events.pop(key, None)
        if event is not None:
            event.set()

    def wake_all(self) -> None:
        for key in list(self._events):
            self.wake(key)


async def _wait(event: asyncio.Event, seconds: float) -> bool:
    """True when `event` was set within `seconds` (a timeout scope, not wait_for's task per wait)."""
    try:
        async with asyncio.timeout(max(0.0, seconds)):
            await event.wait()
        return True
    except TimeoutError:
        return False


@dataclass(frozen=True)
class PushedMenu:
    version: int
    store: dict[str, Any]
    default_lang: str
    bodies: dict[str, bytes]  # language -> the menu as JSON bytes, exactly as the box rendered it
    token_store: str | None = None  # the store id inside the box's table codes
    tables: dict[int, dict[str, Any]] | None = None  # table id -> {name, area, seats, version, active}

    def table_for(self, token: str) -> dict[str, Any] | None:
        """The table a code names, as far as the relay can tell without the store's secret: another store's code,
        an old sticker, a removed table, and a forged code (its SHA-256 is not the `code_hash` the box pushed for
        the table) are refused here, in the diner's language, before anything reaches the box (which verifies the
        code's MAC on every order anyway). None when the box pushed no tables (an older box); a table pushed without
        a hash is named but its code left to the box."""
        if self.tables is None or self.token_store is None:
            return None
        ref = peek_table_token(token)
        if ref is None:
            raise RelayError("forged_token")
        if ref.store_id != self.token_store:
            raise RelayError("other_store")
        table = self.tables.get(ref.table_id)
        if table is None or not table.get("active", True):
            raise RelayError("table_gone")
        if ref.version < table["version"]:
            old = table.get("old_code_hashes")
            if isinstance(old, list) and table["version"] - ref.version <= len(old):
                # the box pushed this voided code's hash: a made-up MAC is refused here (an older one: the box's)
                mine = table_code_hash(token)
                if not any(isinstance(h, str) and hmac.compare_digest(h, mine) for h in old):
                    raise RelayError("forged_token")
            raise RelayError("table_rekeyed", table=table["name"])
        if ref.version > table["version"]:
            raise RelayError("forged_token")
        expected = table.get("code_hash")
        if isinstance(expected, str) and not hmac.compare_digest(expected, table_code_hash(token)):
            raise RelayError("forged_token")  # the payload is right, the MAC is not the one the box printed
        return table


class Relay:
    """What every handler needs, on app.state.relay: settings, storage (run on a thread pool), the wake-ups,
    the limits, and small caches (store secrets, rendered menus)."""

    def __init__(self, settings: RelaySettings, storage: Storage, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.storage = storage
        self.clock = clock
        self.executor: ThreadPoolExecutor | None = None
        self.inbox_wake = Wakeups()
        self.events_wake = Wakeups()
        self.address_limiter = RateLimiter(settings.rate_limit_address_per_minute, max_keys=RELAY_LIMITER_KEYS)
        self.token_limiter = RateLimiter(settings.rate_limit_token_per_minute, max_keys=RELAY_LIMITER_KEYS)
        self.store_limiter = RateLimiter(settings.rate_limit_store_per_minute, max_keys=RELAY_LIMITER_KEYS)
        self.address_orders_limiter = RateLimiter(
            settings.rate_limit_address_orders_per_minute, max_keys=RELAY_LIMITER_KEYS
        )
        self.refusal_limiter = RateLimiter(max(settings.rate_limit_address_per_minute, 60), max_keys=RELAY_LIMITER_KEYS)
        self.old_sticker_limiter = RateLimiter(OLD_STICKER_CALLS_PER_MINUTE, max_keys=RELAY_LIMITER_KEYS)
        self._secrets: dict[str, tuple[bytes, float]] = {}
        self._menus: OrderedDict[str, PushedMenu] = OrderedDict()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stopping = False
        self.listener: Listener | None = None
        self.listening = False  # PostgreSQL's LISTEN is up: other relay processes' writes wake this one

    def recheck(self, seconds: float) -> float:
        """How long a waiting poll or event stream may sleep before reading the database again: all of `seconds`
        while every write wakes it (PostgreSQL, this process listening), else at most recheck_seconds (SQLite,
        where another process on the same file wakes no one here; PostgreSQL while the listener reconnects)."""
        return seconds if self.listening else min(seconds, self.settings.recheck_seconds)

    # -- wake-ups from other relay processes (the listener's thread) -------------------------------------------------
    def start_listening(self) -> None:
        self.listener = self.storage.listen(self._notified, self._listener_state)

    def stop_listening(self) -> None:
        if self.listener is not None:
            self.listener.stop()
            self.listener = None
        self.listening = False

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self.loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody is waiting any more
                loop.call_soon_threadsafe(fn, *args)

    def _notified(self, kind: str, store_id: str) -> None:
        self._call(self._woken, kind, store_id)

    def _woken(self, kind: str, store_id: str) -> None:
        if kind == "inbox":
            self.inbox_wake.wake(store_id)
        elif kind == "events":
            self.events_wake.wake(store_id)

    def _listener_state(self, listening: bool, why: str | None) -> None:
        self._call(self._set_listening, listening, why)

    def _set_listening(self, listening: bool, why: str | None) -> None:
        """Every waiter reads the database once now: after a reconnect for what was written while nobody listened,
        after a drop to go on at the recheck_seconds pace until the listener is back (a failed reconnect changes
        nothing)."""
        if listening == self.listening:
            return
        if listening:
            log.info("relay.listening", channel=NOTIFY_CHANNEL)
        else:
            log.warning("relay.listener_lost", error=why, recheck_seconds=self.settings.recheck_seconds)
        self.listening = listening
        self._wake_all()

    def stop_waiting(self) -> None:
        """The server is stopping: waiting polls answer now (with what they have) and event streams end, so a
        graceful stop does not cut them with an error. Safe to call from any thread or a signal handler."""
        self.stopping = True
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._wake_all)

    def _wake_all(self) -> None:
        self.inbox_wake.wake_all()
        self.events_wake.wake_all()

    # -- the database, off the event loop -----------------------------------------------------------------------
    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.executor, functools.partial(fn, *args, **kwargs))
        except (Refusal, RelayError):
            raise
        except UnknownStore:
            raise RelayError("unknown_store") from None
        except Exception as exc:  # apsw / psycopg errors, a pool with no free connection
            log.error("relay.storage_failed", call=getattr(fn, "__name__", "?"), error=repr(exc))
            raise RelayError("storage_unavailable") from None

    # -- box requests --------------------------------------------------------------------------------------------
    def secret_of(self, store_id: str) -> bytes | None:
        cached = self._secrets.get(store_id)
        if cached is not None and time.monotonic() - cached[1] < SECRET_CACHE_SECONDS:
            return cached[0]
        secret = self.storage.secret_of(store_id)
        if secret is not None:
            self._secrets[store_id] = (secret, time.monotonic())
        return secret

    async def authenticate(self, request: Request[Any, Any, Any], body: bytes) -> str:
        """The store a box request is signed for, or a 401 (logged, without any secret) naming why."""
        headers = dict(request.headers.items())
        raw_path = request.scope.get("raw_path") or request.scope["path"].encode()
        query = request.scope.get("query_string") or b""
        path = raw_path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        try:
            return await self.db(
                verify,
                headers,
                request.method,
                path,
                body,
                secret_of=self.secret_of,
                nonce_is_new=self.storage.record_nonce,
                now=self.clock(),
            )
        except Refusal as refusal:
            address = _address(request)
            log.warning(
                "relay.refused",
                code=refusal.code,
                reason=refusal.message,
                method=request.method,
                path=path[:200],
                store=headers.get(STORE_HEADER.lower(), "")[:64],
                address=address,
            )
            wait = self.refusal_limiter.hit(address)
            if wait:
                raise RelayError("rate_limited", headers={"Retry-After": retry_after(wait)}) from None
            raise RelayError(refusal.code, status=401, message=refusal.message) from None

    # -- phones --------------------------------------------------------------------------------------------------
    def online(self, row: StoreRow, now: float | None = None) -> bool:
        """Online while a poll is in progress (a crashed relay's stale flag expires after a poll's length), or
        until offline_after_seconds after the last poll."""
        if row.last_poll_at is None:
            return False
        age = (self.clock() if now is None else now) - row.last_poll_at
        limit = self.settings.offline_after_seconds
        return age <= limit or (row.polling and age <= limit + MAX_WAIT_SECONDS)

    def limit(self, limiter: RateLimiter, key: Any, scope: str) -> None:
        wait = limiter.hit(key)
        if wait:
            raise RelayError("rate_limited", headers={"Retry-After": retry_after(wait)}, scope=scope)

    async def phone_store(self, request: Request[Any, Any, Any], store_id: str, token: str) -> StoreRow:
        self.limit(self.address_limiter, _address(request), "address")
        if not STORE_ID.fullmatch(store_id):
            raise RelayError("unknown_store")
        if not TOKEN.fullmatch(token):
            self.code_refused(request, store_id, "forged_token")
            raise RelayError("forged_token")
        row = await self.db(self.storage.store, store_id)
        if row is None:
            raise RelayError("unknown_store")
        return row

    async def phone_write(
        self, request: Request[Any, Any, Any], store_id: str, token: str, kind: type[Any]
    ) -> tuple[StoreRow, Any]:
        """What an order or a waiter/bill call goes through first, cheapest and most personal first: the address's
        limit, the store, the body decoded strictly as `kind`, the code (`check_table`), the address's limit for
        orders and calls, the table code's. The store's own limit comes last, only for a message about to enter its
        inbox (`store_budget`): one address, or a flood of forged codes, cannot use up what the store's diners have."""
        raw = await request.body()
        row = await self.phone_store(request, store_id, token)
        data = _strict(request, raw, kind)
        await self.check_table(request, row, token)
        self.limit(self.address_orders_limiter, _address(request), "address")
        self.limit(self.token_limiter, (store_id, token), "table")
        return row, data

    def store_budget(self, store_id: str) -> None:
        """Take one from the store's budget for a new message into its inbox (a repeated order is not one)."""
        self.limit(self.store_limiter, store_id, "store")

    def code_refused(self, request: Request[Any, Any, Any], store_id: str, code: str) -> None:
        """A table code refused here costs its address CODE_REFUSAL_COST requests of its budget."""
        address = _address(request)
        self.address_limiter.charge(address, CODE_REFUSAL_COST - 1)  # the request itself already took one
        log.info("relay.code_refused", store=store_id[:64], code=code, address=address)

    def first_lang(self, store_id: str) -> str | None:
        """The store's first menu language as its box last pushed it, if that menu is in the cache (order lines then
        name each dish in it too, under the phone's language); None otherwise (the page falls back to the menu)."""
        cached = self._menus.get(store_id)
        return cached.default_lang if cached is not None else None

    async def menu_of(self, row: StoreRow) -> PushedMenu:
        if row.menu_version is None:
            raise RelayError("menu_unavailable")
        cached = self._menus.get(row.store_id)
        if cached is not None and cached.version == row.menu_version:
            self._menus.move_to_end(row.store_id)
            return cached
        found = await self.db(self.storage.menu, row.store_id)
        if found is None:
            raise RelayError("menu_unavailable")
        version, text = found
        data = msgspec.json.decode(text)
        menus = data.get("menus") or {}
        store = data.get("store") or {}
        languages = [lang for lang in store.get("languages") or [] if lang in menus] or list(menus)
        tables = data.get("tables")
        pushed = PushedMenu(
            version,
            store,
            languages[0] if languages else "zh",
            {lang: msgspec.json.encode(menu) for lang, menu in menus.items()},
            data.get("token_store"),
            {int(t["id"]): t for t in tables} if isinstance(tables, list) else None,
        )
        self._menus[row.store_id] = pushed
        while len(self._menus) > MENU_CACHE_STORES:
            self._menus.popitem(last=False)
        return pushed

    async def check_table(self, request: Request[Any, Any, Any], row: StoreRow, token: str) -> dict[str, Any] | None:
        """The table a phone's code names (see PushedMenu.table_for); None when the relay cannot tell (no menu
        pushed yet, or a box that pushes no tables): the box decides then. A refused code is charged to the
        phone's address (`code_refused`)."""
        try:
            menu = await self.menu_of(row)
        except RelayError:
            return None
        try:
            return menu.table_for(token)
        except RelayError as exc:
            self.code_refused(request, row.store_id, exc.code)
            raise

    async def old_or_current_table(self, request: Request[Any, Any, Any], row: StoreRow, token: str) -> int | None:
        """For a waiter call from an old sticker's page: the id of the table an OLD version of its code names (the
        relay tells it from the pushed tables: the right store, a table in use, a version below its current one),
        or None for a code the relay takes as current (or cannot check: a box that pushes no tables). Every other
        code is refused as on the other endpoints (and charged to the address): a forged old code among the table's
        last OLD_CODES_PUSHED voided ones too (their hashes came with the tables). An older voided version's MAC
        the relay cannot check: the box does, and refuses a forged one."""
        menu = await self.menu_of(row)
        try:
            menu.table_for(token)
        except RelayError as exc:
            ref = peek_table_token(token)
            if exc.code == "table_rekeyed" and ref is not None:
                return ref.table_id
            self.code_refused(request, row.store_id, exc.code)
            raise
        return None

    async def answer_for(self, message: Message, lang: str) -> Response[Any]:
        """What a phone is told about an order already in the inbox: 200 with the order once the box accepted
        it (its newest view), the box's refusal, or 202 while the box has not answered."""
        events = await self.db(self.storage.events_for_key, message.store_id, message.idempotency_key)
        order = _latest_order(events)
        if order is not None:
            return _json(for_phone(order, lang, self.first_lang(message.store_id)), 200)
        refusal = next((e for e in reversed(events) if e.type == "refused"), None)
        if refusal is not None:
            error = _error_of(refusal)
            return _json({"error": error}, status_for(error["code"]))
        return _pending(message)

    async def visit(self, store_id: str, token: str, lang: str) -> tuple[dict[str, Any], Any]:
        """This table code's recent orders as a phone sees them, and the last event they include."""
        since = self.clock() - self.settings.orders_hours * 3600
        messages = await self.db(self.storage.orders_of_token, store_id, token, since)
        events = await self.db(self.storage.events_for_token, store_id, token, 0, 2000, since)
        by_key: dict[str, list[Any]] = {}
        for event in events:
            by_key.setdefault(event.client_key, []).append(event)
        orders, pending, refused = [], [], []
        for message in messages:
            mine = by_key.get(message.idempotency_key, [])
            order = _latest_order(mine)
            if order is not None:
                orders.append(for_phone(order, lang, self.first_lang(store_id)))
                continue
            refusal = next((e for e in reversed(mine) if e.type == "refused"), None)
            if refusal is not None:
                refused.append({"client_key": message.idempotency_key, "error": _error_of(refusal)})
            else:
                pending.append(message.idempotency_key)
        return {"orders": orders, "pending": pending, "refused": refused}, (events[-1] if events else None)

    async def purge_forever(self) -> None:
        while True:
            await asyncio.sleep(PURGE_EVERY_SECONDS)
            try:
                counts = await self.db(self.storage.purge, self.clock(), self.settings.keep_days * 86400)
                if any(counts.values()):
                    log.info("relay.purged", **counts)
            except RelayError:
                pass  # logged by db(); try again next time


def _address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "?"


def _relay(request: Request[Any, Any, Any]) -> Relay:
    relay: Relay = request.app.state.relay
    return relay


def _json(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(content=msgspec.json.encode(value), status_code=status, media_type=JSON, headers=headers)


def _pending(message: Message) -> Response[Any]:
    return _json({"status": "pending", "client_key": message.client_key}, 202)


def _latest_order(events: list[Any]) -> dict[str, Any] | None:
    """The newest order view among an order's events, once the box has accepted it (never before)."""
    if not any(e.type == "accepted" for e in events):
        return None
    for event in reversed(events):
        if event.type in ("accepted", "status"):
            order = msgspec.json.decode(event.body).get("order")
            if isinstance(order, dict) and order:
                return order
    return None


def _error_of(event: Any) -> dict[str, Any]:
    error = msgspec.json.decode(event.body).get("error") or {}
    return {
        "code": str(error.get("code") or "refused"),
        "message": str(error.get("message") or ""),
        "details": error.get("details") if isinstance(error.get("details"), dict) else {},
    }


def _strict(request: Request[Any, Any, Any], body: bytes, kind: type[Any]) -> Any:
    """A JSON body checked and decoded strictly as the box does (`check_json_body`: not empty, sent as
    application/json; `strict_decode`: nested at most 32 deep, the right shape); a refusal in the relay's shape."""
    try:
        check_json_body(request.headers.get("content-type"), body)
        return strict_decode(body, kind)
    except DomainError as exc:
        raise RelayError(exc.code, **exc.details) from None


def _number(
    request: Request[Any, Any, Any], name: str, default: float, low: float, high: float, integer: bool = False
) -> float:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value: float | None = float(raw) if "." in raw and not integer else int(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise RelayError("invalid_body", field=name, problem=f"{name} must be a number from {low:g} to {high:g}")
    return value


def _clean(text: str, line_no: int | None) -> str:
    try:
        return clean_note(text, line_no)
    except DomainError as exc:
        raise RelayError(exc.code, **exc.details) from None


def _wire(message: Message) -> InboxMessage:
    return InboxMessage(
        seq=message.seq,
        kind=message.kind,
        client_key=message.client_key,
        key=message.idempotency_key,
        token=message.token,
        body=msgspec.Raw(message.body.encode()),
        received_at=iso(message.received_at),
    )


# -- the box's API -------------------------------------------------------------------------------------------------
async def box_inbox(request: Request[Any, Any, Any]) -> Response[Any]:
    """The store's inbox after `after` (at most 100 messages, oldest first), waiting up to `wait` seconds for
    one when there is none. Everything up to `after` is acknowledged. The poll is also the heartbeat."""
    relay = _relay(request)
    store_id = await relay.authenticate(request, b"")
    after = int(_number(request, "after", 0, 0, 2**62, integer=True))
    wait = _number(request, "wait", 0, 0, MAX_WAIT_SECONDS)
    storage = relay.storage
    waiter = relay.inbox_wake.waiter(store_id)
    messages = await relay.db(storage.begin_poll, store_id, after, relay.clock(), MAX_MESSAGES, wait > 0)
    if not messages and wait > 0:
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait
            while not relay.stopping:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                woken = await _wait(waiter, relay.recheck(remaining))
                waiter = relay.inbox_wake.waiter(store_id)
                if not woken and relay.listening and loop.time() >= deadline:
                    break  # listening all along (a change would have woken it): no message came for this store
                messages = await relay.db(storage.inbox_after, store_id, after, MAX_MESSAGES)
                if messages:
                    break
        finally:
            ended = asyncio.ensure_future(relay.db(storage.end_poll, store_id, relay.clock()))
            with contextlib.suppress(asyncio.CancelledError, RelayError):
                await asyncio.shield(ended)
    if messages:
        log.info("relay.delivered", store=store_id, after=after, seqs=f"{messages[0].seq}-{messages[-1].seq}")
    return _json(InboxPage(messages=[_wire(m) for m in messages]))


async def box_menu(request: Request[Any, Any, Any]) -> Response[Any]:
    """The box's menu snapshot (store block and the menu in each language); an older version is ignored."""
    relay = _relay(request)
    body = await request.body()
    store_id = await relay.authenticate(request, body)
    data = _strict(request, body, MenuPush)
    pushed: dict[str, Any] = {"store": data.store, "menus": data.menus}
    if data.tables is not None and data.token_store is not None:
        pushed |= {"token_store": data.token_store, "tables": msgspec.to_builtins(data.tables)}
    text = _ENCODE.encode(pushed).decode()
    stored = await relay.db(relay.storage.put_menu, store_id, data.version, text)
    log.info(
        "relay.menu", store=store_id, version=data.version, stored=stored, languages=sorted(data.menus), bytes=len(text)
    )
    return _json({"version": stored})


async def box_events(request: Request[Any, Any, Any]) -> Response[Any]:
    """The box's answers (accepted / refused / status); an event id already stored is ignored."""
    relay = _relay(request)
    body = await request.body()
    store_id = await relay.authenticate(request, body)
    data = _strict(request, body, BoxEvents)
    events = [
        NewEvent(e.id, e.client_key, e.type, _ENCODE.encode({"order": e.order, "error": e.error}).decode(), e.at)
        for e in data.events
    ]
    new = await relay.db(relay.storage.put_events, store_id, events, relay.clock()) if events else 0
    if new:
        relay.events_wake.wake(store_id)
    log.info("relay.events", store=store_id, received=len(events), new=new)
    return _json({"stored": len(events), "new": new})


# -- the phones' API -----------------------------------------------------------------------------------------------
async def table_info(request: Request[Any, Any, Any], store_id: FromPath[str], token: FromPath[str]) -> Response[Any]:
    """The restaurant as its box last described it, and whether its box is connected now (online)."""
    relay = _relay(request)
    row = await relay.phone_store(request, store_id, token)
    menu = await relay.menu_of(row)
    table = await relay.check_table(request, row, token)
    return _json(_table_info(relay, row, menu, table))


def _table_info(relay: Relay, row: StoreRow, menu: PushedMenu, table: dict[str, Any] | None) -> dict[str, Any]:
    """The answer to GET .../tables/{token}, which the diner page also carries."""
    shown = (
        {
            "name": table["name"],
            "area": table.get("area", ""),
            "seats": table.get("seats"),
            "takes_orders": bool(table.get("active", True)),
            "session": None,
        }
        if table is not None
        else None
    )
    return {"store": menu.store, "table": shown, "online": relay.online(row)}


async def table_menu(request: Request[Any, Any, Any], store_id: FromPath[str], token: FromPath[str]) -> Response[Any]:
    """The menu the box pushed, in the diner's language (?lang= or Accept-Language); ETag = its version."""
    relay = _relay(request)
    row = await relay.phone_store(request, store_id, token)
    menu = await relay.menu_of(row)
    await relay.check_table(request, row, token)
    lang = request_lang(request)
    if lang not in menu.bodies:
        lang = menu.default_lang if menu.default_lang in menu.bodies else next(iter(menu.bodies))
    # compressed as the box compresses it (each store's menu body once), 304 on If-None-Match
    etag = f'"{store_id}-{menu.version}-{lang}"'
    answer = deliver(menu.bodies[lang], request.headers, cache=MENUS, vary=("Accept-Language",), etag=etag)
    return Response(content=answer.body, status_code=answer.status, media_type=JSON, headers=answer.headers)


async def submit_order(request: Request[Any, Any, Any], store_id: FromPath[str], token: FromPath[str]) -> Response[Any]:
    """Into the store's inbox for its box: 202 pending (never 201: only the box accepts an order). A repeated
    client_key with the same order gets the same answer as before: 200 with the order once the box accepted
    it, the box's refusal, or 202 still pending; with another order, 422 idempotency_key_reused. A box that
    is not connected: 503 restaurant_offline (join the store Wi-Fi)."""
    relay = _relay(request)
    row, data = await relay.phone_write(request, store_id, token, RelayedOrderIn)
    if not data.lines:
        raise RelayError("empty_order")
    lines = [
        {
            "item_id": line.item_id,
            "quantity": line.quantity,
            "variant_id": line.variant_id,
            "option_ids": list(line.option_ids),
            "note": _clean(line.note, n),
        }
        for n, line in enumerate(data.lines, start=1)
    ]
    order = {
        "lines": lines,
        "note": _clean(data.note, None),
        "diners": data.diners,
        "expected_total_minor": data.expected_total_minor,
    }
    body_hash = hashlib.sha256(_ENCODE.encode({"token": token, **order})).hexdigest()
    body = _ENCODE.encode({"client_key": data.client_key, **order, "lang": data.lang or request_lang(request)}).decode()
    message = await relay.db(relay.storage.message_by_key, store_id, data.client_key)
    if message is None:
        if not relay.online(row):
            log.info("relay.offline_refused", store=store_id, client_key=data.client_key)
            raise RelayError("restaurant_offline")
        relay.store_budget(store_id)
        stored, created = await relay.db(
            relay.storage.put_message, store_id, "order", data.client_key, token, body, body_hash, relay.clock()
        )
        if created:
            relay.inbox_wake.wake(store_id)
            log.info("relay.order", store=store_id, seq=stored.seq, client_key=data.client_key, lines=len(lines))
            return _pending(stored)
        message = stored
    if message.kind != "order" or message.body_hash != body_hash:
        raise RelayError("idempotency_key_reused")
    return await relay.answer_for(message, request_lang(request))


async def orders_options() -> Response[None]:
    return Response(content=None, status_code=204, headers={"Allow": "GET, OPTIONS, POST"})


async def visit_orders(request: Request[Any, Any, Any], store_id: FromPath[str], token: FromPath[str]) -> Response[Any]:
    """This table code's recent orders: `orders` the box accepted (their latest status, newest last), `pending`
    client keys the box has not answered yet, `refused` ones with the box's error."""
    relay = _relay(request)
    row = await relay.phone_store(request, store_id, token)
    await relay.check_table(request, row, token)
    view, _ = await relay.visit(store_id, token, request_lang(request))
    return _json(view)


async def events_stream(
    request: Request[Any, Any, Any], store_id: FromPath[str], token: FromPath[str]
) -> ServerSentEvent:
    """Server-sent events: first a `snapshot` (what GET /orders answers), then an `order` event for each of the
    box's events about this table code's orders ({event_id, type, client_key, order, error, at}; id = the
    event's id), and a `request` event (same shape, type `refused`) when the box refused a waiter or bill call
    (client_key = the key POST /requests answered). A reconnect with Last-Event-ID gets the events after that one
    instead of a snapshot.
    Comment lines keep the connection alive."""
    relay = _relay(request)
    row = await relay.phone_store(request, store_id, token)
    await relay.check_table(request, row, token)
    lang = request_lang(request)
    last = (request.headers.get("last-event-id") or "").strip()
    storage = relay.storage
    keepalive = relay.settings.keepalive_seconds

    async def stream() -> AsyncGenerator[ServerSentEventMessage, None]:
        since = relay.clock() - relay.settings.orders_hours * 3600
        yield ServerSentEventMessage(data=None, comment="tablebox relay", retry=3000)
        waiter = relay.events_wake.waiter(store_id)
        position = 0
        if last:
            found = await relay.db(storage.event_position, store_id, last)
            position = found or 0
        else:
            view, newest = await relay.visit(store_id, token, lang)
            position = newest.id if newest else 0
            yield ServerSentEventMessage(
                event="snapshot", data=msgspec.json.encode(view).decode(), id=newest.event_id if newest else None
            )
        loop = asyncio.get_running_loop()
        next_keepalive = loop.time() + keepalive
        read = True
        while not relay.stopping:
            events = await relay.db(storage.events_for_token, store_id, token, position, 100, since) if read else []
            for event in events:
                position = event.id
                payload = {
                    "event_id": event.event_id,
                    "type": event.type,
                    "client_key": event.client_key,
                    **msgspec.json.decode(event.body),
                    "at": event.at,
                }
                if isinstance(payload.get("order"), dict):
                    payload["order"] = for_phone(payload["order"], lang, relay.first_lang(store_id))
                kind = "request" if event.client_key.startswith("request:") else "order"
                yield ServerSentEventMessage(event=kind, data=msgspec.json.encode(payload).decode(), id=event.event_id)
            if len(events) == 100:
                continue
            now = loop.time()
            if now >= next_keepalive:
                yield ServerSentEventMessage(data=None, comment="keepalive")
                next_keepalive = now + keepalive
            woken = await _wait(waiter, relay.recheck(next_keepalive - now))
            waiter = relay.events_wake.waiter(store_id)
            read = woken or not relay.listening  # listening all along and not woken: no event came for this store

    return ServerSentEvent(stream(), headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def service_request(
    request: Request[Any, Any, Any], store_id: FromPath[str], token: FromPath[str]
) -> Response[Any]:
    """`waiter` or `bill` into the store's inbox (202), or 503 restaurant_offline."""
    relay = _relay(request)
    row, data = await relay.phone_write(request, store_id, token, ServiceRequestIn)
    if not relay.online(row):
        raise RelayError("restaurant_offline")
    relay.store_budget(store_id)
    key, message = await _put_request(relay, store_id, token, {"kind": data.kind, "lang": request_lang(request)})
    log.info("relay.request", store=store_id, seq=message.seq, kind=data.kind)
    return _json({"status": "pending", "kind": data.kind, "client_key": key}, 202)


async def _put_request(relay: Relay, store_id: str, token: str, call: dict[str, Any]) -> tuple[str, Message]:
    """A waiter or bill call into the store's inbox under a new `request:` key, and the box woken."""
    body = _ENCODE.encode(call).decode()
    key = "request:" + secrets.token_urlsafe(16)
    message, _ = await relay.db(
        relay.storage.put_message,
        store_id,
        "request",
        key,
        token,
        body,
        hashlib.sha256(body.encode()).hexdigest(),
        relay.clock(),
    )
    relay.inbox_wake.wake(store_id)
    return key, message


async def old_sticker_call(
    request: Request[Any, Any, Any], store_id: FromPath[str], token: FromPath[str]
) -> Response[Any]:
    """The waiter button on the page an old sticker opens (410 `table_rekeyed`), as the box's own endpoint of this
    name: `{"kind": "waiter"}` only. An old version of a known table's code (the relay's check of the pushed tables)
    goes into the store's inbox as a `request` marked `source: "old_sticker"`: the box checks the code's MAC, takes
    it as a waiter call for that table stored with source 'old_sticker' (staff bring the new code), and refuses a
    forged one. At most OLD_STICKER_CALLS_PER_MINUTE per table besides the address's, the code's and the store's
    limits. A current code makes an ordinary waiter call. 202 pending, or 503 restaurant_offline."""
    relay = _relay(request)
    raw = await request.body()
    row = await relay.phone_store(request, store_id, token)
    _strict(request, raw, OldStickerCallIn)
    table_id = await relay.old_or_current_table(request, row, token)
    relay.limit(relay.address_orders_limiter, _address(request), "address")
    relay.limit(relay.token_limiter, (store_id, token), "table")
    if not relay.online(row):
        raise RelayError("restaurant_offline")
    if table_id is not None:
        relay.limit(relay.old_sticker_limiter, (store_id, table_id), "table")
    relay.store_budget(store_id)
    call: dict[str, Any] = {"kind": "waiter", "lang": request_lang(request)}
    if table_id is not None:
        call["source"] = OLD_STICKER
    key, message = await _put_request(relay, store_id, token, call)
    log.info(
        "relay.old_sticker_call" if table_id is not None else "relay.request",
        store=store_id,
        seq=message.seq,
        kind="waiter",
        table_id=table_id,
    )
    return _json({"status": "pending", "kind": "waiter", "client_key": key}, 202)


# -- the diner's page --------------------------------------------------------------------------------------------
def _send(
    request: Request[Any, Any, Any], body: bytes, media_type: str, cache: CompressedBodies, **kw: Any
) -> Response[Any]:
    """`body` as the phone can take it (appliance.diner_page.delivery, as the box sends it): 304 when its copy is
    current, else encoded by its Accept-Encoding. litestar adds the charset to a text type itself."""
    answer = deliver(body, request.headers, cache=cache, **kw)
    if answer.status == 304:
        return Response(content=b"", status_code=304, headers=answer.headers)
    return Response(content=answer.body, media_type=media_type.partition(";")[0], headers=answer.headers)


async def diner_page(request: Request[Any, Any, Any], store_id: FromPath[str], token: FromPath[str]) -> Response[Any]:
    """The page a table's sticker opens when `public_base_url` is this store's address on the relay
    (https://RELAY/s/STORE_ID): the box's own page, whose script finds the API beside it, carrying what the relay
    knows (the store and the table as the box pushed them, whether the box is online, the menu in the diner's
    language) and sent as the box sends it. A code the relay can already tell is wrong (another store's, an old
    sticker), an unknown store or a store whose box never pushed a menu gets a one-sentence page in the diner's
    language instead."""
    relay = _relay(request)
    menu: PushedMenu | None = None
    try:
        row = await relay.phone_store(request, store_id, token)
        menu = await relay.menu_of(row)
        table = await relay.check_table(request, row, token)
    except RelayError as exc:
        # An old sticker's page names the store and the table, and its waiter button posts to old_sticker_call
        # beside it (the relay only says table_rekeyed for a code it tells is an old version of a pushed table).
        lang = request_page_lang(request, LANGS)  # the old-sticker page's switch sets the cookie too
        text = exc.message or message_for(exc.code, lang, exc.details, exc.code)
        name = menu.store.get("name") if menu is not None else None
        refused = refusal_page(
            exc.code,
            lang,
            text,
            store_name=name if isinstance(name, str) else None,
            table=exc.details.get("table"),
            call_url=old_sticker_call_url(token) if exc.code == "table_rekeyed" else None,
        )
        return Response(
            content=refused,
            status_code=exc.status,
            media_type=HTML.partition(";")[0],
            headers={"Cache-Control": "no-cache", **(exc.headers or {})},
        )
    offered = [lang for lang in menu.store.get("languages") or [] if lang in menu.bodies] or list(menu.bodies)
    lang = request_page_lang(request, offered)
    info = msgspec.json.encode(_table_info(relay, row, menu, table))
    pushed = menu.bodies.get(lang)  # None only for a push with no menu at all: the page asks the API then
    body = page(boot_json(lang, info, pushed), lang) if pushed is not None else page()
    return _send(request, body, HTML, PAGES, vary=("Accept-Language", "Cookie"))


async def _asset(name: str, request: Request[Any, Any, Any]) -> Response[Any]:
    found = asset(name)
    if found is None:
        raise RelayError("not_found")
    return _send(request, found.body, found.media_type, ASSETS, etag=found.etag)


async def static_file(request: Request[Any, Any, Any], store_id: FromPath[str], name: FromPath[str]) -> Response[Any]:
    """The page's CSS and JS (the same files the box serves), revalidated by ETag."""
    return await _asset(name, request)


async def service_worker(request: Request[Any, Any, Any], store_id: FromPath[str]) -> Response[Any]:
    """The page's service worker under the store's address, so its scope is that store's pages (/s/STORE/)."""
    return await _asset(SERVICE_WORKER, request)


async def healthz(request: Request[Any, Any, Any]) -> Response[Any]:
    """200 while the database answers, else 503."""
    relay = _relay(request)
    try:
        await relay.db(relay.storage.ping)
    except RelayError:
        return _json({"status": "failing", "version": __version__, "database": relay.storage.dialect}, 503)
    return _json({"status": "ok", "version": __version__, "database": relay.storage.dialect})


async def watchdog_pings(relay: Relay, notify: Notifier) -> None:
    """Under systemd with WatchdogSec=: every half interval, ask the database; ping WATCHDOG=1 when it answered,
    even with an error (a PostgreSQL that is down is not fixed by restarting the relay: phones get 503s and the log
    says why), and skip the ping when the call hangs (a stuck database thread) or the event loop is blocked, so
    systemd restarts the relay. Runs until cancelled."""
    interval = notify.watchdog_interval
    if interval is None:
        return
    while True:
        try:
            await asyncio.wait_for(relay.db(relay.storage.ping), timeout=interval)
        except TimeoutError:
            log.error("relay.watchdog_database_stuck", waited_seconds=interval)
            notify.status("database calls not returning; the watchdog will restart the relay")
        except RelayError:
            notify.watchdog()
            notify.status("database unavailable: phones are told to try again")
        else:
            notify.watchdog()
        await asyncio.sleep(interval)


def create_relay_app(
    settings: RelaySettings,
    storage: Storage,
    *,
    clock: Callable[[], float] = time.time,
    notifier: Notifier | None = None,
) -> Litestar:
    """The relay's app over an open `storage` (the caller opens and closes it). `clock` (Unix seconds) decides
    signature freshness, polls and online state; tests pass a fake one. Under systemd (`$NOTIFY_SOCKET`) it says
    READY=1 once started and feeds the watchdog while its database calls return."""
    relay = Relay(settings, storage, clock)
    notify = notifier if notifier is not None else Notifier.from_environ()

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        relay.executor = ThreadPoolExecutor(max_workers=settings.db_threads, thread_name_prefix="relay-db")
        relay.loop = asyncio.get_running_loop()
        relay.start_listening()
        purger = asyncio.create_task(relay.purge_forever(), name="relay-purge")
        notify.ready(status=f"serving ({storage.dialect})")
        pings = asyncio.create_task(watchdog_pings(relay, notify), name="relay-watchdog")
        try:
            yield
        finally:
            notify.stopping()
            for task in (purger, pings):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            relay.stop_waiting()
            relay.stop_listening()
            relay.executor.shutdown(wait=True, cancel_futures=True)

    box = Router(
        path="/v1/box",
        request_max_body_size=settings.max_box_body_bytes,
        tags=["box"],
        route_handlers=[
            get(
                "/inbox", operation_id="boxInbox", summary="Long-poll the store's inbox", responses=ANSWERS["boxInbox"]
            )(box_inbox),
            put("/menu", operation_id="boxPutMenu", summary="Push the menu snapshot", responses=ANSWERS["boxPutMenu"])(
                box_menu
            ),
            post(
                "/events",
                operation_id="boxPostEvents",
                summary="Push order events",
                status_code=200,
                responses=ANSWERS["boxPostEvents"],
            )(box_events),
            *BOX_IMAGE_ROUTES,
        ],
    )
    phone = Router(
        path="/s/{store_id:str}/api/v1/tables/{token:str}",
        request_max_body_size=settings.max_body_bytes,
        tags=["diner"],
        route_handlers=[
            get(
                "/",
                operation_id="getTable",
                summary="The store and whether it is online",
                responses=ANSWERS["getTable"],
            )(table_info),
            get(
                "/menu",
                operation_id="getMenu",
                summary="The menu in the diner's language",
                responses=ANSWERS["getMenu"],
            )(table_menu),
            # litestar 2 answers OPTIONS on a path with a GET and a POST naming only one of them (its issue #4169):
            # this path's own OPTIONS, registered before them
            route("/orders", http_method=["OPTIONS"], include_in_schema=False)(orders_options),
            post(
                "/orders",
                operation_id="submitOrder",
                summary="Send an order to the store's box",
                status_code=202,
                responses=ANSWERS["submitOrder"],
            )(submit_order),
            get(
                "/orders",
                operation_id="listVisitOrders",
                summary="This table code's recent orders",
                responses=ANSWERS["listVisitOrders"],
            )(visit_orders),
            get(
                "/events",
                operation_id="streamEvents",
                summary="Live order events (server-sent events)",
                media_type="text/event-stream",
                responses=ANSWERS["streamEvents"],
            )(events_stream),
            post(
                "/requests",
                operation_id="requestService",
                summary="Call the waiter or ask for the bill",
                status_code=202,
                responses=ANSWERS["requestService"],
            )(service_request),
            post(
                "/old-sticker-call",
                operation_id="oldStickerCall",
                summary="Call a waiter from an old sticker's page",
                status_code=202,
                responses=ANSWERS["oldStickerCall"],
            )(old_sticker_call),
        ],
    )
    page = Router(
        path="/s/{store_id:str}",
        tags=["diner"],
        include_in_schema=False,
        route_handlers=[
            get("/t/{token:str}", operation_id="dinerPage", summary="The diner's page")(diner_page),
            get("/static/{name:str}", operation_id="dinerPageFile", summary="The page's CSS and JS")(static_file),
            get("/sw.js", operation_id="dinerServiceWorker", summary="The page's service worker")(service_worker),
        ],
    )
    return Litestar(
        route_handlers=[
            box,
            phone,
            page,
            IMAGE_ROUTE,
            get("/healthz", operation_id="health", summary="Relay health", responses=ANSWERS["health"])(healthz),
        ],
        lifespan=[lifespan],
        state=State({"relay": relay}),
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Tablebox relay",
            version=__version__,
            path="/schema",
            description="Phones order through the relay; each restaurant's box long-polls it (signed requests).",
            render_plugins=[
                ExactJsonRenderPlugin(
                    path=["/", "/openapi.json"],
                    request_bodies=REQUEST_BODIES,
                    shapes=SHAPES,
                    parameters=parameters(MAX_WAIT_SECONDS),
                )
            ],
        ),
        logging_config=None,
        debug=False,
    )


class RelayServer:
    """uvicorn serving the relay; on SIGTERM/SIGINT the waiting long-polls answer at once and event streams end
    before uvicorn's graceful stop, instead of being cut after its timeout."""

    def __init__(self, settings: RelaySettings, storage: Storage) -> None:
        from appliance import serving

        self.app = create_relay_app(settings, storage)
        relay: Relay = self.app.state.relay
        # The trusted proxies carry every phone: they are not capped per address (appliance/serving.py).
        proxies = settings.forwarded_allow_ips.split(",")
        self.server = serving.build_server(
            self.app,
            host=settings.host,
            port=settings.port,
            limits=serving.Limits.from_settings(settings, exempt=proxies),
            proxy_headers=True,
            forwarded_allow_ips=settings.forwarded_allow_ips,
            on_exit=relay.stop_waiting,
        )

    def run(self) -> None:
        quiet_gc()
        self.server.run()
