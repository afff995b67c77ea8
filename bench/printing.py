"""Printing figures: render time and bytes per ticket for each text mode, and order-to-paper latency.

    .venv/bin/python bench/printing.py [--runs 5] [--orders 50] [--phones 10] [--rate 0 | --rate 20 --seconds 10]

Burst (the default): a real server and a real `tablebox printd`, two virtual printers on loopback (kitchen and
bar); --orders orders, each with a kitchen dish and a bar drink, sent at once by --phones phones (each sends its
share one after another); for each ticket, the time from its order's 201 to the printer receiving the ticket's
cut (the virtual printer reports each piece as it arrives). --runs bursts on one store, a second apart; each
prints p50/p99/max and where the time went (from the server's insert stamp, the 201, and printd's per-job log).
With --rate: orders at that rate per second for --seconds instead (three printers, two for the kitchen).
Prints figures, never asserts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
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


@dataclass
class BenchBox:
    """A demo store served by a real server and printed by a real `tablebox printd` on virtual printers."""

    tmp: Path
    settings: BoxSettings
    printers: dict[str, VirtualPrinter]
    port: int
    tokens: list[str]
    dish: int  # har gow, a kitchen dish
    drink: int  # mineral water, a bar drink


@contextlib.contextmanager
def bench_box(prefix: str, stations: dict[str, str]) -> Iterator[BenchBox]:
    """Printers by name with the station each prints, the store, the server and printd up; all gone after."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    printers = {name: VirtualPrinter(name).start() for name in stations}
    server = printd = None
    try:
        settings = BoxSettings(data_dir=tmp / "store", public_base_url="http://127.0.0.1")
        ensure_demo_store(settings)
        conn = open_connection(settings.db_path)
        with conn:
            conn.execute("DELETE FROM printers")
            for name, p in printers.items():
                conn.execute(
                    "INSERT INTO printers (name, uri, stations) VALUES (?, ?, ?)",
                    (name, p.uri, json.dumps([stations[name]])),
                )
        dish = conn.execute("SELECT id FROM items WHERE key = 'har_gow'").fetchone()[0]
        drink = conn.execute("SELECT id FROM items WHERE key = 'mineral_water'").fetchone()[0]
        conn.close()
        tokens = [url.rsplit("/", 1)[1] for _, _, url in table_urls(settings)]
        port = free_port()
        env = {
            "TABLEBOX_RATE_LIMIT_TABLE_PER_MINUTE": "0",
            "TABLEBOX_RATE_LIMIT_ADDRESS_PER_MINUTE": "0",
            "TABLEBOX_LOG_FORMAT": "json",
        }
        argv = [PYTHON, "-m", "appliance"]
        server = Child(
            "server",
            [*argv, "serve", "--data-dir", str(settings.data_dir), "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            log_path=tmp / "server.log",
        )
        printd = Child(
            "printd", [*argv, "printd", "--data-dir", str(settings.data_dir)], env=env, log_path=tmp / "printd.log"
        )
        wait_first_answer(server, port, "/healthz")
        yield BenchBox(tmp, settings, printers, port, tokens, dish, drink)
    finally:
        for child in (printd, server):
            if child is not None:
                child.stop()
        for p in printers.values():
            p.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def paper_latency(seconds: float, rate: float) -> None:
    with bench_box("tablebox-print-bench-", {"kitchen": "kitchen", "kitchen2": "kitchen", "bar": "bar"}) as box:
        printers, port, tokens, har_gow, water = box.printers.values(), box.port, box.tokens, box.dish, box.drink
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


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _wall(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


STAGES = (
    ("insert to 201", "the server: order stored (job stamped) to its 201 at the phone"),
    ("201 to picked", "printd: wake-up, and the jobs ahead on the same printer"),
    ("status before", "DLE EOT round trip before the job (none when the last answer is fresh)"),
    ("render", "the job's document read from the store and rendered"),
    ("store sending", "the 'sending' commit"),
    ("send+confirm", "the bytes and DLE EOT behind them, to the answer: they arrived"),
    ("store printed", "the 'printed' commit"),
)


def burst(runs: int, orders: int, phones: int, timeline: bool = False) -> None:
    """--runs bursts of --orders orders from --phones phones at once; figures per run, and the breakdown."""
    with bench_box("tablebox-print-burst-", {"kitchen": "kitchen", "bar": "bar"}) as box:
        tmp, printers, port, tokens, dish, drink = box.tmp, box.printers, box.port, box.tokens, box.dish, box.drink
        conn = open_connection(box.settings.db_path)

        cuts: dict[tuple[str, int], float] = {}  # (printer, ticket_no) -> perf_counter of the cut's arrival
        lock = threading.Lock()

        def watcher(name: str) -> Callable[[bytes, float], None]:
            buf = bytearray()

            def on_data(data: bytes, at: float) -> None:
                buf.extend(data)
                while (end := buf.find(TICKET_END)) != -1:
                    match = re.search(rb"#(\d+)", bytes(buf[:end]))
                    if match:
                        with lock:
                            cuts.setdefault((name, int(match.group(1))), at)
                    del buf[: end + len(TICKET_END)]

            return on_data

        for name, p in printers.items():
            p.on_data = watcher(name)
        clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) for _ in range(phones)]
        for c in clients:
            c.get("/healthz")  # connected before the burst, as phones on the page are
        # printd is up once it has printed a first ticket: a warm-up order
        acked_warm = (
            clients[0]
            .post(
                f"/api/v1/tables/{tokens[0]}/orders",
                json={"client_key": uuid.uuid4().hex, "lines": [{"item_id": dish, "quantity": 1}]},
            )
            .json()["ticket_no"]
        )
        deadline = time.perf_counter() + 30
        while ("kitchen", acked_warm) not in cuts and time.perf_counter() < deadline:
            time.sleep(0.02)
        load = os.getloadavg()[0]
        print(
            f"burst: {orders} orders (a kitchen dish and a bar drink each) from {phones} phones at once,"
            f" 2 printers, {runs} runs (load {load:.2f} before)"
        )
        stage_values: dict[str, list[float]] = {name: [] for name, _ in STAGES}
        log_seen = 0
        for run in range(runs):
            acked: dict[int, tuple[float, float, int]] = {}  # ticket_no -> (perf, wall, order id)
            go = threading.Barrier(phones + 1)

            def phone(k: int, go: threading.Barrier, acked: dict[int, tuple[float, float, int]]) -> None:
                client = clients[k]
                go.wait()
                for n in range(k, orders, phones):
                    r = client.post(
                        f"/api/v1/tables/{tokens[n % len(tokens)]}/orders",
                        json={
                            "client_key": uuid.uuid4().hex,
                            "lines": [{"item_id": dish, "quantity": 1}, {"item_id": drink, "quantity": 1}],
                        },
                    )
                    now, wall = time.perf_counter(), time.time()
                    if r.status_code == 201:
                        body = r.json()
                        with lock:
                            acked[body["ticket_no"]] = (now, wall, body["id"])

            threads = [threading.Thread(target=phone, args=(k, go, acked)) for k in range(phones)]
            for t in threads:
                t.start()
            go.wait()
            start, start_wall = time.perf_counter(), time.time()
            for t in threads:
                t.join()
            wanted = [(p, t) for t in acked for p in printers]
            deadline = time.perf_counter() + 20
            while any(w not in cuts for w in wanted) and time.perf_counter() < deadline:
                time.sleep(0.01)
            lat = sorted((cuts[(p, t)] - acked[t][0]) * 1000 for p, t in wanted if (p, t) in cuts)
            last_201 = (max(a[0] for a in acked.values()) - start) * 1000 if acked else 0.0
            missing = len(wanted) - len(lat)
            print(
                f"  run {run + 1}: {len(acked)} orders acknowledged, last 201 at {last_201:.0f} ms;"
                f" {len(lat)} tickets, {missing} missing;"
                f" p50 {statistics.median(lat):.1f} ms  p99 {_pct(lat, 0.99):.1f} ms  max {lat[-1]:.1f} ms"
                f"  (load {os.getloadavg()[0]:.2f})"
            )
            # where the time went: the job's insert stamp, the 201, and printd's own per-job log
            by_order = {a[2]: (t, a) for t, a in acked.items()}
            created = dict(
                conn.execute(
                    f"SELECT id, created_at FROM print_jobs WHERE order_id IN ({','.join(str(o) for o in by_order)})"
                )
            )
            text = (tmp / "printd.log").read_text(errors="replace")
            for line in text[log_seen:].splitlines():
                if '"print.printed"' not in line:
                    continue
                event = json.loads(line)
                if event.get("order_id") not in by_order or "ms" not in event:
                    continue
                ticket, (_, wall, _) = by_order[event["order_id"]]
                stage_values["insert to 201"].append((wall - _wall(created[event["job"]])) * 1000)
                stage_values["201 to picked"].append((event["picked_at"] - wall) * 1000)
                for (name, _), ms in zip(STAGES[2:], event["ms"], strict=False):
                    stage_values[name].append(ms)
                if timeline:
                    rel = (cuts.get((event["printer"], ticket), start) - start) * 1000
                    print(
                        f"      {event['printer']:<8} #{ticket:<4} inserted {(_wall(created[event['job']]) - start_wall) * 1000:6.1f}"
                        f"  201 {(wall - start_wall) * 1000:6.1f}  picked {(event['picked_at'] - start_wall) * 1000:6.1f}"
                        f"  cut {rel:6.1f}  stages {event['ms']}"
                    )
            log_seen = len(text)
            time.sleep(1.0)
        print("  where a ticket's time went, all runs (ms):     p50      p99      max")
        for name, what in STAGES:
            values = stage_values[name]
            if values:
                print(f"    {name:<14} {_pct(values, 0.5):8.1f} {_pct(values, 0.99):8.1f} {max(values):8.1f}   {what}")
        for c in clients:
            c.close()
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--orders", type=int, default=50)
    parser.add_argument("--phones", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=0.0, help="orders per second instead of bursts (0: bursts)")
    parser.add_argument("--timeline", action="store_true", help="each ticket's times (ms from the burst's start)")
    parser.add_argument("--no-render", action="store_true", help="skip the render figures")
    args = parser.parse_args()
    if not args.no_render:
        render_figures()
    if args.rate:
        paper_latency(args.seconds, args.rate)
    else:
        burst(args.runs, args.orders, args.phones, args.timeline)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
