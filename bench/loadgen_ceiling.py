"""How fast is the load generator itself?  Drive a trivial server with it and see where it saturates.

    python bench/loadgen_ceiling.py [--duration 3]

The trivial server (a raw uvloop Protocol, pinned to core 0 like the real server) answers every
request with pre-built bytes: a 36 KB "menu" for GET, a ~700 byte "order" for POST. If the load
generator (core 1) reaches ~100% CPU while the trivial server still has headroom, the printed rate is
the generator's ceiling; it must be well above what Tablebox does for the bench figures to be valid.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from procs import PYTHON, SERVER_CORE, Child, free_port, pinned, run_loadgen, wait_first_answer

MENU_BYTES = 36_000
ORDER_BYTES = 700


class TrivialHttp(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        out = []
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end]
            length = 0
            i = head.find(b"Content-Length: ")
            if i >= 0:
                length = int(head[i + 16 : head.find(b"\r\n", i) if head.find(b"\r\n", i) > 0 else None])
            total = end + 4 + length
            if len(buf) < total:
                break
            out.append(GET_RESP if head.startswith(b"GET") else POST_RESP)
            buf = buf[total:]
        self.buf = buf
        if out:
            self.transport.write(b"".join(out))  # type: ignore[union-attr]


def _resp(status: str, size: int) -> bytes:
    body = b'{"x":"' + b"a" * (size - 8) + b'"}'
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode() + body


GET_RESP = _resp("200 OK", MENU_BYTES)
POST_RESP = _resp("201 Created", ORDER_BYTES)


def serve(port: int) -> None:
    import uvloop

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(TrivialHttp, "127.0.0.1", port, backlog=1024)
        await server.serve_forever()

    uvloop.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    port = free_port()
    child = Child("trivial-server", pinned(SERVER_CORE, [PYTHON, __file__, "--serve", str(port)]))
    try:
        wait_first_answer(child, port, "/")
        lines = ['{"item_id":1,"quantity":1,"variant_id":null,"option_ids":[1]}']
        print(
            f"{'kind':<6} {'conns':>5} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'loadgen cpu':>11} {'server cpu':>10}"
        )
        for kind in ("get", "order"):
            for conns in (50, 200):
                r = run_loadgen(
                    {
                        "host": "127.0.0.1",
                        "port": port,
                        "conns": conns,
                        "warmup": 1.0,
                        "duration": args.duration,
                        "kind": kind,
                        "tokens": ["t1", "t2"],
                        "lines": lines,
                        "lines_per_order": 3,
                    },
                    server_pid=child.pid,
                )
                print(
                    f"{kind:<6} {conns:>5} {r['rps']:>9.0f} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} "
                    f"{r['loadgen_cpu_pct']:>10.0f}% {r['server_cpu_pct']:>9.0f}%  non-2xx={r['non_2xx']}"
                )
    finally:
        child.stop()


if __name__ == "__main__":
    main()
