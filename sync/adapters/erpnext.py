"""The ERPNext / Frappe adapter: items, prices and stock from the Frappe REST API; each order once as the document
the integrator chose (a submitted Sales Order, or a POS-style Sales Invoice / POS Invoice paid from the box),
recognised by a unique custom field holding our order id; payments, refunds, cancels and voids as ERPNext's own
documents (Payment Entry, the invoice's payments, cancel, amendment, credit note).

Settings (`[sync.NAME]` with `kind = "erpnext"`; secrets may come from TABLEBOX_SYNC_<NAME>_<KEY>)::

    base_url = "https://erp.example.com"      # required: the site's address (no /api suffix)
    verify_tls = true                         # false only for a test site with a self-signed certificate
    ca_file = "/etc/tablebox/erp-ca.pem"      # or trust this CA for it
    api_key = "..."                           # SECRET: the API user's key    } sent as
    api_secret = "..."                        # SECRET: and its secret        } Authorization: token KEY:SECRET
    timeout_seconds = 10                      # every request (connect, read, write) gives up after this
    document = "sales_order"                  # or "sales_invoice" or "pos_invoice" (see below)
    price_list = "Standard Selling"           # the selling Price List read for prices and named on orders
    warehouse = "Stores - TB"                 # stock is read from this warehouse's Bins (unset: all warehouses
                                              # summed); order lines name it as their warehouse
    customer = "Walk-in Customer"             # the Customer every order and payment is booked to
    company = "Tablebox Restaurant"           # unset: the API user's default company
    pos_profile = ""                          # pos_invoice: required; sales_invoice: optional
    payment_modes = {cash = "Cash", card = "Credit Card", wechat = "WeChat Pay", alipay = "Alipay", other = "Other"}
                                              # the box's payment methods -> ERPNext Modes of Payment (each needs
                                              # an account for the company; given keys replace the defaults)
    order_ref_field = "tablebox_order_ref"    # the custom field holding our order id (see "Setting up ERPNext")
    payment_ref_field = ""                    # a Unique custom field on Payment Entry for our payment id (unset:
                                              # found by reference_no, which ERPNext does not keep unique)
    remark_field = "po_no"                    # where "Tablebox <ticket> [<order id>], table <table>, notes" is
                                              # written (140 characters at most); default po_no on a Sales Order,
                                              # remarks on an invoice; "" = none
    submit = true                             # sales_order: submit the order (false leaves drafts: never in the
                                              # ledger, no stock reserved; issue 15 item 6)
    delivery_days = 0                         # Sales Order delivery date = the ticket's business day + this
    service_charge_item = ""                  # an item code: the service charge goes as a line of that item
    item_group_as_category = true             # the Item Group becomes the dish's category
    default_language = "zh"                   # the language ERPNext's item_name is written in
    page_size = 100                           # rows asked per page (limit_page_length)

Catalog and stock: Items with is_sales_item = 1 and no variants (item_code, item_name, item_group, disabled: a
disabled item is sent as inactive), prices from the Item Price rows of `price_list` (read exactly as decimals; the
row valid today, for no customer or for `customer`, the latest valid_from winning), all in the price list's
currency; stock per item is actual_qty - reserved_qty of its Bin, floored to whole portions, never below 0. Orders
carry the lines at the box's prices (ignore_pricing_rule) with the rounded total off (disable_rounded_total: the
guest pays the exact amount, and an invoice must come out paid in full).

Documents (`document`):
- "sales_order" (default): each order is a submitted Sales Order (stock reserved, in ERPNext's order book at once). A
  payment is a submitted Payment Entry (Receive, the mode of payment mapped from the box's method, reference_no =
  our payment id) allocated to the visit's orders as advances (never more than each one's grand total minus what
  is already paid; the rest stays unallocated). Billing (Sales Invoice from the orders) is left to ERPNext's users.
- "sales_invoice": each order is a draft Sales Invoice with is_pos = 1 and update_stock = 1, a cash payment row at
  0; a payment fills the rows of the visit's invoices in order and submits each invoice once it
  is paid in full (ERPNext's POS does the same: the sale reaches the ledger and the stock when it is paid). An
  invoice's remarks keep "[tablebox payment <id> <amount> <mode>]" for each payment booked in it (how a retry knows);
  money beyond the visit's invoices is a Payment Entry (Receive, unallocated).
- "pos_invoice": the same with POS Invoices (for shops that run ERPNext's POS closing); ERPNext refuses a POS
  Invoice without payment rows even as a draft (validate_mode_of_payment), so the cash row goes on it at 0.
Refunds are Payment Entries (Pay, to the customer) naming the payment refunded and the reason. A cancelled order:
its submitted Sales Order is cancelled (docstatus 2); a draft is deleted (a draft was never in the ledger; part of a
payment booked in a draft invoice's rows becomes a Payment Entry first); a paid (submitted) invoice is returned whole
by a credit note (cancelling it would take its payments out of the ledger). A voided line: a submitted Sales Order
is cancelled and amended (amended_from; the amendment carries the order as it is now, without our unique ref: it is
found through amended_from); a draft is updated; a submitted invoice gets a credit note (is_return, return_against)
for what was voided. Comments are never written (only System Managers may).

Setting up ERPNext: add a custom field to the order doctype (Customize Form): fieldname `tablebox_order_ref`, type
Data, **Unique**, **No Copy**, Read Only. The API user needs the roles Sales User, Accounts User and Stock User (read
Item, Item Price, Bin, Customer, Warehouse, Mode of Payment, POS Profile; create, submit and cancel the order
doctype and Payment Entry; delete its drafts). `tablebox sync check` says what is missing.

Exactly once: a Frappe POST has no idempotency key and ignores a client-chosen name, so a retried POST makes a
second document. Before creating, we GET the order doctype filtered on `order_ref_field = our order id`; found, we
return its name. The unique field makes ERPNext refuse a second insert (417 UniqueValidationError): we look it up
again and return it. An amendment's name is fixed (`<name>-1`), so a second one is a 409 on the name. A credit
note is booked only for what the invoice less its submitted returns holds beyond the order, and carries the unique
field as "<order id> return <n>", so a retry racing its own first note is refused and looks again. A Payment
Entry is looked up by reference_no = our payment id before it is created; reference_no is not unique in ERPNext, so
a retry racing an entry still being saved could book it twice, unless `payment_ref_field` names a Unique custom
field on Payment Entry (then the second insert is refused and looked up, as for orders).

Errors (the classification every target shares, `sync/adapters/http.py`, plus ERPNext's 423 Locked): connection
refused, timeouts, a dropped connection, 5xx, 408, 423, 425 and 429 are `Retryable` (with the answer's Retry-After:
Frappe's rate limiter answers a plain-text 429 with one); 401/403 are `Rejected` ("check the API key"); other 4xx
are `Rejected` with ERPNext's own message. A missing custom field ("Unknown column", a 500 from MariaDB) is
`Rejected` with the setup hint; a hardened site (allow_error_traceback off) says only `{"exc_type":
"OperationalError"}`, so the adapter then asks the same list without our field: if that answers, the field is what
is missing (Rejected with the hint), else the site is in trouble (Retryable). Logs name the target and the URL,
never a header or a key; the secrets are also scrubbed from every error message.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import httpx
import structlog

from appliance.domain.errors import DomainError
from appliance.domain.money import Currency
from appliance.errors import TableboxError
from sync.adapters.base import (
    Capability,
    Catalog,
    CatalogItem,
    Check,
    CheckState,
    DeliveryError,
    OrderChange,
    OrderDoc,
    PaymentDoc,
    Rejected,
    Retryable,
)
from sync.adapters.http import HttpAdapter, Verdict, base_url_setting, retry_after_seconds

log = structlog.get_logger("sync.erpnext")

DOCUMENTS = {"sales_order": "Sales Order", "sales_invoice": "Sales Invoice", "pos_invoice": "POS Invoice"}
INVOICES = frozenset({"Sales Invoice", "POS Invoice"})
DEFAULT_REMARK_FIELD = {"Sales Order": "po_no", "Sales Invoice": "remarks", "POS Invoice": "remarks"}
# The box's payment methods (appliance/db/payments.py METHODS) -> ERPNext Mode of Payment names. ERPNext installs
# Cash and Credit Card (erpnext/setup/setup_wizard/operations/install_fixtures.py); the others are created once.
DEFAULT_PAYMENT_MODES = {
    "cash": "Cash",
    "card": "Credit Card",
    "wechat": "WeChat Pay",
    "alipay": "Alipay",
    "other": "Other",
}
# What the API user needs (frappe/erpnext doctype permissions: Sales Order / Sales Invoice / POS Invoice and
# Payment Entry for Sales User / Accounts User, Bin and Warehouse for Stock User).
NEEDED_ROLES = {
    "Sales Order": ("Sales User", "Accounts User", "Stock User"),
    "Sales Invoice": ("Accounts User", "Stock User"),
    "POS Invoice": ("Accounts User", "Stock User"),
}
REMARK_CHARS = 140  # po_no is a Data field: 140 characters
# Refusals that pass: a lock or deadlock in MariaDB, and a document changed since we read it (we sent its
# `modified`; frappe/model/document.py check_if_latest): the retry reads it again.
RETRYABLE_EXC_TYPES = frozenset({"QueryDeadlockError", "QueryTimeoutError", "TimestampMismatchError"})
MAX_PAGES = 10_000
MAX_AMENDMENTS = 100
_MESSAGE_CAP = 300
_TAG = re.compile(r"<[^>]+>")
_UNKNOWN_COLUMN = re.compile(r"Unknown column '(?:[^'.]*\.)?`?([^'`]+)`?'")
# Our unique field on a credit note: "<order ref> return <n>" (the order's n-th note; the field is Unique).
RETURN_SEP = " return "
# "[tablebox payment <ref> <amount> <mode>]" in an invoice's remarks: a payment booked in its payment rows.
_PAID_MARK = re.compile(r"\[tablebox payment (\S+) (-?[0-9.]+) ([^\]]+)\]")


def create(name: str, config: Mapping[str, Any]) -> ERPNextAdapter:
    return ERPNextAdapter(name, config)


# -- money and quantities -----------------------------------------------------------------------------------
def decimal_of(value: Any) -> Decimal | None:
    """A number from Frappe's JSON (read with parse_float=Decimal, so never through a float) as a Decimal."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def rate_minor(rate: Decimal, currency: Currency) -> tuple[int, bool]:
    """A major-unit rate (38.5) in minor units (3850), and whether it had to be rounded (half up) because
    ERPNext keeps more decimals than the currency has."""
    scaled = rate.scaleb(currency.exponent)
    minor = int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return minor, scaled != minor


def major_number(amount_minor: int, currency: Currency) -> int | float:
    """An amount as the JSON number Frappe expects (3850 fen -> 38.5). JSON has one kind of number and
    Frappe reads it as a float anyway; the float is made from the exact decimal and written back by its
    shortest repr, which for amounts like these is that same decimal text (checked), so nothing is lost on
    the wire."""
    if currency.exponent == 0:
        return amount_minor
    exact = Decimal(amount_minor).scaleb(-currency.exponent)
    number = float(exact)
    if Decimal(repr(number)) != exact:
        raise Rejected(f"the amount {exact} cannot be written exactly as a JSON number")
    return number


def whole_quantity(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def _number(config: Mapping[str, Any], key: str, default: float, where: str, kind: type = int) -> Any:
    value = config.get(key, default)
    try:
        if isinstance(value, bool):
            raise ValueError
        return kind(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {key} must be a number, got {value!r}") from None


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "no", "off")
    return bool(value)


# -- Frappe's error answers ---------------------------------------------------------------------------------
class FrappeError(TableboxError):
    """A non-2xx answer, read: the HTTP status, Frappe's exc_type, its message for people, the raw text."""

    def __init__(
        self, status: int, exc_type: str, message: str, text: str, location: str = "", retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.exc_type = exc_type
        self.message = message
        self.text = text
        self.location = location
        self.retry_after = retry_after

    @property
    def is_duplicate(self) -> bool:
        """ERPNext refusing a second document with our unique order id."""
        if self.status == 409 and self.exc_type in ("DuplicateEntryError", "NameError", ""):
            return True
        return self.status == 417 and (self.exc_type == "UniqueValidationError" or "Duplicate entry" in self.text)

    @classmethod
    def from_response(cls, response: httpx.Response) -> FrappeError:
        text = response.content.decode("utf-8", "replace")
        exc_type, message = "", ""
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if isinstance(body, Mapping):
            exc_type = str(body.get("exc_type") or "")
            message = server_messages(body.get("_server_messages"))
            if not message and body.get("exception"):
                message = str(body["exception"]).strip().splitlines()[-1]
                message = re.sub(r"^[\w.]+(?:Error|Exception):\s*", "", message)
            if not message and isinstance(body.get("message"), str):
                message = body["message"]
        if not message:
            message = exc_type or " ".join(_TAG.sub(" ", text).split())[:120] or f"HTTP {response.status_code}"
        return cls(
            response.status_code,
            exc_type,
            message[:_MESSAGE_CAP],
            text,
            response.headers.get("location", ""),
            retry_after_seconds(response.headers.get("retry-after")),
        )


def server_messages(raw: Any) -> str:
    """Frappe's `_server_messages`: a JSON list of JSON-encoded {"message": ...} objects, messages in HTML."""
    if not raw:
        return ""
    try:
        entries = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return str(raw)
    messages = []
    for entry in entries if isinstance(entries, list) else [entries]:
        try:
            data = json.loads(entry) if isinstance(entry, str) else entry
        except ValueError:
            data = entry
        text = data.get("message") if isinstance(data, Mapping) else data
        if text:
            messages.append(" ".join(html.unescape(_TAG.sub("", str(text))).split()))
    return "; ".join(messages)


class ERPNextAdapter(HttpAdapter):
    """One ERPNext site; blocking calls, each with its own timeout."""

    capabilities = frozenset({Capability.CATALOG_PULL, Capability.AMENDS})
    peer = "ERPNext"
    extra_retryable = frozenset({423})  # Locked: a document another request is saving
    expected_codes: Sequence[str] = ()  # set by sync/check.py before check(): the menu's ERP codes
    box_facts: Mapping[str, Any] = {}  # likewise: currency, prices_include_tax, payment_methods, ...

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        where = f"sync target {name}"
        base_url_setting(name, config)  # the first thing to fix when it is wrong
        api_key, api_secret = str(config.get("api_key") or ""), str(config.get("api_secret") or "")
        if not api_key or not api_secret:
            raise ValueError(f"{where}: ERPNext needs api_key and api_secret (an API user's keys)")
        document = str(config.get("document") or "")
        legacy = str(config.get("doctype") or "")  # before issue 15: doctype = "Sales Order" | "POS Invoice"
        if not document and legacy:
            by_doctype = {v: k for k, v in DOCUMENTS.items()}
            if legacy not in by_doctype:
                raise ValueError(f"{where}: doctype must be one of {', '.join(by_doctype)}, got {legacy!r}")
            document = by_doctype[legacy]
        document = document or "sales_order"
        if document not in DOCUMENTS:
            raise ValueError(f"{where}: document must be one of {', '.join(DOCUMENTS)}, got {document!r}")
        self.document = document
        self.doctype = DOCUMENTS[document]
        self.price_list = str(config.get("price_list") or "Standard Selling")
        self.warehouse = str(config.get("warehouse") or "")
        self.customer = str(config.get("customer") or "Walk-in Customer")
        self.company = str(config.get("company") or "")
        self.pos_profile = str(config.get("pos_profile") or "")
        if self.doctype == "POS Invoice" and not self.pos_profile:
            raise ValueError(f'{where}: document = "pos_invoice" needs pos_profile (the POS Profile to book to)')
        modes = config.get("payment_modes") or {}
        if not isinstance(modes, Mapping) or not all(isinstance(v, str) and v for v in modes.values()):
            raise ValueError(f"{where}: payment_modes must map payment methods to Mode of Payment names")
        self.payment_modes = {**DEFAULT_PAYMENT_MODES, **{str(k): str(v) for k, v in modes.items()}}
        self.order_ref_field = str(config.get("order_ref_field") or "tablebox_order_ref")
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", self.order_ref_field):
            raise ValueError(f"{where}: order_ref_field must be a field name like tablebox_order_ref")
        self.payment_ref_field = str(config.get("payment_ref_field") or "")
        if self.payment_ref_field and not re.fullmatch(r"[a-z_][a-z0-9_]*", self.payment_ref_field):
            raise ValueError(f"{where}: payment_ref_field must be a field name like tablebox_payment_ref")
        remark = config.get("remark_field", DEFAULT_REMARK_FIELD[self.doctype])
        self.remark_field = str(remark or "")
        self.submit = _truthy(config.get("submit", True))
        self.delivery_days = _number(config, "delivery_days", 0, where)
        if self.delivery_days < 0:
            raise ValueError(f"{where}: delivery_days cannot be negative")
        self.service_charge_item = str(config.get("service_charge_item") or "")
        self.item_group_as_category = _truthy(config.get("item_group_as_category", True))
        self.default_language = str(config.get("default_language") or "zh")
        self.page_size = _number(config, "page_size", 100, where)
        if not 1 <= self.page_size <= 10_000:
            raise ValueError(f"{where}: page_size must be between 1 and 10000")
        self._accounts: dict[str, str] = {}  # Mode of Payment -> its account for the company (read once)
        super().__init__(
            name,
            config,
            secrets=(api_key, api_secret, f"{api_key}:{api_secret}"),
            headers={"Authorization": f"token {api_key}:{api_secret}", "Accept": "application/json"},
        )

    def __repr__(self) -> str:
        return f"ERPNextAdapter({self.name!r}, {self.base_url!r})"

    # -- HTTP -----------------------------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """One request: the JSON answer of a 2xx (numbers as Decimal), `FrappeError` for any other status,
        `Retryable` when no answer came."""
        content = json.dumps(body, ensure_ascii=False).encode() if body is not None else None
        sent_headers = {"Content-Type": "application/json", **(headers or {})} if content is not None else headers
        response = self.send(method, path, params=params, content=content, headers=sent_headers)
        if not 200 <= response.status_code < 300:
            raise FrappeError.from_response(response)
        try:
            return json.loads(response.content or b"null", parse_float=Decimal)
        except ValueError:
            raise Rejected(
                f"{self.name}: {self.base_url}{path} answered {response.status_code} with something that"
                " is not JSON: is base_url the ERPNext site?",
                status=response.status_code,
            ) from None

    def _checked(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        try:
            return self._call(method, path, **kwargs)
        except FrappeError as err:
            raise self._failure(err, what) from None

    def _failure(self, err: FrappeError, what: str, order: OrderDoc | None = None) -> DeliveryError:
        """What a refused request means for the worker: try later, or a person must fix something."""
        status, message = err.status, self.scrub(err.message)
        column = _UNKNOWN_COLUMN.search(err.text)
        if column:
            return self._missing_field(column.group(1), what, status)
        if status == 401 or err.exc_type in ("AuthenticationError", "SessionExpired"):
            return Rejected(
                f"{self.name}: ERPNext refused the API key (HTTP {status}): check the API key and"
                f" secret of [sync.{self.name}]",
                status=status,
            )
        if status == 403 or err.exc_type == "PermissionError":
            return Rejected(
                f"{self.name}: ERPNext refused {what} (HTTP {status}: {message}): check the API key"
                " and the roles of its user",
                status=status,
            )
        if self.classify(status) is Verdict.RETRY or err.exc_type in RETRYABLE_EXC_TYPES:
            return Retryable(
                f"{self.name}: ERPNext answered {status} to {what}: {message}",
                status=status,
                retry_after=err.retry_after,
            )
        if 300 <= status < 400:
            return Rejected(
                f"{self.name}: ERPNext redirected {what} to {err.location or '?'}: set base_url to the"
                " site's final address",
                status=status,
            )
        text = f"{self.name}: ERPNext refused {what} (HTTP {status}): {message}"
        if order is not None:
            dishes = [
                f"{line.code} is our {line.name!r}" for line in order.lines if line.code and line.code in err.text
            ]
            if dishes:
                text += f" ({'; '.join(dict.fromkeys(dishes))}: check its ERP code, or create the item in ERPNext)"
        return Rejected(text, status=status)

    def _missing_field(self, field: str, what: str, status: int | None) -> Rejected:
        hint = (
            f" (add the custom field {field} to {self.doctype}: type Data, Unique, No Copy)"
            if field == self.order_ref_field
            else ""
        )
        return Rejected(f"{self.name}: ERPNext has no field {field!r} for {what}{hint}", status=status)

    @staticmethod
    def _resource(doctype: str, name: str | None = None) -> str:
        path = f"/api/resource/{quote(doctype, safe='')}"
        return f"{path}/{quote(name, safe='')}" if name is not None else path

    def _rows(
        self,
        doctype: str,
        fields: Sequence[str],
        filters: Sequence[Sequence[Any]],
        *,
        order_by: str,
        limit: int,
    ) -> list[dict[str, Any]]:
        """One page of a Frappe list; FrappeError as it came."""
        params = {
            "fields": json.dumps(list(fields)),
            "filters": json.dumps([list(f) for f in filters]),
            "order_by": order_by,
            "limit_start": 0,
            "limit_page_length": limit,
        }
        answer = self._call("GET", self._resource(doctype), params=params)
        data = answer.get("data") if isinstance(answer, Mapping) else None
        if not isinstance(data, list) or not all(isinstance(row, Mapping) for row in data):
            raise Rejected(f"{self.name}: ERPNext's answer to the list of {doctype} has no list under 'data'")
        return [dict(row) for row in data]

    def _list(
        self,
        doctype: str,
        fields: Sequence[str],
        filters: Sequence[Sequence[Any]],
        what: str,
        *,
        order_by: str = "name asc",
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Every row of a Frappe list, page by page (limit_start / limit_page_length) until a short page;
        with `limit`, one page of at most that many rows."""
        size = limit or self.page_size
        rows: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            params = {
                "fields": json.dumps(list(fields)),
                "filters": json.dumps([list(f) for f in filters]),
                "order_by": order_by,
                "limit_start": len(rows),
                "limit_page_length": size,
            }
            answer = self._checked("GET", self._resource(doctype), what, params=params)
            data = answer.get("data") if isinstance(answer, Mapping) else None
            if not isinstance(data, list) or not all(isinstance(row, Mapping) for row in data):
                raise Rejected(f"{self.name}: ERPNext's answer to {what} has no list under 'data'")
            rows.extend(dict(row) for row in data)
            if limit is not None or len(data) < size or len(data) > size:
                return rows
        raise Rejected(f"{self.name}: {what} never ended after {MAX_PAGES} pages")

    # -- catalog and stock ------------------------------------------------------------------------------------
    def pull_catalog(self) -> Catalog:
        items = self._list(
            "Item",
            ["item_code", "item_name", "item_group", "disabled"],
            [["Item", "is_sales_item", "=", 1], ["Item", "has_variants", "=", 0]],
            "the item list",
        )
        prices = self._list(
            "Item Price",
            ["item_code", "price_list_rate", "currency", "valid_from", "valid_upto", "customer"],
            [["Item Price", "price_list", "=", self.price_list]],
            f"the prices of {self.price_list!r}",
        )
        chosen = self._todays_prices(prices)
        currencies = sorted({str(row.get("currency") or "") for row in chosen.values()})
        if len(currencies) > 1:
            raise Rejected(f"{self.name}: price list {self.price_list!r} mixes currencies ({', '.join(currencies)})")
        currency_code = currencies[0] if currencies else None
        if currency_code == "":
            raise Rejected(f"{self.name}: the prices of {self.price_list!r} do not say their currency")
        currency = None
        if currency_code is not None:
            try:
                currency = Currency.of(currency_code)
            except DomainError:
                raise Rejected(
                    f"{self.name}: price list {self.price_list!r} is in {currency_code}, a currency"
                    " Tablebox does not know"
                ) from None
        catalog: list[CatalogItem] = []
        for row in items:
            code = str(row.get("item_code") or row.get("name") or "").strip()
            if not code:
                continue
            price_minor = None
            price = chosen.get(code)
            if price is not None and currency is not None:
                rate = decimal_of(price.get("price_list_rate"))
                if rate is None or rate < 0:
                    log.warning(
                        "sync.catalog.bad_price",
                        target=self.name,
                        code=code,
                        price=str(price.get("price_list_rate"))[:40],
                    )
                else:
                    price_minor, rounded = rate_minor(rate, currency)
                    if rounded:
                        log.warning(
                            "sync.catalog.price_rounded",
                            target=self.name,
                            code=code,
                            price=str(rate),
                            price_minor=price_minor,
                        )
            name = str(row.get("item_name") or "").strip() or code
            group = str(row.get("item_group") or "").strip()
            catalog.append(
                CatalogItem(
                    code=code,
                    names={self.default_language: name},
                    price_minor=price_minor,
                    category=group if self.item_group_as_category and group else None,
                    active=not _truthy(row.get("disabled")),
                )
            )
        log.info(
            "sync.catalog.read",
            target=self.name,
            url=self.base_url,
            items=len(catalog),
            prices=len(chosen),
            currency=currency_code,
        )
        return Catalog(items=catalog, currency=currency_code)

    def _todays_prices(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
        """Per item, the Item Price row that applies today to our customer: valid today, for no customer or
        for ours (ours first), the latest valid_from."""
        today = date.today().isoformat()
        best: dict[str, tuple[tuple[int, str], Mapping[str, Any]]] = {}
        for row in rows:
            code = str(row.get("item_code") or "")
            customer = str(row.get("customer") or "")
            valid_from, valid_upto = str(row.get("valid_from") or ""), str(row.get("valid_upto") or "")
            if not code or (customer and customer != self.customer):
                continue
            if (valid_from and valid_from[:10] > today) or (valid_upto and valid_upto[:10] < today):
                continue
            rank = (1 if customer else 0, valid_from)
            if code not in best or rank > best[code][0]:
                best[code] = (rank, row)
        return {code: row for code, (_, row) in best.items()}

    def pull_stock(self) -> dict[str, int]:
        filters = [["Bin", "warehouse", "=", self.warehouse]] if self.warehouse else []
        rows = self._list(
            "Bin",
            ["item_code", "warehouse", "actual_qty", "reserved_qty"],
            filters,
            f"the stock of {self.warehouse or 'all warehouses'}",
        )
        totals: dict[str, Decimal] = {}
        for row in rows:
            code = str(row.get("item_code") or "").strip()
            actual = decimal_of(row.get("actual_qty"))
            if not code or actual is None:
                continue
            available = actual - (decimal_of(row.get("reserved_qty")) or Decimal(0))
            totals[code] = totals.get(code, Decimal(0)) + available
        # Whole portions only; ERPNext may go below zero (negative stock allowed), we do not.
        return {code: max(0, whole_quantity(qty)) for code, qty in totals.items()}

    # -- orders ---------------------------------------------------------------------------------------------
    def find_order(self, order_ref: str, extra_fields: Sequence[str] = ()) -> dict[str, Any] | None:
        """The document holding our order id (name, docstatus, ...), or None: the one not cancelled if there
        is one (a person may have cancelled and re-entered it), else the first."""
        fields = ["name", "docstatus", *extra_fields]
        filters = [[self.doctype, self.order_ref_field, "=", order_ref]]
        what = f"the lookup of order {order_ref}"
        try:
            rows = self._rows(self.doctype, fields, filters, order_by="creation asc", limit=20)
        except FrappeError as err:
            raise self._lookup_failure(err, what) from None
        live = [row for row in rows if int(row.get("docstatus") or 0) != 2]
        found = live or rows
        return found[0] if found else None

    def _lookup_failure(self, err: FrappeError, what: str) -> DeliveryError:
        """A lookup by our field failed. A hardened site says only {"exc_type": "OperationalError"} for a column
        that is not there (frappe/frappe frappe/utils/response.py report_error: no `exception` unless
        allow_error_traceback); ask the same list without our field: if that answers, our field is what is
        missing (Rejected with the hint), else the site itself is in trouble (Retryable)."""
        if err.status == 500 and err.exc_type == "OperationalError" and not _UNKNOWN_COLUMN.search(err.text):
            try:
                self._rows(self.doctype, ["name"], [], order_by="creation asc", limit=1)
            except FrappeError:
                return self._failure(err, what)
            return self._missing_field(self.order_ref_field, what, err.status)
        return self._failure(err, what)

    def current(self, order_ref: str) -> dict[str, Any] | None:
        """Our order's document as it stands: the one holding our id, then its newest amendment (amendments do
        not carry the id: it is unique); None when ERPNext has none (never delivered, or a draft deleted)."""
        found = self.find_order(order_ref)
        if found is None:
            return None
        for _ in range(MAX_AMENDMENTS):
            newer = self._list(
                self.doctype,
                ["name", "docstatus"],
                [[self.doctype, "amended_from", "=", found["name"]]],
                f"the amendments of {found['name']}",
                order_by="creation asc",
                limit=5,
            )
            if not newer:
                return found
            found = next((row for row in newer if int(row.get("docstatus") or 0) != 2), newer[-1])
        raise Rejected(f"{self.name}: order {order_ref} was amended more than {MAX_AMENDMENTS} times in ERPNext")

    def get_doc(self, doctype: str, name: str) -> dict[str, Any]:
        answer = self._checked("GET", self._resource(doctype, name), f"reading {doctype} {name}")
        data = answer.get("data") if isinstance(answer, Mapping) else None
        if not isinstance(data, Mapping):
            raise Rejected(f"{self.name}: ERPNext's answer for {doctype} {name} has no document")
        return dict(data)

    def push_order(self, order: OrderDoc) -> str:
        unmapped = [line.name for line in order.lines if not line.code]
        if unmapped:
            dishes = ", ".join(repr(name) for name in dict.fromkeys(unmapped))
            raise Rejected(
                f"{self.name}: order {order.ticket} has dishes ERPNext does not know: {dishes} has no ERP"
                " code; give each dish the Item Code it has in ERPNext, then retry"
            )
        found = self.find_order(order.order_ref)
        if found is not None:
            log.info("sync.order.already_there", target=self.name, order_ref=order.order_ref, erp_id=found["name"])
            return str(found["name"])
        document = self.order_document(order)
        what = f"order {order.ticket} (table {order.table})"
        try:
            answer = self._call("POST", self._resource(self.doctype), body=document)
        except FrappeError as err:
            if err.is_duplicate:
                again = self.find_order(order.order_ref)
                if again is not None:
                    log.info(
                        "sync.order.already_there",
                        target=self.name,
                        order_ref=order.order_ref,
                        erp_id=again["name"],
                        via="duplicate_entry",
                    )
                    return str(again["name"])
            raise self._failure(err, what, order) from None
        data = answer.get("data") if isinstance(answer, Mapping) else None
        if not isinstance(data, Mapping) or not data.get("name"):
            raise Rejected(f"{self.name}: ERPNext created {what} but its answer has no document name")
        log.info(
            "sync.order.created",
            target=self.name,
            url=self.base_url,
            order_ref=order.order_ref,
            erp_id=str(data["name"]),
            doctype=self.doctype,
            submitted=int(document.get("docstatus") or 0) == 1,
        )
        return str(data["name"])

    def _currency(self, code: str, what: str) -> Currency:
        try:
            return Currency.of(code)
        except DomainError:
            raise Rejected(f"{self.name}: {what} is in {code}, unknown here") from None

    def order_items(self, order: OrderDoc) -> list[dict[str, Any]]:
        """The order's lines as ERPNext item rows (with the service charge line when an item is named)."""
        currency = self._currency(order.currency, f"order {order.ticket}")
        line_extra: dict[str, Any] = {"warehouse": self.warehouse} if self.warehouse else {}
        if self.doctype == "Sales Order":
            delivery = business_day(order) + timedelta(days=self.delivery_days)
            line_extra["delivery_date"] = delivery.isoformat()
        items = [
            {"item_code": line.code, "qty": line.quantity, "rate": major_number(line.unit_price_minor, currency)}
            | line_extra
            for line in order.lines
        ]
        if self.service_charge_item and order.service_charge_minor:
            items.append(
                {
                    "item_code": self.service_charge_item,
                    "qty": 1,
                    "rate": major_number(order.service_charge_minor, currency),
                    **line_extra,
                }
            )
        return items

    def order_document(self, order: OrderDoc, *, amended_from: str = "") -> dict[str, Any]:
        """The document we POST for an order (an amendment of `amended_from` carries no order id: it is unique)."""
        day = business_day(order)
        document: dict[str, Any] = {
            "customer": self.customer,
            "currency": order.currency,
            "selling_price_list": self.price_list,
            "ignore_pricing_rule": 1,
            # The box's amounts are exact: ERPNext's rounded total (to a whole unit unless the currency sets a
            # smallest fraction) would differ from what the guest pays, and an invoice would never be paid in full.
            "disable_rounded_total": 1,
        }
        if amended_from:
            document["amended_from"] = amended_from
        else:
            document[self.order_ref_field] = order.order_ref
        if self.doctype == "Sales Order":
            delivery = (day + timedelta(days=self.delivery_days)).isoformat()
            document.update(transaction_date=day.isoformat(), delivery_date=delivery)
            if self.submit:
                document["docstatus"] = 1
        else:
            # A POS sale: is_pos with a payment row (at 0 until paid: frappe/erpnext pos_invoice.py
            # validate_mode_of_payment refuses a POS Invoice without one, even as a draft), stock moved when it is
            # submitted. Submitted only once paid (push_payment), which adds the row of each mode actually used:
            # one row here, so that only the modes a shop uses need their account set up in ERPNext.
            document.update(
                posting_date=day.isoformat(),
                set_posting_time=1,
                is_pos=1,
                update_stock=1,
                payments=[{"mode_of_payment": self.default_mode, "amount": 0}],
            )
            if self.pos_profile:
                document["pos_profile"] = self.pos_profile
        if self.company:
            document["company"] = self.company
        document["items"] = self.order_items(order)
        if self.remark_field:
            document[self.remark_field] = remark(order)
        return document

    @property
    def default_mode(self) -> str:
        """The Mode of Payment a draft invoice carries at 0: cash's (every till takes cash)."""
        return self.payment_modes.get("cash") or next(iter(self.payment_modes.values()))

    # -- cancels and voids (Capability.AMENDS) ----------------------------------------------------------------
    def push_status(self, order_ref: str, status: str, reason: str | None) -> None:
        """For an engine that does not call push_change: a cancel is a change with no order left."""
        if status == "cancelled":
            self.push_change(OrderChange(order_ref=order_ref, event="status", status=status, reason=reason, order=None))
        else:
            log.info("sync.status.not_recorded", target=self.name, order_ref=order_ref, status=status)

    def push_change(self, change: OrderChange) -> None:
        """Bring ERPNext's document to the order as it is now: cancelled, or with the lines it has now. Applying
        the same state twice changes nothing (each step looks first)."""
        ref = change.order_ref
        if change.event == "status" and change.status != "cancelled" and change.order is not None:
            return  # a status move (accepted, served...) changes no line: nothing for ERPNext to book
        current = self.current(ref)
        if current is None:
            log.warning("sync.change.order_not_there", target=self.name, order_ref=ref, change_event=change.event)
            return
        name, docstatus = str(current["name"]), int(current.get("docstatus") or 0)
        if docstatus == 1 and self.doctype in INVOICES:
            # A paid invoice holds its payments: cancelling it would take the money received out of the ledger
            # while the box still holds that payment (and the refund the box records pays it out again), and
            # ERPNext refuses to cancel an invoice a return links to. What was sent back or cancelled after paying
            # is returned instead: a credit note for what is no longer on the order (all of it when it is gone).
            gone = change.status == "cancelled" or change.order is None
            keep = {} if gone or change.order is None else _lines(self.order_items(change.order))
            self._credit_note(name, self.get_doc(self.doctype, name), keep, change)
            return
        if change.status == "cancelled" or change.order is None:
            self._cancel_document(name, docstatus, ref)
            return
        if docstatus == 2:
            if change.event == "line_voided" and self.doctype == "Sales Order":
                # Cancelled on the way to its amendment (the answer lost after the cancel): amend it now.
                self._amend(name, change.order, cancel=False)
            else:
                log.info("sync.change.already_cancelled", target=self.name, order_ref=ref, erp_id=name)
            return
        doc = self.get_doc(self.doctype, name)
        wanted = self.order_items(change.order)
        have = _lines(doc.get("items") or [])
        if have == _lines(wanted):
            return
        if docstatus == 0:
            body: dict[str, Any] = {"items": wanted, "modified": doc.get("modified")}
            if self.remark_field and self.remark_field != "remarks":
                body[self.remark_field] = remark(change.order)
            self._checked("PUT", self._resource(self.doctype, name), f"updating {name}", body=body)
            log.info("sync.change.draft_updated", target=self.name, order_ref=ref, erp_id=name)
        else:
            self._amend(name, change.order)

    def _cancel_document(self, name: str, docstatus: int, ref: str) -> None:
        if docstatus == 2:
            return
        if docstatus == 0:
            # A draft was never in the ledger: ERPNext deletes drafts, it cannot cancel them
            # (frappe/frappe frappe/model/document.py check_docstatus_transition: 0 -> 2 is refused).
            if self.doctype in INVOICES:
                self._keep_draft_payments(name)
            try:
                self._call("DELETE", self._resource(self.doctype, name))
            except FrappeError as err:
                if err.status != 404:
                    raise self._failure(err, f"deleting the draft {name}") from None
            log.info("sync.change.draft_deleted", target=self.name, order_ref=ref, erp_id=name)
            return
        try:
            self._call("POST", "/api/method/frappe.client.cancel", body={"doctype": self.doctype, "name": name})
        except FrappeError as err:
            if err.exc_type == "LinkExistsError":
                raise Rejected(
                    f"{self.name}: ERPNext will not cancel {name} while a payment is allocated to it"
                    f" ({self.scrub(err.message)}): tick Accounts Settings > 'Unlink Advance Payment on Cancellation"
                    " of Order' and 'Unlink Payment on Cancellation of Invoice', then retry",
                    status=err.status,
                ) from None
            raise self._failure(err, f"cancelling {name}") from None
        log.info("sync.change.cancelled", target=self.name, order_ref=ref, erp_id=name)

    def _keep_draft_payments(self, name: str) -> None:
        """A draft invoice about to be deleted may hold part of a payment in its payment rows (the visit paid part
        of it, the rest not yet): that money was taken, so it is booked first as a Payment Entry (Receive,
        unallocated), marked with the draft's name so that a retry (a lost answer, a crash before the delete) finds
        it instead of booking it again."""
        doc = self.get_doc(self.doctype, name)
        parts: dict[tuple[str, str], Decimal] = {}
        for ref, amount, mode in _PAID_MARK.findall(str(doc.get("remarks") or "")):
            parts[(ref, mode)] = parts.get((ref, mode), Decimal(0)) + Decimal(amount)
        if not parts:
            return
        currency = self._currency(str(doc.get("currency") or ""), f"the draft {name}")
        for (ref, mode), amount in parts.items():
            marker = f"[tablebox moved from {name} {mode}]"
            found = self._list(
                "Payment Entry",
                ["name"],
                [
                    ["Payment Entry", "reference_no", "=", ref],
                    ["Payment Entry", "remarks", "like", f"%{marker}%"],
                    ["Payment Entry", "docstatus", "!=", 2],
                ],
                f"the lookup of payment {ref}",
                limit=1,
            )
            if found:
                continue
            part = PaymentDoc(ref, [], "", "", int(amount.scaleb(currency.exponent)), currency.code, "")
            text = f"{marker} Tablebox payment {ref}: booked in {name}, whose order was cancelled (the draft deleted)"
            self._post_payment_entry(part, "Receive", mode, amount, [], currency, text, unique=False)

    def _amend(self, name: str, order: OrderDoc, *, cancel: bool = True) -> None:
        """A submitted Sales Order whose lines changed: cancel it and enter the amendment (ERPNext's own way to
        change a submitted document). The amendment's name is fixed (<name>-1), so a retry that finds the
        original already cancelled and posts again gets a 409 on the name: already done."""
        if cancel:
            self._cancel_document(name, 1, order.order_ref)
        body = self.order_document(order, amended_from=name)
        try:
            answer = self._call("POST", self._resource(self.doctype), body=body)
        except FrappeError as err:
            if err.status == 409 and err.exc_type in ("DuplicateEntryError", ""):
                return
            raise self._failure(err, f"the amendment of {name}", order) from None
        data = (answer.get("data") if isinstance(answer, Mapping) else None) or {}
        log.info("sync.change.amended", target=self.name, order_ref=order.order_ref, erp_id=name, new=data.get("name"))

    def _returns(self, name: str) -> list[dict[str, Any]]:
        """The returns (credit notes) against invoice `name`, whatever their docstatus, oldest first."""
        return self._list(
            self.doctype,
            ["name", "docstatus", self.order_ref_field],
            [[self.doctype, "return_against", "=", name], [self.doctype, "is_return", "=", 1]],
            f"the credit notes of {name}",
            order_by="creation asc",
        )

    def _after_returns(
        self, have: dict[tuple[str, Decimal], Decimal], returns: Sequence[Mapping[str, Any]]
    ) -> dict[tuple[str, Decimal], Decimal]:
        """An invoice's lines less what its submitted returns gave back (ERPNext counts only submitted ones:
        frappe/erpnext erpnext/controllers/sales_and_purchase_return.py get_already_returned_items)."""
        left = dict(have)
        for row in returns:
            if int(row.get("docstatus") or 0) != 1:
                continue
            for key, qty in _lines(self.get_doc(self.doctype, str(row["name"])).get("items") or []).items():
                left[key] = left.get(key, Decimal(0)) + qty  # a return's quantities are negative
        return {key: qty for key, qty in left.items() if qty}

    def _credit_note(
        self,
        name: str,
        doc: Mapping[str, Any],
        wanted: dict[tuple[str, Decimal], Decimal],
        change: OrderChange,
    ) -> None:
        """A paid (submitted) invoice lost lines (or the whole order: `wanted` empty): a credit note (is_return
        against it) for what was voided, so the invoice less its returns is the order as it is now. The money goes back as the refund the box records (a
        Payment Entry), not here.

        Exactly once: the note is booked only for what the invoice less its submitted returns still holds beyond
        the order, and it carries our unique field as "<order ref> return <n>" (n = one more than the notes of
        this order so far). A retry that looked before its own slow first attempt was saved posts the same n and
        ERPNext refuses it (the field is Unique: 417 UniqueValidationError): we look again, and book the next
        note only if something is still not given back."""
        ref = change.order_ref
        for _ in range(3):
            returns = self._returns(name)
            back = self._to_give_back(self._after_returns(_lines(doc.get("items") or []), returns), wanted)
            if not back:
                return  # given back already, or more on the order than in ERPNext (a void never adds: a person looks)
            number = 1 + max((self._return_number(ref, row) for row in returns), default=0)
            body = self._credit_note_document(name, doc, back, change)
            body[self.order_ref_field] = f"{ref}{RETURN_SEP}{number}"
            try:
                answer = self._call("POST", self._resource(self.doctype), body=body)
            except FrappeError as err:
                if err.is_duplicate:
                    log.info("sync.change.credit_note_raced", target=self.name, order_ref=ref, erp_id=name)
                    continue  # our own earlier attempt saved it meanwhile: look again
                raise self._failure(err, f"the credit note for {name}") from None
            data = (answer.get("data") if isinstance(answer, Mapping) else None) or {}
            log.info("sync.change.credit_note", target=self.name, order_ref=ref, erp_id=name, note=data.get("name"))
            return
        raise Retryable(f"{self.name}: the credit notes of {name} kept changing while we booked one; trying again")

    def _to_give_back(
        self, have: dict[tuple[str, Decimal], Decimal], wanted: dict[tuple[str, Decimal], Decimal]
    ) -> list[tuple[tuple[str, Decimal], Decimal]]:
        """What a credit note returns: each dish line the invoice (less its returns) holds beyond the order, and the
        service charge line's fall in amount (its rate moves with the order: returned as one at the difference,
        which ERPNext allows as it is below the rate sold, validate_returned_items)."""
        charge = self.service_charge_item
        back = [
            (key, qty - wanted.get(key, Decimal(0)))
            for key, qty in have.items()
            if key[0] != charge and qty > wanted.get(key, 0)
        ]
        if charge:
            held = sum((qty * rate for (code, rate), qty in have.items() if code == charge), Decimal(0))
            owed = sum((qty * rate for (code, rate), qty in wanted.items() if code == charge), Decimal(0))
            if held > owed:
                back.append(((charge, held - owed), Decimal(1)))
        return back

    def _return_number(self, ref: str, row: Mapping[str, Any]) -> int:
        """n of a credit note of ours ("<order ref> return <n>" in our field); 0 for another's."""
        value = str(row.get(self.order_ref_field) or "")
        head, sep, number = value.rpartition(RETURN_SEP)
        return int(number) if sep and head == ref and number.isdigit() else 0

    def _credit_note_document(
        self,
        name: str,
        doc: Mapping[str, Any],
        back: Sequence[tuple[tuple[str, Decimal], Decimal]],
        change: OrderChange,
    ) -> dict[str, Any]:
        items = [
            {"item_code": code, "qty": _json_number(-qty), "rate": _json_number(rate)}
            | ({"warehouse": self.warehouse} if self.warehouse else {})
            for (code, rate), qty in back
        ]
        what, default = ("cancel", "order cancelled") if change.status == "cancelled" else ("void", "lines voided")
        body: dict[str, Any] = {
            "customer": self.customer,
            "is_return": 1,
            "return_against": name,
            # The credit goes against the invoice (its outstanding, status Credit Note Issued), as a return made
            # from the invoice in ERPNext does: frappe/erpnext erpnext/accounts/doctype/sales_invoice/
            # sales_invoice.py make_customer_gl_entry books against_voucher = return_against unless
            # update_outstanding_for_self (a v15 field whose default may be 1).
            "update_outstanding_for_self": 0,
            "update_stock": 1,
            # Posted now (no set_posting_time): ERPNext refuses a return dated before its invoice ("Posting
            # timestamp must be after ...": sales_and_purchase_return.py validate_return_against), which the
            # invoice's business day with today's time of day would be for a dish sent back after midnight.
            "selling_price_list": self.price_list,
            "ignore_pricing_rule": 1,
            "disable_rounded_total": 1,
            "items": items,
            "remarks": f"Tablebox {what}: {change.reason or default} [{change.change_ref or change.order_ref}]",
            "docstatus": 1,
        }
        if doc.get("currency"):
            body["currency"] = doc["currency"]
        if self.doctype == "POS Invoice":
            # POSInvoice.validate wants is_pos and a payment row; a row of 0 gives no money back here.
            body.update(
                is_pos=1,
                pos_profile=self.pos_profile,
                payments=[{"mode_of_payment": self.default_mode, "amount": 0}],
            )
        if self.company:
            body["company"] = self.company
        return body

    # -- payments and refunds ---------------------------------------------------------------------------------
    def push_payment(self, payment: PaymentDoc) -> str:
        currency = self._currency(payment.currency, f"payment {payment.payment_ref}")
        mode = self.payment_modes.get(payment.method)
        if mode is None:
            raise Rejected(
                f"{self.name}: payment {payment.payment_ref} was taken by {payment.method!r}, which payment_modes"
                " does not map to an ERPNext Mode of Payment: add it to [sync.{self.name}] payment_modes, then retry"
            )
        existing = self._payment_entry(payment.payment_ref)
        if existing is not None:
            return existing
        amount = Decimal(payment.amount_minor).scaleb(-currency.exponent)
        if payment.kind == "refund":
            text = f"Tablebox refund of {payment.refund_of or '?'}, table {payment.table}"
            return self._post_payment_entry(payment, "Pay", mode, amount, [], currency, f"{text}: {payment.reason}")
        docs = [doc for ref in payment.order_refs if (doc := self.current(ref)) is not None]
        if not docs:
            raise Rejected(
                f"{self.name}: none of the orders paid by {payment.payment_ref} is in ERPNext"
                f" ({', '.join(payment.order_refs) or 'no orders'}): deliver them first, then retry"
            )
        text = f"Tablebox payment, table {payment.table}, orders {', '.join(payment.order_refs)}"
        if self.doctype == "Sales Order":
            references, left = [], amount
            for row in docs:
                if int(row.get("docstatus") or 0) != 1 or left <= 0:
                    continue
                doc = self.get_doc(self.doctype, str(row["name"]))
                due = _dec(doc.get("grand_total")) - _dec(doc.get("advance_paid"))
                take = min(left, due)
                if take > 0:
                    references.append(
                        {"reference_doctype": self.doctype, "reference_name": doc["name"], "allocated_amount": take}
                    )
                    left -= take
            return self._post_payment_entry(payment, "Receive", mode, amount, references, currency, text)
        return self._pay_invoices(payment, docs, mode, amount, currency, text)

    def _pay_invoices(
        self,
        payment: PaymentDoc,
        docs: Sequence[Mapping[str, Any]],
        mode: str,
        amount: Decimal,
        currency: Currency,
        text: str,
    ) -> str:
        """Fill the payment rows of the visit's draft invoices, in order, and submit each once paid in full; the
        remarks keep a marker per payment so that a retry books only what is not booked yet."""
        full = [self.get_doc(self.doctype, str(row["name"])) for row in docs]
        booked = sum(
            (
                Decimal(amt)
                for doc in full
                for ref, amt, _ in _PAID_MARK.findall(str(doc.get("remarks") or ""))
                if ref == payment.payment_ref
            ),
            Decimal(0),
        )
        left = amount - booked
        names = [str(doc["name"]) for doc in full if payment.payment_ref in str(doc.get("remarks") or "")]
        for doc in full:
            if left <= 0:
                break
            if int(doc.get("docstatus") or 0) != 0:
                continue
            rows = [dict(row) for row in doc.get("payments") or []]
            paid = sum((_dec(row.get("amount")) for row in rows), Decimal(0))
            due = _dec(doc.get("rounded_total")) or _dec(doc.get("grand_total"))
            take = min(left, due - paid)
            if take <= 0:
                continue
            row = next((r for r in rows if r.get("mode_of_payment") == mode), None)
            if row is None:
                rows.append({"mode_of_payment": mode, "amount": take})
            else:
                row["amount"] = _dec(row.get("amount")) + take
            payments = [
                {"mode_of_payment": r["mode_of_payment"], "amount": _json_number(_dec(r.get("amount")))} for r in rows
            ]
            mark = f"[tablebox payment {payment.payment_ref} {take:f} {mode}]"
            body: dict[str, Any] = {
                "payments": payments,
                "remarks": f"{doc.get('remarks') or ''}\n{mark}".strip(),
                # As read: if a request of ours changed it since (a retry racing a slow save), ERPNext refuses
                # this one (TimestampMismatchError) and the retry reads the markers again.
                "modified": doc.get("modified"),
            }
            if paid + take >= due:
                body["docstatus"] = 1  # paid in full: submitted (frappe check_docstatus_transition: 0 -> 1)
            self._checked(
                "PUT", self._resource(self.doctype, str(doc["name"])), f"the payment of {doc['name']}", body=body
            )
            names.append(str(doc["name"]))
            left -= take
        if left > 0:
            # More than the visit's open invoices (a tip, an invoice paid already): money received, unallocated.
            return self._post_payment_entry(payment, "Receive", mode, left, [], currency, text)
        log.info("sync.payment.booked", target=self.name, payment_ref=payment.payment_ref, erp_ids=names)
        return names[0] if names else str(full[0]["name"])

    def _mode_account(self, mode: str) -> str:
        """The Mode of Payment's default account for our company (what ERPNext's own get_bank_cash_account reads)."""
        if mode in self._accounts:
            return self._accounts[mode]
        found = self._get_or_none("Mode of Payment", mode)
        if found is None:
            raise Rejected(
                f"{self.name}: ERPNext has no Mode of Payment {mode!r}: create it (with the company's cash or bank"
                f" account) or map the method to another one in payment_modes of [sync.{self.name}]"
            )
        rows = [r for r in found.get("accounts") or [] if not self.company or r.get("company") == self.company]
        account = str(rows[0].get("default_account") or "") if rows else ""
        if not account:
            raise Rejected(
                f"{self.name}: Please set default Cash or Bank account in Mode of Payment {mode}"
                f" (for {self.company or 'the company'}), then retry"
            )
        self._accounts[mode] = account
        return account

    def _payment_entry(self, payment_ref: str) -> str | None:
        field = self.payment_ref_field or "reference_no"
        rows = self._list(
            "Payment Entry",
            ["name", "docstatus"],
            [["Payment Entry", field, "=", payment_ref], ["Payment Entry", "docstatus", "!=", 2]],
            f"the lookup of payment {payment_ref}",
            order_by="creation asc",
            limit=1,
        )
        return str(rows[0]["name"]) if rows else None

    def _post_payment_entry(
        self,
        payment: PaymentDoc,
        kind: str,
        mode: str,
        amount: Decimal,
        references: Sequence[Mapping[str, Any]],
        currency: Currency,
        remarks: str,
        *,
        unique: bool = True,
    ) -> str:
        """A submitted Payment Entry; `unique = False` leaves payment_ref_field unset (a part of a payment that
        has an entry of its own already)."""
        day = payment.paid_at[:10] or date.today().isoformat()
        # The cash/bank side must be named (payment_entry.json: paid_from and paid_to are mandatory; the party's
        # side is filled in by PaymentEntry.set_missing_values): the mode's default account for the company.
        account = self._mode_account(mode)
        body: dict[str, Any] = {
            "payment_type": kind,
            ("paid_to" if kind == "Receive" else "paid_from"): account,
            "party_type": "Customer",
            "party": self.customer,
            "mode_of_payment": mode,
            "paid_amount": _json_amount(amount, currency),
            "received_amount": _json_amount(amount, currency),
            "reference_no": payment.payment_ref,
            "reference_date": day,
            "posting_date": day,
            "remarks": remarks[:500],
            "references": [
                {**ref, "allocated_amount": _json_amount(Decimal(ref["allocated_amount"]), currency)}
                for ref in references
            ],
            "docstatus": 1,
        }
        if self.company:
            body["company"] = self.company
        if self.payment_ref_field and unique:
            body[self.payment_ref_field] = payment.payment_ref
        try:
            answer = self._call("POST", self._resource("Payment Entry"), body=body)
        except FrappeError as err:
            if err.is_duplicate and self.payment_ref_field:
                # Our unique field: another request of ours got there first (still saving when we looked).
                again = self._payment_entry(payment.payment_ref)
                if again is not None:
                    return again
            raise self._failure(err, f"payment {payment.payment_ref}") from None
        data = answer.get("data") if isinstance(answer, Mapping) else None
        if not isinstance(data, Mapping) or not data.get("name"):
            raise Rejected(f"{self.name}: ERPNext created payment {payment.payment_ref} but its answer has no name")
        log.info(
            "sync.payment.entry",
            target=self.name,
            payment_ref=payment.payment_ref,
            erp_id=str(data["name"]),
            kind=payment.kind,
            mode=mode,
        )
        return str(data["name"])

    # -- tablebox sync check ----------------------------------------------------------------------------------
    def check(self) -> Sequence[Check]:
        checks: list[Check] = []
        try:
            self._check_into(checks)
        except FrappeError as err:  # a step that could not run: said, and the list ends there
            failed = self._failure(err, "the check")
            checks.append(Check("ERPNext answered", CheckState.FAIL, failed.message, "see the message"))
        except DeliveryError as err:
            checks.append(Check("ERPNext answered", CheckState.FAIL, self.scrub(err.message), "see the message"))
        return checks

    def _check_into(self, checks: list[Check]) -> None:
        ok, warn, fail = CheckState.OK, CheckState.WARN, CheckState.FAIL
        try:
            response = self.send("GET", "/api/method/ping")
        except Retryable as err:
            checks.append(Check("reachable", fail, err.message, f"check base_url ({self.base_url}) and the network"))
            return
        # 401/403: Frappe answered (it checks the key before any method, ping included): the next step says more.
        if response.status_code not in (200, 401, 403) or (
            response.status_code == 200 and b"pong" not in response.content
        ):
            checks.append(
                Check(
                    "reachable",
                    fail,
                    f"{self.base_url}/api/method/ping answered HTTP {response.status_code}",
                    "base_url must be the ERPNext site's address",
                )
            )
            return
        checks.append(Check("reachable", ok, self.base_url))
        try:
            user = str(self._call("GET", "/api/method/frappe.auth.get_logged_user").get("message") or "")
        except FrappeError as err:
            checks.append(
                Check(
                    "authenticated",
                    fail,
                    f"HTTP {err.status} {err.exc_type}",
                    f"In ERPNext: User > API Access > Generate Keys; put both in [sync.{self.name}]",
                )
            )
            return
        try:
            versions = self._call("GET", "/api/method/frappe.utils.change_log.get_versions").get("message") or {}
        except FrappeError:
            versions = {}  # the version is a detail: a site that hides it is checked all the same
        erpnext = str((versions.get("erpnext") or {}).get("version") or "?") if isinstance(versions, Mapping) else "?"
        checks.append(Check("authenticated", ok, f"as {user}, ERPNext {erpnext}"))
        if not erpnext.startswith("15."):
            checks.append(
                Check("ERPNext version", warn, erpnext, "Tablebox's ERPNext adapter was checked against version 15")
            )
        checks.append(self._check_roles(user))
        checks.append(self._check_ref_field(self.doctype, self.order_ref_field))
        if self.payment_ref_field:
            checks.append(self._check_ref_field("Payment Entry", self.payment_ref_field))
        checks.append(self._check_exists("Customer", self.customer, "customer"))
        if self.warehouse:
            checks.append(self._check_exists("Warehouse", self.warehouse, "warehouse"))
        elif self.doctype in INVOICES and not self.pos_profile:
            checks.append(
                Check(
                    "warehouse",
                    warn,
                    "not set: invoices move stock (update_stock) from each item's default warehouse",
                    f"set warehouse in [sync.{self.name}] (or a pos_profile with one)",
                )
            )
        price_list = self._get_or_none("Price List", self.price_list)
        currency = self.box_facts.get("currency")
        if price_list is None:
            checks.append(
                Check(f"price list {self.price_list}", fail, "not found", "set price_list to a selling Price List")
            )
        elif currency and price_list.get("currency") and price_list["currency"] != currency:
            checks.append(
                Check(
                    f"price list {self.price_list}",
                    fail,
                    f"in {price_list['currency']}, the box sells in {currency}",
                    "use a price list in the box's currency",
                )
            )
        else:
            checks.append(Check(f"price list {self.price_list}", ok, str(price_list.get("currency") or "")))
        profile = self._check_pos_profile(checks)
        self._check_modes(checks, profile)
        checks.append(self._check_taxes(profile))
        checks.append(self._check_codes())

    def _check_roles(self, user: str) -> Check:
        title, needed = "API user's roles", NEEDED_ROLES[self.doctype]
        try:
            answer = self._call("GET", "/api/method/frappe.core.doctype.user.user.get_roles", params={"uid": user})
        except FrappeError as err:
            return Check(title, CheckState.WARN, f"not checked: ERPNext answered HTTP {err.status} to get_roles")
        roles = set(answer.get("message") or []) if isinstance(answer, Mapping) else set()
        missing = [role for role in needed if role not in roles]
        if missing:
            return Check(
                title,
                CheckState.FAIL,
                f"{user} lacks {', '.join(missing)}",
                f"In ERPNext: User {user} > Roles: tick {', '.join(missing)}",
            )
        if roles & {"System Manager", "Administrator"}:
            return Check(title, CheckState.WARN, f"{user} is a System Manager", "give it only " + ", ".join(needed))
        return Check(title, CheckState.OK, ", ".join(needed))

    def _get_or_none(self, doctype: str, name: str) -> dict[str, Any] | None:
        try:
            answer = self._call("GET", self._resource(doctype, name))
        except FrappeError as err:
            if err.status == 404:
                return None
            raise self._failure(err, f"reading {doctype} {name}") from None
        data = answer.get("data") if isinstance(answer, Mapping) else None
        return dict(data) if isinstance(data, Mapping) else None

    def _check_exists(self, doctype: str, name: str, setting: str) -> Check:
        found = self._get_or_none(doctype, name)
        if found is None:
            return Check(f"{setting} {name}", CheckState.FAIL, f"no {doctype} {name!r}", f"create it, or set {setting}")
        if _truthy(found.get("disabled")):
            return Check(f"{setting} {name}", CheckState.FAIL, f"{doctype} {name!r} is disabled", "enable it")
        return Check(f"{setting} {name}", CheckState.OK)

    def _check_ref_field(self, doctype: str, fieldname: str) -> Check:
        title = f"custom field {fieldname}"
        fix = f"In ERPNext: Customize Form > {doctype} > add {fieldname}: type Data, Unique, No Copy"
        try:
            answer = self._call("GET", "/api/method/frappe.desk.form.load.getdoctype", params={"doctype": doctype})
        except FrappeError as err:
            raise self._failure(err, f"reading the fields of {doctype}") from None
        docs = answer.get("docs") if isinstance(answer, Mapping) else None
        fields = (docs[0].get("fields") if docs and isinstance(docs[0], Mapping) else None) or []
        field = next((f for f in fields if isinstance(f, Mapping) and f.get("fieldname") == fieldname), None)
        if field is None:
            return Check(title, CheckState.FAIL, f"{doctype} has no field {fieldname}", fix)
        if not _truthy(field.get("unique")):
            return Check(
                title, CheckState.WARN, "not Unique: a retry racing a slow insert can make a second document", fix
            )
        if not _truthy(field.get("no_copy")):
            return Check(title, CheckState.WARN, "not No Copy: a duplicated document would carry our order id", fix)
        return Check(title, CheckState.OK, f"on {doctype}, Unique, No Copy")

    def _check_pos_profile(self, checks: list[Check]) -> dict[str, Any] | None:
        if not self.pos_profile:
            return None
        profile = self._get_or_none("POS Profile", self.pos_profile)
        title = f"POS profile {self.pos_profile}"
        if profile is None:
            checks.append(Check(title, CheckState.FAIL, "not found", "set pos_profile to a POS Profile's name"))
            return None
        if _truthy(profile.get("disabled")):
            checks.append(Check(title, CheckState.FAIL, "disabled", "enable it"))
            return profile
        checks.append(Check(title, CheckState.OK, str(profile.get("warehouse") or "")))
        return profile

    def _check_modes(self, checks: list[Check], profile: Mapping[str, Any] | None) -> None:
        methods = self.box_facts.get("payment_methods")
        if methods is None:
            checks.append(Check("modes of payment", CheckState.WARN, "not checked: the box's methods were not given"))
            methods = list(self.payment_modes)
        unmapped = [m for m in methods if m not in self.payment_modes]
        if unmapped:
            checks.append(
                Check(
                    "modes of payment",
                    CheckState.FAIL,
                    f"{', '.join(unmapped)} not mapped",
                    f"add them to payment_modes in [sync.{self.name}]",
                )
            )
        in_profile = {str(r.get("mode_of_payment")) for r in (profile or {}).get("payments") or []}
        company = self.company or str((profile or {}).get("company") or "")
        for method in methods:
            mode = self.payment_modes.get(method)
            if mode is None:
                continue
            title = f"mode of payment {mode} ({method})"
            found = self._get_or_none("Mode of Payment", mode)
            if found is None:
                checks.append(Check(title, CheckState.FAIL, "not found", f"In ERPNext: create Mode of Payment {mode}"))
                continue
            accounts = [a for a in found.get("accounts") or [] if not company or a.get("company") == company]
            if not accounts:
                checks.append(
                    Check(
                        title,
                        CheckState.FAIL,
                        f"no default account for {company or 'the company'}",
                        f"In ERPNext: Mode of Payment {mode} > Accounts: add the company's cash or bank account",
                    )
                )
            elif profile is not None and mode not in in_profile:
                checks.append(
                    Check(
                        title,
                        CheckState.WARN,  # ERPNext books it all the same; the POS screens and closing miss it
                        f"not in POS profile {self.pos_profile}",
                        f"In ERPNext: POS Profile {self.pos_profile} > Payment Methods: add {mode}",
                    )
                )
            else:
                checks.append(Check(title, CheckState.OK))

    def _check_taxes(self, profile: Mapping[str, Any] | None) -> Check:
        title = "prices include tax"
        include = self.box_facts.get("prices_include_tax")
        if include is None:
            return Check(title, CheckState.WARN, "not checked: the box's setting was not given")
        name = str((profile or {}).get("taxes_and_charges") or "")
        if not name:
            filters: list[list[Any]] = [["Sales Taxes and Charges Template", "is_default", "=", 1]]
            if self.company:
                filters.append(["Sales Taxes and Charges Template", "company", "=", self.company])
            rows = self._list("Sales Taxes and Charges Template", ["name"], filters, "the default taxes", limit=1)
            name = str(rows[0]["name"]) if rows else ""
        if not name:
            return Check(
                title,
                CheckState.WARN if include else CheckState.OK,
                "no default Sales Taxes and Charges Template: ERPNext books no tax",
                "set a default template whose rows are 'Is this Tax included in Basic Rate?'" if include else "",
            )
        template = self._get_or_none("Sales Taxes and Charges Template", name) or {}
        flags = {_truthy(row.get("included_in_print_rate")) for row in template.get("taxes") or []}
        if flags and flags != {bool(include)}:
            said = "include tax" if include else "exclude tax"
            return Check(
                title,
                CheckState.FAIL,
                f"the box's prices {said}, template {name} does not agree",
                f"In ERPNext: {name} > each row: set 'Is this Tax included in Basic Rate?' to"
                f" {'on' if include else 'off'}",
            )
        rate = sum((_dec(row.get("rate")) for row in template.get("taxes") or []), Decimal(0))
        bp = self.box_facts.get("tax_rate_bp")
        if isinstance(bp, int) and not isinstance(bp, bool) and rate != Decimal(bp) / 100:
            return Check(
                title,
                CheckState.WARN,
                f"template {name} charges {rate:f} %, the box {Decimal(bp) / 100:f} %",
                "make the box's tax rate and the template's rows agree, or the two books show different tax",
            )
        return Check(title, CheckState.OK, f"template {name}")

    def _check_codes(self) -> Check:
        codes = list(dict.fromkeys(self.expected_codes))
        title = "dishes' ERP codes"
        if not codes:
            return Check(title, CheckState.WARN, "not checked: no dish has an ERP code")
        found: dict[str, Mapping[str, Any]] = {}
        for start in range(0, len(codes), 100):
            chunk = codes[start : start + 100]
            for row in self._list(
                "Item",
                ["name", "disabled", "is_sales_item", "is_stock_item"],
                [["Item", "name", "in", chunk]],
                "the dishes' items",
            ):
                found[str(row["name"])] = row
        missing = [code for code in codes if code not in found]
        off = [
            code
            for code, row in found.items()
            if _truthy(row.get("disabled")) or not _truthy(row.get("is_sales_item", 1))
        ]
        if missing:
            shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
            return Check(
                title, CheckState.FAIL, f"not in ERPNext: {shown}", "fix the dishes' ERP codes or create the Items"
            )
        if off:
            return Check(
                title, CheckState.FAIL, f"disabled or not for sale: {', '.join(off[:10])}", "enable them in ERPNext"
            )
        stocked = [code for code, row in found.items() if _truthy(row.get("is_stock_item"))]
        if stocked and self.doctype == "Sales Order":
            # A submitted Sales Order reserves its stock items (Bin reserved_qty) until they are delivered; the
            # stock pull reads actual_qty - reserved_qty, so undelivered orders sell the dish out on the box.
            return Check(
                title,
                CheckState.WARN,
                f"all {len(codes)} found; stock items: {', '.join(stocked[:10])}",
                "deliver the Sales Orders (Delivery Note, or a Sales Invoice with Update Stock) each day, make the"
                ' dishes non-stock items, or choose document = "sales_invoice": reserved stock is not for sale',
            )
        if stocked and self.doctype == "POS Invoice":
            # frappe/erpnext pos_invoice.py validate_stock_availablility: submitting (when paid) is refused while
            # the warehouse lacks a stock item, unless negative stock is allowed; the payment would wait for it.
            return Check(
                title,
                CheckState.WARN,
                f"all {len(codes)} found; stock items: {', '.join(stocked[:10])}",
                "keep them in stock in the POS profile's warehouse, make them non-stock items, or allow negative"
                " stock (Stock Settings): a paid POS Invoice short of stock is refused",
            )
        return Check(title, CheckState.OK, f"all {len(codes)} found")


def business_day(order: OrderDoc) -> date:
    """The order's business day: the ticket's day ("2026-11-21#12"), which is the store's own day; the UTC
    date of created_at only when the ticket has none."""
    for text in (order.ticket.partition("#")[0], order.created_at[:10]):
        try:
            return date.fromisoformat(text)
        except ValueError:
            continue
    raise Rejected(f"order {order.order_ref} has no date (ticket {order.ticket!r}, created_at {order.created_at!r})")


def remark(order: OrderDoc) -> str:
    """What a person in ERPNext reads to find the order on the floor: ticket, table, notes."""
    # Our order id goes in: the remark is po_no on a Sales Order, and ERPNext refuses a second open order of the
    # same customer with the same po_no (frappe/erpnext sales_order.py validate_po; issue 15 item 3): two boxes,
    # or a box reset, repeat ticket numbers for the same walk-in customer.
    parts = [f"Tablebox {order.ticket} [{order.order_ref}]", f"table {order.table}"]
    if order.note:
        parts.append(order.note)
    parts += [f"{line.name}: {line.note}" for line in order.lines if line.note]
    return "; ".join(parts)[:REMARK_CHARS]


def _dec(value: Any) -> Decimal:
    return decimal_of(value) or Decimal(0)


def _lines(items: Sequence[Mapping[str, Any]]) -> dict[tuple[str, Decimal], Decimal]:
    """Item rows as {(item_code, rate): qty}, to compare what ERPNext holds with the order as it is now."""
    out: dict[tuple[str, Decimal], Decimal] = {}
    for item in items:
        key = (str(item.get("item_code") or ""), _dec(item.get("rate")))
        out[key] = out.get(key, Decimal(0)) + _dec(item.get("qty"))
    return {key: qty for key, qty in out.items() if qty}


def _json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _json_amount(amount: Decimal, currency: Currency) -> int | float:
    return major_number(int(amount.scaleb(currency.exponent)), currency)


# What sync.adapters.adapter_class(kind) answers: the class whose declarations (capabilities) the worker reads.
ADAPTER = ERPNextAdapter
