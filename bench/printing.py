"""Printing figures: render time and bytes per ticket for each text mode, and order-to-paper latency.

    .venv/bin/python bench/printing.py [--seconds 10] [--rate 20]

Order to paper: a real server and a real `tablebox printd`, three virtual printers on loopback (two serving
the kitchen, one the bar); orders arrive at --rate per second; for each order, the time from its 201 to
the last byte of its kitchen ticket arriving at a printer. Prints figures, never asserts.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from appliance.db.connection import open_connection
from appliance.demo import ensure_demo_store
from appliance.settings import BoxSettings
from appliance.store import table_urls
from bench.procs import PYTHON, Child, free_port, wait_first_answer
from printers.document import kitchen_ticket
from printers.render import render
from printers.virtual import VirtualPrinter

TICKET_END = b"\x1dV\x00"


def typical_order() -> dict:
    names = [
        ("宫保鸡丁", "Kung pao chicken"),
        ("麻婆豆腐", "Mapo tofu"),
        ("担担面", "Dan dan noodles"),
        ("小笼包", "Xiaolongbao"),
        ("清炒时蔬", "Seasonal greens"),
    ]
    lines = [
        {
            "line_no": i + 1,
            "names": {"zh": z, "en": e},
            "variant_names": {"zh": "大份", "en": "Large"} if i % 2 else None,
            "options": [{"names": {"zh": "微辣", "en": "Mild"}}, {"names": {"zh": "加蛋", "en": "Egg"}}][: i % 3],
            "quantity": 1 + i % 3,
            "note": "少油少盐" if i == 2 else "",
            "station": "kitchen",
            "status": "active",
        }
        for i, (z, e) in enumerate(names)
    ]
    return {
        "table": "A12",
        "ticket_no": 128,
        "channel": "lan",
        "created_at": "2026-11-21T04:05:00.000000Z",
        "note": "生日聚会，请先上凉菜",
        "lines": lines,
    }


def render_figures() -> None:
    order = typical_order()
    doc = kitchen_ticket(order, "kitchen", lang="zh", timezone="Asia/Shanghai")
    print(f"a typical ticket: {len(doc.lines)} lines, 5 dishes with options and notes")
    modes = [
        ("gb18030", lambda mm: render(doc, paper_mm=mm, mode="gb18030")),
        ("codepage", lambda mm: render(doc, paper_mm=mm, mode="codepage")),
    ]
    try:
        from printers.raster import render_raster

        modes.append(("raster", lambda mm: render_raster(doc, paper_mm=mm)))
    except ImportError:
        print("  (raster mode not available in this checkout)")
    for mode, fn in modes:
        for mm in (58, 80):
            fn(mm)  # warm caches (fonts)
            runs = 50 if mode != "raster" else 20
            t = time.perf_counter()
            for _ in range(runs):
                data = fn(mm)
            ms = (time.perf_counter() - t) / runs * 1000
            print(f"  render {mode:<9} {mm} mm: {ms:7.2f} ms per ticket, {len(data):6d} bytes")


def paper_latency(seconds: float, rate: float) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="tablebox-print-bench-"))
    printers = [VirtualPrinter(n).start() for n in ("kitchen", "kitchen2", "bar")]
    server = printd = None
    try:
        settings = BoxSettings(data_dir=tmp / "store", public_base_url="http://127.0.0.1")
        ensure_demo_store(settings)
        conn = open_connection(settings.db_path)
        with conn:
            conn.execute("DELETE FROM printers")
            for p, stations in zip(printers, ('["kitchen"]', '["kitchen"]', '["bar"]'), strict=True):
                conn.execute("INSERT INTO printers (name, uri, stations) VALUES (?, ?, ?)", (p.name, p.uri, stations))
        har_gow = conn.execute("SELECT id FROM items WHERE key = 'har_gow'").fetchone()[0]
        water = conn.execute("SELECT id FROM items WHERE key = 'mineral_water'").fetchone()[0]
        conn.close()
        tokens = [url.rsplit("/", 1)[1] for _, _, url in table_urls(settings)]
        port = free_port()
        env = {
            "TABLEBOX_RATE_LIMIT_TABLE_PER_MINUTE": "0",
            "TABLEBOX_RATE_LIMIT_ADDRESS_PER_MINUTE": "0",
            "TABLEBOX_LOG_FORMAT": "json",
        }
        server = Child(
            "server",
            [
                PYTHON,
                "-m",
                "appliance",
                "serve",
                "--data-dir",
                str(settings.data_dir),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            log_path=tmp / "server.log",
        )
        printd = Child(
            "printd",
            [PYTHON, "-m", "appliance", "printd", "--data-dir", str(settings.data_dir)],
            env=env,
            log_path=tmp / "printd.log",
        )
        wait_first_answer(server, port, "/healthz")
        arrived: dict[int, float] = {}
        stop = threading.Event()

        def watch(printer: VirtualPrinter) -> None:
            seen = 0
            while not stop.is_set():
                data = printer.received
                while True:
                    end = data.find(TICKET_END, seen)
                    if end == -1:
                        break
                    match = re.search(rb"#(\d+)", data[seen:end])
                    if match:
                        arrived.setdefault(int(match.group(1)), time.perf_counter())
                    seen = end + len(TICKET_END)
                stop.wait(0.002)

        watchers = [threading.Thread(target=watch, args=(p,), daemon=True) for p in printers]
        for w in watchers:
            w.start()
        acked: dict[int, float] = {}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            start = time.perf_counter()
            n = 0
            while time.perf_counter() - start < seconds:
                due = start + n / rate
                time.sleep(max(0.0, due - time.perf_counter()))
                r = client.post(
                    f"/api/v1/tables/{tokens[n % len(tokens)]}/orders",
                    json={
                        "client_key": uuid.uuid4().hex,
                        "lines": [{"item_id": har_gow, "quantity": 1}, {"item_id": water, "quantity": 1}],
                    },
                )
                if r.status_code == 201:
                    acked[r.json()["ticket_no"]] = time.perf_counter()
                n += 1
        deadline = time.perf_counter() + 10
        while len([t for t in acked if t in arrived]) < len(acked) and time.perf_counter() < deadline:
            time.sleep(0.01)
        stop.set()
        lat = sorted((arrived[t] - acked[t]) * 1000 for t in acked if t in arrived)
        missing = len(acked) - len(lat)
        print(
            f"order to paper: {len(acked)} orders at {rate:g}/s over {seconds:g} s, 3 printers;"
            f" {len(lat)} kitchen tickets arrived, {missing} missing"
        )
        if lat:
            p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
            print(
                f"  p50 {statistics.median(lat):.1f} ms   p99 {p99:.1f} ms   max {lat[-1]:.1f} ms   (target p99 < 500 ms)"
            )
    finally:
        for child in (printd, server):
            if child is not None:
                child.stop()
        for p in printers:
            p.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=20.0)
    args = parser.parse_args()
    render_figures()
    paper_latency(args.seconds, args.rate)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
