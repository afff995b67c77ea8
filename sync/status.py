"""Where each sync target stands (ok, retrying since, failing, idle) and "retry now", for the console and the
sync worker. The rules live in appliance.db.sync_state so that /healthz can share them."""

from __future__ import annotations

from appliance.db.sync_state import (NEEDS_A_PERSON, SyncState, TargetStatus, retry_now, sync_status,
                                     target_status)

__all__ = ["NEEDS_A_PERSON", "SyncState", "TargetStatus", "retry_now", "sync_status", "target_status"]
