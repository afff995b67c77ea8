"""A lean HTTP/1.1 load generator: N keep-alive connections, each doing request/response in a loop (closed
loop), or on a fixed schedule (paced, open loop).

    python bench/loadgen.py CONFIG.json      (prints one JSON result object on stdout)

Why not httpx / aiohttp / wrk?  httpx tops out around 1-2k req/s per core, far below what we need to
push the server (~8-10k req/s). A hand-written client on raw `asyncio.open_connection` streams under
uvloop does ~23-31k menu-sized (36 KB) GETs/s and ~65-80k small POSTs/s on one core of this machine
(measured with bench/loadgen_ceiling.py against a trivial uvloop server), i.e. 3x and 30x what the
Tablebox server answers (~8k menus/s, ~2k orders/s), so it is not the bottleneck. It also reports its
own CPU use per run: if that is near 100% of its core the figures would be suspect, and run.py flags it. wrk would
be faster still but needs a Lua script for unique client keys, and its latency histogram is
coarser; keeping the whole bench in Python with uvloop was enough, so it stays dependency-free.

Framing: the request carries Content-Length; the response is read as headers up to CRLFCRLF, then
exactly Content-Length bytes (uvicorn + httptools always sends Content-Length for these routes; a
chunked answer is handled too, just slower). A response with `connection: close` makes the
connection reopen. Every status code is counted; non-2xx are reported with a sample body, never
counted as throughput.

CONFIG keys: host, port, conns, warmup, duration, kind ("get" | "order"), tokens (list), lang,
lines (for "order": a list of JSON-encoded order lines to draw from), lines_per_order,
key_prefix (unique per run), rate (0 = closed loop; else total requests/s spread evenly over the
connections, open loop). Throughput counts the answers completed inside the measurement window
[start+warmup, start+warmup+duration); latency counts only the requests also sent inside it, so the
first requests of fresh connections (accept queue, warm-up) do not pollute the percentiles.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is installed on the box
    uvloop = None  # type: ignore[assignment]

CRLF2 = b"\r\n\r\n"


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []  # seconds, measured requests only
        self.statuses: Counter[int] = Counter()  # measured requests only
        self.all_statuses: Counter[int] = Counter()  # including warm-up
        self.error_samples: list[str] = []
        self.conn_errors = 0
        self.reconnects = 0
        self.bytes_in = 0
        self.slowest: list[tuple[float, float, int, int]] = []  # (latency, start offset, conn no, request no on it)


def request_factory(cfg: dict[str, Any]) -> Callable[[], bytes]:
    host = f"{cfg['host']}:{cfg['port']}"
    tokens = cfg["tokens"]
    if cfg["kind"] == "get":
        lang = cfg.get("lang", "zh")
        reqs = [
            (
                f"GET /api/v1/tables/{t}/menu?lang={lang} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\r\n"
            ).encode()
            for t in tokens
        ]
        counter = [0]

        def make_get() -> bytes:
            counter[0] += 1
            return reqs[counter[0] % len(reqs)]

        return make_get

    lines: list[str] = cfg["lines"]
    per = max(1, int(cfg.get("lines_per_order", 3)))
    heads = [
        (
            f"POST /api/v1/tables/{t}/orders HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: "
        ).encode()
        for t in tokens
    ]
    # Pre-joined line groups: order k uses lines k, k+1, ... of the pool (distinct items).
    groups = [
        ",".join(lines[(k + j) % len(lines)] for j in range(min(per, len(lines)))).encode() for k in range(len(lines))
    ]
    prefix = cfg.get("key_prefix") or f"b{random.getrandbits(32):08x}"
    counter = [0]

    def make_order() -> bytes:
        n = counter[0] = counter[0] + 1
        body = b'{"client_key":"%s-%d","lines":[%s]}' % (prefix.encode(), n, groups[n % len(groups)])
        return heads[n % len(heads)] + str(len(body)).encode() + CRLF2 + body

    return make_order


def parse_head(head: bytes) -> tuple[int, int, bool, bool]:
    """(status, content-length or -1, chunked, close) from a response head."""
    status = int(head[9:12])
    low = head.lower()
    length = -1
    i = low.find(b"\r\ncontent-length:")
    if i >= 0:
        j = low.find(b"\r\n", i + 17)
        length = int(low[i + 17 : j])
    chunked = b"\r\ntransfer-encoding: chunked" in low
    close = b"\r\nconnection: close" in low
    return status, length, chunked, close


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    out = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";")[0].strip(), 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # (no trailers expected)
            return bytes(out)
        out += await reader.readexactly(size)
        await reader.readexactly(2)


async def worker(
    cfg: dict[str, Any],
    make: Callable[[], bytes],
    stats: Stats,
    t_start: float,
    t_measure: float,
    t_end: float,
    conn_no: int,
) -> None:
    host, port = cfg["host"], cfg["port"]
    seq = 0
    perf = time.perf_counter
    lat_append = stats.latencies.append
    reader = writer = None
    # Paced (open-loop) mode: this connection sends every `interval` seconds on a fixed schedule,
    # and latency counts from the scheduled send time, so a server that falls behind is charged for
    # the queueing it causes (no coordinated omission). rate 0 = closed loop, as fast as answers come.
    rate = float(cfg.get("rate") or 0)
    interval = int(cfg["conns"]) / rate if rate > 0 else 0.0
    next_send = t_start + random.random() * interval
    while perf() < t_end:
        if writer is None:
            try:
                reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
            except OSError:
                stats.conn_errors += 1
                await asyncio.sleep(0.05)
                continue
        try:
            req = make()
            if interval:
                delay = next_send - perf()
                if delay > 0:
                    await asyncio.sleep(delay)
                t0 = next_send
                next_send += interval
            else:
                t0 = perf()
            writer.write(req)
            head = await reader.readuntil(CRLF2)
            status, length, chunked, close = parse_head(head)
            if length >= 0:
                body = await reader.readexactly(length) if length else b""
            elif chunked:
                body = await read_chunked(reader)
            else:
                body = b""
            t1 = perf()
            seq += 1
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            stats.conn_errors += 1
            if len(stats.error_samples) < 5:
                stats.error_samples.append(f"connection: {exc!r}")
            if writer is not None:
                writer.close()
            reader = writer = None
            stats.reconnects += 1
            continue
        stats.all_statuses[status] += 1
        if t_measure <= t1 < t_end:  # throughput: answers completed inside the window
            stats.statuses[status] += 1
            stats.bytes_in += len(head) + len(body)
            if t0 >= t_measure:  # latency: requests also sent inside it (no warm-up/connect artefacts)
                lat_append(t1 - t0)
                if t1 - t0 > 0.1:
                    stats.slowest.append((t1 - t0, t0 - t_start, conn_no, seq))
        if not 200 <= status < 300 and len(stats.error_samples) < 5:
            stats.error_samples.append(f"{status}: {body[:300].decode('utf-8', 'replace')}")
        if close:
            writer.close()
            reader = writer = None
            stats.reconnects += 1
    if writer is not None:
        writer.close()


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k]


async def run(cfg: dict[str, Any]) -> dict[str, Any]:
    stats = Stats()
    make = request_factory(cfg)
    start = time.perf_counter()
    t_measure = start + float(cfg["warmup"])
    t_end = t_measure + float(cfg["duration"])

    async def cpu_mark() -> float:
        await asyncio.sleep(max(0.0, t_measure - time.perf_counter()))
        return time.process_time()

    mark = asyncio.ensure_future(cpu_mark())
    await asyncio.gather(*(worker(cfg, make, stats, start, t_measure, t_end, i) for i in range(int(cfg["conns"]))))
    cpu_window = time.process_time() - await mark
    lat = sorted(stats.latencies)
    window = float(cfg["duration"])
    ok = sum(n for s, n in stats.statuses.items() if 200 <= s < 300)
    total = sum(stats.statuses.values())
    return {
        "conns": cfg["conns"],
        "kind": cfg["kind"],
        "duration": window,
        "rate": cfg.get("rate") or 0,
        "requests": total,
        "ok": ok,
        "non_2xx": total - ok,
        "rps": ok / window,
        "all_rps": total / window,
        "statuses": {str(k): v for k, v in sorted(stats.statuses.items())},
        "statuses_incl_warmup": {str(k): v for k, v in sorted(stats.all_statuses.items())},
        "p50_ms": percentile(lat, 0.50) * 1000,
        "p90_ms": percentile(lat, 0.90) * 1000,
        "p99_ms": percentile(lat, 0.99) * 1000,
        "max_ms": (lat[-1] * 1000) if lat else float("nan"),
        "mb_in_per_s": stats.bytes_in / window / 1e6,
        "conn_errors": stats.conn_errors,
        "reconnects": stats.reconnects,
        "error_samples": stats.error_samples,
        "slowest": [
            [round(lat * 1000, 1), round(o, 3), c, q] for lat, o, c, q in sorted(stats.slowest, reverse=True)[:5]
        ],
        "loadgen_cpu_pct": 100.0 * cpu_window / window,
        "loadgen_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "loop": "uvloop" if uvloop is not None else "asyncio",
    }


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as fh:
        cfg = json.load(fh)
    if uvloop is not None:
        result = uvloop.run(run(cfg))
    else:
        result = asyncio.run(run(cfg))
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown of a few hundred closed transports


if __name__ == "__main__":
    main()
