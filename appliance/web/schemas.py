"""The shape of the box's own health answer (GET /healthz). The diner API's shapes, which the relay serves too, are
the contract's (`appliance.contract.diner`)."""

from __future__ import annotations

from typing import Literal, TypeVar, cast

from msgspec import Struct

T = TypeVar("T")


def encoded(shape: type[T], body: bytes) -> T:
    """JSON already encoded from a `shape` (cached menu bytes, an error body), handed to a litestar Response whose
    annotation names the shape for the OpenAPI description. litestar sends bytes as they are; the cast only tells the
    type checker what those bytes are."""
    del shape
    return cast(T, body)


class DatabaseHealth(Struct, kw_only=True):
    ok: bool
    schema_version: int
    error: str | None


class PrintersHealth(Struct, kw_only=True):
    pending_jobs: int
    failed_jobs: int
    oldest_pending_at: str | None


class SyncTargetHealth(Struct, kw_only=True):
    name: str
    kind: str
    state: Literal["ok", "retrying", "failing", "idle"]
    since: str | None  # retrying: when the oldest failing row was queued; failing: the first parking
    pending: int  # rows still to send (parked ones not counted)
    parked: int  # rows the ERP refused, waiting for a person (`tablebox sync retry`)
    last_success: str | None
    last_error: str | None


class HealthOut(Struct, kw_only=True):
    status: Literal["ok", "degraded", "failing"]
    version: str
    database: DatabaseHealth
    printers: PrintersHealth
    sync: list[SyncTargetHealth]
