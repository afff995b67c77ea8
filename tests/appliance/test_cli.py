"""The `tablebox` command: init, demo, tables, serve, and its refusals."""

from __future__ import annotations

import argparse
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from appliance.cli import build_parser, main
from tests.appliance.test_crash import free_port

ENV = {**os.environ, "TABLEBOX_PUBLIC_BASE_URL": "http://box.test:8080"}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance", *args], capture_output=True, text=True, env=ENV, timeout=60
    )


def test_init_makes_a_store_and_a_private_secret(tmp_path):
    data = tmp_path / "store"
    r = run("init", "--data-dir", str(data), "--store-name", "川味小馆", "--currency", "JPY")
    assert r.returncode == 0, r.stderr
    assert "川味小馆" in r.stdout and "JPY" in r.stdout
    assert (data / "store.db").exists()
    assert stat.S_IMODE((data / "store.secret").stat().st_mode) == 0o600
    again = run("init", "--data-dir", str(data))
    assert again.returncode == 2 and "already exists" in again.stderr
    bad = run("init", "--data-dir", str(tmp_path / "x"), "--currency", "ABC")
    assert bad.returncode == 2 and "unknown currency" in bad.stderr


def test_tables_without_a_store_says_what_to_do(tmp_path):
    r = run("tables", "--data-dir", str(tmp_path / "none"))
    assert r.returncode == 2 and "tablebox init" in r.stderr


def test_demo_creates_the_store_and_tables_lists_its_urls(tmp_path):
    data = tmp_path / "demo"
    port = free_port()
    log = (tmp_path / "demo.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "appliance",
            "demo",
            "--data-dir",
            str(data),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=ENV,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "demo.log").read_text()
            time.sleep(0.1)
        r = run("tables", "--data-dir", str(data))
        assert r.returncode == 0
        lines = r.stdout.splitlines()
        assert len(lines) == 14
        name, url = lines[0].split()
        assert name == "A1" and url.startswith("http://box.test:8080/t/")
        token = url.rsplit("/", 1)[1]
        info = httpx.get(f"http://127.0.0.1:{port}/api/v1/tables/{token}").json()
        assert info["table"]["name"] == "A1"
        har_gow = next(
            i["id"]
            for c in httpx.get(f"http://127.0.0.1:{port}/api/v1/tables/{token}/menu?lang=en").json()["categories"]
            for i in c["items"]
            if i["name"].startswith("Crystal shrimp")
        )
        order = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/tables/{token}/orders",
            json={"client_key": "demo-order-0001", "lines": [{"item_id": har_gow, "quantity": 1}]},
        )
        assert order.status_code == 201
        deadline = time.monotonic() + 10
        while "print.printed" not in (tmp_path / "demo.log").read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        banner = (tmp_path / "demo.log").read_text()
        assert "print.printed" in banner  # the demo's virtual kitchen printer took the ticket
        assert "created the demo store" in banner and url in banner
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        log.close()
    assert proc.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a clean shutdown
    # a second demo run reuses the store instead of replacing it
    assert (data / "store.db").exists()


def test_help_documents_every_command():
    text = build_parser().format_help()
    for command in ("init", "demo", "serve", "tables"):
        assert command in text
    r = run("serve", "--help")
    assert "--data-dir" in r.stdout and "--port" in r.stdout and "--host" in r.stdout


def test_main_reports_settings_errors_without_a_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("nonsense = 1\n")
    assert main(["tables", "--config", str(bad), "--data-dir", str(tmp_path)]) == 2
    assert "unknown setting 'nonsense'" in capsys.readouterr().err


def test_printd_prints_queued_tickets_and_stops_on_sigterm(tmp_path):
    from appliance.db.connection import open_connection
    from appliance.demo import ensure_demo_store
    from printers.virtual import VirtualPrinter
    from tests.conftest import make_settings
    from tests.printers.test_worker import TICKET_END, place

    settings = make_settings(tmp_path / "shop")
    ensure_demo_store(settings)
    with VirtualPrinter("kitchen") as kitchen:
        conn = open_connection(settings.db_path)
        with conn:
            conn.execute("UPDATE printers SET uri = ? WHERE name = 'kitchen'", (kitchen.uri,))
        proc = subprocess.Popen(
            [sys.executable, "-m", "appliance", "printd", "--data-dir", str(settings.data_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=ENV,
        )
        try:
            place(conn, n=3)
            assert kitchen.wait_for(lambda b: b.count(TICKET_END) == 3, timeout=20)
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0, out
        assert conn.execute("SELECT state, count(*) FROM print_jobs WHERE station = 'kitchen'").fetchall() == [
            ("printed", 3)
        ]
        assert b"print.printed" in out
        conn.close()


def test_stickers_command_writes_a_sheet_and_explains_mistakes(settings, tmp_path, capsys):
    out = tmp_path / "stickers.pdf"
    box = ["--data-dir", str(settings.data_dir), "--public-base-url", "http://192.168.1.50:8080"]
    assert main(["stickers", *box, "--pdf", str(out)]) == 0
    assert out.read_bytes().startswith(b"%PDF") and f"wrote {out}" in capsys.readouterr().out
    assert main(["stickers", *box]) == 2
    assert "--pdf FILE" in capsys.readouterr().err
    assert main(["stickers", *box, "--table", "Z9", "--png", str(tmp_path / "x.png")]) == 2
    assert "Z9" in capsys.readouterr().err


def test_stickers_command_refuses_a_bad_file_type_or_wifi_password(settings, tmp_path, capsys):
    box = ["--data-dir", str(settings.data_dir), "--public-base-url", "http://192.168.1.50:8080"]
    assert main(["stickers", *box, "--pdf", str(tmp_path / "x.jpg")]) == 2
    assert ".pdf or .png" in capsys.readouterr().err
    assert (
        main(
            [
                "stickers",
                *box,
                "--png",
                str(tmp_path / "x.png"),
                "--wifi-ssid",
                "Shop",
                "--wifi-password",
                "short",
            ]
        )
        == 2
    )
    assert "8 to 63" in capsys.readouterr().err


def test_a_new_store_gets_its_menu_and_tables_from_a_file(tmp_path, capsys):
    import json

    from appliance.demo import demo_data

    data = str(tmp_path / "data")
    assert main(["init", "--data-dir", data, "--store-name", "Test"]) == 0
    menu = demo_data()
    menu["tables"] = menu["tables"][:3]
    good = tmp_path / "menu.json"
    good.write_text(json.dumps(menu, ensure_ascii=False), "utf-8")
    broken = tmp_path / "broken.json"
    broken.write_text(
        json.dumps({"categories": [{"key": "x", "name": {"en": "X"}, "items": [{"key": "y", "price_minor": 100}]}]})
    )
    assert main(["menu", "import", str(broken), "--data-dir", data]) == 2
    assert "does not follow the menu format (missing 'name')" in capsys.readouterr().err
    menu_bad_station = json.loads(json.dumps(menu))
    menu_bad_station["categories"][0]["items"][0]["station"] = "roof"
    broken.write_text(json.dumps(menu_bad_station), "utf-8")
    assert main(["menu", "import", str(broken), "--data-dir", data]) == 2
    assert "names a station" in capsys.readouterr().err
    assert main(["menu", "import", str(good), "--data-dir", data]) == 0
    dishes = sum(len(c["items"]) for c in menu["categories"])
    assert capsys.readouterr().out.startswith(f"imported {dishes} dishes in {len(menu['categories'])} categories")
    assert main(["menu", "import", str(good), "--data-dir", data]) == 2  # not twice
    assert "already has a menu" in capsys.readouterr().err
    assert main(["tables", "add", "B9", "--area", "Bar", "--data-dir", data]) == 0
    assert main(["tables", "add", "B9", "--data-dir", data]) == 2
    assert "already a table called B9" in capsys.readouterr().err
    assert main(["tables", "--data-dir", data]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names == [t["name"] for t in menu["tables"]] + ["B9"]


# --- global options, --help examples ---------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["before", "after", "between"])
def test_global_options_work_before_and_after_the_command(tmp_path, monkeypatch, capsys, where):
    """`tablebox --data-dir D tables add X` once changed the store at the default location instead of D."""
    default = tmp_path / "default"
    monkeypatch.setenv("TABLEBOX_DATA_DIR", str(default))
    monkeypatch.delenv("TABLEBOX_CONFIG", raising=False)
    data = str(tmp_path / "shop")
    assert main(["init", "--data-dir", data]) == 0 and main(["init"]) == 0  # a store at each place
    given = ["--data-dir", data]
    argv = {
        "before": [*given, "tables", "add", "X"],
        "after": ["tables", "add", "X", *given],
        "between": ["tables", *given, "add", "X"],
    }[where]
    assert main(argv) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert main(["--data-dir", data, "tables", "--public-base-url", "http://shop.test"]) == 0
    assert capsys.readouterr().out.startswith("X  http://shop.test/t/")
    assert main(["tables", "--public-base-url", "http://default.test"]) == 0
    out, err = capsys.readouterr()
    assert out == "" and "no tables yet" in err  # the store at the default location was not touched


def test_an_option_given_at_both_levels_takes_the_later_one(tmp_path, capsys):
    first, second = str(tmp_path / "one"), str(tmp_path / "two")
    assert main(["init", "--data-dir", first]) == 0 and main(["init", "--data-dir", second]) == 0
    assert main(["--data-dir", first, "tables", "add", "--data-dir", second, "B1"]) == 0
    capsys.readouterr()
    assert main(["tables", "--data-dir", second, "--public-base-url", "http://x.test"]) == 0
    assert capsys.readouterr().out.startswith("B1  http://x.test/t/")
    assert main(["tables", "--data-dir", first, "--public-base-url", "http://x.test"]) == 0
    assert capsys.readouterr().out == ""


def every_parser(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from every_parser(child, (*path, name))


def test_every_command_and_subcommand_has_an_example_in_its_help():
    seen = []
    for path, parser in every_parser(build_parser()):
        text = parser.format_help()
        assert "\nexamples:\n" in text, f"tablebox {' '.join(path)} --help has no examples"
        examples = text.split("\nexamples:\n", 1)[1].split("\n\n", 1)[0].splitlines()
        assert examples and all(line.startswith("  ") for line in examples), path
        assert any(f"tablebox {' '.join(path)}".rstrip() in line or (path and path[-1] in line) for line in examples), (
            path,
            examples,
        )
        seen.append(" ".join(path))
    assert {
        "",
        "tables",
        "tables add",
        "printers add",
        "staff remove",
        "sync pull",
        "menu import",
        "relay enroll",
        "printd",
        "syncd",
        "doctor",
    } <= set(seen)


def test_every_command_takes_the_global_options_except_the_relay():
    for path, parser in every_parser(build_parser()):
        options = {o for a in parser._actions for o in a.option_strings}
        if path[:1] == ("relay",):
            assert "--data-dir" not in options, path  # the relay is not a box: it has its own settings
        else:
            assert {"--data-dir", "--config"} <= options, path


# --- expected failures: one line and an exit status, never a traceback ----------------------------------------


def tablebox(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "tablebox"), *args], capture_output=True, text=True, env=ENV, timeout=timeout
    )


def one_line_refusal(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr and "ExceptionGroup" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tablebox: "), result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "secret,said",
    [
        ("not hex at all\n", "does not hold a hex secret"),
        ("", "is empty"),
        ("abcd\n", "too short"),
        (None, "no store secret at"),
    ],
)
def test_serve_with_a_bad_secret_exits_2_at_once_with_one_line(settings, secret, said):
    if secret is None:
        settings.secret_path.unlink()
    else:
        settings.secret_path.write_text(secret)
    started = time.monotonic()
    result = tablebox("serve", "--data-dir", str(settings.data_dir), "--host", "127.0.0.1", "--port", str(free_port()))
    assert time.monotonic() - started < 15
    line = one_line_refusal(result)
    assert said in line and str(settings.secret_path) in line


@pytest.mark.parametrize("command", ["serve", "printd", "syncd", "tables", "console", "staff", "backup"])
def test_commands_without_a_store_say_what_to_do(tmp_path, command):
    line = one_line_refusal(tablebox(command, "--data-dir", str(tmp_path / "nowhere")))
    assert f"no store at {tmp_path / 'nowhere' / 'store.db'}" in line and "tablebox init" in line


@pytest.mark.parametrize("command", ["serve", "printd", "syncd", "tables", "sync"])
def test_bad_settings_exit_2_with_the_file_and_the_reason(settings, tmp_path, command):
    bad = tmp_path / "bad.toml"
    bad.write_text("port = 'eighty'\n")
    line = one_line_refusal(tablebox(command, "--config", str(bad), "--data-dir", str(settings.data_dir)))
    assert str(bad) in line and "port" in line


def test_a_database_that_cannot_be_opened_is_refused_with_exit_2(settings):
    settings.db_path.write_bytes(b"this is not a database, it is a text file" * 200)
    for suffix in ("-wal", "-shm"):
        Path(f"{settings.db_path}{suffix}").unlink(missing_ok=True)
    line = one_line_refusal(tablebox("printd", "--data-dir", str(settings.data_dir)))
    assert line.startswith(f"tablebox: {settings.db_path} is not a SQLite database; nothing was changed. ")
    assert f"`tablebox restore FILE --data-dir {settings.data_dir}`" in line  # and what to do about it


def test_a_second_sync_worker_is_refused_with_exit_2(settings, tmp_path):
    from sync.worker import hold_lock
    from tests.sync.syncd import write_settings

    config = write_settings(
        tmp_path / "tablebox.toml",
        {"erp": {"kind": "rest", "base_url": "http://127.0.0.1:9", "auth_header": "Authorization: Bearer x"}},
    )
    lock = hold_lock(settings.data_dir / "syncd.lock")
    try:
        line = one_line_refusal(tablebox("syncd", "--config", str(config), "--data-dir", str(settings.data_dir)))
    finally:
        lock.close()
    assert "another `tablebox syncd` is running" in line


def test_main_turns_an_exception_group_of_expected_errors_into_one_line(monkeypatch, capsys):
    """A server starting inside a task group raises its errors wrapped in ExceptionGroups."""
    from appliance.errors import SecretError

    def fails(args):
        raise ExceptionGroup("lifespan", [ExceptionGroup("startup", [SecretError("the secret is garbled")])])

    monkeypatch.setattr("appliance.cli.doctor.cmd_doctor", fails)
    assert main(["doctor"]) == 2
    assert capsys.readouterr().err == "tablebox: the secret is garbled\n"

    def crashes(args):
        raise ExceptionGroup("lifespan", [SecretError("expected"), KeyError("a bug")])

    monkeypatch.setattr("appliance.cli.doctor.cmd_doctor", crashes)
    with pytest.raises(ExceptionGroup):  # an unexpected error keeps its traceback
        main(["doctor"])
