"""systemd notifications: if they went wrong, systemd would never see the web server or the print worker as
started (Type=notify times out and kills it), or would keep a hung server alive because the watchdog
pings kept coming while no order could be saved, or would restart a healthy one."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import apsw
import httpx
import pytest
from litestar.testing import TestClient

from appliance.db.connection import open_connection, write_transaction
from appliance.demo import ensure_demo_store
from appliance.sdnotify import Notifier, feed_watchdog, watchdog_usec_from
from appliance.store import Store
from appliance.web.app import create_app
from printers.worker import PrintWorker
from tests.appliance.test_crash import ServerProcess
from tests.appliance.web.conftest import item_id, key, token_for
from tests.conftest import make_settings
from tests.printers.test_worker import settle


class NotifySocket:
    """What systemd listens on: an AF_UNIX datagram socket, bound to a path or to an abstract name."""

    def __init__(self, abstract: bool = False) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._dir: str | None = None
        if abstract:
            name = f"tablebox-test-{uuid.uuid4().hex}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            self._dir = tempfile.mkdtemp(prefix="tbx-notify-", dir="/tmp")  # sun_path holds 108 bytes only
            self.address = os.path.join(self._dir, "notify")
            self.sock.bind(self.address)
        self.messages: list[tuple[float, str]] = []

    def receive(self, timeout: float) -> str | None:
        """The next datagram, or None if none comes within `timeout` seconds."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096)
        except TimeoutError:
            return None
        message = data.decode()
        self.messages.append((time.monotonic(), message))
        return message

    def wait_for(self, wanted: Callable[[str], bool], timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            message = self.receive(left)
            if message is not None and wanted(message):
                return message
        raise AssertionError(f"no such notification within {timeout} s; got {[m for _, m in self.messages]}")

    def close(self) -> None:
        self.sock.close()
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)


@pytest.fixture
def notify_socket() -> Iterator[NotifySocket]:
    listener = NotifySocket()
    try:
        yield listener
    finally:
        listener.close()


def is_ready(message: str) -> bool:
    return "READY=1" in message.split("\n")


def is_ping(message: str) -> bool:
    return message == "WATCHDOG=1"


# --- the protocol -------------------------------------------------------------------------------------------


def test_ready_and_status_reach_a_socket_bound_to_a_path(notify_socket):
    notifier = Notifier(notify_socket.address)
    assert notifier.enabled
    assert notifier.ready(status="taking orders\non 8080")
    assert notify_socket.receive(5) == "READY=1\nSTATUS=taking orders on 8080"
    assert notifier.stopping()
    assert notify_socket.receive(5) == "STOPPING=1"
    notifier.close()


def test_an_abstract_socket_address_starts_with_at():
    listener = NotifySocket(abstract=True)
    try:
        notifier = Notifier(listener.address)
        assert notifier.watchdog()
        assert notifier.status("printing on 2 printer(s)")
        assert listener.receive(5) == "WATCHDOG=1"
        assert listener.receive(5) == "STATUS=printing on 2 printer(s)"
        notifier.close()
    finally:
        listener.close()


def test_not_under_systemd_nothing_is_sent_and_nothing_fails():
    notifier = Notifier.from_environ({})
    assert not notifier.enabled
    assert notifier.watchdog_interval is None
    assert notifier.ready() is False and notifier.watchdog() is False


def test_a_vanished_socket_is_reported_not_raised(tmp_path):
    notifier = Notifier(str(tmp_path / "gone"))
    assert notifier.ready() is False  # systemd went away: the service carries on
    notifier.close()


def test_watchdog_settings_follow_sd_watchdog_enabled():
    me = os.getpid()
    assert watchdog_usec_from({"WATCHDOG_USEC": "30000000"}) == 30_000_000
    assert watchdog_usec_from({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(me)}) == 30_000_000
    assert watchdog_usec_from({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(me + 1)}) is None
    assert watchdog_usec_from({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_usec_from({"WATCHDOG_USEC": "soon"}) is None
    assert watchdog_usec_from({}) is None
    env = {"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "30000000"}
    assert Notifier.from_environ(env).watchdog_interval == 15.0
    # a watchdog without a socket to ping is no watchdog
    assert Notifier.from_environ({"WATCHDOG_USEC": "30000000"}).watchdog_interval is None


def test_feed_watchdog_pings_only_while_healthy(notify_socket):
    answers = [None, None, "printer kitchen has been stuck for 301 s", "printer kitchen has been stuck for 316 s", None]
    stop = threading.Event()

    def health() -> str | None:
        answer = answers.pop(0)
        if not answers:
            stop.set()
        return answer

    notifier = Notifier(notify_socket.address, watchdog_usec=20_000)  # a ping every 10 ms
    feed_watchdog(notifier, stop, health)
    got = []
    while (message := notify_socket.receive(0.5)) is not None:
        got.append(message)
    assert got == [
        "WATCHDOG=1",  # at start
        "WATCHDOG=1",
        "WATCHDOG=1",
        "STATUS=unhealthy: printer kitchen has been stuck for 301 s",  # said once, no ping after it
        "WATCHDOG=1",
        "STATUS=running",
    ]
    notifier.close()


# --- a disk that hangs --------------------------------------------------------------------------------------


class HangingSyncVFS(apsw.VFS):
    """A disk whose fsync can be made to hang (a dying SD card, a stuck USB bridge): once `armed`, xSync
    blocks until `release` is set. `entered` says a sync is hanging; `syncs` counts the syncs done."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.armed = False
        self.entered = threading.Event()
        self.release = threading.Event()
        self.syncs = 0
        super().__init__(name, "")

    def xOpen(self, name, flags):
        return HangingSyncFile(self, name, flags)


class HangingSyncFile(apsw.VFSFile):
    def __init__(self, vfs: HangingSyncVFS, name, flags) -> None:
        self._vfs = vfs
        super().__init__("", name, flags)

    def xSync(self, flags):
        if self._vfs.armed:
            self._vfs.entered.set()
            self._vfs.release.wait(60)
        self._vfs.syncs += 1
        return super().xSync(flags)


@contextlib.contextmanager
def release_on_exit(vfs: HangingSyncVFS) -> Iterator[None]:
    """Whatever happens in the block, the disk comes back before the app and its writer are shut down."""
    try:
        yield
    finally:
        vfs.armed = False
        vfs.release.set()


def test_the_watchdog_ping_stops_while_the_writer_is_stuck_and_resumes_after(tmp_path, notify_socket):
    """The writer thread hangs inside the COMMIT of a real order (its fsync does not return). The web process
    must stop pinging, so systemd restarts it after WatchdogSec=, instead of a server that answers the menu but
    never saves an order. When the disk comes back, the order is taken and the pings resume."""
    vfs = HangingSyncVFS("hanging-watchdog")
    try:
        settings = make_settings(tmp_path / "d", sqlite_vfs=vfs.name)
        ensure_demo_store(settings)
        token = token_for(settings, "A1")
        conn = open_connection(settings.db_path)
        body = {"client_key": key(), "lines": [{"item_id": item_id(conn, "har_gow"), "quantity": 1}]}
        interval = 0.1
        notifier = Notifier(notify_socket.address, watchdog_usec=int(2 * interval * 1_000_000))  # WatchdogSec=0.2s
        store = Store.open(settings)
        with TestClient(create_app(settings, store, notifier=notifier)) as client, release_on_exit(vfs):
            assert notify_socket.wait_for(is_ready) == "READY=1\nSTATUS=taking orders"
            syncs_at_ready = vfs.syncs
            for _ in range(3):
                notify_socket.wait_for(is_ping)
            assert vfs.syncs == syncs_at_ready, "the writer probes must not write to the SD card"

            vfs.armed = True
            answer: dict[str, httpx.Response] = {}
            poster = threading.Thread(
                target=lambda: answer.update(r=client.post(f"/api/v1/tables/{token}/orders", json=body))
            )
            poster.start()
            assert vfs.entered.wait(20), "the order never reached the disk"
            # The probe answered just before the disk hung may still earn one ping; after that, none: four
            # intervals (twice WatchdogSec=, when systemd would already have restarted us) stay silent.
            pings_while_stuck = 0
            while (message := notify_socket.receive(4 * interval)) is not None:
                pings_while_stuck += is_ping(message)
                assert pings_while_stuck <= 1, f"still pinging with a stuck writer: {notify_socket.messages}"
            said = [m for _, m in notify_socket.messages]
            assert "STATUS=writer stuck: not answering; the watchdog will restart the server" in said
            assert answer == {}, "the order was answered while its commit hung"

            vfs.armed = False
            vfs.release.set()
            poster.join(20)
            assert answer["r"].status_code == 201
            assert notify_socket.wait_for(lambda m: m.startswith("STATUS=")) == "STATUS=taking orders"
            notify_socket.wait_for(is_ping)
            notify_socket.wait_for(is_ping)
        assert notify_socket.wait_for(lambda m: m.startswith("STOPPING=1")) == "STOPPING=1"
        store.close()
        assert (
            conn.execute("SELECT count(*) FROM orders WHERE client_key = ?", (body["client_key"],)).fetchone()[0] == 1
        )
        conn.close()
        notifier.close()
    finally:
        vfs.release.set()
        vfs.unregister()


def test_the_print_worker_is_unhealthy_while_a_printer_thread_hangs_or_has_stopped(tmp_path):
    from appliance.db.printing import queue_test_page
    from printers.virtual import VirtualPrinterPool

    vfs = HangingSyncVFS("hanging-printd")
    pool = VirtualPrinterPool()
    try:
        settings = make_settings(tmp_path / "d")
        ensure_demo_store(settings)
        conn = open_connection(settings.db_path)
        with write_transaction(conn):
            conn.execute("UPDATE printers SET enabled = 0 WHERE name = 'bar'")
        worker = PrintWorker(
            settings.db_path, resolve_virtual=lambda name: pool.get_or_start(name).uri, poll_seconds=0.01, vfs=vfs.name
        )
        (loop,) = worker.loops
        worker.start()
        kitchen = pool.get_or_start("kitchen")
        with write_transaction(conn):
            queue_test_page(conn, "kitchen")
        assert kitchen.wait_for(lambda data: b"\x1dV" in data), "the first test page did not print"
        assert settle(conn, {"printed": 1}), "the first test page was not confirmed"
        assert worker.health() is None

        vfs.armed = True
        with write_transaction(conn):
            queue_test_page(conn, "kitchen")
        assert vfs.entered.wait(20), "the printer thread never wrote"
        hung_since = loop.beat
        assert worker.health() is None  # hanging for less than stuck_after_seconds: not yet a hang
        assert worker.health(now=hung_since + 301) == "printer kitchen has been stuck for 301 s"
        assert loop.beat == hung_since  # a blocked thread does not come round its loop

        vfs.armed = False
        vfs.release.set()
        assert kitchen.wait_for(lambda data: data.count(b"\x1dV") >= 2), "the second test page did not print"
        assert settle(conn, {"printed": 2}), "the second test page was not confirmed"
        assert worker.health() is None

        worker.stop()
        assert worker.health() == "the thread of printer kitchen has stopped"
        conn.close()
    finally:
        vfs.release.set()
        pool.stop_all()
        vfs.unregister()


# --- the real processes -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_web_server_process_says_ready_then_pings_the_watchdog(tmp_path, notify_socket):
    settings = make_settings(tmp_path / "data")
    ensure_demo_store(settings)
    server = ServerProcess(
        settings.data_dir,
        tmp_path / "server.log",
        env={"NOTIFY_SOCKET": notify_socket.address, "WATCHDOG_USEC": "400000"},
    )
    try:
        assert notify_socket.wait_for(is_ready) == "READY=1\nSTATUS=taking orders"
        notify_socket.wait_for(is_ping)
        notify_socket.wait_for(is_ping)
        assert httpx.get(server.url + "/healthz", timeout=5).status_code == 200
    finally:
        server.stop()
    assert notify_socket.wait_for(lambda m: m.startswith("STOPPING=1")) == "STOPPING=1"
    # uvicorn stops cleanly, then re-raises SIGTERM: the unit's SuccessExitStatus=SIGTERM counts that as clean
    assert server.proc.returncode in (0, -signal.SIGTERM)


@pytest.mark.slow
def test_the_print_worker_process_says_ready_then_pings_the_watchdog(tmp_path, notify_socket):
    settings = make_settings(tmp_path / "data")
    ensure_demo_store(settings)
    env = {
        **os.environ,
        "NOTIFY_SOCKET": notify_socket.address,
        "WATCHDOG_USEC": "400000",
        "TABLEBOX_LOG_FORMAT": "json",
    }
    with (tmp_path / "printd.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "appliance", "printd", "--data-dir", str(settings.data_dir)],
            env=env,
            stdout=log,
            stderr=log,
        )
        try:
            assert notify_socket.wait_for(is_ready) == "READY=1\nSTATUS=printing on 2 printer(s)"
            notify_socket.wait_for(is_ping)
            notify_socket.wait_for(is_ping)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
    assert notify_socket.wait_for(lambda m: m.startswith("STOPPING=1")) == "STOPPING=1"
    assert proc.returncode == 0, (tmp_path / "printd.log").read_text()
