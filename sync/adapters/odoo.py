"""Odoo as an ERP target: the catalog and stock pulled from `product.product`; each order pushed once as a `sale.order`
or, for a restaurant on Odoo POS, a `pos.order`; payments, refunds, cancels and voided lines as Odoo's own documents.

Settings (`[sync.NAME]` with `kind = "odoo"`):

    base_url              the Odoo server, e.g. "https://mycompany.odoo.com" (required)
    database              the database name: sent as `X-Odoo-Database` on JSON-2 (needed when the server hosts
                          several) and required by JSON-RPC
    api_key               (secret) an API key of a dedicated Odoo user (Preferences > Account Security > New API
                          Key; Odoo 19 keys live at most 3 months). From TABLEBOX_SYNC_<NAME>_API_KEY unless the
                          settings file is mode 0600.
    login                 that user's login; JSON-RPC only (it authenticates with login + API key)
    protocol              "json2" (default; Odoo 19 and later: `POST /json/2/<model>/<method>` with the bearer key),
                          "jsonrpc" (Odoo 18 and older: `POST /jsonrpc`, `execute_kw`), or "auto" (asks
                          `GET /web/version` once: 19 or later speaks JSON-2, older JSON-RPC)
    document              "sale_order" (default: a confirmed sale.order per order) or "pos_order" (a restaurant on
                          Odoo POS: a pos.order in the POS's open session, paid by the box's payments)
    pos_config_id         the pos.config (the Odoo POS) orders go to; required for document "pos_order" (without
                          pricelist_id, the catalog takes the POS's pricelist)
    payment_methods       "pos_order": the box's method -> the POS payment method's name, default {cash = "Cash",
                          card = "Card", wechat = "WeChat Pay", alipay = "Alipay", other = "Other"}
    payment_journals      "sale_order": the box's method -> the bank or cash journal customer payments go to,
                          default {cash = "Cash", card = "Bank", wechat = "Bank", alipay = "Bank", other = "Bank"}
    refund_product_id     "pos_order": the product of a refund order's line (default open_item_product_id)
    create_settle_seconds how long a create that got no answer within the timeout may still be running in Odoo
                          (default 120, Odoo's limit_time_real): until then a look-up that misses it creates nothing
    timeout_seconds       every HTTP call (default 10)
    verify_tls            false only for a test server with a self-signed certificate (default true)
    ca_file               or trust this CA for the server's certificate, e.g. "/etc/tablebox/odoo-ca.pem"
    partner_id            the res.partner orders are sold to, the walk-in customer (required for sale orders)
    company_id            the res.company: calls run in it, orders belong to it, its currency is the catalog's
    currency              the catalog's currency code, instead of asking res.company (optional)
    pricelist_id          a product.pricelist: set on each order, and the rule Odoo applies to one portion of a
                          variant or product (fixed, or a percentage of the sales price) gives the catalog's price
    location_id           the stock.location whose `qty_available` is the stock we count (optional) ...
    warehouse_id          ... or a stock.warehouse; without either Odoo counts every internal location
    languages             our language -> Odoo's for dish names, default {"zh" = "zh_CN", "en" = "en_US"}. Odoo
                          keeps the names typed in its source language under en_US and answers them for a
                          language without a translation; such answers are left out (the box's own
                          translation stays). Names typed in Chinese in Odoo: {"zh" = "en_US"}
    confirm_orders        confirm each sale.order once created (default true: a quotation is not a sale in
                          Odoo's reports)
    service_product_id    the product of the service-charge line (needed when orders carry a service charge)
    open_item_product_id  the product used for dishes with no ERP code (without it such an order is refused,
                          naming the dish)
    page_size             rows per search_read (default 200)

What it does:

- `pull_catalog`: products with an internal reference (`default_code`, our item code), archived ones included
  (they come back as inactive, i.e. removed); `list_price` (or the pricelist's price) converted to minor units
  exactly (Decimal, never float); the leaf of the product category as category; `sale_ok = False` gives no price
  (not sold). Pricelist rules are taken in Odoo's order (`applied_on, min_quantity desc, categ_id desc, id desc`,
  the first applicable wins); a formula rule is not computed here (the sales price stays, logged). Paged by id
  (`id > last` with `limit`), so a product archived or added mid-pull neither shifts the pages nor hides another.
- `pull_stock`: `qty_available` of storable products (`is_storable` from Odoo 18, `type = 'product'` before),
  with the location or warehouse in the context; rounded down to whole portions, never below zero.
- `push_order`, document "sale_order": looked up by `client_order_ref = our order_ref` (Odoo does not dedupe it);
  found, its id is returned (and it is confirmed if still a quotation); otherwise created with one line per dish,
  the service charge as a line and the note as a note line, confirmed, and its date_order put back to the time
  it was taken (action_confirm sets it to now).
- `push_order`, document "pos_order": looked up by uuid (18/19; the receipt number "Tablebox <ref>" on 17);
  otherwise sent through the POS's own entry point (`pos.order.sync_from_ui` on 18/19, `create_from_ui` on 17)
  as a draft order in the POS's open session (none open: Retryable, it waits), lines with the products' taxes
  (price included). No table is named: pos_restaurant merges a draft order sent for a table into that table's
  open order, which would overwrite the visit's earlier order.
- A create (order or payment) with no answer within the timeout may still be running in Odoo, invisible to a
  look-up until it commits: for create_settle_seconds the next attempts only look it up (Retryable, status 409,
  no Retry-After so the other orders keep flowing) instead of creating it again. A dropped or refused connection returns at once and is simply looked up.
- `push_change` (Capability.AMENDS): a cancel runs `action_cancel` (sale.order) or `action_pos_order_cancel` (a
  draft pos.order); a voided line sets that sale.order line's quantity to 0 (Odoo refuses to delete a confirmed
  order's line and says to do that; part of one, 1 of a 2x: to what is left) and the service charge to the order's
  new one, or rewrites a draft pos.order's lines and totals; voiding the last line cancels. A line voided after its pos.order was paid is
  Odoo POS's refund order of that line (a draft: negative quantity, `refunded_orderline_id` on the line sold, and
  the service charge's change), its uuid the change's key; cancelling a paid pos.order is refused (refund it).
  `push_status` cancels too.
- `push_payment`, "sale_order": an `account.payment` (inbound; a refund outbound) for the walk-in customer in the
  method's journal, posted; its memo (`ref` on 17) "tablebox:<payment_ref> <method>" is looked up first.
  "pos_order": the payment fills the visit's draft pos.orders in turn as their own payment lines (label
  "tablebox:<payment_ref> <method>"; `transaction_id` on 17, whose create_from_ui keeps no label); an order paid
  in full becomes "paid". A refund first pays the visit's refund orders still waiting (dishes sent back after
  payment) with negative payment lines; the rest is a paid refund pos.order (a negative line and payment) named
  after it.
- `check()`: the `tablebox sync check` lines (reachable and version, protocol, API key / API access, currency,
  customer, pricelist, stock location, products, POS config / session / payment methods or payment journals,
  taxes included in the price, every dish code).

Failures (the classification every target shares, `sync/adapters/http.py`, plus Odoo's 409 for a concurrent
update): timeouts, refused or dropped connections, 5xx, 408/409/425/429 (with the answer's Retry-After), and
errors that are not about the call (a database lock, a serialization failure, Odoo's ConcurrencyError) are
`Retryable`. A refused API key (401 "Invalid apikey", JSON-RPC `AccessDenied` or a failed authenticate) is
`Rejected` with "check the API key"; 403 / `AccessError` names the user's access rights; a 404 (no such model or
method, no JSON-2 on this server), a 400/422 (a bad parameter, a `ValidationError` / `UserError`) and a JSON-2 500
naming an Odoo exception or a TypeError/ValueError/KeyError/AttributeError of the call (Json2Dispatcher gives
those no status of their own; JSON-RPC reports the same as an error) are `Rejected` with Odoo's own message. The
API key travels only in a header (JSON-2) or the request body (JSON-RPC); it is never logged nor in a message.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import httpx
import msgspec
import structlog

from appliance.domain.errors import DomainError
from appliance.domain.money import Currency
from sync.adapters.base import (
    Capability,
    Catalog,
    CatalogItem,
    Check,
    CheckState,
    OrderChange,
    OrderDoc,
    PaymentDoc,
    Rejected,
    Retryable,
)
from sync.adapters.http import HttpAdapter, Verdict, base_url_setting

log = structlog.get_logger("sync.odoo")

PROTOCOLS = ("json2", "jsonrpc", "auto")
DEFAULT_LANGUAGES = {"zh": "zh_CN", "en": "en_US"}
SOURCE_LANG = "en_US"  # the language Odoo keeps its source values in, and answers when it has no translation
# JSON-RPC errors retrying cannot fix: Odoo's own exceptions (except a concurrency failure) and the errors a
# bad call raises before anything runs (no such method, a wrong argument).
RETRYABLE_ODOO_ERRORS = frozenset({"odoo.exceptions.ConcurrencyError"})
CALL_ERRORS = frozenset({"builtins.TypeError", "builtins.AttributeError", "builtins.KeyError", "builtins.ValueError"})
DOCUMENTS = ("sale_order", "pos_order")
# The box's payment methods as Odoo names them: POS payment methods (document "pos_order") and, for "sale_order",
# the bank or cash journals customer payments are booked in. Either map can be changed per target.
DEFAULT_POS_METHODS = {"cash": "Cash", "card": "Card", "wechat": "WeChat Pay", "alipay": "Alipay", "other": "Other"}
DEFAULT_JOURNALS = {"cash": "Cash", "card": "Bank", "wechat": "Bank", "alipay": "Bank", "other": "Bank"}
# Odoo's --limit-time-real (odoo/tools/config.py, default 120 s) kills a request running longer than that in a
# multi-process server, rolling it back: after this long a create that got no answer has committed or never will.
DEFAULT_SETTLE_SECONDS = 120.0
POS_ORDER_FIELDS = [
    "name",
    "state",
    "amount_total",
    "amount_tax",
    "amount_paid",
    "session_id",
    "date_order",
    "pos_reference",
]
POS_LINE_FIELDS = [
    "product_id",
    "qty",
    "price_unit",
    "discount",
    "price_subtotal",
    "price_subtotal_incl",
    "full_product_name",
    "tax_ids",
]
LABEL = "tablebox:"  # + our reference + " " + method: the label of every payment document, looked up before create
_ENCODE = msgspec.json.Encoder(decimal_format="number").encode  # Decimal prices as JSON numbers, digit for digit


def create(name: str, config: Mapping[str, Any]) -> OdooAdapter:
    return OdooAdapter(name, config)


class OdooAdapter(HttpAdapter):
    capabilities = frozenset({Capability.CATALOG_PULL, Capability.AMENDS})
    peer = "Odoo"
    extra_retryable = frozenset({409})  # a concurrent update of the same record: Odoo asks to try again
    expected_codes: Sequence[str] = ()  # set by sync/check.py before check(): the menu's ERP codes
    box_facts: Mapping[str, Any] = {}  # likewise: currency, prices_include_tax, payment_methods, ...

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        base_url_setting(name, config)  # the first thing to fix when it is wrong
        self._api_key = str(config.get("api_key") or "")
        if not self._api_key:
            raise ValueError(f"sync target {name}: api_key is missing (TABLEBOX_SYNC_{name.upper()}_API_KEY)")
        self.database = str(config.get("database") or "") or None
        self.login = str(config.get("login") or "") or None
        self.protocol = str(config.get("protocol") or "json2")
        if self.protocol not in PROTOCOLS:
            raise ValueError(
                f"sync target {name}: protocol must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}"
            )
        if self.protocol == "jsonrpc" and not (self.database and self.login):
            raise ValueError(f"sync target {name}: protocol jsonrpc needs database and login")
        self.partner_id = _optional_id(config, "partner_id", name)
        self.company_id = _optional_id(config, "company_id", name)
        self.pricelist_id = _optional_id(config, "pricelist_id", name)
        self.location_id = _optional_id(config, "location_id", name)
        self.warehouse_id = _optional_id(config, "warehouse_id", name)
        self.service_product_id = _optional_id(config, "service_product_id", name)
        self.open_item_product_id = _optional_id(config, "open_item_product_id", name)
        self.currency = str(config.get("currency") or "") or None
        self.languages = dict(config.get("languages") or DEFAULT_LANGUAGES)
        if not self.languages:
            raise ValueError(f"sync target {name}: languages needs at least one language")
        self.confirm_orders = bool(config.get("confirm_orders", True))
        self.document = str(config.get("document") or "sale_order")
        if self.document not in DOCUMENTS:
            raise ValueError(
                f"sync target {name}: document must be one of {', '.join(DOCUMENTS)}, got {self.document!r}"
            )
        self.pos_config_id = _optional_id(config, "pos_config_id", name)
        if self.document == "pos_order" and self.pos_config_id is None:
            raise ValueError(f'sync target {name}: document = "pos_order" needs pos_config_id (the Odoo POS)')
        self.refund_product_id = _optional_id(config, "refund_product_id", name)
        self.payment_methods = {**DEFAULT_POS_METHODS, **dict(config.get("payment_methods") or {})}
        self.payment_journals = {**DEFAULT_JOURNALS, **dict(config.get("payment_journals") or {})}
        settle = config.get("create_settle_seconds", DEFAULT_SETTLE_SECONDS)
        if isinstance(settle, bool) or not isinstance(settle, (int, float)) or not 0 <= settle <= 3600:
            raise ValueError(f"sync target {name}: create_settle_seconds must be a number from 0 to 3600")
        self.create_settle_seconds = float(settle)
        self.page_size = int(config.get("page_size") or 200)
        if self.page_size < 1:
            raise ValueError(f"sync target {name}: page_size must be at least 1")
        super().__init__(name, config, headers={"Content-Type": "application/json"}, secrets=(self._api_key,))
        self._resolved: str | None = None if self.protocol == "auto" else self.protocol
        self._uid: int | None = None
        self._rpc_ids = itertools.count(1)
        self._products: dict[str, int] = {}  # default_code -> product.product id, for this adapter's life
        self._storable_domain: list[Any] | None = None
        self._taxes: dict[str, list[int]] = {}  # default_code -> the product's customer taxes
        self._tax_rates: dict[int, tuple[Decimal, bool]] = {}  # account.tax id -> (percent, price included)
        self._ids_by_name: dict[tuple[str, str], int] = {}  # (model, name) -> id: journals, POS payment methods
        self._version: int | None = None
        self._note_field: str | None = None
        # A create sent without an answer within the timeout may still be running in Odoo (each call is its own
        # transaction, invisible to a look-up until it commits): its key -> when to trust a look-up again.
        self._unsettled: dict[str, float] = {}
        self._clock = time.monotonic

    # -- the Adapter interface ------------------------------------------------------------------------------
    def pull_catalog(self) -> Catalog:
        code = self._catalog_currency()
        exponent = _currency(code).exponent
        pricelist = self._catalog_pricelist()
        variant_rules, template_rules = self._pricelist_rules(code, pricelist) if pricelist else ({}, {})
        items: dict[str, CatalogItem] = {}
        fields = ["default_code", "name", "list_price", "categ_id", "active", "sale_ok", "product_tmpl_id"]
        for page in self._pages(
            "product.product", [["default_code", "!=", False]], fields, {"lang": SOURCE_LANG, "active_test": False}
        ):
            names = self._names(page)
            for row in page:
                item_code = str(row["default_code"]).strip()
                if not item_code:
                    continue
                template = _many2one_id(row.get("product_tmpl_id"))
                rule = variant_rules.get(row["id"]) or (template_rules.get(template) if template is not None else None)
                price = self._rule_price(rule, row["list_price"], item_code)
                item = CatalogItem(
                    code=item_code,
                    names=names[row["id"]],
                    price_minor=_to_minor(price, exponent) if row.get("sale_ok", True) else None,
                    category=_leaf(row.get("categ_id")),
                    active=bool(row.get("active", True)),
                )
                kept = items.get(item_code)
                if kept is not None:
                    log.warning("sync.odoo.duplicate_code", target=self.name, code=item_code)
                    if kept.active or not item.active:  # the first active product with that reference wins
                        continue
                items[item_code] = item
        log.info("sync.odoo.catalog_pulled", target=self.name, url=self.base_url, items=len(items), currency=code)
        return Catalog(items=list(items.values()), currency=code)

    def pull_stock(self) -> dict[str, int]:
        context: dict[str, Any] = {}
        if self.location_id is not None:
            context["location"] = self.location_id
        elif self.warehouse_id is not None:
            # stock's ProductProduct._get_domain_locations reads context['warehouse'] on Odoo 17 and
            # context['warehouse_id'] (or 'search_warehouse') from 18 on; a key a version does not read is ignored
            # there, so both are sent and every version counts this warehouse's stock only.
            context["warehouse"] = self.warehouse_id
            context["warehouse_id"] = self.warehouse_id
        stock: dict[str, int] = {}
        domain = [["default_code", "!=", False], *self._storable()]
        for page in self._pages("product.product", domain, ["default_code", "qty_available"], context):
            for row in page:
                code = str(row["default_code"]).strip()
                if code and code not in stock:
                    qty = _decimal(row.get("qty_available") or 0)
                    stock[code] = max(0, int(qty.to_integral_value(rounding=ROUND_FLOOR)))
        log.info("sync.odoo.stock_pulled", target=self.name, url=self.base_url, items=len(stock))
        return stock

    def push_order(self, order: OrderDoc) -> str:
        if self.document == "pos_order":
            return self._push_pos_order(order)
        found = self._find_order(order.order_ref)
        if found is not None:
            log.info(
                "sync.odoo.order_found",
                target=self.name,
                order_ref=order.order_ref,
                odoo_id=found["id"],
                odoo_name=found.get("name"),
            )
            self._confirm(found, order)
            return str(found["id"])
        self._wait_unsettled(order.order_ref, "sale.order")
        if self.partner_id is None:
            raise Rejected(f"Odoo target {self.name}: set partner_id (the walk-in customer) to push orders")
        vals: dict[str, Any] = {
            "partner_id": self.partner_id,
            "client_order_ref": order.order_ref,
            "origin": f"Tablebox {order.ticket}, table {order.table}",
            "order_line": [[0, 0, line] for line in self._order_lines(order)],
        }
        date_order = _odoo_datetime(order.created_at)
        if date_order:
            vals["date_order"] = date_order
        if self.pricelist_id is not None:
            vals["pricelist_id"] = self.pricelist_id
        if self.company_id is not None:
            vals["company_id"] = self.company_id
        try:
            created = self._create_once(order.order_ref, "sale.order", "create", vals_list=[vals])
        except Rejected:
            self._products.clear()  # a product archived or deleted since it was cached is looked up afresh
            raise
        odoo_id = int(created[0] if isinstance(created, list) else created)
        log.info(
            "sync.odoo.order_created",
            target=self.name,
            order_ref=order.order_ref,
            odoo_id=odoo_id,
            lines=len(order.lines),
            total_minor=order.total_minor,
        )
        self._confirm({"id": odoo_id, "state": "draft"}, order)
        return str(odoo_id)

    def push_status(self, order_ref: str, status: str, reason: str | None) -> None:
        if status == "cancelled":
            self._cancel(order_ref, reason)

    def push_change(self, change: OrderChange) -> None:
        """A cancel cancels the Odoo order; a voided line sets that sale.order line's quantity to 0 (Odoo refuses to
        delete a confirmed order's line and says to do that), or rewrites a draft pos.order's lines; a void of the
        last line cancels. A line voided after its pos.order was paid becomes a refund order of that line, as Odoo
        POS books a dish brought back (_refund_sent_back); cancelling a paid pos.order is refused (refund it)."""
        if change.event == "status":
            if change.status == "cancelled":
                self._cancel(change.order_ref, change.reason)
            return
        if change.event != "line_voided":
            return
        if self.document == "pos_order":
            self._void_pos_line(change, change.order)
        elif change.order is None:
            self._cancel(change.order_ref, change.reason or "every line voided")
        else:
            self._void_sale_line(change, change.order)

    def push_payment(self, payment: PaymentDoc) -> str:
        if self.document == "pos_order":
            if payment.kind == "refund":
                return self._pos_refund(payment)
            return self._pos_payment(payment)
        return self._account_payment(payment)

    # -- sale.order -----------------------------------------------------------------------------------------
    def _find_order(self, order_ref: str) -> dict[str, Any] | None:
        rows = self._execute(
            "sale.order",
            "search_read",
            domain=[["client_order_ref", "=", order_ref]],
            fields=["name", "state"],
            order="id asc",
            limit=1,
        )
        if rows:
            self._unsettled.pop(order_ref, None)
        return rows[0] if rows else None

    def _confirm(self, found: Mapping[str, Any], order: OrderDoc) -> None:
        if self.confirm_orders and found.get("state") in ("draft", "sent"):
            self._execute("sale.order", "action_confirm", ids=[found["id"]])
            # sale.order.action_confirm writes _prepare_confirmation_values(): {'state': 'sale', 'date_order': now},
            # so an order queued through an outage would be booked at sync time: put the time it was taken back.
            date_order = _odoo_datetime(order.created_at)
            if date_order:
                self._execute("sale.order", "write", ids=[found["id"]], vals={"date_order": date_order})

    def _cancel(self, order_ref: str, reason: str | None) -> None:
        if self.document == "pos_order":
            self._cancel_pos(order_ref, reason)
            return
        found = self._find_order(order_ref)
        if found is None:
            raise Rejected(f"order {order_ref} is not in Odoo: deliver it before cancelling it")
        if found.get("state") == "cancel":
            return
        # disable_cancel_warning: Odoo 15/16 would otherwise answer with a wizard instead of cancelling.
        self._execute("sale.order", "action_cancel", ids=[found["id"]], context={"disable_cancel_warning": True})
        after = self._find_order(order_ref)
        if after is None or after.get("state") != "cancel":
            raise Rejected(
                f"Odoo did not cancel {found.get('name') or found['id']} (state {(after or {}).get('state')!r})"
            )
        log.info("sync.odoo.order_cancelled", target=self.name, order_ref=order_ref, odoo_id=found["id"], reason=reason)

    def _void_sale_line(self, change: OrderChange, order: OrderDoc) -> None:
        """sale/models/sale_order_line.py _unlink_except_confirmed: a confirmed order's line cannot be deleted ("Set
        the quantity to 0 instead"); so the voided line's quantity becomes 0 (part of it voided: what is left) and
        the service charge follows the order's new total. Writing the same values again changes nothing."""
        found = self._find_order(change.order_ref)
        if found is None:
            raise Rejected(f"order {change.order_ref} is not in Odoo: deliver it before voiding its lines")
        if found.get("state") == "cancel":
            return
        rows = self._execute(
            "sale.order.line",
            "search_read",
            domain=[["order_id", "=", found["id"]]],
            fields=["product_id", "product_uom_qty", "price_unit", "display_type", "name"],
            order="id asc",
        )
        dishes = [r for r in rows if not r.get("display_type") and not self._is_service_line(r)]
        if change.line_no is None or not 1 <= change.line_no <= len(dishes):
            raise Rejected(f"order {change.order_ref} in Odoo has no line {change.line_no} to void")
        line = dishes[change.line_no - 1]
        left = _left_on_line(order, change.line_no)
        if _decimal(line.get("product_uom_qty") or 0) != left:
            self._execute("sale.order.line", "write", ids=[line["id"]], vals={"product_uom_qty": left})
        service = next((r for r in rows if self._is_service_line(r)), None)
        exponent = _currency(order.currency).exponent
        if service is not None and _to_minor(service["price_unit"], exponent) != order.service_charge_minor:
            self._execute(
                "sale.order.line",
                "write",
                ids=[service["id"]],
                vals={"price_unit": _to_major(order.service_charge_minor, exponent)},
            )
        log.info("sync.odoo.line_voided", target=self.name, order_ref=change.order_ref, line_no=change.line_no)

    def _is_service_line(self, row: Mapping[str, Any]) -> bool:
        return (
            self.service_product_id is not None
            and _many2one_id(row.get("product_id")) == self.service_product_id
            and row.get("name") == "Service charge"
        )

    def _account_payment(self, payment: PaymentDoc) -> str:
        """A customer payment (account.payment, inbound; a refund outbound) in the journal the method maps to,
        posted; its memo carries our reference and method, so a retry finds it instead of paying twice."""
        memo_field = self._memo_field()
        label = f"{LABEL}{payment.payment_ref} {payment.method}"
        found = self._execute(
            "account.payment", "search_read", domain=[[memo_field, "=", label]], fields=["state", "name"], limit=1
        )
        if found:
            self._unsettled.pop(payment.payment_ref, None)
            if found[0].get("state") == "draft":  # created, its posting lost
                self._execute("account.payment", "action_post", ids=[found[0]["id"]])
            return str(found[0]["id"])
        self._wait_unsettled(payment.payment_ref, "account.payment")
        orders = self._execute(
            "sale.order",
            "search_read",
            domain=[["client_order_ref", "in", list(payment.order_refs)]],
            fields=["name"],
            order="id asc",
            limit=2 * len(payment.order_refs) or 1,
        )
        if not orders:
            raise Rejected(f"none of the orders of payment {payment.payment_ref} is in Odoo: deliver them first")
        if self.partner_id is None:
            raise Rejected(f"Odoo target {self.name}: set partner_id (the walk-in customer) to push payments")
        journal = self._named(
            "account.journal", self._mapped(self.payment_journals, payment.method, "payment_journals")
        )
        names = ", ".join(str(row.get("name") or row["id"]) for row in orders)
        what = f"refund of {payment.refund_of}: {payment.reason}" if payment.kind == "refund" else "payment"
        vals: dict[str, Any] = {
            "payment_type": "outbound" if payment.kind == "refund" else "inbound",
            "partner_type": "customer",
            "partner_id": self.partner_id,
            "amount": _to_major(payment.amount_minor, _currency(payment.currency).exponent),
            "journal_id": journal,
            "date": (_odoo_datetime(payment.paid_at) or "")[:10] or datetime.now(UTC).strftime("%Y-%m-%d"),
            memo_field: label,
            "payment_reference": f"Tablebox {what}, table {payment.table}, orders {names}"[:250],
        }
        created = self._create_once(payment.payment_ref, "account.payment", "create", vals_list=[vals])
        payment_id = int(created[0] if isinstance(created, list) else created)
        self._execute("account.payment", "action_post", ids=[payment_id])
        log.info(
            "sync.odoo.payment_booked",
            target=self.name,
            payment_ref=payment.payment_ref,
            kind=payment.kind,
            odoo_id=payment_id,
            amount_minor=payment.amount_minor,
        )
        return str(payment_id)

    def _pos_note_field(self) -> str | None:
        """The pos.order's note: `internal_note` on 19 (master), `note` before; Odoo 17's create_from_ui keeps
        only the fields of its _order_fields, a note not among them (the ticket and table are then not in Odoo)."""
        if self._odoo_version() < 18:
            return None
        if self._note_field is None:
            fields = self._execute("pos.order", "fields_get", attributes=["type"])
            self._note_field = next((f for f in ("internal_note", "general_note", "note") if f in fields), "")
        return self._note_field or None

    def _memo_field(self) -> str:
        """account.payment's free-text reference: `ref` up to Odoo 17, `memo` from 18."""
        return "memo" if self._odoo_version() >= 18 else "ref"

    # -- pos.order ------------------------------------------------------------------------------------------
    def _push_pos_order(self, order: OrderDoc) -> str:
        """The order as a draft pos.order in the POS's open session, through the POS's own entry point
        (point_of_sale/models/pos_order.py: sync_from_ui from 18, create_from_ui on 17), which finds an order it
        already has by its uuid (18/19) or receipt number (17) and updates it instead of creating another. It is
        paid, and so leaves draft, when the box's payment arrives."""
        found = self._find_pos(order.order_ref)
        if found is not None:
            return str(found["id"])
        if self._odoo_version() < 19:
            # From 19 pos.order.uuid is unique (_unique_uuid): a second create waits for the first in PostgreSQL and
            # is refused once it commits, so it can go at once; before, it would be a second order.
            self._wait_unsettled(order.order_ref, "pos.order")
        session = self._open_session()
        exponent = _currency(order.currency).exponent
        data = self._pos_order_data(order.order_ref, session, _odoo_datetime(order.created_at))
        data.update(
            lines=[[0, 0, line] for line in self._pos_lines(order)],
            amount_total=_to_major(order.total_minor, exponent),
            amount_tax=_to_major(order.tax_minor, exponent),
            amount_paid=0,
            amount_return=0,
        )
        note = "; ".join(t for t in (f"Tablebox {order.ticket}, table {order.table}", order.note) if t)
        note_field = self._pos_note_field()
        if note_field:
            data[note_field] = note
        try:
            odoo_id = self._synced_id(self._sync_pos(order.order_ref, data, draft=True))
        except Rejected:
            # 19's pos.order uuid is unique: a create racing one still running (a retry while the first is slow) is
            # refused once the first commits; then the order is there.
            found = self._find_pos(order.order_ref)
            if found is not None:
                return str(found["id"])
            self._products.clear()
            raise
        if odoo_id is None:  # the answer names no order (it went elsewhere?): Odoo's word by its reference
            found = self._find_pos(order.order_ref)
            if found is None:
                raise Retryable(f"Odoo took pos order {order.order_ref} but does not find it by its reference yet")
            odoo_id = int(found["id"])
        log.info(
            "sync.odoo.pos_order_created",
            target=self.name,
            order_ref=order.order_ref,
            odoo_id=odoo_id,
            total_minor=order.total_minor,
        )
        return str(odoo_id)

    def _pos_order_data(self, ref: str, session: int, date_order: str | None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": f"Tablebox {ref}",
            "partner_id": self.partner_id or False,
            "date_order": date_order or datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        }
        if self.pricelist_id is not None:
            data["pricelist_id"] = self.pricelist_id
        if self._odoo_version() >= 18:
            # No table_id: pos_restaurant's _get_open_order merges a draft order sent for a table into that table's
            # open draft order, which would overwrite the box's earlier order of the visit.
            data.update(uuid=ref, session_id=session, payment_ids=[])
        else:  # 17.0 _order_fields reads these keys without .get: each must be there
            data.update(
                pos_session_id=session,
                user_id=False,
                sequence_number=0,
                fiscal_position_id=False,
                statement_ids=[],
            )
        return data

    def _sync_pos(self, key: str, data: dict[str, Any], *, draft: bool) -> Any:
        """One order through the POS's entry point; `key`: what a call without an answer leaves unsettled (the
        order's reference for a new order, the payment's for payment lines added to one)."""
        if self._odoo_version() >= 18:
            data["state"] = "draft" if draft else "paid"
            return self._create_once(key, "pos.order", "sync_from_ui", orders=[data])
        return self._create_once(key, "pos.order", "create_from_ui", orders=[{"data": data}], draft=draft)

    @staticmethod
    def _synced_id(answer: Any) -> int | None:
        """The order's id in the answer: sync_from_ui's {"pos.order": [{"id": ...}, ...]} (18/19), create_from_ui's
        [{"id": ..., "pos_reference": ...}] (17); None when it names none (an order already past draft)."""
        rows = answer.get("pos.order") if isinstance(answer, dict) else answer
        if isinstance(rows, list) and rows and isinstance(rows[0], dict) and isinstance(rows[0].get("id"), int):
            return int(rows[0]["id"])
        return None

    def _synced_row(self, answer: Any, ref: str) -> dict[str, Any] | None:
        """The row of the order with our reference in the POS entry point's answer (18/19's sync_from_ui reads the
        orders it processed, the refunded order first for a refund order; 17's create_from_ui answers id and
        receipt number), None when it is not there."""
        rows = answer.get("pos.order") if isinstance(answer, dict) else answer
        for row in rows if isinstance(rows, list) else []:
            if isinstance(row, dict) and (row.get("uuid") or row.get("pos_reference")) and self._pos_ref(row) == ref:
                self._unsettled.pop(ref, None)
                return row
        return None

    def _find_pos(self, ref: str) -> dict[str, Any] | None:
        found = self._find_pos_many([ref]).get(ref)
        if found is not None:
            self._unsettled.pop(ref, None)
        return found

    def _find_pos_many(self, refs: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The pos.orders of these references, in one call: reference -> row."""
        if self._odoo_version() >= 18:
            domain, fields = [["uuid", "in", list(refs)]], ["uuid"]
        else:
            domain, fields = [["pos_reference", "in", [f"Tablebox {ref}" for ref in refs]]], []
        rows = self._execute(
            "pos.order",
            "search_read",
            domain=domain,
            fields=[*fields, *POS_ORDER_FIELDS],
            order="id asc",
        )
        found: dict[str, dict[str, Any]] = {}
        for row in rows:
            found.setdefault(self._pos_ref(row), row)
        return found

    def _open_session(self) -> int:
        rows = self._execute(
            "pos.session",
            "search_read",
            domain=[["config_id", "=", self.pos_config_id], ["state", "=", "opened"]],
            fields=["name"],
            order="id desc",
            limit=1,
        )
        if not rows:
            raise Retryable(
                f"the Odoo POS {self.pos_config_id} (pos_config_id) has no open session: orders wait until someone"
                " opens one in Odoo"
            )
        return int(rows[0]["id"])

    def _pos_lines(self, order: OrderDoc) -> list[dict[str, Any]]:
        """pos.order.line values as the POS front end sends them: the unit price, the totals with and without the
        (price-included) taxes of the product, and the product's taxes so Odoo's session closing books them."""
        exponent = _currency(order.currency).exponent
        lines = []
        for line in self._order_lines(order):
            if line.get("display_type"):
                continue
            code = next((c for c, pid in self._products.items() if pid == line["product_id"]), None)
            taxes = self._taxes.get(code or "", [])
            total = _decimal(line["price_unit"]) * line["product_uom_qty"]
            rate = sum((self._tax_rates[t][0] for t in taxes if self._tax_rates[t][1]), Decimal(0))
            untaxed = (total / (1 + rate / 100)).quantize(Decimal(1).scaleb(-exponent), rounding=ROUND_HALF_UP)
            lines.append(
                {
                    "product_id": line["product_id"],
                    "qty": line["product_uom_qty"],
                    "price_unit": line["price_unit"],
                    "discount": 0,
                    "price_subtotal": untaxed,
                    "price_subtotal_incl": total,
                    "full_product_name": line["name"],
                    "tax_ids": [[6, 0, taxes]],
                }
            )
        return lines

    def _void_pos_line(self, change: OrderChange, order: OrderDoc | None) -> None:
        key = change.change_ref or f"{change.order_ref}:line_voided:{change.line_no}"  # a refund order's uuid
        both = self._find_pos_many([change.order_ref, key])
        found = both.get(change.order_ref)
        if found is None:
            raise Rejected(f"order {change.order_ref} is not in Odoo: deliver it before voiding its lines")
        if found["state"] == "cancel":
            return
        if key in both:  # sent back after payment: its refund order is there
            self._unsettled.pop(key, None)
            return
        if found["state"] != "draft":
            self._refund_sent_back(change, key, order, found)
            return
        if order is None:
            self._cancel_pos(change.order_ref, change.reason or "every line voided")
            return
        exponent = _currency(order.currency).exponent
        lines = [[0, 0, line] for line in self._pos_lines(order)]
        totals: dict[str, Any] = {
            "amount_total": _to_major(order.total_minor, exponent),
            "amount_tax": _to_major(order.tax_minor, exponent),
        }
        if self._odoo_version() >= 18:
            # point_of_sale 18.0 _process_order writes 'lines' first: (5,) clears them (a draft order's lines may go)
            data: dict[str, Any] = {
                **self._pos_update_keys(change.order_ref),
                "session_id": _many2one_id(found["session_id"]),
                "payment_ids": [],
            }
            data.update(totals, lines=[[5], *lines])
        else:  # 17.0 rewrites the whole order: its lines unlinked, its payments cleaned and added again
            data = self._pos_order_data(change.order_ref, _many2one_id(found["session_id"]) or 0, found["date_order"])
            data.update(totals, lines=lines)
            data.update(amount_paid=found["amount_paid"], amount_return=0)
            data.update(self._pos_payments_17(found))
        self._sync_pos(change.order_ref, data, draft=True)
        log.info("sync.odoo.line_voided", target=self.name, order_ref=change.order_ref, line_no=change.line_no)

    def _cancel_pos(self, order_ref: str, reason: str | None) -> None:
        found = self._find_pos(order_ref)
        if found is None:
            raise Rejected(f"order {order_ref} is not in Odoo: deliver it before cancelling it")
        if found["state"] == "cancel":
            return
        if found["state"] != "draft":
            raise Rejected(
                f"pos order {found['name']} is already {found['state']} in Odoo and cannot be cancelled: give the"
                " money back as a refund"
            )
        # point_of_sale 18.0/19.0 action_pos_order_cancel cancels context['active_ids'] (the list's selection); 17.0
        # the orders it is called on: both are given.
        self._execute("pos.order", "action_pos_order_cancel", ids=[found["id"]], context={"active_ids": [found["id"]]})
        after = self._find_pos(order_ref)
        if after is None or after["state"] != "cancel":
            raise Rejected(f"Odoo did not cancel pos order {found['name']} (state {(after or {}).get('state')!r})")
        log.info("sync.odoo.order_cancelled", target=self.name, order_ref=order_ref, odoo_id=found["id"], reason=reason)

    def _pos_payment(self, payment: PaymentDoc) -> str:
        """The payment as the visit's pos.orders' own payment lines: the amount fills the orders in turn (each up to
        what it still owes); an order paid in full leaves draft (state 'paid'). Each part's label carries our
        reference, so a retry adds only the parts Odoo does not have."""
        exponent = _currency(payment.currency).exponent
        label = f"{LABEL}{payment.payment_ref} {payment.method}"
        found = self._find_pos_many(payment.order_refs)
        missing = [ref for ref in payment.order_refs if ref not in found]
        if missing:
            raise Rejected(f"orders {', '.join(missing)} of payment {payment.payment_ref} are not in Odoo yet")
        orders = [found[ref] for ref in payment.order_refs]
        label_field = "name" if self._odoo_version() >= 18 else "transaction_id"
        parts = self._execute(
            "pos.payment", "search_read", domain=[[label_field, "=", label]], fields=["pos_order_id", "amount"]
        )
        left = _to_major(payment.amount_minor, exponent) - sum((_decimal(p["amount"]) for p in parts), Decimal(0))
        if left <= 0:
            self._unsettled.pop(payment.payment_ref, None)
            return label
        # A part sent without an answer may still be running: sent again it would be a second payment line.
        self._wait_unsettled(payment.payment_ref, "payment")
        paid_orders = {_many2one_id(p["pos_order_id"]) for p in parts}
        plan: list[tuple[dict[str, Any], Decimal, bool]] = []
        for row in orders:
            due = _decimal(row["amount_total"]) - _decimal(row["amount_paid"])
            if left <= 0 or row["id"] in paid_orders or row["state"] != "draft" or due <= 0:
                continue
            part = min(due, left)
            plan.append((row, part, part == due))
            left -= part
        method = self._named(
            "pos.payment.method", self._mapped(self.payment_methods, payment.method, "payment_methods")
        )
        self._pay_pos_orders(payment, plan, method)
        self._check_paid(payment, [row for row, _part, in_full in plan if in_full])
        if left > 0:
            # Nothing of the visit in Odoo still owes it (paid again in another method after a refund, a tip): its
            # own paid order, so the session's cash and bank still match what the box took.
            self._pos_money_order(
                payment,
                left,
                "Payment beyond the orders",
                f"Tablebox payment of table {payment.table}, orders {', '.join(payment.order_refs)}",
            )
        log.info("sync.odoo.pos_payment", target=self.name, payment_ref=payment.payment_ref, orders=len(plan))
        return label

    def _pay_pos_orders(
        self, payment: PaymentDoc, plan: Sequence[tuple[Mapping[str, Any], Decimal, bool]], method: int
    ) -> None:
        """Payment lines labelled with the payment's reference, (order, amount (negative: money given back), paid in
        full) each, added to draft pos.orders in one call of the POS's entry point, one transaction (each call more
        is one more chance to fail on a flaky link); an order paid in full leaves draft. 17's create_from_ui takes
        one `draft` for all its orders: the orders paid in full go in one call, a part in another."""
        label_field = "name" if self._odoo_version() >= 18 else "transaction_id"
        paid_at = _odoo_datetime(payment.paid_at) or datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        label = f"{LABEL}{payment.payment_ref} {payment.method}"
        batches: dict[bool, list[dict[str, Any]]] = {}
        for row, amount, in_full in plan:
            line = {"amount": amount, "payment_method_id": method, "payment_date": paid_at, label_field: label}
            if self._odoo_version() >= 18:
                data: dict[str, Any] = {
                    **self._pos_update_keys(self._pos_ref(row)),
                    "session_id": _many2one_id(row["session_id"]),
                    "lines": [],
                    "payment_ids": [[0, 0, line]],
                    # 18.0 _process_payment_lines reads pos_order['amount_return'] of an order that is not a draft
                    "amount_return": 0,
                    "state": "paid" if in_full else "draft",
                }
                if in_full:
                    data["amount_paid"] = _decimal(row["amount_total"])
                batches.setdefault(True, []).append(data)
            else:
                data = self._pos_resend_17(row)
                data["statement_ids"].append([0, 0, {**line, "name": line.pop("payment_date")}])
                batches.setdefault(not in_full, []).append({"data": data})
        for draft, orders in batches.items():
            if self._odoo_version() >= 18:
                self._create_once(payment.payment_ref, "pos.order", "sync_from_ui", orders=orders)
            else:
                self._create_once(payment.payment_ref, "pos.order", "create_from_ui", orders=orders, draft=draft)

    def _check_paid(self, payment: PaymentDoc, rows: Sequence[Mapping[str, Any]]) -> None:
        """The pos.orders a payment covered in full must have left draft."""
        full = [self._pos_ref(row) for row in rows]
        after = self._find_pos_many(full) if full else {}
        unpaid = [str(after[ref]["name"]) for ref in full if ref not in after or after[ref]["state"] == "draft"]
        if unpaid:
            # point_of_sale 18.0 _process_saved_order only logs action_pos_order_paid's UserError
            raise Rejected(
                f"Odoo took {payment.kind} {payment.payment_ref} on pos orders {', '.join(unpaid)} but did not mark"
                " them paid (see the Odoo server log: 'Could not fully process the POS Order')"
            )

    def _pos_update_keys(self, ref: str) -> dict[str, Any]:
        """What an update of an existing pos.order must carry: its uuid, and from 19 an access_token key too
        (_process_order deletes order['uuid'] and order['access_token'] before writing; the value is not used)."""
        keys: dict[str, Any] = {"uuid": ref}
        if self._odoo_version() >= 19:
            keys["access_token"] = False
        return keys

    def _pos_ref(self, row: Mapping[str, Any]) -> str:
        if self._odoo_version() >= 18:
            return str(row["uuid"])
        return str(row.get("pos_reference") or "").removeprefix("Tablebox ")

    def _pos_resend_17(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Odoo 17's create_from_ui rewrites a draft order whole: its lines and payments as Odoo has them now."""
        lines = self._pos_order_lines(row["id"], "refunded_orderline_id")
        data = self._pos_order_data(self._pos_ref(row), _many2one_id(row["session_id"]) or 0, row["date_order"])
        data.update(
            lines=[
                [
                    0,
                    0,
                    {
                        **{
                            k: v
                            for k, v in line.items()
                            if k not in ("id", "product_id", "tax_ids", "refunded_orderline_id")
                        },
                        "product_id": _many2one_id(line["product_id"]),
                        "tax_ids": [[6, 0, line.get("tax_ids") or []]],
                        # a refund order's lines keep the line they refund (17.0 rewrites a draft's lines whole)
                        "refunded_orderline_id": _many2one_id(line.get("refunded_orderline_id")) or False,
                    },
                ]
                for line in lines
            ],
            amount_total=row["amount_total"],
            amount_tax=row["amount_tax"],
            amount_paid=row["amount_paid"],
            amount_return=0,
        )
        data.update(self._pos_payments_17(row))
        return data

    def _pos_order_lines(self, order_id: int, *more: str) -> list[dict[str, Any]]:
        """A pos.order's lines as the POS sends them (and `more` fields), in order."""
        rows = self._execute(
            "pos.order.line",
            "search_read",
            domain=[["order_id", "=", order_id]],
            fields=[*POS_LINE_FIELDS, *more],
            order="id asc",
        )
        return list(rows)

    def _pos_payments_17(self, row: Mapping[str, Any]) -> dict[str, Any]:
        payments = self._execute(
            "pos.payment",
            "search_read",
            domain=[["pos_order_id", "=", row["id"]]],
            fields=["amount", "payment_method_id", "payment_date", "transaction_id"],
            order="id asc",
        )
        return {
            "statement_ids": [
                [
                    0,
                    0,
                    {
                        "amount": p["amount"],
                        "payment_method_id": _many2one_id(p["payment_method_id"]),
                        "name": p["payment_date"],
                        "transaction_id": p.get("transaction_id") or False,
                    },
                ]
                for p in payments
            ]
        }

    def _pos_refund(self, payment: PaymentDoc) -> str:
        """A refund as Odoo POS books one. The refund orders of the visit's dishes sent back after payment
        (_refund_sent_back) that still wait for their money are paid first, each by a negative payment line in the
        method the money went back in; what is left is its own paid refund pos.order (a negative line and payment)
        named after our refund reference. Each part carries our label, so a retry adds only what Odoo lacks."""
        label = f"{LABEL}{payment.payment_ref} {payment.method}"
        label_field = "name" if self._odoo_version() >= 18 else "transaction_id"
        parts = self._execute(
            "pos.payment", "search_read", domain=[[label_field, "=", label]], fields=["pos_order_id", "amount"]
        )
        amount = _to_major(payment.amount_minor, _currency(payment.currency).exponent)
        left = amount + sum((_decimal(p["amount"]) for p in parts), Decimal(0))
        if left <= 0:  # every part there, its own refund order too (paid by a payment with the same label)
            self._unsettled.pop(payment.payment_ref, None)
            return label
        self._wait_unsettled(payment.payment_ref, "refund")
        paid_orders = {_many2one_id(p["pos_order_id"]) for p in parts}
        waiting = [row for row in self._waiting_refunds(payment.order_refs) if row["id"] not in paid_orders]
        method = self._named(
            "pos.payment.method", self._mapped(self.payment_methods, payment.method, "payment_methods")
        )
        plan: list[tuple[dict[str, Any], Decimal, bool]] = []
        for row in waiting:
            owed = _decimal(row["amount_paid"]) - _decimal(row["amount_total"])  # what it still gives back
            if left <= 0 or owed <= 0:
                continue
            part = min(owed, left)
            plan.append((row, -part, part == owed))
            left -= part
        self._pay_pos_orders(payment, plan, method)
        self._check_paid(payment, [row for row, _part, in_full in plan if in_full])
        if left <= 0:
            log.info("sync.odoo.pos_refund", target=self.name, payment_ref=payment.payment_ref, orders=len(waiting))
            return label
        reason = f"Refund: {payment.reason}"[:120] if payment.reason else "Refund"
        note = f"Tablebox refund of {payment.refund_of}, table {payment.table}: {payment.reason}"
        self._pos_money_order(payment, -left, reason, note)
        return label

    def _waiting_refunds(self, order_refs: Sequence[str]) -> list[dict[str, Any]]:
        """The draft refund pos.orders of these orders' lines (dishes sent back after payment), oldest first."""
        if self._odoo_version() >= 18:
            path, refs, fields = "uuid", list(order_refs), ["uuid"]
        else:
            path, refs, fields = "pos_reference", [f"Tablebox {ref}" for ref in order_refs], []
        rows = self._execute(
            "pos.order",
            "search_read",
            domain=[["lines.refunded_orderline_id.order_id." + path, "in", refs], ["state", "=", "draft"]],
            fields=[*fields, *POS_ORDER_FIELDS],
            order="id asc",
        )
        return list(rows)

    def _refund_sent_back(
        self, change: OrderChange, key: str, order: OrderDoc | None, found: Mapping[str, Any]
    ) -> None:
        """A line voided after its pos.order was paid: what Odoo POS books for a dish brought back, a refund order
        (point_of_sale/models/pos_order.py _refund and pos_order_line.py _prepare_refund_data, 17.0 to master): the
        dish's line again with its quantity negative and `refunded_orderline_id` on the line sold, and a line for
        what else changed (the service charge follows the subtotal), so the refund order's total is what Odoo
        holds for the order less what the box now says it is worth. It stays a draft until the box's refund
        (payment.refunded) pays it. Its uuid (receipt number "Tablebox <key>" on 17) is the change's key, so a
        retry finds it; the quantities are what Odoo still holds (sold less refunded), so nothing is refunded
        twice."""
        if self._odoo_version() < 19:
            self._wait_unsettled(key, "pos.order")
        sold = self._pos_order_lines(found["id"], "refunded_qty")
        refunds = (
            self._execute(
                "pos.order",
                "search_read",
                domain=[["lines.refunded_orderline_id.order_id", "=", found["id"]], ["state", "!=", "cancel"]],
                fields=["amount_total", "amount_tax"],
            )
            if any(_decimal(row.get("refunded_qty") or 0) for row in sold)  # none before the first dish sent back
            else []
        )
        held_total = _decimal(found["amount_total"]) + sum((_decimal(r["amount_total"]) for r in refunds), Decimal(0))
        held_tax = _decimal(found["amount_tax"]) + sum((_decimal(r["amount_tax"]) for r in refunds), Decimal(0))
        currency = order.currency if order is not None else self._catalog_currency()
        exponent = _currency(currency).exponent
        cent = Decimal(1).scaleb(-exponent)
        total = _to_major(order.total_minor, exponent) if order is not None else Decimal(0)
        tax = _to_major(order.tax_minor, exponent) if order is not None else Decimal(0)
        if total >= held_total:
            log.info("sync.odoo.void_nothing_to_refund", target=self.name, order_ref=change.order_ref, key=key)
            return
        kept: dict[tuple[int, Decimal], Decimal] = {}  # (product, unit price) -> what the box still sells
        for line in self._pos_lines(order) if order is not None else []:
            dish = (int(line["product_id"]), _decimal(line["price_unit"]))
            kept[dish] = kept.get(dish, Decimal(0)) + _decimal(line["qty"])
        lines: list[dict[str, Any]] = []
        service: Mapping[str, Any] | None = None
        for row in sold:
            product, price = _many2one_id(row["product_id"]), _decimal(row["price_unit"])
            if product is None or _decimal(row["qty"]) <= 0:
                continue
            if product == self.service_product_id:
                service = row
                continue
            left = _decimal(row["qty"]) - _decimal(row.get("refunded_qty") or 0)
            keep = min(left, kept.get((product, price), Decimal(0)))
            kept[(product, price)] = kept.get((product, price), Decimal(0)) - keep
            back = left - keep
            if back <= 0:
                continue
            share = back / _decimal(row["qty"])
            lines.append(
                {
                    "product_id": product,
                    "qty": -back,
                    "price_unit": price,
                    "discount": row.get("discount") or 0,
                    "price_subtotal": -(_decimal(row["price_subtotal"]) * share).quantize(cent, ROUND_HALF_UP),
                    "price_subtotal_incl": -(_decimal(row["price_subtotal_incl"]) * share).quantize(
                        cent, ROUND_HALF_UP
                    ),
                    "full_product_name": row.get("full_product_name") or "",
                    "tax_ids": [[6, 0, row.get("tax_ids") or []]],
                    "refunded_orderline_id": row["id"],
                }
            )
        rest = (total - held_total) - sum((line["price_subtotal_incl"] for line in lines), Decimal(0))
        if rest:
            lines.append(self._difference_line(rest, service, cent))
        data = self._pos_order_data(key, self._open_session(), None)
        data.update(
            lines=[[0, 0, line] for line in lines],
            amount_total=total - held_total,
            amount_tax=tax - held_tax,
            amount_paid=0,
            amount_return=0,
        )
        note_field = self._pos_note_field()
        if note_field:
            data[note_field] = (
                f"Tablebox: line {change.line_no} of order {change.order_ref} ({found['name']}) sent back after"
                f" payment: {change.reason or ''}"
            )
        try:
            answer = self._sync_pos(key, data, draft=True)
        except Rejected:
            # 19's pos.order uuid is unique: a create racing one still running is refused once the first commits
            if self._find_pos(key) is not None:
                return
            raise
        if self._synced_row(answer, key) is None and self._find_pos(key) is None:
            raise Retryable(f"Odoo took the refund order for {key} but does not find it by its reference yet")
        log.info(
            "sync.odoo.sent_back_refund",
            target=self.name,
            order_ref=change.order_ref,
            line_no=change.line_no,
            key=key,
            amount=str(total - held_total),
        )

    def _difference_line(self, amount: Decimal, service: Mapping[str, Any] | None, cent: Decimal) -> dict[str, Any]:
        """A refund order's line for what changed besides the dishes sent back (the service charge, by the order's
        service line's taxes), linked to no line: Odoo refunds a line by quantity, and the service charge moved by
        an amount."""
        product = self.service_product_id or self.refund_product_id or self.open_item_product_id
        if product is None:
            raise Rejected("set service_product_id (or refund_product_id) to refund a service charge in Odoo POS")
        untaxed = amount
        if service is not None and _decimal(service["price_subtotal_incl"]):
            ratio = _decimal(service["price_subtotal"]) / _decimal(service["price_subtotal_incl"])
            untaxed = (amount * ratio).quantize(cent, ROUND_HALF_UP)
        return {
            "product_id": product,
            "qty": 1 if amount > 0 else -1,
            "price_unit": abs(amount),
            "discount": 0,
            "price_subtotal": untaxed,
            "price_subtotal_incl": amount,
            "full_product_name": "Service charge" if product == self.service_product_id else "Refund difference",
            "tax_ids": [[6, 0, (service.get("tax_ids") or []) if service is not None else []]],
        }

    def _pos_money_order(self, payment: PaymentDoc, amount: Decimal, line_name: str, note: str) -> str:
        """A paid pos.order of one line of the refund product for `amount` (negative: money given back), paid by
        the payment's method, its uuid (receipt number on 17) our reference: a refund, or money no draft order of
        the visit owes (paid again in another method after a refund, a tip)."""
        self._wait_unsettled(payment.payment_ref, "pos.order")
        product = self.refund_product_id or self.open_item_product_id
        if product is None:
            raise Rejected("set refund_product_id (the Odoo product of a refund line) to push refunds to Odoo POS")
        method = self._named(
            "pos.payment.method", self._mapped(self.payment_methods, payment.method, "payment_methods")
        )
        label = f"{LABEL}{payment.payment_ref} {payment.method}"
        qty = 1 if amount > 0 else -1
        data = self._pos_order_data(payment.payment_ref, self._open_session(), _odoo_datetime(payment.paid_at))
        data.update(
            lines=[
                [
                    0,
                    0,
                    {
                        "product_id": product,
                        "qty": qty,
                        "price_unit": abs(amount),
                        "discount": 0,
                        "price_subtotal": amount,
                        "price_subtotal_incl": amount,
                        "full_product_name": line_name,
                    },
                ]
            ],
            amount_total=amount,
            amount_tax=0,
            amount_paid=amount,
            amount_return=0,
        )
        note_field = self._pos_note_field()
        if note_field:
            data[note_field] = note
        line: dict[str, Any] = {
            "amount": amount,
            "payment_method_id": method,
            "payment_date": _odoo_datetime(payment.paid_at) or datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        }
        if self._odoo_version() >= 18:
            data["payment_ids"] = [[0, 0, {**line, "name": label}]]
        else:
            line["name"] = line.pop("payment_date")
            data["statement_ids"] = [[0, 0, {**line, "transaction_id": label}]]
        answer = self._sync_pos(payment.payment_ref, data, draft=False)
        found = self._synced_row(answer, payment.payment_ref)
        if found is None or "state" not in found:  # 17's create_from_ui answers ids and receipt numbers only
            found = self._find_pos(payment.payment_ref)
        if found is None or found["state"] == "draft":
            raise Rejected(f"Odoo did not book {payment.kind} {payment.payment_ref} as a paid POS order")
        log.info(
            "sync.odoo.pos_money_order",
            target=self.name,
            payment_ref=payment.payment_ref,
            kind=payment.kind,
            odoo_id=found["id"],
        )
        return str(found["id"])

    # -- shared ---------------------------------------------------------------------------------------------
    def _create_once(self, key: str, model: str, method: str, **named: Any) -> Any:
        """A call that creates something: when it gets no answer within the timeout it may still be running in
        Odoo, and a look-up cannot see it before it commits; the next attempts wait (_wait_unsettled) instead of
        creating it again. A refused connection or a dropped one returns at once and is not waited for."""
        started = self._clock()
        try:
            return self._execute(model, method, **named)
        except Retryable as exc:
            if exc.status is None and self._clock() - started >= self.timeout * 0.9:
                self._unsettled[key] = started + self.create_settle_seconds
            raise

    def _wait_unsettled(self, key: str, what: str) -> None:
        deadline = self._unsettled.get(key)
        if deadline is None:
            return
        left = deadline - self._clock()
        if left > 0:
            # 409 as an idempotency key still in flight is answered (IETF httpapi idempotency draft), and no
            # Retry-After: the engine would pause the whole target for this one order.
            raise Retryable(
                f"the {what} for {key} sent before got no answer within {self.timeout:g} s and may still be running"
                f" in Odoo: nothing is created for it for another {left:.0f} s, only looked up (create_settle_seconds)",
                status=409,
            )
        del self._unsettled[key]

    def _mapped(self, mapping: Mapping[str, str], method: str, setting: str) -> str:
        name = mapping.get(method)
        if not name:
            raise Rejected(
                f"payment method {method!r} has no Odoo name: add it to {setting} of sync target {self.name}"
            )
        return name

    def _named(self, model: str, name: str) -> int:
        key = (model, name)
        if key not in self._ids_by_name:
            domain: list[Any] = [["name", "=", name]]
            if model == "account.journal":
                domain.append(["type", "in", ["bank", "cash"]])
            rows = self._execute(model, "search_read", domain=domain, fields=["name"], order="id asc", limit=1)
            if not rows:
                kind = "bank or cash journal" if model == "account.journal" else "POS payment method"
                raise Rejected(f"Odoo has no {kind} named {name!r}: create it, or map the method to another")
            self._ids_by_name[key] = int(rows[0]["id"])
        return self._ids_by_name[key]

    def _odoo_version(self) -> int:
        if self._version is None:
            try:
                self._version = self._server_version()
            except Rejected:
                if self.protocol != "json2":
                    raise
                self._version = 19  # no /web/version (a proxy hides it) and no JSON-RPC: JSON-2 came with 19
        return self._version

    # -- tablebox sync check ----------------------------------------------------------------------------------
    def check(self) -> list[Check]:
        """`tablebox sync check`: reachable and which Odoo, the protocol, the API key (and, on Odoo Online, whether
        the plan includes the external API), then what orders, payments and the catalog need, in that order."""
        checks: list[Check] = []
        try:
            version = self._server_version()
        except (Retryable, Rejected) as exc:
            return [
                Check(
                    "reachable",
                    CheckState.FAIL,
                    exc.message,
                    "Check base_url, the network and, for a private certificate, ca_file (or verify_tls)",
                )
            ]
        self._version = version
        if version < 17:
            checks.append(
                Check(
                    "reachable",
                    CheckState.WARN,
                    f"Odoo {version} at {self.base_url}: Tablebox is built and tested for Odoo 17, 18 and 19",
                    "Expect differences; check a test order, payment, void and refund by hand",
                )
            )
        else:
            checks.append(Check("reachable", CheckState.OK, f"Odoo {version} at {self.base_url}"))
        try:
            protocol = self._protocol()
        except Rejected as exc:
            checks.append(Check("protocol", CheckState.FAIL, exc.message, "Set database and login"))
            return checks
        if protocol == "json2" and version < 19:
            checks.append(
                Check("protocol", CheckState.FAIL, f"Odoo {version} has no JSON-2 API", 'Set protocol = "jsonrpc"')
            )
            return checks
        if protocol == "jsonrpc" and version >= 19:
            checks.append(
                Check(
                    "protocol",
                    CheckState.WARN,
                    "JSON-RPC is deprecated from Odoo 19 (to be removed in 22)",
                    'Set protocol = "json2" (or "auto")',
                )
            )
        else:
            checks.append(Check("protocol", CheckState.OK, protocol))
        try:
            self._execute("res.users", "context_get")
        except Rejected as exc:
            if exc.status == 403:
                fix = (
                    "Odoo Online offers the external API on its Custom plan only; on your own server, check that"
                    " the API key's user is an internal user"
                )
                checks.append(Check("API access", CheckState.FAIL, exc.message, fix))
            else:
                fix = (
                    "In Odoo: Preferences > Account Security > New API Key, for the login in the settings (on Odoo"
                    " Online the external API also needs the Custom plan)"
                )
                checks.append(Check("authenticated", CheckState.FAIL, exc.message, fix))
            return checks
        except Retryable as exc:
            checks.append(Check("authenticated", CheckState.FAIL, exc.message, "Try again when Odoo answers"))
            return checks
        checks.append(Check("authenticated", CheckState.OK, f"API key accepted ({protocol})"))
        steps = [
            ("currency", self._check_currency),
            ("customer (partner_id)", self._check_partner),
            ("pricelist", self._check_pricelist),
            ("stock location", self._check_location),
            ("service charge and open item products", self._check_products),
        ]
        if self.document == "pos_order":
            steps += [
                ("POS config", self._check_pos_config),
                ("POS session", self._check_pos_session),
                ("POS payment methods", self._check_pos_methods),
            ]
        else:
            steps += [
                ("order reference", self._check_order_ref),
                ("payment journals", self._check_journals),
            ]
        steps += [("prices include tax", self._check_tax), ("dish codes", self._check_codes)]
        for name, step in steps:
            try:
                checks.append(step())
            except (Rejected, Retryable) as exc:
                checks.append(Check(name, CheckState.FAIL, exc.message, "See what Odoo said"))
        return checks

    def _check_currency(self) -> Check:
        odoo = self._catalog_currency()
        box = self.box_facts.get("currency")
        if not box:
            return Check("currency", CheckState.WARN, f"Odoo: {odoo}; the box's currency not checked")
        if str(box) != odoo:
            return Check(
                "currency",
                CheckState.FAIL,
                f"Odoo's company currency is {odoo}, the box's {box}",
                "Set company_id to the company that sells in the box's currency",
            )
        return Check("currency", CheckState.OK, odoo)

    def _check_partner(self) -> Check:
        name = "customer (partner_id)"
        if self.partner_id is None:
            state = CheckState.WARN if self.document == "pos_order" else CheckState.FAIL
            return Check(name, state, "not set", "Set partner_id to the walk-in customer's res.partner id")
        rows = self._execute("res.partner", "search_read", domain=[["id", "=", self.partner_id]], fields=["name"])
        if not rows:
            return Check(
                name, CheckState.FAIL, f"no res.partner {self.partner_id}", "Set partner_id to an existing one"
            )
        return Check(name, CheckState.OK, str(rows[0]["name"]))

    def _check_pricelist(self) -> Check:
        pricelist = self._catalog_pricelist()
        if pricelist is None:
            return Check("pricelist", CheckState.OK, "none: the products' sales prices")
        self._pricelist_rules(self._catalog_currency(), pricelist)
        return Check("pricelist", CheckState.OK, f"pricelist {pricelist}")

    def _check_location(self) -> Check:
        name = "stock location"
        if self.location_id is None and self.warehouse_id is None:
            return Check(name, CheckState.OK, "every internal location of the company")
        model, record = (
            ("stock.location", self.location_id)
            if self.location_id is not None
            else ("stock.warehouse", self.warehouse_id)
        )
        rows = self._execute(model, "search_read", domain=[["id", "=", record]], fields=["name"])
        if not rows:
            setting = "location_id" if model == "stock.location" else "warehouse_id"
            return Check(name, CheckState.FAIL, f"no {model} {record}", f"Set {setting} to an existing one")
        return Check(name, CheckState.OK, f"{model} {record} ({rows[0]['name']})")

    def _check_products(self) -> Check:
        name = "service charge and open item products"
        wanted = {
            setting: product
            for setting, product in (
                ("service_product_id", self.service_product_id),
                ("open_item_product_id", self.open_item_product_id),
                ("refund_product_id", self.refund_product_id),
            )
            if product is not None
        }
        if not wanted:
            return Check(
                name,
                CheckState.WARN,
                "not set: an order with a service charge or a dish without an ERP code is refused",
                "Set service_product_id and open_item_product_id",
            )
        found = {
            row["id"]
            for row in self._execute(
                "product.product", "search_read", domain=[["id", "in", list(wanted.values())]], fields=["name"]
            )
        }
        missing = [f"{setting} {product}" for setting, product in wanted.items() if product not in found]
        if missing:
            return Check(name, CheckState.FAIL, f"no active product: {', '.join(missing)}", "Set existing products")
        return Check(name, CheckState.OK, ", ".join(wanted))

    def _check_order_ref(self) -> Check:
        return Check(
            "order reference",
            CheckState.OK,
            "orders are found again by their Customer Reference (client_order_ref), payments by their memo",
            "",
        )

    def _check_journals(self) -> Check:
        methods = list(self.box_facts.get("payment_methods") or self.payment_journals)
        missing = []
        for method in methods:
            try:
                self._named("account.journal", self._mapped(self.payment_journals, method, "payment_journals"))
            except Rejected as exc:
                missing.append(f"{method}: {exc.message}")
        if missing:
            return Check(
                "payment journals",
                CheckState.FAIL,
                "; ".join(missing),
                "Create the bank or cash journals in Odoo Accounting, or set payment_journals",
            )
        return Check(
            "payment journals", CheckState.OK, ", ".join(f"{m} -> {self.payment_journals[m]}" for m in methods)
        )

    def _pos_config(self) -> dict[str, Any] | None:
        rows = self._execute(
            "pos.config",
            "search_read",
            domain=[["id", "=", self.pos_config_id]],
            fields=["name", "payment_method_ids", "module_pos_restaurant"],
        )
        return rows[0] if rows else None

    def _check_pos_config(self) -> Check:
        config = self._pos_config()
        if config is None:
            return Check(
                "POS config", CheckState.FAIL, f"no pos.config {self.pos_config_id}", "Set pos_config_id to your POS"
            )
        if not config.get("module_pos_restaurant"):
            return Check(
                "POS config",
                CheckState.WARN,
                f"{config['name']} is not a restaurant POS (pos_restaurant off)",
                "Fine for a shop; a restaurant turns on Point of Sale > Configuration > Is a Bar/Restaurant",
            )
        return Check("POS config", CheckState.OK, f"{config['name']} (restaurant)")

    def _check_pos_session(self) -> Check:
        try:
            self._open_session()
        except Retryable as exc:
            return Check("POS session", CheckState.WARN, exc.message, "Open a session of this POS in Odoo")
        return Check("POS session", CheckState.OK, "a session is open")

    def _check_pos_methods(self) -> Check:
        config = self._pos_config()
        if config is None:
            return Check("POS payment methods", CheckState.FAIL, "no POS config", "Set pos_config_id")
        allowed = {
            row["name"]: row["id"]
            for row in self._execute(
                "pos.payment.method",
                "search_read",
                domain=[["id", "in", list(config.get("payment_method_ids") or [])]],
                fields=["name"],
            )
        }
        methods = list(self.box_facts.get("payment_methods") or [])
        if not methods:
            return Check(
                "POS payment methods",
                CheckState.WARN,
                f"the POS takes {', '.join(sorted(allowed)) or 'nothing'}; the box's methods not checked",
            )
        missing = [
            f"{method} ({self.payment_methods.get(method) or 'not mapped'})"
            for method in methods
            if self.payment_methods.get(method) not in allowed
        ]
        if missing:
            return Check(
                "POS payment methods",
                CheckState.FAIL,
                f"{config['name']} does not take {', '.join(missing)}; it takes {', '.join(sorted(allowed))}",
                "Add those payment methods to the POS (Point of Sale > Configuration > Settings), or map the box's"
                " methods to the POS's in payment_methods",
            )
        return Check(
            "POS payment methods", CheckState.OK, ", ".join(f"{m} -> {self.payment_methods[m]}" for m in methods)
        )

    def _check_tax(self) -> Check:
        name = "prices include tax"
        codes = list(dict.fromkeys(self.expected_codes))
        if not codes:
            return Check(name, CheckState.WARN, "no dish codes to check the taxes of")
        rows = self._execute(
            "product.product",
            "search_read",
            domain=[["default_code", "in", codes]],
            fields=["default_code", "taxes_id"],
        )
        tax_ids = sorted({int(t) for row in rows for t in row.get("taxes_id") or []})
        taxes = (
            self._execute(
                "account.tax", "search_read", domain=[["id", "in", tax_ids]], fields=["name", "amount", "price_include"]
            )
            if tax_ids
            else []
        )
        added = sorted({str(t["name"]) for t in taxes if not t.get("price_include") and _decimal(t.get("amount") or 0)})
        include = self.box_facts.get("prices_include_tax")
        if include is None:
            detail = f"taxes added on top: {', '.join(added)}" if added else "every tax is included in the price"
            return Check(name, CheckState.WARN, f"{detail}; the box's setting not checked")
        if include and added:
            return Check(
                name,
                CheckState.FAIL,
                f"the box's prices include tax, but Odoo adds {', '.join(added)} on top: Odoo's totals would differ",
                "Give the dishes price-included taxes in Odoo (Accounting > Taxes > Included in Price)",
            )
        if not include and not added and taxes:
            return Check(
                name,
                CheckState.WARN,
                "Odoo's taxes are included in the price, the box's prices are not",
                "Make the box's setting and Odoo's taxes agree",
            )
        return Check(name, CheckState.OK, "Odoo's taxes agree with the box's prices")

    def _check_codes(self) -> Check:
        name = "dish codes"
        codes = list(dict.fromkeys(self.expected_codes))
        if not codes:
            return Check(name, CheckState.WARN, "the box has no dish with an ERP code")
        rows = self._execute(
            "product.product",
            "search_read",
            domain=[["default_code", "in", codes]],
            fields=["default_code", "active"],
            context={"active_test": False},
        )
        active = {str(r["default_code"]) for r in rows if r.get("active", True)}
        archived = {str(r["default_code"]) for r in rows} - active
        missing = [c for c in codes if c not in active]
        if missing:
            listed = ", ".join(f"{c}{' (archived)' if c in archived else ''}" for c in missing[:10])
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            return Check(
                name,
                CheckState.FAIL,
                f"{len(missing)} of {len(codes)} not found in Odoo: {listed}{more}",
                "Give each dish's Odoo product that Internal Reference (or fix the dish's ERP code on the box)",
            )
        return Check(name, CheckState.OK, f"all {len(codes)} found")

    # -- lines and products ---------------------------------------------------------------------------------
    def _order_lines(self, order: OrderDoc) -> list[dict[str, Any]]:
        exponent = _currency(order.currency).exponent
        self._resolve_products({line.code for line in order.lines if line.code}, order)
        lines: list[dict[str, Any]] = []
        for line in order.lines:
            if line.code:
                product_id: int | None = self._products[line.code]
            elif self.open_item_product_id is not None:
                product_id = self.open_item_product_id
            else:
                raise Rejected(
                    f'dish "{line.name}" has no ERP code: give it the Odoo product\'s internal '
                    f"reference, or set open_item_product_id for dishes Odoo does not know"
                )
            lines.append(
                {
                    "product_id": product_id,
                    "product_uom_qty": line.quantity,
                    "price_unit": _to_major(line.unit_price_minor, exponent),
                    "name": f"{line.name} ({line.note})" if line.note else line.name,
                }
            )
        if order.service_charge_minor:
            if self.service_product_id is None:
                raise Rejected(
                    f"order {order.ticket} has a service charge: set service_product_id (the Odoo "
                    "product of the service-charge line)"
                )
            lines.append(
                {
                    "product_id": self.service_product_id,
                    "product_uom_qty": 1,
                    "price_unit": _to_major(order.service_charge_minor, exponent),
                    "name": "Service charge",
                }
            )
        if order.note:
            lines.append({"display_type": "line_note", "name": order.note})
        return lines

    def _resolve_products(self, codes: set[str], order: OrderDoc) -> None:
        missing = sorted(codes - self._products.keys())
        if not missing:
            return
        rows = self._execute(
            "product.product",
            "search_read",
            domain=[["default_code", "in", missing]],
            fields=["default_code", "active", "taxes_id"],
            order="id asc",
            context={"active_test": False},
        )
        archived = set()
        for row in rows:
            code = str(row["default_code"])
            if row.get("active", True):
                self._products.setdefault(code, row["id"])
                self._taxes.setdefault(code, [int(t) for t in row.get("taxes_id") or []])
            else:
                archived.add(code)
        unknown_taxes = sorted({t for code in missing for t in self._taxes.get(code, [])} - self._tax_rates.keys())
        if unknown_taxes:
            for tax in self._execute(
                "account.tax", "search_read", domain=[["id", "in", unknown_taxes]], fields=["amount", "price_include"]
            ):
                self._tax_rates[int(tax["id"])] = (_decimal(tax.get("amount") or 0), bool(tax.get("price_include")))
            for tax_id in unknown_taxes:
                self._tax_rates.setdefault(tax_id, (Decimal(0), True))  # not readable: leaves the totals alone
        for code in missing:
            if code not in self._products:
                dish = next((line.name for line in order.lines if line.code == code), code)
                state = "is archived in Odoo" if code in archived else "has no Odoo product"
                raise Rejected(f'dish "{dish}" (ERP code {code}) {state}: order {order.ticket} cannot be delivered')

    # -- catalog helpers ------------------------------------------------------------------------------------
    def _names(self, page: list[dict[str, Any]]) -> dict[int, dict[str, str]]:
        """Each product's name per configured language. Odoo answers the source (en_US) name for a language it
        has no translation in: such a name is left out, so a translation only the box has survives the pull."""
        source = {row["id"]: str(row.get("name") or "") for row in page}
        names: dict[int, dict[str, str]] = {row_id: {} for row_id in source}
        for ours, odoo_lang in self.languages.items():
            if odoo_lang == SOURCE_LANG:
                translated = source
            else:
                translated = {
                    row["id"]: str(row.get("name") or "")
                    for row in self._execute(
                        "product.product",
                        "search_read",
                        domain=[["id", "in", list(source)]],
                        fields=["name"],
                        context={"lang": odoo_lang, "active_test": False},
                    )
                }
            for row_id, text in translated.items():
                if text and row_id in names and (odoo_lang == SOURCE_LANG or text != source[row_id]):
                    names[row_id][ours] = text
        for row_id, found in names.items():
            if not found and source[row_id]:  # not one configured language named: Odoo's own name still does
                found[next(iter(self.languages))] = source[row_id]
        return names

    def _catalog_currency(self) -> str:
        if self.currency:
            return self.currency
        domain = [["id", "=", self.company_id]] if self.company_id is not None else []
        rows = self._execute(
            "res.company", "search_read", domain=domain, fields=["currency_id"], order="id asc", limit=1
        )
        if not rows or not rows[0].get("currency_id"):
            raise Rejected("Odoo names no company currency: set currency in the sync target's settings")
        return str(rows[0]["currency_id"][1])

    def _catalog_pricelist(self) -> int | None:
        """pricelist_id, or for document "pos_order" without one the POS's own pricelist (what Odoo POS sells at)."""
        if self.pricelist_id is not None or self.document != "pos_order":
            return self.pricelist_id
        rows = self._execute(
            "pos.config", "search_read", domain=[["id", "=", self.pos_config_id]], fields=["pricelist_id"], limit=1
        )
        return _many2one_id(rows[0].get("pricelist_id")) if rows else None

    def _pricelist_rules(
        self, currency: str, pricelist_id: int
    ) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]]:
        """The rule Odoo applies to one portion of each variant (and each template), valid now. product's
        ProductPricelistItem orders rules `applied_on, min_quantity desc, categ_id desc, id desc` and
        Pricelist._compute_price_rule takes the first applicable one: a variant's rule before its template's, a
        rule for 1 before one for 0, the newest before older ones."""
        pricelists = self._execute(
            "product.pricelist", "search_read", domain=[["id", "=", pricelist_id]], fields=["currency_id"], limit=1
        )
        if not pricelists:
            raise Rejected(f"Odoo has no pricelist {pricelist_id} (pricelist_id)")
        if pricelists[0].get("currency_id") and pricelists[0]["currency_id"][1] != currency:
            raise Rejected(
                f"pricelist {pricelist_id} is in {pricelists[0]['currency_id'][1]}, the catalog in {currency}"
            )
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        domain = [
            ["pricelist_id", "=", pricelist_id],
            ["min_quantity", "<=", 1],
            ["applied_on", "in", ["0_product_variant", "1_product"]],
        ]
        fields = [
            "applied_on",
            "product_id",
            "product_tmpl_id",
            "categ_id",
            "min_quantity",
            "compute_price",
            "fixed_price",
            "percent_price",
            "base",
            "date_start",
            "date_end",
        ]
        rules = [
            rule
            for page in self._pages("product.pricelist.item", domain, fields, {})
            for rule in page
            if (rule.get("date_start") or now) <= now and (rule.get("date_end") or now) >= now
        ]
        rules.sort(
            key=lambda r: (
                str(r["applied_on"]),
                -_decimal(r.get("min_quantity") or 0),
                -(_many2one_id(r.get("categ_id")) or 0),
                -int(r["id"]),
            )
        )
        variants: dict[int, dict[str, Any]] = {}
        templates: dict[int, dict[str, Any]] = {}
        for rule in rules:
            variant, template = _many2one_id(rule.get("product_id")), _many2one_id(rule.get("product_tmpl_id"))
            if rule["applied_on"] == "0_product_variant" and variant:
                variants.setdefault(variant, rule)
            elif rule["applied_on"] == "1_product" and template:
                templates.setdefault(template, rule)
        return variants, templates

    def _rule_price(self, rule: Mapping[str, Any] | None, list_price: Any, code: str) -> Any:
        if rule is None:
            return list_price
        if rule.get("compute_price") == "fixed":
            return _decimal(rule["fixed_price"])
        if rule.get("compute_price") == "percentage" and rule.get("base") in (None, False, "list_price"):
            return _decimal(list_price) * (1 - _decimal(rule.get("percent_price") or 0) / 100)
        # A formula, or a base other than the sales price: Odoo computes it from things the catalog does not read.
        log.warning("sync.odoo.pricelist_rule_skipped", target=self.name, code=code, rule=rule["id"])
        return list_price

    def _storable(self) -> list[Any]:
        if self._storable_domain is None:
            fields = self._execute("product.product", "fields_get", attributes=["type"])
            self._storable_domain = (
                [["is_storable", "=", True]] if "is_storable" in fields else [["type", "=", "product"]]
            )
        return self._storable_domain

    def _pages(
        self, model: str, domain: list[Any], fields: list[str], context: Mapping[str, Any]
    ) -> Iterator[list[dict[str, Any]]]:
        last = 0
        while True:
            rows = self._execute(
                model,
                "search_read",
                domain=[*domain, ["id", ">", last]],
                fields=fields,
                limit=self.page_size,
                order="id asc",
                context=dict(context),
            )
            if rows:
                yield rows
                last = rows[-1]["id"]
            if len(rows) < self.page_size:
                return

    # -- the two protocols ----------------------------------------------------------------------------------
    def _execute(
        self,
        model: str,
        method: str,
        *,
        ids: Sequence[int] | None = None,
        context: Mapping[str, Any] | None = None,
        **named: Any,
    ) -> Any:
        full_context: dict[str, Any] = {}
        if self.company_id is not None:
            full_context["allowed_company_ids"] = [self.company_id]
        full_context.update(context or {})
        if self._protocol() == "json2":
            body = dict(named)
            if ids is not None:
                body["ids"] = list(ids)
            body["context"] = full_context
            return self._json2(model, method, body)
        args: list[Any] = [] if ids is None else [list(ids)]
        if method == "create":  # Odoo before 17 names create's parameter `arg`, not `vals_list`: pass it by position
            args.append(named.pop("vals_list"))
        kwargs = {**named, "context": full_context}
        return self._rpc(
            "object",
            "execute_kw",
            [self.database, self._authenticate(), self._api_key, model, method, args, kwargs],
            f"{model}.{method}",
        )

    def _protocol(self) -> str:
        if self._resolved is None:
            version = self._odoo_version()
            self._resolved = "json2" if version >= 19 else "jsonrpc"
            log.info(
                "sync.odoo.protocol", target=self.name, url=self.base_url, odoo_version=version, protocol=self._resolved
            )
        if self._resolved == "jsonrpc" and not (self.database and self.login):
            raise Rejected(f"this Odoo speaks only JSON-RPC: set database and login for sync target {self.name}")
        return self._resolved

    def _server_version(self) -> int:
        response = self.send("GET", "/web/version")
        if self.classify(response.status_code) is Verdict.RETRY:
            raise self.retryable(f"Odoo answered {response.status_code} to GET /web/version", response)
        if response.status_code == 200:
            try:
                major = _major_version(response.json())
            except ValueError:
                major = None
            if major is not None:
                return major
        # No GET /web/version (Odoo before 16, or a proxy hiding it): only JSON-RPC can say.
        major = _major_version(self._rpc("common", "version", [], "common.version"))
        if major is None:
            raise Rejected(f"cannot tell which Odoo version runs at {self.base_url}: set protocol")
        return major

    def _json2(self, model: str, method: str, body: dict[str, Any]) -> Any:
        headers = {"Authorization": f"bearer {self._api_key}"}
        if self.database:
            headers["X-Odoo-Database"] = self.database
        response = self._post(f"/json/2/{model}/{method}", body, headers)
        if response.status_code == 200:
            return self._decode(response)
        raise self._http_error(
            response,
            f"{model}.{method}",
            no_endpoint=(
                f'no JSON-2 API at {self.base_url} (Odoo before 19: set protocol = "jsonrpc" or "auto")'
                f" or no database {self.database or '(database not set)'!r} there"
            ),
        )

    def _authenticate(self) -> int:
        if self._uid is None:
            uid = self._rpc("common", "authenticate", [self.database, self.login, self._api_key, {}], "authenticate")
            if not uid:
                raise Rejected(
                    f"Odoo refused login {self.login!r} with the API key (check the API key and login)", status=401
                )
            self._uid = int(uid)
        return self._uid

    def _rpc(self, service: str, method: str, args: list[Any], what: str) -> Any:
        body = {
            "jsonrpc": "2.0",
            "method": "call",
            "params": {"service": service, "method": method, "args": args},
            "id": next(self._rpc_ids),
        }
        response = self._post("/jsonrpc", body, {})
        if response.status_code != 200:
            raise self._http_error(
                response,
                what,
                no_endpoint=(f'no JSON-RPC at {self.base_url} (Odoo 22 and later: set protocol = "json2")'),
            )
        answer = self._decode(response)
        if not isinstance(answer, dict):
            raise Retryable(f"Odoo answered {what} with something that is not JSON-RPC")
        if answer.get("error") is not None:
            raise self._rpc_error(answer["error"], what)
        return answer.get("result")

    def _post(self, path: str, body: Any, headers: dict[str, str]) -> httpx.Response:
        return self.send("POST", path, content=_ENCODE(body), headers=headers)

    def _decode(self, response: httpx.Response) -> Any:
        try:
            return json.loads(response.content, parse_float=Decimal)
        except ValueError:
            raise self.retryable(
                f"Odoo at {self.base_url} answered {response.status_code} with a body that is not JSON", response
            ) from None

    def _http_error(self, response: httpx.Response, what: str, *, no_endpoint: str) -> Exception:
        status = response.status_code
        name, message = _error_fields(response)
        message = self.scrub(message)[:500]
        if status == 401:
            return Rejected(f"Odoo refused the API key (check the API key): {message}", status=status)
        if status == 403:
            return Rejected(
                f"Odoo refused {what} (check the API key and its user's access rights): {message}", status=status
            )
        if status == 500 and name and _refused_by_odoo(name):
            # odoo/http.py Json2Dispatcher.handle_error: only UserError (and subclasses) and HTTPExceptions keep a
            # status of their own; any other exception is a 500 whose body names it (serialize_exception). A
            # ValueError for an invalid field is the same refusal JSON-RPC reports as an error: retrying cannot fix it.
            return Rejected(f"Odoo refused {what} ({name}): {message}", status=status)
        if self.classify(status) is Verdict.RETRY:
            return self.retryable(f"Odoo answered {status} to {what}: {message}", response)
        if status == 404 and name is None:  # not Odoo's JSON error: the endpoint itself is missing
            return Rejected(f"Odoo answered 404 to {what}: {no_endpoint}", status=status)
        return Rejected(f"Odoo refused {what} ({status}): {message}", status=status)

    def _rpc_error(self, error: Mapping[str, Any], what: str) -> Exception:
        raw = error.get("data")
        data: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
        name = str(data.get("name") or "")
        message = self.scrub(str(data.get("message") or error.get("message") or "error"))[:500]
        if name == "odoo.exceptions.AccessDenied":
            self._uid = None
            return Rejected(f"Odoo refused the API key (check the API key and login): {message}", status=401)
        if name == "odoo.exceptions.AccessError":
            return Rejected(f"Odoo refused {what} (check the API key's user access rights): {message}", status=403)
        if _refused_by_odoo(name):
            return Rejected(f"Odoo refused {what}: {message}")
        if "database" in message and "does not exist" in message:
            return Rejected(f"Odoo has no database {self.database!r} (check database): {message}")
        if error.get("code") == 100 or name == "odoo.http.SessionExpiredException":
            self._uid = None
        return Retryable(f"Odoo failed {what} ({name or error.get('code')}): {message}")


def _refused_by_odoo(name: str) -> bool:
    """An error Odoo raised about the call itself (its own exceptions but a concurrency failure, or a TypeError /
    ValueError / ... of the call's arguments): the same call fails the same way every time."""
    return (name.startswith("odoo.exceptions.") and name not in RETRYABLE_ODOO_ERRORS) or name in CALL_ERRORS


# -- values ------------------------------------------------------------------------------------------------
def _optional_id(config: Mapping[str, Any], key: str, target: str) -> int | None:
    value: Any = config.get(key)
    if value in (None, "", False):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"sync target {target}: {key} must be an Odoo record id (a number), got {value!r}") from None


def _currency(code: str) -> Currency:
    try:
        return Currency.of(code)
    except DomainError:
        raise Rejected(f"currency {code!r} is not one Tablebox knows") from None


def _left_on_line(order: OrderDoc, line_no: int) -> int:
    """How many of line `line_no`'s dishes the order holds now (0: voided): one of a 2x voided leaves 1. Read from
    the order as the store has it (its view, every line with its number), so writing it twice changes nothing."""
    for line in (order.view or {}).get("lines") or []:
        if int(line.get("line_no") or 0) == line_no:
            return int(line["quantity"]) if line.get("status", "active") == "active" else 0
    return 0


def _decimal(value: Any) -> Decimal:
    """JSON numbers are decoded as Decimal already; an int or a numeric string is taken as written."""
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise Rejected(f"Odoo sent {value!r} where a number belongs") from None


def _to_minor(amount: Any, exponent: int) -> int:
    """Odoo's major units (38.5) as our minor units (3850), rounded half up where Odoo keeps more decimals."""
    return int(_decimal(amount).scaleb(exponent).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _to_major(amount_minor: int, exponent: int) -> Decimal:
    return Decimal(amount_minor).scaleb(-exponent)


def _many2one_id(value: Any) -> int | None:
    if isinstance(value, (list, tuple)) and value:
        return int(value[0])
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _leaf(categ: Any) -> str | None:
    """`[5, "All / Saleable / Dim Sum"]` -> "Dim Sum"."""
    if isinstance(categ, (list, tuple)) and len(categ) > 1 and categ[1]:
        return str(categ[1]).split(" / ")[-1].strip() or None
    return None


def _odoo_datetime(iso: str) -> str | None:
    """Our UTC ISO-8601 as Odoo's naive UTC "YYYY-MM-DD HH:MM:SS"."""
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _major_version(answer: Any) -> int | None:
    """19 from {"version_info": [19, 0, ...]}, {"server_version_info": ["saas~18", 3, ...]} or {"version": "17.0"}."""
    if not isinstance(answer, dict):
        return None
    info = answer.get("version_info") or answer.get("server_version_info")
    candidates = [info[0]] if isinstance(info, list) and info else []
    candidates += [answer.get("version"), answer.get("server_version")]
    for candidate in candidates:
        if isinstance(candidate, int) and not isinstance(candidate, bool):
            return candidate
        match = re.search(r"(\d+)", str(candidate or ""))
        if match:
            return int(match.group(1))
    return None


def _error_fields(response: httpx.Response) -> tuple[str | None, str]:
    """Odoo's JSON-2 error object gives (name, message); anything else (a proxy's or an old Odoo's HTML page)
    gives (None, the status line)."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return None, f"{response.status_code} {response.reason_phrase}"
    if isinstance(body, dict) and ("name" in body or "message" in body):
        return str(body.get("name") or ""), str(body.get("message") or body.get("name"))
    if isinstance(body, str):  # early JSON-2 answered a bare message
        return "", body
    return None, f"{response.status_code} {response.reason_phrase}"


# What sync.adapters.adapter_class(kind) answers: the class whose declarations (capabilities) the worker reads.
ADAPTER = OdooAdapter
