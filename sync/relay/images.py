"""Dish photos through the relay: the box pushes the JPEGs its menu shows, phones load them from the relay.

A photo's name is its content: the first 16 hex digits of the SHA-256 of its bytes + ".jpg" (the box's
`appliance.images.prepare_image`), so the relay checks every upload against its name, a stored photo never
changes, one store can never replace another's picture, and phones may keep it for a year.

Box API (signed, under `/v1/box`): `POST /images/missing` {"names": [...]} -> {"missing": [...]} (the ones the
relay lacks, in the order asked); `PUT /images/{name}` with the JPEG as the body -> {"stored": true|false} (false:
already there). Public: `GET /images/{name}`, the bytes with `Cache-Control: public, max-age=31536000, immutable`.

Handlers take the relay from `request.app.state.relay` (sync.relay.app imports this module's routes).
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any

import msgspec
import structlog
from litestar import Request, Response, post, put
from litestar import get as get_route
from litestar.params import FromPath

from appliance.contract.decode import check_json_body, strict_decode
from appliance.contract.relay import MAX_IMAGE_BYTES, MAX_IMAGE_NAMES, ImageNames
from sync.relay.description import ANSWERS
from sync.relay.errors import RelayError

if TYPE_CHECKING:
    from sync.relay.app import Relay

log = structlog.get_logger("sync.relay")

NAME = re.compile(r"[0-9a-f]{16}\.jpg")  # the box's appliance.images.NAME, matched whole
MAX_NAMES = MAX_IMAGE_NAMES  # per question (the box asks in batches of this many)
JPEG_MAGIC = b"\xff\xd8\xff"
CACHE_FOREVER = "public, max-age=31536000, immutable"


def content_name(body: bytes) -> str:
    """The name a photo with these bytes has (what the box's prepare_image names it)."""
    return hashlib.sha256(body).hexdigest()[:16] + ".jpg"


def _relay(request: Request[Any, Any, Any]) -> Relay:
    relay: Relay = request.app.state.relay
    return relay


def _address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "?"


def _json(value: Any) -> Response[Any]:
    return Response(content=msgspec.json.encode(value), status_code=200, media_type="application/json")


async def box_missing_images(request: Request[Any, Any, Any]) -> Response[Any]:
    """Which of these photos the relay lacks (at most 500 names a request), in the order asked."""
    relay = _relay(request)
    body = await request.body()
    store_id = await relay.authenticate(request, body)
    check_json_body(request.headers.get("content-type"), body)
    names = strict_decode(body, ImageNames).names  # 400 / 415 / 422 as DomainError, answered in the relay's shape
    if len(names) > MAX_NAMES:
        raise RelayError("invalid_body", field="names", problem=f"names: at most {MAX_NAMES} a request")
    for n, name in enumerate(names):
        if not NAME.fullmatch(name):
            raise RelayError(
                "invalid_body", field=f"names[{n}]", problem=f"names[{n}]: not a photo name (16 hex digits and .jpg)"
            )
    names = list(dict.fromkeys(names))
    missing = await relay.db(relay.storage.missing_images, names) if names else []
    log.info("relay.images_missing", store=store_id, asked=len(names), missing=len(missing))
    return _json({"missing": missing})


async def box_put_image(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[Any]:
    """One photo, its JPEG bytes as the body (at most 1 MiB); its name must be its content's."""
    relay = _relay(request)
    body = await request.body()  # 413 body_too_large beyond MAX_IMAGE_BYTES (the route's own limit)
    store_id = await relay.authenticate(request, body)
    if not NAME.fullmatch(name):
        raise RelayError("invalid_image", field="name", message="the photo's name must be 16 hex digits and .jpg")
    if not body.startswith(JPEG_MAGIC):
        raise RelayError("invalid_image", field="body", message="the body is not a JPEG")
    if content_name(body) != name:
        raise RelayError(
            "invalid_image",
            field="name",
            message="the photo's name is not the start of its bytes' SHA-256 (a damaged upload?)",
        )
    new = await relay.db(relay.storage.put_image, name, body, relay.clock())
    log.info("relay.image_stored", store=store_id, name=name, bytes=len(body), new=new)
    return _json({"stored": new})


async def image(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[Any]:
    """A dish photo for phones; named by its content, so it may be kept for a year."""
    relay = _relay(request)
    relay.limit(relay.address_limiter, _address(request), "address")
    body = await relay.db(relay.storage.image, name) if NAME.fullmatch(name) else None
    if body is None:
        raise RelayError("not_found")
    return Response(content=body, media_type="image/jpeg", headers={"Cache-Control": CACHE_FOREVER})


# Under the `/v1/box` router. The PUT has its own body limit, whatever the router's (max_box_body_bytes): beyond
# 1 MiB litestar answers 413 body_too_large (the relay's error shape), from Content-Length before reading it.
BOX_IMAGE_ROUTES = [
    post(
        "/images/missing",
        operation_id="boxMissingImages",
        summary="Which dish photos the relay lacks",
        status_code=200,
        responses=ANSWERS["boxMissingImages"],
    )(box_missing_images),
    put(
        "/images/{name:str}",
        operation_id="boxPutImage",
        summary="Push a dish photo",
        request_max_body_size=MAX_IMAGE_BYTES,
        responses=ANSWERS["boxPutImage"],
    )(box_put_image),
]
IMAGE_ROUTE = get_route(
    "/images/{name:str}",
    operation_id="getImage",
    summary="A dish photo",
    media_type="image/jpeg",
    tags=["diner"],
    responses=ANSWERS["getImage"],
)(image)
