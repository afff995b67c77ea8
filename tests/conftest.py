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

# The modules whose tests take 20 s to 2 min each on 2 cores; True where a test may run apart from the rest of its
# module (no costly module fixture: test_release's wheelhouses are made once per run), False where the module stays
# whole (test_provision's `staged` runs provision.sh once per module).
LONG_TESTS = {
    "tests/provision/test_arm64.py": True,
    "tests/sync/test_soak.py": True,
    "tests/provision/test_release.py": True,
    "tests/relay/test_diner_page_through_relay.py": False,
    "tests/provision/test_provision.py": False,
    "tests/printers/test_kill.py": True,
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The long tests spread evenly over the first half of the run. pytest-xdist hands tests out in collection
    order, a run of consecutive tests at a time: the seven soak runs, collected at nine tenths of the suite, went to
    one worker at the end while the other had nothing left; all long tests at the front would have gone to one
    worker's first run of tests. Every other test keeps its order."""
    units: list[list[pytest.Item]] = []
    whole: dict[str, list[pytest.Item]] = {}
    rest: list[pytest.Item] = []
    for item in items:
        path = item.nodeid.split("::")[0]
        if path not in LONG_TESTS:
            rest.append(item)
        elif LONG_TESTS[path]:
            units.append([item])
        else:
            if path not in whole:
                whole[path] = []
                units.append(whole[path])
            whole[path].append(item)
    if not units:
        return
    step = len(rest) // 2 // len(units)
    spread: list[pytest.Item] = []
    for n, unit in enumerate(units):
        spread += unit
        spread += rest[n * step : (n + 1) * step]
    items[:] = [*spread, *rest[len(units) * step :]]


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
