"""Relay scale-out: two relay processes on one PostgreSQL, many boxes long-polling, phones ordering through both.

    .venv/bin/python bench/relay.py [--boxes 10000] [--database-url URL] [--rate 200] [--seconds 10]
                                    [--idle-seconds 30] [--phones 64]

Two real `tablebox relay serve` processes (A pinned to core 0, B to core 1; JSON logs at info level to files, rate
limits off) on one fresh PostgreSQL database (a throw-away server from Debian's packages, fsync off, unless
--database-url names an empty one). This process is the load generator: a lean HTTP/1.1 client on asyncio streams
under uvloop (httpx spent more CPU than the relay it measured: it saturated its core at ~300 orders/s). It enrols
--boxes stores and keeps one signed long-poll (`wait=25`) open per store, all on relay A, acknowledging with
`after=` as a box does; phones post orders to random stores, alternately through A and B, so half the deliveries
cross from B to A (B's NOTIFY wakes A's long-poll). A delivery's latency runs from the moment its order was due (paced
part) or sent (flat-out part) to the box receiving the poll answer that carries it. Three parts, each printed beside
the issue's target:

1. idle: every box long-polling on relay A; A's CPU over --idle-seconds (longer than a poll's 25 s, so every poll
   ends and is renewed once inside the window: the steady cost of that many boxes) and its RSS;
2. paced: --rate orders/s for --seconds (open loop), p50/p99 delivery latency, same relay and across;
3. flat out: --phones phones posting as fast as they are answered for --seconds: the rate delivered, with the CPU
   of each relay, PostgreSQL and this load generator (all on this machine's cores).

Prints figures, never asserts. When the machine cannot open --boxes connections it says how many it reached and why.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

# This file is bench/relay.py: with bench/ first on the path, `import sync` would still work, but keep the repo first.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import httpx  # noqa: E402
import msgspec  # noqa: E402

from appliance.contract.signing import sign  # noqa: E402
from bench.procs import Child, cpu_seconds, free_port, pinned, rss_mb  # noqa: E402
from sync.relay.storage import open_storage  # noqa: E402

TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
TARGET_BOXES = 10_000
TARGET_IDLE_CPU = 25.0  # % of a core
TARGET_P99_MS = 100.0
CONNECT_AT_ONCE = 200  # connections being opened at a time (the listen backlog is uvicorn's 2,048)
ORDER = msgspec.json.Encoder()
DECODE = msgspec.json.Decoder()


def token() -> str:
    return "".join(random.choice(TOKEN_ALPHABET) for _ in range(32))


def own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its children (PostgreSQL's postmaster and its backends)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            total += cpu_seconds(current)
        except OSError:
            pass
        todo.extend(children.get(current, []))
    return total


class Closed(Exception):
    pass


class Http:
    """One keep-alive HTTP/1.1 connection: a request, then its answer (Content-Length framing, as uvicorn sends
    these), reopened when the server closed it (its idle keep-alive limit) and retried once then."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = self.reader = None

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
        for attempt in (1, 2):
            if self.reader is None or self.reader.at_eof():
                self.close()
                await self.open()
            try:
                return await self._exchange(method, path, headers, body)
            except (Closed, ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _exchange(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        head = f"{method} {path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\ncontent-length: {len(body)}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self.writer.write(head.encode("latin-1") + b"\r\n" + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        close = False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        data = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, data


class Load:
    def __init__(self, stores: list[tuple[str, bytes]], relays: list[tuple[str, int]], storage: Any) -> None:
        self.stores = stores
        self.storage = storage  # to see which polls the relay holds (stores.polling)
        self.relays = relays  # [(host, port)] of A, B
        self.tokens = {store_id: token() for store_id, _ in stores}
        self.sent: dict[str, tuple[float, str]] = {}  # client_key -> (due, "same" | "across")
        self.latencies: dict[str, list[float]] = {"same": [], "across": []}
        self.delivered = 0
        self.polls = 0
        self.poll_errors: Counter[str] = Counter()
        self.post_errors: Counter[str] = Counter()
        self.connect_errors: Counter[str] = Counter()
        self.boxes: list[Http] = []
        self.stop = asyncio.Event()
        self.phones: list[asyncio.Queue[Http]] = []

    # -- boxes ---------------------------------------------------------------------------------------------------
    async def box(self, conn: Http, store_id: str, secret: bytes) -> None:
        after = 0
        while not self.stop.is_set():
            path = f"/v1/box/inbox?after={after}&wait=25"
            try:
                status, data = await conn.request("GET", path, sign(store_id, secret, "GET", path))
            except (OSError, Closed, asyncio.IncompleteReadError) as exc:
                if self.stop.is_set():
                    return
                self.poll_errors[type(exc).__name__] += 1
                await asyncio.sleep(0.5)
                continue
            now = time.perf_counter()
            self.polls += 1
            if status != 200:
                self.poll_errors[f"{status} {data[:80]!r}"] += 1
                await asyncio.sleep(0.5)
                continue
            for message in DECODE.decode(data)["messages"]:
                found = self.sent.pop(message["client_key"], None)
                if found is not None:
                    self.latencies[found[1]].append(now - found[0])
                    self.delivered += 1
                after = max(after, message["seq"])

    async def connect_boxes(self, count: int) -> list[asyncio.Task[None]]:
        """Open one connection per box to relay A (at most CONNECT_AT_ONCE at a time) and start its long-poll loop;
        stops opening at the first connection refused for a reason that will not go away (a file limit)."""
        host, port = self.relays[0]
        gate = asyncio.Semaphore(CONNECT_AT_ONCE)
        tasks: list[asyncio.Task[None]] = []
        give_up = False

        async def one(store_id: str, secret: bytes) -> None:
            nonlocal give_up
            async with gate:
                if give_up:
                    return
                conn = Http(host, port)
                try:
                    await conn.open()
                except OSError as exc:
                    self.connect_errors[f"{type(exc).__name__}: {exc.strerror or exc}"] += 1
                    give_up = give_up or exc.errno in (24, 23)  # EMFILE, ENFILE: this process's or the system's
                    return
                self.boxes.append(conn)
                tasks.append(asyncio.create_task(self.box(conn, store_id, secret)))

        await asyncio.gather(*(one(store_id, secret) for store_id, secret in self.stores[:count]))
        return tasks

    # -- phones --------------------------------------------------------------------------------------------------
    async def open_phones(self, per_relay: int) -> None:
        for host, port in self.relays:
            pool: asyncio.Queue[Http] = asyncio.Queue()
            for _ in range(per_relay):
                conn = Http(host, port)
                await conn.open()
                pool.put_nowait(conn)
            self.phones.append(pool)

    async def post(self, relay: int, store_id: str, due: float) -> bool:
        client_key = uuid.uuid4().hex
        body = ORDER.encode(
            {"client_key": client_key, "lines": [{"item_id": 3, "quantity": 2}], "expected_total_minor": 3600}
        )
        pool = self.phones[relay]
        conn = await pool.get()
        self.sent[client_key] = (due, "same" if relay == 0 else "across")
        try:
            status, data = await conn.request(
                "POST",
                f"/s/{store_id}/api/v1/tables/{self.tokens[store_id]}/orders",
                {"content-type": "application/json"},
                body,
            )
        except (OSError, Closed, asyncio.IncompleteReadError) as exc:
            self.sent.pop(client_key, None)
            self.post_errors[type(exc).__name__] += 1
            return False
        finally:
            pool.put_nowait(conn)
        if status != 202:
            self.sent.pop(client_key, None)
            self.post_errors[f"{status} {data[:80]!r}"] += 1
            return False
        return True

    def reset(self) -> None:
        self.latencies = {"same": [], "across": []}
        self.delivered = 0
        self.sent.clear()

    async def drain(self, timeout: float = 30.0) -> None:
        deadline = time.perf_counter() + timeout
        while self.sent and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)

    def close(self) -> None:
        for conn in self.boxes:
            conn.close()
        for pool in self.phones:
            while not pool.empty():
                pool.get_nowait().close()


def load_average() -> str:
    """The machine's 1-minute load average: other work on these cores shows in every latency here."""
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def connection_cap(log: Path) -> str:
    """What relay A says of its connection cap at start (appliance/serving.py's http.limits line)."""
    for line in log.read_text().splitlines():
        try:
            entry = DECODE.decode(line)
        except msgspec.DecodeError:
            continue
        if isinstance(entry, dict) and entry.get("event") == "http.limits":
            return f"relay A's connection cap {entry.get('max_connections')} (file limit {entry.get('file_limit')})"
    return "relay A's connection cap unknown"


def latency_line(latencies: list[float]) -> str:
    ms = [x * 1000 for x in latencies]
    return f"p50 {pct(ms, 0.5):.1f} ms, p99 {pct(ms, 0.99):.1f} ms, max {max(ms, default=float('nan')):.1f} ms"


async def run(args: argparse.Namespace, load: Load, relays: list[Child], pg_pid: int | None, cap: str) -> None:
    a, b = relays

    def cpus() -> tuple[float, ...]:
        return (cpu_seconds(a.pid), cpu_seconds(b.pid), tree_cpu(pg_pid) if pg_pid else float("nan"), own_cpu())

    def shares(before: tuple[float, ...], seconds: float) -> str:
        after = cpus()
        names = ("relay A", "relay B", "PostgreSQL", "load generator")
        return ", ".join(f"{n} {100 * (y - x) / seconds:.0f}%" for n, x, y in zip(names, before, after, strict=True))

    storage = load.storage
    try:
        # 1. idle: every box long-polling on relay A
        started = time.perf_counter()
        tasks = await load.connect_boxes(args.boxes)
        connected = len(load.boxes)
        while True:
            polling = sum(1 for row in await asyncio.to_thread(storage.stores) if row.polling)
            if polling >= connected or time.perf_counter() - started > 120:
                break
            await asyncio.sleep(0.25)
        took = time.perf_counter() - started
        why = ""
        if connected < args.boxes:
            why = f" (connections refused: {dict(load.connect_errors)}; {cap})"
        elif polling < connected:
            why = f" (only {polling} polls held after {took:.0f} s; poll errors {dict(load.poll_errors)}; {cap})"
        print(
            f"boxes long-polling on relay A: {polling:,} of {args.boxes:,} asked, in {took:.1f} s "
            f"(target {TARGET_BOXES:,}){why}",
            flush=True,
        )
        polls0, before, t0 = load.polls, cpus(), time.perf_counter()
        await asyncio.sleep(args.idle_seconds)
        seconds = time.perf_counter() - t0
        idle = 100 * (cpu_seconds(a.pid) - before[0]) / seconds
        rss, _ = rss_mb(a.pid)
        print(
            f"  relay A with them waiting, over {seconds:.0f} s ({load.polls - polls0:,} polls ended and renewed): "
            f"{idle:.1f}% of a core (target < {TARGET_IDLE_CPU:.0f}%), RSS {rss:.0f} MB "
            f"[{shares(before, seconds)}; {load_average()}]",
            flush=True,
        )

        # 2. paced, spread over both relays
        await load.open_phones(args.phones // 2)
        load.reset()
        count = int(args.rate * args.seconds)
        pending: set[asyncio.Task[bool]] = set()
        boxes = [store for store, _ in load.stores[:connected]]
        before, started = cpus(), time.perf_counter()
        for n in range(count):
            due = started + n / args.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(load.post(n % 2, random.choice(boxes), due))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.gather(*pending)
        await load.drain()
        seconds = time.perf_counter() - started
        every = load.latencies["same"] + load.latencies["across"]
        print(
            f"paced {args.rate:g} orders/s for {args.seconds:g} s, half through each relay: delivered "
            f"{load.delivered:,} of {count:,}, lost {len(load.sent)}; latency {latency_line(every)} "
            f"(target p99 < {TARGET_P99_MS:.0f} ms)",
            flush=True,
        )
        print(f"  posted to A, box on A: {latency_line(load.latencies['same'])}", flush=True)
        print(f"  posted to B, box on A (woken by NOTIFY): {latency_line(load.latencies['across'])}", flush=True)
        print(f"  cpu: {shares(before, seconds)}; {load_average()}", flush=True)
        if load.post_errors:
            print(f"  phone errors: {dict(load.post_errors)}", flush=True)
            load.post_errors.clear()

        # 3. flat out
        load.reset()
        posted = 0
        deadline = time.perf_counter() + args.seconds

        async def phone(n: int) -> None:
            nonlocal posted
            while time.perf_counter() < deadline:
                if await load.post(n % 2, random.choice(boxes), time.perf_counter()):
                    posted += 1

        before, started = cpus(), time.perf_counter()
        await asyncio.gather(*(phone(n) for n in range(args.phones)))
        posting = time.perf_counter() - started
        await load.drain()
        seconds = time.perf_counter() - started
        every = load.latencies["same"] + load.latencies["across"]
        print(
            f"flat out, {args.phones} phones over both relays for {args.seconds:g} s: {posted:,} orders = "
            f"{posted / posting:.0f} orders/s posted, {load.delivered / seconds:.0f}/s delivered, lost "
            f"{len(load.sent)}; latency {latency_line(every)}",
            flush=True,
        )
        print(f"  cpu: {shares(before, seconds)}; {load_average()}", flush=True)
        if load.post_errors:
            print(f"  phone errors: {dict(load.post_errors)}", flush=True)
        if load.poll_errors:
            print(f"  box poll errors: {dict(load.poll_errors)}", flush=True)
        load.stop.set()
        for poller in tasks:
            poller.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        load.close()


def log_levels(path: Path) -> dict[str, int]:
    levels: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        try:
            levels[DECODE.decode(line).get("level", "?")] += 1
        except msgspec.DecodeError:
            levels["text"] += 1
    return dict(levels)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--boxes", type=int, default=TARGET_BOXES, help="boxes long-polling relay A")
    parser.add_argument("--database-url", help="an existing, empty PostgreSQL database (else a throw-away server)")
    parser.add_argument("--rate", type=float, default=200.0, help="paced orders per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the paced and the flat-out parts")
    parser.add_argument("--idle-seconds", type=float, default=30.0, help="idle CPU window (more than a 25 s poll)")
    parser.add_argument("--phones", type=int, default=64, help="phone connections, half to each relay")
    parser.add_argument("--keep-logs", metavar="FOLDER", help="copy the relays' logs here at the end")
    args = parser.parse_args()

    # Every box is a socket here and on relay A: both need more than the usual 1,024 open files.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    folder = Path(tempfile.mkdtemp(prefix="tbx-bench-relay-"))
    cluster = None
    relays: list[Child] = []
    storage = None
    try:
        pg_pid = None
        if args.database_url:
            database_url = args.database_url
            what = "the given PostgreSQL database"
        else:
            from tests.relay.postgres import PostgresCluster, find_bin

            bindir = find_bin()
            if bindir is None:
                print("no PostgreSQL here (apt-get install postgresql), and no --database-url", file=sys.stderr)
                return 2
            cluster = PostgresCluster(bindir).start()
            database_url = cluster.create_database()
            pg_pid = int((cluster.data / "postmaster.pid").read_text().split()[0])
            what = f"PostgreSQL {bindir.parent.name} (a throw-away server, fsync off)"
        storage = open_storage(database_url, pool_size=2)
        started = time.perf_counter()
        stores = []
        for n in range(args.boxes):
            enrolled = storage.enroll(f"bench store {n}")
            stores.append((enrolled.store_id, bytes.fromhex(enrolled.secret)))
        print(f"{args.boxes:,} stores enrolled in {time.perf_counter() - started:.1f} s", flush=True)
        env = {
            **os.environ,
            "TABLEBOX_RELAY_LOG_FORMAT": "json",
            "TABLEBOX_RELAY_RATE_LIMIT_ADDRESS_PER_MINUTE": "0",
            "TABLEBOX_RELAY_RATE_LIMIT_ADDRESS_ORDERS_PER_MINUTE": "0",
            "TABLEBOX_RELAY_RATE_LIMIT_STORE_PER_MINUTE": "0",
            "TABLEBOX_RELAY_RATE_LIMIT_TOKEN_PER_MINUTE": "0",
            "TABLEBOX_RELAY_MAX_CONNECTIONS_PER_ADDRESS": "0",  # every box comes from 127.0.0.1 here
        }
        ports = []
        for name, core in (("A", "0"), ("B", "1")):
            port = free_port()
            argv = [sys.executable, "-m", "appliance", "relay", "serve", "--database-url", database_url]
            argv += ["--host", "127.0.0.1", "--port", str(port)]
            relays.append(Child(f"relay {name}", pinned(core, argv), env=env, log_path=folder / f"relay-{name}.log"))
            ports.append(port)
        for child, port, name in zip(relays, ports, "AB", strict=True):
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if not child.alive() or time.monotonic() > deadline:
                    print((folder / f"relay-{name}.log").read_text()[-3000:], file=sys.stderr)
                    return 1
                time.sleep(0.05)
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        print(
            f"two relays (A on core 0, B on core 1) on {what}; load from this process (uvloop, unpinned); "
            f"open-file limit {nofile:,} for each",
            flush=True,
        )
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        load = Load(stores, [("127.0.0.1", port) for port in ports], storage)
        asyncio.run(run(args, load, relays, pg_pid, connection_cap(folder / "relay-A.log")))
        for name in "AB":
            print(f"relay {name} log: {log_levels(folder / f'relay-{name}.log')}", flush=True)
    finally:
        for child in relays:
            child.stop(grace=10)
        if args.keep_logs:
            Path(args.keep_logs).mkdir(parents=True, exist_ok=True)
            for log in folder.glob("*.log"):
                shutil.copy(log, args.keep_logs)
        if storage is not None:
            storage.close()
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
