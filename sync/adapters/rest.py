"""The generic REST adapter: an in-house ERP behind a reverse proxy, described by paths, credentials, a field mapping
and body templates in the settings file (README: "Sync to an in-house ERP (REST)" has the examples).

Settings (`[sync.NAME]` with `kind = "rest"`; SECRET keys may come from TABLEBOX_SYNC_<NAME>_<KEY>; every bad value
is refused at start with the key and what fits)::

    base_url = "https://erp.example.com/api/v1"   # required; a path prefix is kept ("/items" -> /api/v1/items)
    timeout_seconds = 10                          # every request (connect, read, write) gives up after this
    currency = "CNY"                              # what the ERP's prices are in; a catalog in another currency
                                                  # than the store's is refused on pull

    # who we are: auth = "bearer" | "basic" | "header" | "hmac" | "none" (default: the kind whose credential is set)
    token = "..."                                 # SECRET, bearer: Authorization: <token_scheme> <token>
    token_scheme = "Bearer"                       #   ("Token" for Django REST framework)
    username = "tablebox"                         # basic: Authorization: Basic base64(username:password)
    password = "..."                              # SECRET
    api_key = "..."                               # SECRET, header: <api_key_header>: <api_key>
    api_key_header = "X-API-Key"
    auth_header = "Authorization: Bearer xyz"     # SECRET, header: one whole header, "Name: value" (instead)
    hmac_secret = "..."                           # SECRET, hmac: signed requests (below), at least 16 bytes
    hmac_secret_encoding = "text"                 #   "hex" or "base64" when the ERP hands out the secret so
    hmac_key_id = "tablebox"                      #   which key, for an ERP that holds several
    hmac_window_seconds = 300                     #   the ERP's allowed clock difference (for the messages)
    client_cert = "/etc/tablebox/erp-client.pem"  # any auth: a client certificate (mutual TLS), with
    client_key = "/etc/tablebox/erp-client.key"   #   its key (unless in the same PEM file) and, when
    client_key_password = "..."                   #   encrypted, its password (SECRET)
    verify_tls = true                             # false only for a self-signed proxy on the shop's own LAN
    ca_file = "/etc/tablebox/erp-ca.pem"          # or trust this CA for it

    # paths; {name} is filled in URL-encoded; an empty status/payments/refunds path = not sent
    catalog_path = "/items"
    stock_path = "/stock"                         # "": no stock pull
    orders_path = "/orders"                       # {order_ref}: with orders_method = "PUT"
    order_lookup_path = "/orders/{order_ref}"     # GET: 200 = already there, 404 = not yet; a list answer
                                                  # ("/orders?order_ref={order_ref}") is found when not empty
    status_path = "/orders/{order_ref}/status"    # {order_ref}, {status}
    payments_path = "/payments"                   # {payment_ref}, {kind}
    refunds_path = <payments_path>                # {payment_ref}, {kind}, {refund_of}
    payment_lookup_path = "/payments/{payment_ref}"  # as order_lookup_path, for payments and refunds; "": none
    catalog_params = {}                           # extra query parameters, e.g. {warehouse = "Main"}
    stock_params = {}

    # writing: the HTTP method and the idempotency header
    orders_method = "POST"                        # "PUT" (to orders_path with {order_ref}: idempotent by URL)
    status_method = "POST"                        # or "PUT", "PATCH"
    payments_method = "POST"                      # "PUT" needs {payment_ref} in payments_path/refunds_path
    idempotency_header = "Idempotency-Key"        # the header the ERP keys on ("X-Request-Id"); "": none
    templates.order = {...}                       # the body of each kind: a table, or a JSON file's path
    templates.status = {...}                      #   (README: "Body templates"; defaults: DEFAULT_TEMPLATES)
    templates.payment = {...}
    templates.refund = {...}
    payment_methods = {}                          # the ERP's name of the box's methods: {wechat = "WeChat Pay"}

    # lists in the answers and paging: paging = "none" | "page" | "offset" | "cursor" | "link"
    items_key = ""                                # "data" when the list is wrapped: {"data": [...]};
                                                  # dotted for deeper ("result.items")
    stock_items_key = <items_key>                 # the stock list; a {code: qty} object also works
    page_param = ""                               # page: ?page=1, 2, ... (setting it alone means paging = "page")
    first_page = 1
    size_param = ""                               # page, cursor, link: the page size parameter ("per_page")
    page_size = 100                               # asked per page (1 to 10,000)
    offset_param = "offset"                       # offset: ?offset=0, 100, ... &limit=100
    limit_param = "limit"
    total_key = ""                                # page/offset: where the answer says how many there are; without
                                                  # it a short page is the last
    cursor_param = "cursor"                       # cursor: ?cursor=<what next_cursor_key held>, until it is empty
    next_cursor_key = ""                          #   e.g. "meta.next_cursor" (required for cursor)
                                                  # link: follows Link: <...>; rel="next" on base_url's server only

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
    payment_id_field = <order_id_field>
    order_item_key = ""                           # the document is wrapped in create/lookup answers: "data"
    lookup_before_create = true

Signed requests (auth = "hmac"): five headers on every request, X-Tablebox-Key (hmac_key_id), X-Tablebox-Timestamp
(Unix seconds), X-Tablebox-Nonce (32 random hex digits), X-Tablebox-Content-SHA256 (hex SHA-256 of the body) and
X-Tablebox-Signature: the hex HMAC-SHA256 under the secret of `hmac_string_to_sign` (seven lines: the scheme name
TABLEBOX-HMAC-SHA256, key id, timestamp, nonce, method, the request target as on the request line, the body's hex
SHA-256). The ERP recomputes it, refuses a timestamp outside its window and a nonce it has seen within it. A 401 with
the ERP's Date header more than hmac_window_seconds off our clock is our clock's fault: Retryable, and said so.

Status changes and voided lines (Capability.AMENDS: the engine calls push_change) go to status_path with the order
as it now stands (`order_body`, in the order template's shape), so the ERP can amend its document.

Exactly once: every write carries the idempotency header (order: `<order_ref>`; a status change: the outbox row's
key and a digest of the body, so a newer state is a new request; payment and refund: their own ref), and before creating an order or a payment we GET its lookup path
(200: it is there, return its id; 404: create). A 409 on create means "already there" (or "that key is still being
processed"): we look it up again. With an ERP that honours the key (or a PUT to the document's own URL) this is
exactly once; with one that ignores it, the lookup still makes a retry after a lost answer harmless, and the one
residual window is a request the ERP is still working on when our client gives up and the retry's lookup runs (see
tests/fakes/erp_rest.py).

Errors (the classification every target shares, `sync/adapters/http.py`): connection refused, timeouts, a dropped
connection, 408, 425, 429 and 5xx are `Retryable` (with the answer's Retry-After, which the engine waits out); 401/403
and a client certificate refused in the TLS handshake are `Rejected` ("check the credentials"); other 4xx are
`Rejected` with the ERP's own message. Logs name the target and the URL, never a header or a key; secrets are scrubbed
from every message.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import json
import re
import secrets
import string
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
import structlog

from appliance.domain.errors import DomainError
from appliance.domain.money import Currency
from appliance.settings import SYNC_SETTINGS
from sync.adapters.base import (
    Capability,
    Catalog,
    CatalogItem,
    Check,
    CheckState,
    DeliveryError,
    OrderChange,
    OrderDoc,
    OrderLine,
    PaymentDoc,
    Rejected,
)
from sync.adapters.body_templates import OpenValues, TemplateError, encode_body, render
from sync.adapters.http import HttpAdapter, Verdict, base_url_setting
from sync.adapters.signing import DEFAULT_HMAC_WINDOW_SECONDS, HmacAuth, secret_bytes

log = structlog.get_logger("sync.rest")

DEFAULT_PATHS = {
    "catalog_path": "/items",
    "stock_path": "/stock",
    "orders_path": "/orders",
    "order_lookup_path": "/orders/{order_ref}",
    "status_path": "/orders/{order_ref}/status",
    "payments_path": "/payments",
    "payment_lookup_path": "/payments/{payment_ref}",
}
# What each path may fill in (URL-encoded): anything else in braces is a typo, named at start.
PATH_FIELDS = {
    "catalog_path": (),
    "stock_path": (),
    "orders_path": ("order_ref",),
    "order_lookup_path": ("order_ref",),
    "status_path": ("order_ref", "status"),
    "payments_path": ("payment_ref", "kind"),
    "refunds_path": ("payment_ref", "kind", "refund_of"),
    "payment_lookup_path": ("payment_ref", "kind"),
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
AUTH_MODES = ("none", "bearer", "basic", "header", "hmac")
PAGING_MODES = ("none", "page", "offset", "cursor", "link")
MESSAGE_KINDS = ("order", "status", "payment", "refund")
WRITE_METHODS = ("POST", "PUT", "PATCH")
SECRET_ENCODINGS = ("text", "hex", "base64")
MAX_PAGES = 10_000
MAX_PAGE_SIZE = 10_000
_MESSAGE_CAP = 300


# Every key a [sync.NAME] table of kind rest may hold (besides those every target shares: appliance.settings'
# SYNC_SETTINGS): a key not here is a typo, refused with the nearest one, not silently ignored.
HTTP_KEYS = frozenset({"verify_tls", "ca_file", "client_cert", "client_key", "client_key_password"})
REST_KEYS = frozenset(
    {
        *DEFAULT_PATHS,
        "refunds_path",
        "currency",
        "auth",
        "token",
        "token_scheme",
        "username",
        "password",
        "api_key",
        "api_key_header",
        "auth_header",
        "hmac_secret",
        "hmac_secret_encoding",
        "hmac_key_id",
        "hmac_window_seconds",
        "catalog_params",
        "stock_params",
        "orders_method",
        "status_method",
        "payments_method",
        "idempotency_header",
        "templates",
        "payment_methods",
        "items_key",
        "stock_items_key",
        "paging",
        "page_param",
        "first_page",
        "size_param",
        "page_size",
        "offset_param",
        "limit_param",
        "total_key",
        "cursor_param",
        "next_cursor_key",
        "fields",
        "default_language",
        "order_id_field",
        "payment_id_field",
        "order_item_key",
        "lookup_before_create",
    }
)


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


def _amounts(prefix: str, amount_minor: int, exponent: int) -> dict[str, Any]:
    """One amount three ways: "total" = "80.00" (major units as text), "total_minor" = 8000, "total_number" = 80.00
    (a JSON number, written exactly)."""
    text = major(amount_minor, exponent)
    return {prefix: text, f"{prefix}_minor": amount_minor, f"{prefix}_number": Decimal(text)}


def order_values(order: OrderDoc) -> dict[str, Any]:
    """What an order template may place (README: "Body templates")."""
    exp = _exponent(order.currency)
    lines = [
        {
            "no": n,
            "code": line.code,
            "key": line.key,
            "name": line.name,
            "quantity": line.quantity,
            "note": line.note,
            **_amounts("unit_price", line.unit_price_minor, exp),
            **_amounts("line_total", line.line_total_minor, exp),
        }
        for n, line in enumerate(order.lines, start=1)
    ]
    return {
        "order_ref": order.order_ref,
        "order_id": order.order_id,
        "ticket": order.ticket,
        "table": order.table,
        "created_at": order.created_at,
        "currency": order.currency,
        "status": order.status,
        "note": order.note,
        "lines": lines,
        "line_count": len(lines),
        **_amounts("subtotal", order.subtotal_minor, exp),
        **_amounts("service_charge", order.service_charge_minor, exp),
        **_amounts("tax", order.tax_minor, exp),
        **_amounts("total", order.total_minor, exp),
    }


def status_values(
    order_ref: str,
    status: str,
    reason: str | None,
    *,
    event: str = "status",
    order_status: str | None = None,
    line_no: int | None = None,
    void_reason: str | None = None,
    void_quantity: int | None = None,
    left: int | None = None,
    change_ref: str = "",
    order: Mapping[str, Any] | None = None,
    order_body: Any = None,
) -> dict[str, Any]:
    """What a status template may place: the change (`status` is "line_voided" for a void, `order_status` the order's
    own status then; a void's `void_quantity`, how many of the line's dishes, and `left`, how many stay on it) and,
    from the engine (Capability.AMENDS), the order as it stands now: `order` (its values, as an
    order template has them) and `order_body` (it rendered by templates.order); null when not known or no line is
    left."""
    return {
        "order_ref": order_ref,
        "status": status,
        "order_status": order_status or status,
        "reason": reason,
        "event": event,
        "line_no": line_no,
        "void_reason": void_reason,
        "void_quantity": void_quantity,
        "left": left,
        "change_ref": change_ref,
        "order": order,
        "order_body": order_body,
    }


def payment_values(payment: PaymentDoc, method: str) -> dict[str, Any]:
    """What a payment or refund template may place; `method` is the ERP's name for the box's method."""
    return {
        "payment_ref": payment.payment_ref,
        "kind": payment.kind,
        "order_refs": list(payment.order_refs),
        "order_ref": payment.order_refs[0] if payment.order_refs else None,
        "table": payment.table,
        "method": method,
        "box_method": payment.method,
        "currency": payment.currency,
        "paid_at": payment.paid_at,
        "refund_of": payment.refund_of,
        "reason": payment.reason,
        "extra": OpenValues(payment.extra),
        **_amounts("amount", payment.amount_minor, _exponent(payment.currency)),
    }


PAYMENT_TEMPLATE: dict[str, Any] = {
    "payment_ref": "${payment_ref}",
    "kind": "${kind}",
    "order_refs": "${order_refs}",
    "table": "${table}",
    "method": "${method}",
    "amount": "${amount}",
    "currency": "${currency}",
    "paid_at": "${paid_at}",
    "extra": "${extra}",
}
DEFAULT_TEMPLATES: dict[str, Any] = {
    "order": {
        "order_ref": "${order_ref}",
        "ticket": "${ticket}",
        "table": "${table}",
        "created_at": "${created_at}",
        "currency": "${currency}",
        "status": "${status}",
        "note": "${note}",
        "lines": {
            "$each": "lines",
            "$as": "line",
            "$do": {
                "code": "${line.code}",
                "key": "${line.key}",
                "name": "${line.name}",
                "quantity": "${line.quantity}",
                "unit_price": "${line.unit_price}",
                "line_total": "${line.line_total}",
                "note": "${line.note}",
            },
        },
        "subtotal": "${subtotal}",
        "service_charge": "${service_charge}",
        "tax": "${tax}",
        "total": "${total}",
    },
    "status": {
        "order_ref": "${order_ref}",
        "status": "${status}",
        "reason": "${reason}",
        "event": "${event}",
        "line_no": "${line_no}",
        "order": "${order_body}",
    },
    "payment": PAYMENT_TEMPLATE,
    "refund": {**PAYMENT_TEMPLATE, "refund_of": "${refund_of}", "reason": "${reason}"},
}


def _sample_values(kind: str, currency: str, order_template: Any = None) -> dict[str, Any]:
    """A message of each kind with every value present, to try a template on at start (a status carries the order
    rendered by `order_template`)."""
    line = OrderLine("CODE", "key", "name", 1, 100, 100, "")
    if kind == "order":
        return order_values(
            OrderDoc("ref", 1, "2026-01-01#1", "A1", "2026-01-01T00:00:00Z", currency, [line], 100, 0, 100, 0)
        )
    if kind == "status":
        order = OrderDoc("ref", 1, "2026-01-01#1", "A1", "2026-01-01T00:00:00Z", currency, [line], 100, 0, 100, 0)
        return status_values(
            "ref",
            "line_voided",
            "line 1 voided: reason",
            event="line_voided",
            order_status="accepted",
            line_no=1,
            void_reason="reason",
            void_quantity=1,
            left=0,
            change_ref="ref",
            order=order_values(order),
            order_body=render(order_template, order_values(order)) if order_template is not None else None,
        )
    payment = PaymentDoc(
        "ref",
        ["ref"],
        "A1",
        "cash",
        100,
        currency,
        "2026-01-01T00:00:00Z",
        {},
        kind,
        "ref" if kind == "refund" else None,
    )
    return payment_values(payment, "cash")


# -- settings -----------------------------------------------------------------------------------------------------------
class _Settings:
    """Reads one [sync.NAME] table; every bad value is a ValueError naming the target, the key and what fits."""

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        self.name = name
        self.config = config

    def bad(self, key: str, what: str) -> ValueError:
        return ValueError(f"sync target {self.name}: {key} {what}, got {self.config.get(key)!r}")

    def text(self, key: str, default: str = "") -> str:
        value = self.config.get(key, default)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.bad(key, "must be text")
        return value

    def choice(self, key: str, choices: Sequence[str], default: str) -> str:
        value = self.text(key, default)
        folded = value.upper() if all(c.isupper() for c in choices) else value.lower()
        if folded not in choices:
            raise self.bad(key, f"must be one of {', '.join(choices)}")
        return folded

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.config.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.bad(key, f"must be a whole number from {low} to {high}")
        return int(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.config.get(key, default)
        if not isinstance(value, bool):
            raise self.bad(key, "must be true or false")
        return value

    def table(self, key: str) -> dict[str, Any]:
        value = self.config.get(key) or {}
        if not isinstance(value, Mapping):
            raise self.bad(key, "must be a table (key = value pairs)")
        return dict(value)

    def path(self, key: str, default: str, fields: Sequence[str]) -> str:
        """A path setting: text starting with / (or empty where allowed), its {placeholders} among `fields`."""
        value = self.text(key, default)
        if value and not value.startswith("/"):
            raise self.bad(key, "must start with / (it is added to base_url)")
        for _, field_name, _, _ in string.Formatter().parse(value):
            if field_name is not None and field_name not in fields:
                offered = ", ".join("{" + f + "}" for f in fields) or "nothing"
                raise self.bad(key, f"may fill in {offered} only, not {{{field_name}}}")
        return value


def _load_template(settings: _Settings, kind: str, given: Any, currency: str, order_template: Any) -> Any:
    """templates.KIND: a table (the body itself) or the path of a JSON file holding it; tried on a sample message."""
    where = f"templates.{kind}"
    if isinstance(given, str):
        try:
            template = json.loads(Path(given).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"sync target {settings.name}: {where}: cannot read {given!r}: {exc.strerror}") from None
        except ValueError as exc:
            raise ValueError(f"sync target {settings.name}: {where}: {given!r} is not JSON: {exc}") from None
    elif isinstance(given, (Mapping, list)):
        template = given
    else:
        raise ValueError(
            f"sync target {settings.name}: {where} must be a table (the body) or the path of a JSON file, got {given!r}"
        )
    try:
        render(template, _sample_values(kind, currency, order_template))
    except TemplateError as exc:
        raise ValueError(f"sync target {settings.name}: {where}: {exc}") from None
    return template


class RestAdapter(HttpAdapter):
    """One in-house ERP over HTTP(S); blocking calls, each with its own timeout."""

    # AMENDS: status changes and voids come to push_change with the order as it stands now, which the status template
    # can send (order_body), so the ERP can amend its document instead of reading a note.
    capabilities = frozenset({Capability.CATALOG_PULL, Capability.AMENDS})
    peer = "the ERP"
    # `tablebox sync check` (sync/check.py) sets these on the instance before calling check().
    expected_codes: Sequence[str] = ()
    box_facts: Mapping[str, Any] = {}
    credential_keys: ClassVar[dict[str, tuple[str, ...]]] = {
        "none": (),
        "bearer": ("token",),
        "basic": ("username", "password"),
        "header": ("api_key", "auth_header"),
        "hmac": ("hmac_secret",),
    }

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        base_url_setting(name, config)  # the first thing to fix when it is wrong
        known = REST_KEYS | HTTP_KEYS | set(SYNC_SETTINGS)
        for key in config:
            if key not in known:
                near = difflib.get_close_matches(str(key), sorted(known), n=1)
                raise ValueError(
                    f"sync target {name}: {key} is not a setting of kind rest"
                    + (f" (did you mean {near[0]}?)" if near else " (sync/adapters/rest.py lists them)")
                )
        cfg = _Settings(name, config)
        self.currency = cfg.text("currency", "CNY").strip().upper() or "CNY"
        try:
            self.exponent = _exponent(self.currency)
        except DomainError:
            raise ValueError(f"sync target {name}: unknown currency {self.currency!r}") from None
        self.paths = {key: cfg.path(key, default, PATH_FIELDS[key]) for key, default in DEFAULT_PATHS.items()}
        self.paths["refunds_path"] = cfg.path("refunds_path", self.paths["payments_path"], PATH_FIELDS["refunds_path"])
        for key in ("catalog_path", "orders_path"):
            if not self.paths[key]:
                raise ValueError(f"sync target {name}: {key} cannot be empty")
        fields = dict(DEFAULT_FIELDS)
        fields.update(cfg.table("fields"))
        fields.setdefault("stock_code", fields["code"])
        for field_key, spec in fields.items():
            ok = isinstance(spec, str) or (
                field_key == "name" and isinstance(spec, Mapping) and all(isinstance(v, str) for v in spec.values())
            )
            if not ok:
                raise ValueError(f"sync target {name}: fields.{field_key} must be a field name (text), got {spec!r}")
        self.fields = fields
        self.default_language = cfg.text("default_language", "zh") or "zh"
        self.items_key = cfg.text("items_key")
        self.stock_items_key = cfg.text("stock_items_key", self.items_key)
        self.catalog_params = cfg.table("catalog_params")
        self.stock_params = cfg.table("stock_params")
        self.order_id_field = cfg.text("order_id_field", "id") or "id"
        self.payment_id_field = cfg.text("payment_id_field", self.order_id_field) or self.order_id_field
        self.order_item_key = cfg.text("order_item_key")
        self.lookup_before_create = cfg.flag("lookup_before_create", True)
        self._paging_settings(cfg)
        self._write_settings(cfg)
        headers, secret_values, auth = self._auth_settings(cfg)
        super().__init__(
            name, config, headers={"Accept": "application/json", **headers}, secrets=secret_values, auth=auth
        )
        self.client_certificate = bool(config.get("client_cert"))

    def _paging_settings(self, cfg: _Settings) -> None:
        self.page_param = cfg.text("page_param")
        self.paging = cfg.choice("paging", PAGING_MODES, "page" if self.page_param else "none")
        self.page_param = self.page_param or "page"
        self.size_param = cfg.text("size_param")
        self.page_size = cfg.integer("page_size", 100, 1, MAX_PAGE_SIZE)
        self.first_page = cfg.integer("first_page", 1, 0, 1_000_000)
        self.offset_param = cfg.text("offset_param", "offset") or "offset"
        self.limit_param = cfg.text("limit_param", "limit") or "limit"
        self.cursor_param = cfg.text("cursor_param", "cursor") or "cursor"
        self.next_cursor_key = cfg.text("next_cursor_key")
        self.total_key = cfg.text("total_key")
        if self.paging == "cursor" and not self.next_cursor_key:
            raise cfg.bad(
                "next_cursor_key", "must name where an answer holds the next cursor (e.g. 'meta.next_cursor')"
            )

    def _write_settings(self, cfg: _Settings) -> None:
        self.idempotency_header = cfg.text("idempotency_header", "Idempotency-Key").strip()
        if self.idempotency_header and not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", self.idempotency_header):
            raise cfg.bad("idempotency_header", "must be a header name (letters, digits, -), or empty for none")
        self.methods = {
            "order": cfg.choice("orders_method", WRITE_METHODS, "POST"),
            "status": cfg.choice("status_method", WRITE_METHODS, "POST"),
            "payment": cfg.choice("payments_method", WRITE_METHODS, "POST"),
        }
        if self.methods["order"] == "PUT" and "{order_ref}" not in self.paths["orders_path"]:
            raise cfg.bad("orders_path", "must hold {order_ref} when orders_method = 'PUT' (the order's own URL)")
        if self.methods["payment"] == "PUT":
            for key in ("payments_path", "refunds_path"):
                if self.paths[key] and "{payment_ref}" not in self.paths[key]:
                    raise cfg.bad(key, "must hold {payment_ref} when payments_method = 'PUT'")
        given = cfg.table("templates")
        unknown = sorted(set(given) - set(MESSAGE_KINDS))
        if unknown:
            raise ValueError(
                f"sync target {cfg.name}: templates.{unknown[0]}: the kinds are {', '.join(MESSAGE_KINDS)}"
            )
        self.templates: dict[str, Any] = {}
        for kind in MESSAGE_KINDS:  # the order's first: a status may carry the order as its template renders it
            self.templates[kind] = (
                _load_template(cfg, kind, given[kind], self.currency, self.templates.get("order"))
                if kind in given
                else DEFAULT_TEMPLATES[kind]
            )
        methods = cfg.table("payment_methods")
        for box_method, erp_method in methods.items():
            if not isinstance(erp_method, str) or not erp_method.strip():
                raise ValueError(
                    f"sync target {cfg.name}: payment_methods.{box_method} must be the ERP's name for it (text),"
                    f" got {erp_method!r}"
                )
        self.payment_methods: dict[str, str] = {str(k): v.strip() for k, v in methods.items()}

    def _auth_settings(self, cfg: _Settings) -> tuple[dict[str, str], list[str], httpx.Auth | None]:
        """`auth` and its credentials -> static headers, the secrets to scrub, a signer (hmac)."""
        config = cfg.config
        given = {key for keys in self.credential_keys.values() for key in keys if config.get(key)}
        if config.get("auth") is None:
            inferred = [mode for mode, keys in self.credential_keys.items() if given & set(keys)]
            mode = inferred[0] if len(inferred) == 1 else "none"
            if len(inferred) > 1:
                raise ValueError(
                    f"sync target {cfg.name}: credentials for more than one kind of auth are set"
                    f" ({', '.join(sorted(given))}): set auth = one of {', '.join(AUTH_MODES)}"
                )
        else:
            mode = cfg.choice("auth", AUTH_MODES, "none")
        unused = sorted(given - set(self.credential_keys[mode]))
        if unused:
            raise ValueError(
                f"sync target {cfg.name}: {', '.join(unused)} is set but auth = {mode!r} does not send it:"
                " take it out, or set auth to the kind that uses it"
            )
        self.auth_mode = mode
        headers: dict[str, str] = {}
        if mode == "bearer":
            token = self._header_value(cfg, "token")
            scheme = cfg.text("token_scheme", "Bearer").strip() or "Bearer"
            headers["Authorization"] = f"{scheme} {token}"
            return headers, [token], None
        if mode == "basic":
            username = self._header_value(cfg, "username", secret=False)
            password = cfg.text("password")
            if not password:
                raise ValueError(f"sync target {cfg.name}: auth = 'basic' needs username and password")
            if ":" in username:
                raise cfg.bad("username", "cannot hold ':' (Basic auth joins username:password)")
            credential = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
            headers["Authorization"] = f"Basic {credential}"
            return headers, [password, credential], None
        if mode == "header":
            if config.get("auth_header") and config.get("api_key"):
                raise ValueError(f"sync target {cfg.name}: set api_key (with api_key_header) or auth_header, not both")
            if config.get("auth_header"):
                header_name, sep, value = cfg.text("auth_header").partition(":")
                if not sep or not header_name.strip() or not value.strip():
                    raise ValueError(f"sync target {cfg.name}: auth_header must look like 'Name: value'")
                headers[header_name.strip()] = value.strip()
                return headers, [value.strip(), value.split()[-1]], None
            key = self._header_value(cfg, "api_key")
            header = cfg.text("api_key_header", "X-API-Key").strip() or "X-API-Key"
            if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", header):
                raise cfg.bad("api_key_header", "must be a header name")
            headers[header] = key
            return headers, [key], None
        if mode == "hmac":
            secret_text = cfg.text("hmac_secret")
            if not secret_text:
                raise ValueError(f"sync target {cfg.name}: auth = 'hmac' needs hmac_secret")
            secret = secret_bytes(cfg.name, secret_text, cfg.choice("hmac_secret_encoding", SECRET_ENCODINGS, "text"))
            if len(secret) < 16:
                raise ValueError(
                    f"sync target {cfg.name}: hmac_secret is too short: at least 16 bytes (32 random is best)"
                )
            key_id = self._header_value(cfg, "hmac_key_id", secret=False, default="tablebox")
            self.hmac_window = cfg.integer("hmac_window_seconds", DEFAULT_HMAC_WINDOW_SECONDS, 1, 86_400)
            self.hmac = HmacAuth(key_id, secret)
            return headers, [secret_text], self.hmac
        return headers, [], None

    @staticmethod
    def _header_value(cfg: _Settings, key: str, *, secret: bool = True, default: str = "") -> str:
        value = cfg.text(key, default).strip()
        if not value:
            raise ValueError(f"sync target {cfg.name}: {key} is empty")
        if not value.isascii() or not value.isprintable():
            what = "the value" if secret else repr(value)
            raise ValueError(
                f"sync target {cfg.name}: {key} must be printable ASCII (it goes in a header), {what} is not"
            )
        return value

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
        """The whole list at `path`, page after page as `paging` says (a {code: qty} object is one whole answer)."""
        query: dict[str, Any] = dict(params)
        if self.paging == "none":
            body, _ = self._get_page(path, query)
            return self._check_list(_dig(body, key) if key else body, key, what, allow_mapping)
        if self.paging == "offset":
            query[self.limit_param] = self.page_size
        elif self.size_param:
            query[self.size_param] = self.page_size
        rows: list[Any] = []
        url: str | None = path
        page, offset = self.first_page, 0
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            if self.paging == "page":
                query[self.page_param] = page
            elif self.paging == "offset":
                query[self.offset_param] = offset
            body, response = self._get_page(url or path, query if url == path else None)
            data = self._check_list(_dig(body, key) if key else body, key, what, allow_mapping)
            if isinstance(data, Mapping):
                return data
            rows.extend(data)
            if self.paging in ("page", "offset"):
                total = self._total(body, what)
                if not data or (len(rows) >= total if total is not None else len(data) < self.page_size):
                    return rows
                page, offset = page + 1, offset + len(data)
                continue
            if self.paging == "cursor":
                cursor = _dig(body, self.next_cursor_key)
                if cursor in (None, "", False):
                    return rows
                mark = str(cursor)
                query[self.cursor_param] = mark
            else:
                link = response.links.get("next", {}).get("url")
                if not link:
                    return rows
                url = self._same_origin(response.request.url.join(link), what)
                mark = url
            if mark in seen:
                raise Rejected(f"{self.name}: the ERP sent the same next {what} page twice ({mark[:80]}): paging loops")
            seen.add(mark)
        raise Rejected(f"{self.name}: the {what} never ended after {MAX_PAGES} pages (check the paging settings)")

    def _total(self, body: Any, what: str) -> int | None:
        if not self.total_key:
            return None
        total = _dig(body, self.total_key)
        if isinstance(total, bool) or not isinstance(total, (int, str)) or not str(total).strip().isdigit():
            raise Rejected(f"{self.name}: the {what} answer has no count under total_key {self.total_key!r}: {total!r}")
        return int(total)

    def _same_origin(self, url: httpx.URL, what: str) -> str:
        """A next-page link, only when it is on base_url's server: credentials never go anywhere else."""
        base = self.http.base_url
        if (url.scheme, url.host, url.port) != (base.scheme, base.host, base.port):
            raise Rejected(
                f"{self.name}: the ERP's Link header sends the next {what} page to {url.scheme}://{url.host}"
                f"{':' + str(url.port) if url.port else ''}, not {self.base_url}: the box sends its credentials"
                " only to base_url (set base_url to the server the links name)"
            )
        return str(url)

    def _get_page(self, url: str, params: Mapping[str, Any] | None) -> tuple[Any, httpx.Response]:
        response = self._send("GET", url, params=params)
        self._raise_for(response)
        return self._json(response), response

    def _check_list(self, data: Any, key: str, what: str, allow_mapping: bool) -> Any:
        if isinstance(data, list) or (allow_mapping and isinstance(data, Mapping)):
            return data
        where = f"under {key!r}" if key else "as the answer (set items_key if the list is wrapped)"
        raise Rejected(f"{self.name}: expected the {what} as a list {where}, got {type(data).__name__}")

    # -- orders, status, payments ------------------------------------------------------------------------------
    def _fill(self, key: str, **values: str | None) -> str:
        """A path setting with its {placeholders} filled in, URL-encoded."""
        return self.paths[key].format(**{k: quote(v or "", safe="") for k, v in values.items()})

    def _body(self, kind: str, values: Mapping[str, Any]) -> Any:
        try:
            return render(self.templates[kind], values)
        except TemplateError as exc:
            raise Rejected(f"{self.name}: templates.{kind}: {exc}") from None

    def order_body(self, order: OrderDoc) -> Any:
        """What goes to orders_path for `order` (templates.order)."""
        return self._body("order", order_values(order))

    def push_order(self, order: OrderDoc) -> str:
        if self.lookup_before_create:
            found = self.find_order(order.order_ref)
            if found is not None:
                log.info("sync.order.already_there", target=self.name, order_ref=order.order_ref, erp_id=found)
                return found
        response = self._send(
            self.methods["order"],
            self._fill("orders_path", order_ref=order.order_ref),
            json_body=self.order_body(order),
            idempotency_key=order.order_ref,
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
        if not response.content.strip():
            # 201/204 without a body (a PUT to the order's own URL often answers so): its id is ours, or a lookup's.
            erp_id = self.find_order(order.order_ref) or order.order_ref
        else:
            erp_id = self._order_id(self._order_doc(self._json(response)), response)
        log.info("sync.order.created", target=self.name, order_ref=order.order_ref, erp_id=erp_id)
        return erp_id

    def find_order(self, order_ref: str) -> str | None:
        """The ERP's id for our order, or None when it does not have it."""
        if not self.paths["order_lookup_path"]:
            return None
        response = self._send("GET", self._fill("order_lookup_path", order_ref=order_ref))
        if response.status_code == 404:
            return None
        self._raise_for(response)
        doc = self._order_doc(self._json(response))
        return None if doc is None else self._order_id(doc, response)

    def _order_doc(self, data: Any) -> Any:
        """The document in a create or lookup answer: under order_item_key when it is wrapped, the first of a list
        (a lookup by query), None for an empty list."""
        if self.order_item_key and isinstance(data, Mapping) and _dig(data, self.order_item_key) is not None:
            data = _dig(data, self.order_item_key)
        if isinstance(data, list):
            return data[0] if data else None
        return data

    def _order_id(self, doc: Any, response: httpx.Response, id_field: str = "") -> str:
        id_field = id_field or self.order_id_field
        erp_id = _dig(doc, id_field)
        if erp_id in (None, ""):
            raise Rejected(
                f"{self.name}: the ERP's answer to {response.request.method}"
                f" {response.request.url.path} has no {id_field!r}"
                " (set order_id_field / payment_id_field / order_item_key)",
                status=response.status_code,
            )
        return str(erp_id)

    def push_status(self, order_ref: str, status: str, reason: str | None) -> None:
        """A status change without the order (the engine calls push_change instead: this adapter declares AMENDS)."""
        self._push_status_body(order_ref, status, status_values(order_ref, status, reason))

    def push_change(self, change: OrderChange) -> None:
        """An order's status change or voided line, with the order as it stands now, to status_path through the
        status template. Its idempotency key is the outbox row's plus a digest of the body: a retry of the same
        state is the same request, and a retry after the order changed again (a second void meanwhile) carries the
        newer state under a new key, which an ERP that keeps keys would otherwise refuse as a key reused with
        another body. Applying the newest state twice changes nothing."""
        if not self.paths["status_path"]:
            return
        void = change.event == "line_voided"
        status = "line_voided" if void else change.status
        reason = change.reason
        if void:
            reason = change.void_words()
        values = status_values(
            change.order_ref,
            status,
            reason,
            event=change.event,
            order_status=change.status,
            line_no=change.line_no,
            void_reason=change.reason if void else None,
            void_quantity=change.quantity if void else None,
            left=change.left if void else None,
            change_ref=change.change_ref,
            order=order_values(change.order) if change.order is not None else None,
            order_body=self.order_body(change.order) if change.order is not None else None,
        )
        self._push_status_body(change.order_ref, status, values, key=change.change_ref)

    def _push_status_body(self, order_ref: str, status: str, values: Mapping[str, Any], key: str = "") -> None:
        if not self.paths["status_path"]:
            return
        body = self._body("status", values)
        # `<order_ref>:status:<status>` (or the row's key) and a digest of the body: an order reaches a status once
        # but may have several lines voided, and each must be its own request.
        digest = hashlib.sha256(encode_body(body)).hexdigest()[:16]
        response = self._send(
            self.methods["status"],
            self._fill("status_path", order_ref=order_ref, status=status),
            json_body=body,
            idempotency_key=f"{key or f'{order_ref}:status:{status}'}:{digest}",
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
        """A payment to payments_path, a refund to refunds_path (payments_path unless set), each with its template;
        looked up first (payment_lookup_path) and sent with its own idempotency key."""
        if payment.kind not in ("payment", "refund"):
            raise Rejected(f"{self.name}: a payment of kind {payment.kind!r} (payment or refund only)")
        path_key = "refunds_path" if payment.kind == "refund" else "payments_path"
        if not self.paths[path_key]:
            log.info("sync.payment.not_sent", target=self.name, payment_ref=payment.payment_ref, setting=path_key)
            return ""
        found = self.find_payment(payment)
        if found is not None:
            log.info("sync.payment.already_there", target=self.name, payment_ref=payment.payment_ref, erp_id=found)
            return found
        method = self.payment_methods.get(payment.method, payment.method)
        response = self._send(
            self.methods["payment"],
            self._fill(path_key, payment_ref=payment.payment_ref, kind=payment.kind, refund_of=payment.refund_of),
            json_body=self._body(payment.kind, payment_values(payment, method)),
            idempotency_key=payment.payment_ref,
        )
        if response.status_code == 409:
            found = self.find_payment(payment)
            if found is None and self.paths["payment_lookup_path"]:
                raise self.retryable(
                    f"{self.name}: the ERP answered 409 ({erp_message(response.content) or 'conflict'})"
                    f" but has no {payment.kind} {payment.payment_ref} yet",
                    response,
                )
            return found or payment.payment_ref
        self._raise_for(response)
        doc = self._order_doc(self._json(response)) if response.content.strip() else None
        erp_id = _dig(doc, self.payment_id_field) if isinstance(doc, Mapping) else None
        erp_ref = str(erp_id) if erp_id not in (None, "") else payment.payment_ref
        log.info(
            "sync.payment.created", target=self.name, payment_ref=payment.payment_ref, kind=payment.kind, erp_id=erp_ref
        )
        return erp_ref

    def find_payment(self, payment: PaymentDoc) -> str | None:
        """The ERP's id for our payment or refund, or None when it does not have it (or payment_lookup_path is
        empty)."""
        if not self.paths["payment_lookup_path"]:
            return None
        response = self._send(
            "GET", self._fill("payment_lookup_path", payment_ref=payment.payment_ref, kind=payment.kind)
        )
        if response.status_code == 404:
            return None
        self._raise_for(response)
        doc = self._order_doc(self._json(response))
        return None if doc is None else self._order_id(doc, response, self.payment_id_field)

    # -- tablebox sync check -------------------------------------------------------------------------------------
    def check(self) -> list[Check]:
        """Reachable, authenticated (and the clock, for signed requests), catalog readable, currency, every dish's
        code found, the order and payment endpoints answering; stops where the next checks cannot run."""
        checks: list[Check] = []
        try:
            response = self._send("GET", self.paths["catalog_path"], params=self.catalog_params)
        except DeliveryError as exc:
            tls = "client certificate" in exc.message  # refused in the TLS handshake: reached, not let in
            if tls:
                checks.append(Check("reachable", CheckState.OK, f"{self.where} answered the connection"))
                fix = (
                    f"Set client_cert and client_key in [sync.{self.name}]: a certificate the ERP's client CA signed,"
                    " not expired (and client_key_password for an encrypted key)"
                )
                checks.append(Check("authenticated", CheckState.FAIL, exc.message, fix))
                return checks
            fix = (
                f"Check base_url = {self.base_url!r}, the network and the ERP (or its proxy); for https with the"
                " shop's own CA set ca_file"
            )
            checks.append(Check("reachable", CheckState.FAIL, exc.message, fix))
            return checks
        checks.append(Check("reachable", CheckState.OK, f"{self.where} answered HTTP {response.status_code}"))
        if self.auth_mode == "hmac":
            checks.append(self._clock_check(response))
        if self.classify(response.status_code) is Verdict.CREDENTIALS:
            said = self.scrub(erp_message(response.content))
            checks.append(
                Check("authenticated", CheckState.FAIL, f"HTTP {response.status_code}: {said}", self._auth_fix())
            )
            return checks
        how = {"none": "no credentials", "bearer": "a bearer token", "basic": "Basic auth", "header": "an API key"}
        checks.append(
            Check(
                "authenticated",
                CheckState.OK,
                f"accepted {how.get(self.auth_mode, 'signed requests')}"
                + (" and our client certificate" if self.client_certificate else ""),
            )
        )
        catalog: Catalog | None
        try:
            catalog = self.pull_catalog()
        except DeliveryError as exc:
            checks.append(
                Check(
                    "catalog readable",
                    CheckState.FAIL,
                    exc.message,
                    "Check catalog_path, items_key, fields.* and the paging settings against what the ERP answers",
                )
            )
            catalog = None
        else:
            inactive = sum(1 for item in catalog.items if not item.active)
            checks.append(
                Check(
                    "catalog readable",
                    CheckState.OK,
                    f"{len(catalog.items)} items ({inactive} inactive) in {catalog.currency}, paging = {self.paging}",
                )
            )
        checks.append(self._currency_check())
        if catalog is not None:
            checks.append(self._codes_check(catalog))
        checks.append(self._endpoint_check("order endpoint", "order_lookup_path", order_ref=_probe_ref()))
        if self.paths["payments_path"]:
            checks.append(self._endpoint_check("payments endpoint", "payment_lookup_path", payment_ref=_probe_ref()))
            checks.append(self._methods_check())
        return checks

    def _methods_check(self) -> Check:
        """With payment_methods set, every method the box takes should have the ERP's name for it."""
        box = [str(m) for m in self.box_facts.get("payment_methods") or ()]
        if not self.payment_methods:
            named = f": {', '.join(box)}" if box else ""
            return Check("payment methods", CheckState.OK, f"sent as the box names them{named} (no payment_methods)")
        if not box:
            return Check(
                "payment methods", CheckState.WARN, "not checked: the box's payment methods are not known here"
            )
        missing = [m for m in box if m not in self.payment_methods]
        if missing:
            return Check(
                "payment methods",
                CheckState.WARN,
                f"payment_methods has no ERP name for {', '.join(missing)}: sent as the box names them",
                f'Add them to payment_methods in [sync.{self.name}] (e.g. {missing[0]} = "...")',
            )
        mapped = ", ".join(f"{m} = {self.payment_methods[m]}" for m in box)
        return Check("payment methods", CheckState.OK, mapped)

    def _auth_fix(self) -> str:
        return {
            "none": f"The ERP wants credentials: set auth and its settings in [sync.{self.name}]",
            "bearer": f"Check token in [sync.{self.name}] (or ${{TABLEBOX_SYNC_{self.name.upper()}_TOKEN}}) and"
            " that the ERP's API user is active",
            "basic": f"Check username and password of [sync.{self.name}] and that the ERP's user may use the API",
            "header": f"Check api_key / api_key_header (or auth_header) of [sync.{self.name}]",
            "hmac": f"Check hmac_key_id, hmac_secret and hmac_secret_encoding of [sync.{self.name}] against the"
            " ERP's copy, and the box's clock",
        }[self.auth_mode] + (
            "; and that the ERP trusts the CA of client_cert (and the certificate has not expired)"
            if self.client_certificate
            else ""
        )

    def _clock_check(self, response: httpx.Response) -> Check:
        off = self._clock_offset(response)
        if off is None:
            return Check("clock", CheckState.WARN, "not checked: the ERP's answer has no Date header")
        if abs(off) > self.hmac_window:
            return Check(
                "clock",
                CheckState.FAIL,
                f"the box's clock is {abs(off):.0f} s {'behind' if off > 0 else 'ahead of'} the ERP's; signed"
                f" requests more than {self.hmac_window} s off are refused",
                "Set the box's time (NTP: ntp_server; `timedatectl`), or the ERP's",
            )
        return Check("clock", CheckState.OK, f"the box and the ERP agree within {max(1, round(abs(off)))} s")

    def _clock_offset(self, response: httpx.Response) -> float | None:
        """The ERP's clock minus ours (seconds), from its Date header; None without one."""
        try:
            when = parsedate_to_datetime(response.headers.get("date", ""))
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return (when - datetime.fromtimestamp(self.hmac.clock(), UTC)).total_seconds()

    def _currency_check(self) -> Check:
        box = self.box_facts.get("currency")
        if not box:
            return Check("currency", CheckState.WARN, "not checked: the box's currency is not known here")
        if str(box).upper() != self.currency:
            return Check(
                "currency",
                CheckState.FAIL,
                f"the box sells in {box}, this target's currency is {self.currency}",
                f"Set currency = {str(box)!r} in [sync.{self.name}] if the ERP prices in {box}",
            )
        return Check("currency", CheckState.OK, f"{self.currency} on both sides")

    def _codes_check(self, catalog: Catalog) -> Check:
        if not self.expected_codes:
            return Check(
                "dish codes", CheckState.WARN, "not checked: no dish has an ERP code", "Give the dishes their ERP codes"
            )
        items = {item.code: item for item in catalog.items}
        missing = [code for code in self.expected_codes if code not in items]
        inactive = [code for code in self.expected_codes if code in items and not items[code].active]
        if not missing and not inactive:
            return Check(
                "dish codes", CheckState.OK, f"all {len(self.expected_codes)} dishes' codes are in the catalog"
            )
        parts = []
        if missing:
            parts.append(
                f"{len(missing)} not in the ERP's catalog: {', '.join(missing[:10])}{' ...' * (len(missing) > 10)}"
            )
        if inactive:
            parts.append(
                f"{len(inactive)} disabled in the ERP: {', '.join(inactive[:10])}{' ...' * (len(inactive) > 10)}"
            )
        return Check(
            "dish codes",
            CheckState.FAIL,
            f"of {len(self.expected_codes)} dishes' codes, " + "; ".join(parts),
            "Create or enable those items in the ERP, or correct the dishes' ERP codes; orders with them are refused",
        )

    def _endpoint_check(self, what: str, key: str, **values: str) -> Check:
        """Ask for a document that cannot exist: a 404 (or an empty list) is the endpoint answering."""
        if not self.paths[key]:
            return Check(what, CheckState.WARN, f"not checked: {key} is empty (nothing to ask without creating one)")
        path = self._fill(key, kind="payment", **values)
        try:
            response = self._send("GET", path)
        except DeliveryError as exc:
            return Check(what, CheckState.FAIL, exc.message, f"Check {key} and that the ERP is up")
        if response.status_code == 404 or (response.status_code == 200 and self._is_empty_lookup(response)):
            return Check(what, CheckState.OK, f"GET {path.split('?')[0]} answered HTTP {response.status_code}")
        said = self.scrub(erp_message(response.content))
        verdict = self.classify(response.status_code)
        if verdict is Verdict.CREDENTIALS:
            fix = f"The ERP's API user may read the catalog but not this endpoint: give it the right to ({key})"
        elif response.status_code == 200:
            fix = f"The ERP says it has a document for a made-up reference: check {key}"
        else:
            fix = f"Check {key} against the ERP's API"
        return Check(what, CheckState.FAIL, f"GET {path} answered HTTP {response.status_code}: {said}", fix)

    def _is_empty_lookup(self, response: httpx.Response) -> bool:
        try:
            return self._order_doc(self._json(response)) is None
        except DeliveryError:
            return False

    # -- HTTP ---------------------------------------------------------------------------------------------------
    def _get_json(self, path: str, params: Mapping[str, Any]) -> Any:
        body, _ = self._get_page(path, params)
        return body

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        headers = {self.idempotency_header: idempotency_key} if idempotency_key and self.idempotency_header else {}
        content = encode_body(json_body) if json_body is not None else None
        if content is not None:
            headers["Content-Type"] = "application/json"
        return self.send(method, path, params=params, content=content, headers=headers or None)

    def _raise_for(self, response: httpx.Response) -> None:
        self.raise_for_status(response, self.scrub(erp_message(response.content)))

    def credentials_refused(self, response: httpx.Response, said: str) -> Exception:
        status = response.status_code
        if self.auth_mode == "hmac":
            off = self._clock_offset(response)
            if off is not None and abs(off) > self.hmac_window:
                # Our signature is stale because our clock is wrong; once NTP sets it, the same row goes through.
                return self.retryable(
                    f"{self.name}: the ERP refused our signed request (HTTP {status}{': ' + said if said else ''}):"
                    f" the box's clock is {abs(off):.0f} s off the ERP's (its Date header); set the box's time",
                    response,
                )
        return self.rejected(
            f"{self.name}: the ERP refused our credentials (HTTP {status}{': ' + said if said else ''})"
            f" — check the API key / credentials (auth = {self.auth_mode!r}) of [sync.{self.name}]",
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


def _probe_ref() -> str:
    return f"tablebox-check-{secrets.token_hex(8)}"


# What sync.adapters.adapter_class(kind) answers: the class whose declarations (capabilities) the worker reads.
ADAPTER = RestAdapter
