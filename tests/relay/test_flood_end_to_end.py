"""A flood at the relay, with real processes on 127.0.0.1 (`tablebox relay serve` at its default rate limits, and
the box: `serve`, `syncd`, `printd`): one address sends forged table codes and orders with photographed stickers as
fast as it can, while a diner at another address (source 127.0.0.2) orders. The diner's order is taken; no forged
code reaches the relay's inbox, the box or its outbox (no `order.refused` flood); the attacker's address gets only
its share of the store's budget."""

from __future__ import annotations

import base64
import json
import math
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from sync.relay.storage import open_storage
from tests.conftest import token_for
from tests.relay.test_relay_end_to_end import Box, Relay, Stack, har_gow, wait_for

pytestmark = pytest.mark.slow

DEFAULT_LIMITS = {  # the relay's defaults (sync/relay/settings.py), spelt out: the test harness turns them off
    "rate_limit_address_per_minute": "600",
    "rate_limit_address_orders_per_minute": "60",
    "rate_limit_store_per_minute": "600",
    "rate_limit_token_per_minute": "30",
}
FORGED = 600
GENUINE = 200


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    started = Stack(tmp_path)
    try:
        yield started
    finally:
        started.close()


def forged_from(token: str) -> str:
    """The sticker's store, table and version with a made-up MAC: what a forger without the store secret sends."""
    raw = base64.b32decode(token.upper())
    return base64.b32encode(raw[:10] + os.urandom(10)).decode("ascii").lower()


def test_a_flood_of_forged_and_genuine_codes_from_one_address_does_not_stop_a_diner_at_another(stack, tmp_path):
    relay = Relay(stack, f"sqlite:///{tmp_path / 'relay.db'}").start(**DEFAULT_LIMITS)
    box = Box(stack, relay).start()
    tables = [f"A{n}" for n in range(1, 9)]
    codes = {name: token_for(box.settings, name) for name in [*tables, "T1"]}
    api = f"{relay.url}/s/{relay.store_id}/api/v1/tables"
    attacker = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=8))
    diner = httpx.Client(timeout=30, transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    stack.cleanups += [attacker.close, diner.close]

    def hashes_on_relay() -> bool:  # the box's menu push with its tables' code hashes has reached the relay
        return diner.get(f"{api}/{forged_from(codes['T1'])}").status_code == 403

    wait_for(hashes_on_relay, "the relay to hold the box's code hashes")
    assert diner.get(f"{api}/{codes['T1']}").json()["table"]["name"] == "T1"

    lines = har_gow(box, 1)
    jobs: list[tuple[str, str]] = [("forged", forged_from(codes[tables[n % 8]])) for n in range(FORGED)]
    for n in range(GENUINE):  # photos of two stickers, interleaved with the forged codes
        jobs.insert(n * 3, ("genuine", codes["A2" if n % 2 else "A3"]))
    results: list[tuple[str, str, int, dict[str, Any]]] = []
    flooding = threading.Event()

    def send(job: tuple[str, str]) -> None:
        kind, token = job
        flooding.set()
        client_key = uuid.uuid4().hex
        answer = attacker.post(f"{api}/{token}/orders", json={"client_key": client_key, "lines": lines})
        results.append((kind, client_key, answer.status_code, answer.json()))

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        flood = [pool.submit(send, job) for job in jobs]
        flooding.wait(10)
        # the diner, mid-flood
        body = {"client_key": uuid.uuid4().hex, "lines": lines}
        first = diner.post(f"{api}/{codes['T1']}/orders?lang=en", json=body)
        during = sum(1 for f in flood if f.done())
        for future in flood:
            future.result()
    elapsed = time.monotonic() - started
    assert first.status_code == 202, first.text
    assert 0 < during < len(jobs), "the diner ordered while the flood was going on"

    def taken() -> dict[str, Any] | None:
        answer = diner.post(f"{api}/{codes['T1']}/orders?lang=en", json=body)
        return answer.json() if answer.status_code == 200 else None

    order = wait_for(taken, "the box to take the diner's order")
    assert order["client_key"] == body["client_key"] and order["table"] == "T1" and order["status"] == "submitted"

    answers = Counter((kind, status) for kind, _, status, _ in results)
    assert answers[("forged", 202)] == 0 and answers[("forged", 403)] > 0
    assert set(answers) <= {("forged", 403), ("forged", 429), ("genuine", 202), ("genuine", 429)}
    for _, _, status, data in results:
        if status == 403:
            assert data["error"]["code"] == "forged_token"
        elif status == 429:
            assert data["error"]["details"]["scope"] in ("address", "table")  # never the store's budget
    # the attacker's address got at most its own budget of orders: a minute's worth and what refilled meanwhile
    sent = [key for kind, key, status, _ in results if status == 202]
    assert 0 < len(sent) <= 60 + math.ceil(elapsed)

    # the relay's inbox: the attacker's genuine-code orders and the diner's, no forged code
    storage = open_storage(relay.database_url, pool_size=1)
    try:
        inbox = storage.inbox_after(relay.store_id, 0, limit=1000)
    finally:
        storage.close()
    assert sorted(m.idempotency_key for m in inbox) == sorted([*sent, body["client_key"]])
    assert {m.token for m in inbox} <= set(codes.values())

    # the box applied exactly those, took them all, and refused nothing
    wait_for(
        lambda: box.db.execute("SELECT count(*) FROM inbox_seen").fetchone()[0] == len(inbox), "the box to apply all"
    )
    relayed = {r[0] for r in box.db.execute("SELECT client_key FROM orders WHERE channel = 'relay'")}
    assert relayed == {*sent, body["client_key"]}
    refused = [json.loads(r[0]) for r in box.db.execute("SELECT payload FROM outbox WHERE kind = 'order.refused'")]
    assert refused == []
    assert not box.syncd.log_has("relay.order_refused")
    assert relay.process.log_has("relay.code_refused")
