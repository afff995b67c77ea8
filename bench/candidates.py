"""The HTTP server candidates of issue #13 side by side: what the bounds of appliance/serving.py cost, and what each
candidate does with the two attacks of the issue. Built on bench/run.py (its stores, servers and load generator).

    .venv/bin/python bench/candidates.py              # 7 alternating rounds of 3 s per candidate and kind (~4 min)
    .venv/bin/python bench/candidates.py --rounds 3   # quicker, noisier

Candidates (bench/serve_candidate.py): guarded (what `tablebox serve` runs), plain (uvicorn + httptools as before
issue #13), h11 (uvicorn + h11 with h11_max_incomplete_event_size). For each:
- speed: menu GETs and orders from 50 clients, the three servers loaded in turn, round after round, so a machine
  whose speed drifts (a shared VM) treats them alike; the medians of ok/s and of ok per second of server CPU (on a
  core shared with other work the second moves less), and the RSS after the load;
- hostile: a fresh server under a file limit of 1,024: its RSS after four connections each send `X-Big: ` and up to
  50 MB without a line end (the server may close first), then an order while 1,100 connections from 20 loopback
  addresses sit idle: its status and time.
Prints figures and never asserts.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from procs import BENCH_DIR, PYTHON, SERVER_CORE, Child, free_port, pinned, rss_mb, run_loadgen, wait_first_answer
from run import candidate_lines, fetch_menu, make_store, probe_lines, server_env, start_server

CANDIDATES = ("plain", "guarded", "h11")
MB = 1024 * 1024


def speed(workdir: Path, rounds: int, duration: float) -> dict[str, dict[str, Any]]:
    servers: dict[str, tuple[Child, int, list[str]]] = {}
    for candidate in CANDIDATES:
        data_dir = workdir / f"speed-{candidate}"
        tokens = make_store(data_dir)
        port = free_port()
        child, _ = start_server(f"tablebox-{candidate}", data_dir, port, http=candidate)
        servers[candidate] = (child, port, tokens)
    _, port, tokens = servers["guarded"]
    lines, _ = probe_lines(port, tokens[0], candidate_lines(json.loads(fetch_menu(port, tokens[0]))))
    runs: dict[str, dict[str, list[tuple[float, float, int]]]] = {c: {"get": [], "order": []} for c in CANDIDATES}
    for n in range(rounds):
        print(f"  round {n + 1}/{rounds}", flush=True)
        for kind in ("get", "order"):
            for candidate, (child, port, tokens) in servers.items():
                cfg = {
                    "host": "127.0.0.1",
                    "port": port,
                    "conns": 50,
                    "warmup": 0.5,
                    "duration": duration,
                    "kind": kind,
                    "tokens": tokens,
                    "lang": "zh",
                    "lines": lines,
                    "lines_per_order": 3,
                    "key_prefix": f"c{random.getrandbits(32):08x}",
                    "rate": 0,
                }
                r = run_loadgen(cfg, server_pid=child.pid, workdir=workdir)
                per_cpu = r["rps"] / max(r["server_cpu_pct"] / 100, 0.01)
                runs[candidate][kind].append((r["rps"], per_cpu, r["non_2xx"] + r["conn_errors"]))
    figures: dict[str, dict[str, Any]] = {}
    for candidate, (child, _, _) in servers.items():
        figures[candidate] = {
            f"{kind}_{what}": statistics.median(run[i] for run in runs[candidate][kind])
            for kind in ("get", "order")
            for i, what in ((0, "rps"), (1, "per_cpu"))
        }
        figures[candidate]["errors"] = sum(run[2] for kind in ("get", "order") for run in runs[candidate][kind])
        figures[candidate]["rss_mb"] = rss_mb(child.pid)[0]
        child.stop()
    return figures


def order_once(port: int, token: str, lines: list[str], timeout: float = 5.0) -> tuple[str, float]:
    """One order on a new connection: (status or error, seconds)."""
    body = f'{{"client_key":"h{random.getrandbits(64):016x}","lines":[{lines[0]}]}}'.encode()
    began = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(
                f"POST /api/v1/tables/{token}/orders HTTP/1.1\r\nHost: box\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            answer = sock.recv(64)
        status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else "closed"
    except OSError as exc:
        status = type(exc).__name__
    return status, time.perf_counter() - began


def hostile(workdir: Path, candidate: str) -> dict[str, Any]:
    data_dir = workdir / f"hostile-{candidate}"
    tokens = make_store(data_dir)
    port = free_port()
    launcher = [PYTHON, str(BENCH_DIR / "serve_candidate.py"), candidate, "serve"]
    argv = ["prlimit", "--nofile=1024:1024", "--", *launcher]
    argv += ["--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", str(port)]
    child = Child(f"hostile-{candidate}", pinned(SERVER_CORE, argv), env=server_env(), log_path=data_dir / "server.log")
    try:
        wait_first_answer(child, port, "/healthz")
        lines, _ = probe_lines(port, tokens[0], candidate_lines(json.loads(fetch_menu(port, tokens[0]))))
        before = rss_mb(child.pid)[0]
        began = time.perf_counter()
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
        sent = 0
        for sock in socks:
            sock.settimeout(30)
            try:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: box\r\nX-Big: ")
                for _ in range(50):
                    sock.sendall(b"a" * MB)
                    sent += MB
            except OSError:
                pass  # closed by the server
        time.sleep(0.5)
        figures: dict[str, Any] = {
            "rss_before_mb": before,
            "rss_headers_mb": rss_mb(child.pid)[0],
            "headers_sent_mb": sent / MB,
            "headers_s": time.perf_counter() - began,
        }
        for sock in socks:
            sock.close()
        idle = []
        for n in range(1100):
            sock = socket.socket()
            sock.bind((f"127.0.0.{2 + n % 20}", 0))
            try:
                sock.connect(("127.0.0.1", port))
            except OSError:
                sock.close()
                continue
            idle.append(sock)
        time.sleep(0.5)
        figures["idle_order"], figures["idle_order_s"] = order_once(port, tokens[0], lines)
        for sock in idle:
            sock.close()
        return figures
    finally:
        child.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds per candidate and kind (default 7)")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds measured per run (default 3)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    workdir = Path(tempfile.mkdtemp(prefix="tablebox-candidates-"))
    try:
        print(f"speed: 50 clients, {args.rounds} rounds of {args.duration:g} s, candidates in turn", flush=True)
        fast = speed(workdir, args.rounds, args.duration)
        print("hostile: file limit 1,024; 4 x 50 MB unfinished headers; 1,100 idle connections", flush=True)
        bad = {candidate: hostile(workdir, candidate) for candidate in CANDIDATES}
    except KeyboardInterrupt:
        print("interrupted: stopping the servers", file=sys.stderr)
        return 130
    finally:
        Child.stop_all()
    print()
    print(
        f"{'candidate':<9}  {'menu GET/s':>10}  {'per CPU-s':>9}  {'orders/s':>8}  {'per CPU-s':>9}  {'RSS':>7}  "
        f"{'RSS after 4x50 MB heads':>24}  {'order under 1,100 idle':>22}"
    )
    for candidate in CANDIDATES:
        f, h = fast[candidate], bad[candidate]
        heads = f"{h['rss_before_mb']:.0f} -> {h['rss_headers_mb']:.0f} MB ({h['headers_s']:.1f} s)"
        print(
            f"{candidate:<9}  {f['get_rps']:>10,.0f}  {f['get_per_cpu']:>9,.0f}  {f['order_rps']:>8,.0f}  "
            f"{f['order_per_cpu']:>9,.0f}  {f['rss_mb']:>4.1f} MB  {heads:>24}  "
            f"{h['idle_order']:>10} in {h['idle_order_s'] * 1000:>5.0f} ms"
        )
    errors = {c: fast[c]["errors"] for c in CANDIDATES if fast[c]["errors"]}
    print("non-2xx answers or connection errors under load: " + (repr(errors) if errors else "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
