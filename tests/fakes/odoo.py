"""A fake Odoo as a real HTTP server on 127.0.0.1: JSON-2 and JSON-RPC on one port, behaving as Odoo 19 or 17.

Reproduced from Odoo's documentation and source (addons/rpc/controllers/json2.py, odoo/http.py,
odoo/service/model.py):

- `POST /json/2/<model>/<method>` (version 19 and later; Odoo 17 answers its HTML 404 page): bearer API key
  (missing or wrong: 401 {"name": "werkzeug.exceptions.Unauthorized", "message": "Invalid apikey", ...}),
  `X-Odoo-Database` (needed when the server hosts several databases), a JSON object of named arguments plus
  `ids` and `context`; errors as {"name", "message", "arguments", "context", "debug"}: no such model or method
  404, an argument the method does not take 422 (the message of binding it), ids given to a model method 422,
  UserError / ValidationError 422, AccessError 403, any other exception 500. Each call is its own transaction.
- `POST /jsonrpc` (every version): `common.version`, `common.authenticate` (False for a wrong login or key),
  `object.execute_kw`; errors come as HTTP 200 with {"error": {"code": 200, "message": "Odoo Server Error",
  "data": {"name", "message", "arguments", "debug", "context"}}}: AccessDenied for a wrong key, UserError for an
  unknown model, AttributeError for an unknown method, TypeError for a wrong argument.
- `GET /web/version` -> {"version_info": [19, 0, 0, "final", 0, ""], "version": "19.0"} (`has_web_version =
  False`: 404, as before Odoo 16 or behind a proxy that hides it).
- Models: res.company, res.currency, res.partner, product.category, product.template, product.product
  (translated names, list_price, categ_id, active, sale_ok, `type = 'product'` for storable goods on 17,
  `is_storable` from 18, qty_available per `location` / `warehouse` in the context), product.pricelist(.item),
  sale.order (+ sale.order.line; `client_order_ref` is NOT unique: a repeated create is a second order, as in
  Odoo) and mail.message; methods search_read, search, search_count, read, create, write, fields_get, and on
  sale.order action_confirm, action_cancel, message_post.

Approximations: the 404 for a missing or unknown `X-Odoo-Database` uses the JSON error shape; amounts carry
no tax (amount_total = sum of price_unit x quantity); domains know the operators adapters use.

Switches besides FakeServer's: `has_web_version`, `rate_limit_next` (that many requests answer 429),
`drop_next_call(model, method)` (that call is committed, then the connection closes without an answer).
"""

from __future__ import annotations

import html
import inspect
import json
import secrets
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from appliance.domain.money import CURRENCY_EXPONENTS
from tests.fakes.server import FakeServer, Reply, Request, _Dropped

ODOO_LANGS = {"zh": "zh_CN", "en": "en_US", "ja": "ja_JP"}
SOURCE_LANG = "en_US"
COMPANY = 1
WALK_IN = 7
PRICELIST = 1
SHOP_WAREHOUSE, CENTRAL_WAREHOUSE = 1, 2
SHOP_LOCATION, CENTRAL_LOCATION = 8, 30
WAREHOUSE_LOCATIONS = {SHOP_WAREHOUSE: [SHOP_LOCATION], CENTRAL_WAREHOUSE: [CENTRAL_LOCATION]}
API_MODEL = {"search_read", "search", "search_count", "create", "fields_get"}
SALE_ORDER_METHODS = {"action_confirm", "action_cancel", "message_post"}
HTML_404 = (
    b"<!DOCTYPE html>\n<html><head><title>404 | Page not found</title></head>"
    b"<body><h1>Oops! Page not found</h1></body></html>"
)

FIELDS: dict[str, dict[str, str]] = {
    "res.company": {"name": "char", "currency_id": "many2one:res.currency"},
    "res.currency": {"name": "char"},
    "res.partner": {"name": "char", "active": "boolean"},
    "product.category": {"name": "char", "complete_name": "char"},
    "product.template": {"name": "char"},
    "product.product": {
        "default_code": "char",
        "name": "char",
        "list_price": "float",
        "categ_id": "many2one:product.category",
        "active": "boolean",
        "sale_ok": "boolean",
        "product_tmpl_id": "many2one:product.template",
        "type": "selection",
        "qty_available": "float",
    },
    "product.pricelist": {"name": "char", "currency_id": "many2one:res.currency"},
    "product.pricelist.item": {
        "pricelist_id": "many2one:product.pricelist",
        "applied_on": "selection",
        "product_id": "many2one:product.product",
        "product_tmpl_id": "many2one:product.template",
        "compute_price": "selection",
        "fixed_price": "float",
        "min_quantity": "float",
        "date_start": "datetime",
        "date_end": "datetime",
    },
    "sale.order": {
        "name": "char",
        "partner_id": "many2one:res.partner",
        "client_order_ref": "char",
        "origin": "char",
        "date_order": "datetime",
        "state": "selection",
        "order_line": "one2many:sale.order.line",
        "pricelist_id": "many2one:product.pricelist",
        "company_id": "many2one:res.company",
        "amount_total": "float",
        "locked": "boolean",
        "note": "html",
    },
    "sale.order.line": {
        "order_id": "many2one:sale.order",
        "product_id": "many2one:product.product",
        "product_uom_qty": "float",
        "price_unit": "float",
        "name": "text",
        "display_type": "selection",
        "discount": "float",
        "price_subtotal": "float",
    },
    "mail.message": {
        "model": "char",
        "res_id": "integer",
        "body": "html",
        "message_type": "selection",
        "subtype_xmlid": "char",
    },
}
COMPUTED = {("product.product", "qty_available"), ("sale.order", "amount_total"), ("sale.order.line", "price_subtotal")}


class OdooError(Exception):
    def __init__(self, name: str, message: str, status: int) -> None:
        super().__init__(message)
        self.name = name
        self.message = message
        self.status = status


def user_error(message: str) -> OdooError:
    return OdooError("odoo.exceptions.UserError", message, 422)


def validation_error(message: str) -> OdooError:
    return OdooError("odoo.exceptions.ValidationError", message, 422)


@dataclass
class Call:
    protocol: str  # "json2" | "jsonrpc"
    model: str
    method: str
    context: dict[str, Any]
    params: dict[str, Any]  # named arguments (JSON-2) or kwargs plus "args" (JSON-RPC)


@dataclass
class Records:
    db: Database
    model: str
    ids: list[int]
    context: dict[str, Any]


@dataclass
class Database:
    tables: dict[str, dict[int, dict[str, Any]]] = field(default_factory=lambda: {m: {} for m in FIELDS})
    next_ids: Counter[str] = field(default_factory=Counter)

    inserted: list[tuple[str, int]] = field(default_factory=list)  # this call's new records

    def insert(self, model: str, values: dict[str, Any], record_id: int | None = None) -> int:
        if record_id is None:
            record_id = max([self.next_ids[model], *self.tables[model]], default=0) + 1
        self.next_ids[model] = max(self.next_ids[model], record_id)
        self.tables[model][record_id] = {"id": record_id, **values}
        self.inserted.append((model, record_id))
        return record_id

    def begin(self) -> None:
        self.inserted = []

    def rollback(self) -> None:
        """A failed call leaves nothing behind (the methods check before they change existing records)."""
        for model, record_id in self.inserted:
            self.tables[model].pop(record_id, None)
        self.inserted = []


class FakeOdoo(FakeServer):
    def __init__(self, version: int = 19, databases: tuple[str, ...] = ("tablebox",), currency: str = "CNY") -> None:
        super().__init__()
        self.version = version
        self.db_name = databases[0]
        self.dbs = {name: Database() for name in databases}
        self.api_keys = {"0d00" + secrets.token_hex(18)}
        self.api_key = next(iter(self.api_keys))
        self.login = "tablebox-bot"
        self.uid = 2
        self.currency = currency
        self.exponent = CURRENCY_EXPONENTS[currency]
        self.has_web_version = True
        self.rate_limit_next = 0
        self.calls: list[Call] = []
        self._drop: list[tuple[str, str]] = []
        for db in self.dbs.values():
            self._seed(db)
        main = self.db
        self.service_product_id = self._product(main, None, {"en_US": "Service charge"}, Decimal(0), kind="service")
        self.open_item_product_id = self._product(main, None, {"en_US": "Open item"}, Decimal(0), kind="service")

    @property
    def db(self) -> Database:
        return self.dbs[self.db_name]

    def _seed(self, db: Database) -> None:
        currency_id = db.insert("res.currency", {"name": self.currency}, 7)
        db.insert("res.company", {"name": "Tablebox Test Kitchen", "currency_id": currency_id}, COMPANY)
        db.insert("res.partner", {"name": "Walk-in customer", "active": True}, WALK_IN)
        db.insert("product.category", {"name": "All", "complete_name": "All"}, 1)
        db.insert("product.pricelist", {"name": "Public Pricelist", "currency_id": currency_id}, PRICELIST)

    # -- what the tests set up and read back -----------------------------------------------------------------
    def add_item(
        self,
        code: str,
        names: Mapping[str, str],
        price_minor: int,
        stock: int | None = None,
        category: str | None = None,
    ) -> int:
        translations = {ODOO_LANGS.get(lang, lang): text for lang, text in names.items()}
        translations.setdefault(SOURCE_LANG, names.get("en") or next(iter(names.values())))
        with self.lock:
            db = self.db
            categ = 1
            if category:
                complete = f"All / {category}"
                categ = next(
                    (c["id"] for c in db.tables["product.category"].values() if c["complete_name"] == complete), 0
                ) or db.insert("product.category", {"name": category, "complete_name": complete})
            product_id = self._product(
                db,
                code,
                translations,
                self._major(price_minor),
                categ=categ,
                kind="storable" if stock is not None else "consu",
            )
            if stock is not None:
                db.tables["product.product"][product_id]["_stock"][SHOP_LOCATION] = Decimal(stock)
            return product_id

    def _product(
        self,
        db: Database,
        code: str | None,
        names: dict[str, str],
        price: Decimal,
        *,
        categ: int = 1,
        kind: str = "consu",
    ) -> int:
        template = db.insert("product.template", {"name": names[SOURCE_LANG]})
        values: dict[str, Any] = {
            "default_code": code or False,
            "name": names,
            "list_price": price,
            "categ_id": categ,
            "active": True,
            "sale_ok": True,
            "product_tmpl_id": template,
            "_stock": {},
        }
        if self.version >= 18:
            values.update(type="service" if kind == "service" else "consu", is_storable=kind == "storable")
        else:
            values["type"] = {"storable": "product", "service": "service"}.get(kind, "consu")
        return db.insert("product.product", values)

    def product(self, code: str) -> dict[str, Any]:
        return next(p for p in self.db.tables["product.product"].values() if p["default_code"] == code)

    def set_price(self, code: str, price_minor: int) -> None:
        with self.lock:
            self.product(code)["list_price"] = self._major(price_minor)

    def set_stock(self, code: str, qty: int | Decimal | str, location: int = SHOP_LOCATION) -> None:
        with self.lock:
            product = self.product(code)
            if self.version >= 18:
                product["is_storable"] = True
            else:
                product["type"] = "product"
            product["_stock"][location] = Decimal(qty)

    def remove_item(self, code: str) -> None:
        with self.lock:
            self.product(code)["active"] = False

    def add_fixed_price(
        self, code: str, price_minor: int, *, per_template: bool = False, date_end: str | None = None
    ) -> None:
        with self.lock:
            product = self.product(code)
            self.db.insert(
                "product.pricelist.item",
                {
                    "pricelist_id": PRICELIST,
                    "applied_on": "1_product" if per_template else "0_product_variant",
                    "product_id": False if per_template else product["id"],
                    "product_tmpl_id": product["product_tmpl_id"] if per_template else False,
                    "compute_price": "fixed",
                    "fixed_price": self._major(price_minor),
                    "min_quantity": Decimal(0),
                    "date_start": False,
                    "date_end": date_end or False,
                },
            )

    def drop_next_call(self, model: str, method: str) -> None:
        """The next call of `model.method` is committed, then the connection is closed without an answer."""
        with self.lock:
            self._drop.append((model, method))

    def sale_orders(self, order_ref: str | None = None) -> list[dict[str, Any]]:
        """The sale.orders (with their lines), all or those with that client_order_ref, oldest first."""
        with self.lock:
            db = self.db
            orders = [
                o
                for o in sorted(db.tables["sale.order"].values(), key=lambda o: o["id"])
                if order_ref is None or o["client_order_ref"] == order_ref
            ]
            return [
                {
                    **o,
                    "lines": [dict(db.tables["sale.order.line"][i]) for i in o["_lines"]],
                    "amount_total_minor": self._minor(self._amount_total(db, o)),
                }
                for o in orders
            ]

    def messages(self, order_ref: str) -> list[str]:
        with self.lock:
            ids = {o["id"] for o in self.db.tables["sale.order"].values() if o["client_order_ref"] == order_ref}
            return [
                m["body"]
                for m in self.db.tables["mail.message"].values()
                if m["model"] == "sale.order" and m["res_id"] in ids
            ]

    def order_counts(self) -> dict[str, int]:
        with self.lock:
            return dict(
                Counter(o["client_order_ref"] for o in self.db.tables["sale.order"].values() if o["client_order_ref"])
            )

    def order_total_minor(self, order_ref: str) -> int:
        orders = self.sale_orders(order_ref)
        if not orders:
            raise KeyError(order_ref)
        return int(orders[0]["amount_total_minor"])

    def target_config(self, protocol: str | None = None) -> dict[str, Any]:
        return {
            "kind": "odoo",
            "base_url": self.url,
            "database": self.db_name,
            "api_key": self.api_key,
            "login": self.login,
            "protocol": protocol or ("json2" if self.version >= 19 else "jsonrpc"),
            "timeout_seconds": 5,
            "partner_id": WALK_IN,
            "company_id": COMPANY,
            "location_id": SHOP_LOCATION,
            "service_product_id": self.service_product_id,
            "open_item_product_id": self.open_item_product_id,
            "languages": {"zh": "zh_CN", "en": "en_US"},
        }

    def _major(self, minor: int) -> Decimal:
        return Decimal(minor).scaleb(-self.exponent)

    def _minor(self, major: Decimal) -> int:
        value = major.scaleb(self.exponent)
        assert value == value.to_integral_value(), f"{major} is not a whole number of minor units"
        return int(value)

    # -- HTTP -------------------------------------------------------------------------------------------------
    def handle(self, request: Request) -> Reply:
        if self._httpd is None:
            # FakeServer.go_down closes the listening socket, but a kept-alive connection's handler thread would
            # go on serving: a server that is down answers nothing.
            raise _Dropped()
        if request.method == "GET" and request.path == "/web/version":
            if not self.has_web_version:
                return Reply(404, HTML_404, {"Content-Type": "text/html; charset=utf-8"})
            return Reply(200, {"version_info": [self.version, 0, 0, "final", 0, ""], "version": f"{self.version}.0"})
        with self.lock:
            if self.rate_limit_next > 0:
                self.rate_limit_next -= 1
                return Reply(
                    429, _error_body("werkzeug.exceptions.TooManyRequests", "Too Many Requests"), {"Retry-After": "1"}
                )
        if request.path == "/json/2" or request.path.startswith("/json/2/"):
            if self.version < 19:
                return Reply(404, HTML_404, {"Content-Type": "text/html; charset=utf-8"})
            return self._json2(request)
        if request.path == "/jsonrpc" and request.method == "POST":
            return self._jsonrpc(request)
        return Reply(404, HTML_404, {"Content-Type": "text/html; charset=utf-8"})

    def _json2(self, request: Request) -> Reply:
        parts = request.path.split("/")
        if request.method != "POST" or len(parts) != 5 or not parts[3] or not parts[4]:
            return _json2_error(
                OdooError("werkzeug.exceptions.NotFound", "Did you mean POST /json/2/<model>/<method>?", 404)
            )
        model, method = parts[3], parts[4]
        db_name = _header(request, "X-Odoo-Database")
        if db_name is None and len(self.dbs) == 1:
            db_name = self.db_name
        if db_name not in self.dbs:
            return _json2_error(
                OdooError(
                    "werkzeug.exceptions.NotFound",
                    "404 Not Found: no database selected"
                    if db_name is None
                    else f"404 Not Found: database {db_name!r} not found",
                    404,
                )
            )
        scheme, _, key = (_header(request, "Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or key.strip() not in self.api_keys:
            return _json2_error(OdooError("werkzeug.exceptions.Unauthorized", "Invalid apikey", 401))
        try:
            params = json.loads(request.body or b"{}", parse_float=Decimal)
        except ValueError as exc:
            return _json2_error(
                OdooError("werkzeug.exceptions.BadRequest", f"could not parse the body as json: {exc.args[0]}", 400)
            )
        if not isinstance(params, dict):
            return _json2_error(
                OdooError("werkzeug.exceptions.BadRequest", "could not parse the body, expecting a json object", 400)
            )
        ids = params.pop("ids", None) or []
        context = params.pop("context", None) or {}
        with self.lock:
            self.calls.append(Call("json2", model, method, dict(context), dict(params)))
            try:
                func = self._method(model, method, not_found=404)
                if method in API_MODEL and ids:
                    raise OdooError(
                        "werkzeug.exceptions.UnprocessableEntity", f"cannot call {model}.{method} with ids", 422
                    )
                records = Records(self.dbs[db_name], model, [int(i) for i in ids], context)
                try:
                    inspect.signature(func).bind(records, **params)
                except TypeError as exc:
                    raise OdooError("werkzeug.exceptions.UnprocessableEntity", exc.args[0], 422) from None
                records.db.begin()
                try:
                    result = func(records, **params)
                except Exception:
                    records.db.rollback()  # the call's transaction
                    raise
            except OdooError as exc:
                return _json2_error(exc, context)
            except Exception as exc:  # what Odoo answers 500 to
                return _json2_error(OdooError(f"builtins.{type(exc).__name__}", str(exc), 500), context)
            self._maybe_drop(model, method)
        return Reply(200, _plain(list(result) if isinstance(result, _Ids) else result))

    def _jsonrpc(self, request: Request) -> Reply:
        try:
            body = json.loads(request.body or b"null", parse_float=Decimal)
            params = body["params"]
            service, method, args = params["service"], params["method"], list(params.get("args") or [])
        except (ValueError, KeyError, TypeError):
            return Reply(400, HTML_404, {"Content-Type": "text/html; charset=utf-8"})
        rpc_id = body.get("id")
        try:
            if service == "common":
                return Reply(200, {"jsonrpc": "2.0", "id": rpc_id, "result": self._common(method, args)})
            if service != "object" or method != "execute_kw":
                raise OdooError("builtins.NameError", f"{service}.{method} is not a service method", 200)
            db_name, uid, password, model, method_name, *rest = args
            self._check_db(db_name)
            if uid != self.uid or password not in self.api_keys:
                raise OdooError("odoo.exceptions.AccessDenied", "Access Denied", 401)
            call_args = list(rest[0]) if rest else []
            kwargs = dict(rest[1]) if len(rest) > 1 and rest[1] else {}
            context = kwargs.pop("context", None) or {}
            with self.lock:
                self.calls.append(Call("jsonrpc", model, method_name, dict(context), {**kwargs, "args": call_args}))
                if model not in FIELDS:
                    raise user_error(f"Object {model} doesn't exist")
                func = self._method(model, method_name, not_found=None)
                ids: list[int] = []
                if method_name not in API_MODEL:
                    if not call_args:
                        raise OdooError("builtins.TypeError", f"{method_name}() missing the ids", 200)
                    ids = [int(i) for i in call_args.pop(0)]
                records = Records(self.dbs[db_name], model, ids, context)
                try:
                    inspect.signature(func).bind(records, *call_args, **kwargs)
                except TypeError as exc:
                    raise OdooError("builtins.TypeError", exc.args[0], 200) from None
                records.db.begin()
                try:
                    result = func(records, *call_args, **kwargs)
                except OdooError:
                    records.db.rollback()
                    raise
                except Exception as exc:
                    records.db.rollback()
                    raise OdooError(f"builtins.{type(exc).__name__}", str(exc), 200) from None
                self._maybe_drop(model, method_name)
            if isinstance(result, _Ids):  # @api.returns: one record is its id over RPC
                result = result[0] if result.single else list(result)
            return Reply(200, {"jsonrpc": "2.0", "id": rpc_id, "result": _plain(result)})
        except OdooError as exc:
            return Reply(
                200,
                {
                    "jsonrpc": "2.0",
                    "id": rpc_id,
                    "error": {
                        "code": 200,
                        "message": "Odoo Server Error",
                        "data": {
                            "name": exc.name,
                            "debug": _traceback(exc),
                            "message": exc.message,
                            "arguments": [exc.message],
                            "context": {},
                        },
                    },
                },
            )

    def _common(self, method: str, args: list[Any]) -> Any:
        if method == "version":
            return {
                "server_version": f"{self.version}.0",
                "server_version_info": [self.version, 0, 0, "final", 0, ""],
                "server_serie": f"{self.version}.0",
                "protocol_version": 1,
            }
        if method in ("authenticate", "login"):
            db_name, login, password = args[0], args[1], args[2]
            self._check_db(db_name)
            return self.uid if login == self.login and password in self.api_keys else False
        raise OdooError("builtins.AttributeError", f"common.{method} does not exist", 200)

    def _check_db(self, db_name: Any) -> None:
        if db_name not in self.dbs:
            raise OdooError(
                "psycopg2.OperationalError",
                f'connection to server failed: FATAL:  database "{db_name}" does not exist',
                200,
            )

    def _method(self, model: str, method: str, *, not_found: int | None) -> Callable[..., Any]:
        if model not in FIELDS:
            raise OdooError("werkzeug.exceptions.NotFound", f"the model {model!r} does not exist", 404)
        if method.startswith("_"):
            raise OdooError(
                "odoo.exceptions.AccessError", f"Private methods (such as '{method}') cannot be called remotely.", 403
            )
        func = getattr(self, f"_m_{method}", None)
        if func is None or (method in SALE_ORDER_METHODS and model != "sale.order"):
            message = f"The method '{method}' does not exist on the model '{model}'"
            if not_found:
                raise OdooError("werkzeug.exceptions.NotFound", message, not_found)
            raise OdooError("builtins.AttributeError", message, 200)
        return func  # type: ignore[no-any-return]

    def _maybe_drop(self, model: str, method: str) -> None:
        if (model, method) in self._drop:
            self._drop.remove((model, method))
            raise _Dropped()

    # -- the ORM methods ---------------------------------------------------------------------------------------
    def _m_search_read(
        self,
        recs: Records,
        domain: list[Any] | None = None,
        fields: list[str] | None = None,
        offset: int = 0,
        limit: int | None = None,
        order: str | None = None,
        **read_kwargs: Any,
    ) -> Any:
        ids = self._search(recs, domain or [], offset, limit, order)
        return self._m_read(Records(recs.db, recs.model, ids, recs.context), fields, **read_kwargs)

    def _m_search(
        self, recs: Records, domain: list[Any], offset: int = 0, limit: int | None = None, order: str | None = None
    ) -> Any:
        return _Ids(self._search(recs, domain, offset, limit, order))

    def _m_search_count(self, recs: Records, domain: list[Any], limit: int | None = None) -> int:
        return len(self._search(recs, domain, 0, limit, None))

    def _m_read(
        self, recs: Records, fields: list[str] | None = None, load: str = "_classic_read"
    ) -> list[dict[str, Any]]:
        known = self._fields(recs.model)
        wanted = list(fields) if fields else list(known)
        for name in wanted:
            if name not in known and name != "id":
                raise ValueError(f"Invalid field {name!r} on model {recs.model!r}")
        table = recs.db.tables[recs.model]
        rows = []
        for record_id in recs.ids:
            if record_id not in table:
                raise OdooError(
                    "odoo.exceptions.MissingError",
                    f"Record does not exist or has been deleted.\n(Record: {recs.model}({record_id},), "
                    f"User: {self.uid})",
                    404,
                )
            record = table[record_id]
            row: dict[str, Any] = {"id": record_id}
            for name in wanted:
                if name == "id":
                    continue
                value = self._value(recs, record, name)
                kind = known[name]
                if kind.startswith("many2one:") and value:
                    target = kind.split(":", 1)[1]
                    value = [value, self._display_name(recs, target, value)] if load == "_classic_read" else value
                row[name] = value
            rows.append(row)
        return rows

    def _m_fields_get(
        self, recs: Records, allfields: list[str] | None = None, attributes: list[str] | None = None
    ) -> dict[str, Any]:
        result = {}
        for name, kind in self._fields(recs.model).items():
            if allfields and name not in allfields:
                continue
            description = {"type": kind.split(":")[0], "string": name.replace("_", " ").title()}
            result[name] = {k: v for k, v in description.items() if not attributes or k in attributes}
        return result

    def _m_create(self, recs: Records, vals_list: Any) -> Any:
        single = isinstance(vals_list, dict)
        ids = [self._create_one(recs, vals) for vals in ([vals_list] if single else vals_list)]
        return _Ids(ids, single=single)

    def _m_write(self, recs: Records, vals: dict[str, Any]) -> bool:
        self._check_fields(recs.model, vals)
        for record_id in recs.ids:
            recs.db.tables[recs.model][record_id].update(vals)
        return True

    def _m_action_confirm(self, recs: Records) -> bool:
        orders = [recs.db.tables["sale.order"][i] for i in recs.ids]
        if any(o["state"] not in ("draft", "sent") for o in orders):
            raise user_error("Some orders are not in a state requiring confirmation.")
        # sale/models/sale_order.py: action_confirm writes _prepare_confirmation_values(), which is
        # {'state': 'sale', 'date_order': fields.Datetime.now()}: confirming moves the order's date to now.
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        for o in orders:
            o["state"] = "sale"
            o["date_order"] = now
        return True

    def _m_action_cancel(self, recs: Records) -> bool:
        orders = [recs.db.tables["sale.order"][i] for i in recs.ids]
        if any(o["locked"] for o in orders):
            raise user_error("You cannot cancel a locked order. Please unlock it first if you want to cancel it.")
        for o in orders:
            o["state"] = "cancel"
        return True

    def _m_message_post(
        self,
        recs: Records,
        *,
        body: str = "",
        subject: str | None = None,
        message_type: str = "notification",
        subtype_xmlid: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if len(recs.ids) != 1:
            raise ValueError(f"Expected singleton: sale.order{tuple(recs.ids)}")
        message_id = recs.db.insert(
            "mail.message",
            {
                "model": "sale.order",
                "res_id": recs.ids[0],
                "body": html.escape(body),
                "message_type": message_type,
                "subtype_xmlid": subtype_xmlid or False,
            },
        )
        return _Ids([message_id], single=True)

    # -- the ORM underneath ------------------------------------------------------------------------------------
    def _fields(self, model: str) -> dict[str, str]:
        fields = dict(FIELDS[model])
        if model == "product.product" and self.version >= 18:
            fields["is_storable"] = "boolean"
        return fields

    def _check_fields(self, model: str, vals: Mapping[str, Any]) -> None:
        known = self._fields(model)
        for name in vals:
            if name not in known or (model, name) in COMPUTED:
                raise ValueError(f"Invalid field {name!r} in {model!r}")

    def _create_one(self, recs: Records, vals: dict[str, Any]) -> int:
        db, model = recs.db, recs.model
        self._check_fields(model, vals)
        if model != "sale.order":
            return db.insert(model, dict(vals))
        self._check_exists(db, "res.partner", vals.get("partner_id"), "Customer (partner_id)", required=True)
        for name, target in (("pricelist_id", "product.pricelist"), ("company_id", "res.company")):
            self._check_exists(db, target, vals.get(name), name, required=False)
        values = {
            "name": "",
            "partner_id": vals["partner_id"],
            "client_order_ref": vals.get("client_order_ref") or False,
            "origin": vals.get("origin") or False,
            "date_order": vals.get("date_order") or datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "state": "draft",
            "pricelist_id": vals.get("pricelist_id") or PRICELIST,
            "company_id": vals.get("company_id") or COMPANY,
            "locked": False,
            "note": vals.get("note") or False,
            "_lines": [],
        }
        order_id = db.insert("sale.order", values)
        db.tables["sale.order"][order_id]["name"] = f"S{order_id:05d}"
        for command in vals.get("order_line") or []:
            if not isinstance(command, list) or len(command) != 3 or command[0] != 0:
                raise ValueError(f"unsupported x2many command {command!r}")
            line = dict(command[2])
            self._check_fields("sale.order.line", line)
            if not line.get("display_type"):
                if not line.get("product_id"):
                    raise validation_error("Missing required fields on accountable sale order line.")
                self._check_exists(db, "product.product", line["product_id"], "Product (product_id)", required=True)
                if "price_unit" not in line:
                    line["price_unit"] = db.tables["product.product"][line["product_id"]]["list_price"]
            line_id = db.insert(
                "sale.order.line",
                {
                    "order_id": order_id,
                    "product_id": line.get("product_id") or False,
                    "product_uom_qty": Decimal(line.get("product_uom_qty", 1) if not line.get("display_type") else 0),
                    "price_unit": Decimal(line.get("price_unit") or 0),
                    "name": line.get("name") or "",
                    "display_type": line.get("display_type") or False,
                    "discount": Decimal(line.get("discount") or 0),
                },
            )
            db.tables["sale.order"][order_id]["_lines"].append(line_id)
        return order_id

    def _check_exists(self, db: Database, model: str, value: Any, label: str, *, required: bool) -> None:
        if not value and not required:
            return
        if not isinstance(value, int) or value not in db.tables[model]:
            raise validation_error(
                "The operation cannot be completed:\n- Create/update: a mandatory field is not set.\n"
                f"- Create/update: the record {value!r} of {model} does not exist.\n\nField: {label}"
            )

    def _search(self, recs: Records, domain: list[Any], offset: int, limit: int | None, order: str | None) -> list[int]:
        rows = list(recs.db.tables[recs.model].values())
        if (
            "active" in self._fields(recs.model)
            and recs.context.get("active_test", True)
            and not any(isinstance(t, list) and t and t[0] == "active" for t in domain)
        ):
            rows = [r for r in rows if r.get("active", True)]
        rows = [r for r in rows if self._match(recs, r, domain)]
        for part in reversed([p.split() for p in (order or "id").split(",") if p.strip()]):
            name, descending = part[0], len(part) > 1 and part[1].lower() == "desc"
            rows.sort(
                key=lambda r: (self._value(recs, r, name) is False, self._sort_key(recs, r, name)), reverse=descending
            )
        ids = [r["id"] for r in rows][int(offset or 0) :]
        return ids[:limit] if limit else ids

    def _sort_key(self, recs: Records, record: dict[str, Any], name: str) -> Any:
        value = self._value(recs, record, name)
        return "" if value is False else value

    def _match(self, recs: Records, record: dict[str, Any], domain: list[Any]) -> bool:
        stack: list[bool] = []
        for term in reversed(domain):
            if term == "!":
                stack.append(not stack.pop())
            elif term in ("&", "|"):
                a, b = stack.pop(), stack.pop()
                stack.append((a and b) if term == "&" else (a or b))
            else:
                name, op, expected = term
                stack.append(_compare(self._value(recs, record, name), op, expected))
        return all(stack)

    def _value(self, recs: Records, record: dict[str, Any], name: str) -> Any:
        if name == "id":
            return record["id"]
        if recs.model == "product.product" and name == "name":
            return record["name"].get(recs.context.get("lang") or SOURCE_LANG) or record["name"][SOURCE_LANG]
        if recs.model == "product.product" and name == "qty_available":
            stock = record["_stock"]
            if recs.context.get("location"):
                locations = [int(recs.context["location"])]
            elif recs.context.get(warehouse_key := "warehouse" if self.version < 18 else "warehouse_id"):
                # Mirrors stock/models/product.py _get_domain_locations: Odoo 17 reads context['warehouse'],
                # 18 and 19 read context['warehouse_id'] (or 'search_warehouse') and ignore 'warehouse'.
                locations = WAREHOUSE_LOCATIONS.get(int(recs.context[warehouse_key]), [])
            else:
                locations = list(stock)
            return sum((stock.get(loc, Decimal(0)) for loc in locations), Decimal(0))
        if recs.model == "sale.order" and name == "amount_total":
            return self._amount_total(recs.db, record)
        if recs.model == "sale.order" and name == "order_line":
            return list(record["_lines"])
        if recs.model == "sale.order.line" and name == "price_subtotal":
            return record["price_unit"] * record["product_uom_qty"]
        return record.get(name, False)

    def _amount_total(self, db: Database, order: dict[str, Any]) -> Decimal:
        lines = [db.tables["sale.order.line"][i] for i in order["_lines"]]
        return sum(
            (
                line["price_unit"] * line["product_uom_qty"] * (1 - line["discount"] / 100)
                for line in lines
                if not line["display_type"]
            ),
            Decimal(0),
        )

    def _display_name(self, recs: Records, model: str, record_id: int) -> str:
        record = recs.db.tables[model].get(record_id)
        if record is None:
            return ""
        if model == "product.product":
            name = self._value(Records(recs.db, model, [], recs.context), record, "name")
            return f"[{record['default_code']}] {name}" if record["default_code"] else name
        if model == "product.category":
            return str(record["complete_name"])
        return str(record.get("name") or "")


class _Ids(list):  # type: ignore[type-arg]
    """A recordset as a method returns it: ids over JSON-2; one id (`single`) or ids over JSON-RPC."""

    def __init__(self, ids: list[int], single: bool = False) -> None:
        super().__init__(ids)
        self.single = single


def _compare(value: Any, op: str, expected: Any) -> bool:
    if op == "=":
        return bool(value == expected)
    if op == "!=":
        return bool(value != expected)
    if op == "in":
        return value in expected
    if op == "not in":
        return value not in expected
    if op in ("ilike", "like", "=ilike"):
        if value is False:
            return False
        text, pattern = str(value), str(expected)
        return (
            pattern.lower() in text.lower()
            if op == "ilike"
            else (pattern in text if op == "like" else pattern.lower() == text.lower())
        )
    if value is False or expected is False:
        return False
    return {"<": value < expected, "<=": value <= expected, ">": value > expected, ">=": value >= expected}[op]


def _plain(value: Any) -> Any:
    """What Odoo's JSON encoder sends: floats for amounts."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _header(request: Request, name: str) -> str | None:
    return next((v for k, v in request.headers.items() if k.lower() == name.lower()), None)


def _traceback(exc: OdooError) -> str:
    return f'Traceback (most recent call last):\n  File "odoo/http.py" (fake)\n{exc.name}: {exc.message}\n'


def _error_body(
    name: str, message: str, status: int | None = None, context: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "name": name,
        "message": message,
        "arguments": [message, status] if status else [message],
        "context": dict(context or {}),
        "debug": f"Traceback (most recent call last):\n{name}: {message}\n",
    }


def _json2_error(exc: OdooError, context: Mapping[str, Any] | None = None) -> Reply:
    return Reply(
        exc.status, _error_body(exc.name, exc.message, exc.status if exc.name.startswith("werkzeug") else None, context)
    )
