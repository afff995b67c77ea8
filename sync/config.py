"""The sync targets of this box: read from the settings' [sync.NAME] tables, and registered in the store so that
every order queues an outbox row for each enabled one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

import apsw

from appliance.settings import SYNC_KINDS, SYNC_SECRET_KEYS, BoxSettings


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
        name: Target(name, config["kind"], bool(config["enabled"]), int(config["timeout_seconds"]),
                     int(config["pull_minutes"]), float(config["retry_cap_seconds"]), dict(config))
        for name, config in sorted(settings.sync_targets.items())
    }


def register_targets(conn: apsw.Connection, settings: BoxSettings) -> dict[str, list[str]]:
    """Make the store's sync_targets rows match the settings, in one transaction: each target inserted or updated
    (kind, enabled, its settings without secrets); an ERP target no longer in the settings is disabled, not
    deleted, so its rows (delivered or not) stay for the record (the relay's too: kind "relay"). Returns the names
    enabled and disabled."""
    wanted = targets(settings)
    with conn:
        for target in wanted.values():
            conn.execute(
                "INSERT INTO sync_targets (name, kind, enabled, config) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, enabled = excluded.enabled,"
                " config = excluded.config",
                (target.name, target.kind, int(target.enabled), json.dumps(public_config(target.config),
                                                                          sort_keys=True)))
        marks = ",".join("?" * len(SYNC_KINDS))
        disabled = [name for (name,) in conn.execute(
            f"UPDATE sync_targets SET enabled = 0 WHERE enabled AND kind IN ({marks})"
            f" AND name NOT IN (SELECT value FROM json_each(?)) RETURNING name",
            (*SYNC_KINDS, json.dumps(sorted(wanted))))]
    return {"enabled": sorted(t.name for t in wanted.values() if t.enabled), "disabled": sorted(disabled)}
