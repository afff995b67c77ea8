"""The yardstick for the menu GET: a bare Litestar app that returns the same menu JSON bytes.

    python bench/bare_app.py --menu-file MENU.json --host 127.0.0.1 --port P

One GET route at the same path shape as the real one (a path parameter, a `lang` query parameter),
returning pre-encoded bytes: no token check, no database, no cache lookup. It runs under uvicorn with
the same options as `tablebox serve` (log_config=None, access_log=False, server_header=False; the
event loop and HTTP parser are uvicorn's "auto" choice in both: uvloop and httptools), so the ratio
of the two throughputs is the cost of Tablebox's own work per menu request.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn
from litestar import Litestar, Response, get


def create_app(menu: bytes) -> Litestar:
    @get("/api/v1/tables/{token:str}/menu")
    async def menu_route(token: str, lang: str | None = None) -> Response[bytes]:
        return Response(content=menu, media_type="application/json")

    return Litestar(route_handlers=[menu_route], logging_config=None, debug=False, openapi_config=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--menu-file", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = create_app(Path(args.menu_file).read_bytes())
    config = uvicorn.Config(app, host=args.host, port=args.port, log_config=None, access_log=False, server_header=False)
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
