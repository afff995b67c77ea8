"""The relay end to end, with real processes on 127.0.0.1: `tablebox relay serve` (and `relay enroll`), the box
(`tablebox serve`, `tablebox syncd` with [sync.relay], `tablebox printd` on virtual printers) and a phone (httpx).
An order sent through the relay must print exactly once and its status must come back to the phone, through a relay
that goes down, a box killed mid-apply, a long-poll cut, a message delivered twice and a dish sold out meanwhile;
and the phone must never be told "accepted" for an order the box has not taken."""

from __future__ import annotations

import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from appliance.db.connection import open_connection, write_transaction
from appliance.db.menu import set_sold_out
from appliance.db.orders import change_status
from appliance.demo import ensure_demo_store
from appliance.domain.orders import Actor, OrderStatus
from printers.virtual import VirtualPrinter
from sync.relay.storage import open_storage
from tests.appliance.test_crash import ServerProcess, free_port
from tests.appliance.test_sdnotify import NotifySocket, is_ready
from tests.conftest import make_settings, token_for
from tests.printers.test_worker import TICKET_END
from tests.sync.syncd import toml_value

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PYTHON = [sys.executable, "-m", "appliance"]

# syncd with a disk that hangs on the first write to the WAL once FLAG exists (so: inside the COMMIT of the next
# transaction, before any of it is written); it touches ENTERED and waits there to be killed.
HANGING_SYNCD = r"""
import os, sys, time
import apsw
FLAG, ENTERED = sys.argv[1], sys.argv[2]

class HangingFile(apsw.VFSFile):
    def __init__(self, name, flags):
        path = name.filename() if hasattr(name, "filename") else (name or "")
        self.wal = str(path).endswith("-wal")
        super().__init__("", name, flags)

    def xWrite(self, data, offset):
        if self.wal and os.path.exists(FLAG):
            open(ENTERED, "w").close()
            while True:
                time.sleep(1)
        return super().xWrite(data, offset)

class HangingVFS(apsw.VFS):
    def __init__(self):
        super().__init__("hang-on-commit", "")

    def xOpen(self, name, flags):
        return HangingFile(name, flags)

vfs = HangingVFS()
from appliance.cli import main
sys.exit(main(sys.argv[3:]))
"""


def wait_for(check: Callable[[], Any], what: str, timeout: float = 30.0, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


class Process:
    """A command in its own process, logging to a file; optionally awaited until it says READY=1 (sd_notify)."""

    def __init__(
        self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None, notify: bool = False
    ) -> None:
        self.name = name
        self.log_path = log
        self.notify = NotifySocket() if notify else None
        environment = {**os.environ, "TABLEBOX_LOG_FORMAT": "json", **(env or {})}
        if self.notify:
            environment["NOTIFY_SOCKET"] = self.notify.address
        self._log = log.open("ab")
        self.proc = subprocess.Popen(argv, env=environment, stdout=self._log, stderr=self._log, cwd=REPO)
        if self.notify:
            try:
                self.notify.wait_for(is_ready, timeout=60)
            except AssertionError:
                self.stop()
                raise AssertionError(f"{name} did not become ready:\n{self.tail()}") from None

    def tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def log_has(self, event: str) -> bool:
        return f'"event": "{event}"' in self.log_path.read_text(
            errors="replace"
        ) or f'"event":"{event}"' in self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.stop()

    def kill9(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.stop()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if not self._log.closed:
            self._log.close()
        if self.notify:
            self.notify.close()
            self.notify = None


class Stack:
    """Everything a test starts, stopped at its end whatever happens."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.processes: list[Any] = []
        self.cleanups: list[Callable[[], None]] = []

    def add(self, process: Any) -> Any:
        self.processes.append(process)
        return process

    def close(self) -> None:
        for process in reversed(self.processes):
            try:
                if isinstance(process, ServerProcess):
                    process.stop()
                else:
                    process.terminate(20)
            except Exception:  # keep stopping the others
                process.proc.kill()
        for cleanup in reversed(self.cleanups):
            cleanup()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    started = Stack(tmp_path)
    try:
        yield started
    finally:
        started.close()


class Relay:
    def __init__(self, stack: Stack, database_url: str) -> None:
        self.stack = stack
        self.database_url = database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        enrolled = subprocess.run(
            [*PYTHON, "relay", "enroll", "小笼天下 Dumpling House", "--relay-db", database_url, "--base-url", self.url],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
            env={**os.environ, "TABLEBOX_LOG_FORMAT": "json"},
        )
        assert enrolled.returncode == 0, enrolled.stderr
        self.store_id = re.search(r"store_id: (\S+)", enrolled.stdout).group(1)  # type: ignore[union-attr]
        self.secret = re.search(r"secret:\s+([0-9a-f]{64})", enrolled.stdout).group(1)  # type: ignore[union-attr]
        assert f'store_id = "{self.store_id}"' in enrolled.stdout  # the [sync.relay] table to paste on the box
        self.process: Process | None = None
        self.starts = 0

    def start(self, **settings: str) -> Relay:
        """Start `relay serve`; `settings` are extra TABLEBOX_RELAY_* values (offline_after_seconds="2")."""
        self.starts += 1
        env = {
            "TABLEBOX_RELAY_RATE_LIMIT_ADDRESS_PER_MINUTE": "0",
            "TABLEBOX_RELAY_RATE_LIMIT_ADDRESS_ORDERS_PER_MINUTE": "0",
            "TABLEBOX_RELAY_RATE_LIMIT_STORE_PER_MINUTE": "0",
            "TABLEBOX_RELAY_RATE_LIMIT_TOKEN_PER_MINUTE": "0",
            "TABLEBOX_RELAY_RECHECK_SECONDS": "0.1",
            "TABLEBOX_RELAY_KEEPALIVE_SECONDS": "0.5",
            "TABLEBOX_RELAY_LOG_FORMAT": "json",
            **{f"TABLEBOX_RELAY_{k.upper()}": v for k, v in settings.items()},
        }
        self.process = self.stack.add(
            Process(
                "relay",
                [
                    *PYTHON,
                    "relay",
                    "serve",
                    "--database-url",
                    self.database_url,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                self.stack.tmp / "relay.log",
                env,
            )
        )

        def healthy() -> bool:
            assert self.process is not None and self.process.proc.poll() is None, self.process.tail()
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(healthy, "the relay to answer")
        return self

    def stop(self) -> None:
        assert self.process is not None
        # uvicorn shuts down gracefully, then re-raises SIGTERM (as systemd expects of a service it stopped)
        assert self.process.terminate(20) in (0, -signal.SIGTERM), self.process.tail()

    def store(self) -> Any:
        storage = open_storage(self.database_url, pool_size=1)
        try:
            return storage.store(self.store_id)
        finally:
            storage.close()

    def events(self, client_key: str) -> list[Any]:
        storage = open_storage(self.database_url, pool_size=1)
        try:
            return storage.events_for_key(self.store_id, client_key)
        finally:
            storage.close()


class Box:
    """A demo store with [sync.relay] pointing at `relay_url`, two virtual printers, and its three processes."""

    def __init__(self, stack: Stack, relay: Relay, relay_url: str | None = None) -> None:
        self.stack = stack
        self.settings = make_settings(stack.tmp / "box")
        ensure_demo_store(self.settings)
        self.config = self.settings.data_dir / "tablebox.toml"
        table = {
            "kind": "relay",
            "base_url": relay_url or relay.url,
            "store_id": relay.store_id,
            "api_secret": relay.secret,
            "timeout_seconds": 5,
            "retry_cap_seconds": 1.0,
            "pull_minutes": 0,
            "menu_check_seconds": 0.2,
        }
        self.config.write_text(
            "[sync.relay]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in table.items()), encoding="utf-8"
        )
        self.config.chmod(0o600)
        self.kitchen, self.bar = VirtualPrinter("kitchen").start(), VirtualPrinter("bar").start()
        stack.cleanups += [self.kitchen.stop, self.bar.stop]
        self.db = open_connection(self.settings.db_path)
        stack.cleanups.append(self.db.close)
        with write_transaction(self.db):
            self.db.execute("UPDATE printers SET uri = ? WHERE name = 'kitchen'", (self.kitchen.uri,))
            self.db.execute("UPDATE printers SET uri = ? WHERE name = 'bar'", (self.bar.uri,))
        self.token = token_for(self.settings, "A1")
        self.web: ServerProcess | None = None
        self.syncd: Process | None = None
        self.printd: Process | None = None

    def start(self) -> Box:
        self.web = self.stack.add(ServerProcess(self.settings.data_dir, self.stack.tmp / "web.log"))
        self.start_syncd()
        self.printd = self.stack.add(
            Process(
                "printd",
                [*PYTHON, "printd", "--data-dir", str(self.settings.data_dir)],
                self.stack.tmp / "printd.log",
                notify=True,
            )
        )
        return self

    def start_syncd(self, hanging: tuple[Path, Path] | None = None) -> Process:
        argv = [*PYTHON, "syncd", "--data-dir", str(self.settings.data_dir)]
        env = {}
        if hanging:
            argv = [sys.executable, "-c", HANGING_SYNCD, str(hanging[0]), str(hanging[1]), *argv[3:]]
            env["TABLEBOX_SQLITE_VFS"] = "hang-on-commit"
        self.syncd = self.stack.add(Process("syncd", argv, self.stack.tmp / "syncd.log", env, notify=True))
        return self.syncd

    def item(self, key: str) -> int:
        return self.db.execute("SELECT id FROM items WHERE key = ?", (key,)).fetchone()[0]

    def orders(self, client_key: str) -> list[tuple[Any, ...]]:
        return self.db.execute("SELECT id, channel, status FROM orders WHERE client_key = ?", (client_key,)).fetchall()

    def tickets(self) -> int:
        return self.kitchen.received.count(TICKET_END)

    def printed(self, order_id: int) -> list[tuple[str, str]]:
        return self.db.execute("SELECT station, state FROM print_jobs WHERE order_id = ?", (order_id,)).fetchall()

    def relay_rows_done(self) -> bool:
        waiting = self.db.execute(
            "SELECT count(*) FROM outbox WHERE target = 'relay' AND delivered_at IS NULL"
        ).fetchone()[0]
        return waiting == 0

    def menu_version(self) -> int:
        return self.db.execute("SELECT version FROM menu_meta").fetchone()[0]

    def advance(self, order_id: int, target: OrderStatus) -> None:
        """What the console's `a` key does (its own BEGIN IMMEDIATE transaction)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            change_status(self.db, order_id, target, Actor.STAFF)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise


class Phone:
    """A diner's phone off the store Wi-Fi: the relay's diner API, and its event stream read in a thread."""

    def __init__(self, relay: Relay, token: str) -> None:
        self.base = f"{relay.url}/s/{relay.store_id}/api/v1/tables/{token}"
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None

    def order(
        self, lines: list[dict[str, Any]], client_key: str | None = None
    ) -> tuple[dict[str, Any], httpx.Response]:
        body = {"client_key": client_key or uuid.uuid4().hex, "lines": lines}
        return body, httpx.post(f"{self.base}/orders?lang=en", json=body, timeout=10)

    def resend(self, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{self.base}/orders?lang=en", json=body, timeout=10)

    def visit(self) -> dict[str, Any]:
        answer = httpx.get(f"{self.base}/orders", timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def menu(self, lang: str = "en") -> httpx.Response:
        return httpx.get(f"{self.base}/menu?lang={lang}", timeout=10)

    def listen(self) -> None:
        def read() -> None:
            try:
                with httpx.stream("GET", f"{self.base}/events", timeout=httpx.Timeout(10, read=5)) as stream:
                    event, data = "message", []
                    for line in stream.iter_lines():
                        if self._stop.is_set():
                            return
                        if line.startswith("event:"):
                            event = line[6:].strip()
                        elif line.startswith("data:"):
                            data.append(line[5:].strip())
                        elif line == "" and data:
                            self.events.append((event, json.loads("\n".join(data))))
                            event, data = "message", []
            except httpx.TransportError:  # the relay went away: the stream is over
                return

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        wait_for(lambda: any(e == "snapshot" for e, _ in self.events), "the phone's event stream to start")

    def close(self) -> None:
        self._stop.set()
        if self._reader:
            self._reader.join(10)

    def saw(self, kind: str, client_key: str, status: str | None = None) -> dict[str, Any] | None:
        for event, data in self.events:
            if (
                event == "order"
                and data["type"] == kind
                and data["client_key"] == client_key
                and (status is None or (data.get("order") or {}).get("status") == status)
            ):
                return data
        return None


def har_gow(box: Box, quantity: int = 2) -> list[dict[str, Any]]:
    return [{"item_id": box.item("har_gow"), "quantity": quantity}]


def menu_on_relay(box: Box, phone: Phone) -> dict[str, Any]:
    """The relay has the box's current menu (what the phone reads)."""

    def current() -> dict[str, Any] | None:
        answer = phone.menu()
        if answer.status_code == 200 and answer.json()["version"] == box.menu_version():
            return answer.json()
        return None

    return wait_for(current, "the relay to hold the box's menu")


def accepted_on_phone(phone: Phone, client_key: str) -> dict[str, Any]:
    return wait_for(
        lambda: next((o for o in phone.visit()["orders"] if o["client_key"] == client_key), None),
        "the phone to see its order accepted",
    )


def test_an_order_through_the_relay_prints_once_and_its_status_reaches_the_phone(stack, database_url):
    relay = Relay(stack, database_url).start()
    box = Box(stack, relay).start()
    phone = Phone(relay, box.token)
    stack.cleanups.append(phone.close)

    # the phone reads exactly the menu the box serves on its own network
    menu = menu_on_relay(box, phone)
    assert menu == httpx.get(f"{box.web.url}/api/v1/tables/{box.token}/menu?lang=en", timeout=5).json()
    info = httpx.get(phone.base, timeout=5).json()
    assert info["online"] is True and info["store"]["name"] == "小笼天下 Dumpling House"

    phone.listen()
    body, answer = phone.order(har_gow(box))
    assert answer.status_code == 202 and answer.json() == {"status": "pending", "client_key": body["client_key"]}
    wait_for(lambda: box.tickets() == 1, "the kitchen ticket")
    ((order_id, channel, status),) = box.orders(body["client_key"])
    assert (channel, status) == ("relay", "submitted")
    wait_for(lambda: box.printed(order_id) == [("kitchen", "printed")], "the ticket to be marked printed")

    shown = accepted_on_phone(phone, body["client_key"])
    assert (shown["id"], shown["status"], shown["total_minor"]) == (order_id, "submitted", 6400)
    wait_for(lambda: phone.saw("accepted", body["client_key"]), "the accepted event on the phone's stream")
    again = phone.resend(body)  # the phone retries: the same order, never a second one
    assert again.status_code == 200 and again.json()["id"] == order_id
    # in English, each dish also carries its name in the store's first language (to show the staff)
    line = again.json()["lines"][0]
    assert (line["name"], line["original_name"]) == ("Crystal shrimp dumplings", "水晶虾饺")
    visit = httpx.get(f"{phone.base}/orders?lang=en", timeout=10).json()
    assert [o["lines"][0]["original_name"] for o in visit["orders"]] == ["水晶虾饺"]

    box.advance(order_id, OrderStatus.ACCEPTED)  # the console accepts it
    event = wait_for(lambda: phone.saw("status", body["client_key"], "accepted"), "the status event on the phone")
    assert event["order"]["id"] == order_id
    assert accepted_on_phone(phone, body["client_key"])["status"] == "accepted"
    box.advance(order_id, OrderStatus.PREPARING)
    wait_for(lambda: phone.saw("status", body["client_key"], "preparing"), "preparing on the phone")

    wait_for(box.relay_rows_done, "the relay rows to be delivered")
    assert box.tickets() == 1 and len(box.orders(body["client_key"])) == 1
    assert box.db.execute("SELECT count(*) FROM print_jobs").fetchone()[0] == 1


def test_the_relay_down_for_a_while_loses_nothing_and_applies_the_order_once(stack, tmp_path):
    relay = Relay(stack, f"sqlite:///{tmp_path / 'relay.db'}").start()
    box = Box(stack, relay).start()
    phone = Phone(relay, box.token)
    menu_on_relay(box, phone)

    assert box.syncd.terminate() == 0  # the box's link stops; the relay still counts it online for a minute
    body, answer = phone.order(har_gow(box))
    assert answer.status_code == 202
    relay.stop()  # ...and then the relay goes down with the order in its inbox
    with pytest.raises(httpx.TransportError):
        phone.visit()  # phones get errors while it is down

    box.start_syncd()
    wait_for(lambda: box.syncd.log_has("relay.poll_failed"), "syncd to find the relay down")
    assert box.orders(body["client_key"]) == []
    relay.start()  # back, on its own database: the order was kept
    wait_for(lambda: box.tickets() == 1, "the ticket once the relay is back")
    accepted_on_phone(phone, body["client_key"])
    wait_for(box.relay_rows_done, "the relay rows to be delivered")
    assert len(box.orders(body["client_key"])) == 1 and box.tickets() == 1
    assert phone.resend(body).status_code == 200


def test_a_box_killed_mid_apply_applies_the_order_once_after_restarting(stack, tmp_path):
    relay = Relay(stack, f"sqlite:///{tmp_path / 'relay.db'}").start()
    box = Box(stack, relay)
    box.web = stack.add(ServerProcess(box.settings.data_dir, tmp_path / "web.log"))
    flag, entered = tmp_path / "hang", tmp_path / "entered"
    box.start_syncd(hanging=(flag, entered))
    box.printd = stack.add(
        Process(
            "printd",
            [*PYTHON, "printd", "--data-dir", str(box.settings.data_dir)],
            tmp_path / "printd.log",
            notify=True,
        )
    )
    phone = Phone(relay, box.token)
    menu_on_relay(box, phone)
    wait_for(lambda: box.menu_version() == (relay.store().menu_version or 0), "the menu pushes to settle")

    flag.touch()  # from now on the next commit of syncd hangs before anything of it is written
    body, answer = phone.order(har_gow(box))
    assert answer.status_code == 202
    wait_for(entered.exists, "syncd to be inside the order's commit")
    assert relay.process.log_has("relay.delivered")  # the box has the message: it was applying it
    assert phone.visit()["pending"] == [body["client_key"]]  # the phone is not told anything yet
    box.syncd.kill9()
    assert box.orders(body["client_key"]) == []  # nothing of the half-done apply is in the store
    assert box.db.execute("SELECT count(*) FROM inbox_seen").fetchone()[0] == 0

    flag.unlink()
    box.start_syncd()  # restarted: it polls from the last applied seq, so it gets the order again
    wait_for(lambda: box.tickets() == 1, "the ticket after the restart")
    accepted_on_phone(phone, body["client_key"])
    wait_for(box.relay_rows_done, "the relay rows to be delivered")
    assert len(box.orders(body["client_key"])) == 1 and box.tickets() == 1
    assert box.db.execute("SELECT seq FROM inbox_seen").fetchall() == [(1,)]


def test_a_long_poll_cut_by_a_relay_restart_is_picked_up_again(stack, tmp_path):
    relay = Relay(stack, f"sqlite:///{tmp_path / 'relay.db'}").start()
    box = Box(stack, relay).start()
    phone = Phone(relay, box.token)
    menu_on_relay(box, phone)

    def polling_since(moment: float) -> bool:
        row = relay.store()
        return bool(row.polling and row.last_poll_at and row.last_poll_at > moment)

    # the relay dies mid-poll: the connection is cut without an answer
    wait_for(lambda: polling_since(0), "a long-poll in progress")
    relay.process.kill9()
    wait_for(lambda: box.syncd.log_has("relay.poll_failed"), "the box to notice the cut poll")
    restarted = time.time()
    relay.start()
    wait_for(lambda: polling_since(restarted), "the box to poll again")
    body, answer = phone.order(har_gow(box))
    assert answer.status_code == 202
    wait_for(lambda: box.tickets() == 1, "the ticket")
    accepted_on_phone(phone, body["client_key"])
    assert box.syncd.log_has("relay.reconnected")

    # and a relay restarted the orderly way while a poll waits
    wait_for(lambda: polling_since(restarted), "a long-poll in progress")
    relay.stop()
    restarted = time.time()
    relay.start()
    wait_for(lambda: polling_since(restarted), "the box to poll the restarted relay")
    second, answer = phone.order(har_gow(box, 1))
    assert answer.status_code == 202
    wait_for(lambda: box.tickets() == 2, "the second ticket")
    accepted_on_phone(phone, second["client_key"])
    assert box.syncd.proc.poll() is None
    assert len(box.orders(body["client_key"])) == len(box.orders(second["client_key"])) == 1


class ReplayingProxy(http.server.BaseHTTPRequestHandler):
    """Between the box and the relay: passes everything on, except that it answers the inbox poll after a delivery
    with that same delivery once more (a middlebox replaying a cached answer): the box gets a message twice."""

    upstream = ""
    armed = False
    last_delivery: bytes | None = None
    deliveries: list[list[int]] = []
    lock = threading.Lock()

    def do_GET(self) -> None:
        self._forward()

    def do_PUT(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        inbox = self.path.startswith("/v1/box/inbox")
        with self.lock:
            replay = inbox and ReplayingProxy.armed and ReplayingProxy.last_delivery is not None
            if replay:
                content, status = ReplayingProxy.last_delivery, 200
                ReplayingProxy.armed = False
        if not replay:
            headers = {
                k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")
            }
            try:
                answer = httpx.request(
                    self.command,
                    self.upstream + self.path,
                    content=body,
                    headers=headers,
                    timeout=httpx.Timeout(10, read=60),
                )
            except httpx.TransportError:
                self.send_error(502)
                return
            content, status = answer.content, answer.status_code
            if inbox and status == 200 and json.loads(content)["messages"]:
                with self.lock:
                    ReplayingProxy.last_delivery = content
        if inbox and status == 200:
            with self.lock:
                seqs = [m["seq"] for m in json.loads(content)["messages"]]
                if seqs:
                    ReplayingProxy.deliveries.append(seqs)
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, *args: Any) -> None:
        pass


def test_the_same_inbox_message_delivered_twice_is_applied_once(stack, tmp_path):
    relay = Relay(stack, f"sqlite:///{tmp_path / 'relay.db'}").start()
    ReplayingProxy.upstream, ReplayingProxy.armed, ReplayingProxy.deliveries = relay.url, True, []
    ReplayingProxy.last_delivery = None
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ReplayingProxy)
    proxy.daemon_threads = True
    serving = threading.Thread(target=proxy.serve_forever, daemon=True)
    serving.start()

    def stop_proxy() -> None:
        proxy.shutdown()
        proxy.server_close()

    stack.cleanups.append(stop_proxy)
    box = Box(stack, relay, relay_url=f"http://127.0.0.1:{proxy.server_address[1]}").start()
    phone = Phone(relay, box.token)
    menu_on_relay(box, phone)

    body, answer = phone.order(har_gow(box))
    assert answer.status_code == 202
    wait_for(lambda: ReplayingProxy.deliveries == [[1], [1]], "the message to reach the box twice")
    wait_for(lambda: box.tickets() == 1, "the ticket")
    accepted_on_phone(phone, body["client_key"])
    second, answer = phone.order(har_gow(box, 1))  # the line goes on after the repeat
    assert answer.status_code == 202
    wait_for(lambda: box.tickets() == 2, "the next order's ticket")
    assert len(box.orders(body["client_key"])) == 1 and len(box.orders(second["client_key"])) == 1
    assert box.db.execute("SELECT seq FROM inbox_seen ORDER BY seq").fetchall() == [(1,), (2,)]


def test_a_dish_sold_out_meanwhile_is_refused_and_never_shown_accepted(stack, tmp_path):
    relay = Relay(stack, f"sqlite:///{tmp_path / 'relay.db'}").start()
    box = Box(stack, relay).start()
    phone = Phone(relay, box.token)
    stale_menu = menu_on_relay(box, phone)  # the phone loaded the menu before the kitchen ran out
    phone.listen()
    stack.cleanups.append(phone.close)
    with write_transaction(box.db):
        set_sold_out(box.db, box.item("har_gow"), True)
    fresh = menu_on_relay(box, phone)
    assert fresh["version"] > stale_menu["version"]
    assert [i["sold_out"] for c in fresh["categories"] for i in c["items"] if i["id"] == box.item("har_gow")] == [True]

    body, answer = phone.order(har_gow(box))
    assert answer.status_code == 202  # the relay never decides: the box does
    refused = wait_for(lambda: phone.visit()["refused"], "the refusal to reach the phone")
    assert (
        refused
        == [
            {
                "client_key": body["client_key"],
                "error": {
                    "code": "sold_out",
                    "message": "Line 1: Crystal shrimp dumplings is sold out.",
                    "details": refused[0]["error"]["details"],
                },
            }
        ]
        and refused[0]["error"]["details"]["line"] == 1
    )
    told = phone.resend(body)
    assert told.status_code == 422 and told.json()["error"]["code"] == "sold_out"
    wait_for(lambda: phone.saw("refused", body["client_key"]), "the refused event on the phone's stream")
    assert phone.saw("accepted", body["client_key"]) is None and phone.visit()["orders"] == []
    assert not relay.events(body["client_key"]) or all(e.type == "refused" for e in relay.events(body["client_key"]))
    assert box.orders(body["client_key"]) == [] and box.tickets() == 0
