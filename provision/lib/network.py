"""A fixed address for the box (provision.sh --address/--gateway/--dns, or [provision] address/gateway/dns), written
the way the image's network stack keeps it, so that the QR stickers never point at a DHCP lease that changes.

    python3 network.py check ADDRESS GATEWAY DNS
        exits 1 with a message when they cannot work together; prints the public_base_url host.
    python3 network.py keyfile ADDRESS GATEWAY DNS INTERFACE OUT
        a NetworkManager keyfile (Raspberry Pi OS Bookworm and Trixie: NetworkManager) for a wired interface:
        connection tablebox-wired, bound to INTERFACE, preferred over the image's automatic "Wired connection 1".
    python3 network.py patch ADDRESS GATEWAY DNS FILE
        sets the [ipv4] section of an existing keyfile (the Wi-Fi connection that imager_custom set_wlan or
        firstrun.sh wrote) to the fixed address, keeping everything else, the password included, as it was.
    python3 network.py netplan ADDRESS GATEWAY DNS KIND INTERFACE OUT
        images whose network comes from netplan (cloud-init's /etc/netplan/50-cloud-init.yaml, rendered for
        NetworkManager): a netplan file that netplan merges over it (later files win, mappings merge), so the
        Wi-Fi's access point and password stay in cloud-init's file and only the addressing changes. KIND is
        ethernets or wifis.

DNS is a comma-separated list (empty: the gateway). Files are written 0600, as NetworkManager and netplan require
for files that may hold secrets. Keyfile keys as nm-settings-keyfile(5) documents them: address1=IP/PREFIX,
gateway=, dns=A;B; and method=manual.
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
import uuid
from pathlib import Path

CONNECTION_ID = "tablebox-wired"


class NetworkError(Exception):
    """The addresses cannot be used."""


def parse(address: str, gateway: str, dns: str) -> tuple[ipaddress.IPv4Interface, ipaddress.IPv4Address, list[str]]:
    try:
        interface = ipaddress.IPv4Interface(address)
    except ValueError:
        raise NetworkError(
            f"--address {address!r}: give the box's IPv4 address with its prefix, e.g. 192.168.1.50/24"
        ) from None
    if "/" not in address:
        raise NetworkError(f"--address {address}: add the prefix length, e.g. {address}/24 (what the router hands out)")
    network = interface.network
    if network.prefixlen > 30 or network.prefixlen < 8:
        raise NetworkError(f"--address {address}: a /{network.prefixlen} network is not a restaurant's LAN (use /24)")
    if interface.ip in (network.network_address, network.broadcast_address):
        raise NetworkError(f"--address {address}: that is the network's own or broadcast address, not a host")
    if not interface.ip.is_private:
        raise NetworkError(f"--address {address}: not a private (LAN) address such as 192.168.x.x or 10.x.x.x")
    try:
        router = ipaddress.IPv4Address(gateway)
    except ValueError:
        raise NetworkError(f"--gateway {gateway!r}: give the router's IPv4 address, e.g. 192.168.1.1") from None
    if router not in network:
        raise NetworkError(f"--gateway {gateway} is not in the box's network {network}: check --address and --gateway")
    if router == interface.ip:
        raise NetworkError(f"--gateway {gateway} is the box's own address")
    servers = [part.strip() for part in dns.split(",") if part.strip()] or [str(router)]
    for server in servers:
        try:
            ipaddress.ip_address(server)
        except ValueError:
            raise NetworkError(
                f"--dns {server!r}: give IP addresses, comma-separated, e.g. 192.168.1.1,223.5.5.5"
            ) from None
    return interface, router, servers


def ipv4_lines(interface: ipaddress.IPv4Interface, router: ipaddress.IPv4Address, servers: list[str]) -> list[str]:
    return [
        "[ipv4]",
        f"address1={interface.with_prefixlen}",
        f"gateway={router}",
        "dns=" + "".join(f"{server};" for server in servers),
        "ignore-auto-dns=true",
        "method=manual",
    ]


def keyfile(address: str, gateway: str, dns: str, device: str) -> str:
    interface, router, servers = parse(address, gateway, dns)
    lines = [
        "# Written by Tablebox provision.sh (step network): the box's fixed address, so that printed stickers stay right.",
        "[connection]",
        f"id={CONNECTION_ID}",
        f"uuid={uuid.uuid4()}",
        "type=ethernet",
        f"interface-name={device}",
        "autoconnect=true",
        "autoconnect-priority=100",
        "",
        "[ethernet]",
        "",
        *ipv4_lines(interface, router, servers),
        "",
        "[ipv6]",
        "addr-gen-mode=default",
        "method=auto",
    ]
    return "\n".join(lines) + "\n"


def patch_keyfile(text: str, address: str, gateway: str, dns: str) -> str:
    """`text` (a keyfile) with its [ipv4] group replaced by the fixed address; every other group kept as written."""
    interface, router, servers = parse(address, gateway, dns)
    out: list[str] = []
    skipping = False
    replaced = False
    for line in text.splitlines():
        header = re.fullmatch(r"\s*\[(.+)\]\s*", line)
        if header:
            skipping = header.group(1) == "ipv4"
            if skipping:
                out += ipv4_lines(interface, router, servers)
                replaced = True
                continue
        if not skipping:
            out.append(line)
    if not replaced:
        while out and not out[-1].strip():
            out.pop()
        out += ["", *ipv4_lines(interface, router, servers)]
    return "\n".join(out) + "\n"


def netplan(address: str, gateway: str, dns: str, kind: str, device: str) -> str:
    interface, router, servers = parse(address, gateway, dns)
    if kind not in ("ethernets", "wifis"):
        raise NetworkError(f"unknown netplan kind {kind!r}")
    lines = [
        "# Written by Tablebox provision.sh (step network): the box's fixed address. netplan merges this over",
        "# 50-cloud-init.yaml (later files win), which keeps the Wi-Fi network and its password.",
        "network:",
        "  version: 2",
        f"  {kind}:",
        f"    {device}:",
        "      dhcp4: false",
        f"      addresses: [{interface.with_prefixlen}]",
        "      routes:",
        "        - to: default",
        f"          via: {router}",
        "      nameservers:",
        f"        addresses: [{', '.join(servers)}]",
    ]
    return "\n".join(lines) + "\n"


def scrub(text: str) -> str:
    """cloud-init's network-config without its Wi-Fi passwords: the wifis: section goes (the box keeps the Wi-Fi in
    its own 0600 files by then), everything else stays. Without PyYAML, the password lines go."""
    try:
        import yaml
    except ImportError:
        return "".join(line for line in text.splitlines(keepends=True) if not re.match(r"\s*password\s*:", line))
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        return text
    net = data.get("network", data)
    if not isinstance(net, dict) or "wifis" not in net:
        return text
    del net["wifis"]
    return (
        "# The Wi-Fi section was removed by Tablebox provision.sh after first boot: the box keeps it in\n"
        "# /etc/netplan (cloud-init renders this file once per instance).\n"
        + str(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False))
    )


def write_private(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)


def main(argv: list[str]) -> int:
    args = argv[1:]
    try:
        if args[:1] == ["check"] and len(args) == 4:
            interface, _, _ = parse(*args[1:4])
            print(interface.ip)
        elif args[:1] == ["keyfile"] and len(args) == 6:
            write_private(args[5], keyfile(*args[1:5]))
        elif args[:1] == ["patch"] and len(args) == 5:
            path = Path(args[4])
            write_private(args[4], patch_keyfile(path.read_text("utf-8"), *args[1:4]))
        elif args[:1] == ["scrub"] and len(args) == 2:
            path = Path(args[1])
            before = path.read_text("utf-8")
            after = scrub(before)
            if after != before:
                tmp = path.with_name(path.name + ".tablebox-new")
                tmp.write_text(after, "utf-8")
                os.replace(tmp, path)
        elif args[:1] == ["netplan"] and len(args) == 7:
            write_private(args[6], netplan(*args[1:6]))
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except NetworkError as exc:
        print(f"provision: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
