"""[sync.NAME] settings and their registration in the store. If these failed, a typo in a target would start a
worker that delivers nowhere, an API key would sit in a file anyone on the box can read, or orders would stop
being queued for an ERP (or keep being queued for one the restaurant stopped using)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from appliance.db.connection import write_transaction
from appliance.settings import SYNC_KEYS, SYNC_KINDS, SettingsError, load_settings
from sync.adapters import KINDS
from sync.config import public_config, register_targets, targets
from tests.sync.syncd import write_settings

ROOT = Path(__file__).resolve().parents[2]
ERPNEXT = {"kind": "erpnext", "base_url": "https://erp.example.com/", "api_key": "k-123", "api_secret": "s-456"}


def load(path: Path, **env: str):
    return load_settings(environ={"TABLEBOX_CONFIG": str(path), **env})


def test_a_target_gets_its_defaults_and_its_secrets_from_a_private_file(tmp_path):
    config = write_settings(tmp_path / "t.toml", {"erp": {**ERPNEXT, "price_list": "Standard Selling"}})
    target = load(config).sync_targets["erp"]
    assert target == {
        "kind": "erpnext",
        "base_url": "https://erp.example.com",
        "enabled": True,
        "timeout_seconds": 10,
        "pull_minutes": 15,
        "retry_cap_seconds": 300.0,
        "max_in_flight": 8,
        "api_key": "k-123",
        "api_secret": "s-456",
        "price_list": "Standard Selling",
    }
    assert "s-456" not in repr(load(config))  # settings printed in a log or a traceback carry no secret


def test_secrets_come_from_the_environment_when_the_file_is_readable_by_others(tmp_path):
    plain = {k: v for k, v in ERPNEXT.items() if not k.startswith("api_")}
    config = write_settings(tmp_path / "t.toml", {"erp_2": plain}, mode=0o640)
    target = load(config, TABLEBOX_SYNC_ERP_2_API_KEY="env-k", TABLEBOX_SYNC_ERP_2_API_SECRET="env-s").sync_targets[
        "erp_2"
    ]
    assert (target["api_key"], target["api_secret"]) == ("env-k", "env-s")


def test_an_inline_secret_in_a_readable_file_is_refused_with_the_fix(tmp_path):
    config = write_settings(tmp_path / "t.toml", {"erp": ERPNEXT}, mode=0o644)
    with pytest.raises(SettingsError) as err:
        load(config)
    message = str(err.value)
    assert message.startswith(
        f"{config}: [sync.erp]: api_key is written in the file, but others may read it (mode 644)"
    )
    assert f"chmod 600 {config}" in message and "$TABLEBOX_SYNC_ERP_API_KEY" in message and "k-123" not in message


@pytest.mark.parametrize(
    "table,message",
    [
        ({"Erp": ERPNEXT}, "[sync.Erp]: a target's name is lower-case letters, digits and _ only"),
        ({"erp-1": ERPNEXT}, "[sync.erp-1]: a target's name"),
        ({"erp": {**ERPNEXT, "kind": "sap"}}, "[sync.erp]: kind must be one of rest, erpnext, odoo, relay, got 'sap'"),
        ({"erp": {k: v for k, v in ERPNEXT.items() if k != "kind"}}, "[sync.erp]: kind is missing"),
        ({"erp": {**ERPNEXT, "base_url": "ftp://erp"}}, "[sync.erp]: base_url must start with http:// or https://"),
        ({"erp": {**ERPNEXT, "base_url": "https://"}}, "base_url must start with http:// or https:// and name a host"),
        ({"erp": {**ERPNEXT, "timeout_seconds": "ten"}}, "[sync.erp]: timeout_seconds must be int, got 'ten'"),
        ({"erp": {**ERPNEXT, "timeout_seconds": 0}}, "timeout_seconds must be at least 1"),
        ({"erp": {**ERPNEXT, "pull_minutes": -1}}, "pull_minutes must be at least 0"),
        ({"erp": {**ERPNEXT, "pull_minutes": 1.5}}, "pull_minutes must be int"),
        ({"erp": {**ERPNEXT, "api_key": ""}}, "[sync.erp]: api_key must be a non-empty string"),
    ],
)
def test_bad_targets_say_what_is_wrong_and_where(tmp_path, table, message):
    config = write_settings(tmp_path / "t.toml", table)
    with pytest.raises(SettingsError) as err:
        load(config)
    assert message in str(err.value) and str(config) in str(err.value)


def test_sync_must_hold_tables(tmp_path):
    config = tmp_path / "t.toml"
    config.write_text("sync = 3\n")
    with pytest.raises(SettingsError, match=r"\[sync\] must hold one table per target"):
        load(config)


def test_the_kinds_settings_know_are_the_adapters_there_are():
    assert set(SYNC_KINDS) == set(KINDS)


def test_every_target_key_is_documented_in_help_and_readme():
    from appliance.cli import build_parser

    help_text = build_parser().format_help()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "[sync.NAME]" in help_text and "[sync.NAME]" in readme
    for key in SYNC_KEYS:
        assert f"`{key.name}`" in readme and key.help in readme, key.name
        assert key.help.split(".")[0][:40] in help_text, key.name


def test_registering_targets_queues_orders_for_them_and_disables_removed_ones(settings, db, tmp_path):
    config = write_settings(
        tmp_path / "t.toml",
        {
            "erp": ERPNEXT,
            "books": {"kind": "odoo", "base_url": "http://odoo.lan:8069", "api_key": "o-789", "enabled": False},
        },
    )
    box = replace(settings, sync_targets=load(config).sync_targets)
    with write_transaction(db):
        db.execute(
            "INSERT INTO sync_targets (name, kind, inbox_source) VALUES ('relay', 'relay', 'relay:relay@'), ('old_erp', 'rest', NULL)"
        )
    assert register_targets(db, box) == {"enabled": ["erp"], "disabled": ["old_erp", "relay"]}
    rows = {
        name: (kind, enabled, json.loads(cfg))
        for name, kind, enabled, cfg in db.execute("SELECT name, kind, enabled, config FROM sync_targets")
    }
    assert rows["erp"] == ("erpnext", 1, public_config(box.sync_targets["erp"]))
    assert "api_secret" not in rows["erp"][2] and "s-456" not in json.dumps(rows)  # no secret in the store
    assert rows["books"][:2] == ("odoo", 0) and rows["old_erp"][:2] == ("rest", 0)
    assert rows["relay"][:2] == ("relay", 0)  # the relay is a [sync.NAME] target too: gone from the settings, off
    # the settings change: erp gone, books on
    box = replace(box, sync_targets={"books": {**box.sync_targets["books"], "enabled": True}})
    assert register_targets(db, box) == {"enabled": ["books"], "disabled": ["erp"]}
    assert dict(db.execute("SELECT name, enabled FROM sync_targets")) == {
        "books": 1,
        "erp": 0,
        "old_erp": 0,
        "relay": 0,
    }
    assert targets(box)["books"].base_url == "http://odoo.lan:8069"


def test_a_target_with_an_inbox_of_its_own_is_registered_with_its_source(settings, db, tmp_path):
    """The relay declares INBOX: the store gets its inbox_seen source (relay:NAME@RELAY_STORE) and queues it the rows of
    those orders only; an ERP declares none and gets every order (NULL). The store never looks at the kind."""
    relay = {"kind": "relay", "base_url": "https://relay.example.com", "store_id": "s-42", "api_secret": "ab" * 16}
    config = write_settings(tmp_path / "t.toml", {"erp": ERPNEXT, "cloud": relay})
    box = replace(settings, sync_targets=load(config).sync_targets)
    assert register_targets(db, box) == {"enabled": ["cloud", "erp"], "disabled": []}
    assert dict(db.execute("SELECT name, inbox_source FROM sync_targets")) == {"cloud": "relay:cloud@s-42", "erp": None}
