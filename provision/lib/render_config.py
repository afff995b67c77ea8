"""Write /etc/tablebox/tablebox.toml from the technician's settings file and flags; print the
provisioning values (hostname, manager...) as shell assignments for provision.sh.

The technician's file may hold a [provision] table (for this script), a [store] table (the restaurant's
first settings) and box settings at the top level; the written file keeps the last two.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tomllib
from pathlib import Path

PROVISION_KEYS = {
    "hostname",
    "manager_name",
    "manager_pin",
    "store_name",
    "currency",
    "timezone",
    "languages",
    "public_base_url",
    "wifi_ssid",
    "wifi_password",
    "wifi_country",
    "address",  # the box's fixed address, e.g. 192.168.1.50/24 (provision/steps/network.sh)
    "gateway",
    "dns",
    "ntp_server",
}
STORE_FROM_PROVISION = ("store_name", "currency", "timezone", "languages")
NETWORK_KEYS = ("address", "gateway", "dns")


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON escapes are valid TOML basic-string escapes
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise SystemExit(f"provision: cannot write {value!r} into the settings file")


SECRET_KEYS = ("api_key", "api_secret", "password", "token", "auth_header")  # as appliance.settings.SYNC_SECRET_KEYS


def emit_table(name: str, table: dict, lines: list[str]) -> None:
    """[name] with its plain keys, then its sub-tables as [name.sub]."""
    plain = {k: v for k, v in table.items() if not isinstance(v, dict)}
    if plain or not table:
        lines += ["", f"[{name}]"] + [f"{key} = {toml_value(value)}" for key, value in sorted(plain.items())]
    for key, value in sorted(table.items()):
        if isinstance(value, dict):
            emit_table(f"{name}.{key}", value, lines)


def env_value(value: str) -> str:
    """A value for a systemd EnvironmentFile line: double-quoted, with backslashes and quotes escaped."""
    if "\n" in value:
        raise SystemExit("provision: a secret cannot hold a line break")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def check_network(provision: dict) -> None:
    """address, gateway and dns must work together (provision/lib/network.py); checked on the laptop by flash.sh too."""
    if not provision.get("address") or not provision.get("gateway"):
        raise SystemExit(
            "provision: a fixed address needs both address (e.g. 192.168.1.50/24) and gateway (the router, e.g. "
            "192.168.1.1); dns is optional"
        )
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from network import NetworkError, parse  # provision/lib/network.py, beside this file

    try:
        parse(provision["address"], provision["gateway"], provision.get("dns", ""))
    except NetworkError as exc:
        raise SystemExit(f"provision: {exc}") from None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--input")
    parser.add_argument("--output", required=True)
    parser.add_argument(
        "--secrets-output",
        help="where the sync targets' secrets go, as KEY=value lines "
        "(/etc/tablebox/sync.env, read by systemd for tablebox-syncd)",
    )
    for key in NETWORK_KEYS:
        parser.add_argument(f"--{key}", dest=key)
    for key in ("store_name", "currency", "timezone", "languages", "public_base_url", "hostname"):
        parser.add_argument(f"--{key.replace('_', '-')}", dest=key)
    args = parser.parse_args()
    data: dict = {}
    if args.input:
        try:
            data = tomllib.loads(Path(args.input).read_text("utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise SystemExit(f"provision: cannot read the settings file {args.input}: {exc}") from None
    provision = dict(data.pop("provision", {}) or {})
    unknown = set(provision) - PROVISION_KEYS
    if unknown:
        raise SystemExit(f"provision: unknown key(s) in [provision]: {', '.join(sorted(unknown))}")
    store = dict(data.pop("store", {}) or {})
    for key in ("store_name", "currency", "timezone", "languages", "public_base_url", "hostname"):
        given = getattr(args, key)
        if given:
            provision[key] = [p.strip() for p in given.split(",") if p.strip()] if key == "languages" else given
    for key in NETWORK_KEYS:
        if getattr(args, key):
            provision[key] = getattr(args, key)
        if key in provision and not isinstance(provision[key], str):
            raise SystemExit(f'provision: [provision] {key} must be a string in quotes, e.g. {key} = "..."')
    for key in STORE_FROM_PROVISION:
        if key in provision:
            store[key] = provision[key]
    if provision.get("public_base_url"):
        data["public_base_url"] = provision["public_base_url"]
    if any(provision.get(key) for key in NETWORK_KEYS):
        check_network(provision)
    if provision.get("address") and not data.get("public_base_url"):
        # Stickers carry the fixed address (appliance.settings.sticker_base_url), never a lease.
        host = provision["address"].split("/")[0]
        port = data.get("port", 8080)
        data["public_base_url"] = f"http://{host}" + ("" if port == 80 else f":{port}")
    # The units get the data folder from systemd ($STATE_DIRECTORY); a technician's `sudo -u tablebox tablebox ...`
    # has no such variable and would otherwise look in the service user's ~/.local/share/tablebox.
    data.setdefault("data_dir", os.environ.get("TABLEBOX_DATA", "/var/lib/tablebox"))
    lines = [
        "# Tablebox box settings, written by provision/provision.sh (`tablebox --help` lists every setting).",
        "# The [store] table holds the restaurant's first settings, used when the store is created.",
    ]
    sync = data.pop("sync", {}) or {}
    secrets = []
    for target, table in sorted(sync.items()) if isinstance(sync, dict) else ():
        for key in SECRET_KEYS:
            if isinstance(table, dict) and key in table:
                secrets.append(f"TABLEBOX_SYNC_{target.upper()}_{key.upper()}={env_value(str(table.pop(key)))}")
    lines += [f"{key} = {toml_value(value)}" for key, value in sorted(data.items()) if not isinstance(value, dict)]
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    if store:
        tables["store"] = store
    if sync:
        tables["sync"] = sync
    for key, value in sorted(tables.items()):
        emit_table(key, value, lines)
    Path(args.output).write_text("\n".join(lines) + "\n", "utf-8")
    if args.secrets_output:
        Path(args.secrets_output).write_text(
            "# Secrets of the sync targets, for tablebox-syncd (systemd EnvironmentFile); written by provision.sh.\n"
            + "".join(line + "\n" for line in secrets),
            "utf-8",
        )
    print(f"CFG_SYNC_TARGETS={len(sync) if isinstance(sync, dict) else 0}")
    print(f"CFG_SYNC_SECRETS={len(secrets)}")
    for key in ("hostname", "manager_name", "manager_pin", "store_name"):
        value = provision.get(key, store.get(key, ""))
        print(f"CFG_{key.upper()}={shlex.quote(str(value))}")
    print(f"CFG_PUBLIC_BASE_URL={shlex.quote(str(data.get('public_base_url', '')))}")
    print(f"CFG_PORT={shlex.quote(str(data.get('port', 8080)))}")
    for key in NETWORK_KEYS:  # provision/steps/network.sh
        print(f"CFG_{key.upper()}={shlex.quote(str(provision.get(key, '')))}")
    print(f"CFG_WIFI={1 if provision.get('wifi_ssid') else 0}")
    print(f"CFG_NTP_SERVER={shlex.quote(str(provision.get('ntp_server', '')))}")  # provision/steps/clock.sh
    return 0


if __name__ == "__main__":
    sys.exit(main())
