"""Profile the server under load with py-spy (sampling, from outside: the server code is untouched).

    pip install --target /tmp/pyspy py-spy          # or any py-spy on PATH / in --py-spy
    .venv/bin/python bench/profile_server.py --kind order --conns 200 --py-spy /tmp/pyspy/bin/py-spy

Starts the demo server like run.py (core 0), drives it from core 1, and while the load runs records
the server with `py-spy record --format raw` (collapsed stacks, all threads, idle frames dropped).

Caveat on one core: a thread that is runnable but waiting for the CPU or the GIL is not "idle" to
py-spy, so wall-clock samples overstate whatever the event loop is doing when it hands the GIL over
(e.g. every apsw call, which releases the GIL). --gil samples only the GIL holder: closer to CPU.
Prints the top functions by own time and by total time, and the share of each thread; keeps the
raw stacks file if --out is given (feed it to flamegraph.pl or speedscope).
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench
from procs import Child, free_port, run_loadgen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=("get", "order"), default="order")
    parser.add_argument("--conns", type=int, default=200)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--slow", action="store_true", help="on the slowsync VFS (simulated SD card)")
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or "/tmp/pyspy/bin/py-spy")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument(
        "--gil",
        action="store_true",
        help="sample only the thread holding the GIL (CPU spent in Python; time inside SQLite, "
        "which apsw runs without the GIL, is not seen)",
    )
    parser.add_argument("--out", help="keep the collapsed stacks here")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="tablebox-profile-"))
    raw = Path(args.out) if args.out else workdir / "stacks.txt"
    try:
        data_dir = workdir / "store"
        tokens = bench.make_store(data_dir)
        port = free_port()
        child, _ = bench.start_server("tablebox", data_dir, port, slow=args.slow)
        menu = bench.fetch_menu(port, tokens[0])
        lines: list[str] = []
        if args.kind == "order":
            lines, _ = bench.probe_lines(port, tokens[0], bench.candidate_lines(json.loads(menu)))
        cfg = {
            "host": "127.0.0.1",
            "port": port,
            "conns": args.conns,
            "warmup": 1.0,
            "duration": args.duration,
            "kind": args.kind,
            "tokens": tokens,
            "lang": "zh",
            "lines": lines,
            "lines_per_order": bench.LINES_PER_ORDER,
            "key_prefix": "prof",
        }
        spy = subprocess.Popen(
            [
                args.py_spy,
                "record",
                "--pid",
                str(child.pid),
                "--rate",
                str(args.rate),
                "--duration",
                str(int(args.duration)),
                "--format",
                "raw",
                "--threads",
                "--nonblocking",
                "--output",
                str(raw),
                *(["--gil"] if args.gil else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        result: dict = {}
        t = threading.Thread(target=lambda: result.update(run_loadgen(cfg, server_pid=child.pid, workdir=workdir)))
        t.start()
        _, err = spy.communicate()
        t.join()
        child.stop()
        print(
            f"{args.kind} x{args.conns}: {result.get('rps', 0):.0f} ok/s, p99 {result.get('p99_ms', 0):.1f} ms, "
            f"non-2xx {result.get('non_2xx')}"
        )
        if spy.returncode != 0 or not raw.exists():
            print(f"py-spy failed: {err.decode()[-1000:]}")
            return 1
        report(raw, args.top)
    finally:
        Child.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def report(raw: Path, top: int) -> None:
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        samples += n
        threads[frames[0]] += n
        own[frames[-1]] += n
        for frame in set(frames[1:]):
            total[frame] += n
    print(f"\n{samples} samples (non-idle). By thread:")
    for name, n in threads.most_common():
        print(f"  {100 * n / samples:5.1f}%  {name}")
    print(f"\nTop {top} by own time:")
    for frame, n in own.most_common(top):
        print(f"  {100 * n / samples:5.1f}%  {frame}")
    print(f"\nTop {top} by total time (inclusive):")
    for frame, n in total.most_common(top):
        print(f"  {100 * n / samples:5.1f}%  {frame}")


if __name__ == "__main__":
    raise SystemExit(main())
