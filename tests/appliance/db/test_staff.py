"""Staff, PINs, roles and the audit trail."""

from __future__ import annotations

import json

import pytest

from appliance.cli import main
from appliance.db.connection import open_connection
from appliance.db.staff import Staff, add_staff, audit, audit_trail, list_staff, login, pin_hash, remove_staff
from appliance.domain.errors import DomainError
from appliance.store import read_secret


@pytest.fixture
def secret(settings):
    return read_secret(settings.secret_path)


def test_a_pin_names_one_person_and_is_never_stored_in_clear(db, secret):
    with db:
        lin = add_staff(db, secret, "  Lin   Wei ", "waiter", "2468")
    assert (lin.name, lin.role) == ("Lin Wei", "waiter")
    assert login(db, secret, "2468") == lin
    stored = db.execute("SELECT pin_hash FROM staff WHERE name = 'Lin Wei'").fetchone()[0]
    assert "2468" not in stored and stored == pin_hash(secret, "2468")
    assert pin_hash(b"another store" * 3, "2468") != stored  # keyed by the store secret
    with pytest.raises(DomainError) as taken:
        add_staff(db, secret, "Zhou", "waiter", "2468")
    assert taken.value.code == "pin_taken"
    with pytest.raises(DomainError) as twice:
        add_staff(db, secret, "Lin Wei", "manager", "1357")
    assert twice.value.code == "staff_exists"


@pytest.mark.parametrize("pin", ["123", "123456789", "12a4", "١٢٣٤", ""])
def test_bad_pins_are_refused_with_the_rule(db, secret, pin):
    with pytest.raises(DomainError) as err:
        add_staff(db, secret, "Zhou", "waiter", pin)
    assert (err.value.code, err.value.message) == ("invalid_pin", "a PIN is 4 to 8 digits")
    with pytest.raises(DomainError) as wrong:
        login(db, secret, pin)
    assert wrong.value.code == "wrong_pin"


def test_removed_staff_cannot_log_in_but_stay_in_the_trail(db, secret):
    with db:
        zhou = add_staff(db, secret, "Zhou", "waiter", "8642")
        audit(db, zhou, "order.accepted", "order 1", {"why": "test"})
        remove_staff(db, "Zhou")
    with pytest.raises(DomainError):
        login(db, secret, "8642")
    trail = audit_trail(db)
    assert [(t.staff_name, t.action, t.subject, json.loads(t.details)) for t in trail] == [
        ("Zhou", "order.accepted", "order 1", {"why": "test"})
    ]
    assert [p.active for p in list_staff(db) if p.name == "Zhou"] == [False]
    with pytest.raises(DomainError):
        remove_staff(db, "Zhou")  # already gone: said, not silently ignored


def test_roles_permissions():
    waiter, manager = Staff(1, "w", "waiter"), Staff(2, "m", "manager")
    for permission in ("orders", "tables", "payments", "sold_out", "stock", "print"):
        assert waiter.may(permission) and manager.may(permission)
    for permission in ("price", "rekey", "reports", "settings", "close_day"):
        assert not waiter.may(permission) and manager.may(permission)
    with pytest.raises(DomainError) as err:
        waiter.require("price")
    assert err.value.message == "a waiter cannot change prices: ask a manager"


def test_staff_command_adds_lists_and_removes(settings, capsys, monkeypatch):
    data = str(settings.data_dir)
    assert main(["staff", "add", "Chen", "--role", "manager", "--pin", "97531", "--data-dir", data]) == 0
    monkeypatch.setenv("TABLEBOX_PIN", "86420")
    assert main(["staff", "add", "Wu", "--data-dir", data]) == 0  # PIN from the environment, role waiter
    assert main(["staff", "add", "Wu2", "--pin", "86420", "--data-dir", data]) == 2
    assert "already someone's" in capsys.readouterr().err
    assert main(["staff", "--data-dir", data]) == 0
    listing = capsys.readouterr().out
    assert "Chen" in listing and "manager" in listing and "Wu " in listing
    assert main(["staff", "remove", "Wu", "--data-dir", data]) == 0
    conn = open_connection(settings.db_path)
    try:
        secret = read_secret(settings.secret_path)
        assert login(conn, secret, "97531").role == "manager"
        with pytest.raises(DomainError):
            login(conn, secret, "86420")
    finally:
        conn.close()
