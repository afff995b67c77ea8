"""GET /healthz: is the database answering, how deep are the print and sync queues."""

from __future__ import annotations

from typing import Any

import apsw
import msgspec
from litestar import Request, Response, get
from litestar.openapi.datastructures import ResponseSpec

from appliance import __version__
from appliance.db.migrate import current_version
from appliance.db.printing import print_queue_health
from appliance.db.sync_state import NEEDS_A_PERSON, sync_status
from appliance.web.schemas import HealthOut, encoded


def health_report(conn: apsw.Connection) -> tuple[int, dict[str, Any]]:
    try:
        with conn:
            schema = current_version(conn)
            queue = print_queue_health(conn)
            targets = [t for t in sync_status(conn) if t.enabled]
            sync = [
                {
                    "name": t.name,
                    "kind": t.kind,
                    "state": t.state.value,
                    "since": t.since,
                    "pending": t.backlog,
                    "parked": t.parked,
                    "last_success": t.last_success,
                    "last_error": t.last_error,
                }
                for t in targets
            ]
    except apsw.Error as exc:
        return 503, {
            "status": "failing",
            "version": __version__,
            "database": {"ok": False, "schema_version": 0, "error": str(exc)},
            "printers": {"pending_jobs": 0, "failed_jobs": 0, "oldest_pending_at": None},
            "sync": [],
        }
    # a failed print job means a kitchen missing a ticket; a parked outbox row needs a person (a target that is
    # only retrying, an ERP down for a while, is not degraded: the box goes on and catches up by itself)
    degraded = queue.failed_jobs > 0 or any(t.state in NEEDS_A_PERSON for t in targets)
    return 200, {
        "status": "degraded" if degraded else "ok",
        "version": __version__,
        "database": {"ok": True, "schema_version": schema, "error": None},
        "printers": {
            "pending_jobs": queue.pending_jobs,
            "failed_jobs": queue.failed_jobs,
            "oldest_pending_at": queue.oldest_pending_at,
        },
        "sync": sync,
    }


@get(
    "/healthz",
    operation_id="health",
    summary="Health of the box",
    tags=["box"],
    responses={503: ResponseSpec(data_container=HealthOut, description="The database does not answer (`failing`).")},
)
async def healthz(request: Request[Any, Any, Any]) -> Response[HealthOut]:
    """200 while the database answers (status `ok`, or `degraded` when print jobs failed or sync rows are
    parked); 503 `failing` when the database does not answer. Each enabled sync target has its state: `ok`,
    `retrying` (since when, the last error), `failing` (rows parked: the ERP refused them), or `idle`."""
    status, report = health_report(request.app.state.store.read)
    return Response(
        content=encoded(HealthOut, msgspec.json.encode(report)), status_code=status, media_type="application/json"
    )
