"""The relay's settings: defaults < TOML file < TABLEBOX_RELAY_* < flags, refusals that name the key, and every
setting documented in the README."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from appliance.settings import SettingsError
from sync.relay.settings import RELAY_SETTINGS, RelaySettings, default_database_url, load_relay_settings

ROOT = Path(__file__).resolve().parents[2]


def test_the_dataclass_defaults_are_the_declared_ones():
    defaults = RelaySettings()
    for setting in RELAY_SETTINGS:
        assert getattr(defaults, setting.name) == setting.default, setting.name


def test_file_then_environment_then_flags(tmp_path):
    config = tmp_path / "relay.toml"
    config.write_text('port = 9000\noffline_after_seconds = 90\n[relay]\nhost = "127.0.0.1"\n')
    settings = load_relay_settings({"TABLEBOX_RELAY_PORT": "9100"}, config_file=config)
    assert (settings.port, settings.offline_after_seconds, settings.host) == (9100, 90, "127.0.0.1")
    assert settings.with_overrides(port=9200, host=None).port == 9200
    from_env = load_relay_settings({"TABLEBOX_RELAY_CONFIG": str(config)})
    assert from_env.config_file == config and from_env.port == 9000


def test_unknown_keys_and_wrong_values_are_refused_with_their_name(tmp_path):
    config = tmp_path / "relay.toml"
    config.write_text("offline_after = 90\n")
    with pytest.raises(SettingsError, match="unknown relay setting 'offline_after'"):
        load_relay_settings({}, config_file=config)
    with pytest.raises(SettingsError, match=r"TABLEBOX_RELAY_PORT.*port must be int"):
        load_relay_settings({"TABLEBOX_RELAY_PORT": "eighty"})
    with pytest.raises(SettingsError, match="offline_after_seconds must be at least 5"):
        load_relay_settings({"TABLEBOX_RELAY_OFFLINE_AFTER_SECONDS": "1"})


def test_the_default_database_is_a_sqlite_file_in_the_state_directory():
    assert (
        default_database_url({"STATE_DIRECTORY": "/var/lib/tablebox-relay"})
        == "sqlite:////var/lib/tablebox-relay/relay.db"
    )
    assert default_database_url({"HOME": "/home/ops"}) == "sqlite:////home/ops/.local/share/tablebox-relay/relay.db"


def test_every_relay_setting_is_in_the_readme_and_the_serve_help():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    helped = subprocess.run(
        [sys.executable, "-m", "appliance", "relay", "serve", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for setting in RELAY_SETTINGS:
        assert f"`{setting.name}`" in readme, f"{setting.name} is not in README.md"
        assert f"TABLEBOX_RELAY_{setting.name.upper()}" in helped


def test_the_relay_keeps_to_its_lane():
    """The relay never imports the box's web app; the contract both sides import stays light."""
    code = (
        "import sys, json; import sync.relay.app; print(json.dumps(sorted(m for m in sys.modules "
        "if m.startswith('appliance.web'))))"
    )
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
    )
    code = (
        "import sys, json; import appliance.contract.signing, appliance.contract.decode, appliance.contract.menu, "
        "appliance.contract.relay; print(json.dumps(sorted({m.split('.')[0] for m in "
        "sys.modules} & {'litestar', 'psycopg', 'apsw', 'httpx', 'uvicorn'})))"
    )
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
    )
