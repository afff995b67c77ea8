"""A fake in-house ERP with a plain REST API (the kind a restaurant group runs behind a reverse proxy), for
the generic REST adapter: a real HTTP server on 127.0.0.1 with the FakeServer faults.

Two shapes, so both the adapter's defaults and its field mapping are exercised:

- `style="plain"`: `Authorization: Bearer <token>`; `GET /items` -> a bare list of
  `{"code", "name" (one string), "price": "38.00", "category", "active"}`; `GET /stock` -> `[{"code", "qty"}]`;
  `GET /orders/{order_ref}` -> 200 or 404; `POST /orders` -> 201 `{"id": "SO-00001", ...}`.
- `style="wrapped"`: served under `/erp/api/v1`, `X-Api-Key: <key>`; lists wrapped in `{"data": [...]}` and
  paged with `?page=N&per_page=M` (at most 50 a page, 20 by default); items `{"sku", "name_zh", "name_en",
  "sale_price": 38.5 (a JSON number), "group", "disabled": 0|1, "currency"}`; stock split over two
  warehouses as `{"sku", "warehouse", "on_hand": "12.000"}`; lookup `GET /orders?order_ref=X` -> `{"data": [...]}`;
  create -> 201 `{"data": {"order_id": 1001, ...}}`.

Behaviour common to both: a wrong or missing key is 401 with a JSON error body; an unknown or disabled item
code on an order line is 422 naming it; totals that do not add up are 422; an order takes its counted
stock. `Idempotency-Key` on a POST, when `honour_idempotency_key` (the default), is kept 24 h (by
`self.clock`): the same key and body replay the first answer, the same key with another body is 422, the
same key while the first request is still being processed is 409. With `honour_idempotency_key=False` the
header is ignored, as many in-house APIs do: a retried POST makes a second document. The adapter's lookup
before create still keeps an order single when the first POST was committed before the retry looks
(commit then drop, a 5xx after commit, a crash). What it cannot cover there: a POST the ERP is *still
processing* when the client gives up, whose retry's lookup runs before that commit lands; both then
create. With the key honoured, that retry gets 409 "in progress" instead and nothing is duplicated.
`unique_order_ref=True` makes a second order with the same order_ref a 409 (some ERPs put a unique index
on it).

Authentication (`auth=`, by default bearer for "plain" and the X-Api-Key header for "wrapped"): "bearer",
"basic" (`username`/`secret`), "header", "hmac" (the signed-request scheme of sync/adapters/rest.py, verified here
independently from the README's description: a wrong signature, a body that does not match its hash, a timestamp
more than `hmac_window` seconds off `self.clock`, a nonce seen before are each 401 with their reason), "none".
`tls=(cert, key, client_ca)` serves HTTPS; with a client CA a client without a certificate it signed is refused
in the TLS handshake (mutual TLS), as nginx's `ssl_verify_client on` does.

Paging (`paging=`, by default none for "plain", page/per_page for "wrapped"): "page", "offset" (`offset`/`limit`),
"cursor" (`cursor`/`limit`, the next cursor in `meta.next_cursor`), "link" (`page`/`per_page` with a `Link: <...>;
rel="next"` header, as GitHub's REST API pages). `rate_limit = (limit, window)` answers the request over the limit
with frappe's plain-text 429 and Retry-After.

Status changes: `POST /orders/{order_ref}/status` sets the status; with the order as it now stands in the body
("order", the shape a create takes: the adapter sends it for a cancel or a void, Capability.AMENDS) the fake amends
its document to it (lines and totals), as an ERP amending its order would; `cancelled(ref)` reads the last status.

Payments and refunds: `POST /payments` (PUT /payments/{payment_ref} too), looked up by `GET /payments/{ref}`
("plain") or `GET /payments?payment_ref=` ("wrapped"); a payment names orders the ERP has, a refund the payment it
gives money back from and at most what is left of it. `body="custom"` takes another body shape (what a shop's own
ERP wants, reached with templates): orders `{"order": {"ref", "table_no", "items": [{"sku", "qty",
"price_minor"}], "total_minor", "currency"}}`, payments `{"payment": {"ref", "type", "orders", "method",
"amount_minor", "refund_of", "reason"}}`; the default body is then refused with 422, as such an ERP would.

`hold_orders()` / `release_orders()` stop order creation mid-request (after the request is in and its
key marked in flight, before the commit) so tests can make a client give up deterministically;
`broken_paths[path] = status` answers that status on a path (after the prefix) to break one endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode

from appliance.domain.money import Currency
from tests.fakes.server import FakeServer, Reply, Request

KEY_TTL_SECONDS = 24 * 3600
WRAPPED_PREFIX = "/erp/api/v1"
MAX_PAGE = 50
DEFAULT_PAGE = 20
AUTHS = ("bearer", "basic", "header", "hmac", "none")
PAGINGS = ("none", "page", "offset", "cursor", "link")


# The settings (templates) that make the adapter speak the body="custom" shape: what an integrator writes in
# [sync.NAME.templates] for a shop's ERP with its own field names.
CUSTOM_TEMPLATES: dict[str, Any] = {
    "order": {
        "order": {
            "ref": "${order_ref}",
            "table_no": "Table ${table}",
            "currency": "${currency}",
            "items": {
                "$each": "lines",
                "$as": "line",
                "$do": {"sku": "${line.code}", "qty": "${line.quantity}", "price_minor": "${line.unit_price_minor}"},
            },
            "total_minor": "${total_minor}",
            "source": "tablebox",
        }
    },
    "status": {
        "state": "${status}",
        "why": "${reason}",
        "event": "${event}",
        "line_no": "${line_no}",
        "order": "${order_body}",
    },
    "payment": {
        "payment": {
            "ref": "${payment_ref}",
            "type": "payment",
            "orders": "${order_refs}",
            "method": "${method}",
            "amount_minor": "${amount_minor}",
        }
    },
    "refund": {
        "payment": {
            "ref": "${payment_ref}",
            "type": "refund",
            "orders": "${order_refs}",
            "method": "${method}",
            "amount_minor": "${amount_minor}",
            "refund_of": "${refund_of}",
            "reason": "${reason}",
        }
    },
}


def _major(amount_minor: int, exponent: int) -> str:
    whole, frac = divmod(amount_minor, 10**exponent)
    return f"{whole}.{frac:0{exponent}d}" if exponent else str(whole)


class FakeRestERP(FakeServer):
    def __init__(
        self,
        *,
        style: str = "plain",
        honour_idempotency_key: bool = True,
        unique_order_ref: bool = False,
        currency: str = "CNY",
        secret: str = "s3cr3t-rest-key-8c1f",
        auth: str | None = None,
        username: str = "tablebox-api",
        paging: str | None = None,
        body: str = "tablebox",
        tls: tuple[Path, Path, Path | None] | None = None,
        idempotency_header: str = "Idempotency-Key",
        hmac_key_id: str = "tablebox",
        hmac_window: int = 300,
    ) -> None:
        super().__init__()
        if style not in ("plain", "wrapped"):
            raise ValueError(style)
        self.auth = auth or ("bearer" if style == "plain" else "header")
        self.paging = paging or ("none" if style == "plain" else "page")
        if self.auth not in AUTHS or self.paging not in PAGINGS or body not in ("tablebox", "custom"):
            raise ValueError((self.auth, self.paging, body))
        if self.paging in ("offset", "cursor") and style != "wrapped":
            raise ValueError("offset and cursor paging answer with a wrapper: style='wrapped'")
        self.username = username
        self.body_shape = body
        self.tls = tls
        self.idempotency_header = idempotency_header
        self.hmac_key_id = hmac_key_id
        self.hmac_window = hmac_window
        self.nonces: dict[str, float] = {}
        self.ignore_cursor = False  # a buggy ERP answering the first page whatever cursor it is given
        self.link_base = ""  # a test sets another server's address here: a Link header that leads off the ERP
        self._target = threading.local()  # this handler thread's request target, as on the request line
        self.auth_failures: list[str] = []  # why each refused request was refused
        self.rate_limit: tuple[int, int] | None = None  # (requests, window seconds), frappe's site-wide limiter
        self._window: tuple[int, int] = (-1, 0)  # (window number, requests counted in it)
        self.style = style
        self.honour_idempotency_key = honour_idempotency_key
        self.unique_order_ref = unique_order_ref
        self.currency = Currency.of(currency)
        self.secret = secret
        self.prefix = WRAPPED_PREFIX if style == "wrapped" else ""
        self.items: dict[str, dict[str, Any]] = {}  # code -> {names, price_minor, category, active}
        self.stock: dict[str, int] = {}
        self.orders: dict[str, dict[str, Any]] = {}  # server id -> the stored document
        self.payment_docs: dict[str, dict[str, Any]] = {}  # server id -> {payment_ref, kind, method, amount_minor...}
        self.statuses: list[tuple[str, str, str | None]] = []
        self.keys: dict[str, tuple[str, Reply, float]] = {}
        self.in_flight: set[str] = set()
        self.seen: list[tuple[str, str, dict[str, list[str]], str | None]] = []  # method, path, query, key
        self.broken_paths: dict[str, int] = {}
        self.clock: Callable[[], float] = time.time
        self._next_id = 1
        self._gate = threading.Event()
        self._gate.set()
        self._committed = threading.Condition(self.lock)

    # -- what tests set and read ----------------------------------------------------------------------------
    def add_item(
        self, code: str, names: dict[str, str], price_minor: int, stock: int | None = None, category: str | None = None
    ) -> None:
        with self.lock:
            self.items[code] = {"names": dict(names), "price_minor": price_minor, "category": category, "active": True}
            if stock is not None:
                self.stock[code] = stock

    def set_price(self, code: str, price_minor: int) -> None:
        with self.lock:
            self.items[code]["price_minor"] = price_minor

    def set_stock(self, code: str, qty: int) -> None:
        with self.lock:
            self.stock[code] = qty

    def set_names(self, code: str, names: dict[str, str]) -> None:
        with self.lock:
            self.items[code]["names"] = dict(names)

    def deactivate(self, code: str) -> None:
        with self.lock:
            self.items[code]["active"] = False

    def remove_item(self, code: str) -> None:
        with self.lock:
            self.items.pop(code, None)
            self.stock.pop(code, None)

    def order_counts(self) -> dict[str, int]:
        with self.lock:
            return dict(Counter(doc["order_ref"] for doc in self.orders.values()))

    def order_total_minor(self, order_ref: str) -> int:
        with self.lock:
            doc = next(d for d in self.orders.values() if d["order_ref"] == order_ref)
            return int(Decimal(doc["total"]).scaleb(self.currency.exponent))

    def documents(self, order_ref: str) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(d) for d in self.orders.values() if d["order_ref"] == order_ref]

    def hold_orders(self) -> None:
        self._gate.clear()

    def release_orders(self) -> None:
        self._gate.set()

    def wait_for_orders(self, count: int, timeout: float = 10.0) -> bool:
        with self._committed:
            return self._committed.wait_for(lambda: len(self.orders) >= count, timeout)

    def requests_to(self, path: str, method: str = "GET") -> list[dict[str, list[str]]]:
        with self.lock:
            return [q for m, p, q, _ in self.seen if m == method and p == path]

    def payments(self) -> dict[str, list[tuple[str, str, int]]]:
        """Our payment_ref -> [(kind, method, amount_minor)], one entry per document the ERP holds for it (exactly
        once: one entry each). A refund is listed under its own ref, kind "refund"."""
        with self.lock:
            found: dict[str, list[tuple[str, str, int]]] = {}
            for doc in self.payment_docs.values():
                found.setdefault(doc["payment_ref"], []).append((doc["kind"], doc["method"], doc["amount_minor"]))
            return found

    def cancelled(self, order_ref: str) -> bool:
        """Whether the ERP holds the order as cancelled (its last status push said so)."""
        with self.lock:
            docs = [d for d in self.orders.values() if d["order_ref"] == order_ref]
            return bool(docs) and all(d["erp_status"] == "cancelled" for d in docs)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def target_config(self) -> dict[str, Any]:
        """The [sync.NAME] settings that point the REST adapter at this fake, credentials included (with tls: the
        test adds ca_file and the client certificate)."""
        common: dict[str, Any] = {"kind": "rest", "timeout_seconds": 5, "currency": self.currency.code}
        credentials: dict[str, Any] = {
            "bearer": {"auth": "bearer", "token": self.secret},
            "basic": {"auth": "basic", "username": self.username, "password": self.secret},
            "header": {"auth": "header", "api_key": self.secret, "api_key_header": "X-Api-Key"},
            "hmac": {"auth": "hmac", "hmac_secret": self.secret, "hmac_key_id": self.hmac_key_id},
            "none": {"auth": "none"},
        }[self.auth]
        if self.style == "plain" and self.auth == "bearer":
            credentials = {"auth_header": f"Authorization: Bearer {self.secret}"}  # the older way to say it
        if self.idempotency_header != "Idempotency-Key":
            common["idempotency_header"] = self.idempotency_header
        if self.body_shape == "custom":
            common["templates"] = CUSTOM_TEMPLATES
        paging = {
            "none": {},
            "page": {"page_param": "page", "size_param": "per_page", "page_size": MAX_PAGE},
            "offset": {"paging": "offset", "page_size": MAX_PAGE, "total_key": "total"},
            "cursor": {
                "paging": "cursor",
                "size_param": "limit",
                "page_size": MAX_PAGE,
                "next_cursor_key": "meta.next_cursor",
            },
            "link": {"paging": "link", "size_param": "per_page", "page_size": MAX_PAGE},
        }[self.paging]
        if self.style == "plain":
            return {**common, **credentials, **paging, "base_url": self.url}
        return {
            **common,
            **credentials,
            **paging,
            "base_url": self.url + WRAPPED_PREFIX,
            "items_key": "data",
            "order_lookup_path": "/orders?order_ref={order_ref}",
            "payment_lookup_path": "/payments?payment_ref={payment_ref}",
            "order_id_field": "order_id",
            "order_item_key": "data",
            "fields": {
                "code": "sku",
                "name": {"zh": "name_zh", "en": "name_en"},
                "price": "sale_price",
                "category": "group",
                "active": "!disabled",
                "currency": "currency",
                "stock_code": "sku",
                "stock_qty": "on_hand",
            },
        }

    # -- TLS -------------------------------------------------------------------------------------------------
    def _serve(self, port: int) -> None:
        super()._serve(port)
        if self._httpd is None:
            return
        # A signature covers the request target exactly as sent (path and query, percent-encoded): keep it from the
        # request line for _unsigned (FakeServer's Request carries the path and the parsed query only).
        fake, handler = self, self._httpd.RequestHandlerClass

        class KeepsTarget(handler):  # type: ignore[valid-type,misc]
            def _any(self) -> None:
                fake._target.value = self.path
                super()._any()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self._httpd.RequestHandlerClass = KeepsTarget
        if self.tls is None:
            return
        cert, key, client_ca = self.tls
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        if client_ca is not None:
            # nginx `ssl_verify_client on` + `ssl_client_certificate`: no certificate from that CA, no connection.
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(client_ca)
        # The listening socket is wrapped before any client connects (start() returns after this); the handshake
        # runs in accept(), and a refused one is an OSError socketserver drops.
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)

    # -- the API --------------------------------------------------------------------------------------------
    def handle(self, request: Request) -> Reply:
        if not request.path.startswith(self.prefix):
            return self._error(404, "not_found", f"no route {request.method} {request.path}")
        path = request.path[len(self.prefix) :] or "/"
        key = request.headers.get(self.idempotency_header)
        with self.lock:
            self.seen.append((request.method, path, request.query, key))
            broken = self.broken_paths.get(path)
        if broken is not None:
            return Reply(broken, b"<html><body><h1>%d</h1>nginx</body></html>" % broken, {"Content-Type": "text/html"})
        limited = self._rate_limited()
        if limited is not None:
            return limited
        refusal = self._unauthorised(request)
        if refusal is not None:
            with self.lock:
                self.auth_failures.append(refusal)
            reply = self._error(401, "unauthorized", refusal)
            reply.headers["WWW-Authenticate"] = {"basic": 'Basic realm="erp"', "hmac": "TABLEBOX-HMAC-SHA256"}.get(
                self.auth, "Bearer" if self.style == "plain" else "ApiKey"
            )
            return reply
        if request.method in ("POST", "PUT") and key and self.honour_idempotency_key:
            return self._idempotent(request, path, key)
        return self._route(request, path)

    def _rate_limited(self) -> Reply | None:
        """frappe/frappe frappe/rate_limiter.py RateLimiter: one counter per fixed window (window_number =
        now // window), checked before authentication (frappe/app.py calls rate_limiter.apply() before
        validate_auth); over the limit: Response(_("Too Many Requests"), status=429), plain text, with headers()'s
        X-RateLimit-* and Retry-After = the seconds left in the window. (frappe counts request time in
        microseconds; the fake counts requests.)"""
        if self.rate_limit is None:
            return None
        limit, window = self.rate_limit
        with self.lock:
            number, spent = divmod(int(self.clock()), window)
            counted = self._window[1] if self._window[0] == number else 0
            self._window = (number, counted + 1)
            if counted < limit:
                return None
        reset = window - spent
        return Reply(
            429,
            b"Too Many Requests",
            {
                "Content-Type": "text/plain; charset=utf-8",
                "X-RateLimit-Reset": str(reset),
                "X-RateLimit-Limit": str(limit),
                "X-RateLimit-Remaining": "0",
                "Retry-After": str(reset),
            },
        )

    def _unauthorised(self, request: Request) -> str | None:
        """Why the request is refused (its 401 message), or None when its credentials are good."""
        headers = {name.lower(): value for name, value in request.headers.items()}  # HTTP names are case-blind
        if self.auth == "none":
            return None
        if self.auth == "bearer":
            ok = headers.get("authorization") == f"Bearer {self.secret}"
            return None if ok else "Invalid or expired API token"
        if self.auth == "header":
            return None if headers.get("x-api-key") == self.secret else "Invalid API key"
        if self.auth == "basic":
            expected = base64.b64encode(f"{self.username}:{self.secret}".encode()).decode()
            return None if headers.get("authorization") == f"Basic {expected}" else "Invalid username or password"
        return self._unsigned(request, headers)

    def _unsigned(self, request: Request, h: dict[str, str]) -> str | None:
        """The signed-request scheme as README's "Signed requests" describes it, checked independently of the
        adapter's code: the lines signed, the body's hash, the window and the nonce."""
        key_id, stamp, nonce = h.get("x-tablebox-key"), h.get("x-tablebox-timestamp"), h.get("x-tablebox-nonce")
        signature = h.get("x-tablebox-signature")
        if not (key_id and stamp and nonce and signature):
            return "missing signature headers"
        if key_id != self.hmac_key_id:
            return f"unknown key id {key_id}"
        body_hash = hashlib.sha256(request.body).hexdigest()
        if h.get("x-tablebox-content-sha256") != body_hash:
            return "body does not match X-Tablebox-Content-SHA256"
        target = getattr(self._target, "value", request.path)
        signed = "\n".join(["TABLEBOX-HMAC-SHA256", key_id, stamp, nonce, request.method, target, body_hash])
        expected = hmac.new(self.secret.encode(), signed.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return "signature does not match"
        now = self.clock()
        if not stamp.isdigit() or abs(now - int(stamp)) > self.hmac_window:
            return f"timestamp outside the allowed window of {self.hmac_window} s"
        with self.lock:
            self.nonces = {n: t for n, t in self.nonces.items() if now - t <= self.hmac_window}
            if nonce in self.nonces:
                return "nonce already used (replayed request)"
            self.nonces[nonce] = now
        return None

    def _idempotent(self, request: Request, path: str, key: str) -> Reply:
        """The IETF httpapi working group's draft-ietf-httpapi-idempotency-key-header (-06, "Error Scenarios"): a
        key reused with another payload is 422, a retry while the first request is still being processed is 409; a
        repeat of a finished one gets the first answer (kept 24 h here, as Stripe keeps its keys)."""
        fingerprint = hashlib.sha256(f"{path}\n".encode() + request.body).hexdigest()
        with self.lock:
            kept = self.keys.get(key)
            if kept is not None and self.clock() - kept[2] > KEY_TTL_SECONDS:
                del self.keys[key]
                kept = None
            if kept is not None:
                if kept[0] != fingerprint:
                    return self._error(
                        422, "idempotency_key_reused", "Idempotency-Key was already used with a different request"
                    )
                first = kept[1]
                return Reply(first.status, first.body, {**first.headers, "Idempotent-Replayed": "true"})
            if key in self.in_flight:
                return self._error(409, "in_progress", "a request with this Idempotency-Key is still being processed")
            self.in_flight.add(key)
        try:
            reply = self._route(request, path)
        finally:
            with self.lock:
                self.in_flight.discard(key)
        if 200 <= reply.status < 300:
            with self.lock:
                self.keys[key] = (fingerprint, reply, self.clock())
        return reply

    def _route(self, request: Request, path: str) -> Reply:
        method = request.method
        if method == "GET" and path == "/items":
            return self._list(request, [self._item_view(code, item) for code, item in sorted(self.items.items())])
        if method == "GET" and path == "/stock":
            return self._list(request, self._stock_rows())
        if method == "POST" and path == "/orders":
            return self._create_order(request)
        if method == "GET" and path == "/orders" and self.style == "wrapped":
            ref = (request.query.get("order_ref") or [""])[0]
            with self.lock:
                found = [self._order_view(i, d) for i, d in self.orders.items() if d["order_ref"] == ref]
            return Reply(200, {"data": found})
        if method == "GET" and path == "/payments" and self.style == "wrapped":
            ref = (request.query.get("payment_ref") or [""])[0]
            with self.lock:
                found = [{"order_id": i, **d} for i, d in self.payment_docs.items() if d["payment_ref"] == ref]
            return Reply(200, {"data": found})
        if method == "POST" and path == "/payments":
            return self._create_payment(request, None)
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if len(parts) == 2 and parts[0] == "orders" and method == "GET" and self.style == "plain":
            with self.lock:
                found = [self._order_view(i, d) for i, d in self.orders.items() if d["order_ref"] == parts[1]]
            return Reply(200, found[0]) if found else self._error(404, "not_found", f"order {parts[1]} not found")
        if len(parts) == 2 and parts[0] == "orders" and method == "PUT":
            return self._create_order(request, parts[1])
        if len(parts) == 3 and parts[0] == "orders" and parts[2] == "status" and method in ("POST", "PUT", "PATCH"):
            return self._set_status(parts[1], request)
        if len(parts) == 2 and parts[0] == "payments" and method == "GET" and self.style == "plain":
            with self.lock:
                found = [{"id": i, **d} for i, d in self.payment_docs.items() if d["payment_ref"] == parts[1]]
            return Reply(200, found[0]) if found else self._error(404, "not_found", f"payment {parts[1]} not found")
        if len(parts) == 2 and parts[0] == "payments" and method == "PUT":
            return self._create_payment(request, parts[1])
        return self._error(404, "not_found", f"no route {method} {path}")

    def _list(self, request: Request, rows: list[dict[str, Any]]) -> Reply:
        """One page of `rows` as `self.paging` says; a bad paging parameter is 400."""
        query = request.query
        try:
            if self.paging == "none":
                return Reply(200, rows if self.style == "plain" else {"data": rows})
            if self.paging in ("page", "link"):
                page = int((query.get("page") or ["1"])[0])
                size = min(int((query.get("per_page") or [str(DEFAULT_PAGE)])[0]), MAX_PAGE)
                start = (page - 1) * size
            elif self.paging == "offset":
                start = int((query.get("offset") or ["0"])[0])
                size = min(int((query.get("limit") or [str(DEFAULT_PAGE)])[0]), MAX_PAGE)
                page = 1
            else:
                cursor = "" if self.ignore_cursor else (query.get("cursor") or [""])[0]
                start = int(base64.urlsafe_b64decode(cursor.encode()).decode().removeprefix("after:")) if cursor else 0
                size = min(int((query.get("limit") or [str(DEFAULT_PAGE)])[0]), MAX_PAGE)
                page = 1
        except ValueError:
            return self._error(400, "bad_request", "bad paging parameter")
        if page < 1 or size < 1 or start < 0:
            return self._error(400, "bad_request", "paging starts at page 1 / offset 0 with a size of at least 1")
        chunk = rows[start : start + size]
        more = start + size < len(rows)
        if self.paging == "link":
            # GitHub's REST API ("Using pagination in the REST API"): Link: <url>; rel="next", <url>; rel="last".
            headers = {}
            if more:
                base = f"{self.url}{self.prefix}{request.path[len(self.prefix) :]}"
                params = {k: v[0] for k, v in query.items()}
                nxt = urlencode({**params, "page": page + 1, "per_page": size})
                last = urlencode({**params, "page": -(-len(rows) // size), "per_page": size})
                headers["Link"] = f'<{self.link_base or base}?{nxt}>; rel="next", <{base}?{last}>; rel="last"'
            return Reply(200, chunk if self.style == "plain" else {"data": chunk}, headers)
        if self.paging == "cursor":
            next_cursor = base64.urlsafe_b64encode(f"after:{start + size}".encode()).decode() if more else None
            return Reply(200, {"data": chunk, "meta": {"next_cursor": next_cursor}})
        if self.paging == "offset":
            return Reply(200, {"data": chunk, "offset": start, "limit": size, "total": len(rows)})
        return Reply(200, {"data": chunk, "page": page, "per_page": size, "total": len(rows)})

    def _item_view(self, code: str, item: dict[str, Any]) -> dict[str, Any]:
        exp = self.currency.exponent
        names = item["names"]
        if self.style == "plain":
            return {
                "code": code,
                "name": next(iter(names.values()), code),
                "price": _major(item["price_minor"], exp),
                "category": item["category"],
                "active": item["active"],
            }
        # A JSON number such as 38.5 or 19.99, as such ERPs send (the float's shortest text is exact here).
        return {
            "sku": code,
            "name_zh": names.get("zh"),
            "name_en": names.get("en"),
            "sale_price": float(Decimal(item["price_minor"]).scaleb(-exp)),
            "group": item["category"],
            "disabled": 0 if item["active"] else 1,
            "currency": self.currency.code,
        }

    def _stock_rows(self) -> list[dict[str, Any]]:
        with self.lock:
            stock = sorted(self.stock.items())
        if self.style == "plain":
            return [{"code": code, "qty": qty} for code, qty in stock]
        rows = []
        for code, qty in stock:
            main = qty // 2
            rows.append({"sku": code, "warehouse": "Main", "on_hand": f"{main}.000"})
            rows.append({"sku": code, "warehouse": "Store", "on_hand": f"{qty - main}.000"})
        return rows

    def _order_view(self, server_id: str, doc: dict[str, Any]) -> dict[str, Any]:
        if self.style == "plain":
            return {"id": server_id, **doc}
        return {"order_id": int(server_id), **doc}

    def _create_order(self, request: Request, ref_in_path: str | None = None) -> Reply:
        """POST /orders, or PUT /orders/{order_ref} (create at the order's own URL: a second PUT answers 200 with
        the document already there)."""
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            return self._error(400, "bad_request", "body is not JSON")
        if self.body_shape == "custom":
            body, problem = self._from_custom_order(body)
        else:
            problem = self._check_order(body)
        if problem is not None:
            return problem
        if ref_in_path is not None and ref_in_path != body["order_ref"]:
            return self._error(422, "invalid", f"order_ref {body['order_ref']} is not the URL's {ref_in_path}")
        # The request is in (and its key in flight); a held gate is the ERP still working on it.
        self._gate.wait(30)
        with self.lock:
            there = [(i, d) for i, d in self.orders.items() if d["order_ref"] == body["order_ref"]]
            if ref_in_path is not None and there:
                view = self._order_view(*there[0])
                return Reply(200, view if self.style == "plain" else {"data": view})
            if self.unique_order_ref and there:
                return self._error(409, "duplicate", f"order_ref {body['order_ref']} already exists")
            number = self._next_id
            self._next_id += 1
            server_id = f"SO-{number:05d}" if self.style == "plain" else str(1000 + number)
            doc = {**body, "erp_status": "open", "received_at": self.clock()}
            self.orders[server_id] = doc
            for line in body["lines"]:
                if line.get("code") in self.stock:
                    self.stock[line["code"]] -= line["quantity"]
            self._committed.notify_all()
            view = self._order_view(server_id, doc)
        return Reply(201, view if self.style == "plain" else {"data": view})

    def _from_custom_order(self, body: Any) -> tuple[dict[str, Any], Reply | None]:
        """body="custom": {"order": {"ref", "table_no", "currency", "items": [{"sku", "qty", "price_minor"}],
        "total_minor"}} checked and kept in the shape the query helpers read."""
        order = body.get("order") if isinstance(body, dict) else None
        if not isinstance(order, dict) or not isinstance(order.get("ref"), str) or not order["ref"]:
            return {}, self._error(422, "invalid", "order.ref: required")
        items = order.get("items")
        if not isinstance(items, list) or not items:
            return {}, self._error(422, "invalid", "order.items: at least one item is required")
        exp = self.currency.exponent
        lines = []
        for n, item in enumerate(items, start=1):
            qty, price = item.get("qty"), item.get("price_minor")
            if not isinstance(qty, int) or isinstance(qty, bool) or qty < 1 or not isinstance(price, int):
                return {}, self._error(422, "invalid", f"order.items[{n}]: qty and price_minor must be integers")
            with self.lock:
                known = self.items.get(item.get("sku") or "")
            if known is None or not known["active"]:
                return {}, self._error(422, "unknown_item", f"Unknown item code '{item.get('sku')}' on line {n}")
            lines.append(
                {
                    "code": item["sku"],
                    "quantity": qty,
                    "unit_price": _major(price, exp),
                    "line_total": _major(price * qty, exp),
                }
            )
        total = order.get("total_minor")
        if not isinstance(total, int) or total < sum(item["price_minor"] * item["qty"] for item in items):
            return {}, self._error(422, "invalid", "order.total_minor: less than its items")
        kept = {
            "order_ref": order["ref"],
            "table": order.get("table_no"),
            "currency": order.get("currency"),
            "lines": lines,
            "total": _major(total, exp),
            "custom": order,
        }
        return kept, None

    def _check_order(self, body: Any) -> Reply | None:
        if not isinstance(body, dict) or not isinstance(body.get("order_ref"), str) or not body["order_ref"]:
            return self._error(422, "invalid", "order_ref: required")
        lines = body.get("lines")
        if not isinstance(lines, list) or not lines:
            return self._error(422, "invalid", "lines: at least one line is required")
        try:
            line_sum = Decimal(0)
            for n, line in enumerate(lines, start=1):
                if not isinstance(line.get("quantity"), int) or line["quantity"] < 1:
                    return self._error(422, "invalid", f"lines[{n}].quantity: must be a positive integer")
                code = line.get("code")
                if code is not None:
                    with self.lock:
                        item = self.items.get(code)
                    if item is None or not item["active"]:
                        return self._error(422, "unknown_item", f"Unknown item code '{code}' on line {n}")
                if Decimal(line["unit_price"]) * line["quantity"] != Decimal(line["line_total"]):
                    return self._error(422, "invalid", f"lines[{n}].line_total: does not match quantity x unit_price")
                line_sum += Decimal(line["line_total"])
            if line_sum != Decimal(body["subtotal"]) or Decimal(body["subtotal"]) + Decimal(
                body["service_charge"]
            ) != Decimal(body["total"]):
                return self._error(422, "invalid", "total: does not add up")
        except (InvalidOperation, KeyError, TypeError, AttributeError) as exc:
            return self._error(422, "invalid", f"amounts: {type(exc).__name__} {exc}")
        return None

    def _set_status(self, order_ref: str, request: Request) -> Reply:
        """A status change; with the order as it stands now in the body ("order", as a create takes it), the ERP
        amends its document to it (lines and totals after a void); "line_voided" is an amendment, not a status. A
        void that left no line (no order body, a line number) leaves the document at zero."""
        body = request.json() or {}
        custom = self.body_shape == "custom"
        status, reason = (body.get("state"), body.get("why")) if custom else (body.get("status"), body.get("reason"))
        if not isinstance(status, str) or not status:
            return self._error(422, "invalid", "state: required" if custom else "status: required")
        amended: dict[str, Any] | None = None
        given = body.get("order")
        if isinstance(given, dict):
            if custom:
                amended, problem = self._from_custom_order(given)
            else:
                amended, problem = given, self._check_order(given)
            if problem is not None:
                return problem
            if amended["order_ref"] != order_ref:
                return self._error(422, "invalid", f"order {amended['order_ref']} is not the URL's {order_ref}")
        elif given is None and body.get("event") == "line_voided" and body.get("line_no") is not None:
            amended = {
                "lines": [],
                "subtotal": _major(0, self.currency.exponent),
                "total": _major(0, self.currency.exponent),
            }
        with self.lock:
            found = [d for d in self.orders.values() if d["order_ref"] == order_ref]
            if not found:
                return self._error(404, "not_found", f"order {order_ref} not found")
            for doc in found:
                if status != "line_voided":
                    doc["erp_status"] = status
                if amended is not None:
                    doc.update(
                        {
                            k: v
                            for k, v in amended.items()
                            if k in ("lines", "subtotal", "service_charge", "tax", "total", "custom")
                        }
                    )
            self.statuses.append((order_ref, status, reason))
        return Reply(200, {"order_ref": order_ref, "status": status})

    def _create_payment(self, request: Request, ref_in_path: str | None) -> Reply:
        """A payment or a refund: it names orders the ERP has; a refund names the payment it gives money back from
        and takes at most what is left of it (as an ERP's own return against a payment does)."""
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            return self._error(400, "bad_request", "body is not JSON")
        doc, problem = self._payment_doc(body)
        if problem is not None:
            return problem
        if ref_in_path is not None and ref_in_path != doc["payment_ref"]:
            return self._error(422, "invalid", f"payment_ref {doc['payment_ref']} is not the URL's {ref_in_path}")
        with self.lock:
            there = [(i, d) for i, d in self.payment_docs.items() if d["payment_ref"] == doc["payment_ref"]]
            if ref_in_path is not None and there:
                return Reply(200, self._payment_view(*there[0]))
            known = {d["order_ref"] for d in self.orders.values()}
            unknown = [ref for ref in doc["order_refs"] if ref not in known]
            if unknown:
                return self._error(422, "not_found", f"order {unknown[0]} not found")
            if doc["kind"] == "refund":
                paid = [d for d in self.payment_docs.values() if d["payment_ref"] == doc["refund_of"]]
                if not paid or paid[0]["kind"] != "payment":
                    return self._error(422, "not_found", f"payment {doc['refund_of']} to refund not found")
                refunded = sum(
                    d["amount_minor"] for d in self.payment_docs.values() if d.get("refund_of") == doc["refund_of"]
                )
                if refunded + doc["amount_minor"] > paid[0]["amount_minor"]:
                    return self._error(422, "invalid", f"refund exceeds what is left of payment {doc['refund_of']}")
            payment_id = f"PAY-{len(self.payment_docs) + 1:04d}"
            self.payment_docs[payment_id] = doc
            view = self._payment_view(payment_id, doc)
        return Reply(201, view)

    def _payment_view(self, payment_id: str, doc: dict[str, Any]) -> dict[str, Any]:
        return {"id": payment_id, **doc} if self.style == "plain" else {"data": {"order_id": payment_id, **doc}}

    def _payment_doc(self, body: Any) -> tuple[dict[str, Any], Reply | None]:
        """The body (either shape) as {payment_ref, kind, order_refs, method, amount_minor, refund_of, reason}."""
        exp = self.currency.exponent
        try:
            if self.body_shape == "custom":
                given = body["payment"]
                doc = {
                    "payment_ref": given["ref"],
                    "kind": given["type"],
                    "order_refs": list(given["orders"]),
                    "method": given["method"],
                    "amount_minor": given["amount_minor"],
                    "refund_of": given.get("refund_of"),
                    "reason": given.get("reason") or "",
                }
            else:
                doc = {
                    "payment_ref": body["payment_ref"],
                    "kind": body.get("kind", "payment"),
                    "order_refs": list(body["order_refs"]),
                    "method": body["method"],
                    "amount_minor": int(Decimal(body["amount"]).scaleb(exp)),
                    "refund_of": body.get("refund_of"),
                    "reason": body.get("reason") or "",
                }
        except (KeyError, TypeError, InvalidOperation, ValueError) as exc:
            return {}, self._error(422, "invalid", f"payment: {type(exc).__name__} {exc}")
        if not isinstance(doc["payment_ref"], str) or not doc["payment_ref"] or not doc["order_refs"]:
            return {}, self._error(422, "invalid", "payment_ref and order_refs are required")
        if doc["kind"] not in ("payment", "refund") or (doc["kind"] == "refund") != bool(doc["refund_of"]):
            return {}, self._error(422, "invalid", "kind: payment, or refund with refund_of")
        if not isinstance(doc["amount_minor"], int) or doc["amount_minor"] <= 0:
            return {}, self._error(422, "invalid", "amount: must be positive")
        return doc, None

    def _error(self, status: int, code: str, message: str) -> Reply:
        if self.style == "plain":
            return Reply(status, {"error": code, "message": message})
        return Reply(status, {"error": {"code": code, "message": message}})
