"""The one daemon runner of printd and syncd (appliance.daemon): if it went wrong, systemd would never see a
worker as started, would keep a worker with a dead or hung thread alive, or a signal would not stop it."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from appliance.daemon import WorkerGroup, WorkerLoop, run_daemon
from appliance.sdnotify import Notifier
from tests.appliance.test_sdnotify import NotifySocket


class Loop(WorkerLoop):
    def __init__(self, name: str, stop: threading.Event) -> None:
        self.stop = stop
        self.hang = threading.Event()
        self.turns = 0
        super().__init__(thread_name=f"test-{name}", what=f"loop {name}")

    def run(self) -> None:
        while not self.stop.wait(0.01):
            if self.hang.is_set():
                continue  # alive, but never coming round its loop again
            self.touch()
            self.turns += 1


class Group(WorkerGroup[Loop]):
    def __init__(self, names: list[str], stuck_after_seconds: float = 300.0) -> None:
        super().__init__(stuck_after_seconds=stuck_after_seconds)
        self.loops = [Loop(name, self.stop_event) for name in names]
        self.stopped = False

    def start(self) -> Group:
        self.start_loops()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.join_loops(time.monotonic() + 5)
        self.stopped = True


def test_a_group_is_healthy_while_every_thread_loops():
    group = Group(["a", "b"], stuck_after_seconds=0.6)
    assert group.health() == "the thread of loop a has stopped"  # not started yet
    group.start()
    try:
        deadline = time.monotonic() + 5
        while group.health() is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert group.health() is None
        group.loops[1].hang.set()
        time.sleep(0.1)
        assert group.health() is None  # slow is not stuck
        beat = group.loops[1].beat
        deadline = time.monotonic() + 5
        while group.health() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert group.health().startswith("loop b has been stuck for ")  # b only: a keeps coming round
        assert group.health(now=beat + 60).startswith("loop a has been stuck for ")  # the first one found is named
    finally:
        group.stop()
    assert group.health() == "the thread of loop a has stopped"
    assert not any(loop.thread.is_alive() for loop in group.loops)


def test_run_daemon_says_ready_feeds_the_watchdog_and_stops_on_sigterm():
    listener = NotifySocket()
    group = Group(["a"])
    notifier = Notifier(listener.address, watchdog_usec=40_000)  # a ping every 20 ms
    previous = signal.getsignal(signal.SIGTERM)
    # signal handlers are set from the main thread: the daemon runs here, the signal comes from another thread
    killer = threading.Thread(
        target=lambda: (listener.wait_for(lambda m: m == "WATCHDOG=1"), os.kill(os.getpid(), signal.SIGTERM))
    )
    killer.start()
    try:
        run_daemon(group, lambda: f"running {len(group.loops)} loop(s)", notifier=notifier)
    finally:
        killer.join(10)
    messages = [m for _, m in listener.messages]
    while (message := listener.receive(0.2)) is not None:
        messages.append(message)
    assert messages[0] == "READY=1\nSTATUS=running 1 loop(s)"
    assert "WATCHDOG=1" in messages and messages[-1] == "STOPPING=1"
    assert group.stopped and not group.loops[0].thread.is_alive()
    assert signal.getsignal(signal.SIGTERM) is previous  # the handler is put back
    listener.close()


def test_run_daemon_pings_only_while_the_worker_is_healthy():
    listener = NotifySocket()
    group = Group(["a"], stuck_after_seconds=0.2)
    notifier = Notifier(listener.address, watchdog_usec=40_000)
    stop = threading.Event()

    def hang_then_stop() -> None:
        listener.wait_for(lambda m: m == "WATCHDOG=1")
        group.loops[0].hang.set()
        listener.wait_for(lambda m: m.startswith("STATUS=unhealthy"))
        stop.set()

    helper = threading.Thread(target=hang_then_stop)
    helper.start()
    run_daemon(group, lambda: "running", stop=stop, notifier=notifier)
    helper.join(10)
    messages = [m for _, m in listener.messages]
    unhealthy = next(i for i, m in enumerate(messages) if m.startswith("STATUS=unhealthy: loop a has been stuck for"))
    while (message := listener.receive(0.2)) is not None:
        messages.append(message)
    assert "WATCHDOG=1" not in messages[unhealthy + 1 :]  # no ping once a thread hangs
    assert messages[-1] == "STOPPING=1" and group.stopped
    listener.close()


def test_a_worker_that_fails_to_start_is_stopped_and_the_signals_put_back():
    class Broken(Group):
        def start(self) -> Group:
            raise RuntimeError("no printers today")

    group = Broken(["a"])
    previous = signal.getsignal(signal.SIGINT)
    with pytest.raises(RuntimeError, match="no printers today"):
        run_daemon(group, lambda: "never", notifier=Notifier(None))
    assert signal.getsignal(signal.SIGINT) is previous
