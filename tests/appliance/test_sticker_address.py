"""Stickers carry a stable address, never the DHCP lease, and `tablebox doctor` notices when the address the
stickers were printed for is no longer this box's (issue 14, item 2)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from appliance import fieldaddress
from appliance.cli import main
from appliance.db.connection import open_connection, write_transaction
from appliance.db.tables import StickerAddress, record_sticker_address, sticker_address
from appliance.doctor import Mark
from appliance.errors import ConfigError
from appliance.settings import sticker_base_url
from tui.screens.printers import print_stickers

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
BOX = {"127.0.0.1", "::1", "192.168.1.50", "fe80::1"}


def doctor_line(settings, *, addresses=BOX, resolve=lambda host: set(), hostname="tablebox", record=None):
    [check] = fieldaddress.checks(
        settings,
        NOW,
        addresses=lambda: set(addresses),
        resolve=resolve,
        hostname=lambda: hostname,
        record=(lambda s: record) if record is not None else fieldaddress.read_sticker_address,
    )
    return check


def test_stickers_never_use_the_lease_without_public_base_url(settings, tmp_path, capsys):
    assert main(["stickers", "--data-dir", str(settings.data_dir), "--pdf", str(tmp_path / "s.pdf")]) == 2
    err = capsys.readouterr().err
    assert "public_base_url is empty" in err and "provision.sh --address" in err
    assert not (tmp_path / "s.pdf").exists()
    with pytest.raises(ConfigError, match="DHCP lease"):
        sticker_base_url(replace(settings, public_base_url=""))
    assert (
        sticker_base_url(replace(settings, public_base_url="http://192.168.1.50:8080/")) == "http://192.168.1.50:8080"
    )


def test_the_address_the_stickers_carry_is_recorded(settings, tmp_path, capsys):
    url = "http://192.168.1.50:8080"
    args = ["stickers", "--data-dir", str(settings.data_dir), "--public-base-url", url]
    assert main([*args, "--pdf", str(tmp_path / "s.pdf"), "--table", "A1", "--table", "A2"]) == 0
    assert f"stickers made for {url}" in capsys.readouterr().out
    conn = open_connection(settings.db_path)
    try:
        noted = sticker_address(conn)
    finally:
        conn.close()
    assert noted is not None and (noted.base_url, noted.tables) == (url, 2)
    assert noted.printed_at.startswith(str(datetime.now(UTC).year))


def test_the_console_refuses_stickers_without_a_stable_address_and_records_them_with_one(settings):
    from appliance.domain.errors import DomainError
    from appliance.store import read_secret

    secret = read_secret(settings.secret_path)
    conn = open_connection(settings.db_path)
    try:
        with pytest.raises(DomainError, match="DHCP lease"), write_transaction(conn):
            print_stickers(conn, "kitchen", ["A1"], secret, "")
        assert sticker_address(conn) is None
        with write_transaction(conn):
            jobs = print_stickers(conn, "kitchen", ["A1"], secret, "http://tablebox.local:8080")
        assert len(jobs) == 1
        assert sticker_address(conn)[:1] == ("http://tablebox.local:8080",)
    finally:
        conn.close()


def test_doctor_passes_while_the_stickers_point_at_this_box(settings):
    settings = replace(settings, public_base_url="http://192.168.1.50:8080")
    conn = open_connection(settings.db_path)
    try:
        with write_transaction(conn):
            record_sticker_address(conn, "http://192.168.1.50:8080", 14)
    finally:
        conn.close()
    check = doctor_line(settings)
    assert check.mark is Mark.OK
    assert "14 stickers" in check.detail and "192.168.1.50 is this box's address" in check.detail


def test_doctor_fails_when_the_box_got_another_lease(settings):
    settings = replace(settings, public_base_url="http://192.168.1.50:8080")
    printed = StickerAddress("http://192.168.1.50:8080", "2026-11-01T10:00:00.000000Z", 14)
    check = doctor_line(settings, addresses={"127.0.0.1", "192.168.1.73"}, record=printed)
    assert check.mark is Mark.FAIL
    assert "192.168.1.50 is not this box's address any more (it has 192.168.1.73)" in check.detail
    assert "2026-11-01" in check.detail and "provision.sh --address" in check.fix


def test_doctor_fails_when_public_base_url_changed_after_printing(settings):
    settings = replace(settings, public_base_url="http://192.168.1.60:8080")
    printed = StickerAddress("http://192.168.1.50:8080", "2026-11-01T10:00:00.000000Z", 3)
    check = doctor_line(settings, record=printed)
    assert check.mark is Mark.FAIL
    assert "printed for http://192.168.1.50:8080" in check.detail and "now http://192.168.1.60:8080" in check.detail
    assert "tablebox stickers" in check.fix


def test_doctor_warns_without_a_stable_address(settings):
    check = doctor_line(replace(settings, public_base_url=""))
    assert check.mark is Mark.WARN and "public_base_url is empty" in check.detail
    assert "--address" in check.fix


@pytest.mark.parametrize(
    ("url", "hostname", "resolved", "expected"),
    [
        ("http://tablebox.local:8080", "tablebox", set(), True),
        ("http://tablebox.local:8080", "kitchenbox", set(), False),
        ("http://box.lan:8080", "tablebox", {"192.168.1.50"}, True),
        ("http://box.lan:8080", "tablebox", {"192.168.1.99"}, False),
        ("https://relay.example.com/s/abc", "tablebox", {"93.184.215.14"}, None),
        ("http://[fe80::1]:8080", "tablebox", set(), True),
    ],
)
def test_names_and_addresses_are_compared_with_this_box(url, hostname, resolved, expected):
    ok, why = fieldaddress.reaches_box(url, BOX, lambda host: resolved, hostname)
    assert ok is expected, why


def test_doctor_reads_the_recorded_address_from_the_store(settings):
    conn = open_connection(settings.db_path)
    try:
        with write_transaction(conn):
            record_sticker_address(conn, "http://192.168.1.50:8080/", 2)
    finally:
        conn.close()
    noted = fieldaddress.read_sticker_address(settings)
    assert noted is not None and noted.base_url == "http://192.168.1.50:8080" and noted.tables == 2
