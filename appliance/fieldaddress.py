"""`tablebox doctor`'s sticker-address line: do the printed QR stickers still reach this box?

Stickers carry public_base_url (appliance.settings.sticker_base_url: a fixed address that provision.sh --address
set up, a lease reserved on the router, a .local name or the relay), never the current DHCP lease. Each time
stickers are made the address is noted in the store (appliance.db.tables.record_sticker_address); this check
compares that note with the settings and with the addresses this box has now. A router restart that hands the box
another address, a changed public_base_url or a box moved to another network each leave every sticker on the
tables pointing elsewhere, and nothing else would say so before diners do.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import socket
import subprocess
from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlsplit

import apsw

import appliance.doctor as doctor
from appliance.db.integrity import open_for_check
from appliance.db.tables import StickerAddress, sticker_address
from appliance.settings import NO_STABLE_ADDRESS, BoxSettings, lan_address

NAME = "sticker address"
REPRINT = "reprint every sticker: tablebox stickers --pdf /tmp/stickers.pdf (or the console's Printers screen)"

Addresses = Callable[[], set[str]]
Resolve = Callable[[str], set[str]]


def box_addresses() -> set[str]:
    """Every IPv4 and IPv6 address this box has now (`ip -json addr`), else the default route's address."""
    found = {"127.0.0.1", "::1"}
    ip = shutil.which("ip")
    if ip is not None:
        try:
            result = subprocess.run([ip, "-json", "addr", "show"], capture_output=True, text=True, timeout=5)
            for link in json.loads(result.stdout or "[]"):
                for info in link.get("addr_info", []):
                    if "local" in info:
                        found.add(str(info["local"]))
            return found
        except (OSError, subprocess.SubprocessError, ValueError, AttributeError):
            pass
    found.add(lan_address())
    return found


def resolve_host(host: str) -> set[str]:
    """The addresses a name resolves to here; empty when it does not resolve."""
    try:
        return {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        return set()


def read_sticker_address(settings: BoxSettings) -> StickerAddress | None:
    if not settings.db_path.exists():
        return None
    try:
        conn = open_for_check(settings.db_path)
    except apsw.Error:
        return None
    try:
        return sticker_address(conn)
    except apsw.Error:  # a store from before the settings table (the database check says what is wrong)
        return None
    finally:
        conn.close()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def reaches_box(base_url: str, addresses: set[str], resolve: Resolve, hostname: str) -> tuple[bool | None, str]:
    """(True, why) when base_url's host is this box, (False, why) when it is not, (None, why) when this box cannot
    tell (a public name: the relay, a forwarded domain)."""
    host = (urlsplit(base_url).hostname or "").lower()
    if not host:
        return False, f"{base_url} names no host"
    if _is_ip(host):
        if host in addresses:
            return True, f"{host} is this box's address"
        now = ", ".join(sorted(a for a in addresses if not ipaddress.ip_address(a).is_loopback)) or "none"
        return False, f"{host} is not this box's address any more (it has {now})"
    if host.endswith(".local"):
        label = host.removesuffix(".local")
        if label == hostname.lower().split(".")[0]:
            return True, f"{host} is this box's name (mDNS)"
        return False, f"{host} is not this box's name any more (it is {hostname}.local)"
    resolved = resolve(host)
    if resolved & addresses:
        return True, f"{host} resolves to this box"
    if resolved and all(ipaddress.ip_address(a).is_private for a in resolved):
        return False, f"{host} resolves to {', '.join(sorted(resolved))}, not this box"
    return None, f"{host} is reached through the network ({'not resolved here' if not resolved else 'a public name'})"


def checks(
    settings: BoxSettings,
    now: datetime,
    *,
    addresses: Addresses = box_addresses,
    resolve: Resolve = resolve_host,
    hostname: Callable[[], str] = socket.gethostname,
    record: Callable[[BoxSettings], StickerAddress | None] = read_sticker_address,
) -> list[doctor.Check]:
    Check, Mark = doctor.Check, doctor.Mark
    printed = record(settings)
    current = settings.public_base_url.rstrip("/")
    if not current:
        if printed is None:
            return [
                Check(
                    NAME,
                    Mark.WARN,
                    "no stable address for stickers yet (public_base_url is empty)",
                    NO_STABLE_ADDRESS.format(port=settings.port),
                )
            ]
        detail = f"public_base_url is empty but the stickers were printed for {printed.base_url}"
        return [Check(NAME, Mark.WARN, detail, f'set public_base_url = "{printed.base_url}" again, or {REPRINT}')]
    if printed is None:
        ok, why = reaches_box(current, addresses(), resolve, hostname())
        if ok is False:
            return [
                Check(
                    NAME,
                    Mark.WARN,
                    f"no stickers printed yet, and public_base_url: {why}",
                    "fix public_base_url in the settings file before printing the stickers",
                )
            ]
        return [Check(NAME, Mark.OK, f"no stickers printed yet; they will carry {current}")]
    when = printed.printed_at[:10]
    if printed.base_url != current:
        return [
            Check(
                NAME,
                Mark.FAIL,
                f"the stickers were printed for {printed.base_url} ({when}) but public_base_url is now {current}",
                f'{REPRINT}, or set public_base_url = "{printed.base_url}" back',
            )
        ]
    ok, why = reaches_box(current, addresses(), resolve, hostname())
    if ok is False:
        fix = (
            "give the box that address back (provision.sh --address, or the router's reservation for this box), "
            f"or {REPRINT} for its new address"
        )
        return [Check(NAME, Mark.FAIL, f"the {printed.tables} stickers printed {when} point at {current}: {why}", fix)]
    detail = f"the {printed.tables} stickers printed {when} point at {current}: {why}"
    return [Check(NAME, Mark.OK, detail)]


__all__ = ["box_addresses", "checks", "reaches_box", "resolve_host"]
