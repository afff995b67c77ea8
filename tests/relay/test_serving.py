"""The relay's server under hostile clients (issue #13), as a real `tablebox relay serve` process: idle connections
beyond the file limit, one address holding many, an endless header, a slow body, and a relay full of long-polls.
A box's long-poll (a request in hand) is never closed to make room."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from appliance import serving
from tests.edge import closed_by_server, closed_now, connect, file_limit_at_least, read_answer, running
from tests.relay.conftest import Box
from tests.relay.test_cli import enroll

pytestmark = pytest.mark.slow

MB = 1024 * 1024


def relay(tmp_path, nofile=None, **settings):
    database_url = f"sqlite:///{tmp_path / 'relay.db'}"
    env = {
        "TABLEBOX_RELAY_LOG_FORMAT": "json",
        "TABLEBOX_RELAY_RATE_LIMIT_ADDRESS_PER_MINUTE": "0",
        **{f"TABLEBOX_RELAY_{name.upper()}": str(value) for name, value in settings.items()},
    }
    store_id, secret, _ = enroll(database_url)
    server = running(["relay", "serve", "--database-url", database_url], env, tmp_path / "relay.log", nofile)
    return server, store_id, secret


class LongPoll(threading.Thread):
    """A box waiting on its inbox for `wait` seconds, from 127.0.0.1 (the relay's trusted proxy address)."""

    def __init__(self, url: str, store_id: str, secret: str, wait: float) -> None:
        super().__init__(daemon=True)
        self.box = Box(url, store_id, secret, time.time)
        self.wait = wait
        self.status: int | None = None
        self.took = 0.0

    def run(self) -> None:
        began = time.monotonic()
        try:
            self.status = self.box.poll(wait=self.wait).status_code
        except httpx.HTTPError as exc:
            self.status = -1
            self.error = exc
        finally:
            self.took = time.monotonic() - began
            self.box.http.close()


def limited(server):
    totals: dict[str, int] = {}
    for event in server.log_events():
        if event.get("event") == "http.limited":
            for name, value in event.items():
                if name not in {"event", "level", "timestamp", "open", "cap"}:
                    totals[name] = totals.get(name, 0) + value
    return totals


def test_1100_idle_connections_under_a_1024_file_limit_leave_room_and_keep_a_long_poll(tmp_path):
    server_cm, store_id, secret = relay(tmp_path, nofile=1024)
    cap = serving.connection_cap(serving.Limits(), 1024)
    with file_limit_at_least(4096), server_cm as server:
        poll = LongPoll(server.url, store_id, secret, wait=2)
        poll.start()
        time.sleep(0.3)  # the poll is waiting: a request in hand, never closed for room
        idle = [connect(server.port, f"127.0.0.{2 + n % 20}") for n in range(1100)]
        try:
            began = time.monotonic()
            assert httpx.get(server.url + "/healthz", timeout=1).status_code == 200
            assert time.monotonic() - began < 1.0
            poll.join(10)
            assert poll.status == 200 and poll.took >= 1.9  # it waited its whole 2 s
            assert server.open_files() <= cap + 40
            assert sum(closed_now(sock) for sock in idle) >= 1100 - cap
        finally:
            for sock in idle:
                sock.close()
    assert "Too many open files" not in server.log_text()
    assert limited(server)["evicted_idle"] >= 1100 - cap


def test_a_full_relay_of_long_polls_refuses_newcomers_at_once(tmp_path):
    server_cm, store_id, secret = relay(tmp_path, max_connections=4)
    with server_cm as server:
        polls = [LongPoll(server.url, store_id, secret, wait=1.5) for _ in range(4)]
        for poll in polls:
            poll.start()
        time.sleep(0.4)
        sock = connect(server.port, "127.0.0.2")
        began = time.monotonic()
        status, headers, body = read_answer(sock)
        assert (status, headers["retry-after"]) == (503, "1") and b"too_many_connections" in body
        assert time.monotonic() - began < 0.5
        sock.close()
        for poll in polls:
            poll.join(10)
        assert [p.status for p in polls] == [200] * 4
        assert httpx.get(server.url + "/healthz", timeout=1).status_code == 200  # room again
    assert limited(server)["full"] == 1


def test_one_address_is_capped_but_the_trusted_proxy_is_not(tmp_path):
    server_cm, _, _ = relay(tmp_path, max_connections_per_address=8)
    with server_cm as server:
        proxy = [connect(server.port, "127.0.0.1") for _ in range(20)]  # forwarded_allow_ips: carries everyone
        phone = [connect(server.port, "127.0.0.2") for _ in range(8)]
        try:
            extra = connect(server.port, "127.0.0.2")
            answer = read_answer(extra)
            assert answer is not None and answer[0] == 503
            extra.close()
            time.sleep(0.2)
            assert not any(closed_now(sock) for sock in proxy + phone)
        finally:
            for sock in proxy + phone:
                sock.close()
    assert limited(server)["per_address"] == 1


def test_an_unfinished_50_mb_header_is_closed_and_costs_no_memory(tmp_path):
    server_cm, _, _ = relay(tmp_path)
    with server_cm as server:
        before_kb = server.rss_kb()
        sock = connect(server.port, "127.0.0.2")
        sock.settimeout(5)
        sent = 0
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: relay\r\nX-Big: ")
            while sent < 50 * MB:
                sock.sendall(b"a" * MB)
                sent += MB
        except (BrokenPipeError, ConnectionResetError):
            pass
        sock.close()
        assert sent < 50 * MB
        assert server.rss_kb() - before_kb < 5 * 1024
        assert httpx.get(server.url + "/healthz", timeout=1).status_code == 200
    assert limited(server)["headers_too_large"] == 1


def test_a_slow_order_body_gets_408(tmp_path):
    server_cm, store_id, _ = relay(tmp_path, body_timeout_seconds=0.5)
    with server_cm as server:
        sock = connect(server.port, "127.0.0.2")
        sock.sendall(  # a phone's order reads its body first (sync/relay/app.py phone_write)
            f"POST /s/{store_id}/api/v1/tables/{'a' * 32}/orders HTTP/1.1\r\nHost: relay\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{".encode()
        )
        answer = read_answer(sock)
        assert answer is not None and answer[0] == 408
        assert closed_by_server(sock, 2)
        sock.close()
        assert httpx.get(server.url + "/healthz", timeout=1).status_code == 200
    assert limited(server)["body_timeout"] == 1
