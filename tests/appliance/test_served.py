"""`tablebox tables` prints the port the store is really served on: the server records its address beside the
store while it runs (appliance/served.py); a record a crash left behind is not believed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import replace

from appliance.served import Served, served_now, served_path, serving_here
from tests.edge import running

# The box's own environment without any TABLEBOX_ setting: the port setting is its default, 8080.
ENV = {k: v for k, v in os.environ.items() if not k.startswith("TABLEBOX_")}


def tables(data) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance", "tables", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
    )


def ports_printed(out: str) -> set[int]:
    return {int(line.split()[1].split("/t/")[0].rsplit(":", 1)[1]) for line in out.splitlines()}


def test_the_record_lasts_as_long_as_the_server(settings):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        here = replace(settings, host="127.0.0.1", port=port)
        assert served_now(here) is None
        with serving_here(here):
            assert served_now(here) == Served(os.getpid(), "127.0.0.1", port)
        assert not served_path(here).exists() and served_now(here) is None


def test_a_record_left_by_a_crash_is_not_believed(settings):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        served_path(settings).write_text(json.dumps({"pid": int(dead.stdout), "host": "127.0.0.1", "port": port}))
        assert served_now(settings) is None  # that process is gone
        served_path(settings).write_text(json.dumps({"pid": os.getpid(), "host": "127.0.0.1", "port": port}))
        assert served_now(settings) == Served(os.getpid(), "127.0.0.1", port)
    assert served_now(settings) is None  # alive, but nobody answers on that port any more
    served_path(settings).write_text("{not json")
    assert served_now(settings) is None


def test_tables_prints_the_port_the_demo_serves_on(tmp_path):
    data = tmp_path / "demo"
    with running(["demo", "--data-dir", str(data)], ENV, tmp_path / "demo.log") as demo:
        assert demo.port != 8080
        during = tables(data)
        assert during.returncode == 0, during.stderr
        assert len(during.stdout.splitlines()) == 14 and ports_printed(during.stdout) == {demo.port}
        assert f"served on port {demo.port}" in during.stderr and "the port setting says 8080" in during.stderr
        asked = subprocess.run(
            [sys.executable, "-m", "appliance", "tables", "--data-dir", str(data), "--port", "8123"],
            capture_output=True,
            text=True,
            env=ENV,
            timeout=60,
        )
        assert ports_printed(asked.stdout) == {8123}  # a port asked for on the command line wins
    assert not (data / "served.json").exists()
    after = tables(data)
    assert after.returncode == 0 and ports_printed(after.stdout) == {8080} and after.stderr == ""
