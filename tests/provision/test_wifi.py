"""provision/lib/wifi.py: the Wi-Fi settings checked at the laptop and merged into a cloud-init network-config.
If it failed, a box with only Wi-Fi would never get online to provision itself, or the image's own network
settings would be lost."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "provision" / "lib" / "wifi.py"
_spec = importlib.util.spec_from_file_location("wifi", SCRIPT)
wifi = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(wifi)

WIFI = ('Tea "House" $(reboot)', 'it\'s "$HOME" \\ ;ok', "NO")  # "NO": Norway, false in YAML 1.1 unquoted
OURS = {
    "wlan0": {
        "dhcp4": True,
        "optional": True,
        "regulatory-domain": "NO",
        "access-points": {WIFI[0]: {"password": WIFI[1]}},
    }
}


def network(text: str) -> dict:
    data = yaml.safe_load(text)
    return data.get("network", data)


@pytest.mark.parametrize(
    "before",
    [
        "",
        "# only comments\n",
        "network:\n  version: 2\n  ethernets:\n    eth0:\n      dhcp4: true\n",
        "network:\n    version: 2\n    ethernets: {eth0: {dhcp4: true}}\n# trailing comment\n",
        "version: 2\nethernets:\n  eth0:\n    dhcp4: true\n",
        "network:\n  version: 2\nsomething_else: 1\n",  # network: not last: written again from its meaning
        "network: {version: 2, ethernets: {eth0: {dhcp4: true}}}\n",
        "network:\n  version: 2\n  wifis:\n",
    ],
)
def test_the_wifi_is_added_and_everything_else_kept(before):
    after, done = wifi.merge_network_config(before, WIFI, force=False)
    assert done == "added"
    new = network(after)
    assert new["wifis"] == OURS
    old = network(before) if yaml.safe_load(before) else {"version": 2}
    assert {k: v for k, v in new.items() if k != "wifis"} == {k: v for k, v in old.items() if k != "wifis"}
    if isinstance(yaml.safe_load(before), dict) and "something_else" in before:
        assert yaml.safe_load(after)["something_else"] == 1
    assert wifi.merge_network_config(after, WIFI, force=False) == (after, "already there")


def test_a_file_that_can_take_the_block_keeps_every_line():
    before = "# Imager wrote this\nnetwork:\n  version: 2\n  ethernets:   # wired\n    eth0:\n      dhcp4: true\n"
    after, _ = wifi.merge_network_config(before, WIFI, force=False)
    assert after.startswith(before)
    assert after[len(before) :].startswith("  wifis:\n    wlan0:\n")


@pytest.mark.parametrize(
    ("before", "message"),
    [
        ("network:\n  version: 1\n  config: []\n", "uses version 1"),
        ("- a\n- b\n", "not a YAML mapping"),
        ("hostname: box\n", "not a netplan network configuration"),
        ("network:\n\tversion: 2\n", "tab characters"),
        ("network: [\n", "not valid YAML"),
        (
            "network:\n  version: 2\n  wifis:\n    wlan0:\n      access-points:\n        Office: {}\n",
            'already configures Wi-Fi differently (wlan0: "Office"): --force replaces it',
        ),
    ],
)
def test_network_configs_it_cannot_extend_are_refused(before, message):
    with pytest.raises(wifi.WifiError, match=message.replace("(", r"\(").replace(")", r"\)")):
        wifi.merge_network_config(before, WIFI, force=False)


def test_force_replaces_only_the_wifis():
    before = (
        "network:\n  version: 2\n  ethernets:\n    eth0: {dhcp4: true}\n"
        "  wifis:\n    wlan1:\n      access-points:\n        Office: {password: office-secret}\n"
    )
    after, done = wifi.merge_network_config(before, WIFI, force=True)
    assert done == "replaced"
    assert network(after) == {"version": 2, "ethernets": {"eth0": {"dhcp4": True}}, "wifis": OURS}


def run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, SCRIPT, *map(str, args)], capture_output=True, text=True, timeout=60, env=env
    )


def settings(tmp_path: Path, provision: str) -> Path:
    path = tmp_path / "tablebox.toml"
    path.write_text(f'[provision]\nstore_name = "x"\n{provision}', "utf-8")
    return path


def test_without_pyyaml_only_an_image_file_with_settings_is_refused(tmp_path):
    no_yaml = tmp_path / "no-yaml"
    no_yaml.mkdir()
    (no_yaml / "yaml.py").write_text("raise ImportError('no PyYAML here')\n")
    env = {"PYTHONPATH": str(no_yaml), "PATH": "/usr/bin:/bin"}
    config = settings(tmp_path, 'wifi_ssid = "Tea House"\nwifi_password = ""\nwifi_country = "cn"\n')
    fresh = tmp_path / "network-config"
    done = run("network-config", config, fresh, env=env)
    assert (done.returncode, done.stdout) == (0, "added\n")
    assert network(fresh.read_text())["wifis"]["wlan0"]["access-points"] == {"Tea House": {}}
    assert network(fresh.read_text())["wifis"]["wlan0"]["regulatory-domain"] == "CN"

    existing = tmp_path / "other"
    existing.write_text("network:\n  version: 2\n")
    refused = run("network-config", config, existing, env=env)
    assert refused.returncode == 1 and "sudo apt install python3-yaml" in refused.stderr
    assert existing.read_text() == "network:\n  version: 2\n"


def test_the_command_line(tmp_path):
    config = settings(tmp_path, 'wifi_ssid = "Tea House"\nwifi_password = "12345678"\nwifi_country = "CN"\n')
    target = tmp_path / "network-config"
    assert run("network-config", config, target, "--dry-run").stdout == "added\n"
    assert not target.exists()
    assert run("network-config", config, target).stdout == "added\n"
    assert run("network-config", config, target).stdout == "already there\n"
    values = tmp_path / "firstrun-wifi.conf"
    assert run("firstrun", config, values).stdout == "written\n"
    assert values.read_text().splitlines()[1:] == ["ssid=Tea House", "password=12345678", "country=CN"]

    cable = settings(tmp_path, "")
    assert run("check", cable).stdout.startswith("Wi-Fi: none")
    assert run("network-config", cable, tmp_path / "untouched").stdout == "none\n"
    assert run("firstrun", cable, tmp_path / "untouched").stdout == "none\n"
    assert not (tmp_path / "untouched").exists()
    assert run("frobnicate", cable).returncode == 2
