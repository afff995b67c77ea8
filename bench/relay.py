"""Relay load: inbox throughput and long-poll fan-out with many connected boxes on one machine.

    .venv/bin/python bench/relay.py [--boxes 500] [--postgres | --database-url URL] [--seconds 10] [--rate 200]
                                    [--phones 32]

A real `tablebox relay serve` (pinned to core 0, JSON logs at info level to a file) on a fresh database; this
process (pinned to core 1) enrols --boxes stores and keeps one signed long-poll (`wait=25`) open per store with
httpx.AsyncClient, acknowledging with `after=` as the box does; phones (httpx, other connections) post orders
to random stores. A message's delivery latency runs from the phone starting its POST to the box receiving the
poll answer that carries it. Four parts:

1. connect: every box long-polling; the relay's CPU while they all wait (each re-checks the database every
   recheck_seconds) and its memory;
2. fan-out: one order to each store at once (--phones connections), all boxes woken; time to the last delivery;
3. paced: --rate orders/s spread over the stores for --seconds (open loop);
4. flat out: --phones phones posting as fast as they are answered for --seconds (closed loop).

Prints figures, never asserts. --postgres starts a throw-away PostgreSQL server (Debian's packages).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import ssl
import sys
import tempfile
import time
import uuid
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


def token() -> str:
    return "".join(random.choice(TOKEN_ALPHABET) for _ in range(32))


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Bench:
    def __init__(self, url: str, stores: list[tuple[str, bytes]]) -> None:
        self.url = url
        self.stores = stores
        self.tokens = {store_id: token() for store_id, _ in stores}
        self.sent: dict[str, float] = {}  # client_key -> when its POST started
        self.latencies: list[float] = []
        self.delivered = 0
        self.poll_errors = 0
        self.polls = 0
        self.post_errors: dict[str, int] = {}
        self.last_delivery = 0.0
        self.stop = asyncio.Event()

    async def box(self, client: httpx.AsyncClient, store_id: str, secret: bytes) -> None:
        after = 0
        while not self.stop.is_set():
            path = f"/v1/box/inbox?after={after}&wait=25"
            try:
                answer = await client.get(path, headers=sign(store_id, secret, "GET", path))
            except httpx.HTTPError:
                self.poll_errors += 1
                await asyncio.sleep(0.5)
                continue
            now = time.perf_counter()
            self.polls += 1
            if answer.status_code != 200:
                self.poll_errors += 1
                await asyncio.sleep(0.5)
                continue
            for message in msgspec.json.decode(answer.content)["messages"]:
                started = self.sent.pop(message["client_key"], None)
                if started is not None:
                    self.latencies.append(now - started)
                    self.delivered += 1
                    self.last_delivery = now
                after = max(after, message["seq"])

    async def post(self, client: httpx.AsyncClient, store_id: str) -> bool:
        client_key = uuid.uuid4().hex
        body = msgspec.json.encode(
            {"client_key": client_key, "lines": [{"item_id": 3, "quantity": 2}], "expected_total_minor": 3600}
        )
        self.sent[client_key] = time.perf_counter()
        try:
            answer = await client.post(
                f"/s/{store_id}/api/v1/tables/{self.tokens[store_id]}/orders",
                content=body,
                headers={"Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            self.sent.pop(client_key, None)
            self.post_errors[type(exc).__name__] = self.post_errors.get(type(exc).__name__, 0) + 1
            return False
        if answer.status_code != 202:
            self.sent.pop(client_key, None)
            key = f"{answer.status_code} {answer.text[:80]}"
            self.post_errors[key] = self.post_errors.get(key, 0) + 1
            return False
        return True

    def reset(self) -> None:
        self.latencies = []
        self.delivered = 0
        self.sent.clear()

    async def drain(self, timeout: float = 30.0) -> None:
        deadline = time.perf_counter() + timeout
        while self.sent and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)

    def report(self, label: str, posted: int, seconds: float) -> None:
        lat = [x * 1000 for x in self.latencies]
        print(
            f"{label}: {posted} orders in {seconds:.2f} s = {posted / seconds:.0f} posted/s; delivered "
            f"{self.delivered} ({self.delivered / seconds:.0f}/s), lost {len(self.sent)}; latency p50 "
            f"{pct(lat, 0.5):.1f} ms, p99 {pct(lat, 0.99):.1f} ms, max {max(lat, default=float('nan')):.1f} ms",
            flush=True,
        )
        if self.post_errors:
            print(f"  phone errors: {self.post_errors}", flush=True)
            self.post_errors = {}


async def run(args: argparse.Namespace, url: str, stores: list[tuple[str, bytes]], server: Child, storage: Any) -> None:
    bench = Bench(url, stores)
    # One client (one connection) per box, as 500 boxes would have: httpx's pool looks through its connections
    # for every request, so one client holding 500 connections costs the load generator more than the relay.
    tls = ssl.create_default_context()
    boxes = [
        httpx.AsyncClient(base_url=url, verify=tls, limits=httpx.Limits(max_connections=1), timeout=httpx.Timeout(60.0))
        for _ in stores
    ]
    phones = httpx.AsyncClient(
        base_url=url, verify=tls, limits=httpx.Limits(max_connections=args.phones * 2), timeout=httpx.Timeout(30.0)
    )
    try:
        # 1. connect
        started = time.perf_counter()
        tasks = [
            asyncio.create_task(bench.box(client, store_id, secret))
            for client, (store_id, secret) in zip(boxes, stores, strict=True)
        ]
        while True:
            polling = sum(1 for row in await asyncio.to_thread(storage.stores) if row.polling)
            if polling == len(stores):
                break
            if time.perf_counter() - started > 60:
                print(f"connect: only {polling} of {len(stores)} boxes polling after 60 s", flush=True)
                break
            await asyncio.sleep(0.1)
        connected = time.perf_counter() - started
        cpu0, t0 = cpu_seconds(server.pid), time.perf_counter()
        await asyncio.sleep(args.idle_seconds)
        idle_cpu = 100 * (cpu_seconds(server.pid) - cpu0) / (time.perf_counter() - t0)
        rss, _ = rss_mb(server.pid)
        print(
            f"connect: {len(stores)} boxes long-polling after {connected:.2f} s; relay while they wait: "
            f"{idle_cpu:.1f}% of a core, {rss:.0f} MB RSS",
            flush=True,
        )

        # 2. fan-out: one order per store at once
        bench.reset()
        queue: asyncio.Queue[str] = asyncio.Queue()
        for store_id, _ in stores:
            queue.put_nowait(store_id)

        async def drain_queue() -> None:
            while True:
                try:
                    store_id = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await bench.post(phones, store_id)

        started = time.perf_counter()
        await asyncio.gather(*(drain_queue() for _ in range(args.phones)))
        await bench.drain()
        bench.report(
            f"fan-out ({len(stores)} stores at once, {args.phones} phones)", len(stores), bench.last_delivery - started
        )

        # 3. paced
        bench.reset()
        count = int(args.rate * args.seconds)
        started = time.perf_counter()
        pending: set[asyncio.Task[bool]] = set()
        cpu0, own0 = cpu_seconds(server.pid), _own_cpu()
        for n in range(count):
            due = started + n / args.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(bench.post(phones, random.choice(stores)[0]))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.gather(*pending)
        await bench.drain()
        elapsed = time.perf_counter() - started
        cpu, own = 100 * (cpu_seconds(server.pid) - cpu0) / elapsed, 100 * (_own_cpu() - own0) / elapsed
        bench.report(f"paced ({args.rate:g}/s for {args.seconds:g} s)", count, elapsed)
        print(f"  relay cpu {cpu:.0f}% of a core, load generator {own:.0f}%", flush=True)

        # 4. flat out
        bench.reset()
        posted = 0
        deadline = time.perf_counter() + args.seconds

        async def phone() -> None:
            nonlocal posted
            while time.perf_counter() < deadline:
                if await bench.post(phones, random.choice(stores)[0]):
                    posted += 1

        cpu0, own0 = cpu_seconds(server.pid), _own_cpu()
        started = time.perf_counter()
        await asyncio.gather(*(phone() for _ in range(args.phones)))
        posting = time.perf_counter() - started
        await bench.drain()
        elapsed = time.perf_counter() - started
        cpu, own = 100 * (cpu_seconds(server.pid) - cpu0) / elapsed, 100 * (_own_cpu() - own0) / elapsed
        bench.report(f"flat out ({args.phones} phones for {args.seconds:g} s)", posted, posting)
        print(
            f"  relay cpu {cpu:.0f}% of a core, load generator {own:.0f}%; box polls answered {bench.polls}, "
            f"poll errors {bench.poll_errors}",
            flush=True,
        )
        bench.stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for client in boxes:
            await client.aclose()
        await phones.aclose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--boxes", type=int, default=500)
    parser.add_argument("--postgres", action="store_true", help="a throw-away PostgreSQL server (Debian's packages)")
    parser.add_argument("--database-url", help="an existing, empty relay database")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=200.0, help="paced orders per second")
    parser.add_argument("--phones", type=int, default=32, help="phone connections posting at once")
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="tbx-bench-relay-"))
    cluster = None
    server = None
    storage = None
    try:
        if args.postgres:
            from tests.relay.postgres import PostgresCluster, find_bin

            bindir = find_bin()
            if bindir is None:
                print("no PostgreSQL here (apt-get install postgresql)", file=sys.stderr)
                return 2
            cluster = PostgresCluster(bindir).start()
            database_url = cluster.create_database()
            what = f"PostgreSQL ({bindir.parent.name}, fsync off: a test server)"
        else:
            database_url = args.database_url or f"sqlite:///{folder / 'relay.db'}"
            what = "SQLite (WAL, synchronous=FULL)" if database_url.startswith("sqlite") else "the given database"
        storage = open_storage(database_url)
        stores = []
        for n in range(args.boxes):
            enrolled = storage.enroll(f"bench store {n}")
            stores.append((enrolled.store_id, bytes.fromhex(enrolled.secret)))
        port = free_port()
        env = {
            **os.environ,
            "TABLEBOX_RELAY_LOG_FORMAT": "json",
            "TABLEBOX_RELAY_RATE_LIMIT_ADDRESS_PER_MINUTE": "0",
            "TABLEBOX_RELAY_RATE_LIMIT_STORE_PER_MINUTE": "0",
            "TABLEBOX_RELAY_RATE_LIMIT_TOKEN_PER_MINUTE": "0",
        }
        server = Child(
            "relay",
            pinned(
                "0",
                [
                    sys.executable,
                    "-m",
                    "appliance",
                    "relay",
                    "serve",
                    "--database-url",
                    database_url,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
            ),
            env=env,
            log_path=folder / "relay.log",
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if not server.alive() or time.monotonic() > deadline:
                print((folder / "relay.log").read_text()[-3000:], file=sys.stderr)
                return 1
            time.sleep(0.05)
        try:
            os.sched_setaffinity(0, {1})
        except OSError:
            pass
        print(f"relay on {what}; {args.boxes} boxes; load from this process (httpx.AsyncClient) on core 1", flush=True)
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        asyncio.run(run(args, url, stores, server, storage))
        log = (folder / "relay.log").read_text().splitlines()
        levels: dict[str, int] = {}
        for line in log:
            try:
                level = msgspec.json.decode(line).get("level", "?")
            except msgspec.DecodeError:
                level = "text"
            levels[level] = levels.get(level, 0) + 1
        print(f"relay log: {len(log)} lines {levels}", flush=True)
    finally:
        if server is not None:
            server.stop()
        if storage is not None:
            storage.close()
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
