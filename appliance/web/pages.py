"""GET /t/{token}: the page a table's QR code opens (static HTML, CSS and JS served by the box itself; no
asset from the internet). A bad or outdated code gets a small page saying so, in the diner's language."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.params import FromPath
from litestar.response import File
from litestar.static_files import create_static_files_router

from appliance.db.tables import resolve_token
from appliance.diner_page import HTML, SHELL, STATIC_DIR, refusal_html
from appliance.domain.errors import DomainError
from appliance.domain.messages import message_for
from appliance.images import NAME, images_dir
from appliance.web.errors import STATUS_BY_CODE, request_lang


def _refusal_page(text: str, lang: str, status: int) -> Response[bytes]:
    return Response(content=refusal_html(text, lang), status_code=status, media_type=HTML)


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
    try:
        resolve_token(state.read_cache.get(store.read).tables.get, store.secret, store.store_id, token)
    except DomainError as exc:
        lang = request_lang(request)
        return _refusal_page(
            message_for(exc.code, lang, exc.details, exc.message), lang, STATUS_BY_CODE.get(exc.code, 403)
        )
    return Response(content=SHELL, media_type=HTML, headers={"Cache-Control": "no-cache"})


@get("/images/{name:str}", operation_id="dishPhoto", summary="A dish photo", tags=["diner"], include_in_schema=False)
async def dish_photo(request: Request[Any, Any, Any], name: FromPath[str]) -> File | Response[bytes]:
    """Photos are named by their content, so a phone may keep them for a year."""
    path = images_dir(request.app.state.settings.data_dir) / name
    if not NAME.match(name) or not path.is_file():
        return Response(content=b"", status_code=404)
    return File(
        path=path,
        media_type="image/jpeg",
        content_disposition_type="inline",
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )


static_router = create_static_files_router(
    path="/static", directories=[STATIC_DIR], include_in_schema=False, cache_control=None
)
