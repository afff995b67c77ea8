"""The generic REST adapter: an in-house ERP behind a reverse proxy, described by paths, an auth header and a
field mapping in the settings file.

Settings (`[sync.NAME]` with `kind = "rest"`; secrets may come from TABLEBOX_SYNC_<NAME>_<KEY>)::

    base_url = "https://erp.example.com/api/v1"   # required; a path prefix is kept ("/items" -> /api/v1/items)
    timeout_seconds = 10                          # every request (connect, read, write) gives up after this
    auth_header = "Authorization: Bearer xyz"     # SECRET: one whole header, "Name: value"; or instead
    api_key = "xyz"                               # SECRET, sent as  <api_key_header>: <api_key>
    api_key_header = "X-API-Key"                  # default
    verify_tls = true                             # false only for a self-signed proxy on the shop's own LAN
    ca_file = "/etc/tablebox/erp-ca.pem"          # or trust this CA for it
    currency = "CNY"                              # what the ERP's prices are in (default CNY); a catalog in
                                                  # another currency than the store's is refused on pull

    # paths ({order_ref} is filled in, URL-encoded); an empty status/payments path = not sent
    catalog_path = "/items"
    stock_path = "/stock"
    orders_path = "/orders"
    order_lookup_path = "/orders/{order_ref}"     # GET: 200 = already there, 404 = not yet; a list answer
                                                  # ("/orders?order_ref={order_ref}") is found when not empty
    status_path = "/orders/{order_ref}/status"
    payments_path = "/payments"
    catalog_params = {}                           # extra query parameters, e.g. {warehouse = "Main"}
    stock_params = {}

    # lists in the answers (defaults: a bare list, one GET)
    items_key = ""                                # "data" when the list is wrapped: {"data": [...]};
                                                  # dotted for deeper ("result.items")
    stock_items_key = <items_key>                 # the stock list; a {code: qty} object also works
    page_param = ""                               # e.g. "page": pages 1, 2, ... until one is short
    size_param = ""                               # e.g. "per_page" (sent with page_size)
    page_size = 100
    first_page = 1

    # catalog fields (dotted names reach into nested objects)
    fields.code = "code"
    fields.name = "name"                          # a string field (in default_language), an object field
                                                  # ({"zh": ..., "en": ...}), or a table
                                                  # {zh = "name_zh", en = "name_en"}
    fields.price = "price"                        # selling price in MAJOR units ("38.50" or 38.5: read exactly)
    fields.category = "category"
    fields.active = "active"                      # "!disabled" reads the inverse; missing field = active
    fields.currency = ""                          # per-item currency field, if the ERP has one
    fields.stock_code = <fields.code>
    fields.stock_qty = "qty"                      # summed over rows of one code (one row per warehouse)
    default_language = "zh"
    order_id_field = "id"                         # the ERP's id in an order document ("order_id", "meta.name")
    order_item_key = ""                           # the document is wrapped in create/lookup answers: "data"
    lookup_before_create = true

The order we POST to `orders_path` (amounts in major units as strings with the currency's exact decimals;
`code` is null for a dish the ERP does not know)::

    {"order_ref": "9f2c...", "ticket": "2026-11-21#12", "table": "A1", "created_at": "2026-11-21T11:02:03Z",
     "currency": "CNY", "status": "submitted", "note": "",
     "lines": [{"code": "ND-DDM", "key": "dan_dan_noodles", "name": "担担面", "quantity": 2,
                "unit_price": "31.00", "line_total": "62.00", "note": ""}],
     "subtotal": "62.00", "service_charge": "0.00", "tax": "3.51", "total": "62.00"}

Exactly once: every POST carries `Idempotency-Key: <order_ref>` (status: `<order_ref>:status:<status>`,
payments: the payment's ref), and before creating an order we GET `order_lookup_path` (200: it is there,
return its id; 404: create). A 409 on create means "already there" (or "that key is still being
processed"): we look it up again. With an ERP that honours the key this is exactly once; with one that
ignores it, the lookup still makes a retry after a lost answer harmless, and the one residual window is a
request the ERP is still working on when our client gives up and the retry's lookup runs (see
tests/fakes/erp_rest.py).

Errors (the classification every target shares, `sync/adapters/http.py`): connection refused, timeouts, a dropped
connection, 408, 425, 429 and 5xx are `Retryable` (with the answer's Retry-After); 401/403 are `Rejected` ("check
the API key"); other 4xx are `Rejected` with the ERP's own message. Logs name the target and the URL, never a header
or a key; the key is scrubbed from every message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import httpx
import structlog

from appliance.domain.errors import DomainError
from appliance.domain.money import Currency
from sync.adapters.base import Capability, Catalog, CatalogItem, OrderDoc, PaymentDoc, Rejected
from sync.adapters.http import HttpAdapter, base_url_setting

log = structlog.get_logger("sync.rest")

DEFAULT_PATHS = {
    "catalog_path": "/items",
    "stock_path": "/stock",
    "orders_path": "/orders",
    "order_lookup_path": "/orders/{order_ref}",
    "status_path": "/orders/{order_ref}/status",
    "payments_path": "/payments",
}
DEFAULT_FIELDS = {
    "code": "code",
    "name": "name",
    "price": "price",
    "category": "category",
    "active": "active",
    "currency": "",
    "stock_qty": "qty",
}
MAX_PAGES = 10_000
_MESSAGE_CAP = 300


def create(name: str, config: Mapping[str, Any]) -> RestAdapter:
    return RestAdapter(name, config)


# -- money: exact conversion between minor units and the ERP's decimal major units ---------------------------
def _exponent(currency: str) -> int:
    return Currency.of(currency).exponent


def major(amount_minor: int, exponent: int) -> str:
    """3250 fen -> "32.50"; 1200 yen -> "1200"."""
    sign = "-" if amount_minor < 0 else ""
    whole, frac = divmod(abs(amount_minor), 10**exponent)
    return f"{sign}{whole}.{frac:0{exponent}d}" if exponent else f"{sign}{whole}"


def to_minor(value: Any, exponent: int) -> int | None:
    """The ERP's price ("32.5", 32.5 read as Decimal, 32) in minor units; None when it is not a price.
    More decimals than the currency has are rounded half up (and logged by the caller)."""
    if isinstance(value, bool) or value is None or value == "":
        return None
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    if not amount.is_finite() or amount < 0:
        return None
    return int(amount.scaleb(exponent).quantize(Decimal(1), rounding=ROUND_HALF_UP))


# -- reading the ERP's JSON -----------------------------------------------------------------------------------
def _dig(data: Any, dotted: str) -> Any:
    for part in dotted.split(".") if dotted else ():
        if not isinstance(data, Mapping):
            return None
        data = data.get(part)
    return data


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "no", "off", "n", "f")
    return bool(value)


def erp_message(body: bytes) -> str:
    """The ERP's own words from an error answer: {"message"}, {"error": "..." | {"message"}}, {"detail"},
    {"errors": [...]}, {"title"}, or the start of a text body."""
    try:
        data = json.loads(body)
    except ValueError:
        text = body.decode("utf-8", "replace").strip()
        return " ".join(text.split())[:_MESSAGE_CAP]
    return _message_in(data)[:_MESSAGE_CAP]


def _message_in(data: Any) -> str:
    if isinstance(data, str):
        return data
    if isinstance(data, list):
        return "; ".join(m for m in (_message_in(d) for d in data[:5]) if m)
    if isinstance(data, Mapping):
        for key in ("message", "error", "detail", "errors", "title", "error_description", "msg"):
            if data.get(key):
                found = _message_in(data[key])
                if found:
                    return found
        return ""
    return "" if data is None else str(data)


class RestAdapter(HttpAdapter):
    """One in-house ERP over HTTP(S); blocking calls, each with its own timeout."""

    capabilities = frozenset({Capability.CATALOG_PULL})
    peer = "the ERP"

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        base_url_setting(name, config)  # the first thing to fix when it is wrong
        self.currency = str(config.get("currency") or "CNY")
        try:
            self.exponent = _exponent(self.currency)
        except DomainError:
            raise ValueError(f"sync target {name}: unknown currency {self.currency!r}") from None
        self.paths = {key: str(config.get(key, default) or "") for key, default in DEFAULT_PATHS.items()}
        for key in ("catalog_path", "orders_path"):
            if not self.paths[key]:
                raise ValueError(f"sync target {name}: {key} cannot be empty")
        fields = dict(DEFAULT_FIELDS)
        fields.update(config.get("fields") or {})
        fields.setdefault("stock_code", fields["code"])
        self.fields = fields
        self.default_language = str(config.get("default_language") or "zh")
        self.items_key = str(config.get("items_key") or "")
        self.stock_items_key = str(config.get("stock_items_key", self.items_key) or "")
        self.page_param = str(config.get("page_param") or "")
        self.size_param = str(config.get("size_param") or "")
        self.page_size = int(config.get("page_size", 100))
        self.first_page = int(config.get("first_page", 1))
        if self.page_param and self.page_size < 1:
            raise ValueError(f"sync target {name}: page_size must be at least 1")
        self.catalog_params = dict(config.get("catalog_params") or {})
        self.stock_params = dict(config.get("stock_params") or {})
        self.order_id_field = str(config.get("order_id_field") or "id")
        self.order_item_key = str(config.get("order_item_key") or "")
        self.lookup_before_create = bool(config.get("lookup_before_create", True))
        headers = {"Accept": "application/json"}
        secrets: list[str] = []
        if config.get("auth_header"):
            header_name, sep, value = str(config["auth_header"]).partition(":")
            if not sep or not header_name.strip() or not value.strip():
                raise ValueError(f"sync target {name}: auth_header must look like 'Name: value'")
            headers[header_name.strip()] = value.strip()
            secrets += [value.strip(), value.split()[-1]]
        elif config.get("api_key"):
            headers[str(config.get("api_key_header") or "X-API-Key")] = str(config["api_key"])
            secrets.append(str(config["api_key"]))
        super().__init__(name, config, headers=headers, secrets=secrets)

    def __repr__(self) -> str:
        return f"RestAdapter({self.name!r}, {self.base_url!r})"

    # -- catalog and stock ------------------------------------------------------------------------------------
    def pull_catalog(self) -> Catalog:
        rows = self._get_list(self.paths["catalog_path"], self.catalog_params, self.items_key, "catalog")
        items: list[CatalogItem] = []
        currencies: set[str] = set()
        for row in rows:
            item = self._catalog_item(row)
            if item is None:
                continue
            items.append(item)
            if self.fields.get("currency"):
                code = _dig(row, self.fields["currency"])
                if code:
                    currencies.add(str(code).upper())
        if len(currencies) > 1:
            raise Rejected(f"{self.name}: the ERP's catalog mixes currencies ({', '.join(sorted(currencies))})")
        currency = currencies.pop() if currencies else self.currency
        if currency != self.currency:
            # Prices were read with the configured currency's decimals; say which currency they really are in.
            raise Rejected(
                f"{self.name}: the ERP prices items in {currency} but currency = {self.currency!r} is"
                f" set for this target"
            )
        return Catalog(items=items, currency=currency)

    def _catalog_item(self, row: Any) -> CatalogItem | None:
        if not isinstance(row, Mapping):
            raise Rejected(f"{self.name}: a catalog entry is not an object: {str(row)[:80]!r}")
        code = _dig(row, self.fields["code"])
        if code is None or str(code).strip() == "":
            log.warning("sync.catalog.item_without_code", target=self.name, field=self.fields["code"])
            return None
        code = str(code).strip()
        names = self._names(row) or {self.default_language: code}
        raw_price = _dig(row, self.fields["price"]) if self.fields.get("price") else None
        price_minor = to_minor(raw_price, self.exponent)
        if raw_price not in (None, "") and price_minor is None:
            log.warning("sync.catalog.bad_price", target=self.name, code=code, price=str(raw_price)[:40])
        elif price_minor is not None and Decimal(str(raw_price)).scaleb(self.exponent) != price_minor:
            log.warning(
                "sync.catalog.price_rounded", target=self.name, code=code, price=str(raw_price), price_minor=price_minor
            )
        category = _dig(row, self.fields["category"]) if self.fields.get("category") else None
        active_field = str(self.fields.get("active") or "")
        active = True
        if active_field:
            invert = active_field.startswith("!")
            value = _dig(row, active_field.lstrip("!"))
            if value is not None:
                active = _truthy(value) != invert
        return CatalogItem(
            code=code,
            names=names,
            price_minor=price_minor,
            category=str(category).strip() if category not in (None, "") else None,
            active=active,
        )

    def _names(self, row: Mapping[str, Any]) -> dict[str, str]:
        spec = self.fields["name"]
        if isinstance(spec, Mapping):
            found = {str(lang): _dig(row, str(field)) for lang, field in spec.items()}
        else:
            value = _dig(row, str(spec))
            found = dict(value) if isinstance(value, Mapping) else {self.default_language: value}
        return {
            lang: str(text).strip()
            for lang, text in found.items()
            if isinstance(text, (str, int)) and str(text).strip()
        }

    def pull_stock(self) -> dict[str, int]:
        path = self.paths["stock_path"]
        if not path:
            return {}
        data = self._get_list(path, self.stock_params, self.stock_items_key, "stock", allow_mapping=True)
        pairs: Sequence[tuple[Any, Any]]
        if isinstance(data, Mapping):
            pairs = list(data.items())
        else:
            pairs = []
            for row in data:
                if not isinstance(row, Mapping):
                    raise Rejected(f"{self.name}: a stock entry is not an object: {str(row)[:80]!r}")
                pairs.append((_dig(row, self.fields["stock_code"]), _dig(row, self.fields["stock_qty"])))
        stock: dict[str, int] = {}
        for code, qty in pairs:
            if code is None or str(code).strip() == "":
                continue
            try:
                amount = Decimal(str(qty).strip())
            except (InvalidOperation, ValueError):
                log.warning("sync.stock.bad_quantity", target=self.name, code=str(code), qty=str(qty)[:40])
                continue
            if not amount.is_finite():
                continue
            # Whole portions only (12.5 kg of something is 12 to sell); the ERP may go below zero, we do not.
            key = str(code).strip()
            stock[key] = stock.get(key, 0) + int(amount.to_integral_value(rounding=ROUND_FLOOR))
        return {code: max(0, qty) for code, qty in stock.items()}

    def _get_list(self, path: str, params: Mapping[str, Any], key: str, what: str, allow_mapping: bool = False) -> Any:
        if not self.page_param:
            data = _dig(self._get_json(path, params), key) if key else self._get_json(path, params)
            return self._check_list(data, key, what, allow_mapping)
        rows: list[Any] = []
        for page in range(self.first_page, self.first_page + MAX_PAGES):
            query = {**params, self.page_param: page}
            if self.size_param:
                query[self.size_param] = self.page_size
            body = self._get_json(path, query)
            data = self._check_list(_dig(body, key) if key else body, key, what, allow_mapping)
            if isinstance(data, Mapping):
                return data
            rows.extend(data)
            if len(data) < self.page_size:
                return rows
        raise Rejected(f"{self.name}: the {what} never ended after {MAX_PAGES} pages (check page_param/size_param)")

    def _check_list(self, data: Any, key: str, what: str, allow_mapping: bool) -> Any:
        if isinstance(data, list) or (allow_mapping and isinstance(data, Mapping)):
            return data
        where = f"under {key!r}" if key else "as the answer (set items_key if the list is wrapped)"
        raise Rejected(f"{self.name}: expected the {what} as a list {where}, got {type(data).__name__}")

    # -- orders, status, payments ------------------------------------------------------------------------------
    def order_body(self, order: OrderDoc) -> dict[str, Any]:
        exp = _exponent(order.currency)
        return {
            "order_ref": order.order_ref,
            "ticket": order.ticket,
            "table": order.table,
            "created_at": order.created_at,
            "currency": order.currency,
            "status": order.status,
            "note": order.note,
            "lines": [
                {
                    "code": line.code,
                    "key": line.key,
                    "name": line.name,
                    "quantity": line.quantity,
                    "unit_price": major(line.unit_price_minor, exp),
                    "line_total": major(line.line_total_minor, exp),
                    "note": line.note,
                }
                for line in order.lines
            ],
            "subtotal": major(order.subtotal_minor, exp),
            "service_charge": major(order.service_charge_minor, exp),
            "tax": major(order.tax_minor, exp),
            "total": major(order.total_minor, exp),
        }

    def push_order(self, order: OrderDoc) -> str:
        if self.lookup_before_create:
            found = self.find_order(order.order_ref)
            if found is not None:
                log.info("sync.order.already_there", target=self.name, order_ref=order.order_ref, erp_id=found)
                return found
        response = self._send(
            "POST", self.paths["orders_path"], json_body=self.order_body(order), idempotency_key=order.order_ref
        )
        if response.status_code == 409:
            # "Already exists" (or the same key still being processed): whichever it is, ask for it.
            found = self.find_order(order.order_ref)
            if found is None:
                raise self.retryable(
                    f"{self.name}: the ERP answered 409 ({erp_message(response.content) or 'conflict'})"
                    f" but has no order {order.order_ref} yet",
                    response,
                )
            return found
        self._raise_for(response)
        erp_id = self._order_id(self._order_doc(self._json(response)), response)
        log.info("sync.order.created", target=self.name, order_ref=order.order_ref, erp_id=erp_id)
        return erp_id

    def find_order(self, order_ref: str) -> str | None:
        """The ERP's id for our order, or None when it does not have it."""
        path = self.paths["order_lookup_path"]
        if not path:
            return None
        response = self._send("GET", path.format(order_ref=quote(order_ref, safe="")))
        if response.status_code == 404:
            return None
        self._raise_for(response)
        doc = self._order_doc(self._json(response))
        return None if doc is None else self._order_id(doc, response)

    def _order_doc(self, data: Any) -> Any:
        """The order document in a create or lookup answer: under order_item_key when it is wrapped, the
        first of a list (a lookup by query), None for an empty list."""
        if self.order_item_key and isinstance(data, Mapping) and _dig(data, self.order_item_key) is not None:
            data = _dig(data, self.order_item_key)
        if isinstance(data, list):
            return data[0] if data else None
        return data

    def _order_id(self, doc: Any, response: httpx.Response) -> str:
        erp_id = _dig(doc, self.order_id_field)
        if erp_id in (None, ""):
            raise Rejected(
                f"{self.name}: the ERP's order answer to {response.request.method}"
                f" {response.request.url.path} has no {self.order_id_field!r}"
                " (set order_id_field / order_item_key)",
                status=response.status_code,
            )
        return str(erp_id)

    def push_status(self, order_ref: str, status: str, reason: str | None) -> None:
        path = self.paths["status_path"]
        if not path:
            return
        response = self._send(
            "POST",
            path.format(order_ref=quote(order_ref, safe="")),
            json_body={"order_ref": order_ref, "status": status, "reason": reason},
            idempotency_key=f"{order_ref}:status:{status}",
        )
        if response.status_code == 409:  # it already has that status
            return
        if response.status_code == 404:
            raise Rejected(
                f"{self.name}: the ERP has no order {order_ref} to set {status} on"
                f" ({erp_message(response.content) or 'HTTP 404'})",
                status=404,
            )
        self._raise_for(response)

    def push_payment(self, payment: PaymentDoc) -> str:
        path = self.paths["payments_path"]
        if not path:
            return ""
        body = {
            "payment_ref": payment.payment_ref,
            "order_refs": list(payment.order_refs),
            "table": payment.table,
            "method": payment.method,
            "amount": major(payment.amount_minor, _exponent(payment.currency)),
            "currency": payment.currency,
            "paid_at": payment.paid_at,
            **dict(payment.extra),
        }
        response = self._send("POST", path, json_body=body, idempotency_key=payment.payment_ref)
        if response.status_code == 409:
            return payment.payment_ref
        self._raise_for(response)
        doc = self._order_doc(self._json(response))
        erp_id = _dig(doc, self.order_id_field) if isinstance(doc, Mapping) else None
        return str(erp_id) if erp_id not in (None, "") else payment.payment_ref

    # -- HTTP ---------------------------------------------------------------------------------------------------
    def _get_json(self, path: str, params: Mapping[str, Any]) -> Any:
        response = self._send("GET", path, params=params)
        self._raise_for(response)
        return self._json(response)

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        content = json.dumps(json_body, ensure_ascii=False).encode() if json_body is not None else None
        if content is not None:
            headers["Content-Type"] = "application/json"
        return self.send(method, path, params=params, content=content, headers=headers or None)

    def _raise_for(self, response: httpx.Response) -> None:
        self.raise_for_status(response, self.scrub(erp_message(response.content)))

    def credentials_refused(self, response: httpx.Response, said: str) -> Exception:
        status = response.status_code
        return self.rejected(
            f"{self.name}: the ERP refused our credentials (HTTP {status}{': ' + said if said else ''})"
            f" — check the API key / auth_header of [sync.{self.name}]",
            status,
        )

    def _json(self, response: httpx.Response) -> Any:
        try:
            return json.loads(response.content, parse_float=Decimal)
        except ValueError:
            # A proxy's HTML page with a 200 (a captive portal, a maintenance page) is not the ERP answering.
            raise self.retryable(
                f"{self.name}: HTTP {response.status_code} from {response.request.url.path} is not"
                f" JSON: {erp_message(response.content)[:80]!r}",
                response,
            ) from None


# What sync.adapters.adapter_class(kind) answers: the class whose declarations (capabilities) the worker reads.
ADAPTER = RestAdapter
