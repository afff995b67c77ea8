"""Shared fixtures: a real store on disk (the demo store), the web app through litestar's test client."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from appliance.cli import ensure_demo_store
from appliance.db.connection import open_connection
from appliance.settings import BoxSettings
from appliance.store import Store

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
