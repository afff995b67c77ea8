"""The web app over the demo store through litestar's in-process test client."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from appliance.settings import BoxSettings
from appliance.store import Store
from appliance.web.app import create_app
from tests.conftest import token_for  # noqa: F401  (re-exported for the web tests)


def key() -> str:
    return uuid.uuid4().hex


def item_id(db: Any, key_: str) -> int:
    return db.execute("SELECT id FROM items WHERE key = ?", (key_,)).fetchone()[0]


def option_id(db: Any, group: str, option: str) -> int:
    return db.execute(
        "SELECT o.id FROM options o JOIN option_groups g ON g.id = o.group_id WHERE g.key = ? AND o.key = ?",
        (group, option),
    ).fetchone()[0]


def variant_id(db: Any, item_key: str, variant: str) -> int:
    return db.execute(
        "SELECT v.id FROM variants v JOIN items i ON i.id = v.item_id WHERE i.key = ? AND v.key = ?",
        (item_key, variant),
    ).fetchone()[0]


class LiveServer:
    """The app served by uvicorn on 127.0.0.1 with an ephemeral port, in a thread; stopped by the fixture."""

    def __init__(self, app: Any) -> None:
        import threading

        import uvicorn

        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=1
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        import time

        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        assert not self.thread.is_alive(), "server thread did not stop"


@pytest.fixture
def live(settings: BoxSettings, store: Store) -> Iterator[LiveServer]:
    with LiveServer(create_app(settings, store)) as server:
        yield server
