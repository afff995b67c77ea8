"""The box's Wi-Fi from the technician's settings file ([provision] wifi_ssid, wifi_password, wifi_country),
for provision/flash.sh: checked at the laptop, then written where the box reads it at first boot.

    python3 wifi.py check CONFIG
        exits 1 with a message when the Wi-Fi settings cannot work; prints what the box will join.
    python3 wifi.py network-config CONFIG FILE [--force] [--dry-run]
        cloud-init images: adds a netplan `wifis:` section to FILE (created if missing), keeping the rest.
        Prints "none" (no Wi-Fi in CONFIG), "added", "already there" or "replaced" (--force, when FILE
        configured Wi-Fi differently). --dry-run only says what it would do.
    python3 wifi.py firstrun CONFIG FILE
        firstrun.sh images: writes FILE, the values firstrun.sh reads (one `key=value` a line, never run
        as shell code). Prints "none" or "written".
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python < 3.11 on the laptop
    import tomli as tomllib  # type: ignore[no-redef]

INTERFACE = "wlan0"
ISO3166_TABLE = Path("/usr/share/zoneinfo/iso3166.tab")  # tzdata's list, the one raspi-config checks against
HEADER = (
    "# Wi-Fi added by Tablebox's provision/flash.sh from [provision] wifi_ssid, wifi_password and\n"
    "# wifi_country in tablebox/tablebox.toml.\n"
)


class WifiError(Exception):
    """The settings or the image's network-config cannot be used."""


def load_settings(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise WifiError(f"{path} is not valid TOML: {exc}") from None
    provision = data.get("provision")
    return provision if isinstance(provision, dict) else {}


def has_control_character(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def known_countries() -> set[str] | None:
    try:
        lines = ISO3166_TABLE.read_text("utf-8").splitlines()
    except OSError:
        return None
    return {line.split("\t", 1)[0] for line in lines if line and not line.startswith("#")}


def wifi_settings(provision: dict) -> tuple[str, str, str] | None:
    """(ssid, password, country) from a [provision] table, None when it sets no Wi-Fi; WifiError if unusable."""
    for key in ("wifi_ssid", "wifi_password", "wifi_country"):
        if key in provision and not isinstance(provision[key], str):
            raise WifiError(f'[provision] {key} must be a string in quotes, e.g. {key} = "..."')
    ssid = provision.get("wifi_ssid", "")
    if not ssid:
        others = [key for key in ("wifi_password", "wifi_country") if provision.get(key)]
        if others:
            raise WifiError(
                f"[provision] {' and '.join(others)} given without wifi_ssid: add wifi_ssid "
                "(the Wi-Fi network's name), or remove them for a box on a network cable"
            )
        return None
    if has_control_character(ssid):
        raise WifiError(
            "[provision] wifi_ssid contains a control character (a line break or a tab): "
            "give the network's name exactly as phones show it"
        )
    if len(ssid.encode("utf-8")) > 32:
        raise WifiError(
            f"[provision] wifi_ssid is {len(ssid.encode('utf-8'))} bytes long: "
            "a Wi-Fi network's name has at most 32 (a Chinese character takes 3)"
        )
    if "wifi_password" not in provision:
        raise WifiError(
            '[provision] wifi_password is missing: give the Wi-Fi password, or wifi_password = "" for an open network'
        )
    password = provision["wifi_password"]
    if password:
        if not all(32 <= ord(c) <= 126 for c in password):
            raise WifiError(
                "[provision] wifi_password may hold only printable ASCII characters (letters, digits, "
                "punctuation and spaces), as WPA-PSK requires"
            )
        if not 8 <= len(password) <= 63:
            raise WifiError(
                f"[provision] wifi_password has {len(password)} characters: a WPA-PSK password has "
                'from 8 to 63 (use wifi_password = "" for an open network)'
            )
    country = provision.get("wifi_country", "")
    if not country:
        raise WifiError(
            "[provision] wifi_country is missing: the two-letter country the box is in, e.g. "
            'wifi_country = "CN" (it sets the channels and power the Wi-Fi may use)'
        )
    if not re.fullmatch(r"[A-Za-z]{2}", country):
        raise WifiError(
            f"[provision] wifi_country = {json.dumps(country, ensure_ascii=False)}: give the ISO 3166 "
            'two-letter code of the country, e.g. "CN"'
        )
    country = country.upper()
    countries = known_countries()
    if countries is not None and country not in countries:
        raise WifiError(
            f'[provision] wifi_country = "{country}" is not an ISO 3166 country code '
            '(two letters, e.g. "CN", "HK", "TW", "SG")'
        )
    return ssid, password, country


# cloud-init: network-config


def yaml_string(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML; control characters were refused)."""
    return json.dumps(text, ensure_ascii=False)


def wifis_data(ssid: str, password: str, country: str) -> dict:
    access_point = {"password": password} if password else {}
    return {
        INTERFACE: {
            "dhcp4": True,
            "optional": True,
            "regulatory-domain": country,
            "access-points": {ssid: access_point},
        }
    }


def wifis_lines(ssid: str, password: str, country: str, indent: str) -> list[str]:
    """The `wifis:` block as text, its key at `indent`."""
    lines = [
        f"{indent}wifis:",
        f"{indent}  {INTERFACE}:",
        f"{indent}    dhcp4: true",
        f"{indent}    optional: true",
        f"{indent}    regulatory-domain: {yaml_string(country)}",
        f"{indent}    access-points:",
    ]
    if password:
        lines += [f"{indent}      {yaml_string(ssid)}:", f"{indent}        password: {yaml_string(password)}"]
    else:
        lines += [f"{indent}      {yaml_string(ssid)}: {{}}"]  # an open network
    return lines


def describe_wifis(wifis: object) -> str:
    if not isinstance(wifis, dict):
        return repr(wifis)
    parts = []
    for name, conf in wifis.items():
        points = conf.get("access-points") if isinstance(conf, dict) else None
        names = ", ".join(json.dumps(str(p), ensure_ascii=False) for p in points) if isinstance(points, dict) else "?"
        parts.append(f"{name}: {names}")
    return "; ".join(parts) or "empty"


def is_only_comments(text: str) -> bool:
    return all(not line.strip() or line.lstrip().startswith("#") for line in text.splitlines())


def append_under_network(lines: list[str], block: list[str]) -> list[str] | None:
    """`block` added at the end of the top-level `network:` mapping, when that mapping comes last."""
    at = next((i for i, line in enumerate(lines) if re.fullmatch(r"network\s*:\s*(#.*)?", line)), None)
    if at is None:
        return None
    indent = None
    for line in lines[at + 1 :]:
        stripped = line.lstrip(" ")
        if not stripped or stripped.startswith("#"):
            continue
        if line == stripped:  # another top-level key after network: do not guess
            return None
        if indent is None:
            indent = line[: len(line) - len(stripped)]
    if indent is None:
        return None
    return lines + [indent + line for line in block]


def merge_network_config(text: str, wifi: tuple[str, str, str], force: bool) -> tuple[str, str]:
    """(new text, what was done) for an image's network-config `text` ("" when it has none)."""
    ssid, password, country = wifi
    newline = "\r\n" if "\r\n" in text else "\n"
    ours = wifis_data(*wifi)
    if is_only_comments(text):
        # The image's file is all examples in comments (or missing): keep them, add ours after.
        lines = text.splitlines()
        while lines and not lines[-1].strip():
            lines.pop()
        lines += ([""] if lines else []) + HEADER.rstrip("\n").split("\n") + ["network:", "  version: 2"]
        lines += wifis_lines(ssid, password, country, "  ")
        return newline.join(lines) + newline, "added"
    if "\t" in text:
        raise WifiError(
            "network-config on the image contains tab characters, which YAML does not allow for "
            "indentation: fix it, or use a plain image"
        )
    try:
        import yaml
    except ImportError:
        raise WifiError(
            "network-config on the image already has settings, and merging the Wi-Fi into them "
            "needs PyYAML: sudo apt install python3-yaml"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise WifiError(f"network-config on the image is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise WifiError("network-config on the image is not a YAML mapping: fix it, or use a plain image")
    wrapped = "network" in data
    net = data["network"] if wrapped else data
    if not isinstance(net, dict) or "version" not in net:
        raise WifiError(
            "network-config on the image is not a netplan network configuration "
            "(no network: version:): fix it, or use a plain image"
        )
    if net.get("version") != 2:
        raise WifiError(
            f"network-config on the image uses version {net.get('version')!r}; Wi-Fi can only be "
            "added to a version 2 (netplan) configuration: use a plain image"
        )
    if net.get("wifis") == ours:
        return text, "already there"
    expected_net = {**net, "wifis": ours}
    expected = {**data, "network": expected_net} if wrapped else expected_net
    if net.get("wifis") is not None:
        if not force:
            raise WifiError(
                "network-config on the image already configures Wi-Fi differently "
                f"({describe_wifis(net['wifis'])}): --force replaces it with the network in "
                "tablebox.toml, keeping the rest of the file"
            )
        done = "replaced"
    else:
        done = "added"

    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    candidate = None
    if "wifis" not in net:  # keep the file line for line, comments included: append our block
        if wrapped:
            merged = append_under_network(lines, wifis_lines(ssid, password, country, ""))
        else:
            merged = lines + wifis_lines(ssid, password, country, "")
        if merged is not None:
            candidate = newline.join(merged) + newline
    if candidate is not None:
        try:
            if yaml.safe_load(candidate) != expected:
                candidate = None
        except yaml.YAMLError:
            candidate = None
    if candidate is None:
        # Written again from what it means (its comments are lost): always the same settings plus ours.
        dumped = yaml.safe_dump(expected, sort_keys=False, allow_unicode=True, default_flow_style=False)
        candidate = (HEADER + dumped).replace("\n", newline)
        if yaml.safe_load(candidate) != expected:
            raise WifiError("could not add the Wi-Fi to network-config; write its wifis: section by hand")
    return candidate, done


def cmd_network_config(config: str, path: str, force: bool, dry_run: bool) -> str:
    wifi = wifi_settings(load_settings(config))
    if wifi is None:
        return "none"
    file = Path(path)
    before = file.read_bytes().decode("utf-8-sig") if file.exists() else ""
    after, done = merge_network_config(before, wifi, force)
    if done != "already there" and not dry_run:
        file.write_text(after, "utf-8", newline="")
    return done


# firstrun.sh: the values it reads


def cmd_firstrun(config: str, path: str) -> str:
    wifi = wifi_settings(load_settings(config))
    if wifi is None:
        return "none"
    ssid, password, country = wifi
    text = (
        "# Read by firstrun.sh at first boot (one key=value a line, never run as code), then deleted.\n"
        f"ssid={ssid}\npassword={password}\ncountry={country}\n"
    )
    Path(path).write_text(text, "utf-8", newline="\n")
    return "written"


def cmd_check(config: str) -> str:
    try:
        wifi = wifi_settings(load_settings(config))
    except WifiError as exc:
        raise WifiError(f"{config}: {exc}") from None
    if wifi is None:
        return "Wi-Fi: none in the settings (the box needs a network cable at first boot)"
    ssid, password, country = wifi
    security = "WPA-PSK" if password else "open network, no password"
    return f"Wi-Fi: the box joins {yaml_string(ssid)} ({security}, country {country}) at first boot"


def main(argv: list[str]) -> int:
    args = argv[1:]
    flags = {a for a in args if a.startswith("--")}
    args = [a for a in args if not a.startswith("--")]
    try:
        if args[:1] == ["check"] and len(args) == 2 and not flags:
            print(cmd_check(args[1]))
        elif args[:1] == ["network-config"] and len(args) == 3 and flags <= {"--force", "--dry-run"}:
            print(cmd_network_config(args[1], args[2], "--force" in flags, "--dry-run" in flags))
        elif args[:1] == ["firstrun"] and len(args) == 3 and not flags:
            print(cmd_firstrun(args[1], args[2]))
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except WifiError as exc:
        print(f"flash: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
