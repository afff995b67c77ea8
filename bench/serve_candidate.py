"""Run `tablebox serve` (or `tablebox relay serve`) on one of the HTTP server candidates of issue #13, to measure
what the bounds of appliance/serving.py cost (bench/run.py --http CANDIDATE starts the server through this).

    python bench/serve_candidate.py CANDIDATE serve --data-dir DIR --host 127.0.0.1 --port P

- guarded: what `tablebox serve` runs: uvicorn + httptools behind appliance/serving.py (own accept loop, connection
  caps, head size and time, body time, idle keep-alive).
- plain: uvicorn + httptools with the options `tablebox serve` had before issue #13: no bound but the 5 s keep-alive.
- h11: uvicorn + h11 (pure Python) with h11_max_incomplete_event_size = max_header_bytes: a header cap (400 beyond
  it), nothing else.
"""

from __future__ import annotations

import argparse
import runpy
import sys
from typing import Any

CANDIDATES = ("guarded", "plain", "h11")


def unguarded(http: str) -> Any:
    def build_server(
        app: Any,
        *,
        host: str,
        port: int,
        limits: Any,
        proxy_headers: bool = True,
        forwarded_allow_ips: str | None = None,
        on_exit: Any = None,
    ) -> Any:
        import uvicorn

        extra = {"h11_max_incomplete_event_size": limits.max_header_bytes} if http == "h11" else {}
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            http=http,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=3,
            server_header=False,
            proxy_headers=proxy_headers,
            forwarded_allow_ips=forwarded_allow_ips,
            **extra,
        )

        class Server(uvicorn.Server):
            def handle_exit(self, sig: int, frame: Any) -> None:
                if on_exit is not None:
                    on_exit()
                super().handle_exit(sig, frame)

        return Server(config)

    return build_server


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("candidate", choices=CANDIDATES)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the tablebox command and its options")
    args = parser.parse_args(argv)
    if args.candidate != "guarded":
        from appliance import serving

        serving.build_server = unguarded({"plain": "httptools", "h11": "h11"}[args.candidate])  # type: ignore[assignment]
    # `python -m appliance ...` in this process, with the candidate in place (the command imports serving lazily)
    sys.argv = ["tablebox", *args.command]
    runpy.run_module("appliance", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
