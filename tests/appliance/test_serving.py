"""The box's web server under hostile clients (issue #13, findings 1 and 2), as a real `tablebox serve` process:
connections beyond the file limit, an endless header, a slow head, a slow body, idle keep-alive, one address
holding many connections. Each time a phone on another connection still orders (201)."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from appliance import serving
from appliance.db.connection import open_connection
from appliance.demo import ensure_demo_store
from appliance.errors import ConfigError
from tests.appliance.web.conftest import item_id, key, token_for
from tests.conftest import make_settings
from tests.edge import closed_by_server, closed_now, connect, file_limit_at_least, read_answer, read_answers, running

pytestmark = pytest.mark.slow

MB = 1024 * 1024


@pytest.fixture
def store(tmp_path):
    settings = make_settings(tmp_path / "data")
    ensure_demo_store(settings)
    conn = open_connection(settings.db_path)
    har_gow = item_id(conn, "har_gow")
    conn.close()
    return settings, token_for(settings, "A1"), har_gow


def serve(tmp_path, settings, nofile=None, **limits):
    env = {
        "TABLEBOX_LOG_FORMAT": "json",
        "TABLEBOX_RATE_LIMIT_TABLE_PER_MINUTE": "0",
        "TABLEBOX_RATE_LIMIT_ADDRESS_PER_MINUTE": "0",
        **{f"TABLEBOX_{name.upper()}": str(value) for name, value in limits.items()},
    }
    return running(["serve", "--data-dir", str(settings.data_dir)], env, tmp_path / "web.log", nofile)


def order(server, token, har_gow, source="127.0.0.1"):
    """A phone's order on a new connection from `source`: (status, seconds it took)."""
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(base_url=server.url, transport=transport, timeout=10) as phone:
        began = time.monotonic()
        r = phone.post(
            f"/api/v1/tables/{token}/orders", json={"client_key": key(), "lines": [{"item_id": har_gow, "quantity": 1}]}
        )
        return r.status_code, time.monotonic() - began


def limited(server):
    """The server's counts of refusals and timeouts, summed over its `http.limited` log lines."""
    totals: dict[str, int] = {}
    for event in server.log_events():
        if event.get("event") == "http.limited":
            for name, value in event.items():
                if name not in {"event", "level", "timestamp", "open", "cap"}:
                    totals[name] = totals.get(name, 0) + value
    return totals


def test_1100_idle_connections_under_a_1024_file_limit_and_a_phone_still_orders(tmp_path, store):
    """Finding 2: 1,000 idle connections made every new connection fail. Now the server holds at most 1,024 - 128
    connections; when full it closes the oldest idle one for a newcomer, so the phone's order gets in at once."""
    settings, token, har_gow = store
    cap = serving.connection_cap(serving.Limits(), 1024)
    assert cap == 1024 - serving.RESERVED_FDS
    with file_limit_at_least(4096), serve(tmp_path, settings, nofile=1024) as server:
        before_kb = server.rss_kb()
        # 20 addresses x 55 connections: under the per-address cap (64), over the whole cap (896)
        idle = [connect(server.port, f"127.0.0.{2 + n % 20}") for n in range(1100)]
        try:
            status, took = order(server, token, har_gow)
            assert status == 201 and took < 1.0
            assert httpx.get(server.url + "/healthz", timeout=1).status_code == 200
            time.sleep(0.3)
            assert server.open_files() <= 1024 - serving.RESERVED_FDS + 40
            closed = sum(closed_now(sock) for sock in idle)
            assert closed >= 1100 - cap
            open_kb = server.rss_kb() - before_kb
            per_connection = open_kb * 1024 / (1100 - closed)
            assert per_connection < serving.CONNECTION_BYTES  # what MemoryMax= in the unit is worked out with
            assert server.proc.poll() is None
        finally:
            for sock in idle:
                sock.close()
    assert "Too many open files" not in server.log_text() and "EMFILE" not in server.log_text()
    assert limited(server)["evicted_idle"] >= 1100 - cap


def test_one_address_gets_503_beyond_its_connection_cap(tmp_path, store):
    settings, token, har_gow = store
    with serve(tmp_path, settings, max_connections_per_address=16) as server:
        held = [connect(server.port, "127.0.0.2") for _ in range(16)]
        try:
            time.sleep(0.2)
            turned = [connect(server.port, "127.0.0.2") for _ in range(5)]
            answers = [read_answer(sock) for sock in turned]
            assert [a[0] for a in answers] == [503] * 5
            assert answers[0][1]["retry-after"] == "1"
            assert b'"code": "too_many_connections"' in answers[0][2]
            assert all(closed_by_server(sock, 2) for sock in turned)
            for sock in turned:
                sock.close()
            assert not any(closed_now(sock) for sock in held)  # the first 16 are still open
            assert order(server, token, har_gow, source="127.0.0.3")[0] == 201  # another address orders
            held.pop().close()  # a slot of 127.0.0.2 is free again
            time.sleep(0.2)
            status, _ = order(server, token, har_gow, source="127.0.0.2")
            assert status == 201
        finally:
            for sock in held:
                sock.close()
    assert limited(server)["per_address"] == 5


def test_an_unfinished_50_mb_header_is_refused_and_costs_no_memory(tmp_path, store):
    """Finding 1: four connections sending `X-Big: ` and 50 MB without a line end took RSS from 63 to 260 MB."""
    settings, token, har_gow = store
    with serve(tmp_path, settings) as server:
        before_kb = server.rss_kb()
        chunk = b"a" * MB
        socks = [connect(server.port) for _ in range(4)]
        sent = [0] * 4
        for n, sock in enumerate(socks):
            sock.settimeout(5)
            try:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: box\r\nX-Big: ")
                while sent[n] < 50 * MB:
                    sock.sendall(chunk)
                    sent[n] += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server closed it: refused long before 50 MB
        assert all(s < 50 * MB for s in sent), sent
        assert server.rss_kb() - before_kb < 5 * 1024
        assert order(server, token, har_gow)[0] == 201
        for sock in socks:
            sock.close()
    assert limited(server)["headers_too_large"] == 4


def test_a_head_over_the_cap_gets_431_and_one_under_it_is_served(tmp_path, store):
    settings, _, _ = store
    with serve(tmp_path, settings, max_header_bytes=4096) as server:
        start = b"GET /healthz HTTP/1.1\r\nHost: box\r\n"
        under = start + b"X-Pad: " + b"p" * (4096 - len(start) - 11) + b"\r\n\r\n"
        assert len(under) == 4096
        sock = connect(server.port)
        for n in range(0, len(under), 1000):  # in pieces, as a slow network delivers it
            sock.sendall(under[n : n + 1000])
            time.sleep(0.01)
        answer = read_answer(sock)
        assert answer is not None and answer[0] == 200
        # the same connection, kept alive: a head one byte over the cap
        over = start + b"X-Pad: " + b"p" * (4097 - len(start) - 11) + b"\r\n\r\n"
        sock.sendall(over)
        status, headers, body = read_answer(sock)
        assert (status, headers["connection"]) == (431, "close")
        assert b'"code": "headers_too_large"' in body
        assert closed_by_server(sock, 2)
        sock.close()
        # two requests in one packet (pipelined) are both served: the cap counts each head on its own
        sock = connect(server.port)
        try:
            sock.sendall(under + under)
            assert [status for status, _ in read_answers(sock, 2)] == [200, 200]
        finally:
            sock.close()


def test_a_slow_head_gets_408_and_a_silent_connection_is_closed(tmp_path, store):
    settings, token, har_gow = store
    with serve(tmp_path, settings, header_timeout_seconds=0.5) as server:
        silent = connect(server.port)
        trickle = connect(server.port)
        began = time.monotonic()
        trickle.sendall(b"GET /healthz HTTP/1.1\r\n")
        for _ in range(20):  # one byte every 0.05 s: never a whole head within 0.5 s
            try:
                trickle.sendall(b"X")
            except OSError:
                break
            time.sleep(0.05)
        answer = read_answer(trickle)
        assert answer is not None and answer[0] == 408 and b"request_timeout" in answer[2]
        assert time.monotonic() - began < 2.0
        assert closed_by_server(silent, 2)
        assert silent.recv(10) == b""  # nothing was said to a connection that said nothing
        # on a kept-alive connection the next head's time starts with its first bytes
        kept = connect(server.port)
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: box\r\n\r\n")
        assert read_answer(kept)[0] == 200
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: bo")
        began = time.monotonic()
        answer = read_answer(kept)
        assert answer is not None and answer[0] == 408 and 0.4 < time.monotonic() - began < 2.0
        kept.close()
        assert order(server, token, har_gow)[0] == 201
        silent.close()
        trickle.close()
    counts = limited(server)
    assert counts["header_timeout"] == 2 and counts["idle_closed"] >= 1


def test_a_slow_body_gets_408_and_orders_go_on(tmp_path, store):
    settings, token, har_gow = store
    with serve(tmp_path, settings, body_timeout_seconds=0.5) as server:
        sock = connect(server.port)
        sock.sendall(
            f"POST /api/v1/tables/{token}/orders HTTP/1.1\r\nHost: box\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n{".encode()
        )
        began = time.monotonic()
        assert order(server, token, har_gow)[0] == 201  # while the slow body waits
        answer = read_answer(sock)
        assert answer is not None and answer[0] == 408
        assert 0.4 < time.monotonic() - began < 2.0
        assert closed_by_server(sock, 2)
        sock.close()
        assert order(server, token, har_gow)[0] == 201
    assert limited(server)["body_timeout"] == 1


def test_an_idle_keep_alive_connection_is_closed(tmp_path, store):
    settings, _, _ = store
    with serve(tmp_path, settings, idle_timeout_seconds=0.5) as server:
        sock = connect(server.port)
        request = b"GET /healthz HTTP/1.1\r\nHost: box\r\n\r\n"
        sock.sendall(request)
        assert read_answer(sock)[0] == 200
        time.sleep(0.2)
        sock.sendall(request)  # within the idle time: the connection is reused
        assert read_answer(sock)[0] == 200
        began = time.monotonic()
        assert closed_by_server(sock, 3)
        assert 0.3 < time.monotonic() - began < 2.0
        sock.close()


def test_a_file_limit_with_no_room_for_connections_is_refused_in_one_line(tmp_path, store):
    settings, _, _ = store
    with pytest.raises(RuntimeError) as failed, serve(tmp_path, settings, nofile=100):
        pass
    log = (tmp_path / "web.log").read_text()
    assert "tablebox: the file limit (100 open files) leaves no room for connections" in log
    assert "Traceback" not in log
    assert "LimitNOFILE=" in str(failed.value)


# -- the pieces, without a server ----------------------------------------------------------------------------------


def test_the_connection_cap_follows_the_file_limit_and_the_setting():
    assert serving.connection_cap(serving.Limits(), 4096) == 4096 - serving.RESERVED_FDS
    assert serving.connection_cap(serving.Limits(max_connections=100), 4096) == 100
    assert serving.connection_cap(serving.Limits(max_connections=10_000), 1024) == 1024 - serving.RESERVED_FDS
    with pytest.raises(ConfigError) as refused:
        serving.connection_cap(serving.Limits(), serving.RESERVED_FDS + 15)
    assert refused.value.exit_code == 2


def test_proxies_are_not_capped_per_address():
    guard = serving.Guard(serving.Limits(max_connections_per_address=1, exempt=("127.0.0.1", "10.0.0.0/8")), cap=100)
    assert [guard.admit("10.1.2.3") for _ in range(3)] == [None, None, None]
    assert [guard.admit("127.0.0.1") for _ in range(2)] == [None, None]
    assert [guard.admit("192.0.2.7") for _ in range(2)] == [None, "per_address"]
    assert guard.open == 6 and guard.by_address["10.1.2.3"] == 3
    guard.release("192.0.2.7")
    assert "192.0.2.7" not in guard.by_address and guard.open == 5
    named = serving.Guard(serving.Limits(max_connections_per_address=1, exempt=("proxy.local", "*x")), cap=100)
    assert named.admit("proxy.local") is None and named.admit("proxy.local") is None  # a name, not an address
    everyone = serving.Guard(serving.Limits(max_connections_per_address=1, exempt=("*",)), cap=100)
    assert everyone.admit("192.0.2.7") is None and everyone.admit("192.0.2.7") is None


def test_a_full_server_with_nothing_idle_refuses():
    guard = serving.Guard(serving.Limits(), cap=2)
    assert [guard.admit("192.0.2.1"), guard.admit("192.0.2.2"), guard.admit("192.0.2.3")] == [None, None, "full"]


def test_an_ipv4_client_on_an_ipv6_socket_counts_as_its_ipv4_address():
    assert serving.normal_address("::ffff:192.0.2.7") == "192.0.2.7"
    assert serving.normal_address("2001:db8::1") == "2001:db8::1"


def test_the_listening_socket_is_refused_when_the_port_is_taken():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            serving.listening_sockets("127.0.0.1", taken.getsockname()[1], 16)
