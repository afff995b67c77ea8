"""Live order updates for diners: one watcher per process polls PRAGMA data_version and fans new
order_events out to the event streams of the tables they concern."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import apsw
import structlog

from appliance.db.order_events import OrderEvent, data_version, events_after
from appliance.db.orders import last_event_id

log = structlog.get_logger("appliance.events")

# Told to a stream whose reader fell too far behind: forget the backlog, read the visit again.
RESYNC: dict[str, Any] = {"resync": True}


class EventHub:
    """Subscribers register a queue per table; the hub reads only events newer than the last it saw,
    and only when another connection has committed (data_version moved)."""

    def __init__(self, conn: apsw.Connection, poll_seconds: float) -> None:
        self.conn = conn
        self.poll_seconds = poll_seconds
        self.last_id = last_event_id(conn)
        self._version = data_version(conn)
        self._subscribers: dict[int, set[asyncio.Queue[OrderEvent | dict[str, Any]]]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self.checks = 0

    def subscribe(self, table_id: int) -> asyncio.Queue[OrderEvent | dict[str, Any]]:
        queue: asyncio.Queue[OrderEvent | dict[str, Any]] = asyncio.Queue(maxsize=1000)
        self._subscribers[table_id].add(queue)
        return queue

    def unsubscribe(self, table_id: int, queue: asyncio.Queue[OrderEvent | dict[str, Any]]) -> None:
        subscribers = self._subscribers.get(table_id)
        if subscribers is not None:
            subscribers.discard(queue)
            if not subscribers:
                del self._subscribers[table_id]

    @property
    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="tablebox-events")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                self.poll()
            except apsw.Error as exc:  # a busy or broken database must not kill live updates for good
                log.warning("events.poll_failed", error=str(exc))

    def poll(self) -> int:
        """Deliver new events; returns how many were read."""
        self.checks += 1
        version = data_version(self.conn)
        if version == self._version:
            return 0
        self._version = version
        read = 0
        while True:
            batch = events_after(self.conn, self.last_id)
            for row in batch:
                self.last_id = row.id
                for queue in tuple(self._subscribers.get(row.table_id, ())):
                    if queue.full():  # a stalled reader: forget its backlog and tell it to re-read
                        while not queue.empty():
                            queue.get_nowait()
                        queue.put_nowait(RESYNC)
                        continue
                    queue.put_nowait(row)
            read += len(batch)
            if len(batch) < 500:
                return read
