"""The console's database thread (tui/database.py) when the console closes: a read still asked for afterwards (a
poll worker that had not started yet) ends as cancelled, which Textual takes quietly, not as a RuntimeError from
a shut executor that fails the whole app ("cannot schedule new futures after shutdown", seen once in CI)."""

from __future__ import annotations

import asyncio

import pytest

from appliance.db.connection import scalar
from tui.database import ConsoleDatabase

pytestmark = pytest.mark.anyio


async def test_a_call_after_close_is_cancelled_and_one_before_is_answered(settings):
    db = ConsoleDatabase(settings.db_path)
    assert await db.call(scalar, "SELECT count(*) FROM tables") > 0
    db.close()
    with pytest.raises(asyncio.CancelledError):
        await db.call(scalar, "SELECT count(*) FROM tables")
    assert db.in_flight == {}
