"""The relay service's settings, declared once with defaults and help: a TOML file < TABLEBOX_RELAY_* < flags."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from appliance.settings import Setting, SettingsError

ENV_PREFIX = "TABLEBOX_RELAY_"
CONFIG_ENV = "TABLEBOX_RELAY_CONFIG"
SYSTEM_CONFIG = Path("/etc/tablebox/relay.toml")


def _relay(name: str, default: Any, kind: type, help: str, **kw: Any) -> Setting:
    return Setting(name, default, help, kind, "relay", **kw)


RELAY_SETTINGS: tuple[Setting, ...] = (
    _relay("host", "0.0.0.0", str, "Address the relay listens on (put it behind a TLS-terminating proxy)."),
    _relay("port", 8090, int, "TCP port the relay listens on.", minimum=0, maximum=65535),
    _relay(
        "database_url",
        "",
        str,
        "Where the relay keeps stores, inboxes and events: sqlite:///PATH (one relay "
        "host; PATH is relative, so sqlite:////var/lib/relay.db for an absolute one) or "
        "postgresql://USER:PASSWORD@HOST:PORT/DB (many stores, several relay processes). Empty: relay.db in "
        "$STATE_DIRECTORY, else in ~/.local/share/tablebox-relay.",
    ),
    _relay(
        "offline_after_seconds",
        60,
        int,
        "A store whose box has not polled for this long (and is not polling "
        "now) is offline: phones get 503 restaurant_offline. 60 = two missed 25 s polls and some slack.",
        minimum=5,
        maximum=3600,
    ),
    _relay(
        "recheck_seconds",
        1.0,
        float,
        "While a long-poll or an event stream waits, how often it re-reads the database too: on SQLite (another "
        "process on the same file wakes no one in this one), and on PostgreSQL only while this process's LISTEN "
        "connection is down (otherwise NOTIFY wakes it at once).",
        minimum=0.05,
        maximum=25,
    ),
    _relay(
        "keepalive_seconds",
        15.0,
        float,
        "Seconds between keep-alive comments on a phone's event stream.",
        minimum=0.05,
        maximum=300,
    ),
    _relay(
        "max_body_bytes",
        65_536,
        int,
        "Largest body a phone may send; larger gets 413.",
        minimum=1024,
        maximum=10_485_760,
    ),
    _relay(
        "max_box_body_bytes",
        4_194_304,
        int,
        "Largest body a box may send (menu pushes, event batches).",
        minimum=65_536,
        maximum=67_108_864,
    ),
    _relay(
        "max_header_bytes",
        16_384,
        int,
        "Largest request head (request line and headers) accepted; larger gets 431 and the connection is closed.",
        minimum=1024,
        maximum=65_536,
    ),
    _relay(
        "header_timeout_seconds",
        10.0,
        float,
        "Seconds a connection may take to send a request's head once it waits for one; then 408 (closed at once "
        "if nothing came).",
        minimum=0.05,
        maximum=10,
    ),
    _relay(
        "body_timeout_seconds",
        60.0,
        float,
        "Seconds a request's body may take to arrive after its head (a box's menu push of max_box_body_bytes "
        "too); then 408 and the connection is closed.",
        minimum=0.05,
        maximum=600,
    ),
    _relay(
        "idle_timeout_seconds",
        5.0,
        float,
        "Seconds a kept-alive connection may wait for its next request before it is closed.",
        minimum=0.05,
        maximum=300,
    ),
    _relay(
        "max_connections",
        0,
        int,
        "Most connections open at once (0: the file limit less 128). When full, the oldest idle connection is "
        "closed to make room; with none idle (every box long-polling), 503 too_many_connections.",
        minimum=0,
    ),
    _relay(
        "max_connections_per_address",
        64,
        int,
        "Most connections open at once from one network address (0 = no limit); beyond it 503 "
        "too_many_connections. The proxies in forwarded_allow_ips are not capped (they carry everyone).",
        minimum=0,
    ),
    _relay(
        "rate_limit_store_per_minute",
        600,
        int,
        "New orders and waiter/bill requests one store may receive per minute through the relay before phones get "
        "429 (0 = no limit). Only what passed the address's, the table code's and the code checks counts.",
        minimum=0,
    ),
    _relay(
        "rate_limit_token_per_minute",
        30,
        int,
        "Orders and waiter/bill requests one table code may send per minute before getting 429 (0 = no limit).",
        minimum=0,
    ),
    _relay(
        "rate_limit_address_per_minute",
        600,
        int,
        "Phone API requests one network address may send per minute before getting 429 (0 = no limit); a table "
        "code the relay refuses (forged, old, another store's) counts as 10.",
        minimum=0,
    ),
    _relay(
        "rate_limit_address_orders_per_minute",
        60,
        int,
        "Orders and waiter/bill requests (repeats included) one network address may send per minute before getting "
        "429 (0 = no limit). Keep it well below rate_limit_store_per_minute: one address cannot use up a store's.",
        minimum=0,
    ),
    _relay(
        "db_threads",
        8,
        int,
        "Threads running database calls (and, on PostgreSQL, connections kept open) per relay process.",
        minimum=1,
        maximum=64,
    ),
    _relay(
        "keep_days",
        3,
        int,
        "Days acknowledged inbox messages and order events are kept (a phone's retry or "
        "its order list within that time still gets the same answer).",
        minimum=1,
        maximum=365,
    ),
    _relay(
        "orders_hours",
        4,
        int,
        "Hours a table code's orders stay on the order list and event stream of the "
        "phones using it (the relay cannot see when a party leaves).",
        minimum=1,
        maximum=48,
    ),
    _relay(
        "forwarded_allow_ips",
        "127.0.0.1",
        str,
        "Proxies whose X-Forwarded-For is trusted for the client's "
        "address (per-address rate limits); comma-separated, or * for any.",
    ),
    _relay(
        "log_format",
        "auto",
        str,
        "Log lines: console, json, or auto (console on a terminal, JSON otherwise).",
        choices=("auto", "console", "json"),
    ),
    _relay("log_level", "info", str, "Lowest log level written.", choices=("debug", "info", "warning", "error")),
)
BY_NAME = {s.name: s for s in RELAY_SETTINGS}


def env_name(setting: Setting) -> str:
    return ENV_PREFIX + setting.name.upper()


def default_database_url(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    if env.get("STATE_DIRECTORY"):
        folder = Path(env["STATE_DIRECTORY"].split(":")[0])
    else:
        home = Path(env["HOME"]) if env.get("HOME") else Path.home()
        folder = Path(env.get("XDG_DATA_HOME") or str(home / ".local" / "share")) / "tablebox-relay"
    return f"sqlite:///{folder / 'relay.db'}"


@dataclass(frozen=True)
class RelaySettings:
    host: str = "0.0.0.0"
    port: int = 8090
    database_url: str = ""
    offline_after_seconds: int = 60
    recheck_seconds: float = 1.0
    keepalive_seconds: float = 15.0
    max_body_bytes: int = 65_536
    max_box_body_bytes: int = 4_194_304
    max_header_bytes: int = 16_384
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 60.0
    idle_timeout_seconds: float = 5.0
    max_connections: int = 0
    max_connections_per_address: int = 64
    rate_limit_store_per_minute: int = 600
    rate_limit_token_per_minute: int = 30
    rate_limit_address_per_minute: int = 600
    rate_limit_address_orders_per_minute: int = 60
    db_threads: int = 8
    keep_days: int = 3
    orders_hours: int = 4
    forwarded_allow_ips: str = "127.0.0.1"
    log_format: str = "auto"
    log_level: str = "info"
    config_file: Path | None = None

    def with_overrides(self, **overrides: Any) -> RelaySettings:
        """Flags win over everything; None means 'not given'."""
        given = {k: BY_NAME[k].convert(v, f"--{k.replace('_', '-')}") for k, v in overrides.items() if v is not None}
        return replace(self, **given)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or default_database_url()


def load_relay_settings(
    environ: Mapping[str, str] | None = None, config_file: str | Path | None = None
) -> RelaySettings:
    """Defaults, then the settings file ($TABLEBOX_RELAY_CONFIG, else /etc/tablebox/relay.toml if present;
    keys at the top level or in a [relay] table), then TABLEBOX_RELAY_<NAME>. Unknown keys are refused."""
    env = os.environ if environ is None else environ
    path: Path | None = Path(config_file) if config_file else (Path(env[CONFIG_ENV]) if env.get(CONFIG_ENV) else None)
    if path is None and SYSTEM_CONFIG.is_file():
        path = SYSTEM_CONFIG
    values: dict[str, Any] = {}
    if path is not None:
        try:
            with path.open("rb") as handle:
                data = tomllib.load(handle)
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{path}: not valid TOML: {exc}") from None
        except OSError as exc:
            raise SettingsError(f"{path}: cannot read settings file: {exc.strerror}") from None
        if isinstance(data.get("relay"), dict):
            data = {**{k: v for k, v in data.items() if k != "relay"}, **data["relay"]}
        for key, value in data.items():
            if key not in BY_NAME:
                raise SettingsError(f"{path}: unknown relay setting {key!r}")
            values[key] = BY_NAME[key].convert(value, str(path))
    for setting in RELAY_SETTINGS:
        variable = env_name(setting)
        if variable in env:
            values[setting.name] = setting.convert(env[variable], f"${variable}")
    known = {f.name for f in fields(RelaySettings)}
    return RelaySettings(config_file=path, **{k: v for k, v in values.items() if k in known})


def relay_settings_help() -> str:
    lines = ["relay settings (relay settings file key, or environment variable):"]
    for s in RELAY_SETTINGS:
        lines.append(f"  {s.name} = {s.default!r}    ${env_name(s)}")
        lines.append(f"      {s.help}")
    lines.append(f"relay settings file: --config, else ${CONFIG_ENV}, else {SYSTEM_CONFIG} if it exists.")
    return "\n".join(lines)
