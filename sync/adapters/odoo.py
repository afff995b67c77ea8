"""Odoo as an ERP target: the catalog and stock pulled from `product.product`, each order pushed once as a `sale.order`.

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
    timeout_seconds       every HTTP call (default 10)
    verify_tls            false only for a test server with a self-signed certificate (default true)
    ca_file               or trust this CA for the server's certificate, e.g. "/etc/tablebox/odoo-ca.pem"
    partner_id            the res.partner orders are sold to, the walk-in customer (required to push orders)
    company_id            the res.company: calls run in it, orders belong to it, its currency is the catalog's
    currency              the catalog's currency code, instead of asking res.company (optional)
    pricelist_id          a product.pricelist: set on each sale.order, and its fixed-price rules (for a variant
                          or a product, minimum quantity <= 1, valid now) replace list_price in the catalog
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
  (they come back as inactive, i.e. removed); `list_price` (or the pricelist's fixed price) converted to minor
  units exactly (Decimal, never float); the leaf of the product category as category; `sale_ok = False` gives
  no price (not sold). Paged by id (`id > last` with `limit`), so a product archived or added mid-pull neither
  shifts the pages nor hides another product. Names are read once per configured language.
- `pull_stock`: `qty_available` of storable products (`is_storable` from Odoo 18, `type = 'product'` before),
  with the location or warehouse in the context; rounded down to whole portions, never below zero.
- `push_order`: JSON-2 runs each call in its own transaction and Odoo does not dedupe `client_order_ref`, so
  the order is first looked up by `client_order_ref = our order_ref`; found, its id is returned (and it is
  confirmed if it is still a quotation); otherwise it is created with one line per dish (product found by
  `default_code`, cached for the adapter's life), the service charge as a line, the order's note as a note
  line, then confirmed. A create whose answer is lost is found by the next attempt's lookup. Tablebox prices
  include tax: give the Odoo products price-included taxes (or none), or Odoo's total differs from the bill.
- `push_status`: "cancelled" runs `action_cancel` on the order (already cancelled: nothing to do; not in Odoo
  yet: refused, so it is parked until the order is there); other statuses, "line_voided" included, are not
  recorded in Odoo.
- `push_payment`: Odoo's accounting is not driven from here: the payment is recorded as an internal note on
  the visit's first order in Odoo (`message_post`), carrying the marker `tablebox-payment:<payment_ref>`,
  looked up first so a retry posts nothing twice. None of the visit's orders in Odoo is refused (the orders
  must be delivered first).

Failures (the classification every target shares, `sync/adapters/http.py`, plus Odoo's 409 for a concurrent
update): timeouts, refused or dropped connections, 5xx, 408/409/425/429 (with the answer's Retry-After), and JSON-RPC
errors that are not Odoo's own (a database lock, a serialization failure) are `Retryable`. A refused API key (401 "Invalid apikey",
JSON-RPC `AccessDenied` or a failed authenticate) is `Rejected` with "check the API key"; 403 / `AccessError`
names the user's access rights; a 404 (no such model or method, no JSON-2 on this server) and a 400/422 (a bad
parameter, a `ValidationError` / `UserError`) are `Rejected` with Odoo's own message. The API key travels only
in a header (JSON-2) or the request body (JSON-RPC); it is never logged and never part of an error message.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import httpx
import msgspec
import structlog

from appliance.domain.errors import DomainError
from appliance.domain.money import Currency
from sync.adapters.base import Capability, Catalog, CatalogItem, OrderDoc, PaymentDoc, Rejected, Retryable
from sync.adapters.http import HttpAdapter, Verdict, base_url_setting

log = structlog.get_logger("sync.odoo")

PROTOCOLS = ("json2", "jsonrpc", "auto")
DEFAULT_LANGUAGES = {"zh": "zh_CN", "en": "en_US"}
SOURCE_LANG = "en_US"  # the language Odoo keeps its source values in, and answers when it has no translation
# JSON-RPC errors retrying cannot fix: Odoo's own exceptions (except a concurrency failure) and the errors a
# bad call raises before anything runs (no such method, a wrong argument).
RETRYABLE_ODOO_ERRORS = frozenset({"odoo.exceptions.ConcurrencyError"})
CALL_ERRORS = frozenset({"builtins.TypeError", "builtins.AttributeError", "builtins.KeyError", "builtins.ValueError"})
PAYMENT_MARKER = "tablebox-payment:"
_ENCODE = msgspec.json.Encoder(decimal_format="number").encode  # Decimal prices as JSON numbers, digit for digit


def create(name: str, config: Mapping[str, Any]) -> OdooAdapter:
    return OdooAdapter(name, config)


class OdooAdapter(HttpAdapter):
    capabilities = frozenset({Capability.CATALOG_PULL})
    peer = "Odoo"
    extra_retryable = frozenset({409})  # a concurrent update of the same record: Odoo asks to try again

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
        self.page_size = int(config.get("page_size") or 200)
        if self.page_size < 1:
            raise ValueError(f"sync target {name}: page_size must be at least 1")
        super().__init__(name, config, headers={"Content-Type": "application/json"}, secrets=(self._api_key,))
        self._resolved: str | None = None if self.protocol == "auto" else self.protocol
        self._uid: int | None = None
        self._rpc_ids = itertools.count(1)
        self._products: dict[str, int] = {}  # default_code -> product.product id, for this adapter's life
        self._storable_domain: list[Any] | None = None

    # -- the Adapter interface ------------------------------------------------------------------------------
    def pull_catalog(self) -> Catalog:
        code = self._catalog_currency()
        exponent = _currency(code).exponent
        variant_prices, template_prices = self._pricelist_prices(code) if self.pricelist_id else ({}, {})
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
                price = variant_prices.get(row["id"], template_prices.get(template) if template is not None else None)
                price = row["list_price"] if price is None else price
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
            created = self._execute("sale.order", "create", vals_list=[vals])
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
        if status != "cancelled":
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

    def push_payment(self, payment: PaymentDoc) -> str:
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
        ids = [row["id"] for row in orders]
        marker = PAYMENT_MARKER + payment.payment_ref
        posted = self._execute(
            "mail.message",
            "search_read",
            domain=[["model", "=", "sale.order"], ["res_id", "in", ids], ["body", "ilike", marker]],
            fields=["res_id"],
            limit=1,
        )
        if posted:
            return str(posted[0]["id"])
        amount = _to_major(payment.amount_minor, _currency(payment.currency).exponent)
        body = (
            f"Paid {amount} {payment.currency} by {payment.method} at {payment.paid_at}, table {payment.table}, "
            f"orders {', '.join(row.get('name') or str(row['id']) for row in orders)} ({marker})"
        )
        result = self._execute(
            "sale.order", "message_post", ids=ids[:1], body=body, message_type="comment", subtype_xmlid="mail.mt_note"
        )
        message_id = result[0] if isinstance(result, list) else result
        log.info("sync.odoo.payment_noted", target=self.name, payment_ref=payment.payment_ref, odoo_id=ids[0])
        return str(message_id)

    # -- orders ---------------------------------------------------------------------------------------------
    def _find_order(self, order_ref: str) -> dict[str, Any] | None:
        rows = self._execute(
            "sale.order",
            "search_read",
            domain=[["client_order_ref", "=", order_ref]],
            fields=["name", "state"],
            order="id asc",
            limit=1,
        )
        return rows[0] if rows else None

    def _confirm(self, found: Mapping[str, Any], order: OrderDoc) -> None:
        if self.confirm_orders and found.get("state") in ("draft", "sent"):
            self._execute("sale.order", "action_confirm", ids=[found["id"]])
            # sale.order.action_confirm writes _prepare_confirmation_values(): {'state': 'sale', 'date_order': now},
            # so an order queued through an outage would be booked at sync time: put the time it was taken back.
            date_order = _odoo_datetime(order.created_at)
            if date_order:
                self._execute("sale.order", "write", ids=[found["id"]], vals={"date_order": date_order})

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
            fields=["default_code", "active"],
            order="id asc",
            context={"active_test": False},
        )
        archived = set()
        for row in rows:
            code = str(row["default_code"])
            if row.get("active", True):
                self._products.setdefault(code, row["id"])
            else:
                archived.add(code)
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

    def _pricelist_prices(self, currency: str) -> tuple[dict[int, Decimal], dict[int, Decimal]]:
        pricelists = self._execute(
            "product.pricelist", "search_read", domain=[["id", "=", self.pricelist_id]], fields=["currency_id"], limit=1
        )
        if not pricelists:
            raise Rejected(f"Odoo has no pricelist {self.pricelist_id} (pricelist_id)")
        if pricelists[0].get("currency_id") and pricelists[0]["currency_id"][1] != currency:
            raise Rejected(
                f"pricelist {self.pricelist_id} is in {pricelists[0]['currency_id'][1]}, the catalog in {currency}"
            )
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        variants: dict[int, Decimal] = {}
        templates: dict[int, Decimal] = {}
        domain = [
            ["pricelist_id", "=", self.pricelist_id],
            ["compute_price", "=", "fixed"],
            ["min_quantity", "<=", 1],
            ["applied_on", "in", ["0_product_variant", "1_product"]],
        ]
        fields = ["applied_on", "product_id", "product_tmpl_id", "fixed_price", "date_start", "date_end"]
        for page in self._pages("product.pricelist.item", domain, fields, {}):
            for rule in page:
                if (rule.get("date_start") or now) > now or (rule.get("date_end") or now) < now:
                    continue
                variant, template = _many2one_id(rule.get("product_id")), _many2one_id(rule.get("product_tmpl_id"))
                if rule["applied_on"] == "0_product_variant" and variant:
                    variants.setdefault(variant, _decimal(rule["fixed_price"]))
                elif rule["applied_on"] == "1_product" and template:
                    templates.setdefault(template, _decimal(rule["fixed_price"]))
        return variants, templates

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
            version = self._server_version()
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
        if (name.startswith("odoo.exceptions.") and name not in RETRYABLE_ODOO_ERRORS) or name in CALL_ERRORS:
            return Rejected(f"Odoo refused {what}: {message}")
        if "database" in message and "does not exist" in message:
            return Rejected(f"Odoo has no database {self.database!r} (check database): {message}")
        if error.get("code") == 100 or name == "odoo.http.SessionExpiredException":
            self._uid = None
        return Retryable(f"Odoo failed {what} ({name or error.get('code')}): {message}")


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
