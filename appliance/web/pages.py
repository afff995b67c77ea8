"""GET /t/{token}: the page a table's QR code opens, whole in one answer (styles, script, and the store, the table
and the menu in the diner's language as embedded data: no other request before the menu shows), compressed by
Accept-Encoding and revalidated by ETag (appliance.diner_page.delivery). /sw.js (the page's service worker) and
/static/ (the page's parts) are sent the same way. Nothing comes from the internet. A bad or outdated code gets a
small page saying so, in the diner's language."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import msgspec
from litestar import Request, Response, Router, get
from litestar.params import FromPath
from litestar.response import File

from appliance.db.tables import resolve_token
from appliance.diner_page import HTML, SERVICE_WORKER, boot_json, page
from appliance.diner_page.delivery import (
    ASSETS,
    PAGES,
    CompressedBodies,
    asset,
    deliver,
    request_page_lang,
)
from appliance.diner_page.refusal import LANGS, old_sticker_call_url, refusal_page
from appliance.domain.errors import DomainError
from appliance.domain.messages import message_for
from appliance.images import NAME, images_dir, thumbnail
from appliance.web.diner import table_view
from appliance.web.errors import STATUS_BY_CODE


def bare(media_type: str) -> str:
    """The type without its charset: litestar adds `; charset=utf-8` to every text/ type itself."""
    return media_type.partition(";")[0]


def send(
    request: Request[Any, Any, Any],
    body: bytes,
    media_type: str,
    cache: CompressedBodies,
    vary: tuple[str, ...] = (),
    etag: str | None = None,
) -> Response[bytes]:
    """`body` as the phone can take it: 304 when its copy is current, else encoded by its Accept-Encoding."""
    answer = deliver(body, request.headers, cache=cache, vary=vary, etag=etag)
    if answer.status == 304:
        return Response(content=b"", status_code=304, headers=answer.headers)
    return Response(content=answer.body, media_type=bare(media_type), headers=answer.headers)


@get(
    "/t/{token:str}",
    operation_id="dinerPage",
    summary="The page a table's QR code opens",
    tags=["diner"],
    include_in_schema=False,
)
async def diner_page(request: Request[Any, Any, Any], token: FromPath[str]) -> Response[bytes]:
    state = request.app.state
    store = state.store
    snap = state.read_cache.get(store.read)
    try:
        table = resolve_token(snap.tables.get, store.secret, store.store_id, token)
    except DomainError as exc:
        # An old sticker gets the store's and table's names and a button calling a waiter (refusal.py).
        lang = request_page_lang(request, LANGS)  # the old-sticker page's switch sets the cookie too
        refused = refusal_page(
            exc.code,
            lang,
            message_for(exc.code, lang, exc.details, exc.message),
            store_name=snap.settings.store_name,
            table=exc.details.get("table"),
            call_url=old_sticker_call_url(token),
        )
        return Response(
            content=refused,
            status_code=STATUS_BY_CODE.get(exc.code, 403),
            media_type=bare(HTML),
            headers={"Cache-Control": "no-cache"},
        )
    lang = request_page_lang(request, snap.settings.languages)
    _, menu = state.rendered.get(snap, lang, snap.settings.minute_of_day())
    body = page(boot_json(lang, msgspec.json.encode(table_view(state, table)), menu), lang)
    return send(request, body, HTML, PAGES, vary=("Accept-Language", "Cookie"))


async def _asset(request: Request[Any, Any, Any], name: str) -> Response[bytes]:
    found = asset(name)
    if found is None:
        return Response(content=b"", status_code=404)
    return send(request, found.body, found.media_type, ASSETS, etag=found.etag)


@get("/sw.js", operation_id="dinerServiceWorker", summary="The diner page's service worker", include_in_schema=False)
async def service_worker(request: Request[Any, Any, Any]) -> Response[bytes]:
    """At the root so its scope covers every table's page (/t/...)."""
    return await _asset(request, SERVICE_WORKER)


@get("/static/{name:str}", operation_id="dinerPageFile", summary="The page's CSS and JS", include_in_schema=False)
async def static_file(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    return await _asset(request, name)


@get("/images/{name:str}", operation_id="dishPhoto", summary="A dish photo", tags=["diner"], include_in_schema=False)
async def dish_photo(request: Request[Any, Any, Any], name: FromPath[str]) -> File | Response[bytes]:
    """Photos are named by their content, so a phone may keep them for a year. `?w=192` asks for the list-size
    square copy (appliance.images.thumbnail: made once, off the event loop, then kept beside the photo); a size
    the box does not make is a 404."""
    data_dir = request.app.state.settings.data_dir
    width = request.query_params.get("w")
    path: Path | None
    if width is None:
        stored = images_dir(data_dir) / name
        path = stored if NAME.match(name) and stored.is_file() else None
    else:
        side = int(width) if width.isdigit() and len(width) < 5 else 0
        path = await anyio.to_thread.run_sync(thumbnail, data_dir, name, side)
    if path is None:
        return Response(content=b"", status_code=404)
    return File(
        path=path,
        media_type="image/jpeg",
        content_disposition_type="inline",
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )


# The page's other files (the name app.py mounts): /sw.js and /static/{name}.
static_router = Router(path="/", route_handlers=[service_worker, static_file])
