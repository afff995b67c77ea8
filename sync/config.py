"""The sync targets of this box: read from the settings' [sync.NAME] tables, and registered in the store so that
every order queues an outbox row for each enabled one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import apsw

from appliance.contract.relay import relay_source
from appliance.db import sync_targets
from appliance.settings import SYNC_SECRET_KEYS, BoxSettings
from sync.adapters import adapter_class
from sync.adapters.base import Capability


@dataclass(frozen=True)
class Target:
    name: str
    kind: str
    enabled: bool
    timeout_seconds: int
    pull_minutes: int
    retry_cap_seconds: float
    config: Mapping[str, Any]  # everything from [sync.NAME], secrets included: what the adapter gets

    @property
    def base_url(self) -> str:
        return str(self.config["base_url"])


def public_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A target's settings without its secrets: what the store keeps and what logs may show."""
    return {k: v for k, v in config.items() if k not in SYNC_SECRET_KEYS}


def targets(settings: BoxSettings) -> dict[str, Target]:
    """Every [sync.NAME] table of the settings, by name (load_settings has checked them)."""
    return {
        name: Target(
            name,
            config["kind"],
            bool(config["enabled"]),
            int(config["timeout_seconds"]),
            int(config["pull_minutes"]),
            float(config["retry_cap_seconds"]),
            dict(config),
        )
        for name, config in sorted(settings.sync_targets.items())
    }


def inbox_source(target: Target) -> str | None:
    """The inbox_seen source of the orders a target brings in itself (an adapter declaring INBOX: the relay, whose
    sequences are per relay store), for which alone it gets outbox rows; None for a target that gets every order."""
    if Capability.INBOX not in adapter_class(target.kind).capabilities:
        return None
    return relay_source(target.name, str(target.config.get("store_id") or ""))


def register_targets(conn: apsw.Connection, settings: BoxSettings) -> dict[str, list[str]]:
    """Make the store's sync_targets rows match the settings, in one transaction: each target inserted or updated
    (kind, enabled, its settings without secrets); an ERP target no longer in the settings is disabled, not
    deleted, so its rows (delivered or not) stay for the record (the relay's too: kind "relay"). Returns the names
    enabled and disabled."""
    done = sync_targets.register_targets(
        conn,
        [
            sync_targets.TargetRow(t.name, t.kind, t.enabled, public_config(t.config), inbox_source(t))
            for t in targets(settings).values()
        ],
    )
    return {"enabled": list(done.enabled), "disabled": list(done.disabled)}
