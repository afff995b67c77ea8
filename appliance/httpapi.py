"""What the box's diner API and the relay share over litestar: their API descriptions (`/schema`) made exact, and
telling a client that went away from a server fault.

The description: the shapes a phone or a box sends and is answered, described by msgspec from the very structs that
decode and encode them; both apps serve it through `ExactJsonRenderPlugin`. litestar's own description of a msgspec
struct drops what the strict decoder enforces (`forbid_unknown_fields` is not `additionalProperties: false`, a
minimum of 0 is lost), a handler that decodes its body itself (strictly, see `appliance.contract.decode`) has no
request body in it at all, and every operation with a parameter gets a 400 in litestar's own error shape, which
neither app ever answers. `exact_description` fixes those parts of what litestar generated; everything else (paths,
parameters, the documented answers) stays litestar's.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import HTTPException, InternalServerException
from litestar.openapi.plugins import JsonRenderPlugin

from appliance.contract.decode import JSON_MEDIA_TYPE

REF_TEMPLATE = "#/components/schemas/{name}"


def exact_description(
    spec: Mapping[str, Any],
    request_bodies: Mapping[str, type[Any] | Mapping[str, Any]],
    shapes: Iterable[type[Any]] = (),
    parameters: Mapping[str, Iterable[Mapping[str, Any]]] | None = None,
) -> dict[str, Any]:
    """A copy of `spec` (an OpenAPI 3.1 document as a dict) where every component schema named after one of
    `shapes` or of `request_bodies` (and the structs they hold) is msgspec's schema of it, the operation whose
    operationId is a key of `request_bodies` takes that struct as its required `application/json` body (or, given a
    dict, that OpenAPI request body as it is: a photo's bytes), one that is
    a key of `parameters` has those parameters too (headers and query parameters its handler reads itself), and
    litestar's default 400 answers (`{status_code, detail}`) are gone."""
    parameters = parameters or {}
    out = copy.deepcopy(dict(spec))
    kinds = list(dict.fromkeys([*(k for k in request_bodies.values() if not isinstance(k, Mapping)), *shapes]))
    _, components = msgspec.json.schema_components(kinds, ref_template=REF_TEMPLATE)
    out.setdefault("components", {}).setdefault("schemas", {}).update(components)
    found = set()
    for item in out.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            responses = operation.get("responses", {})
            for status in [s for s, answer in responses.items() if _litestar_default_error(answer)]:
                del responses[status]
            operation_id = operation.get("operationId", "")
            if operation_id in parameters:
                operation.setdefault("parameters", []).extend(dict(p) for p in parameters[operation_id])
                found.add(operation_id)
            kind = request_bodies.get(operation_id)
            if kind is None:
                continue
            found.add(operation_id)
            operation["requestBody"] = (
                dict(kind)
                if isinstance(kind, Mapping)
                else {
                    "required": True,
                    "content": {JSON_MEDIA_TYPE: {"schema": {"$ref": REF_TEMPLATE.format(name=kind.__name__)}}},
                }
            )
    missing = (set(request_bodies) | set(parameters)) - found
    if missing:
        raise ValueError(f"no operation with these ids to describe: {sorted(missing)}")
    return out


def _litestar_default_error(answer: Any) -> bool:
    schema = ((answer or {}).get("content") or {}).get(JSON_MEDIA_TYPE, {}).get("schema", {})
    return isinstance(schema, dict) and sorted(schema.get("required") or []) == ["detail", "status_code"]


class ExactJsonRenderPlugin(JsonRenderPlugin):
    """litestar's JSON rendering of the description, through `exact_description` (once: the description of a
    running app does not change)."""

    def __init__(
        self,
        *,
        request_bodies: Mapping[str, type[Any] | Mapping[str, Any]],
        shapes: Iterable[type[Any]] = (),
        parameters: Mapping[str, Iterable[Mapping[str, Any]]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.request_bodies = dict(request_bodies)
        self.shapes = list(shapes)
        self.parameters = dict(parameters or {})
        self._rendered: bytes | None = None

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        if self._rendered is None:
            exact = exact_description(openapi_schema, self.request_bodies, self.shapes, self.parameters)
            self._rendered = self.render_json(request, exact)
        return self._rendered


# What litestar raises when the connection closes before the body has arrived (`Request.stream`).
_CLIENT_GONE_DETAIL = "client disconnected prematurely"


def client_went_away(exc: HTTPException) -> bool:
    """Whether litestar's refusal is only the client closing the connection mid-request: nothing is wrong with the
    server and nobody is left to answer (logged as info, never as a 500)."""
    return isinstance(exc, InternalServerException) and exc.detail == _CLIENT_GONE_DETAIL
