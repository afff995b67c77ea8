"""The ERPNext / Frappe adapter: items, prices and stock from the Frappe REST API, each order once as a
Sales Order (or POS Invoice) recognised by a unique custom field holding our order id.

Settings (`[sync.NAME]` with `kind = "erpnext"`; secrets may come from TABLEBOX_SYNC_<NAME>_<KEY>)::

    base_url = "https://erp.example.com"      # required: the site's address (no /api suffix)
    verify_tls = true                         # false only for a test site with a self-signed certificate
    ca_file = "/etc/tablebox/erp-ca.pem"      # or trust this CA for it
    api_key = "..."                           # SECRET: the API user's key    } sent as
    api_secret = "..."                        # SECRET: and its secret        } Authorization: token KEY:SECRET
    timeout_seconds = 10                      # every request (connect, read, write) gives up after this
    price_list = "Standard Selling"           # the selling Price List read for prices and named on orders
    warehouse = "Stores - TB"                 # stock is read from this warehouse's Bins (unset: all warehouses
                                              # summed); order lines name it as their warehouse
    customer = "Walk-in Customer"             # the Customer every order is booked to
    company = "Tablebox Restaurant"           # unset: the API user's default company
    doctype = "Sales Order"                   # or "POS Invoice" (then pos_profile is required by ERPNext)
    pos_profile = ""                          # POS Invoice only
    order_ref_field = "tablebox_order_ref"    # the custom field holding our order id (see "Setting up ERPNext")
    remark_field = "po_no"                    # where "Tablebox <ticket>, table <table>, notes" is written (140
                                              # characters at most); default po_no ("Customer's Purchase Order")
                                              # on a Sales Order, remarks on a POS Invoice; "" = none
    submit = false                            # true: orders are created submitted (docstatus 1), not as drafts
    delivery_days = 0                         # Sales Order delivery date = the ticket's business day + this
    service_charge_item = ""                  # an item code: the service charge goes as a line of that item;
                                              # unset: not sent (ERPNext's own taxes and charges apply)
    item_group_as_category = true             # the Item Group becomes the dish's category
    default_language = "zh"                   # the language ERPNext's item_name is written in
    page_size = 100                           # rows asked per page (limit_page_length)

Setting up ERPNext: add a custom field to the order doctype (Customize Form > Sales Order): fieldname
`tablebox_order_ref`, type Data, **Unique**, **No Copy** (so an amendment does not copy it), Read Only. The
API user needs read on Item, Item Price and Bin, create/read/write (and submit/cancel when `submit = true`)
on the order doctype, and create/read on Comment.

Exactly once: a Frappe POST has no idempotency key and ignores a client-chosen name, so a retried POST makes
a second document. Before creating, we GET the order doctype filtered on `order_ref_field = our order id`;
found, we return its name. The unique field makes ERPNext refuse a second insert (417 UniqueValidationError,
"Duplicate entry" in the exception; 409 DuplicateEntryError when the field is the document's name): we look it
up again and return it. Without the unique flag the lookup alone still covers every retry after a commit
(the answer lost, a 5xx after the commit, a crash): a committed document is found. What it cannot cover
is a POST ERPNext is *still processing* when our client gives up and whose retry's lookup runs before that
commit lands: both then create. With the field unique the second insert waits for the first and fails, so
nothing is duplicated. Mark the field unique.

What is read and written:
- catalog: Items with is_sales_item = 1 and no variants (item_code, item_name, item_group, disabled: a
  disabled item is sent as inactive), prices from Item Price rows of `price_list` (price_list_rate in major
  units, read exactly as decimals; the row valid today, for no customer or for `customer`, the latest
  valid_from winning), all in the price list's currency (a list mixing currencies is refused).
- stock: per item, actual_qty - reserved_qty of its Bin (what is on hand and not promised to another
  order, submitted Sales Orders included), floored to whole portions, never below 0.
- order: customer, date (the ticket's business day), items (item_code, qty, rate in major units, warehouse),
  the selling price list with pricing rules ignored (our price is what the guest paid), the remark, and
  `order_ref_field`; lines without an ERP code are refused before anything is sent.
- status "cancelled": a submitted document is cancelled (frappe.client.cancel); a draft keeps existing
  (deleting it would let a late retry create it again) with "CANCELLED: <reason>" put first in its remark
  field. "line_voided": a comment "Tablebox: <reason> [tablebox void <hash>]" on the document, once (its
  lines are not changed; a person adjusts them). Other statuses are not recorded.
- payment: a comment on each of the visit's documents ("Paid 76.00 CNY by cash at ..., table A1
  [tablebox payment <ref>]"), once (found by that marker before adding). Payment Entries need accounts and
  modes of payment we do not know; ERPNext users reconcile from the comment.

Errors (the classification every target shares, `sync/adapters/http.py`, plus ERPNext's 423 Locked): connection
refused, timeouts, a dropped connection, 5xx, 408, 423, 425 and 429 are `Retryable` (with the answer's Retry-After);
401/403 are `Rejected` ("check the API key"); other 4xx are `Rejected` with ERPNext's own message (from
`_server_messages`, else `exception`), e.g. an unknown item (404 DoesNotExistError "Item X not found", or
417 LinkValidationError "Could not find Row #1: Item Code: X") names the item and our dish. A missing
custom field ("Unknown column", a 500 from MariaDB) is `Rejected` with the setup hint. Logs name the
target and the URL, never a header or a key; the secrets are also scrubbed from every error message.
"""

from __future__ import annotations

import hashlib
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
    DeliveryError,
    OrderDoc,
    PaymentDoc,
    Rejected,
    Retryable,
)
from sync.adapters.http import HttpAdapter, Verdict, base_url_setting, retry_after_seconds

log = structlog.get_logger("sync.erpnext")

ORDER_DOCTYPES = ("Sales Order", "POS Invoice")
DEFAULT_REMARK_FIELD = {"Sales Order": "po_no", "POS Invoice": "remarks"}
REMARK_CHARS = 140  # po_no is a Data field: 140 characters
CANCELLED_PREFIX = "CANCELLED"
MAX_PAGES = 10_000
_MESSAGE_CAP = 300
_TAG = re.compile(r"<[^>]+>")
_UNKNOWN_COLUMN = re.compile(r"Unknown column '(?:[^'.]*\.)?`?([^'`]+)`?'")


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

    capabilities = frozenset({Capability.CATALOG_PULL})
    peer = "ERPNext"
    extra_retryable = frozenset({423})  # Locked: a document another request is saving

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        where = f"sync target {name}"
        base_url_setting(name, config)  # the first thing to fix when it is wrong
        api_key, api_secret = str(config.get("api_key") or ""), str(config.get("api_secret") or "")
        if not api_key or not api_secret:
            raise ValueError(f"{where}: ERPNext needs api_key and api_secret (an API user's keys)")
        self.doctype = str(config.get("doctype") or "Sales Order")
        if self.doctype not in ORDER_DOCTYPES:
            raise ValueError(f"{where}: doctype must be one of {', '.join(ORDER_DOCTYPES)}, got {self.doctype!r}")
        self.price_list = str(config.get("price_list") or "Standard Selling")
        self.warehouse = str(config.get("warehouse") or "")
        self.customer = str(config.get("customer") or "Walk-in Customer")
        self.company = str(config.get("company") or "")
        self.pos_profile = str(config.get("pos_profile") or "")
        self.order_ref_field = str(config.get("order_ref_field") or "tablebox_order_ref")
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", self.order_ref_field):
            raise ValueError(f"{where}: order_ref_field must be a field name like tablebox_order_ref")
        remark = config.get("remark_field", DEFAULT_REMARK_FIELD[self.doctype])
        self.remark_field = str(remark or "")
        self.submit = _truthy(config.get("submit", False))
        self.delivery_days = _number(config, "delivery_days", 0, where)
        if self.delivery_days < 0:
            raise ValueError(f"{where}: delivery_days cannot be negative")
        self.service_charge_item = str(config.get("service_charge_item") or "")
        self.item_group_as_category = _truthy(config.get("item_group_as_category", True))
        self.default_language = str(config.get("default_language") or "zh")
        self.page_size = _number(config, "page_size", 100, where)
        if not 1 <= self.page_size <= 10_000:
            raise ValueError(f"{where}: page_size must be between 1 and 10000")
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
            field = column.group(1)
            hint = (
                f" (add the custom field {field} to {self.doctype}: type Data, Unique, No Copy)"
                if field == self.order_ref_field
                else ""
            )
            return Rejected(f"{self.name}: ERPNext has no field {field!r} for {what}{hint}", status=status)
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
        if self.classify(status) is Verdict.RETRY or err.exc_type in ("QueryDeadlockError", "QueryTimeoutError"):
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

    @staticmethod
    def _resource(doctype: str, name: str | None = None) -> str:
        path = f"/api/resource/{quote(doctype, safe='')}"
        return f"{path}/{quote(name, safe='')}" if name is not None else path

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
        """Our order's document in ERPNext (name, docstatus, ...), or None: the one not cancelled if there
        is one (a person may have cancelled and amended it), else the first."""
        fields = ["name", "docstatus", *extra_fields]
        rows = self._list(
            self.doctype,
            fields,
            [[self.doctype, self.order_ref_field, "=", order_ref]],
            f"the lookup of order {order_ref}",
            order_by="creation asc",
            limit=20,
        )
        live = [row for row in rows if int(row.get("docstatus") or 0) != 2]
        found = live or rows
        return found[0] if found else None

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
            answer = self._call(
                "POST", self._resource(self.doctype), body=document, headers={"Idempotency-Key": order.order_ref}
            )
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
            submitted=self.submit,
        )
        return str(data["name"])

    def order_document(self, order: OrderDoc) -> dict[str, Any]:
        """The document we POST for an order."""
        try:
            currency = Currency.of(order.currency)
        except DomainError:
            raise Rejected(f"{self.name}: order {order.ticket} is in {order.currency}, unknown here") from None
        day = business_day(order)
        line_extra: dict[str, Any] = {"warehouse": self.warehouse} if self.warehouse else {}
        document: dict[str, Any] = {
            "customer": self.customer,
            "currency": order.currency,
            "selling_price_list": self.price_list,
            "ignore_pricing_rule": 1,
            self.order_ref_field: order.order_ref,
        }
        if self.doctype == "Sales Order":
            delivery = (day + timedelta(days=self.delivery_days)).isoformat()
            document.update(transaction_date=day.isoformat(), delivery_date=delivery)
            line_extra["delivery_date"] = delivery
        else:
            document.update(posting_date=day.isoformat(), set_posting_time=1, is_pos=1)
            if self.pos_profile:
                document["pos_profile"] = self.pos_profile
        if self.company:
            document["company"] = self.company
        items = [
            {
                "item_code": line.code,
                "qty": line.quantity,
                "rate": major_number(line.unit_price_minor, currency),
                **line_extra,
            }
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
        document["items"] = items
        if self.remark_field:
            document[self.remark_field] = remark(order)
        if self.submit:
            document["docstatus"] = 1
        return document

    # -- status and payments ----------------------------------------------------------------------------------
    def push_status(self, order_ref: str, status: str, reason: str | None) -> None:
        if status == "line_voided":
            text = reason or "a line was voided"
            digest = hashlib.sha256(f"{order_ref}\n{text}".encode()).hexdigest()[:12]
            self._comment_once(order_ref, f"Tablebox: {text}", f"[tablebox void {digest}]", what="the voided line")
            return
        if status != "cancelled":
            return
        extra = [self.remark_field] if self.remark_field else []
        found = self.find_order(order_ref, extra)
        if found is None:
            log.warning("sync.status.order_not_there", target=self.name, order_ref=order_ref, status=status)
            return
        name, docstatus = str(found["name"]), int(found.get("docstatus") or 0)
        if docstatus == 2:
            return
        if docstatus == 1:
            self._checked(
                "POST",
                "/api/method/frappe.client.cancel",
                f"cancelling {name}",
                body={"doctype": self.doctype, "name": name},
            )
            log.info("sync.status.cancelled", target=self.name, order_ref=order_ref, erp_id=name)
            return
        if not self.remark_field:
            log.info("sync.status.draft_not_marked", target=self.name, order_ref=order_ref, erp_id=name)
            return
        current = str(found.get(self.remark_field) or "")
        if current.startswith(CANCELLED_PREFIX):
            return
        text = f"{CANCELLED_PREFIX}: {reason or 'cancelled in Tablebox'}" + (f" | {current}" if current else "")
        self._checked(
            "PUT",
            self._resource(self.doctype, name),
            f"marking {name} cancelled",
            body={self.remark_field: text[:REMARK_CHARS]},
        )
        log.info("sync.status.draft_marked_cancelled", target=self.name, order_ref=order_ref, erp_id=name)

    def push_payment(self, payment: PaymentDoc) -> str:
        try:
            currency = Currency.of(payment.currency)
        except DomainError:
            raise Rejected(
                f"{self.name}: payment {payment.payment_ref} is in {payment.currency}, unknown here"
            ) from None
        amount = Decimal(payment.amount_minor).scaleb(-currency.exponent)
        text = f"Paid {amount} {payment.currency} by {payment.method} at {payment.paid_at}, table {payment.table}"
        marker = f"[tablebox payment {payment.payment_ref}]"
        names = [
            name
            for ref in payment.order_refs
            if (name := self._comment_once(ref, text, marker, what=f"payment {payment.payment_ref}")) is not None
        ]
        if not names:
            raise Rejected(
                f"{self.name}: none of the orders paid by {payment.payment_ref} is in ERPNext"
                f" ({', '.join(payment.order_refs) or 'no orders'}): deliver them first, then retry"
            )
        return names[0]

    def _comment_once(self, order_ref: str, text: str, marker: str, *, what: str) -> str | None:
        """A comment "<text> <marker>" on our order's document, unless one with the marker is already there
        (the marker is plain ASCII: Frappe stores comments as sanitised HTML, which may change the text);
        its name, or None when the order is not in ERPNext."""
        content = f"{text} {marker}"
        found = self.find_order(order_ref)
        if found is None:
            log.warning("sync.comment.order_not_there", target=self.name, order_ref=order_ref, what=what)
            return None
        name = str(found["name"])
        pattern = "%" + marker.replace("%", "_") + "%"
        existing = self._list(
            "Comment",
            ["name"],
            [
                ["Comment", "reference_doctype", "=", self.doctype],
                ["Comment", "reference_name", "=", name],
                ["Comment", "content", "like", pattern],
            ],
            f"the comments of {name}",
            order_by="creation asc",
            limit=1,
        )
        if existing:
            return str(existing[0]["name"])
        answer = self._checked(
            "POST",
            self._resource("Comment"),
            f"a comment on {name} ({what})",
            body={
                "comment_type": "Comment",
                "reference_doctype": self.doctype,
                "reference_name": name,
                "content": content,
            },
        )
        data = answer.get("data") if isinstance(answer, Mapping) else None
        if not isinstance(data, Mapping) or not data.get("name"):
            raise Rejected(f"{self.name}: ERPNext added a comment to {name} but its answer has no name")
        return str(data["name"])


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
    parts = [f"Tablebox {order.ticket}", f"table {order.table}"]
    if order.note:
        parts.append(order.note)
    parts += [f"{line.name}: {line.note}" for line in order.lines if line.note]
    return "; ".join(parts)[:REMARK_CHARS]


# What sync.adapters.adapter_class(kind) answers: the class whose declarations (capabilities) the worker reads.
ADAPTER = ERPNextAdapter
