"""Sync through a flaky ERP: the drain rate of a backlog healthy and with 30 % 503s and 10 % commit-then-drop, and
`tablebox syncd`'s memory over a long run under load.

    .venv/bin/python bench/erp_sync.py [--orders 2000] [--in-flight 8] [--minutes 0] [--rate 15] [--trace]

A real `tablebox syncd` process (the code the box runs) delivers a demo store's outbox to the generic REST fake ERP
(tests/fakes/erp_rest.py, in this process). Parts:

- drain, healthy: --orders orders queued while the fake is down; syncd starts and the fake comes back; rows/s
  from then to the last delivery;
- drain, flaky: the same on a fresh store with the fake answering 30 % of requests 503 and dropping 10 % of the
  connections after committing (`error_rate`, `drop_after_commit_rate`): rows/s up to 90 % of the backlog (the
  throughput while there is a backlog) and to the last row (the tail is the unluckiest row's backoff), beside the
  healthy rate (target: at least half); each order must reach the fake exactly once;
- memory (--minutes N): orders arrive at --rate a second through the web API (every 10th also cancelled) while
  the fake stays flaky; syncd's RSS sampled once a minute. --trace runs syncd under tracemalloc and prints what
  grew most between the second minute and the end (file and line), for finding a leak.

Prints figures, never asserts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

# bench/ comes first on the path when this runs as a script: put the repository first, as every bench script does.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from appliance.db.connection import open_connection, write_transaction  # noqa: E402
from appliance.demo import ensure_demo_store  # noqa: E402
from appliance.settings import BoxSettings  # noqa: E402
from bench.procs import rss_mb  # noqa: E402
from bench.sync_drain import queue_orders  # noqa: E402
from tests.fakes.erp_rest import FakeRestERP  # noqa: E402
from tests.sync.syncd import seed_catalog, write_settings  # noqa: E402

HERE = Path(__file__).resolve()
TRACE_EVERY_SECONDS = 60.0


# -- the syncd child: `tablebox syncd`, optionally under tracemalloc ------------------------------------------------
def as_syncd(argv: list[str]) -> int:
    """Run `tablebox syncd` with argv; with TBX_TRACE=<file>, under tracemalloc, writing each minute the lines whose
    allocations grew most since the first minute."""
    trace = os.environ.get("TBX_TRACE")
    if trace:
        import tracemalloc

        tracemalloc.start(12)

        def dump() -> None:
            import linecache

            first: tracemalloc.Snapshot | None = None
            minute = 0
            while True:
                time.sleep(TRACE_EVERY_SECONDS)
                minute += 1
                snap = tracemalloc.take_snapshot().filter_traces(
                    (tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, linecache.__file__))
                )
                if first is None:
                    first = snap
                    continue
                lines = [f"== minute {minute}: traced {tracemalloc.get_traced_memory()[0] / 1e6:.1f} MB"]
                for stat in snap.compare_to(first, "traceback")[:8]:
                    lines.append(f"{stat.size_diff / 1e3:+.1f} kB in {stat.count_diff:+d} blocks:")
                    lines.extend("    " + line for line in stat.traceback.format(limit=8))
                with open(trace, "a", encoding="utf-8") as out:
                    out.write("\n".join(lines) + "\n")

        threading.Thread(target=dump, daemon=True, name="tracemalloc").start()
    stats = os.environ.get("TBX_STATS")
    if stats:
        threading.Thread(target=write_stats, args=(Path(stats),), daemon=True, name="stats").start()
    import runpy

    # `python -m appliance syncd ...` in this process (so the threads above watch it), as systemd runs it
    sys.argv = ["tablebox", "syncd", *argv]
    try:
        runpy.run_module("appliance", run_name="__main__", alter_sys=True)
    except SystemExit as done:
        return int(done.code or 0)
    return 0


def rss_by_mapping() -> dict[str, int]:
    """This process's resident kB by kind of mapping (/proc/self/smaps): glibc's main heap ([heap]), 1 MiB anonymous
    maps (CPython's obmalloc arenas), the rest of the anonymous memory (glibc's thread arenas, thread stacks, SQLite's
    and big objects' mmaps), and files."""
    sums = {"rss_heap_kb": 0, "rss_pyarenas_kb": 0, "rss_other_anon_kb": 0, "rss_file_kb": 0}
    kind = ""
    with open("/proc/self/smaps", encoding="ascii", errors="replace") as fh:
        for line in fh:
            first = line.split(maxsplit=6)
            if "-" in first[0] and len(first) >= 5:  # a mapping's header: address perms offset dev inode [path]
                start, end = (int(x, 16) for x in first[0].split("-"))
                name = first[5].strip() if len(first) > 5 else ""
                if name == "[heap]":
                    kind = "rss_heap_kb"
                elif name and not name.startswith("["):
                    kind = "rss_file_kb"
                elif end - start == 1 << 20:
                    kind = "rss_pyarenas_kb"
                else:
                    kind = "rss_other_anon_kb"
            elif first[0] == "Rss:":
                sums[kind] += int(first[1])
    return sums


def write_stats(path: Path) -> None:
    """Each minute, one JSON line of what holds syncd's memory: Python's allocated blocks and objects, SQLite's own
    allocations (apsw), glibc malloc's in-use and free bytes (mallinfo2), threads."""
    import ctypes
    import gc

    import apsw

    class MallInfo2(ctypes.Structure):
        _fields_ = [
            (name, ctypes.c_size_t)
            for name in (
                "arena",
                "ordblks",
                "smblks",
                "hblks",
                "hblkhd",
                "usmblks",
                "fsmblks",
                "uordblks",
                "fordblks",
                "keepcost",
            )
        ]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    minute = 0
    while True:
        time.sleep(TRACE_EVERY_SECONDS)
        minute += 1
        info = libc.mallinfo2()
        line = {
            "minute": minute,
            "py_blocks": sys.getallocatedblocks(),
            "gc_objects": len(gc.get_objects()),
            "sqlite_bytes": apsw.memory_used(),
            "malloc_in_use": info.uordblks,
            "malloc_free": info.fordblks,
            "malloc_mmap": info.hblkhd,
            "malloc_arena": info.arena,
            "threads": threading.active_count(),
            **rss_by_mapping(),
        }
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")


def rss_parts(pid: int) -> str:
    """RssAnon / RssFile / RssShmem of a process, in MB (what kind of memory grows)."""
    parts = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(("RssAnon:", "RssFile:", "RssShmem:", "Threads:")):
                key, value = line.split()[:2]
                parts[key[:-1]] = int(value)
    return (
        f"anon {parts.get('RssAnon', 0) / 1024:.1f}, file {parts.get('RssFile', 0) / 1024:.1f}, shmem "
        f"{parts.get('RssShmem', 0) / 1024:.1f}, threads {parts.get('Threads', 0)}"
    )


# -- the store and the fake --------------------------------------------------------------------------------------
class Bench:
    def __init__(self, folder: Path, fake: FakeRestERP, in_flight: int) -> None:
        self.folder = folder
        self.fake = fake
        folder.mkdir(parents=True)
        self.settings = BoxSettings(
            data_dir=folder / "data",
            rate_limit_table_per_minute=0,
            rate_limit_address_per_minute=0,
            log_level="warning",
            log_format="json",
        )
        ensure_demo_store(self.settings)
        seed_catalog(self.settings.db_path, fake)
        self.config = {
            **fake.target_config(),
            "enabled": True,
            "pull_minutes": 0,
            "retry_cap_seconds": 60,
            "max_in_flight": in_flight,
        }
        self.config_file = write_settings(folder / "tablebox.toml", {"erp": self.config}, top='log_level = "warning"\n')
        self.settings = dataclasses.replace(self.settings, sync_targets={"erp": self.config})
        from sync.config import register_targets

        conn = open_connection(self.settings.db_path)
        try:
            register_targets(conn, self.settings)
        finally:
            conn.close()
        self.syncd: subprocess.Popen[bytes] | None = None

    def start_syncd(self, trace: Path | None = None) -> int:
        env = {**os.environ, "TABLEBOX_LOG_FORMAT": "json"}
        env.pop("NOTIFY_SOCKET", None)
        if trace is not None:
            env["TBX_TRACE"] = str(trace)
        env["TBX_STATS"] = str(self.folder / "syncd-stats.jsonl")
        log = open(self.folder / "syncd.log", "ab")  # noqa: SIM115 - the child holds it
        self.syncd = subprocess.Popen(
            [
                sys.executable,
                str(HERE),
                "--as-syncd",
                "--data-dir",
                str(self.settings.data_dir),
                "--config",
                str(self.config_file),
            ],
            env=env,
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        return self.syncd.pid

    def stop_syncd(self) -> int | None:
        if self.syncd is None:
            return None
        self.syncd.send_signal(signal.SIGTERM)
        try:
            code = self.syncd.wait(30)
        except subprocess.TimeoutExpired:
            self.syncd.kill()
            code = self.syncd.wait(10)
        self.syncd = None
        return code

    def counts(self) -> tuple[int, int]:
        """(delivered, waiting) of the ERP target's rows."""
        conn = open_connection(self.settings.db_path, readonly=True)
        try:
            delivered, total = conn.execute(
                "SELECT count(delivered_at), count(*) FROM outbox WHERE target = 'erp'"
            ).fetchone()
        finally:
            conn.close()
        return int(delivered), int(total) - int(delivered)


def drain(folder: Path, orders: int, in_flight: int, *, flaky: bool, limit: float) -> dict[str, Any]:
    fake = FakeRestERP()
    fake.start()
    bench = Bench(folder, fake, in_flight)
    try:
        fake.go_down()
        queue_orders(bench.settings, orders)
        if flaky:
            fake.error_rate, fake.drop_after_commit_rate = 0.3, 0.1
        bench.start_syncd()
        fake.come_back()
        started = time.perf_counter()
        at_half = at_90 = None
        while True:
            delivered, waiting = bench.counts()
            now = time.perf_counter() - started
            if at_half is None and delivered >= orders / 2:
                at_half = now
            if at_90 is None and delivered >= orders * 0.9:
                at_90 = now
            if not waiting:
                break
            if now > limit:
                print(f"  (stopped after {limit:g} s: {delivered} of {orders} delivered)")
                break
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        bench.stop_syncd()
        if at_90 is None:  # stopped early: the rate so far
            at_90 = elapsed * 0.9 * orders / max(1, delivered)
        counts = fake.order_counts()
        return {
            "orders": orders,
            "elapsed": elapsed,
            "at_90": at_90 or elapsed,
            "rate_90": 0.9 * orders / (at_90 or elapsed),
            "rate_all": orders / elapsed,
            "documents": len(counts),
            "duplicates": sum(n - 1 for n in counts.values()),
            "requests": fake.requests,
        }
    finally:
        bench.stop_syncd()
        fake.stop()


def memory(folder: Path, minutes: int, rate: float, in_flight: int, trace: bool) -> list[tuple[int, float, int, int]]:
    """Orders at `rate`/s through the web API for `minutes`, the fake flaky; (minute, RSS MB, delivered, waiting)
    each minute."""
    from litestar.testing import TestClient

    from appliance.db.orders import change_status
    from appliance.db.store_settings import load_store_settings
    from appliance.db.tables import list_tables, table_token
    from appliance.domain.orders import Actor, OrderStatus
    from appliance.store import read_secret
    from appliance.web.app import create_app
    from bench.sync_drain import DISHES

    fake = FakeRestERP()
    fake.start()
    fake.error_rate, fake.drop_after_commit_rate = 0.3, 0.1
    bench = Bench(folder, fake, in_flight)
    trace_file = folder / "tracemalloc.txt" if trace else None
    samples: list[tuple[int, float, int, int]] = []
    conn = open_connection(bench.settings.db_path)
    store_id = load_store_settings(conn).store_id
    secret = read_secret(bench.settings.secret_path)
    tokens = [table_token(secret, store_id, t) for t in list_tables(conn)]
    ids = [conn.execute("SELECT id FROM items WHERE key = ?", (k,)).fetchone()[0] for k in DISHES]
    pid = bench.start_syncd(trace_file)
    try:
        started = time.monotonic()
        next_sample = started + 60.0
        n = 0
        with TestClient(create_app(bench.settings)) as client:
            while time.monotonic() - started < minutes * 60.0:
                due = started + n / rate
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                body = {
                    "client_key": uuid.uuid4().hex,
                    "lines": [{"item_id": ids[n % len(ids)], "quantity": 1 + n % 3}],
                }
                r = client.post(f"/api/v1/tables/{tokens[n % len(tokens)]}/orders", json=body)
                if r.status_code != 201:
                    raise SystemExit(f"order refused: {r.status_code} {r.text}")
                if n % 10 == 0:
                    with write_transaction(conn):
                        change_status(conn, r.json()["id"], OrderStatus.CANCELLED, Actor.STAFF, "bench")
                n += 1
                if time.monotonic() >= next_sample:
                    next_sample += 60.0
                    delivered, waiting = bench.counts()
                    sample = (len(samples) + 1, rss_mb(pid)[0], delivered, waiting)
                    samples.append(sample)
                    print(
                        f"  minute {sample[0]:3d}: syncd RSS {sample[1]:6.1f} MB ({rss_parts(pid)}), delivered "
                        f"{delivered}, waiting {waiting}",
                        flush=True,
                    )
        counts = fake.order_counts()
        print(
            f"  {n} orders queued; in the ERP: {len(counts)} documents, duplicates {sum(v - 1 for v in counts.values())}"
        )
    finally:
        bench.stop_syncd()
        conn.close()
        fake.stop()
    stats = folder / "syncd-stats.jsonl"
    if stats.exists():
        lines = stats.read_text(encoding="utf-8").splitlines()
        print("syncd's memory by holder (first and last minute):")
        for line in (lines[0], lines[-1]):
            print("  " + line)
    if trace_file is not None and trace_file.exists():
        text = trace_file.read_text(encoding="utf-8")
        print("tracemalloc, the last report (growth since the first minute):")
        print(text[text.rfind("== minute") :])
    return samples


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--as-syncd":
        return as_syncd(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=2000, help="backlog for each drain")
    parser.add_argument("--in-flight", type=int, default=8, help="max_in_flight of the target")
    parser.add_argument("--minutes", type=int, default=0, help="memory run length (0: no memory run)")
    parser.add_argument("--rate", type=float, default=15.0, help="orders a second during the memory run")
    parser.add_argument("--trace", action="store_true", help="syncd under tracemalloc during the memory run")
    parser.add_argument("--limit", type=float, default=300.0, help="seconds a drain may take before it is cut")
    parser.add_argument("--flaky-only", action="store_true", help="only the flaky drain")
    parser.add_argument("--keep", action="store_true", help="keep the stores and syncd's logs (printed path)")
    parser.add_argument("--skip-drain", action="store_true", help="only the memory run")
    args = parser.parse_args()

    from appliance.logs import configure_logging

    configure_logging("json", "warning")
    root = Path(tempfile.mkdtemp(prefix="tbx-bench-sync-"))
    try:
        if not args.skip_drain:
            results = []
            for name, flaky in (("healthy", False), ("30% 503 + 10% drop", True)):
                if args.flaky_only and not flaky:
                    continue
                r = drain(root / name.split()[0].strip("%"), args.orders, args.in_flight, flaky=flaky, limit=args.limit)
                results.append(r)
                print(
                    f"drain {name:>20}: {r['orders']} orders, 90 % in {r['at_90']:.2f} s = {r['rate_90']:.0f} rows/s;"
                    f" all in {r['elapsed']:.2f} s = {r['rate_all']:.0f} rows/s; ERP requests {r['requests']},"
                    f" documents {r['documents']}, duplicates {r['duplicates']}",
                    flush=True,
                )
            if len(results) == 2:
                healthy, flaky_run = results
                share = flaky_run["rate_90"] / healthy["rate_90"]
                print(
                    f"flaky / healthy (90 % of the backlog): {share:.0%} (target >= 50 %), {args.in_flight} in flight, "
                    f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
                )
        if args.minutes:
            print(
                f"memory: {args.minutes} min, {args.rate:g} orders/s (every 10th cancelled), ERP 30 % 503 + 10 % drop"
            )
            samples = memory(root / "memory", args.minutes, args.rate, args.in_flight, args.trace)
            if len(samples) >= 2:
                first, last = samples[0], samples[-1]
                per_quarter = (last[1] - first[1]) / max(1, last[0] - first[0]) * 15
                print(
                    f"syncd RSS: minute {first[0]} {first[1]:.1f} MB -> minute {last[0]} {last[1]:.1f} MB "
                    f"({per_quarter:+.2f} MB per quarter hour), peak {max(s[1] for s in samples):.1f} MB"
                )
    finally:
        if args.keep:
            print(f"kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
