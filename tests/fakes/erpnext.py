"""A fake ERPNext v15 (Frappe REST API, v1 paths) for the ERPNext adapter: a real HTTP server on 127.0.0.1 with
the FakeServer faults, answering with Frappe's status codes and error bodies.

It is not ERPNext: it keeps what the adapter touches, and each behaviour it reproduces names the upstream file it
follows (frappe/frappe and frappe/erpnext, read with the search tool's look-ups in 2026-12: the stored copies are
version-15-era where the index had them, some files only in an older or newer version; newer POS code also refuses
to submit a partly paid POS Invoice, which the adapter never does and the fake does not check).

- Auth (frappe/frappe frappe/auth.py validate_auth_via_api_keys): `Authorization: token KEY:SECRET`; a wrong key
  or secret is 401 AuthenticationError (empty message); no header at all is Guest: 403 PermissionError.
  `forbid(doctype)` makes the API user lack a role: 403 PermissionError "No permission for <doctype>".
- Roles (frappe/frappe frappe/core/doctype/comment/comment.json permissions): Comments are created and read only
  by System Manager and Website Manager; the API user has `roles` (least privilege by default), so writing a
  Comment is 403. `frappe.core.doctype.user.user.get_roles?uid=` answers the user's roles (frappe/frappe
  frappe/core/doctype/user/user.py get_roles); `frappe.auth.get_logged_user` the user; the versions from
  `frappe.utils.change_log.get_versions`; a doctype's fields (unique, no_copy) from
  `frappe.desk.form.load.getdoctype` (frappe/frappe frappe/desk/form/load.py), as the desk reads them.
- Errors (frappe/frappe frappe/utils/response.py report_error, is_traceback_allowed): exc_type always; the
  `exception` line and `exc` traceback only when `tracebacks` (System Settings allow_error_traceback) is on, and
  never for 404s; messages shown to people as `_server_messages`. A hardened site (`tracebacks=False`) answers a
  missing column as `{"exc_type": "OperationalError"}` and nothing else.
- Rate limit (frappe/frappe frappe/rate_limiter.py RateLimiter.respond/headers): `rate_limited = n`: the next n
  requests are 429 with the plain text "Too Many Requests" (not JSON) and Retry-After = the seconds left in the
  window (`retry_after`), plus the X-RateLimit-* headers.
- Lists: `GET /api/resource/<DocType>`: `{"data": [...]}`, `fields` (default ["name"], "*" = all), `filters`,
  `order_by` (default "modified desc"), `limit_start`, `limit_page_length` (default 20, 0 = all). An unknown field
  is what MariaDB makes of it: 500 OperationalError "(1054, "Unknown column ...")".
- Orders: `POST /api/resource/Sales Order | Sales Invoice | POS Invoice`, named by their naming series
  (SAL-ORD-2026-00001, ACC-SINV-2026-00001, ACC-PSINV-2026-00001), a client-given name ignored, unknown fields
  dropped, docstatus 1 in the body = submitted. A unique order-ref custom field refuses a second insert (417
  UniqueValidationError, frappe/frappe frappe/model/base_document.py show_unique_validation_message).
  An amendment (`amended_from`) is named `<original>-1`, `-2`... (frappe/frappe frappe/model/naming.py
  _get_amended_name), so the same amendment twice is 409 DuplicateEntryError on the name.
  Sales Order: `validate_po` (frappe/erpnext erpnext/selling/doctype/sales_order/sales_order.py) refuses a second
  open order of the same customer with the same po_no unless Selling Settings allow it (`allow_multiple_po`).
  POS Invoice (frappe/erpnext erpnext/accounts/doctype/pos_invoice/pos_invoice.py validate): is_pos must be set,
  `validate_mode_of_payment` refuses an invoice without payment rows (the profile's modes are not copied when
  validating: set_missing_values(for_validate=True)), `validate_payment_amount` refuses a negative amount on a
  sale; each row's mode needs an account for the company (frappe/erpnext
  erpnext/accounts/doctype/sales_invoice/sales_invoice.py get_bank_cash_account). Sales Invoice with is_pos:
  `validate_pos_paid_amount` on submit (no payment row while grand_total > 0), then
  `clear_unallocated_mode_of_payments` drops the zero rows. Submitting sets paid_amount, change_amount and
  outstanding_amount. A POS Invoice of stock items is refused on submit when the warehouse lacks them
  (validate_stock_availablility), unless `allow_negative_stock`.
- Changes: `PUT /api/resource/<DocType>/<name>` updates a draft (child tables replaced whole), a submitted one
  only in allow-on-submit fields (else 417 UpdateAfterSubmitError); `docstatus: 1` in a PUT submits the draft
  (frappe/frappe frappe/model/document.py check_docstatus_transition); a `modified` in the body that is not the
  stored one is 417 TimestampMismatchError (frappe/api/v1.py update_doc, document.py check_if_latest). `DELETE`
  removes a draft and keeps it as a Deleted Document; a submitted one is 417 "Submitted Record cannot be
  deleted" (frappe/frappe frappe/model/delete_doc.py).
  `POST /api/method/frappe.client.cancel`: 1 -> 2, else 417. Cancelling an order or invoice a submitted Payment
  Entry is allocated to is 417 LinkExistsError unless Accounts Settings unlink it
  (`unlink_payments`; frappe/erpnext erpnext/controllers/accounts_controller.py on_cancel,
  unlink_ref_doc_from_payment_entries).
- Payment Entry (frappe/erpnext erpnext/accounts/doctype/payment_entry/payment_entry.py): Receive or Pay,
  party Customer, the cash/bank account named (paid_to on a Receive, paid_from on a Pay: payment_entry.json
  mandatory fields; set_missing_values fills the party's side), a Mode of Payment with an account, an optional
  Unique custom field (`payment_ref_field`), a reference row only against a submitted document and never
  more than its outstanding amount (validate_allocated_amount; Sales Order: grand_total - advance_paid);
  submitting one moves the order's advance_paid or the invoice's outstanding_amount.
- `lookup_misses = n`: the next n lookups of an order (or a Payment Entry) by our ref see nothing yet, as when the
  ERP has not committed another request's insert (the window a unique field closes); `return_lookup_misses = n`
  the same for the next n lookups of an invoice's returns (filtered on return_against).
- Returns (credit notes: is_return, return_against a submitted invoice of the customer: frappe/erpnext
  erpnext/controllers/sales_and_purchase_return.py validate_return_against) carry negative quantities. Submitted
  with update_outstanding_for_self = 0, a return's credit goes against the invoice it returns
  (erpnext/accounts/doctype/sales_invoice/sales_invoice.py make_customer_gl_entry: against_voucher =
  return_against), so that invoice's outstanding_amount drops by the return's total and its status becomes
  "Credit Note Issued" (sales_invoice.py / pos_invoice.py set_status); with 1 (the field's default) the return is
  its own outstanding. `order_total_minor(ref)` is the invoice's net: its grand total less its submitted returns.
  An invoice a submitted return links to cannot be cancelled (417 LinkExistsError, frappe/frappe
  frappe/model/delete_doc.py check_if_doc_is_linked); `cancelled(ref)` is also true of an invoice its returns
  gave back whole.

What it does not do: taxes (grand_total is the lines' total; rounded_total as ERPNext rounds it), stock ledger
(Bins do not move), GL entries, POS opening/closing, Sales Invoice negative-stock refusals.

`order_counts()`, `order_total_minor()`, `payments()`, `cancelled()`, `add_item()`, `set_price()`, `set_stock()`,
`remove_item()` and `target_config()` are the helpers every fake ERP offers the sync tests.
"""

from __future__ import annotations

import json
import re
import secrets
import traceback
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo

from appliance.domain.money import Currency
from tests.fakes.server import FakeServer, Reply, Request, _Dropped

DEFAULT_PAGE = 20
ORDER_DOCTYPES = {"Sales Order": "SAL-ORD-", "Sales Invoice": "ACC-SINV-", "POS Invoice": "ACC-PSINV-"}
INVOICE_DOCTYPES = ("Sales Invoice", "POS Invoice")
DOCUMENTS = {"sales_order": "Sales Order", "sales_invoice": "Sales Invoice", "pos_invoice": "POS Invoice"}
# What a least-privilege API user for Tablebox holds (no System Manager, no Website Manager).
LEAST_ROLES = frozenset({"Sales User", "Accounts User", "Stock User"})
COMMENT_ROLES = frozenset({"System Manager", "Website Manager"})  # frappe/frappe .../comment/comment.json
# The box's methods -> the Mode of Payment names the adapter uses by default (the fake's site has them all).
DEFAULT_MODES = {"cash": "Cash", "card": "Credit Card", "wechat": "WeChat Pay", "alipay": "Alipay", "other": "Other"}
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
    "rounded_total",
    "disable_rounded_total",
    "status",
    "po_no",
    "transaction_date",
    "delivery_date",
    "order_type",
    "amended_from",
    "advance_paid",
    "taxes_and_charges",
}
INVOICE_FIELDS = (ORDER_FIELDS - {"po_no", "transaction_date", "delivery_date", "order_type", "advance_paid"}) | {
    "remarks",
    "posting_date",
    "posting_time",
    "set_posting_time",
    "is_pos",
    "pos_profile",
    "update_stock",
    "payments",
    "paid_amount",
    "change_amount",
    "outstanding_amount",
    "is_return",
    "return_against",
    "update_outstanding_for_self",
    "due_date",
}
ITEM_ROW_FIELDS = {"item_code", "item_name", "qty", "rate", "amount", "warehouse", "delivery_date", "uom"}
PAYMENT_ROW_FIELDS = {"mode_of_payment", "amount", "default", "account", "type"}  # Sales Invoice Payment
ALLOW_ON_SUBMIT = {"po_no", "remarks", "title", "delivery_date"}
PAYMENT_ENTRY_FIELDS = COMMON_FIELDS | {
    "payment_type",
    "party_type",
    "party",
    "company",
    "mode_of_payment",
    "paid_amount",
    "received_amount",
    "paid_from",
    "paid_to",
    "reference_no",
    "reference_date",
    "posting_date",
    "remarks",
    "references",
    "unallocated_amount",
    "status",
}
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
    "Payment Entry": PAYMENT_ENTRY_FIELDS,
    "Mode of Payment": COMMON_FIELDS | {"mode_of_payment", "type", "enabled", "accounts"},
    "POS Profile": COMMON_FIELDS
    | {"company", "customer", "warehouse", "selling_price_list", "currency", "payments", "update_stock", "disabled"},
    "Warehouse": COMMON_FIELDS | {"warehouse_name", "company", "is_group", "disabled"},
    "Customer": COMMON_FIELDS | {"customer_name", "customer_group", "disabled"},
    "Price List": COMMON_FIELDS | {"price_list_name", "currency", "selling", "buying", "enabled"},
    "Deleted Document": COMMON_FIELDS | {"deleted_doctype", "deleted_name", "data", "restored"},
    "Sales Taxes and Charges Template": COMMON_FIELDS | {"title", "company", "is_default", "taxes", "disabled"},
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
        document: str = "sales_order",
        doctype: str | None = None,
        order_ref_field: str = "tablebox_order_ref",
        language: str = "zh",
        tracebacks: bool = True,
        roles: frozenset[str] = LEAST_ROLES,
        allow_multiple_po: bool = False,
        allow_negative_stock: bool = False,
        unlink_payments: bool = True,
        prices_include_tax: bool = True,
        payment_ref_field: str = "",
        time_zone: str = "Asia/Shanghai",
    ) -> None:
        super().__init__()
        # System Settings' time zone: frappe.utils.now_datetime() is the server's clock converted to it
        # (convert_utc_to_system_timezone), whatever the machine's own zone; a restaurant's ERPNext has its own.
        self.time_zone = ZoneInfo(time_zone)
        assert duplicate_error in ("UniqueValidationError", "DuplicateEntryError")
        assert unknown_item_error in ("DoesNotExistError", "LinkValidationError")
        if doctype is not None:
            document = {v: k for k, v in DOCUMENTS.items()}[doctype]
        assert document in DOCUMENTS
        self.unique = unique
        self.duplicate_error = duplicate_error
        self.unknown_item_error = unknown_item_error
        self.custom_field = custom_field
        self.currency = Currency.of(currency)
        self.price_list = price_list
        self.warehouse = warehouse
        self.customer = customer
        self.company = company
        self.document = document
        self.doctype = DOCUMENTS[document]
        self.order_ref_field = order_ref_field
        self.language = language
        self.tracebacks = tracebacks
        self.roles = set(roles)
        self.allow_multiple_po = allow_multiple_po
        self.allow_negative_stock = allow_negative_stock  # Stock Settings
        self.unlink_payments = unlink_payments
        self.payment_ref_field = payment_ref_field  # a Unique custom field on Payment Entry, when the site has one
        self.pos_profile = "Main POS"
        self.user = "tablebox-api@example.com"
        self.api_key = "k" + secrets.token_hex(7)
        self.api_secret = secrets.token_hex(12)
        self.forbidden: set[str] = set()
        self.rate_limited = 0
        self.retry_after = 3
        self.lookup_misses = 0
        self.return_lookup_misses = 0
        self.posts: dict[str, int] = {}  # doctype -> POSTs received (answered or not)
        self.tables: dict[str, dict[str, dict[str, Any]]] = {d: {} for d in [*SCHEMA, *ORDER_DOCTYPES]}
        self._series: dict[str, int] = {}
        self._clock = 0
        self._hashes = 0
        self._insert("Customer", customer, {"customer_name": customer, "customer_group": "All Customer Groups"})
        self._insert("Warehouse", warehouse, {"warehouse_name": warehouse.split(" - ")[0], "company": company})
        self._insert(
            "Price List", price_list, {"price_list_name": price_list, "currency": currency, "selling": 1, "enabled": 1}
        )
        for mode in DEFAULT_MODES.values():
            self.add_mode_of_payment(mode)
        self._insert(
            "POS Profile",
            self.pos_profile,
            {
                "company": company,
                "customer": customer,
                "warehouse": warehouse,
                "selling_price_list": price_list,
                "currency": currency,
                "update_stock": 1,
                "disabled": 0,
                "payments": [
                    {"mode_of_payment": mode, "default": int(mode == "Cash"), "idx": i}
                    for i, mode in enumerate(DEFAULT_MODES.values(), start=1)
                ],
            },
        )
        self._insert(
            "Sales Taxes and Charges Template",
            "VAT 6% - TB",
            {
                "title": "VAT 6%",
                "company": company,
                "is_default": 1,
                "disabled": 0,
                "taxes": [
                    {"charge_type": "On Net Total", "rate": 6, "included_in_print_rate": int(prices_include_tax)}
                ],
            },
        )

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
            "document": self.document,
            "order_ref_field": self.order_ref_field,
            "default_language": self.language,
            # every document can name it (pos_invoice must): a test may switch `document` in the config alone
            "pos_profile": self.pos_profile,
        }
        return config

    def add_mode_of_payment(self, mode: str, *, account: bool = True, kind: str = "Cash") -> None:
        accounts = [{"company": self.company, "default_account": f"{mode} - TB"}] if account else []
        with self.lock:
            self._insert(
                "Mode of Payment", mode, {"mode_of_payment": mode, "type": kind, "enabled": 1, "accounts": accounts}
            )

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
        """The order documents carrying our ref (of every order doctype), oldest first; only those for
        `order_ref` if given. Amendments carry no ref (the field is unique): see `current()`."""
        with self.lock:
            docs = [d for dt in ORDER_DOCTYPES for d in self.tables[dt].values()]
            if order_ref is not None:
                docs = [d for d in docs if d.get(self.order_ref_field) == order_ref]
            return sorted(docs, key=lambda d: d["creation"])

    def current(self, order_ref: str) -> dict[str, Any] | None:
        """The order's document as it stands: the newest amendment of the one holding the ref (None: never
        there, or a draft deleted)."""
        with self.lock:
            docs = self.orders(order_ref)
            if not docs:
                return None
            doc = docs[0]
            while True:
                newer = [d for d in self.tables[doc["doctype"]].values() if d.get("amended_from") == doc["name"]]
                if not newer:
                    return doc
                doc = newer[0]

    def order_counts(self) -> dict[str, int]:
        """Our order reference -> how many documents ERPNext holds or held for it: a draft deleted (a cancelled
        order in the invoice documents) is still in ERPNext's Deleted Documents, and counts."""
        counts: dict[str, int] = {}
        with self.lock:
            deleted = [r["data"] for r in self.tables["Deleted Document"].values()]
        for doc in [*self.orders(), *deleted]:
            ref = doc.get(self.order_ref_field)
            if ref and not doc.get("is_return"):  # a credit note is not an order (it carries its own ref)
                counts[ref] = counts.get(ref, 0) + 1
        return counts

    def order_total_minor(self, order_ref: str) -> int:
        """What the order is worth in ERPNext now: its current document's grand total, less (for an invoice) the
        submitted returns against it (a return's grand_total is negative), as ERPNext nets them: the returned
        quantities (frappe/erpnext erpnext/controllers/sales_and_purchase_return.py get_already_returned_items
        counts submitted returns only) and the invoice's outstanding (sales_invoice.py make_customer_gl_entry)."""
        with self.lock:
            doc = self.current(order_ref)
            if doc is None:
                raise KeyError(f"ERPNext has no order {order_ref}")
            total = doc["grand_total"] + sum(
                (r["grand_total"] for r in self.returns_of(doc["doctype"], doc["name"]) if r["docstatus"] == 1),
                Decimal(0),
            )
            return int(total.scaleb(self.currency.exponent))

    def returns_of(self, doctype: str, name: str) -> list[dict[str, Any]]:
        """The returns (credit notes) against invoice `name`, oldest first, whatever their docstatus."""
        with self.lock:
            rows = [r for r in self.tables[doctype].values() if r.get("is_return") and r.get("return_against") == name]
            return sorted(rows, key=lambda r: r["creation"])

    def cancelled(self, order_ref: str) -> bool:
        """The order is cancelled in ERPNext: its current document cancelled (docstatus 2), the draft deleted, or a
        paid invoice whose submitted returns gave all of it back (status Credit Note Issued, nothing left)."""
        with self.lock:
            doc = self.current(order_ref)
            if doc is None or doc["docstatus"] == 2:
                return True
            returns = [r for r in self.returns_of(doc["doctype"], doc["name"]) if r["docstatus"] == 1]
            left: dict[str, Decimal] = {}
            for row in [doc, *returns]:
                for item in row["items"]:
                    left[item["item_code"]] = left.get(item["item_code"], Decimal(0)) + item["qty"]
            return bool(returns) and all(qty <= 0 for qty in left.values())

    def payments(self) -> dict[str, list[tuple[str, str, int]]]:
        """payment_ref -> [(kind, method, amount_minor)]: what ERPNext holds for each of the box's payments and
        refunds (documents not cancelled), one entry per kind and method with the amounts of every document
        booked for that ref summed: Payment Entries (reference_no = the ref; "refund" when it pays the customer)
        and the parts of a payment booked in invoices' own payment rows. A payment booked twice shows as one
        entry of twice the amount."""
        methods = {mode: method for method, mode in DEFAULT_MODES.items()}
        exp = self.currency.exponent
        booked: dict[tuple[str, str, str], int] = {}
        with self.lock:
            for pe in sorted(self.tables["Payment Entry"].values(), key=lambda r: r["creation"]):
                if pe["docstatus"] != 1 or not pe.get("reference_no"):
                    continue
                key = (
                    pe["reference_no"],
                    "refund" if pe["payment_type"] == "Pay" else "payment",
                    methods.get(pe["mode_of_payment"], pe["mode_of_payment"]),
                )
                booked[key] = booked.get(key, 0) + int(pe["paid_amount"].scaleb(exp))
            for doctype in INVOICE_DOCTYPES:
                for inv in sorted(self.tables[doctype].values(), key=lambda r: r["creation"]):
                    if inv["docstatus"] == 2:
                        continue
                    for ref, amount, mode in MARK.findall(str(inv.get("remarks") or "")):
                        key = (ref, "payment", methods.get(mode, mode))
                        booked[key] = booked.get(key, 0) + int(Decimal(amount).scaleb(exp))
        out: dict[str, list[tuple[str, str, int]]] = {}
        for (ref, kind, method), amount in booked.items():
            out.setdefault(ref, []).append((kind, method, amount))
        return out

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
            "doctype": doctype,
            "owner": self.user,
            "creation": stamp,
            "modified": stamp,
            "modified_by": self.user,
            "docstatus": 0,
            "idx": 0,
            **values,
        }
        self.tables[doctype][name] = row
        return row

    def _next_name(self, prefix: str) -> str:
        self._series[prefix] = self._series.get(prefix, 0) + 1
        return f"{prefix}{self._series[prefix]:05d}"

    def _fields_of(self, doctype: str) -> set[str]:
        if doctype == "Payment Entry" and self.payment_ref_field:
            return PAYMENT_ENTRY_FIELDS | {self.payment_ref_field}
        if doctype in ORDER_DOCTYPES:
            base = ORDER_FIELDS if doctype == "Sales Order" else INVOICE_FIELDS
            return base | ({self.order_ref_field} if self.custom_field else set())
        return SCHEMA[doctype]

    def error(self, status: int, exc_type: str, message: str, detail: str | None = None) -> Reply:
        return error(status, exc_type, message, detail, tracebacks=self.tracebacks)

    def refuse(self, status: int, exc_type: str, message: str, detail: str | None = None) -> _Refused:
        return _Refused(self.error(status, exc_type, message, detail))

    # -- HTTP -----------------------------------------------------------------------------------------------
    def handle(self, request: Request) -> Reply:
        if self._httpd is None:
            # FakeServer.go_down closes the listening socket but a kept-alive connection's handler thread
            # would go on serving: an ERP that is down answers nothing.
            raise _Dropped()
        with self.lock:
            if self.rate_limited > 0:
                self.rate_limited -= 1
                # frappe/frappe frappe/rate_limiter.py: RateLimiter.respond() is a bare werkzeug Response (plain
                # text), headers() adds Retry-After (the seconds left in the window) when it rejected.
                return Reply(
                    429,
                    b"Too Many Requests",
                    {
                        "Content-Type": "text/plain; charset=utf-8",
                        "Retry-After": str(self.retry_after),
                        "X-RateLimit-Reset": str(self.retry_after),
                        "X-RateLimit-Limit": "1000000",
                        "X-RateLimit-Remaining": "0",
                    },
                )
            auth = request.headers.get("Authorization")
            if auth is not None and auth != f"token {self.api_key}:{self.api_secret}":
                return self.error(401, "AuthenticationError", "")
            try:
                return self._route(request, guest=auth is None)
            except _Refused as refused:
                return refused.reply

    def _route(self, request: Request, *, guest: bool) -> Reply:
        parts = [unquote(p) for p in request.path.split("/") if p]
        if parts[:2] == ["api", "method"] and len(parts) == 3:
            if parts[2] == "ping":  # frappe/frappe frappe/handler.py ping: whitelisted for guests
                return Reply(200, {"message": "pong"})
            if guest:
                raise self.refuse(403, "PermissionError", "Not permitted")
            return self._method(parts[2], request)
        if parts[:2] != ["api", "resource"] or len(parts) not in (3, 4):
            raise self.refuse(404, "DoesNotExistError", "Page not found")
        doctype = parts[2]
        if doctype not in self.tables:
            raise self.refuse(404, "DoesNotExistError", f"DocType {doctype} not found")
        if guest or doctype in self.forbidden or (doctype == "Comment" and not self.roles & COMMENT_ROLES):
            raise self.refuse(403, "PermissionError", f"No permission for {doctype}")
        if len(parts) == 3 and request.method == "GET":
            return self._list(doctype, request.query)
        if len(parts) == 3 and request.method == "POST":
            self.posts[doctype] = self.posts.get(doctype, 0) + 1
            if doctype in ORDER_DOCTYPES:
                return self._create_order(doctype, _body(request))
            if doctype == "Payment Entry":
                return self._create_payment_entry(_body(request))
            if doctype == "Comment":
                return self._create_comment(_body(request))
            raise self.refuse(403, "PermissionError", f"No permission for {doctype}")
        if len(parts) == 4:
            row = self.tables[doctype].get(parts[3])
            if row is None:
                raise self.refuse(404, "DoesNotExistError", f"{doctype} {parts[3]} not found")
            if request.method == "GET":
                return Reply(200, {"data": jsonable(row)})
            if request.method == "PUT" and doctype in ORDER_DOCTYPES:
                return self._update(doctype, row, _body(request))
            if request.method == "DELETE" and doctype in ORDER_DOCTYPES:
                return self._delete(doctype, row)
        raise self.refuse(405, "MethodNotAllowed", "Method Not Allowed")

    def _method(self, method: str, request: Request) -> Reply:
        args = {k: v[0] for k, v in request.query.items() if v}
        if method == "frappe.client.cancel" and request.method in ("POST", "PUT"):
            return self._cancel(_body(request))
        if method == "frappe.auth.get_logged_user":
            return Reply(200, {"message": self.user})
        if method == "frappe.core.doctype.user.user.get_roles":
            if args.get("uid", self.user) != self.user:
                raise self.refuse(403, "PermissionError", "Not permitted")
            return Reply(200, {"message": sorted(self.roles | {"All", "Guest", "Desk User"})})
        if method == "frappe.utils.change_log.get_versions":
            return Reply(
                200,
                {
                    "message": {
                        "frappe": {"title": "Frappe Framework", "version": "15.51.0", "branch": "version-15"},
                        "erpnext": {"title": "ERPNext", "version": "15.49.2", "branch": "version-15"},
                    }
                },
            )
        if method == "frappe.desk.form.load.getdoctype":
            doctype = args.get("doctype", "")
            if doctype not in ORDER_DOCTYPES and doctype not in SCHEMA:
                raise self.refuse(404, "DoesNotExistError", f"DocType {doctype} not found")
            if doctype in self.forbidden:
                raise self.refuse(403, "PermissionError", f"No permission for {doctype}")
            fields = [
                {"fieldname": f, "fieldtype": "Data", "unique": 0, "no_copy": 0}
                for f in sorted(
                    self._fields_of(doctype) - COMMON_FIELDS - {self.order_ref_field, self.payment_ref_field}
                )
            ]
            if doctype == "Payment Entry" and self.payment_ref_field:
                fields.append({"fieldname": self.payment_ref_field, "fieldtype": "Data", "unique": 1, "no_copy": 1})
            if doctype in ORDER_DOCTYPES and self.custom_field:
                fields.append(
                    {
                        "fieldname": self.order_ref_field,
                        "fieldtype": "Data",
                        "unique": int(self.unique),
                        "no_copy": 1,
                        "is_custom_field": 1,
                    }
                )
            # frappe/frappe frappe/desk/form/load.py getdoctype: the metas go out as frappe.response["docs"].
            return Reply(200, {"docs": [{"name": doctype, "doctype": "DocType", "fields": fields}]})
        raise self.refuse(404, "DoesNotExistError", f"Method {method} not found")

    # -- lists ----------------------------------------------------------------------------------------------
    def _list(self, doctype: str, query: Mapping[str, list[str]]) -> Reply:
        arg = {k: v[0] for k, v in query.items() if v}
        fields = json.loads(arg["fields"]) if "fields" in arg else ["name"]
        filters = _filters(json.loads(arg.get("filters") or "[]"))
        known = self._fields_of(doctype)
        if fields != ["*"]:
            for field in fields:
                if field not in known:
                    raise _Refused(self.unknown_column(doctype, field, "field list"))
        for field, _op, _value in filters:
            if field not in known:
                raise _Refused(self.unknown_column(doctype, field, "where clause"))
        rows = [r for r in self.tables[doctype].values() if all(_match(r.get(f), op, v) for f, op, v in filters)]
        looked_up_by = {self.order_ref_field} if doctype in ORDER_DOCTYPES else set()
        if doctype == "Payment Entry":
            looked_up_by = {"reference_no", self.payment_ref_field}
        if self.lookup_misses > 0 and any(f in looked_up_by for f, _, _ in filters):
            self.lookup_misses -= 1
            rows = []
        if self.return_lookup_misses > 0 and any(f == "return_against" for f, _, _ in filters):
            self.return_lookup_misses -= 1
            rows = []
        order_field, _, direction = (arg.get("order_by") or "modified desc").replace("`", "").partition(" ")
        order_field = order_field.rsplit(".", 1)[-1]
        if order_field not in known:
            raise _Refused(self.unknown_column(doctype, order_field, "order clause"))
        rows.sort(
            key=lambda r: (r.get(order_field) is None, r.get(order_field) or ""),
            reverse=direction.strip().lower() == "desc",
        )
        start = int(arg.get("limit_start") or 0)
        size = int(arg.get("limit_page_length") or arg.get("limit") or DEFAULT_PAGE)
        page = rows[start : start + size] if size else rows[start:]
        shown = [dict(r) if fields == ["*"] else {f: r.get(f) for f in fields} for r in page]
        return Reply(200, {"data": [jsonable(r) for r in shown]})

    def unknown_column(self, doctype: str, field: str, clause: str) -> Reply:
        line = f"pymysql.err.OperationalError: (1054, \"Unknown column 'tab{doctype}.{field}' in '{clause}'\")"
        body: dict[str, Any] = {"exc_type": "OperationalError"}
        if self.tracebacks:
            body |= {"exception": line, "exc": json.dumps([f"Traceback (most recent call last):\n{line}\n"])}
        return Reply(500, body)

    # -- orders ---------------------------------------------------------------------------------------------
    def _create_order(self, doctype: str, body: Mapping[str, Any]) -> Reply:
        known = self._fields_of(doctype)
        if not body.get("customer"):
            raise self.refuse(417, "MandatoryError", f"Error: Value missing for {doctype}: Customer")
        if body["customer"] not in self.tables["Customer"]:
            raise self.refuse(417, "LinkValidationError", f"Could not find Customer: {body['customer']}")
        is_return = bool(int(body.get("is_return") or 0))
        if doctype == "POS Invoice":
            # frappe/erpnext erpnext/accounts/doctype/pos_invoice/pos_invoice.py POSInvoice.validate
            if not int(body.get("is_pos") or 0):
                raise self.refuse(417, "ValidationError", "POS Invoice should have Include Payment field checked.")
            if body.get("pos_profile") not in self.tables["POS Profile"]:
                missing = not body.get("pos_profile")
                raise self.refuse(
                    417,
                    "MandatoryError" if missing else "LinkValidationError",
                    "Error: Value missing for POS Invoice: POS Profile"
                    if missing
                    else f"Could not find POS Profile: {body['pos_profile']}",
                )
        items = self._items(body.get("items") or [], is_return)
        payments = self._payment_rows(doctype, body, is_return) if doctype in INVOICE_DOCTYPES else []
        if doctype == "POS Invoice" and not payments:
            # validate_mode_of_payment; set_missing_values(for_validate=True) does not copy the profile's modes
            raise self.refuse(417, "ValidationError", "At least one mode of payment is required for POS invoice.")
        ref = body.get(self.order_ref_field) if self.custom_field else None
        date = str(body.get("transaction_date") or body.get("posting_date") or "2026-11-21")
        prefix = f"{ORDER_DOCTYPES[doctype]}{date[:4]}-"
        amended_from = str(body.get("amended_from") or "")
        if amended_from:
            # frappe/frappe frappe/model/naming.py _get_amended_name: "<original>-1", or the next number
            # for an amendment of an amendment; the same name twice is a DuplicateEntryError.
            original = self.tables[doctype].get(amended_from)
            if original is None:
                raise self.refuse(417, "LinkValidationError", f"Could not find Amended From: {amended_from}")
            if original.get("amended_from"):
                stem, _, number = amended_from.rpartition("-")
                name = f"{stem}-{int(number) + 1}"
            else:
                name = f"{amended_from}-1"
            if name in self.tables[doctype]:
                raise self.refuse(
                    409,
                    "DuplicateEntryError",
                    f"{doctype} {name} already exists",
                    f"('{doctype}', '{name}', IntegrityError(1062, \"Duplicate entry '{name}' for key 'PRIMARY'\"))",
                )
        elif ref and self.unique and any(d.get(self.order_ref_field) == ref for d in self.tables[doctype].values()):
            would_be = f"{prefix}{self._series.get(prefix, 0) + 1:05d}"
            if self.duplicate_error == "DuplicateEntryError":
                raise self.refuse(
                    409,
                    "DuplicateEntryError",
                    f"{doctype} {ref} already exists",
                    f"('{doctype}', '{ref}', IntegrityError(1062, \"Duplicate entry '{ref}' for key 'PRIMARY'\"))",
                )
            raise self.refuse(
                417,
                "UniqueValidationError",
                "Tablebox Order Ref must be unique",
                f"('{doctype}', '{would_be}', IntegrityError(1062, \"Duplicate entry '{ref}' for key"
                f" '{self.order_ref_field}'\"))",
            )
        else:
            name = ""
        if (
            ref
            and self.unique
            and amended_from
            and any(d.get(self.order_ref_field) == ref for d in self.tables[doctype].values())
        ):
            raise self.refuse(417, "UniqueValidationError", "Tablebox Order Ref must be unique")
        if doctype == "Sales Order":
            self._validate_po(body, name)
        values = {k: v for k, v in body.items() if k in known and k not in COMMON_FIELDS | {"items", "payments"}}
        if doctype in INVOICE_DOCTYPES:
            # frappe/erpnext erpnext/utilities/transaction_base.py validate_posting_time: without set_posting_time
            # the document is posted now; with it, at the date given and (unless given) the time of saving.
            now = datetime.now(self.time_zone)  # frappe.utils.now_datetime(): in the system's time zone
            if not int(body.get("set_posting_time") or 0):
                values.update(posting_date=now.date().isoformat(), posting_time=now.strftime("%H:%M:%S"))
            values.setdefault("posting_date", now.date().isoformat())
            values.setdefault("posting_time", now.strftime("%H:%M:%S"))
        if is_return:
            against = self.tables[doctype].get(str(body.get("return_against") or ""))
            if against is None or against["docstatus"] != 1 or against["customer"] != body["customer"]:
                # frappe/erpnext erpnext/controllers/sales_and_purchase_return.py validate_return_against
                raise self.refuse(417, "ValidationError", f"Invalid Return Against: {body.get('return_against')}")
            posted = f"{values['posting_date']} {values['posting_time']}"
            original = f"{against.get('posting_date')} {against.get('posting_time') or '00:00:00'}"
            if posted < original:
                # validate_return_against: "Posting timestamp must be after {0}"
                raise self.refuse(417, "ValidationError", f"Posting timestamp must be after {original}")
        total = sum((i["amount"] for i in items), Decimal(0))
        name = name or self._next_name(prefix)
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
                "status": "Draft",
            },
        )
        self._set_totals(doc, total)
        if doctype == "Sales Order":
            doc["advance_paid"] = Decimal(0)
        else:
            doc.update(payments=payments, paid_amount=Decimal(0), change_amount=Decimal(0))
            doc["outstanding_amount"] = doc["rounded_total"] or total
        if int(body.get("docstatus") or 0) == 1:
            try:
                self._submit(doctype, doc)
            except _Refused:
                del self.tables[doctype][name]
                raise
        return Reply(200, {"data": jsonable(doc)})

    def _validate_po(self, body: Mapping[str, Any], name: str) -> None:
        """frappe/erpnext erpnext/selling/doctype/sales_order/sales_order.py SalesOrder.validate_po"""
        po_no = body.get("po_no")
        if not po_no or self.allow_multiple_po:
            return
        clash = [
            d["name"]
            for d in self.tables["Sales Order"].values()
            if d.get("po_no") == po_no
            and d["name"] != name
            and d["docstatus"] < 2
            and d["customer"] == body["customer"]
        ]
        if clash:
            raise self.refuse(
                417,
                "ValidationError",
                f"Sales Order {clash[0]} already exists against Customer's Purchase Order {po_no}. To allow multiple"
                " Sales Orders, Enable 'Allow Multiple Sales Orders Against a Customer's Purchase Order' in Selling"
                " Settings",
            )

    def _items(self, lines: list[Any], is_return: bool) -> list[dict[str, Any]]:
        if not lines:
            raise self.refuse(417, "MandatoryError", "Error: Data missing in table Items")
        items = []
        for idx, line in enumerate(lines, start=1):
            code = line.get("item_code")
            item = self.tables["Item"].get(code)
            if item is None:
                if self.unknown_item_error == "LinkValidationError":
                    raise self.refuse(417, "LinkValidationError", f"Could not find Row #{idx}: Item Code: {code}")
                raise self.refuse(404, "DoesNotExistError", f"Item {code} not found")
            if item["disabled"]:
                raise self.refuse(417, "ValidationError", f"Item {code} is disabled")
            qty, rate = Decimal(str(line.get("qty") or 0)), Decimal(str(line.get("rate") or 0))
            if is_return and qty > 0:
                # frappe/erpnext erpnext/accounts/doctype/pos_invoice/pos_invoice.py validate_return_items_qty
                raise self.refuse(
                    417, "ValidationError", f"Row #{idx}: You cannot add postive quantities in a return invoice."
                )
            if not is_return and qty <= 0:
                raise self.refuse(417, "ValidationError", f"Row #{idx}: Quantity must be greater than zero")
            items.append(
                {k: v for k, v in line.items() if k in ITEM_ROW_FIELDS}
                | {"item_name": item["item_name"], "qty": qty, "rate": rate, "amount": qty * rate, "idx": idx}
            )
        return items

    def _payment_rows(self, doctype: str, body: Mapping[str, Any], is_return: bool) -> list[dict[str, Any]]:
        rows = []
        for idx, row in enumerate(body.get("payments") or [], start=1):
            mode = str(row.get("mode_of_payment") or "")
            amount = Decimal(str(row.get("amount") or 0))
            self._mode_account(mode)
            # frappe/erpnext erpnext/accounts/doctype/pos_invoice/pos_invoice.py validate_payment_amount
            if doctype == "POS Invoice" and not is_return and amount < 0:
                raise self.refuse(417, "ValidationError", f"Row #{idx} (Payment Table): Amount must be positive")
            if doctype == "POS Invoice" and is_return and amount > 0:
                raise self.refuse(417, "ValidationError", f"Row #{idx} (Payment Table): Amount must be negative")
            rows.append({"mode_of_payment": mode, "amount": amount, "idx": idx, "account": f"{mode} - TB"})
        return rows

    def _mode_account(self, mode: str) -> None:
        """frappe/erpnext erpnext/accounts/doctype/sales_invoice/sales_invoice.py get_bank_cash_account"""
        found = self.tables["Mode of Payment"].get(mode)
        if found is None:
            raise self.refuse(417, "LinkValidationError", f"Could not find Mode of Payment: {mode}")
        if not any(a.get("company") == self.company for a in found["accounts"]):
            raise self.refuse(
                417, "ValidationError", f"Please set default Cash or Bank account in Mode of Payment {mode}"
            )

    def _set_totals(self, doc: dict[str, Any], total: Decimal) -> None:
        """grand_total (no taxes here) and rounded_total: frappe/frappe frappe/utils/data.py
        round_based_on_smallest_currency_fraction rounds to a whole unit when the currency sets no smallest
        fraction (the fake's currencies set none); 0 with disable_rounded_total (erpnext
        erpnext/controllers/taxes_and_totals.py calculate_totals / set_rounded_total)."""
        rounded = Decimal(0) if int(doc.get("disable_rounded_total") or 0) else total.quantize(Decimal(1))
        doc.update(total=total, net_total=total, grand_total=total, rounded_total=rounded)

    def _stock_available(self, doc: dict[str, Any]) -> None:
        """frappe/erpnext erpnext/accounts/doctype/pos_invoice/pos_invoice.py validate_stock_availablility (on
        submit; a draft only with the profile's validate_stock_on_save): a stock item needs what the warehouse's Bin
        holds less what submitted, unconsolidated POS Invoices took (get_pos_reserved_qty), unless negative stock is
        allowed."""
        if doc.get("is_return") or self.allow_negative_stock:
            return
        profile = self.tables["POS Profile"].get(str(doc.get("pos_profile") or ""), {})
        for line in doc["items"]:
            item = self.tables["Item"].get(line["item_code"], {})
            if not item.get("is_stock_item"):
                continue
            warehouse = line.get("warehouse") or profile.get("warehouse") or self.warehouse
            actual = sum(
                (
                    b["actual_qty"]
                    for b in self.tables["Bin"].values()
                    if b["item_code"] == item["item_code"] and b["warehouse"] == warehouse
                ),
                Decimal(0),
            )
            taken = sum(
                (
                    i["qty"]
                    for other in self.tables["POS Invoice"].values()
                    if other["docstatus"] == 1 and other["name"] != doc["name"]
                    for i in other["items"]
                    if i["item_code"] == item["item_code"]
                ),
                Decimal(0),
            )
            available = actual - taken
            if available <= 0:
                raise self.refuse(
                    417,
                    "ValidationError",
                    f"Row #{line['idx']}: Item Code: {item['item_code']} is not available under warehouse {warehouse}.",
                )
            if available < line["qty"]:
                raise self.refuse(
                    417,
                    "ValidationError",
                    f"Row #{line['idx']}: Stock quantity not enough for Item Code: {item['item_code']} under"
                    f" warehouse {warehouse}. Available quantity {available}.",
                )

    def _submit(self, doctype: str, doc: dict[str, Any]) -> None:
        if doctype == "POS Invoice":
            self._stock_available(doc)
        if doctype in INVOICE_DOCTYPES:
            total = doc["rounded_total"] or doc["grand_total"]
            if int(doc.get("is_pos") or 0):
                # frappe/erpnext .../sales_invoice/sales_invoice.py on_submit: validate_pos_paid_amount, then
                # clear_unallocated_mode_of_payments drops the rows of amount 0.
                if not doc["payments"] and total > 0:
                    raise self.refuse(
                        417, "ValidationError", "At least one mode of payment is required for POS invoice."
                    )
                doc["payments"] = [p for p in doc["payments"] if p["amount"]]
            paid = sum((p["amount"] for p in doc["payments"]), Decimal(0))
            change = max(Decimal(0), paid - total) if not doc.get("is_return") else Decimal(0)
            doc.update(paid_amount=paid, change_amount=change, outstanding_amount=total - paid + change)
            doc["status"] = "Return" if doc.get("is_return") else ("Paid" if total - paid + change <= 0 else "Unpaid")
            against = self.tables[doctype].get(str(doc.get("return_against") or "")) if doc.get("is_return") else None
            if against is not None and not int(doc.get("update_outstanding_for_self", 1) or 0):
                # frappe/erpnext erpnext/accounts/doctype/sales_invoice/sales_invoice.py make_customer_gl_entry: the
                # return's receivable entry is against_voucher = return_against, so the payment ledger moves that
                # invoice's outstanding (erpnext/accounts/utils.py update_voucher_outstanding), not the return's;
                # set_status then says "Credit Note Issued" (a submitted return against it, nothing outstanding).
                against["outstanding_amount"] += doc["outstanding_amount"]
                doc["outstanding_amount"] = Decimal(0)
                if against["outstanding_amount"] <= 0:
                    against["status"] = "Credit Note Issued"
                against["modified"] = self._tick()
        else:
            doc["status"] = "To Deliver and Bill"
        doc.update(docstatus=1, modified=self._tick())

    def _update(self, doctype: str, row: dict[str, Any], body: Mapping[str, Any]) -> Reply:
        if row["docstatus"] == 2:
            raise self.refuse(417, "ValidationError", "Cannot edit cancelled document")
        if body.get("modified") and body["modified"] != row["modified"]:
            # frappe/frappe frappe/api/v1.py update_doc applies the body (doc.update), `modified` included;
            # frappe/model/document.py set_user_and_timestamp takes it as _original_modified, and check_if_latest
            # refuses the save when the stored one differs
            raise self.refuse(
                417,
                "TimestampMismatchError",
                "Error: Document has been modified after you have opened it"
                f" ({body['modified']}, {row['modified']}). Please refresh to get the latest document.",
            )
        changes = {k: v for k, v in body.items() if k in self._fields_of(doctype) and k not in COMMON_FIELDS}
        submit = int(body.get("docstatus") or row["docstatus"]) == 1 and row["docstatus"] == 0
        if row["docstatus"] == 1:
            for field in changes:
                if field not in ALLOW_ON_SUBMIT and changes[field] != row.get(field):
                    raise self.refuse(417, "UpdateAfterSubmitError", f"Not allowed to change {field} after submission")
            row.update(changes, modified=self._tick())
            return Reply(200, {"data": jsonable(row)})
        saved = json.loads(json.dumps(jsonable(row)))
        if "items" in changes:
            changes["items"] = self._items(changes["items"], bool(row.get("is_return")))
        if "payments" in changes:
            changes["payments"] = self._payment_rows(
                doctype, {"payments": changes["payments"]}, bool(row.get("is_return"))
            )
            if doctype == "POS Invoice" and not changes["payments"]:
                raise self.refuse(417, "ValidationError", "At least one mode of payment is required for POS invoice.")
        row.update(changes, modified=self._tick())
        total = sum((i["amount"] for i in row["items"]), Decimal(0))
        self._set_totals(row, total)
        row["total_qty"] = sum(i["qty"] for i in row["items"])
        if doctype in INVOICE_DOCTYPES:
            row["outstanding_amount"] = row["rounded_total"] or total
        if submit:
            try:
                self._submit(doctype, row)
            except _Refused:
                row.clear()
                row.update(_decimals(saved))
                raise
        return Reply(200, {"data": jsonable(row)})

    def _delete(self, doctype: str, row: dict[str, Any]) -> Reply:
        if row["docstatus"] == 1:
            # frappe/frappe frappe/model/delete_doc.py delete_doc
            raise self.refuse(
                417,
                "ValidationError",
                f"Submitted Record cannot be deleted. You must Cancel {doctype} {row['name']} first.",
            )
        del self.tables[doctype][row["name"]]
        # frappe/frappe frappe/model/delete_doc.py add_to_deleted_document: the document is kept as JSON
        self._insert(
            "Deleted Document",
            self._hash(),
            {"deleted_doctype": doctype, "deleted_name": row["name"], "data": row, "restored": 0},
        )
        return Reply(202, {"message": "ok"})  # frappe/frappe frappe/api/v1.py delete_doc: 202, "ok"

    def _cancel(self, body: Mapping[str, Any]) -> Reply:
        doctype, name = str(body.get("doctype") or ""), str(body.get("name") or "")
        row = self.tables.get(doctype, {}).get(name)
        if row is None:
            raise self.refuse(404, "DoesNotExistError", f"{doctype} {name} not found")
        if row["docstatus"] == 0:
            raise self.refuse(417, "DocstatusTransitionError", "Cannot change docstatus from 0 to 2")
        if row["docstatus"] == 2:
            raise self.refuse(417, "ValidationError", "Cannot edit cancelled document")
        linked = [
            (pe, ref)
            for pe in self.tables["Payment Entry"].values()
            if pe["docstatus"] == 1
            for ref in pe["references"]
            if ref["reference_doctype"] == doctype and ref["reference_name"] == name
        ]
        returns = (
            [r for r in self.returns_of(doctype, name) if r["docstatus"] == 1] if doctype in INVOICE_DOCTYPES else []
        )
        if returns:
            # frappe/frappe frappe/model/delete_doc.py check_if_doc_is_linked (via Document.cancel): a submitted
            # return links the invoice through return_against
            raise self.refuse(
                417,
                "LinkExistsError",
                f"Cannot delete or cancel because {doctype} {name} is linked with {doctype} {returns[0]['name']}",
            )
        if linked and not self.unlink_payments:
            # frappe/frappe frappe/model/delete_doc.py check_if_doc_is_linked (via Document.cancel)
            raise self.refuse(
                417,
                "LinkExistsError",
                f"Cannot delete or cancel because {doctype} {name} is linked with Payment Entry {linked[0][0]['name']}",
            )
        for pe, ref in linked:
            # frappe/erpnext erpnext/controllers/accounts_controller.py unlink_ref_doc_from_payment_entries
            pe["references"].remove(ref)
            pe["unallocated_amount"] += ref["allocated_amount"]
        if doctype == "Sales Order":
            row["advance_paid"] = Decimal(0)
        row.update(docstatus=2, status="Cancelled", modified=self._tick())
        return Reply(200, {"message": jsonable(row)})

    # -- payments -------------------------------------------------------------------------------------------
    def _create_payment_entry(self, body: Mapping[str, Any]) -> Reply:
        """frappe/erpnext erpnext/accounts/doctype/payment_entry/payment_entry.py PaymentEntry.validate/on_submit"""
        kind = body.get("payment_type")
        if kind not in ("Receive", "Pay", "Internal Transfer"):
            raise self.refuse(417, "ValidationError", f"Payment Type cannot be {kind!r}")
        if body.get("party_type") != "Customer" or body.get("party") not in self.tables["Customer"]:
            raise self.refuse(417, "LinkValidationError", f"Could not find Party: {body.get('party')}")
        mode = str(body.get("mode_of_payment") or "")
        if mode:
            self._mode_account(mode)
        # payment_entry.json: paid_from and paid_to are mandatory; set_missing_values fills only the party's side
        # (paid_from on a Receive, paid_to on a Pay), so the cash or bank account must be named.
        own_side, label = ("paid_to", "Account Paid To") if kind == "Receive" else ("paid_from", "Account Paid From")
        if not body.get(own_side):
            raise self.refuse(417, "MandatoryError", f"Error: Value missing for Payment Entry: {label}")
        paid = Decimal(str(body.get("paid_amount") or 0))
        if paid <= 0:
            raise self.refuse(417, "ValidationError", "Paid Amount is mandatory")
        references = []
        for idx, ref in enumerate(body.get("references") or [], start=1):
            doctype, name = str(ref.get("reference_doctype") or ""), str(ref.get("reference_name") or "")
            target = self.tables.get(doctype, {}).get(name)
            if target is None:
                raise self.refuse(417, "LinkValidationError", f"Could not find Row #{idx}: Name: {name}")
            if target["docstatus"] != 1:
                raise self.refuse(417, "ValidationError", f"{doctype} {name} must be submitted")
            outstanding = (
                target["grand_total"] - target["advance_paid"]
                if doctype == "Sales Order"
                else target["outstanding_amount"]
            )
            allocated = Decimal(str(ref.get("allocated_amount") or 0))
            if kind == "Receive" and allocated > outstanding:
                # validate_allocated_amount
                raise self.refuse(
                    417, "ValidationError", f"Row #{idx}: Allocated Amount cannot be greater than outstanding amount."
                )
            references.append(
                {"reference_doctype": doctype, "reference_name": name, "allocated_amount": allocated, "idx": idx}
            )
        allocated_total = sum((r["allocated_amount"] for r in references), Decimal(0))
        if allocated_total > paid:
            raise self.refuse(417, "ValidationError", "Total Allocated Amount cannot be greater than Paid Amount")
        ref = body.get(self.payment_ref_field) if self.payment_ref_field else None
        if ref and any(pe.get(self.payment_ref_field) == ref for pe in self.tables["Payment Entry"].values()):
            # frappe/frappe frappe/model/base_document.py show_unique_validation_message
            raise self.refuse(
                417,
                "UniqueValidationError",
                "Tablebox Payment Ref must be unique",
                f"('Payment Entry', IntegrityError(1062, \"Duplicate entry '{ref}' for key '{self.payment_ref_field}'\"))",
            )
        values = {
            k: v
            for k, v in body.items()
            if k in self._fields_of("Payment Entry") and k not in COMMON_FIELDS | {"references"}
        }
        date = str(body.get("posting_date") or body.get("reference_date") or "2026-11-21")
        name = self._next_name(f"ACC-PAY-{date[:4]}-")
        doc = self._insert(
            "Payment Entry",
            name,
            {
                **values,
                "paid_amount": paid,
                "received_amount": paid,
                "references": references,
                "unallocated_amount": paid - allocated_total,
                "status": "Draft",
            },
        )
        if int(body.get("docstatus") or 0) == 1:
            for ref in references:
                target = self.tables[ref["reference_doctype"]][ref["reference_name"]]
                if ref["reference_doctype"] == "Sales Order":
                    target["advance_paid"] += ref["allocated_amount"]
                else:
                    target["outstanding_amount"] -= ref["allocated_amount"]
            doc.update(docstatus=1, status="Submitted")
        return Reply(200, {"data": jsonable(doc)})

    def _create_comment(self, body: Mapping[str, Any]) -> Reply:
        doctype, name = str(body.get("reference_doctype") or ""), str(body.get("reference_name") or "")
        if name not in self.tables.get(doctype, {}):
            raise self.refuse(417, "LinkValidationError", f"Could not find Reference Name: {name}")
        row = self._insert(
            "Comment",
            self._hash(),
            {
                "comment_type": body.get("comment_type") or "Comment",
                "reference_doctype": doctype,
                "reference_name": name,
                "content": str(body.get("content") or ""),
                "comment_email": self.user,
            },
        )
        return Reply(200, {"data": jsonable(row)})


# The adapter's marker in an invoice's remarks for a payment booked in its payment rows:
# "[tablebox payment <ref> <amount> <mode of payment>]" (see sync/adapters/erpnext.py).
MARK = re.compile(r"\[tablebox payment (\S+) (-?[0-9.]+) ([^\]]+)\]")


class _Refused(Exception):
    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


def error(status: int, exc_type: str, message: str, detail: str | None = None, *, tracebacks: bool = True) -> Reply:
    """An error answer as Frappe's report_error builds it (API v1, frappe/frappe frappe/utils/response.py): exc_type
    always; `exception` (the last traceback line) and the traceback in `exc` only when tracebacks are allowed and
    never for 404s; the messages shown to the user as `_server_messages`, a JSON list of JSON-encoded objects."""
    body: dict[str, Any] = {"exc_type": exc_type}
    if status != 404 and tracebacks:
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


def jsonable(value: Any) -> Any:
    """Frappe answers Float and Currency fields as JSON floats (38.0)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def _decimals(value: Any) -> Any:
    """Undo jsonable for a saved copy of a document (amounts back to Decimal)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decimals(v) for v in value]
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
