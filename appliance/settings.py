"""Every setting of Tablebox, declared once with its default and help text, and read from TOML and the environment.

Two kinds:
- box settings: how this box runs (address, port, paths, logging, limits). From, lowest first:
  the defaults below, the TOML settings file, `TABLEBOX_<NAME>` environment variables, command-line flags.
- store settings: the restaurant's own options (name, currency, service charge, ...). They live in
  the store database so every process and the console see one truth; `tablebox init` takes their
  first values from the `[store]` table of the settings file, and the console edits them later.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from appliance.errors import ConfigError

ENV_PREFIX = "TABLEBOX_"
CONFIG_ENV = "TABLEBOX_CONFIG"
DATA_DIR_ENV = "TABLEBOX_DATA_DIR"
SYSTEM_CONFIG = Path("/etc/tablebox/tablebox.toml")


class SettingsError(ConfigError, ValueError):
    """A settings file or variable that cannot be used as it is; the message says which and why (exit 2)."""


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    # systemd's StateDirectory= sets STATE_DIRECTORY; otherwise the user's data folder.
    env = os.environ if env is None else env
    if env.get("STATE_DIRECTORY"):
        return Path(env["STATE_DIRECTORY"].split(":")[0])
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    base = env.get("XDG_DATA_HOME") or str(home / ".local" / "share")
    return Path(base) / "tablebox"


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    kind: type
    scope: str  # "box", "store" or "sync" (a key of a [sync.NAME] table)
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None

    @property
    def env(self) -> str | None:
        return ENV_PREFIX + self.name.upper() if self.scope == "box" else None

    def convert(self, value: Any, source: str) -> Any:
        """Turn a TOML value or an environment string into this setting's type, or explain why not."""
        try:
            if self.kind is bool:
                if isinstance(value, str):
                    low = value.strip().lower()
                    if low not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                        raise ValueError
                    value = low in {"1", "true", "yes", "on"}
                elif not isinstance(value, bool):
                    raise ValueError
            elif self.kind is int:
                if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                    raise ValueError
                value = int(value)
            elif self.kind is float:
                value = float(value)
            elif self.kind is list:
                if isinstance(value, str):
                    value = [part.strip() for part in value.split(",") if part.strip()]
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ValueError
            elif self.kind is str and not isinstance(value, str):
                raise ValueError
        except (TypeError, ValueError):
            raise SettingsError(f"{source}: {self.name} must be {self.kind.__name__}, got {value!r}") from None
        if self.choices is not None and value not in self.choices:
            raise SettingsError(
                f"{source}: {self.name} must be one of {', '.join(map(str, self.choices))}, got {value!r}"
            )
        if self.minimum is not None and value < self.minimum:
            raise SettingsError(f"{source}: {self.name} must be at least {self.minimum}, got {value!r}")
        if self.maximum is not None and value > self.maximum:
            raise SettingsError(f"{source}: {self.name} must be at most {self.maximum}, got {value!r}")
        return value


def _box(name: str, default: Any, kind: type, help: str, **kw: Any) -> Setting:
    return Setting(name, default, help, kind, "box", **kw)


def _store(name: str, default: Any, kind: type, help: str, **kw: Any) -> Setting:
    return Setting(name, default, help, kind, "store", **kw)


SETTINGS: tuple[Setting, ...] = (
    _box(
        "data_dir",
        "",
        str,
        "Folder holding the store database and secret. Default: $STATE_DIRECTORY under systemd, else ~/.local/share/tablebox.",
    ),
    _box("host", "0.0.0.0", str, "Address the web server listens on."),
    _box("port", 8080, int, "TCP port the web server listens on.", minimum=0, maximum=65535),
    _box(
        "public_base_url",
        "",
        str,
        "Start of every table's ordering URL (printed on QR stickers). Empty: http://<this box's LAN address>:<port>.",
    ),
    _box(
        "secret_file", "", str, "File holding the store secret that signs table codes. Empty: <data_dir>/store.secret."
    ),
    _box(
        "log_format",
        "auto",
        str,
        "Log lines: console (readable), json (one JSON object per line), or auto (console on a terminal, JSON otherwise).",
        choices=("auto", "console", "json"),
    ),
    _box("log_level", "info", str, "Lowest log level written.", choices=("debug", "info", "warning", "error")),
    _box(
        "max_body_bytes",
        65_536,
        int,
        "Largest request body accepted; larger gets 413.",
        minimum=1024,
        maximum=10_485_760,
    ),
    _box(
        "max_header_bytes",
        16_384,
        int,
        "Largest request head (request line and headers) accepted; larger gets 431 and the connection is closed.",
        minimum=1024,
        maximum=65_536,
    ),
    _box(
        "header_timeout_seconds",
        10.0,
        float,
        "Seconds a connection may take to send a request's head once it waits for one; then 408 (closed at once if nothing came).",
        minimum=0.05,
        maximum=10,
    ),
    _box(
        "body_timeout_seconds",
        30.0,
        float,
        "Seconds a request's body may take to arrive after its head; then 408 and the connection is closed.",
        minimum=0.05,
        maximum=600,
    ),
    _box(
        "idle_timeout_seconds",
        5.0,
        float,
        "Seconds a kept-alive connection may wait for its next request before it is closed.",
        minimum=0.05,
        maximum=300,
    ),
    _box(
        "max_connections",
        0,
        int,
        "Most connections open at once (0: the file limit less 128 for the database and logs). When full, the oldest idle connection is closed to make room; with none idle, 503 too_many_connections.",
        minimum=0,
    ),
    _box(
        "max_connections_per_address",
        64,
        int,
        "Most connections open at once from one network address (0 = no limit); beyond it 503 too_many_connections.",
        minimum=0,
    ),
    _box(
        "rate_limit_table_per_minute",
        30,
        int,
        "Orders and waiter/bill requests one table may send per minute before getting 429 (0 = no limit).",
        minimum=0,
    ),
    _box(
        "rate_limit_address_per_minute",
        600,
        int,
        "API requests one network address may send per minute before getting 429 (0 = no limit).",
        minimum=0,
    ),
    _box(
        "writer_max_batch",
        256,
        int,
        "Most writes committed together in one transaction (group commit).",
        minimum=1,
        maximum=10_000,
    ),
    _box(
        "events_poll_seconds",
        0.25,
        float,
        "How often live order updates check the database for changes (PRAGMA data_version).",
    ),
    _box(
        "events_keepalive_seconds", 15.0, float, "Seconds between keep-alive comments on a diner's live event stream."
    ),
    _box(
        "sqlite_vfs",
        "",
        str,
        "Name of a registered SQLite VFS to open the database with (benchmarks and tests); empty for the default.",
    ),
    _box(
        "min_free_mb",
        64,
        int,
        "Free disk space (MB) the data folder must keep: below it the web server refuses new orders and waiter/bill requests (503 disk_full) instead of risking a failed write; `tablebox doctor` warns below four times it.",
        minimum=0,
    ),
    _box(
        "backup_dir",
        "",
        str,
        "Folder `tablebox backup` writes to and rotates (7 daily, 4 weekly). Empty: <data_dir>/backups.",
    ),
    _box(
        "backup_usb_dir",
        "/media/tablebox",
        str,
        "A USB stick's mount point: each backup is also copied there (and rotated), but only while a stick is mounted there (a FAT32/exFAT stick labelled TABLEBOX is mounted at /media/tablebox by itself). Empty: no copy.",
    ),
    _box(
        "retention_days",
        90,
        int,
        "Days delivered sync rows, order status events and printed tickets are kept before `tablebox prune` (nightly) deletes them; orders, their lines and payments are always kept.",
        minimum=1,
        maximum=36_500,
    ),
    _store("store_name", "Tablebox", str, "The restaurant's name, shown to diners and printed on tickets."),
    _store(
        "currency", "CNY", str, "ISO 4217 currency code; prices are integers in its minor unit (CNY: fen, JPY: yen)."
    ),
    _store("languages", ["zh", "en"], list, "Menu languages, the first being the default."),
    _store(
        "timezone",
        "Asia/Shanghai",
        str,
        "The restaurant's time zone (business day, availability windows, ticket numbers).",
    ),
    _store(
        "service_charge_bp",
        0,
        int,
        "Service charge in basis points of the subtotal (1000 = 10%).",
        minimum=0,
        maximum=5000,
    ),
    _store(
        "tax_rate_bp",
        600,
        int,
        "Tax rate included in prices, in basis points (600 = 6%); shown on bills, never added.",
        minimum=0,
        maximum=5000,
    ),
    _store("auto_accept", False, bool, "Accept every diner's order at once instead of waiting for staff."),
    _store(
        "print_on",
        "submit",
        str,
        "When kitchen tickets print: on submit, or when staff accept the order.",
        choices=("submit", "accept"),
    ),
    _store("tables_need_staff_open", False, bool, "Tables take orders only after staff open them (seat the guests)."),
    _store(
        "opening_hours",
        [],
        list,
        "Daily ordering hours as HH:MM-HH:MM ranges in local time (several allowed; empty = always open).",
    ),
    _store(
        "day_starts_at",
        "05:00",
        str,
        "Local time the business day (and ticket numbering) starts; orders before it belong to the previous day.",
    ),
    _store(
        "late_after_minutes",
        10,
        int,
        "Minutes after which an open order shows amber (late, marked !) on the console.",
        minimum=1,
        maximum=600,
    ),
    _store(
        "very_late_after_minutes",
        20,
        int,
        "Minutes after which an open order shows red (very late, marked !!) on the console.",
        minimum=1,
        maximum=600,
    ),
    _store(
        "lock_after_minutes",
        10,
        int,
        "Minutes without a key or a click after which the console locks itself (back to the PIN screen); 0 = never. Diners' orders and calls arriving do not count as someone at the console.",
        minimum=0,
        maximum=720,
    ),
    _store(
        "cancel_reasons",
        ["客人取消 guest cancelled", "沽清 sold out", "下错单 wrong order", "等太久 waited too long"],
        list,
        "Reasons offered when staff cancel an order or void a line (free text is always allowed too).",
    ),
)

BOX_SETTINGS = {s.name: s for s in SETTINGS if s.scope == "box"}

# [sync.NAME] tables: one per ERP the box delivers orders to (sync/config.py turns them into targets). Only the keys
# every target shares are declared here; each adapter module documents its own (paths, database, price list...).
SYNC_KINDS = ("rest", "erpnext", "odoo", "relay")  # sync.adapters.KINDS: a test keeps the two in step
SYNC_SECRET_KEYS = ("api_key", "api_secret", "password", "token", "auth_header", "hmac_secret", "client_key_password")
SYNC_NAME = re.compile(r"[a-z0-9_]+")
SYNC_ENV_PREFIX = "TABLEBOX_SYNC_"
SYNC_KEYS: tuple[Setting, ...] = (
    Setting(
        "kind",
        None,
        "Which ERP speaks at base_url: rest (the generic REST adapter), erpnext or odoo; relay: the "
        "public relay phones off the store Wi-Fi order through.",
        str,
        "sync",
        choices=SYNC_KINDS,
    ),
    Setting("base_url", None, "The ERP's address, http:// or https://.", str, "sync"),
    Setting("enabled", True, "false: keep the target (and its queued rows) but deliver nothing to it.", bool, "sync"),
    Setting(
        "timeout_seconds",
        10,
        "Seconds every HTTP call to the ERP may take before it counts as failed (then retried).",
        int,
        "sync",
        minimum=1,
        maximum=120,
    ),
    Setting(
        "pull_minutes",
        15,
        "Minutes between catalog and stock pulls from the ERP; 0: only `tablebox sync pull`.",
        int,
        "sync",
        minimum=0,
        maximum=10_080,
    ),
    Setting(
        "retry_cap_seconds",
        300.0,
        "Longest wait between two delivery attempts (the backoff doubles from 1 s up to it).",
        float,
        "sync",
        minimum=0.01,
        maximum=3600,
    ),
    Setting(
        "max_in_flight",
        8,
        "Rows of different orders sent to the ERP at once (an order's own rows always go one "
        "after another); 1: strictly one at a time.",
        int,
        "sync",
        minimum=1,
        maximum=32,
    ),
)
SYNC_SETTINGS = {s.name: s for s in SYNC_KEYS}
STORE_SETTINGS = {s.name: s for s in SETTINGS if s.scope == "store"}


@dataclass(frozen=True)
class BoxSettings:
    data_dir: Path
    host: str = "0.0.0.0"
    port: int = 8080
    public_base_url: str = ""
    secret_file: str = ""
    log_format: str = "auto"
    log_level: str = "info"
    max_body_bytes: int = 65_536
    max_header_bytes: int = 16_384
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    idle_timeout_seconds: float = 5.0
    max_connections: int = 0
    max_connections_per_address: int = 64
    rate_limit_table_per_minute: int = 30
    rate_limit_address_per_minute: int = 600
    writer_max_batch: int = 256
    events_poll_seconds: float = 0.25
    events_keepalive_seconds: float = 15.0
    sqlite_vfs: str = ""
    min_free_mb: int = 64
    backup_dir: str = ""
    backup_usb_dir: str = "/media/tablebox"
    retention_days: int = 90
    config_file: Path | None = None
    store_defaults: Mapping[str, Any] = field(default_factory=dict)
    # [sync.NAME] tables, validated, defaults filled in, secrets merged from the environment; repr=False keeps
    # the secrets out of any log line or traceback that prints the settings.
    sync_targets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "store.db"

    @property
    def secret_path(self) -> Path:
        return Path(self.secret_file) if self.secret_file else self.data_dir / "store.secret"

    def with_overrides(self, **overrides: Any) -> BoxSettings:
        """Command-line flags win over everything; None means 'not given'."""
        given = {k: v for k, v in overrides.items() if v is not None}
        for name, value in given.items():
            if name in BOX_SETTINGS and name != "data_dir":
                given[name] = BOX_SETTINGS[name].convert(value, f"--{name.replace('_', '-')}")
        if "data_dir" in given:
            given["data_dir"] = Path(given["data_dir"])
        return replace(self, **given)


def lan_address() -> str:
    """This box's address on the store network (the interface of the default route); 127.0.0.1 if none.
    A UDP connect() only picks a route: no packet is sent."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere, nothing is sent
            address: str = probe.getsockname()[0]
            return address
        except OSError:
            return "127.0.0.1"


def public_base_url(settings: BoxSettings) -> str:
    """The start of every table's ordering URL as `tablebox tables` and the server's banner show it: the
    public_base_url setting, else http://<this box's LAN address>:<port> (for a first look only: that address can
    be a DHCP lease, so stickers never use it; see sticker_base_url)."""
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/")
    return f"http://{lan_address()}:{settings.port}"


NO_STABLE_ADDRESS = (
    "public_base_url is empty, and this box's current address may be a DHCP lease that changes after a router "
    "restart, leaving every printed sticker pointing elsewhere: give the box a fixed address "
    "(provision.sh --address 192.168.1.50/24 --gateway 192.168.1.1 sets public_base_url too), or reserve its lease "
    'on the router and set public_base_url = "http://THAT-ADDRESS:{port}" in the settings file, '
    "or pass --public-base-url"
)


def sticker_base_url(settings: BoxSettings) -> str:
    """The start of the URLs QR stickers carry: only ever the public_base_url setting (which provision.sh writes
    from a fixed --address, or the technician from a reserved lease or the relay), never the current lease.
    SettingsError (exit 2) when it is empty."""
    if not settings.public_base_url:
        raise SettingsError(NO_STABLE_ADDRESS.format(port=settings.port))
    return settings.public_base_url.rstrip("/")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read settings file: {exc.strerror}") from None


def load_settings(
    environ: Mapping[str, str] | None = None, data_dir: str | Path | None = None, config_file: str | Path | None = None
) -> BoxSettings:
    """Defaults, then the settings file, then the environment. `data_dir` (a flag) wins over all.

    The settings file is $TABLEBOX_CONFIG, else <data_dir>/tablebox.toml, else /etc/tablebox/tablebox.toml,
    whichever exists first. Unknown keys are refused so a typo never silently does nothing.
    """
    env = os.environ if environ is None else environ
    resolved_dir = Path(data_dir or env.get(DATA_DIR_ENV) or default_data_dir(env))
    path: Path | None = Path(config_file) if config_file else (Path(env[CONFIG_ENV]) if env.get(CONFIG_ENV) else None)
    if path is None:
        for candidate in (resolved_dir / "tablebox.toml", SYSTEM_CONFIG):
            if candidate.is_file():
                path = candidate
                break
    values: dict[str, Any] = {}
    store_defaults: dict[str, Any] = {}
    sync_tables: Any = {}
    if path is not None:
        data = _read_toml(path)
        for key, value in data.items():
            if key == "store":
                if not isinstance(value, dict):
                    raise SettingsError(f"{path}: [store] must be a table")
                for skey, svalue in value.items():
                    if skey not in STORE_SETTINGS:
                        raise SettingsError(f"{path}: unknown store setting {skey!r} in [store]")
                    store_defaults[skey] = STORE_SETTINGS[skey].convert(svalue, str(path))
            elif key == "sync":
                sync_tables = value
            elif key in BOX_SETTINGS:
                values[key] = BOX_SETTINGS[key].convert(value, str(path))
            else:
                raise SettingsError(f"{path}: unknown setting {key!r}")
    for name, setting in BOX_SETTINGS.items():
        if setting.env and setting.env in env and name != "data_dir":
            values[name] = setting.convert(env[setting.env], f"${setting.env}")
    if not data_dir and not env.get(DATA_DIR_ENV) and values.get("data_dir"):
        resolved_dir = Path(values["data_dir"])
    values.pop("data_dir", None)
    known = {f.name for f in fields(BoxSettings)}
    return BoxSettings(
        data_dir=resolved_dir,
        config_file=path,
        store_defaults=store_defaults,
        sync_targets=_sync_targets(path, sync_tables, env) if path is not None else {},
        **{k: v for k, v in values.items() if k in known},
    )


def sync_secret_env(name: str, key: str) -> str:
    """The environment variable holding a target's secret: TABLEBOX_SYNC_ERP_API_SECRET for [sync.erp] api_secret."""
    return f"{SYNC_ENV_PREFIX}{name.upper()}_{key.upper()}"


def _private(path: Path) -> bool:
    """Only the owner may read or write the file (0600 or 0400): then secrets may sit in it."""
    try:
        return stat.S_IMODE(path.stat().st_mode) & 0o177 == 0
    except OSError:
        return False


def _sync_targets(path: Path, tables: Any, env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Check each [sync.NAME] table: its name, the shared keys (kind, base_url, timeouts), and where its secrets
    come from; fill in the defaults. Adapter-specific keys pass through for the adapter to check."""
    if not isinstance(tables, dict):
        raise SettingsError(f"{path}: [sync] must hold one table per target, like [sync.erp]")
    private = _private(path)
    targets: dict[str, dict[str, Any]] = {}
    for name, table in tables.items():
        where = f"{path}: [sync.{name}]"
        if not SYNC_NAME.fullmatch(name):
            raise SettingsError(f"{where}: a target's name is lower-case letters, digits and _ only (e.g. [sync.erp])")
        if not isinstance(table, dict):
            raise SettingsError(f"{where} must be a table of settings (kind, base_url, ...)")
        config: dict[str, Any] = {}
        for setting in SYNC_KEYS:
            if setting.name in table:
                config[setting.name] = setting.convert(table[setting.name], where)
            elif setting.default is None:
                raise SettingsError(f"{where}: {setting.name} is missing ({setting.help})")
            else:
                config[setting.name] = setting.default
        url = config["base_url"]
        if not re.fullmatch(r"https?://[^/\s?#]+(/\S*)?", url):
            raise SettingsError(f"{where}: base_url must start with http:// or https:// and name a host, got {url!r}")
        config["base_url"] = url.rstrip("/")
        for key, value in table.items():
            if key in SYNC_SETTINGS:
                continue
            if key in SYNC_SECRET_KEYS:
                if not private:
                    mode = oct(stat.S_IMODE(path.stat().st_mode))[2:]
                    raise SettingsError(
                        f"{where}: {key} is written in the file, but others may read it (mode {mode}). Either "
                        f"`chmod 600 {path}` (owned by the user the service runs as), or take {key} out of the file "
                        f"and set ${sync_secret_env(name, key)} in the environment (under systemd: in "
                        f"/etc/tablebox/sync.env, mode 0600)"
                    )
                if not isinstance(value, str) or not value:
                    raise SettingsError(f"{where}: {key} must be a non-empty string")
            config[key] = value
        for key in SYNC_SECRET_KEYS:
            variable = sync_secret_env(name, key)
            if env.get(variable):
                config[key] = env[variable]
        targets[name] = config
    return targets


def settings_help() -> str:
    """Every setting with its default, environment variable and help: the epilog of `tablebox --help`."""
    lines = ["box settings (settings file key, or environment variable):"]
    for s in SETTINGS:
        if s.scope == "box":
            lines.append(f"  {s.name} = {s.default!r}    ${s.env}")
            lines.append(f"      {s.help}")
    lines.append("")
    lines.append(
        "store settings ([store] table of the settings file, applied by `tablebox init`; kept in the database):"
    )
    for s in SETTINGS:
        if s.scope == "store":
            lines.append(f"  {s.name} = {s.default!r}")
            lines.append(f"      {s.help}")
    lines.append("")
    lines.append(
        "sync targets ([sync.NAME] tables of the settings file, one per ERP; kind-specific keys in the README):"
    )
    for s in SYNC_KEYS:
        lines.append(f"  {s.name} = {'(required)' if s.default is None else repr(s.default)}")
        lines.append(f"      {s.help}")
    lines.append(
        f"  secrets ({', '.join(SYNC_SECRET_KEYS)}): in the file only if it is mode 0600, else from "
        f"${SYNC_ENV_PREFIX}<NAME>_<KEY>."
    )
    lines.append("")
    lines.append(f"settings file: ${CONFIG_ENV}, else <data_dir>/tablebox.toml, else {SYSTEM_CONFIG}.")
    lines.append(
        f"data folder: --data-dir, else ${DATA_DIR_ENV}, else data_dir from the settings file, else the default above."
    )
    return "\n".join(lines)
