"""Tablebox load benchmark: start the server on core 0, drive it from core 1 over loopback, print figures.

    .venv/bin/python bench/run.py                 # everything, 8 s per measured run (about 2 minutes)
    .venv/bin/python bench/run.py --quick         # 2 s runs: a smoke check
    .venv/bin/python bench/run.py --only orders   # one part: menu, orders, sd, bare (comma-separated for several)
    .venv/bin/python bench/run.py --http plain    # the server on another HTTP candidate (bench/serve_candidate.py)

It prints figures and never asserts. See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from procs import (
    BENCH_DIR,
    PYTHON,
    SERVER_CORE,
    Child,
    free_port,
    http_request,
    pinned,
    rss_mb,
    run_loadgen,
    wait_first_answer,
)

PARTS = ("menu", "orders", "sd", "bare")
CONCURRENCY = (50, 200)
LINES_PER_ORDER = 3
PACED_ORDERS_PER_S = 1000  # the open-loop order run: 200 clients sending this many orders/s in total

TARGETS = {
    "orders_rps": 1000.0,  # orders/s on normal disk
    "menu_ratio": 40.0,  # % of the bare Litestar app's menu GET rate
    "p99_ms": 50.0,  # at 200 clients
    "sd_orders_rps": 500.0,  # orders/s on the simulated SD card
    "rss_mb": 120.0,  # server RSS after the load
    "start_s": 2.0,  # process start to first 200 on /healthz
}


# ----------------------------------------------------------------------------------------------- setup


def server_env(vfs: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TABLEBOX_")}
    env.update(
        {
            "TABLEBOX_RATE_LIMIT_TABLE_PER_MINUTE": "0",
            "TABLEBOX_RATE_LIMIT_ADDRESS_PER_MINUTE": "0",
            # the load generator is one address standing for 200 phones
            "TABLEBOX_MAX_CONNECTIONS_PER_ADDRESS": "0",
            "TABLEBOX_LOG_FORMAT": "json",
            "TABLEBOX_LOG_LEVEL": "info",
        }
    )
    if vfs:
        env["TABLEBOX_SQLITE_VFS"] = vfs
    return env


def make_store(data_dir: Path) -> list[str]:
    """The demo store in data_dir; returns every table's token."""
    from appliance.demo import ensure_demo_store
    from appliance.settings import load_settings
    from appliance.store import table_urls

    data_dir.mkdir(parents=True, exist_ok=True)
    settings = load_settings(environ={}, data_dir=data_dir)
    ensure_demo_store(settings)
    return [url.rsplit("/t/", 1)[1] for _, _, url in table_urls(settings)]


def start_server(
    name: str, data_dir: Path, port: int, slow: bool = False, http: str = "guarded"
) -> tuple[Child, float]:
    """Start `tablebox serve` (or the slow-sync launcher, or the server on another HTTP candidate) pinned to the
    server core; logs go to data_dir/server.log. Returns the child and the seconds from process start to the first
    200 on /healthz."""
    if slow:
        argv = [PYTHON, str(BENCH_DIR / "serve_slowsync.py")]
    elif http != "guarded":
        argv = [PYTHON, str(BENCH_DIR / "serve_candidate.py"), http, "serve"]
    else:
        argv = [PYTHON, "-m", "appliance", "serve"]
    argv += ["--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", str(port)]
    child = Child(
        name, pinned(SERVER_CORE, argv), env=server_env("slowsync" if slow else None), log_path=data_dir / "server.log"
    )
    try:
        return child, wait_first_answer(child, port, "/healthz")
    except RuntimeError:
        tail = (data_dir / "server.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{name} did not start; end of its log:\n{tail}") from None


def fetch_menu(port: int, token: str) -> bytes:
    status, body = http_request(port, "GET", f"/api/v1/tables/{token}/menu?lang=zh")
    if status != 200:
        raise RuntimeError(f"menu GET answered {status}: {body[:300]!r}")
    return body


def candidate_lines(menu: dict[str, Any]) -> list[dict[str, Any]]:
    """One valid-looking order line per orderable item: first variant, min_choices options per group."""
    lines = []
    for category in menu["categories"]:
        for item in category["items"]:
            if item.get("sold_out") or not item.get("available_now", True):
                continue
            variants = [v for v in item.get("variants") or [] if not v.get("sold_out")]
            if item.get("variants") and not variants:
                continue
            option_ids: list[int] = []
            ok = True
            for group in item.get("option_groups") or []:
                free = [o["id"] for o in group["options"] if not o.get("sold_out")]
                need = int(group.get("min_choices") or 0)
                if len(free) < need:
                    ok = False
                    break
                option_ids += free[:need]
            if ok:
                lines.append(
                    {
                        "item_id": item["id"],
                        "quantity": 1,
                        "variant_id": variants[0]["id"] if variants else None,
                        "option_ids": option_ids,
                    }
                )
    return lines


def probe_lines(port: int, token: str, lines: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Send one order per candidate line with quantity 99: an item with a stock count below that gets
    422 without using any stock, so it is left out (the load would otherwise sell it out and get 422s).
    Returns (JSON-encoded good lines, notes about the left-out items)."""
    good, dropped = [], []
    tag = f"{random.getrandbits(24):06x}"
    for line in lines:
        body = json.dumps({"client_key": f"probe-{tag}-{line['item_id']}", "lines": [dict(line, quantity=99)]})
        status, answer = http_request(port, "POST", f"/api/v1/tables/{token}/orders", body.encode())
        if status == 201:
            good.append(json.dumps(line, separators=(",", ":")))
        else:
            try:
                code = json.loads(answer).get("error", {}).get("code") or json.loads(answer).get("code")
            except (ValueError, AttributeError):
                code = answer[:80]
            dropped.append(f"item {line['item_id']}: {status} {code}")
    return good, dropped


def log_summary(path: Path) -> str:
    counts: dict[str, int] = {}
    events: dict[str, int] = {}
    other = 0
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for raw in fh:
                try:
                    entry = json.loads(raw)
                except ValueError:
                    other += 1
                    continue
                level = entry.get("level", "?")
                counts[level] = counts.get(level, 0) + 1
                if level not in ("info", "debug"):
                    key = f"{level}:{entry.get('event')}"
                    events[key] = events.get(key, 0) + 1
    except OSError:
        return "no log"
    parts = [f"{n} {lvl}" for lvl, n in sorted(counts.items())]
    if other:
        parts.append(f"{other} non-JSON lines")
    if events:
        parts.append("problems: " + ", ".join(f"{k} x{n}" for k, n in sorted(events.items())))
    return ", ".join(parts) or "empty"


# ----------------------------------------------------------------------------------------------- runs


class Bench:
    def __init__(self, duration: float, warmup: float, workdir: Path, http: str = "guarded") -> None:
        self.http = http
        self.duration = duration
        self.warmup = warmup
        self.workdir = workdir
        self.results: dict[str, dict[str, Any]] = {}
        self.figures: dict[str, Any] = {}
        self.notes: list[str] = []

    def load(
        self,
        label: str,
        child: Child,
        port: int,
        kind: str,
        conns: int,
        tokens: list[str],
        lines: list[str] | None = None,
        rate: float = 0,
    ) -> dict[str, Any]:
        cfg = {
            "host": "127.0.0.1",
            "port": port,
            "conns": conns,
            "warmup": self.warmup,
            "duration": self.duration,
            "kind": kind,
            "tokens": tokens,
            "lang": "zh",
            "lines": lines or [],
            "lines_per_order": LINES_PER_ORDER,
            "key_prefix": f"b{random.getrandbits(32):08x}",
            "rate": rate,
        }
        r = run_loadgen(cfg, server_pid=child.pid, workdir=self.workdir)
        self.results[label] = r
        flag = "  << load generator saturated: figure is a floor" if r["loadgen_cpu_pct"] > 90 else ""
        print(
            f"  {label:<28} {r['rps']:>8.0f} ok/s  p50 {r['p50_ms']:>7.2f} ms  p99 {r['p99_ms']:>7.2f} ms  "
            f"max {r['max_ms']:>7.1f} ms  server cpu {r['server_cpu_pct']:>3.0f}%  loadgen cpu "
            f"{r['loadgen_cpu_pct']:>3.0f}%{flag}",
            flush=True,
        )
        if r["non_2xx"] or r["conn_errors"]:
            print(
                f"    !! {r['non_2xx']} non-2xx answers, {r['conn_errors']} connection errors; statuses "
                f"{r['statuses']}",
                flush=True,
            )
            for sample in r["error_samples"]:
                print(f"       {sample}", flush=True)
        return r

    def main_server(self, parts: set[str]) -> bytes:
        data_dir = self.workdir / "main"
        tokens = make_store(data_dir)
        port = free_port()
        print(f"tablebox serve (core {SERVER_CORE}, HTTP: {self.http}), demo store in {data_dir}", flush=True)
        child, started = start_server("tablebox", data_dir, port, http=self.http)
        self.figures["start_s"] = started
        print(f"  start to first answer: {started * 1000:.0f} ms", flush=True)
        try:
            menu = fetch_menu(port, tokens[0])
            print(f"  menu: {len(menu)} bytes", flush=True)
            if "menu" in parts:
                for conns in CONCURRENCY:
                    self.load(f"menu GET, {conns} clients", child, port, "get", conns, tokens)
            if "orders" in parts:
                lines, dropped = probe_lines(port, tokens[0], candidate_lines(json.loads(menu)))
                print(
                    f"  order lines: {len(lines)} orderable items, {LINES_PER_ORDER} lines per order; "
                    f"left out: {'; '.join(dropped) or 'none'}",
                    flush=True,
                )
                for conns in CONCURRENCY:
                    self.load(f"order POST, {conns} clients", child, port, "order", conns, tokens, lines)
                self.load(
                    f"order POST, 200 at {PACED_ORDERS_PER_S}/s",
                    child,
                    port,
                    "order",
                    200,
                    tokens,
                    lines,
                    rate=PACED_ORDERS_PER_S,
                )
            if parts & {"menu", "orders"}:
                rss, hwm = rss_mb(child.pid)
                self.figures["rss_mb"], self.figures["hwm_mb"] = rss, hwm
                print(f"  server RSS after the load: {rss:.1f} MB (peak {hwm:.1f} MB)", flush=True)
        finally:
            child.stop()
        print(f"  server log: {log_summary(data_dir / 'server.log')}", flush=True)
        return menu

    def bare(self, menu: bytes) -> None:
        menu_file = self.workdir / "menu.json"
        menu_file.write_bytes(menu)
        port = free_port()
        print(f"bare Litestar app (core {SERVER_CORE}) serving the same {len(menu)} menu bytes", flush=True)
        child = Child(
            "bare-app",
            pinned(
                SERVER_CORE,
                [PYTHON, str(BENCH_DIR / "bare_app.py"), "--menu-file", str(menu_file), "--port", str(port)],
            ),
            log_path=self.workdir / "bare.log",
        )
        try:
            wait_first_answer(child, port, "/api/v1/tables/x/menu?lang=zh")
            for conns in CONCURRENCY:
                self.load(f"bare menu GET, {conns} clients", child, port, "get", conns, ["x"])
        finally:
            child.stop()

    def sd(self) -> None:
        data_dir = self.workdir / "sd"
        tokens = make_store(data_dir)
        port = free_port()
        print(
            f"tablebox serve on the simulated SD card (VFS slowsync: +10 ms per sync), core {SERVER_CORE}", flush=True
        )
        child, started = start_server("tablebox-slowsync", data_dir, port, slow=True)
        self.figures["sd_start_s"] = started
        print(f"  start to first answer: {started * 1000:.0f} ms", flush=True)
        try:
            menu = fetch_menu(port, tokens[0])
            lines, dropped = probe_lines(port, tokens[0], candidate_lines(json.loads(menu)))
            print(f"  order lines: {len(lines)} orderable items; left out: {'; '.join(dropped) or 'none'}", flush=True)
            self.load("SD order POST, 1 client", child, port, "order", 1, tokens, lines)
            self.load("SD order POST, 200 clients", child, port, "order", 200, tokens, lines)
        finally:
            child.stop()
        print(f"  server log: {log_summary(data_dir / 'server.log')}", flush=True)


# ----------------------------------------------------------------------------------------------- summary


def fmt(value: float | None, unit: str, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}{unit}"


def summary(b: Bench) -> None:
    r, f = b.results, b.figures

    def rps(label: str) -> float | None:
        return r[label]["rps"] if label in r else None

    def p99(label: str) -> float | None:
        return r[label]["p99_ms"] if label in r else None

    def p50(label: str) -> float | None:
        return r[label]["p50_ms"] if label in r else None

    def verdict(value: float | None, target: float, higher_is_better: bool) -> str:
        if value is None or math.isnan(value):
            return "-"
        return "yes" if (value >= target if higher_is_better else value < target) else "NO"

    rows: list[tuple[str, str, str, str]] = []

    def row(
        name: str, value: float | None, shown: str, target: float | None, target_text: str, higher: bool = True
    ) -> None:
        rows.append((name, shown, target_text, verdict(value, target, higher) if target is not None else ""))

    for conns in CONCURRENCY:
        v = rps(f"order POST, {conns} clients")
        row(f"orders/s, normal disk, {conns} clients", v, fmt(v, "/s"), TARGETS["orders_rps"], ">= 1,000/s")
    for conns in CONCURRENCY:
        ours, bare = rps(f"menu GET, {conns} clients"), rps(f"bare menu GET, {conns} clients")
        row(f"menu GET/s, {conns} clients", None, fmt(ours, "/s"), None, "")
        row(f"bare app menu GET/s, {conns} clients", None, fmt(bare, "/s"), None, "")
        ratio = 100.0 * ours / bare if ours and bare else None
        row(f"menu GET vs bare app, {conns} clients", ratio, fmt(ratio, " %"), TARGETS["menu_ratio"], ">= 40 %")
    for label in ("menu GET", "order POST"):
        for conns in CONCURRENCY:
            name = f"{label}, {conns} clients"
            if conns == 200:
                row(f"p99 {name}", p99(name), fmt(p99(name), " ms", 1), TARGETS["p99_ms"], "< 50 ms", higher=False)
            else:
                row(f"p99 {name}", None, fmt(p99(name), " ms", 1), None, "")
            row(f"p50 {name}", None, fmt(p50(name), " ms", 1), None, "")
    name = f"order POST, 200 at {PACED_ORDERS_PER_S}/s"
    row(
        f"p99 orders, 200 clients paced at {PACED_ORDERS_PER_S:,}/s",
        p99(name),
        fmt(p99(name), " ms", 1),
        TARGETS["p99_ms"],
        "< 50 ms (open loop)",
        higher=False,
    )
    row(f"p50 orders, 200 clients paced at {PACED_ORDERS_PER_S:,}/s", None, fmt(p50(name), " ms", 1), None, "")
    v = rps("SD order POST, 200 clients")
    row("orders/s, SD-card VFS, 200 clients", v, fmt(v, "/s"), TARGETS["sd_orders_rps"], ">= 500/s")
    row("p99 SD order POST, 200 clients", None, fmt(p99("SD order POST, 200 clients"), " ms", 1), None, "")
    v = rps("SD order POST, 1 client")
    row("orders/s, SD-card VFS, 1 client", v, fmt(v, "/s"), 100.0, "< 100/s (slowdown real)", higher=False)
    v = f.get("rss_mb")
    row("server RSS after load", v, fmt(v, " MB", 1), TARGETS["rss_mb"], "< 120 MB", higher=False)
    v = f.get("start_s")
    row("start to first answer", v, fmt(v, " s", 2), TARGETS["start_s"], "< 2 s", higher=False)
    v = f.get("sd_start_s")
    if v is not None:
        row("start to first answer (SD VFS)", v, fmt(v, " s", 2), None, "")

    w0 = max(len(x[0]) for x in rows)
    w1 = max(len(x[1]) for x in rows)
    w2 = max(len(x[2]) for x in rows)
    print()
    print(
        f"SUMMARY  ({b.duration:g} s measured per run after {b.warmup:g} s warm-up; server on core {SERVER_CORE}, "
        f"HTTP {b.http}, load generator on core 1)"
    )
    print(f"{'figure':<{w0}}  {'measured':>{w1}}  {'target':<{w2}}  met")
    print("-" * (w0 + w1 + w2 + 9))
    for name, shown, target, met in rows:
        print(f"{name:<{w0}}  {shown:>{w1}}  {target:<{w2}}  {met}")
    errors = {k: (v["non_2xx"], v["conn_errors"]) for k, v in r.items() if v["non_2xx"] or v["conn_errors"]}
    print("-" * (w0 + w1 + w2 + 9))
    if errors:
        for k, (n, c) in errors.items():
            print(f"!! {k}: {n} non-2xx answers, {c} connection errors (not counted in the rates)")
    elif r:
        print("every measured answer was 2xx; no connection errors")
    saturated = [k for k, v in r.items() if v["loadgen_cpu_pct"] > 90]
    if saturated:
        print("!! load generator near 100% CPU (figure is a lower bound) in: " + ", ".join(saturated))


# ----------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds measured per run (default 8)")
    parser.add_argument(
        "--warmup", type=float, default=None, help="seconds of warm-up per run (default 1.5; 0.5 with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help="2 s runs: a smoke check")
    parser.add_argument("--only", default="", help="one part (menu, orders, sd, bare) or several, comma-separated")
    parser.add_argument(
        "--http",
        default="guarded",
        choices=("guarded", "plain", "h11"),
        help="the main server's HTTP candidate (bench/serve_candidate.py): guarded (default, what tablebox runs), "
        "plain uvicorn+httptools, or uvicorn+h11",
    )
    args = parser.parse_args(argv)
    parts = {p.strip() for p in args.only.split(",") if p.strip()} or set(PARTS)
    unknown = parts - set(PARTS)
    if unknown:
        parser.error(f"--only: unknown part(s) {', '.join(sorted(unknown))}; choose from {', '.join(PARTS)}")
    args.parts = parts
    if args.quick:
        args.duration = 2.0
    if args.warmup is None:
        args.warmup = 0.5 if args.quick else 1.5
    return args


def _interrupt(signum: int, frame: Any) -> None:
    # Ctrl-C, kill, or a closed terminal: unwind through the finally that stops the servers. Restore
    # the default first so a second Ctrl-C during the clean-up does not abort the clean-up itself.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    if shutil.which("taskset") is None:
        print("taskset not found (util-linux): cannot pin the processes", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="tablebox-bench-"))
    bench = Bench(args.duration, args.warmup, workdir, args.http)
    began = time.perf_counter()
    code = 0
    try:
        menu = bench.main_server(args.parts) if args.parts & {"menu", "orders", "bare"} else b""
        if "bare" in args.parts:
            bench.bare(menu)
        if "sd" in args.parts:
            bench.sd()
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the servers", file=sys.stderr)
        code = 130
    except Exception as exc:
        print(f"\nbench failed: {exc}", file=sys.stderr)
        code = 1
    finally:
        Child.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    summary(bench)
    print(f"(whole run: {time.perf_counter() - began:.0f} s)")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
