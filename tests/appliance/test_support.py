"""`tablebox support-bundle` and `tablebox factory-reset`. If these failed, a bundle e-mailed to get help would
carry the store secret (anyone could forge table codes), an ERP's API key or a PIN; or a reset would lose the
store without a backup, or happen on a mistyped Enter."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from appliance import __version__
from appliance.backup import backup_dir, list_backups, rotate
from appliance.cli import main
from appliance.db.connection import open_connection
from appliance.db.integrity import inspect_store_file
from appliance.db.tables import list_tables, table_token
from appliance.settings import load_settings
from appliance.store import read_secret
from appliance.support import REMOVED, Redactor, read_bundle, reset_confirmed, support_bundle
from tests.appliance.test_backup import order_keys, write_order
from tests.sync.syncd import write_settings

API_KEY = "k-LIVE-7c1f9a2b3d4e"
PIN = "739164"
MANAGER_PIN = "2468"


def a_table_token(settings) -> str:
    conn = open_connection(settings.db_path)
    try:
        store_id = dict(conn.execute("SELECT key, value FROM settings"))["store_id"].strip('"')
        return table_token(read_secret(settings.secret_path), store_id, list_tables(conn)[0])
    finally:
        conn.close()


def fake_journalctl(folder: Path, settings, token: str) -> Path:
    """A journalctl on PATH that prints the secrets a real journal could hold, and the arguments it got."""
    folder.mkdir()
    script = folder / "journalctl"
    script.write_text(
        "#!/bin/sh\n"
        'echo "journalctl $*"\n'
        f'echo "web: secret read from {settings.secret_path}: $(cat {settings.secret_path})"\n'
        f'echo "syncd: POST https://erp.example.com/orders api_key={API_KEY} -> 201"\n'
        f'echo "console: staff login pin={PIN} accepted"\n'
        f"echo 'provision: manager_pin = \"{MANAGER_PIN}\"'\n"
        f'echo "web: POST /api/v1/tables/{token}/orders 201"\n'
        f'echo "stickers: http://box.test:8080/t/{token}"\n'
        'echo "syncd: Authorization: Bearer abcdef1234567890XYZ"\n'
        'echo "wifi: wifi_password: hunter2hunter2"\n'
        'echo "relay: connecting to https://store:s3cr3t-pass@relay.example.com/feed"\n'
    )
    script.chmod(0o755)
    return folder


@pytest.fixture
def box(settings, tmp_path, monkeypatch):
    """A store with a sync target whose API key is in its settings file, a staff PIN, and a journal with secrets."""
    config = write_settings(
        tmp_path / "tablebox.toml",
        {"erp": {"kind": "rest", "base_url": "https://erp.example.com", "api_key": API_KEY}},
        top=f'data_dir = "{settings.data_dir}"\n',
    )
    monkeypatch.setenv("TABLEBOX_PIN", PIN)
    assert main(["staff", "add", "Ana", "--config", str(config), "--data-dir", str(settings.data_dir)]) == 0
    monkeypatch.delenv("TABLEBOX_PIN")
    write_order(settings, "order-for-the-bundle")
    token = a_table_token(settings)
    bin_dir = fake_journalctl(tmp_path / "bin", settings, token)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return config, token


def test_the_support_bundle_holds_no_secret(settings, box, tmp_path, capsys):
    config, token = box
    out = tmp_path / "out"
    out.mkdir()
    assert (
        main(["support-bundle", "--config", str(config), "--data-dir", str(settings.data_dir), "--out", str(out)]) == 0
    )
    (bundle,) = out.iterdir()
    assert f"support bundle: {bundle} (" in capsys.readouterr().out
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o600
    texts = read_bundle(bundle)
    everything = "\n".join(texts.values())
    secret = settings.secret_path.read_text().strip()
    for value in (secret, API_KEY, PIN, MANAGER_PIN, token, "abcdef1234567890XYZ", "hunter2hunter2", "s3cr3t-pass"):
        assert value not in everything, value
    journal = texts["logs/journal.txt"]
    assert journal.count(REMOVED) == 9  # each secret line above, one removal each
    assert "-u tablebox-web -u tablebox-printd" in journal and "--since -7 days" in journal
    assert "web: POST /api/v1/tables/[removed]/orders 201" in journal
    assert "https://store:[removed]@relay.example.com/feed" in journal
    # what makes it useful is there
    assert set(texts) >= {"doctor.txt", "versions.txt", "settings.txt", "store.txt", "disk.txt", "logs/kernel.txt"}
    assert texts["versions.txt"].startswith(f"tablebox {__version__}\npython {sys.version.split()[0]}")
    assert (
        "api_key is set (not shown)" in texts["settings.txt"]
        and "base_url = 'https://erp.example.com'" in texts["settings.txt"]
    )
    assert "rows in orders = 1" in texts["store.txt"] and "PRAGMA auto_vacuum = 2" in texts["store.txt"]
    assert any(line.startswith("✓ database: ") for line in texts["doctor.txt"].splitlines())
    # never a database, a backup, the secret file or the settings file
    with tarfile.open(bundle) as tar:
        names = tar.getnames()
    assert not any(n.endswith((".db", ".secret", ".toml")) for n in names), names


def test_secrets_given_only_through_the_environment_are_removed_too():
    redact = Redactor([], environ={"TABLEBOX_SYNC_ERP_API_SECRET": "env-secret-991", "HOME": "/home/tech"})
    assert redact("sent env-secret-991 to /home/tech") == f"sent {REMOVED} to /home/tech"
    assert redact('{"token": "abc123def", "pin": 4821}') == f'{{"token": {REMOVED}, "pin": {REMOVED}}}'
    assert redact("PIN for Ana (4-8 digits)") == "PIN for Ana (4-8 digits)"  # words, not values: kept


def test_without_journalctl_the_bundle_says_so(settings, tmp_path):
    bundle = support_bundle(settings, tmp_path, ["✓ x: y"], run=lambda command: None, provision_logs=[])
    texts = read_bundle(bundle.path)
    assert texts["logs/journal.txt"] == "journalctl is not installed here: no logs from systemd's journal\n"
    assert texts["doctor.txt"] == "✓ x: y\n" and bundle.path.parent == tmp_path


# factory reset


def test_a_reset_needs_the_store_name_or_reset_typed(settings, capsys):
    before = {p.name: p.read_bytes() for p in settings.data_dir.iterdir() if p.is_file()}
    data = ["--data-dir", str(settings.data_dir)]
    assert main(["factory-reset", *data, "--confirm", "yes"]) == 1
    assert "not confirmed: nothing was changed" in capsys.readouterr().err
    assert main(["factory-reset", *data]) == 2  # no terminal to type on, no --confirm
    assert "typed confirmation" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in settings.data_dir.iterdir() if p.is_file()} == before
    assert not backup_dir(settings).exists()  # not even a backup was made
    assert reset_confirmed(" 川味小馆 ", "川味小馆") and reset_confirmed("RESET", "x")
    assert not reset_confirmed("reset", "x") and not reset_confirmed("", "")


def test_a_reset_keeps_a_checked_backup_and_the_secret_then_a_new_store_starts(settings, capsys):
    write_order(settings, "before-the-reset")
    old = inspect_store_file(settings.db_path)
    old_secret = settings.secret_path.read_bytes()
    photos = settings.data_dir / "images"
    photos.mkdir(exist_ok=True)
    (photos / "har-gow.jpg").write_bytes(b"jpeg")
    data = ["--data-dir", str(settings.data_dir)]
    assert main(["factory-reset", *data, "--confirm", old.store_name]) == 0
    out = capsys.readouterr().out
    (kept,) = [p for p in backup_dir(settings).iterdir() if p.name.startswith("factory-reset-")]
    (backup,) = [p for _, p in list_backups(kept)]
    assert f"kept: {backup} (1 orders; integrity_check ok) and the secret, in {kept}" in out
    assert not settings.db_path.exists() and not settings.secret_path.exists() and not photos.exists()
    assert (kept / "store.secret").read_bytes() == old_secret
    assert stat.S_IMODE((kept / "store.secret").stat().st_mode) == 0o600
    assert (kept / "images" / "har-gow.jpg").read_bytes() == b"jpeg"
    assert rotate(backup_dir(settings), 0, 0, keep_manual=0) == [] and backup.exists()  # rotation leaves it alone
    # a new store, with a new secret
    assert main(["init", *data]) == 0
    assert inspect_store_file(settings.db_path).store_id != old.store_id
    assert settings.secret_path.read_bytes() != old_secret
    # and the old one comes back with what the reset printed
    assert main(["restore", *data, str(backup), "--force"]) == 0
    settings.secret_path.write_bytes((kept / "store.secret").read_bytes())
    assert inspect_store_file(settings.db_path).store_id == old.store_id
    assert order_keys(settings.db_path) == {"before-the-reset"}


def test_a_reset_refuses_while_the_services_have_the_store_open(settings, capsys):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import apsw, sys; c = apsw.Connection(sys.argv[1]); "
            "c.execute('SELECT count(*) FROM orders').fetchall(); print('open', flush=True); sys.stdin.read()",
            str(settings.db_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "open\n"
        assert main(["factory-reset", "--data-dir", str(settings.data_dir), "--confirm", "RESET"]) == 2
        assert "is in use" in capsys.readouterr().err
        assert settings.db_path.exists() and not backup_dir(settings).exists()
    finally:
        holder.stdin.close()
        holder.wait(10)
        holder.stdout.close()


def test_settings_are_read_from_the_bundle_fixture_file(box):
    config, _ = box
    assert load_settings(config_file=config).sync_targets["erp"]["api_key"] == API_KEY  # the secret was really there


def test_a_bundle_to_a_missing_folder_is_refused(settings, tmp_path):
    from appliance.support import SupportError

    with pytest.raises(SupportError, match="is not a folder"):
        support_bundle(settings, tmp_path / "no-stick" / "b.tar.gz", [], run=lambda c: None, provision_logs=[])
    assert not (tmp_path / "no-stick").exists()
