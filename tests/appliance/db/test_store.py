"""The store's schema and staff-side functions: migrations, the demo import, status moves and their events."""

from __future__ import annotations

import json

import pytest

from appliance.db.connection import open_connection
from appliance.db.menu import load_menu, set_price, set_sold_out, set_stock
from appliance.db.migrate import available, current_version, migrate
from appliance.db.orders import MenuCache, OrderRequest, change_status, submit_order, void_line
from appliance.db.store_settings import load_store_settings, set_store_setting
from appliance.db.tables import get_table, set_session_status
from appliance.domain.errors import DomainError
from appliance.domain.orders import Actor, Channel, OrderStatus, SessionStatus
from appliance.domain.pricing import CartLine


def test_migrations_apply_once_and_are_recorded(tmp_path):
    conn = open_connection(tmp_path / "m.db")
    numbers = [n for n, _, _ in available()]
    assert migrate(conn) == numbers
    assert migrate(conn) == []
    assert current_version(conn) == numbers[-1]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_the_demo_store_meets_the_promise(settings, db):
    counts = dict(
        db.execute(
            "SELECT 'items', count(*) FROM items UNION ALL SELECT 'categories', count(*) FROM categories"
            " UNION ALL SELECT 'tables', count(*) FROM tables UNION ALL SELECT 'areas',"
            " count(DISTINCT area) FROM tables UNION ALL SELECT 'with_variants',"
            " count(DISTINCT item_id) FROM variants UNION ALL SELECT 'stations', count(*) FROM stations"
            " UNION ALL SELECT 'printers', count(*) FROM printers"
        )
    )
    assert counts["items"] >= 40 and counts["categories"] >= 6 and counts["tables"] >= 12
    assert counts["areas"] == 2 and counts["with_variants"] >= 10 and counts["stations"] == 2
    assert counts["printers"] == 2
    menu = load_menu(db)
    for item in menu.items.values():
        assert item.names["zh"] and item.names["en"]
    assert any(o.price_delta_minor > 0 for i in menu.items.values() for g in i.option_groups for o in g.options)
    assert any(i.allergens for i in menu.items.values())
    assert load_store_settings(db).currency == "CNY"


def _order(db, cache, table_name="A1", quantity=1, channel=Channel.LAN):
    table = next(t for t in [get_table(db, i) for (i,) in db.execute("SELECT id FROM tables")] if t.name == table_name)
    har_gow = db.execute("SELECT id FROM items WHERE key = 'har_gow'").fetchone()[0]
    greens = db.execute("SELECT id FROM items WHERE key = 'seasonal_greens'").fetchone()[0]
    request = OrderRequest(
        client_key=f"k{quantity}{table_name}{channel}xxxxxx",
        lines=(CartLine(har_gow, quantity), CartLine(greens, 1)),
        channel=channel,
    )
    with db:
        return submit_order(db, table, request, cache).order


def test_every_move_appends_an_event_and_cancel_voids_the_tickets(db):
    cache = MenuCache()
    order = _order(db, cache)
    with db:
        for target in (OrderStatus.ACCEPTED, OrderStatus.PREPARING):
            change_status(db, order["id"], target, Actor.STAFF)
        with pytest.raises(DomainError) as err:
            change_status(db, order["id"], OrderStatus.CANCELLED, Actor.STAFF)
        assert err.value.code == "reason_required"
        change_status(db, order["id"], OrderStatus.CANCELLED, Actor.STAFF, "power cut in the kitchen")
        with pytest.raises(DomainError) as err:
            change_status(db, order["id"], OrderStatus.READY, Actor.STAFF)
        assert err.value.code == "illegal_transition"
    events = db.execute(
        "SELECT from_status, to_status, actor, reason FROM order_events WHERE order_id = ? ORDER BY id", (order["id"],)
    ).fetchall()
    assert events == [
        (None, "submitted", "diner", None),
        ("submitted", "accepted", "staff", None),
        ("accepted", "preparing", "staff", None),
        ("preparing", "cancelled", "staff", "power cut in the kitchen"),
    ]
    voids = db.execute("SELECT station, kind, payload FROM print_jobs WHERE kind = 'void'").fetchall()
    assert [(s, k) for s, k, _ in voids] == [("kitchen", "void")]
    assert json.loads(voids[0][2])["reason"] == "power cut in the kitchen"


def test_voiding_a_line_recomputes_the_total_and_prints_a_void(db):
    cache = MenuCache()
    with db:
        set_store_setting(db, "service_charge_bp", 1000)
    order = _order(db, cache, quantity=2)  # har gow 2 x 32.00 + greens 28.00 = 92.00 + 10%
    assert order["total_minor"] == 10120
    with db:
        after = void_line(db, order["id"], 1, "dropped on the floor")
        with pytest.raises(DomainError) as err:
            void_line(db, order["id"], 1, "again")
        assert err.value.code == "already_voided"
    assert after.total_minor == 3080 and after.subtotal_minor == 2800
    assert after.lines[0].status == "voided" and after.lines[0].void_reason == "dropped on the floor"
    assert db.execute("SELECT kind, ref FROM print_jobs WHERE kind = 'void'").fetchall() == [
        (
            "void",
            str(
                db.execute("SELECT id FROM order_lines WHERE order_id = ? AND line_no = 1", (order["id"],)).fetchone()[
                    0
                ]
            ),
        )
    ]


def test_staff_orders_are_accepted_at_once(db):
    order = _order(db, MenuCache(), channel=Channel.STAFF)
    assert order["status"] == "accepted" and order["channel"] == "staff"


def test_ticket_numbers_count_per_business_day(db):
    cache = MenuCache()
    numbers = [_order(db, cache, quantity=q)["ticket_no"] for q in (1, 2, 3)]
    assert numbers == [1, 2, 3]


def test_a_visit_with_money_owed_is_never_silently_closed(db):
    order = _order(db, MenuCache())
    with db:
        with pytest.raises(DomainError) as err:
            set_session_status(db, order["session_id"], SessionStatus.CLOSED)
        assert err.value.code == "unpaid_session"
        set_session_status(db, order["session_id"], SessionStatus.PAID)
        set_session_status(db, order["session_id"], SessionStatus.CLOSED)
    assert db.execute("SELECT status FROM table_sessions").fetchone()[0] == "closed"


def test_menu_edits_bump_the_version_and_refuse_nonsense(db):
    version = db.execute("SELECT version FROM menu_meta").fetchone()[0]
    item = db.execute("SELECT id FROM items WHERE key = 'har_gow'").fetchone()[0]
    with db:
        set_price(db, item, 3500)
        set_sold_out(db, item, True)
    assert db.execute("SELECT version FROM menu_meta").fetchone()[0] == version + 2
    with db:
        set_stock(db, item, 5)  # a positive count puts it back on sale
    assert db.execute("SELECT stock, sold_out FROM items WHERE id = ?", (item,)).fetchone() == (5, 0)
    for call, code in [
        (lambda: set_price(db, item, -1), "invalid_price"),
        (lambda: set_stock(db, item, -2), "invalid_stock"),
        (lambda: set_sold_out(db, 99999, True), "unknown_item"),
        (lambda: set_store_setting(db, "currency", "XYZ"), "unknown_currency"),
        (lambda: set_store_setting(db, "timezone", "Mars/Olympus"), "invalid_setting"),
        (lambda: set_store_setting(db, "bogus", 1), "unknown_setting"),
    ]:
        with pytest.raises(DomainError) as err:
            call()
        assert err.value.code == code
