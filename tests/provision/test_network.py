"""A fixed address for the box (provision.sh step network), the Wi-Fi password scrubbed from the boot partition after
first boot, and the set-up wizard kept while no one can sign in (issue 14, items 1, 2 and 9)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "provision" / "provision.sh"
NETWORK = REPO / "provision" / "lib" / "network.py"
RENDER = REPO / "provision" / "lib" / "render_config.py"


def keyfile_groups(text: str) -> dict[str, dict[str, str]]:
    groups: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("["):
            current = groups.setdefault(line.strip()[1:-1], {})
        else:
            key, _, value = line.partition("=")
            current[key] = value
    return groups


def step(root: Path, body: str, **cfg: str) -> subprocess.CompletedProcess[str]:
    """Source provision.sh with --root ROOT, set the CFG_* values, run `body` (bash)."""
    work = root.parent / "work"
    work.mkdir(exist_ok=True)
    assignments = "".join(f"{k}={v!r}; " for k, v in cfg.items())
    script = f'source "{SCRIPT}"; ROOT="{root}"; WORK="{work}"; {assignments}{body}'
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)


WIRED = {"CFG_ADDRESS": "192.168.1.50/24", "CFG_GATEWAY": "192.168.1.1", "CFG_DNS": "192.168.1.1,223.5.5.5"}


def test_a_wired_box_gets_a_private_networkmanager_keyfile_and_a_second_run_changes_nothing(tmp_path):
    root = tmp_path / "root"
    done = step(root, "step_network", **WIRED)
    assert done.returncode == 0, done.stderr
    path = root / "etc/NetworkManager/system-connections/tablebox-wired.nmconnection"
    assert (path.stat().st_mode & 0o777, path.stat().st_uid) == (0o600, 0)  # NetworkManager ignores others
    groups = keyfile_groups(path.read_text())
    assert groups["connection"]["type"] == "ethernet" and groups["connection"]["interface-name"] == "eth0"
    assert groups["connection"]["autoconnect-priority"] == "100"  # over the image's "Wired connection 1"
    assert groups["ipv4"] == {
        "address1": "192.168.1.50/24",
        "gateway": "192.168.1.1",
        "dns": "192.168.1.1;223.5.5.5;",
        "ignore-auto-dns": "true",
        "method": "manual",
    }
    assert "changed: /etc/NetworkManager/system-connections/tablebox-wired.nmconnection" in done.stdout
    again = step(root, "step_network", **WIRED)
    assert "ok: /etc/NetworkManager/system-connections/tablebox-wired.nmconnection" in again.stdout


def test_a_wifi_box_keeps_its_connection_and_password_and_gets_the_fixed_address(tmp_path):
    root = tmp_path / "root"
    folder = root / "etc/NetworkManager/system-connections"
    folder.mkdir(parents=True)
    # As imager_custom set_wlan writes it (raspberrypi-sys-mods).
    original = (
        "[connection]\nid=preconfigured\nuuid=3b1c\ntype=wifi\n[wifi]\nmode=infrastructure\nssid=Tea House\n"
        "hidden=false\n[ipv4]\nmethod=auto\n[ipv6]\naddr-gen-mode=default\nmethod=auto\n[proxy]\n"
        "[wifi-security]\nkey-mgmt=wpa-psk\npsk=dumplings88\n"
    )
    (folder / "preconfigured.nmconnection").write_text(original)
    (folder / "preconfigured.nmconnection").chmod(0o600)
    done = step(root, "step_network", CFG_WIFI="1", **WIRED)
    assert done.returncode == 0, done.stderr
    groups = keyfile_groups((folder / "preconfigured.nmconnection").read_text())
    assert groups["ipv4"]["method"] == "manual" and groups["ipv4"]["address1"] == "192.168.1.50/24"
    assert groups["wifi-security"] == {"key-mgmt": "wpa-psk", "psk": "dumplings88"}
    assert groups["wifi"]["ssid"] == "Tea House" and groups["connection"]["uuid"] == "3b1c"
    assert not (folder / "tablebox-wired.nmconnection").exists()


def merge(base: dict, over: dict) -> dict:
    """netplan's merge of two files: mappings merged key by key, the later file's scalars and lists win."""
    out = dict(base)
    for key, value in over.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def test_a_cloud_init_box_gets_a_netplan_file_that_keeps_cloud_inits_wifi(tmp_path):
    root = tmp_path / "root"
    (root / "etc/netplan").mkdir(parents=True)
    cloud = {
        "network": {
            "version": 2,
            "renderer": "NetworkManager",
            "wifis": {"wlan0": {"dhcp4": True, "access-points": {"Tea House": {"password": "dumplings88"}}}},
        }
    }
    (root / "etc/netplan/50-cloud-init.yaml").write_text(yaml.safe_dump(cloud))
    done = step(root, "step_network", CFG_WIFI="1", **WIRED)
    assert done.returncode == 0, done.stderr
    ours = root / "etc/netplan/90-tablebox.yaml"
    assert ours.stat().st_mode & 0o777 == 0o600
    text = ours.read_text()
    assert "dumplings88" not in text  # the password stays only in cloud-init's file
    merged = merge(cloud, yaml.safe_load(text))["network"]["wifis"]["wlan0"]
    assert merged == {
        "dhcp4": False,
        "access-points": {"Tea House": {"password": "dumplings88"}},
        "addresses": ["192.168.1.50/24"],
        "routes": [{"to": "default", "via": "192.168.1.1"}],
        "nameservers": {"addresses": ["192.168.1.1", "223.5.5.5"]},
    }
    assert not (root / "etc/NetworkManager").exists()


def test_without_an_address_nothing_is_written(tmp_path):
    root = tmp_path / "root"
    done = step(root, "step_network")
    assert done.returncode == 0 and "keeps its DHCP lease" in done.stdout
    assert not root.exists()


@pytest.mark.parametrize(
    ("address", "gateway", "dns", "message"),
    [
        ("192.168.1.50", "192.168.1.1", "", "add the prefix length"),
        ("192.168.1.50/24", "192.168.2.1", "", "is not in the box's network 192.168.1.0/24"),
        ("192.168.1.255/24", "192.168.1.1", "", "broadcast address"),
        ("8.8.8.8/24", "8.8.8.1", "", "not a private (LAN) address"),
        ("192.168.1.50/24", "192.168.1.50", "", "the box's own address"),
        ("192.168.1.50/24", "192.168.1.1", "dns.example", "give IP addresses"),
    ],
)
def test_addresses_that_cannot_work_are_refused(address, gateway, dns, message):
    done = subprocess.run(["python3", NETWORK, "check", address, gateway, dns], capture_output=True, text=True)
    assert done.returncode == 1 and message in done.stderr


def test_the_fixed_address_becomes_public_base_url_unless_one_is_given(tmp_path):
    config = tmp_path / "tablebox.toml"
    config.write_text('[provision]\nstore_name = "Tea"\naddress = "192.168.1.50/24"\ngateway = "192.168.1.1"\n')
    out = tmp_path / "out.toml"

    def render(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["python3", RENDER, "--input", config, "--output", out, *args], capture_output=True, text=True
        )

    done = render()
    assert done.returncode == 0, done.stderr
    assert 'public_base_url = "http://192.168.1.50:8080"' in out.read_text()
    assert "CFG_ADDRESS=192.168.1.50/24" in done.stdout and "CFG_GATEWAY=192.168.1.1" in done.stdout
    assert "CFG_PUBLIC_BASE_URL=http://192.168.1.50:8080" in done.stdout
    done = render("--public-base-url", "https://order.example.com")
    assert 'public_base_url = "https://order.example.com"' in out.read_text()
    done = render("--gateway", "10.0.0.1")
    assert done.returncode != 0 and "is not in the box's network" in done.stderr
    config.write_text('[provision]\nstore_name = "Tea"\naddress = "192.168.1.50/24"\n')
    done = render()
    assert done.returncode != 0 and "needs both address" in done.stderr


def test_provision_takes_the_address_flags():
    done = subprocess.run(
        [
            "bash",
            "-c",
            f'source "{SCRIPT}"; parse_args --address 192.168.1.50/24 --gateway 192.168.1.1; echo "${{FLAGS[*]}}"',
        ],
        capture_output=True,
        text=True,
    )
    assert done.stdout.strip() == "--address 192.168.1.50/24 --gateway 192.168.1.1"


NETWORK_CONFIG = """\
# Wi-Fi added by Tablebox's provision/flash.sh
network:
  version: 2
  ethernets:
    eth0:
      dhcp4: true
      optional: true
  wifis:
    wlan0:
      dhcp4: true
      regulatory-domain: "CN"
      access-points:
        "Tea House":
          password: "dumplings88"
"""


def test_the_wifi_password_leaves_network_config_once_the_box_keeps_its_own_copy(tmp_path):
    root = tmp_path / "root"
    boot = root / "boot/firmware"
    boot.mkdir(parents=True)
    (boot / "network-config").write_text(NETWORK_CONFIG)
    kept = step(root, "scrub_boot_wifi")
    assert "kept the Wi-Fi" in kept.stdout and "dumplings88" in (boot / "network-config").read_text()
    (root / "etc/netplan").mkdir(parents=True)
    (root / "etc/netplan/50-cloud-init.yaml").write_text("network:\n  wifis:\n    wlan0: {}\n")
    done = step(root, "scrub_boot_wifi")
    assert done.returncode == 0, done.stderr
    assert "removed the Wi-Fi password" in done.stdout and "/etc/netplan/50-cloud-init.yaml" in done.stdout
    text = (boot / "network-config").read_text()
    assert "dumplings88" not in text and "password" not in text
    assert yaml.safe_load(text) == {"network": {"version": 2, "ethernets": {"eth0": {"dhcp4": True, "optional": True}}}}


def box_accounts(root: Path, shadow_pi: str, key: bool) -> None:
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\ntablebox:x:990:990::/var/lib/tablebox:/usr/sbin/nologin\n"
        "tech:x:1000:1000:,,,:/home/tech:/bin/bash\n"
    )
    (root / "etc/shadow").write_text(f"root:*:20000::::::\ntablebox:!:20000::::::\ntech:{shadow_pi}:20000::::::\n")
    if key:
        (root / "home/tech/.ssh").mkdir(parents=True)
        (root / "home/tech/.ssh/authorized_keys").write_text("ssh-ed25519 AAAAC3Nza tech@laptop\n")


@pytest.mark.parametrize(
    ("shadow", "key", "expected"),
    [("!", False, ""), ("*", True, "tech"), ("$6$salt$hash", False, "tech"), ("", False, "")],
)
def test_only_accounts_someone_can_sign_in_with_count(tmp_path, shadow, key, expected):
    root = tmp_path / "root"
    box_accounts(root, shadow, key)
    done = step(root, "technician_accounts")
    assert done.returncode == 0 and done.stdout.strip() == expected


@pytest.mark.skipif(os.geteuid() != 0, reason="systemctl --root enable needs root to write the links")
def test_the_set_up_wizard_stays_on_until_someone_can_sign_in(tmp_path):
    root = tmp_path / "root"
    box_accounts(root, "!", key=False)
    unit = root / "usr/lib/systemd/system/userconfig.service"
    unit.parent.mkdir(parents=True)
    # userconf-pi's debian/userconf-pi.userconfig.service
    unit.write_text(
        "[Unit]\nDescription=User configuration dialog\n[Service]\nType=oneshot\n"
        "ExecStart=/usr/lib/userconf-pi/userconf-service\n[Install]\nWantedBy=multi-user.target\n"
    )
    subprocess.run(["systemctl", f"--root={root}", "enable", "userconfig.service"], check=True, capture_output=True)
    wizard = (
        'local -a sysctl=(systemctl --root="$ROOT"); '
        + "  local wizard="
        + SCRIPT.read_text().split("  local wizard=")[1].split("\n  if running_here")[0]
    )
    body = f"f() {{ {wizard}\n}}; f"
    kept = step(root, body)
    assert "kept userconfig.service: no account can sign in yet" in kept.stdout, kept.stderr
    assert (root / "etc/systemd/system/multi-user.target.wants/userconfig.service").is_symlink()
    box_accounts(root, "!", key=True)
    done = step(root, body)
    assert "disabled userconfig.service (Raspberry Pi OS set-up wizard; tech can sign in)" in done.stdout, done.stderr
    assert not (root / "etc/systemd/system/multi-user.target.wants/userconfig.service").is_symlink()
