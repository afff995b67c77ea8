"""The print worker against virtual printers on 127.0.0.1: paper out, a dropped connection, a printer gone
for a while, and a thousand jobs, with nothing lost and nothing printed twice silently."""

from __future__ import annotations

import json
import threading

from appliance.db.connection import write_transaction
from appliance.db.orders import MenuCache, OrderRequest, submit_order
from appliance.db.tables import list_tables
from appliance.domain.pricing import CartLine
from printers.parse import printed_rows
from printers.virtual import PrinterState, VirtualPrinter
from printers.worker import PrintWorker

TICKET_END = b"\x1dV\x00"


def place(conn, n=1, items=("har_gow",), table="A1"):
    """Orders through the store's own submit, as the web process makes them."""
    ids = [conn.execute("SELECT id FROM items WHERE key = ?", (k,)).fetchone()[0] for k in items]
    tables = {t.name: t for t in list_tables(conn)}
    cache = MenuCache()
    orders = []
    with write_transaction(conn):  # one transaction for the lot, as the writer's group commit would
        for _ in range(n):
            request = OrderRequest(
                client_key=f"k{len(orders)}-{threading.get_ident()}-{id(cache)}-{_}xxxx"[:64],
                lines=tuple(CartLine(i, 1) for i in ids),
            )
            orders.append(submit_order(conn, tables[table], request, cache).order)
    return orders


def tickets(data: bytes) -> list[list[str]]:
    """The printed tickets, each as its rows of text."""
    out = []
    for part in data.split(TICKET_END):
        if part.strip(b"\x1b@\n\x1bd\x04"):
            out.append([r.text for r in printed_rows(part + b"")[0] if r.text.strip()])
    return out


def job_states(conn):
    return dict(conn.execute("SELECT state, count(*) FROM print_jobs GROUP BY state").fetchall())


def settle(conn, expected, timeout=10.0):
    """Wait until the jobs' states are as expected (the worker confirms a job after the printer answers)."""
    stop = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if job_states(conn) == expected:
            return True
        stop.wait(0.02)
    return False


def worker(settings, **kw):
    return PrintWorker(settings.db_path, poll_seconds=0.01, fault_retry_seconds=0.05, **kw)


def test_a_ticket_per_station_prints_once(settings, shop, printers):
    order = place(shop, items=("har_gow", "mineral_water"))[0]
    with worker(settings):
        assert printers["kitchen"].wait_for(lambda b: TICKET_END in b)
        assert printers["bar"].wait_for(lambda b: TICKET_END in b)
    kitchen = tickets(printers["kitchen"].received)
    assert len(kitchen) == 1 and any("水晶虾饺" in r for r in kitchen[0])
    assert any(f"#{order['ticket_no']}" in r for r in kitchen[0])
    assert not any("REPRINT" in r for r in kitchen[0])
    assert len(tickets(printers["bar"].received)) == 1
    assert job_states(shop) == {"printed": 2}


def test_paper_out_waits_then_prints_once_after_refill(settings, shop, printers):
    printers["kitchen"].state = PrinterState.PAPER_OUT
    place(shop)
    with worker(settings):
        deadline = threading.Event()
        while not deadline.wait(0.02):
            row = shop.execute("SELECT state, last_error FROM print_jobs").fetchone()
            if row[1]:
                break
        assert row == ("pending", "paper out")
        assert printers["kitchen"].received == b"" and printers["kitchen"].discarded == b""  # nothing was sent
        printers["kitchen"].state = PrinterState.READY
        assert printers["kitchen"].wait_for(lambda b: TICKET_END in b)
    assert len(tickets(printers["kitchen"].received)) == 1
    assert job_states(shop) == {"printed": 1}


def test_a_connection_lost_mid_job_reprints_marked_reprint(settings, shop, printers):
    printers["kitchen"].drop_after = 40  # the ticket is longer: it is cut off mid-way
    place(shop)
    with worker(settings):
        assert printers["kitchen"].wait_for(lambda b: TICKET_END in b, timeout=10)
    data = printers["kitchen"].received
    assert data.count(TICKET_END) == 1  # one whole ticket, after the cut-off start
    whole = tickets(data[40:])
    assert len(whole) == 1 and whole[0][0] == "*** 重印 REPRINT ***"
    assert shop.execute("SELECT state, attempts FROM print_jobs").fetchone() == ("printed", 2)


def test_a_printer_gone_for_a_while_prints_everything_in_order_after(settings, shop, printers):
    port = printers["kitchen"].address[1]
    printers["kitchen"].stop()
    orders = place(shop, n=5)
    with worker(settings):
        threading.Event().wait(0.3)
        assert shop.execute("SELECT DISTINCT last_error FROM print_jobs").fetchall()[0][0].startswith("unplugged")
        back = VirtualPrinter("kitchen", port=port).start()  # switched on again, same address
        try:
            assert back.wait_for(lambda b: b.count(TICKET_END) == 5, timeout=10)
            assert settle(shop, {"printed": 5})
            numbers = [next(r for r in t if "#" in r).split("#")[1] for t in tickets(back.received)]
        finally:
            back.stop()
    assert numbers == [str(o["ticket_no"]) for o in orders]
    assert job_states(shop) == {"printed": 5}


def test_a_thousand_jobs_on_two_printers_none_lost_none_twice(settings, shop, printers):
    place(shop, n=500, items=("har_gow", "mineral_water"))
    with worker(settings):
        assert printers["kitchen"].wait_for(lambda b: b.count(TICKET_END) >= 500, timeout=60)
        assert printers["bar"].wait_for(lambda b: b.count(TICKET_END) >= 500, timeout=60)
    for name in ("kitchen", "bar"):
        numbers = [int(next(r for r in t if "#" in r).split("#")[1]) for t in tickets(printers[name].received)]
        assert numbers == list(range(1, 501)), name
    assert job_states(shop) == {"printed": 1000}
    assert json.loads(shop.execute("SELECT stations FROM printers WHERE name = 'bar'").fetchone()[0]) == ["bar"]


def test_a_faulty_printer_hands_its_jobs_to_the_fallback_which_says_so(settings, shop, printers):
    with shop:
        shop.execute("UPDATE printers SET fallback = 'bar' WHERE name = 'kitchen'")
    printers["kitchen"].state = PrinterState.COVER_OPEN
    order = place(shop)[0]
    with worker(settings, fallback_after_seconds=0.2):
        assert printers["bar"].wait_for(lambda b: TICKET_END in b, timeout=10)
        assert settle(shop, {"printed": 1})
    ticket = tickets(printers["bar"].received)[0]
    assert any("代打 for printer kitchen" in r for r in ticket) and any(f"#{order['ticket_no']}" in r for r in ticket)
    assert printers["kitchen"].received == b""
    assert shop.execute("SELECT status FROM printer_status WHERE name = 'kitchen'").fetchone() == ("cover_open",)


def test_a_void_printed_on_the_fallback_says_whose_it_is(settings, shop, printers):
    from appliance.db.orders import change_status
    from appliance.domain.orders import Actor, OrderStatus

    with shop:
        shop.execute("UPDATE printers SET fallback = 'bar' WHERE name = 'kitchen'")
    order = place(shop)[0]
    with worker(settings):
        assert printers["kitchen"].wait_for(lambda b: TICKET_END in b, timeout=10)
        assert settle(shop, {"printed": 1})
    printers["kitchen"].state = PrinterState.COVER_OPEN  # then the kitchen's printer fails ...
    with shop:
        change_status(shop, order["id"], OrderStatus.CANCELLED, Actor.STAFF, reason="guest left\x1b@")
    with worker(settings, fallback_after_seconds=0.2):  # ... and the void goes to the bar's printer
        assert printers["bar"].wait_for(lambda b: TICKET_END in b, timeout=10)
        assert settle(shop, {"printed": 2})
    (void,) = tickets(printers["bar"].received)
    assert void[0].strip("* ") == "作废 VOID" and "代打 for printer kitchen" in void
    assert any(f"#{order['ticket_no']}" in r for r in void) and any("1 x 水晶虾饺" in r for r in void)
    assert any(r.startswith("原因 REASON: guest left") for r in void)  # the reason, without its control byte


def test_status_is_recorded_for_the_console_even_when_idle(settings, shop, printers):
    with worker(settings, idle_status_seconds=0.05):
        printers["bar"].state = PrinterState.PAPER_NEAR_END
        stop = threading.Event()
        for _ in range(200):
            got = dict(shop.execute("SELECT name, status FROM printer_status").fetchall())
            if got.get("bar") == "paper_near_end":
                break
            stop.wait(0.02)
    assert got == {"kitchen": "ready", "bar": "paper_near_end"}


def test_test_pages_and_reprints(settings, shop, printers):
    from appliance.db.printing import queue_reprint, queue_test_page

    order = place(shop, items=("har_gow", "mineral_water"))[0]
    with shop:
        queue_test_page(shop, "kitchen")
        queue_reprint(shop, order["id"], "kitchen")
    with worker(settings):
        assert printers["kitchen"].wait_for(lambda b: b.count(TICKET_END) == 3, timeout=10)
        assert settle(shop, {"printed": 4})
    first, test_page, again = tickets(printers["kitchen"].received)
    assert not any("REPRINT" in r for r in first)
    assert any("Test page: kitchen" in r for r in test_page)
    assert again[0] == "*** 重印 REPRINT ***" and again[1:] == first


def test_a_raster_printer_gets_the_ticket_drawn(settings, shop, printers):
    from printers.raster import decode_bands

    with shop:
        shop.execute("UPDATE printers SET text_mode = 'raster', paper_mm = 58 WHERE name = 'kitchen'")
    place(shop)
    with worker(settings):
        assert printers["kitchen"].wait_for(lambda b: TICKET_END in b)
        assert settle(shop, {"printed": 1})
    image = decode_bands(printers["kitchen"].received)
    assert image.width == 384 and image.height > 100
    assert image.convert("L").getextrema()[0] == 0  # there is ink


def test_stickers_print_on_a_receipt_printer_and_scan_back(settings, shop, printers):
    import zxingcpp

    from appliance.cli import main
    from printers.raster import decode_bands
    from tests.conftest import token_for

    assert (
        main(
            [
                "stickers",
                "--data-dir",
                str(settings.data_dir),
                "--public-base-url",
                "http://box.test:8080",
                "--table",
                "A2",
                "--print",
                "kitchen",
            ]
        )
        == 0
    )
    with worker(settings):
        assert printers["kitchen"].wait_for(lambda b: TICKET_END in b)
        assert settle(shop, {"printed": 1})
    image = decode_bands(printers["kitchen"].received)
    codes = zxingcpp.read_barcodes(image.convert("L"))
    assert [c.text for c in codes] == [f"http://box.test:8080/t/{token_for(settings, 'A2')}"]


def test_the_bill_of_a_visit(settings, shop, printers):
    from appliance.cli import main
    from appliance.db.orders import change_status, void_line
    from appliance.db.store_settings import set_store_setting
    from appliance.domain.orders import Actor, OrderStatus

    with shop:
        set_store_setting(shop, "service_charge_bp", 1000)
    kept = place(shop, items=("har_gow", "seasonal_greens"))[0]  # 32.00 + 28.00
    gone = place(shop, items=("mineral_water",))[0]
    with shop:
        change_status(shop, gone["id"], OrderStatus.CANCELLED, Actor.STAFF)
        void_line(shop, kept["id"], 2, "customer changed mind")
    assert main(["printers", "bill", "A1", "bar", "--data-dir", str(settings.data_dir)]) == 0
    with worker(settings):
        assert printers["bar"].wait_for(lambda b: b"BILL" in b and b.rstrip().endswith(TICKET_END), timeout=10)
        assert settle(shop, {"printed": shop.execute("SELECT count(*) FROM print_jobs").fetchone()[0]})
    printed = tickets(printers["bar"].received)
    void = next(t for t in printed if t[0].strip("* ") == "作废 VOID")  # the cancelled water, voided at the bar
    assert any("1 x 矿泉水" in r for r in void)
    bill_rows = printed[-1]
    text = "\n".join(bill_rows)
    assert "账单 BILL" in text and "1 x 水晶虾饺" in text
    assert "清炒时蔬" not in text and "矿泉水" not in text  # voided line and cancelled order left out
    assert next(r for r in bill_rows if r.startswith("小计")).endswith("￥32.00")
    assert next(r for r in bill_rows if r.startswith("服务费")).endswith("￥3.20")
    assert bill_rows[bill_rows.index("合计 TOTAL") + 1].strip() == "￥35.20"
    assert next(r for r in bill_rows if r.startswith("含税")).endswith("￥1.99")  # 6% included in 35.20
    assert bill_rows[-1].strip() == "未付款 UNPAID"


def test_a_device_file_printer(settings, shop, tmp_path):
    """`file:///dev/usb/lp0` on a box: here a plain file stands in for the device node."""
    device = tmp_path / "lp0"
    device.write_bytes(b"")
    with shop:
        shop.execute("UPDATE printers SET uri = ? WHERE name = 'kitchen'", (f"file://{device}",))
        shop.execute("UPDATE printers SET enabled = 0 WHERE name = 'bar'")
    place(shop, n=2)
    with worker(settings):
        assert settle(shop, {"printed": 2})
    assert len(tickets(device.read_bytes())) == 2


def test_a_job_that_cannot_be_drawn_fails_alone(settings, shop, printers):
    with shop:
        shop.execute(
            "INSERT INTO print_jobs (station, kind, printer, payload, created_at)"
            " VALUES ('', 'sticker', 'kitchen', '{\"broken\": true}', 'now')"
        )
    place(shop)
    with worker(settings):
        assert printers["kitchen"].wait_for(lambda b: TICKET_END in b)
        assert settle(shop, {"failed": 1, "printed": 1})
    error = shop.execute("SELECT last_error FROM print_jobs WHERE state = 'failed'").fetchone()[0]
    assert error.startswith("cannot render")
