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

`hold_orders()` / `release_orders()` stop order creation mid-request (after the request is in and its
key marked in flight, before the commit) so tests can make a client give up deterministically;
`broken_paths[path] = status` answers that status on a path (after the prefix) to break one endpoint.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import unquote

from appliance.domain.money import Currency
from tests.fakes.server import FakeServer, Reply, Request

KEY_TTL_SECONDS = 24 * 3600
WRAPPED_PREFIX = "/erp/api/v1"
MAX_PAGE = 50
DEFAULT_PAGE = 20


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
    ) -> None:
        super().__init__()
        if style not in ("plain", "wrapped"):
            raise ValueError(style)
        self.style = style
        self.honour_idempotency_key = honour_idempotency_key
        self.unique_order_ref = unique_order_ref
        self.currency = Currency.of(currency)
        self.secret = secret
        self.prefix = WRAPPED_PREFIX if style == "wrapped" else ""
        self.items: dict[str, dict[str, Any]] = {}  # code -> {names, price_minor, category, active}
        self.stock: dict[str, int] = {}
        self.orders: dict[str, dict[str, Any]] = {}  # server id -> the stored document
        self.payments: dict[str, dict[str, Any]] = {}
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

    def target_config(self) -> dict[str, Any]:
        """The [sync.NAME] settings that point the REST adapter at this fake, credentials included."""
        common: dict[str, Any] = {"kind": "rest", "timeout_seconds": 5, "currency": self.currency.code}
        if self.style == "plain":
            return {**common, "base_url": self.url, "auth_header": f"Authorization: Bearer {self.secret}"}
        return {
            **common,
            "base_url": self.url + WRAPPED_PREFIX,
            "api_key": self.secret,
            "api_key_header": "X-Api-Key",
            "items_key": "data",
            "page_param": "page",
            "size_param": "per_page",
            "page_size": MAX_PAGE,
            "order_lookup_path": "/orders?order_ref={order_ref}",
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

    # -- the API --------------------------------------------------------------------------------------------
    def handle(self, request: Request) -> Reply:
        if not request.path.startswith(self.prefix):
            return self._error(404, "not_found", f"no route {request.method} {request.path}")
        path = request.path[len(self.prefix) :] or "/"
        key = request.headers.get("Idempotency-Key")
        with self.lock:
            self.seen.append((request.method, path, request.query, key))
            broken = self.broken_paths.get(path)
        if broken is not None:
            return Reply(broken, b"<html><body><h1>%d</h1>nginx</body></html>" % broken, {"Content-Type": "text/html"})
        if not self._authorised(request.headers):
            reply = self._error(
                401, "unauthorized", "Invalid API key" if self.style == "wrapped" else "Invalid or expired API token"
            )
            reply.headers["WWW-Authenticate"] = "Bearer" if self.style == "plain" else "ApiKey"
            return reply
        if request.method == "POST" and key and self.honour_idempotency_key:
            return self._idempotent(request, path, key)
        return self._route(request, path)

    def _authorised(self, headers: Any) -> bool:
        if self.style == "plain":
            return headers.get("Authorization") == f"Bearer {self.secret}"
        return headers.get("X-Api-Key") == self.secret

    def _idempotent(self, request: Request, path: str, key: str) -> Reply:
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
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if len(parts) == 2 and parts[0] == "orders" and method == "GET" and self.style == "plain":
            with self.lock:
                found = [self._order_view(i, d) for i, d in self.orders.items() if d["order_ref"] == parts[1]]
            return Reply(200, found[0]) if found else self._error(404, "not_found", f"order {parts[1]} not found")
        if len(parts) == 3 and parts[0] == "orders" and parts[2] == "status" and method == "POST":
            return self._set_status(parts[1], request)
        if method == "POST" and path == "/payments":
            return self._create_payment(request)
        return self._error(404, "not_found", f"no route {method} {path}")

    def _list(self, request: Request, rows: list[dict[str, Any]]) -> Reply:
        if self.style == "plain":
            return Reply(200, rows)
        try:
            page = int((request.query.get("page") or ["1"])[0])
            size = min(int((request.query.get("per_page") or [str(DEFAULT_PAGE)])[0]), MAX_PAGE)
        except ValueError:
            return self._error(400, "bad_request", "page and per_page must be integers")
        if page < 1 or size < 1:
            return self._error(400, "bad_request", "page and per_page start at 1")
        chunk = rows[(page - 1) * size : page * size]
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

    def _create_order(self, request: Request) -> Reply:
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            return self._error(400, "bad_request", "body is not JSON")
        problem = self._check_order(body)
        if problem is not None:
            return problem
        # The request is in (and its key in flight); a held gate is the ERP still working on it.
        self._gate.wait(30)
        with self.lock:
            if self.unique_order_ref and any(d["order_ref"] == body["order_ref"] for d in self.orders.values()):
                return self._error(409, "duplicate", f"order_ref {body['order_ref']} already exists")
            number = self._next_id
            self._next_id += 1
            server_id = f"SO-{number:05d}" if self.style == "plain" else str(1000 + number)
            doc = {**body, "erp_status": "open", "received_at": self.clock()}
            self.orders[server_id] = doc
            for line in body["lines"]:
                if line["code"] in self.stock:
                    self.stock[line["code"]] -= line["quantity"]
            self._committed.notify_all()
            view = self._order_view(server_id, doc)
        return Reply(201, view if self.style == "plain" else {"data": view})

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
        body = request.json() or {}
        with self.lock:
            found = [d for d in self.orders.values() if d["order_ref"] == order_ref]
            if not found:
                return self._error(404, "not_found", f"order {order_ref} not found")
            for doc in found:
                doc["erp_status"] = body.get("status")
            self.statuses.append((order_ref, body.get("status"), body.get("reason")))
        return Reply(200, {"order_ref": order_ref, "status": body.get("status")})

    def _create_payment(self, request: Request) -> Reply:
        body = request.json() or {}
        if not body.get("payment_ref") or not body.get("amount"):
            return self._error(422, "invalid", "payment_ref and amount are required")
        with self.lock:
            payment_id = f"PAY-{len(self.payments) + 1:04d}"
            self.payments[payment_id] = body
        return Reply(201, {"id": payment_id} if self.style == "plain" else {"data": {"order_id": payment_id}})

    def _error(self, status: int, code: str, message: str) -> Reply:
        if self.style == "plain":
            return Reply(status, {"error": code, "message": message})
        return Reply(status, {"error": {"code": code, "message": message}})
