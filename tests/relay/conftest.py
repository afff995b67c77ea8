"""The relay's tests run against both storages: SQLite in a temporary folder, and PostgreSQL from Debian's
packages started here for the session (./run test installs it). Set RELAY_TESTS_WITHOUT_POSTGRES=1 to run
only the SQLite half on a machine without PostgreSQL; otherwise a missing PostgreSQL fails, never skips."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sync.relay.storage import SqlStorage, open_storage
from tests.relay.postgres import PostgresCluster, find_bin

STORAGES = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    bindir = find_bin()
    if bindir is None:
        if os.environ.get("RELAY_TESTS_WITHOUT_POSTGRES") == "1":
            pytest.skip("PostgreSQL is not installed and RELAY_TESTS_WITHOUT_POSTGRES=1")
        pytest.fail(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): `./run test` installs the "
            "postgresql package; or set RELAY_TESTS_WITHOUT_POSTGRES=1 to test SQLite only"
        )
    cluster = PostgresCluster(bindir).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=STORAGES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'relay.db'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    return cluster.create_database()


@pytest.fixture
def storage(database_url: str) -> Iterator[SqlStorage]:
    opened = open_storage(database_url)
    try:
        yield opened
    finally:
        opened.close()


class FakeClock:
    """Unix seconds that move only when told (signatures, polls and online state all read it)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def new_token() -> str:
    """A string shaped like a box's table code (the relay cannot check its MAC: the box does)."""
    return base64.b32encode(os.urandom(20)).decode("ascii").lower()


def wait_until(check: Any, timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class Box:
    """A box's signed requests to the relay (what sync/relay_link.py does), with knobs to get them wrong."""

    def __init__(self, base_url: str, store_id: str, secret: str, clock: Any) -> None:
        import httpx

        self.store_id = store_id
        self.secret = bytes.fromhex(secret)
        self.clock = clock
        self.http = httpx.Client(base_url=base_url, timeout=60)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        secret: bytes | None = None,
        store_id: str | None = None,
        now: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        import msgspec

        from appliance.contract.signing import sign

        raw = msgspec.json.encode(body) if body is not None else b""
        signed = (
            headers
            if headers is not None
            else sign(
                store_id or self.store_id,
                secret or self.secret,
                method,
                path,
                raw,
                now=self.clock() if now is None else now,
            )
        )
        return self.http.request(method, path, content=raw, headers={**signed, "Content-Type": "application/json"})

    def poll(self, after: int = 0, wait: float = 0, **kw: Any) -> Any:
        return self.request("GET", f"/v1/box/inbox?after={after}&wait={wait:g}", **kw)

    def push_menu(self, version: int, languages: tuple[str, ...] = ("zh", "en"), **kw: Any) -> Any:
        return self.request(
            "PUT",
            "/v1/box/menu",
            {
                "version": version,
                "store": {
                    "name": "小笼天下 Dumpling House",
                    "currency": "CNY",
                    "languages": list(languages),
                    "open_now": True,
                },
                "menus": {
                    lang: {
                        "version": version,
                        "lang": lang,
                        "categories": [{"id": 1, "name": f"dim sum ({lang})", "items": []}],
                    }
                    for lang in languages
                },
            },
            **kw,
        )

    def post_events(self, *events: dict[str, Any], **kw: Any) -> Any:
        return self.request("POST", "/v1/box/events", {"events": list(events)}, **kw)

    def close(self) -> None:
        self.http.close()


def accepted(client_key: str, status: str = "submitted", ticket_no: int = 7) -> dict[str, Any]:
    return {
        "id": f"accepted:{client_key}",
        "client_key": client_key,
        "type": "accepted",
        "at": "2026-01-01T12:00:00Z",
        "order": order_view(client_key, status, ticket_no),
        "error": None,
    }


def status_event(client_key: str, ref: str, status: str, ticket_no: int = 7) -> dict[str, Any]:
    return {
        "id": f"status:{ref}:{status}",
        "client_key": client_key,
        "type": "status",
        "at": "2026-01-01T12:05:00Z",
        "order": order_view(client_key, status, ticket_no),
        "error": None,
    }


def refused(client_key: str, code: str = "sold_out", message: str = "第 1 项：虾饺 已售罄。") -> dict[str, Any]:
    return {
        "id": f"refused:{client_key}",
        "client_key": client_key,
        "type": "refused",
        "at": "2026-01-01T12:00:00Z",
        "order": None,
        "error": {"code": code, "message": message, "details": {"line": 1}},
    }


def order_view(client_key: str, status: str, ticket_no: int) -> dict[str, Any]:
    return {
        "id": ticket_no + 100,
        "ticket_no": ticket_no,
        "status": status,
        "table": "A1",
        "client_key": client_key,
        "lines": [{"name": "虾饺 Har gow", "quantity": 2, "line_total_minor": 3600, "status": "active"}],
        "total_minor": 3600,
        "currency": "CNY",
        "created_at": "2026-01-01T12:00:00Z",
        "cancel_reason": None,
    }


class Phone:
    """A diner's phone on mobile data: the box's diner API under the relay's per-store prefix."""

    def __init__(self, base_url: str, store_id: str, token: str | None = None) -> None:
        import httpx

        self.token = token or new_token()
        self.prefix = f"/s/{store_id}/api/v1/tables/{self.token}"
        self.http = httpx.Client(base_url=base_url, timeout=30)

    def get(self, path: str = "", **kw: Any) -> Any:
        return self.http.get(self.prefix + path, **kw)

    def post(self, path: str, body: Any, **kw: Any) -> Any:
        return self.http.post(self.prefix + path, json=body, **kw)

    def order(self, client_key: str, **kw: Any) -> Any:
        body = {"client_key": client_key, "lines": [{"item_id": 3, "quantity": 2}], **kw.pop("body", {})}
        return self.post("/orders", body, **kw)

    def close(self) -> None:
        self.http.close()


def relay_settings(**overrides: Any) -> Any:
    from sync.relay.settings import RelaySettings

    values: dict[str, Any] = {
        "recheck_seconds": 0.1,
        "keepalive_seconds": 0.3,
        "rate_limit_store_per_minute": 0,
        "rate_limit_token_per_minute": 0,
        "rate_limit_address_per_minute": 0,
        "rate_limit_address_orders_per_minute": 0,
        "db_threads": 4,
    }
    values.update(overrides)
    return RelaySettings(**values)


class Relay:
    """A relay app served by uvicorn on 127.0.0.1 in a thread, its storage, a fake clock, and one store."""

    def __init__(self, storage: SqlStorage, clock: FakeClock, **overrides: Any) -> None:
        from sync.relay.app import create_relay_app
        from tests.appliance.web.conftest import LiveServer

        self.storage = storage
        self.clock = clock
        self.settings = relay_settings(**overrides)
        self.server = LiveServer(create_relay_app(self.settings, storage, clock=clock))
        self.opened: list[Any] = []

    def __enter__(self) -> Relay:
        self.server.__enter__()
        self.url = self.server.url
        return self

    def __exit__(self, *exc: object) -> None:
        for client in self.opened:
            client.close()
        self.server.__exit__(*exc)

    def enroll(self, name: str = "Dumpling House") -> Box:
        enrolled = self.storage.enroll(name)
        box = Box(self.url, enrolled.store_id, enrolled.secret, self.clock)
        self.opened.append(box)
        return box

    def phone(self, box: Box, token: str | None = None) -> Phone:
        phone = Phone(self.url, box.store_id, token)
        self.opened.append(phone)
        return phone


@pytest.fixture
def make_relay(storage: SqlStorage, clock: FakeClock) -> Iterator[Any]:
    started: list[Relay] = []

    def make(**overrides: Any) -> Relay:
        relay = Relay(storage, clock, **overrides).__enter__()
        started.append(relay)
        return relay

    yield make
    for relay in reversed(started):
        relay.__exit__(None, None, None)


@pytest.fixture
def relay(make_relay: Any) -> Relay:
    return make_relay()
