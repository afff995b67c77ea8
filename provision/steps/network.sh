# shellcheck shell=bash disable=SC2153  # ROOT, WORK, CFG_*... are provision.sh's
# Step network (sourced by provision.sh): a fixed address for the box, so that the QR stickers on the tables never
# point at a DHCP lease that a router restart hands to something else.
#
#   provision.sh --address 192.168.1.50/24 --gateway 192.168.1.1 [--dns 192.168.1.1,223.5.5.5]
#   ([provision] address, gateway, dns in tablebox.toml; render_config.py also sets public_base_url from it)
#
# Written the way the image keeps its network (both Raspberry Pi OS releases use NetworkManager):
#   - netplan in use (/etc/netplan/*.yaml, as cloud-init images render network-config): /etc/netplan/90-tablebox.yaml,
#     merged by netplan over cloud-init's file (the Wi-Fi and its password stay there);
#   - otherwise a NetworkManager keyfile: tablebox-wired.nmconnection for eth0, or, on a box set up for Wi-Fi
#     ([provision] wifi_ssid), the [ipv4] group of the Wi-Fi connection firstrun.sh/imager_custom wrote.
# Files are 0600 (NetworkManager ignores keyfiles others can read). Applied at once only at first boot
# (--unattended: no one's SSH session rides on the old lease); otherwise at the next boot, or with the command shown.
# Without an address nothing is written, and the summary names the lease to reserve on the router instead.

NETWORK_LIB=${NETWORK_LIB:-$PROVISION_DIR/lib/network.py}
NM_CONNECTIONS_DIR=/etc/NetworkManager/system-connections
NETPLAN_DIR=/etc/netplan
NETPLAN_FILE=$NETPLAN_DIR/90-tablebox.yaml
WIRED_DEVICE=${TABLEBOX_WIRED_DEVICE:-eth0}
WIFI_DEVICE=${TABLEBOX_WIFI_DEVICE:-wlan0}

# put_private GENERATED DEST: install a 0600 root file unless the same one is there (keyfiles carry a fresh uuid
# each time: compared without their uuid= line).
put_private() {
  local src=$1 dest=$2 path
  path=$(at "$dest")
  if [[ -f "$path" ]] && cmp -s <(grep -v '^uuid=' "$src") <(grep -v '^uuid=' "$path") \
     && [[ "$(stat -c '%a %u' "$path")" == "600 0" ]]; then
    unchanged "$dest"
    return 1
  fi
  install -D -m 0600 -o 0 -g 0 "$src" "$path"
  changed "$dest"
}

# Is the network the image's netplan (a YAML file in /etc/netplan besides ours)?
uses_netplan() {
  [[ -d "$(at "$NETPLAN_DIR")" ]] && [[ -n "$(find "$(at "$NETPLAN_DIR")" -maxdepth 1 -name '*.yaml' ! -name 90-tablebox.yaml -print -quit)" ]]
}

# The Wi-Fi connection keyfiles (type=wifi) NetworkManager keeps, one a line.
wifi_keyfiles() {
  local file
  for file in "$(at "$NM_CONNECTIONS_DIR")"/*.nmconnection; do
    [[ -f "$file" ]] && grep -qE '^type=(wifi|802-11-wireless)$' "$file" && printf '%s\n' "$file"
  done
  return 0
}

step_network() {
  if [[ -z "${CFG_ADDRESS:-}" ]]; then
    say "network: no fixed address (--address): the box keeps its DHCP lease"
    return 0
  fi
  local dns=${CFG_DNS:-$CFG_GATEWAY} kind=ethernets device=$WIRED_DEVICE applied=""
  if [[ "${CFG_WIFI:-0}" == 1 ]]; then kind=wifis; device=$WIFI_DEVICE; fi
  say "network: $CFG_ADDRESS via $CFG_GATEWAY (DNS $dns) on $device"
  python3 "$NETWORK_LIB" check "$CFG_ADDRESS" "$CFG_GATEWAY" "$dns" >/dev/null || die "the fixed address cannot be used (see above)"
  if uses_netplan; then
    python3 "$NETWORK_LIB" netplan "$CFG_ADDRESS" "$CFG_GATEWAY" "$dns" "$kind" "$device" "$WORK/90-tablebox.yaml"
    if put_private "$WORK/90-tablebox.yaml" "$NETPLAN_FILE"; then applied="netplan"; fi
  elif [[ "$kind" == wifis ]]; then
    local file found=0
    while IFS= read -r file; do
      [[ -n "$file" ]] || continue
      found=1
      cp "$file" "$WORK/wifi.nmconnection"
      python3 "$NETWORK_LIB" patch "$CFG_ADDRESS" "$CFG_GATEWAY" "$dns" "$WORK/wifi.nmconnection"
      if put_private "$WORK/wifi.nmconnection" "${file#"$ROOT"}"; then applied="nm"; fi
    done < <(wifi_keyfiles)
    [[ "$found" == 1 ]] || die "no Wi-Fi connection in $NM_CONNECTIONS_DIR to give the fixed address to: set up the Wi-Fi first (flash.sh does), or use a cable"
  else
    python3 "$NETWORK_LIB" keyfile "$CFG_ADDRESS" "$CFG_GATEWAY" "$dns" "$device" "$WORK/tablebox-wired.nmconnection"
    if put_private "$WORK/tablebox-wired.nmconnection" "$NM_CONNECTIONS_DIR/tablebox-wired.nmconnection"; then applied="nm"; fi
  fi
  if [[ -z "$applied" ]] || ! running_here; then return 0; fi
  local now="the next boot"
  if [[ "$applied" == netplan ]]; then
    netplan generate || die "netplan refused $NETPLAN_FILE (see above)"
    if [[ "$UNATTENDED" == 1 ]]; then netplan apply && now="now"; fi
    say "  the fixed address applies from $now (sudo netplan apply to switch at once; SSH sessions on the old address drop)"
  else
    nmcli connection reload || true
    if [[ "$UNATTENDED" == 1 && "$kind" == ethernets ]]; then nmcli connection up "tablebox-wired" && now="now"; fi
    say "  the fixed address applies from $now (sudo nmcli connection up tablebox-wired, or reboot; SSH sessions on the old address drop)"
  fi
}

# After first boot the box keeps the Wi-Fi in its own 0600 files (/etc/netplan, NetworkManager), so the copy on the
# boot partition, readable by anyone holding the card, goes: cloud-init's network-config keeps its other settings
# and loses the wifis: section (cloud-init renders network-config once per instance: NoCloud applies network
# configuration on a new instance only). Called by provision.sh's scrub_secrets.
scrub_boot_wifi() {
  local boot file system_copy=""
  for boot in "$(at /boot/firmware)" "$(at /boot)"; do
    file=$boot/network-config
    if [[ ! -f "$file" ]] || ! grep -q 'password' "$file"; then continue; fi
    if compgen -G "$(at "$NETPLAN_DIR")/*.yaml" >/dev/null; then system_copy=$(grep -l 'wifis' "$(at "$NETPLAN_DIR")"/*.yaml 2>/dev/null | head -n1 || true); fi
    if [[ -z "$system_copy" ]]; then system_copy=$(wifi_keyfiles | head -n1); fi
    if [[ -z "$system_copy" ]]; then
      say "  kept the Wi-Fi in $file: the system has no copy of it yet (remove its password once the box is online)"
      continue
    fi
    python3 "$NETWORK_LIB" scrub "$file" || { say "  could not remove the Wi-Fi password from $file"; continue; }
    say "  removed the Wi-Fi password from $file (the box keeps it in ${system_copy#"$ROOT"})"
  done
}
