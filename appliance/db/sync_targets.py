"""The store's sync_targets rows: which targets every order queues an outbox row for. Registered from the
settings' [sync.NAME] tables (`sync.config.register_targets` turns them into `TargetRow`s)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import apsw

from appliance.settings import SYNC_KINDS


@dataclass(frozen=True, slots=True)
class TargetRow:
    """A target as the store keeps it: its settings without secrets (the caller leaves them out)."""

    name: str
    kind: str
    enabled: bool
    config: Mapping[str, object]
    inbox_source: str | None = None  # orders that came in through this inbox only (the relay); None: every order


@dataclass(frozen=True, slots=True)
class Registered:
    enabled: tuple[str, ...]  # the targets of the settings that are enabled, by name
    disabled: tuple[str, ...]  # targets no longer in the settings, disabled now, by name


def register_targets(conn: apsw.Connection, targets: Iterable[TargetRow]) -> Registered:
    """Make the sync_targets rows match `targets`, in one transaction: each inserted or updated (kind, enabled,
    config, inbox source); a target of a known kind that is not among them is disabled, not deleted, so its outbox rows
    (delivered or not) stay for the record."""
    wanted = {t.name: t for t in targets}
    with conn:
        for target in wanted.values():
            conn.execute(
                "INSERT INTO sync_targets (name, kind, enabled, config, inbox_source) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, enabled = excluded.enabled,"
                " config = excluded.config, inbox_source = excluded.inbox_source",
                (
                    target.name,
                    target.kind,
                    int(target.enabled),
                    json.dumps(dict(target.config), sort_keys=True),
                    target.inbox_source,
                ),
            )
        marks = ",".join("?" * len(SYNC_KINDS))
        disabled = [
            str(name)
            for (name,) in conn.execute(
                f"UPDATE sync_targets SET enabled = 0 WHERE enabled AND kind IN ({marks})"
                f" AND name NOT IN (SELECT value FROM json_each(?)) RETURNING name",
                (*SYNC_KINDS, json.dumps(sorted(wanted))),
            )
        ]
    return Registered(tuple(sorted(t.name for t in wanted.values() if t.enabled)), tuple(sorted(disabled)))
