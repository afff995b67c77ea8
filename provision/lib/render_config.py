"""Write /etc/tablebox/tablebox.toml from the technician's settings file and flags; print the
provisioning values (hostname, manager...) as shell assignments for provision.sh.

The technician's file may hold a [provision] table (for this script), a [store] table (the restaurant's
first settings) and box settings at the top level; the written file keeps the last two.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tomllib
from pathlib import Path

PROVISION_KEYS = {"hostname", "manager_name", "manager_pin", "store_name", "currency", "timezone", "languages",
                  "public_base_url", "wifi_ssid", "wifi_password", "wifi_country"}
STORE_FROM_PROVISION = ("store_name", "currency", "timezone", "languages")


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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--input")
    parser.add_argument("--output", required=True)
    for key in ("store_name", "currency", "timezone", "languages", "public_base_url", "hostname"):
        parser.add_argument(f"--{key.replace('_', '-')}", dest=key)
    args = parser.parse_args()
    data: dict = {}
    if args.input:
        try:
            data = tomllib.loads(Path(args.input).read_text("utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise SystemExit(f"provision: cannot read the settings file {args.input}: {exc}")
    provision = dict(data.pop("provision", {}) or {})
    unknown = set(provision) - PROVISION_KEYS
    if unknown:
        raise SystemExit(f"provision: unknown key(s) in [provision]: {', '.join(sorted(unknown))}")
    store = dict(data.pop("store", {}) or {})
    for key in ("store_name", "currency", "timezone", "languages", "public_base_url", "hostname"):
        given = getattr(args, key)
        if given:
            provision[key] = [p.strip() for p in given.split(",") if p.strip()] if key == "languages" else given
    for key in STORE_FROM_PROVISION:
        if key in provision:
            store[key] = provision[key]
    if provision.get("public_base_url"):
        data["public_base_url"] = provision["public_base_url"]
    lines = ["# Tablebox box settings, written by provision/provision.sh (`tablebox --help` lists every setting).",
             "# The [store] table holds the restaurant's first settings, used when the store is created."]
    lines += [f"{key} = {toml_value(value)}" for key, value in sorted(data.items()) if not isinstance(value, dict)]
    if store:
        lines += ["", "[store]"] + [f"{key} = {toml_value(value)}" for key, value in sorted(store.items())]
    Path(args.output).write_text("\n".join(lines) + "\n", "utf-8")
    for key in ("hostname", "manager_name", "manager_pin", "store_name"):
        value = provision.get(key, store.get(key, ""))
        print(f"CFG_{key.upper()}={shlex.quote(str(value))}")
    print(f"CFG_PUBLIC_BASE_URL={shlex.quote(str(data.get('public_base_url', '')))}")
    print(f"CFG_PORT={shlex.quote(str(data.get('port', 8080)))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
