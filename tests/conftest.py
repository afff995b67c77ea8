"""Shared fixtures: a real store on disk (the demo store), the web app through litestar's test client."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from appliance.db.connection import open_connection
from appliance.db.store_settings import load_store_settings
from appliance.db.tables import list_tables, table_token
from appliance.demo import ensure_demo_store
from appliance.settings import BoxSettings
from appliance.store import Store, read_secret
from appliance.web.app import create_app

# Tests never read the machine's own settings.
for _name in list(os.environ):
    if _name.startswith("TABLEBOX_"):
        del os.environ[_name]


def make_settings(data_dir: Path, **overrides: object) -> BoxSettings:
    values: dict[str, object] = {
        "public_base_url": "http://box.test:8080",
        "events_poll_seconds": 0.02,
        "events_keepalive_seconds": 0.5,
        "rate_limit_table_per_minute": 0,
        "rate_limit_address_per_minute": 0,
    }
    values.update(overrides)
    return BoxSettings(data_dir=data_dir, **values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> BoxSettings:
    s = make_settings(tmp_path / "data")
    ensure_demo_store(s)
    return s


@pytest.fixture
def store(settings: BoxSettings) -> Iterator[Store]:
    opened = Store.open(settings)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def db(settings: BoxSettings) -> Iterator[object]:
    """A plain connection to the same store file (what another process, like the console, would use)."""
    conn = open_connection(settings.db_path)
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def token_for(settings: BoxSettings, name: str) -> str:
    conn = open_connection(settings.db_path)
    try:
        store_id = load_store_settings(conn).store_id
        table = next(t for t in list_tables(conn) if t.name == name)
        return table_token(read_secret(settings.secret_path), store_id, table)
    finally:
        conn.close()


@pytest.fixture
def client(settings: BoxSettings, store: Store) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(settings, store)) as c:
        yield c


@pytest.fixture
def token(settings: BoxSettings) -> str:
    return token_for(settings, "A1")
