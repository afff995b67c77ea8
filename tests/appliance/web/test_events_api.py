"""Live order status for diners over server-sent events, against a real server on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import httpx

from appliance.db.orders import change_status, void_line
from appliance.domain.orders import Actor, OrderStatus
from tests.appliance.web.conftest import item_id, key


def sse_events(response: httpx.Response) -> Iterator[dict]:
    event: dict = {}
    for line in response.iter_lines():
        if line == "":
            if "data" in event:
                yield event
            event = {}
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            event[name] = value[1:] if value.startswith(" ") else value


def next_event(stream: Iterator[dict], timeout: float = 5.0) -> dict:
    """Read the next event, failing the test (not hanging it) if none comes."""
    box: list = []
    reader = threading.Thread(target=lambda: box.append(next(stream)), daemon=True)
    reader.start()
    reader.join(timeout)
    assert box, "no event arrived"
    event = box[0]
    event["json"] = json.loads(event["data"])
    return event


def test_status_changes_stream_to_the_table_and_resume_after_reconnect(live, token, db):
    har_gow = item_id(db, "har_gow")
    with httpx.Client(base_url=live.url, timeout=10) as client:
        with client.stream("GET", f"/api/v1/tables/{token}/events") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            stream = sse_events(response)
            snapshot = next_event(stream)
            assert snapshot["event"] == "snapshot"
            assert snapshot["json"] == {"session": None, "orders": []}

            order = client.post(
                f"/api/v1/tables/{token}/orders",
                json={
                    "client_key": key(),
                    "lines": [{"item_id": har_gow, "quantity": 2}, {"item_id": har_gow, "quantity": 1}],
                },
            ).json()
            submitted = next_event(stream)
            assert submitted["event"] == "order"
            assert (submitted["json"]["order_id"], submitted["json"]["to"]) == (order["id"], "submitted")

            # staff act from another process: a plain connection to the same database file
            with db:
                change_status(db, order["id"], OrderStatus.ACCEPTED, Actor.STAFF)
            accepted = next_event(stream)
            assert (accepted["json"]["from"], accepted["json"]["to"]) == ("submitted", "accepted")
            assert int(accepted["id"]) > int(submitted["id"])

            with db:
                void_line(db, order["id"], 2, "kitchen ran out")
                change_status(db, order["id"], OrderStatus.CANCELLED, Actor.STAFF, "diner left")
            voided = next_event(stream)
            assert (voided["json"]["line_no"], voided["json"]["reason"]) == (2, "kitchen ran out")
            assert voided["json"]["total_minor"] == 6400
            cancelled = next_event(stream)
            assert (cancelled["json"]["to"], cancelled["json"]["reason"]) == ("cancelled", "diner left")

        # the phone lost its connection after `accepted`: it asks again with Last-Event-ID
        with client.stream(
            "GET", f"/api/v1/tables/{token}/events", headers={"Last-Event-ID": accepted["id"]}
        ) as response:
            stream = sse_events(response)
            replay = [next_event(stream), next_event(stream)]
            assert [e["id"] for e in replay] == [voided["id"], cancelled["id"]]


def test_events_of_other_tables_are_not_sent(live, token, settings, db):
    from tests.appliance.web.conftest import token_for

    har_gow = item_id(db, "har_gow")
    with httpx.Client(base_url=live.url, timeout=10) as client:
        with client.stream("GET", f"/api/v1/tables/{token}/events") as response:
            stream = sse_events(response)
            assert next_event(stream)["event"] == "snapshot"
            client.post(
                f"/api/v1/tables/{token_for(settings, 'A2')}/orders",
                json={"client_key": key(), "lines": [{"item_id": har_gow, "quantity": 1}]},
            )
            mine = client.post(
                f"/api/v1/tables/{token}/orders",
                json={"client_key": key(), "lines": [{"item_id": har_gow, "quantity": 1}]},
            ).json()
            first = next_event(stream)
            assert first["json"]["order_id"] == mine["id"]


def test_a_forged_token_gets_no_stream(live, token):
    with httpx.Client(base_url=live.url, timeout=5) as client:
        r = client.get(f"/api/v1/tables/{token[:-1]}{'z' if token[-1] != 'z' else 'y'}/events")
        assert r.status_code == 403 and r.json()["error"]["code"] == "forged_token"


def test_a_stream_follows_one_visit_only(live, token, db):
    from appliance.db.tables import set_session_status
    from appliance.domain.orders import SessionStatus

    har_gow = item_id(db, "har_gow")
    with httpx.Client(base_url=live.url, timeout=10) as client:
        first = client.post(
            f"/api/v1/tables/{token}/orders", json={"client_key": key(), "lines": [{"item_id": har_gow, "quantity": 1}]}
        ).json()
        with client.stream("GET", f"/api/v1/tables/{token}/events") as response:
            stream = sse_events(response)
            snap = next_event(stream)
            assert [o["id"] for o in snap["json"]["orders"]] == [first["id"]]
            session_id = snap["json"]["session"]["id"]
            with db:  # the party pays and leaves; the next party sits down and orders
                set_session_status(db, session_id, SessionStatus.PAID)
                set_session_status(db, session_id, SessionStatus.CLOSED)
            client.post(
                f"/api/v1/tables/{token}/orders",
                json={"client_key": key(), "lines": [{"item_id": har_gow, "quantity": 2}]},
            )
            with db:
                change_status(db, first["id"], OrderStatus.ACCEPTED, Actor.STAFF)
            event = next_event(stream)
            assert (event["json"]["order_id"], event["json"]["to"]) == (first["id"], "accepted")
            assert event["json"]["session_id"] == session_id
