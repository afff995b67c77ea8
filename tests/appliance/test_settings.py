"""Settings: defaults, the TOML file, environment variables and flags, each documented once."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.cli import build_parser
from appliance.settings import SETTINGS, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_safe(tmp_path):
    s = load_settings(environ={"HOME": str(tmp_path)})
    assert s.port == 8080 and s.max_body_bytes == 65536 and s.rate_limit_table_per_minute == 30
    assert s.data_dir == tmp_path / ".local" / "share" / "tablebox"
    assert load_settings(environ={"STATE_DIRECTORY": "/var/lib/tablebox"}).data_dir == Path("/var/lib/tablebox")


def test_file_then_environment_then_flags(tmp_path):
    config = tmp_path / "tablebox.toml"
    config.write_text(
        'port = 9000\nlog_format = "json"\n[store]\nstore_name = "面馆"\nservice_charge_bp = 1000\n', encoding="utf-8"
    )
    s = load_settings(
        environ={
            "TABLEBOX_CONFIG": str(config),
            "TABLEBOX_LOG_FORMAT": "console",
            "TABLEBOX_DATA_DIR": str(tmp_path / "d"),
        }
    )
    assert (s.port, s.log_format, s.data_dir) == (9000, "console", tmp_path / "d")
    assert s.store_defaults == {"store_name": "面馆", "service_charge_bp": 1000}
    assert s.with_overrides(port=7000, host=None).port == 7000
    # the settings file in the data folder is found without a variable
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "tablebox.toml").write_text("port = 8123\n")
    assert load_settings(environ={}, data_dir=tmp_path / "d").port == 8123


@pytest.mark.parametrize(
    "text,message",
    [
        ("prot = 1\n", "unknown setting 'prot'"),
        ("port = 'x'\n", "port must be int"),
        ("port = 70000\n", "at most 65535"),
        ("log_format = 'xml'\n", "must be one of"),
        ("[store]\nstore_nam = 'x'\n", "unknown store setting"),
        ("port = \n", "not valid TOML"),
    ],
)
def test_bad_settings_files_say_what_is_wrong(tmp_path, text, message):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(SettingsError) as err:
        load_settings(environ={"TABLEBOX_CONFIG": str(config)})
    assert message in str(err.value) and str(config) in str(err.value)


def test_bad_environment_values_are_refused():
    with pytest.raises(SettingsError) as err:
        load_settings(environ={"TABLEBOX_RATE_LIMIT_TABLE_PER_MINUTE": "lots"})
    assert "$TABLEBOX_RATE_LIMIT_TABLE_PER_MINUTE" in str(err.value)


def test_every_setting_is_documented_in_help_and_readme():
    help_text = build_parser().format_help()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for setting in SETTINGS:
        assert setting.name in help_text, setting.name
        assert setting.help.split(".")[0][:40] in help_text, setting.name
        assert f"`{setting.name}`" in readme, f"{setting.name} is not in README.md"
        if setting.env:
            assert setting.env in help_text
