"""Reads the manager's console needs that belong to no one table: whether anything changed since it last looked."""

from __future__ import annotations

from dataclasses import dataclass

import apsw

from appliance.db.connection import scalar
from appliance.db.orders import newest_order_id


@dataclass(frozen=True, slots=True)
class Changes:
    """What the console compares between two looks: `data_version` moves only when another connection committed,
    and a newest order id above the last one seen means a new order came in."""

    data_version: int
    newest_order_id: int


def changes(conn: apsw.Connection) -> Changes:
    """The connection's data version and the newest order id (a cheap read, made four times a second)."""
    version: int = scalar(conn, "PRAGMA data_version")
    return Changes(version, newest_order_id(conn))
