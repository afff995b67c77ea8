"""A fake ERPNext (Frappe REST API, v1 paths) for the ERPNext adapter: a real HTTP server on 127.0.0.1 with
the FakeServer faults, answering with Frappe's status codes and error bodies.

What it reproduces (from frappe/exceptions.py, frappe/utils/response.py report_error, frappe/api,
frappe/model/base_document.py):
- `Authorization: token KEY:SECRET`; a wrong key or secret is 401 AuthenticationError (empty message, as
  Frappe raises it bare); no header at all is Guest: 403 PermissionError. `forbid(doctype)` makes the API
  user lack a role: 403 PermissionError "No permission for <doctype>".
- `GET /api/resource/<DocType>` (name URL-encoded): `{"data": [...]}`, `fields` as a JSON list (default
  ["name"], "*" = all), `filters` as a JSON list of [doctype, field, op, value] or [field, op, value] or a
  dict, ops = != in "not in" like > < >= <= is; `order_by` ("field asc|desc", default "modified desc");
  `limit_start`; `limit_page_length` (or `limit`; default 20, 0 = all). An unknown field is what MariaDB
  makes of it: 500 OperationalError "(1054, "Unknown column ...")".
- `GET /api/resource/<DocType>/<name>`: `{"data": {...}}` or 404 DoesNotExistError "<DocType> <name> not
  found" (no traceback: Frappe leaves it out of 404s).
- `POST /api/resource/Sales Order` (or POS Invoice): validated like ERPNext (customer, items, pos_profile),
  named by its naming series (SAL-ORD-2026-00001, ACC-PSINV-2026-00001), a client-given name ignored, fields
  the doctype does not have dropped silently, docstatus 1 in the body = created submitted. A repeated POST
  makes a second document, unless the custom order-ref field is unique (`unique=True`, the default): then
  the second insert is 417 UniqueValidationError ("<label> must be unique", the MariaDB "Duplicate entry"
  in the exception), as base_document.show_unique_validation_message raises it; `duplicate_error=
  "DuplicateEntryError"` answers 409 DuplicateEntryError instead (what Frappe says when the duplicate is a
  document's *name*). `custom_field=False`: the site has no such field (posted values vanish; filtering on
  it is the 500 above).
- An unknown item on an order line: 404 DoesNotExistError "Item X not found" (what ERPNext's
  get_item_details raises while validating), or with `unknown_item_error="LinkValidationError"` 417
  "Could not find Row #1: Item Code: X" (Frappe's link check). A disabled item: 417 "Item X is disabled".
- `PUT /api/resource/<DocType>/<name>`: updates fields (a submitted document only its allow-on-submit ones,
  else 417 UpdateAfterSubmitError); `POST /api/method/frappe.client.cancel` {doctype, name}: 1 -> 2, else
  417 ("Cannot change docstatus from 0 to 2", "Cannot edit cancelled document"). Comments:
  `POST /api/resource/Comment` and listing them.
- `rate_limited = n`: the next n requests are 429 (Frappe's rate limiter); `lookup_misses = n`: the next n
  lookups of an order by its ref see nothing yet, as when the ERP has not committed another request's
  insert (the window a unique field closes).

`order_counts()`, `order_total_minor()`, `add_item()`, `set_price()`, `set_stock()`, `remove_item()` and
`target_config()` are the helpers every fake ERP offers the sync tests.
"""

from __future__ import annotations

import json
import re
import secrets
import traceback
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

from appliance.domain.money import Currency
from tests.fakes.server import FakeServer, Reply, Request, _Dropped

DEFAULT_PAGE = 20
ORDER_DOCTYPES = {"Sales Order": "SAL-ORD-", "POS Invoice": "ACC-PSINV-"}
COMMON_FIELDS = {"name", "owner", "creation", "modified", "modified_by", "docstatus", "idx"}
ORDER_FIELDS = COMMON_FIELDS | {
    "title",
    "naming_series",
    "customer",
    "customer_name",
    "company",
    "currency",
    "selling_price_list",
    "ignore_pricing_rule",
    "set_warehouse",
    "items",
    "total_qty",
    "total",
    "net_total",
    "grand_total",
    "status",
    "po_no",
    "remarks",
    "transaction_date",
    "delivery_date",
    "posting_date",
    "set_posting_time",
    "is_pos",
    "pos_profile",
    "order_type",
    "amended_from",
}
ITEM_ROW_FIELDS = {"item_code", "item_name", "qty", "rate", "amount", "warehouse", "delivery_date", "uom"}
ALLOW_ON_SUBMIT = {"po_no", "remarks", "title", "delivery_date"}
SCHEMA: dict[str, set[str]] = {
    "Item": COMMON_FIELDS
    | {
        "item_code",
        "item_name",
        "item_group",
        "disabled",
        "is_sales_item",
        "is_stock_item",
        "has_variants",
        "stock_uom",
        "description",
    },
    "Item Price": COMMON_FIELDS
    | {
        "item_code",
        "item_name",
        "price_list",
        "price_list_rate",
        "currency",
        "selling",
        "buying",
        "valid_from",
        "valid_upto",
        "customer",
        "uom",
    },
    "Bin": COMMON_FIELDS
    | {"item_code", "warehouse", "actual_qty", "reserved_qty", "ordered_qty", "projected_qty", "stock_uom"},
    "Comment": COMMON_FIELDS | {"comment_type", "reference_doctype", "reference_name", "content", "comment_email"},
}


class FakeERPNext(FakeServer):
    def __init__(
        self,
        *,
        unique: bool = True,
        duplicate_error: str = "UniqueValidationError",
        unknown_item_error: str = "DoesNotExistError",
        custom_field: bool = True,
        currency: str = "CNY",
        price_list: str = "Standard Selling",
        warehouse: str = "Stores - TB",
        customer: str = "Walk-in Customer",
        company: str = "Tablebox Restaurant",
        doctype: str = "Sales Order",
        order_ref_field: str = "tablebox_order_ref",
        language: str = "zh",
    ) -> None:
        super().__init__()
        assert duplicate_error in ("UniqueValidationError", "DuplicateEntryError")
        assert unknown_item_error in ("DoesNotExistError", "LinkValidationError")
        assert doctype in ORDER_DOCTYPES
        self.unique = unique
        self.duplicate_error = duplicate_error
        self.unknown_item_error = unknown_item_error
        self.custom_field = custom_field
        self.currency = Currency.of(currency)
        self.price_list = price_list
        self.warehouse = warehouse
        self.customer = customer
        self.company = company
        self.doctype = doctype
        self.order_ref_field = order_ref_field
        self.language = language
        self.pos_profile = "Main POS"
        self.api_key = "k" + secrets.token_hex(7)
        self.api_secret = secrets.token_hex(12)
        self.customers = {customer}
        self.forbidden: set[str] = set()
        self.rate_limited = 0
        self.lookup_misses = 0
        self.posts: dict[str, int] = {}  # doctype -> POSTs received (answered or not)
        self.tables: dict[str, dict[str, dict[str, Any]]] = {d: {} for d in [*SCHEMA, *ORDER_DOCTYPES]}
        self._series: dict[str, int] = {}
        self._clock = 0
        self._hashes = 0

    # -- the helpers the sync tests use ---------------------------------------------------------------------
    def target_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "kind": "erpnext",
            "base_url": self.url,
            "api_key": self.api_key,
            "api_secret": self.api_secret,
            "timeout_seconds": 2,
            "price_list": self.price_list,
            "warehouse": self.warehouse,
            "customer": self.customer,
            "company": self.company,
            "doctype": self.doctype,
            "order_ref_field": self.order_ref_field,
            "default_language": self.language,
        }
        if self.doctype == "POS Invoice":
            config["pos_profile"] = self.pos_profile
        return config

    def add_item(
        self,
        code: str,
        names: Mapping[str, str],
        price_minor: int | None,
        stock: int | None = None,
        category: str | None = None,
    ) -> None:
        with self.lock:
            name = names.get(self.language) or next(iter(names.values()), code)
            self._insert(
                "Item",
                code,
                {
                    "item_code": code,
                    "item_name": name,
                    "item_group": category or "Products",
                    "disabled": 0,
                    "is_sales_item": 1,
                    "is_stock_item": int(stock is not None),
                    "has_variants": 0,
                    "stock_uom": "Nos",
                    "description": name,
                },
            )
            if price_minor is not None:
                self.set_price(code, price_minor)
            if stock is not None:
                self.set_stock(code, stock)

    def set_price(
        self,
        code: str,
        price_minor: int | None,
        *,
        price_list: str | None = None,
        currency: str | None = None,
        **extra: Any,
    ) -> None:
        """The item's price in a price list (the main one unless named); None removes it. `extra` sets
        valid_from, valid_upto, customer (then it is a row of its own, beside the plain one)."""
        price_list = price_list or self.price_list
        cur = Currency.of(currency) if currency else self.currency
        with self.lock:
            rows = self.tables["Item Price"]
            same = [
                n
                for n, row in rows.items()
                if row["item_code"] == code
                and row["price_list"] == price_list
                and all(row.get(k) == v for k, v in extra.items())
                and (extra or not any(row.get(k) for k in ("valid_from", "valid_upto", "customer")))
            ]
            if price_minor is None:
                for name in same:
                    del rows[name]
                return
            rate = Decimal(price_minor).scaleb(-cur.exponent)
            if same:
                rows[same[0]].update(price_list_rate=rate, currency=cur.code, modified=self._tick())
                return
            item = self.tables["Item"].get(code, {})
            self._insert(
                "Item Price",
                self._hash(),
                {
                    "item_code": code,
                    "item_name": item.get("item_name", code),
                    "price_list": price_list,
                    "price_list_rate": rate,
                    "currency": cur.code,
                    "selling": 1,
                    "buying": 0,
                    "uom": "Nos",
                    "valid_from": None,
                    "valid_upto": None,
                    "customer": None,
                    **extra,
                },
            )

    def set_stock(
        self, code: str, qty: int | Decimal, *, reserved: int | Decimal = 0, warehouse: str | None = None
    ) -> None:
        warehouse = warehouse or self.warehouse
        with self.lock:
            bins = self.tables["Bin"]
            row = next((r for r in bins.values() if r["item_code"] == code and r["warehouse"] == warehouse), None)
            values = {
                "actual_qty": Decimal(qty),
                "reserved_qty": Decimal(reserved),
                "projected_qty": Decimal(qty) - Decimal(reserved),
            }
            if row is None:
                self._insert(
                    "Bin",
                    self._hash(),
                    {"item_code": code, "warehouse": warehouse, "ordered_qty": 0, "stock_uom": "Nos", **values},
                )
            else:
                row.update(values, modified=self._tick())

    def remove_item(self, code: str) -> None:
        """ERPNext does not delete an item that was ever used; it is disabled."""
        with self.lock:
            self.tables["Item"][code].update(disabled=1, modified=self._tick())

    def forbid(self, doctype: str) -> None:
        self.forbidden.add(doctype)

    def orders(self, order_ref: str | None = None) -> list[dict[str, Any]]:
        """The order documents (of every order doctype), oldest first; only those for `order_ref` if given."""
        with self.lock:
            docs = [d for dt in ORDER_DOCTYPES for d in self.tables[dt].values()]
            if order_ref is not None:
                docs = [d for d in docs if d.get(self.order_ref_field) == order_ref]
            return sorted(docs, key=lambda d: d["creation"])

    def order_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for doc in self.orders():
            ref = doc.get(self.order_ref_field)
            if ref:
                counts[ref] = counts.get(ref, 0) + 1
        return counts

    def order_total_minor(self, order_ref: str) -> int:
        docs = self.orders(order_ref)
        if not docs:
            raise KeyError(f"ERPNext has no order {order_ref}")
        return int(docs[0]["grand_total"].scaleb(self.currency.exponent))

    def comments(self, reference_name: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            rows = sorted(self.tables["Comment"].values(), key=lambda r: r["creation"])
            return [r for r in rows if reference_name is None or r["reference_name"] == reference_name]

    # -- storage --------------------------------------------------------------------------------------------
    def _tick(self) -> str:
        self._clock += 1
        return f"2026-11-21 12:{self._clock // 60 % 60:02d}:{self._clock % 60:02d}.{self._clock:06d}"

    def _hash(self) -> str:
        self._hashes += 1
        return f"{self._hashes * 2654435761 % 16**10:010x}"

    def _insert(self, doctype: str, name: str, values: dict[str, Any]) -> dict[str, Any]:
        stamp = self._tick()
        row = {
            "name": name,
            "owner": "api@tablebox.test",
            "creation": stamp,
            "modified": stamp,
            "modified_by": "api@tablebox.test",
            "docstatus": 0,
            "idx": 0,
            **values,
        }
        self.tables[doctype][name] = row
        return row

    def _fields_of(self, doctype: str) -> set[str]:
        if doctype in ORDER_DOCTYPES:
            return ORDER_FIELDS | ({self.order_ref_field} if self.custom_field else set())
        return SCHEMA[doctype]

    # -- HTTP -----------------------------------------------------------------------------------------------
    def handle(self, request: Request) -> Reply:
        if self._httpd is None:
            # FakeServer.go_down closes the listening socket but a kept-alive connection's handler thread
            # would go on serving: an ERP that is down answers nothing.
            raise _Dropped()
        with self.lock:
            if self.rate_limited > 0:
                self.rate_limited -= 1
                return error(429, "RateLimitExceededError", "Too Many Requests: try again later")
            auth = request.headers.get("Authorization")
            if auth is not None and auth != f"token {self.api_key}:{self.api_secret}":
                return error(401, "AuthenticationError", "")
            try:
                return self._route(request, guest=auth is None)
            except _Refused as refused:
                return refused.reply

    def _route(self, request: Request, *, guest: bool) -> Reply:
        parts = [unquote(p) for p in request.path.split("/") if p]
        if parts[:2] == ["api", "method"] and len(parts) == 3:
            if guest:
                raise _Refused(error(403, "PermissionError", "Not permitted"))
            if parts[2] == "frappe.client.cancel" and request.method in ("POST", "PUT"):
                return self._cancel(_body(request))
            raise _Refused(error(404, "DoesNotExistError", f"Method {parts[2]} not found"))
        if parts[:2] != ["api", "resource"] or len(parts) not in (3, 4):
            raise _Refused(error(404, "DoesNotExistError", "Page not found"))
        doctype = parts[2]
        if doctype not in self.tables:
            raise _Refused(error(404, "DoesNotExistError", f"DocType {doctype} not found"))
        if guest or doctype in self.forbidden:
            raise _Refused(error(403, "PermissionError", f"No permission for {doctype}"))
        if len(parts) == 3 and request.method == "GET":
            return self._list(doctype, request.query)
        if len(parts) == 3 and request.method == "POST":
            self.posts[doctype] = self.posts.get(doctype, 0) + 1
            if doctype in ORDER_DOCTYPES:
                return self._create_order(doctype, _body(request))
            if doctype == "Comment":
                return self._create_comment(_body(request))
            raise _Refused(error(403, "PermissionError", f"No permission for {doctype}"))
        if len(parts) == 4:
            row = self.tables[doctype].get(parts[3])
            if row is None:
                raise _Refused(error(404, "DoesNotExistError", f"{doctype} {parts[3]} not found"))
            if request.method == "GET":
                return Reply(200, {"data": jsonable(row)})
            if request.method == "PUT" and doctype in ORDER_DOCTYPES:
                return self._update(doctype, row, _body(request))
        raise _Refused(error(405, "MethodNotAllowed", "Method Not Allowed"))

    # -- lists ----------------------------------------------------------------------------------------------
    def _list(self, doctype: str, query: Mapping[str, list[str]]) -> Reply:
        arg = {k: v[0] for k, v in query.items() if v}
        fields = json.loads(arg["fields"]) if "fields" in arg else ["name"]
        filters = _filters(json.loads(arg.get("filters") or "[]"))
        known = self._fields_of(doctype)
        if fields != ["*"]:
            for field in fields:
                if field not in known:
                    raise _Refused(unknown_column(doctype, field, "field list"))
        for field, _op, _value in filters:
            if field not in known:
                raise _Refused(unknown_column(doctype, field, "where clause"))
        rows = [r for r in self.tables[doctype].values() if all(_match(r.get(f), op, v) for f, op, v in filters)]
        if (
            self.lookup_misses > 0
            and doctype in ORDER_DOCTYPES
            and any(f == self.order_ref_field for f, _, _ in filters)
        ):
            self.lookup_misses -= 1
            rows = []
        order_field, _, direction = (arg.get("order_by") or "modified desc").replace("`", "").partition(" ")
        order_field = order_field.rsplit(".", 1)[-1]
        if order_field not in known:
            raise _Refused(unknown_column(doctype, order_field, "order clause"))
        rows.sort(
            key=lambda r: (r.get(order_field) is None, r.get(order_field) or ""),
            reverse=direction.strip().lower() == "desc",
        )
        start = int(arg.get("limit_start") or 0)
        size = int(arg.get("limit_page_length") or arg.get("limit") or DEFAULT_PAGE)
        page = rows[start : start + size] if size else rows[start:]
        shown = [dict(r) if fields == ["*"] else {f: r.get(f) for f in fields} for r in page]
        return Reply(200, {"data": [jsonable(r) for r in shown]})

    # -- orders ---------------------------------------------------------------------------------------------
    def _create_order(self, doctype: str, body: Mapping[str, Any]) -> Reply:
        known = self._fields_of(doctype)
        if not body.get("customer"):
            raise _Refused(error(417, "MandatoryError", f"Error: Value missing for {doctype}: Customer"))
        if body["customer"] not in self.customers:
            raise _Refused(error(417, "LinkValidationError", f"Could not find Customer: {body['customer']}"))
        if doctype == "POS Invoice" and body.get("pos_profile") != self.pos_profile:
            missing = not body.get("pos_profile")
            raise _Refused(
                error(
                    417,
                    "MandatoryError" if missing else "LinkValidationError",
                    "Error: Value missing for POS Invoice: POS Profile"
                    if missing
                    else f"Could not find POS Profile: {body['pos_profile']}",
                )
            )
        lines = body.get("items") or []
        if not lines:
            raise _Refused(error(417, "MandatoryError", "Error: Data missing in table Items"))
        items = []
        for idx, line in enumerate(lines, start=1):
            code = line.get("item_code")
            item = self.tables["Item"].get(code)
            if item is None:
                if self.unknown_item_error == "LinkValidationError":
                    raise _Refused(error(417, "LinkValidationError", f"Could not find Row #{idx}: Item Code: {code}"))
                raise _Refused(error(404, "DoesNotExistError", f"Item {code} not found"))
            if item["disabled"]:
                raise _Refused(error(417, "ValidationError", f"Item {code} is disabled"))
            qty, rate = Decimal(str(line.get("qty") or 0)), Decimal(str(line.get("rate") or 0))
            if qty <= 0:
                raise _Refused(error(417, "ValidationError", f"Row #{idx}: Quantity must be greater than zero"))
            items.append(
                {k: v for k, v in line.items() if k in ITEM_ROW_FIELDS}
                | {"item_name": item["item_name"], "qty": qty, "rate": rate, "amount": qty * rate, "idx": idx}
            )
        ref = body.get(self.order_ref_field) if self.custom_field else None
        date = str(body.get("transaction_date") or body.get("posting_date") or "2026-11-21")
        prefix = f"{ORDER_DOCTYPES[doctype]}{date[:4]}-"
        if ref and self.unique and any(d.get(self.order_ref_field) == ref for d in self.tables[doctype].values()):
            would_be = f"{prefix}{self._series.get(prefix, 0) + 1:05d}"
            if self.duplicate_error == "DuplicateEntryError":
                raise _Refused(
                    error(
                        409,
                        "DuplicateEntryError",
                        f"{doctype} {ref} already exists",
                        f"('{doctype}', '{ref}', IntegrityError(1062, \"Duplicate entry '{ref}' for key 'PRIMARY'\"))",
                    )
                )
            raise _Refused(
                error(
                    417,
                    "UniqueValidationError",
                    "Tablebox Order Ref must be unique",
                    f"('{doctype}', '{would_be}', IntegrityError(1062, \"Duplicate entry '{ref}' for key"
                    f" '{self.order_ref_field}'\"))",
                )
            )
        self._series[prefix] = self._series.get(prefix, 0) + 1
        name = f"{prefix}{self._series[prefix]:05d}"
        total = sum((i["amount"] for i in items), Decimal(0))
        values = {k: v for k, v in body.items() if k in known and k not in COMMON_FIELDS | {"items"}}
        docstatus = int(body.get("docstatus") or 0)
        doc = self._insert(
            doctype,
            name,
            {
                **values,
                "naming_series": prefix,
                "customer_name": body["customer"],
                "title": body["customer"],
                "company": body.get("company") or self.company,
                "items": items,
                "total_qty": sum(i["qty"] for i in items),
                "total": total,
                "net_total": total,
                "grand_total": total,
                "status": "To Deliver and Bill" if docstatus == 1 else "Draft",
            },
        )
        doc["docstatus"] = docstatus
        return Reply(200, {"data": jsonable(doc)})

    def _update(self, doctype: str, row: dict[str, Any], body: Mapping[str, Any]) -> Reply:
        if row["docstatus"] == 2:
            raise _Refused(error(417, "ValidationError", "Cannot edit cancelled document"))
        changes = {k: v for k, v in body.items() if k in self._fields_of(doctype) and k not in COMMON_FIELDS}
        if row["docstatus"] == 1:
            for field in changes:
                if field not in ALLOW_ON_SUBMIT and changes[field] != row.get(field):
                    raise _Refused(
                        error(417, "UpdateAfterSubmitError", f"Not allowed to change {field} after submission")
                    )
        row.update(changes, modified=self._tick())
        return Reply(200, {"data": jsonable(row)})

    def _cancel(self, body: Mapping[str, Any]) -> Reply:
        doctype, name = str(body.get("doctype") or ""), str(body.get("name") or "")
        row = self.tables.get(doctype, {}).get(name)
        if row is None:
            raise _Refused(error(404, "DoesNotExistError", f"{doctype} {name} not found"))
        if row["docstatus"] == 0:
            raise _Refused(error(417, "DocstatusTransitionError", "Cannot change docstatus from 0 to 2"))
        if row["docstatus"] == 2:
            raise _Refused(error(417, "ValidationError", "Cannot edit cancelled document"))
        row.update(docstatus=2, status="Cancelled", modified=self._tick())
        return Reply(200, {"message": jsonable(row)})

    def _create_comment(self, body: Mapping[str, Any]) -> Reply:
        doctype, name = str(body.get("reference_doctype") or ""), str(body.get("reference_name") or "")
        if name not in self.tables.get(doctype, {}):
            raise _Refused(error(417, "LinkValidationError", f"Could not find Reference Name: {name}"))
        row = self._insert(
            "Comment",
            self._hash(),
            {
                "comment_type": body.get("comment_type") or "Comment",
                "reference_doctype": doctype,
                "reference_name": name,
                "content": str(body.get("content") or ""),
                "comment_email": "api@tablebox.test",
            },
        )
        return Reply(200, {"data": jsonable(row)})


class _Refused(Exception):
    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


def error(status: int, exc_type: str, message: str, detail: str | None = None) -> Reply:
    """An error answer as Frappe's report_error builds it (API v1): exc_type always, `exception` (the last
    traceback line) except for 404s, the traceback list in `exc`, and the messages shown to the user as
    `_server_messages`, a JSON list of JSON-encoded objects."""
    body: dict[str, Any] = {"exc_type": exc_type}
    if status != 404:
        line = f"frappe.exceptions.{exc_type}: {detail or message}".rstrip(": ")
        body["exception"] = line
        body["exc"] = json.dumps(
            [
                'Traceback (most recent call last):\n  File "apps/frappe/frappe/app.py",'
                f" line 114, in application\n{line}\n"
            ]
        )
    if message:
        body["_server_messages"] = json.dumps(
            [json.dumps({"message": message, "title": "Message", "indicator": "red", "raise_exception": 1})]
        )
    return Reply(status, body)


def unknown_column(doctype: str, field: str, clause: str) -> Reply:
    line = f"pymysql.err.OperationalError: (1054, \"Unknown column 'tab{doctype}.{field}' in '{clause}'\")"
    return Reply(
        500,
        {
            "exception": line,
            "exc_type": "OperationalError",
            "exc": json.dumps([f"Traceback (most recent call last):\n{line}\n"]),
        },
    )


def jsonable(value: Any) -> Any:
    """Frappe answers Float and Currency fields as JSON floats (38.0)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def _body(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(request.body or b"{}", parse_float=Decimal)
    except ValueError:
        raise _Refused(error(417, "ValidationError", "Invalid JSON body", traceback.format_exc(limit=0))) from None
    if not isinstance(data, dict):
        raise _Refused(error(417, "ValidationError", "The body must be a JSON object"))
    return data


def _filters(raw: Any) -> list[tuple[str, str, Any]]:
    if isinstance(raw, dict):
        return [(k, *(v if isinstance(v, list) else ["=", v])) for k, v in raw.items()]  # type: ignore[misc]
    out = []
    for entry in raw:
        entry = list(entry)
        if len(entry) == 4:
            entry = entry[1:]
        field, op, value = entry
        out.append((str(field), str(op).lower(), value))
    return out


def _match(actual: Any, op: str, value: Any) -> bool:
    if isinstance(actual, Decimal) and isinstance(value, (int, float, str)):
        value = Decimal(str(value))
    elif isinstance(actual, int) and isinstance(value, str) and value.lstrip("-").isdigit():
        value = int(value)
    if op == "=":
        return actual == value
    if op == "!=":
        return actual != value
    if op == "in":
        return actual in value
    if op == "not in":
        return actual not in value
    if op == "like":
        pattern = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in str(value))
        return actual is not None and re.fullmatch(pattern, str(actual), re.S | re.I) is not None
    if op == "is":
        return (actual not in (None, "")) == (value == "set")
    if actual is None:
        return False
    if op == ">":
        return actual > value
    if op == "<":
        return actual < value
    if op == ">=":
        return actual >= value
    if op == "<=":
        return actual <= value
    raise _Refused(error(417, "ValidationError", f"Unsupported operator: {op}"))
