#!/bin/bash
# tablebox-firstrun: Raspberry Pi OS runs this once at first boot (systemd.run= in cmdline.txt, put there by
# provision/flash.sh), before the network is up. It sets up the Wi-Fi given in the settings (so that a box
# without a cable is online at the next boot), installs tablebox-firstboot.service, which provisions the box
# at the next boot once the network is online, takes itself out of cmdline.txt, and exits 0 so that the Pi
# reboots (systemd.run_success_action=reboot).
#
# Not `set -e`: whatever fails, cmdline.txt must be cleaned, or the Pi would stop at this step on every boot.
# What happened is in tablebox/firstrun.log on the boot partition.
set -uo pipefail

BOOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
ROOT=${FIRSTRUN_ROOT:-}  # tests install the unit under a staging folder; on the Pi this is empty
LOG="$BOOT/tablebox/firstrun.log"
UNIT=tablebox-firstboot.service
WIFI_FILE="$BOOT/tablebox/firstrun-wifi.conf"  # written by flash.sh (provision/lib/wifi.py)
IMAGER_CUSTOM="$ROOT/usr/lib/raspberrypi-sys-mods/imager_custom"  # Bookworm's; gone from Trixie
NM_CONNECTIONS="$ROOT/etc/NetworkManager/system-connections"
# What flash.sh appended to cmdline.txt (see RUN_ARGS there).
RUN_ARGS=(systemd.run=/boot/firmware/firstrun.sh systemd.run_success_action=reboot
          systemd.unit=kernel-command-line.target)

log() { printf '%s firstrun: %s\n' "$(date -Is)" "$*" >> "$LOG"; }

# A firstrun.sh the image already had (Raspberry Pi Imager's user, SSH and Wi-Fi settings) runs first.
run_previous_firstrun() {
  local previous="$BOOT/firstrun-before-tablebox.sh"
  [[ -f "$previous" ]] || return 0
  log "running the image's own first-boot script first"
  if bash "$previous" >> "$LOG" 2>&1; then log "the image's first-boot script finished"
  else log "the image's first-boot script failed (exit $?); going on"; fi
  rm -f "$previous"
}

# read_wifi_settings: WIFI_SSID, WIFI_PASSWORD and WIFI_COUNTRY from $WIFI_FILE, read as data: one key=value
# a line, the value taken as it is (quotes, spaces, $ and all). Returns 1 when there is no Wi-Fi to set up.
read_wifi_settings() {
  WIFI_SSID="" WIFI_PASSWORD="" WIFI_COUNTRY=""
  [[ -f "$WIFI_FILE" ]] || return 1
  local line
  while IFS= read -r line || [[ -n "$line" ]]; do
    case "$line" in
      ssid=*) WIFI_SSID=${line#ssid=} ;;
      password=*) WIFI_PASSWORD=${line#password=} ;;
      country=*) WIFI_COUNTRY=${line#country=} ;;
    esac
  done < "$WIFI_FILE"
  [[ -n "$WIFI_SSID" ]]
}

# nm_ssid SSID: the SSID as a NetworkManager keyfile value, as NetworkManager writes it: plain text when every
# byte is printable ASCII and nothing in it needs escaping, otherwise the bytes as a list ("84;101;97;").
nm_ssid() {
  local -a bytes=()
  local byte list="" plain=1
  read -r -d '' -a bytes < <(printf '%s' "$1" | od -An -tu1 -v) || true
  for byte in "${bytes[@]}"; do
    list+="$byte;"
    if (( byte < 32 || byte > 126 || byte == 59 || byte == 92 )); then plain=0; fi  # 59 ';', 92 '\'
  done
  if [[ "$plain" == 1 && "$1" != " "* && "$1" != *" " && ! "$1" =~ ^[0-9]+$ ]]; then
    printf '%s' "$1"
  else
    printf '%s' "$list"
  fi
}

# nm_string TEXT: TEXT as a keyfile string value (GLib key-file escapes for backslashes and spaces).
nm_string() {
  local text=${1//\\/\\\\}
  printf '%s' "${text// /\\s}"
}

# The NetworkManager connection imager_custom set_wlan would write, for images without imager_custom.
write_nm_keyfile() {
  local file="$NM_CONNECTIONS/tablebox-wifi.nmconnection" uuid
  uuid=$(cat /proc/sys/kernel/random/uuid 2>/dev/null || true)
  mkdir -p "$NM_CONNECTIONS" || return 1
  # Mode 0600 from the start: the password is never readable by others, and NetworkManager ignores a
  # keyfile that is.
  ( umask 077
  {
    printf '[connection]\nid=tablebox-wifi\n'
    if [[ -n "$uuid" ]]; then printf 'uuid=%s\n' "$uuid"; fi
    printf 'type=wifi\nautoconnect=true\n\n'
    printf '[wifi]\nmode=infrastructure\nssid=%s\n\n' "$(nm_ssid "$WIFI_SSID")"
    if [[ -n "$WIFI_PASSWORD" ]]; then
      printf '[wifi-security]\nkey-mgmt=wpa-psk\npsk=%s\n\n' "$(nm_string "$WIFI_PASSWORD")"
    fi
    printf '[ipv4]\nmethod=auto\n\n[ipv6]\nmethod=auto\n'
  } > "$file.new" ) && chmod 0600 "$file.new" && mv -f "$file.new" "$file"
}

# The Wi-Fi from the settings, the way Raspberry Pi Imager's firstrun.sh sets it up: imager_custom where the
# image has it (Bookworm), otherwise a NetworkManager keyfile, the country from raspi-config, radio unblocked.
configure_wifi() {
  read_wifi_settings || return 0
  local flag usable=1
  # imager_custom takes these words as flags wherever they are: such a name or password goes the other way.
  for flag in -h --hidden -p --plain; do
    if [[ "$WIFI_SSID" == "$flag" || "$WIFI_PASSWORD" == "$flag" ]]; then usable=0; fi
  done
  if [[ -f "$IMAGER_CUSTOM" && "$usable" == 1 ]]; then
    if "$IMAGER_CUSTOM" set_wlan "$WIFI_SSID" "$WIFI_PASSWORD" "$WIFI_COUNTRY" >> "$LOG" 2>&1; then
      log "Wi-Fi set up with imager_custom (country $WIFI_COUNTRY)"
    else
      log "imager_custom set_wlan failed (exit $?): the box may not get online by Wi-Fi"
    fi
  else
    if write_nm_keyfile; then log "Wi-Fi: NetworkManager connection tablebox-wifi written"
    else log "could not write the NetworkManager connection for the Wi-Fi"; fi
    if command -v raspi-config >/dev/null 2>&1; then
      if raspi-config nonint do_wifi_country "$WIFI_COUNTRY" >> "$LOG" 2>&1; then
        log "Wi-Fi country set to $WIFI_COUNTRY"
      else
        log "raspi-config could not set the Wi-Fi country $WIFI_COUNTRY"
      fi
    else
      log "no raspi-config: the Wi-Fi country $WIFI_COUNTRY was not set"
    fi
    rfkill unblock wifi >> "$LOG" 2>&1 || log "rfkill unblock wifi failed"
    local state
    for state in "$ROOT"/var/lib/systemd/rfkill/*:wlan; do  # the blocked state systemd restores at boot
      if [[ -f "$state" ]]; then echo 0 > "$state"; fi
    done
  fi
  rm -f "$WIFI_FILE"  # the password stays only in tablebox/tablebox.toml
}

# The technician's account, the way Raspberry Pi Imager's firstrun.sh sets it up (rpi-imager
# src/customization_generator.cpp, generateSystemdScript): the keys go to the first user's (uid 1000) home with
# `imager_custom enable_ssh -k KEY...` (raspberrypi-sys-mods: appends them to ~/.ssh/authorized_keys 0600, sets
# PasswordAuthentication no, enables ssh), then `userconf USER HASH` (RPi-Distro/userconf-pi) renames that user,
# moving the home with the keys, sets the password when a hash is given and runs cancel-rename, which turns the
# set-up wizard (userconfig.service) off. Without those tools (not Raspberry Pi OS) the same by hand. An account
# with keys and no password gets a password no one can type ('*') and sudo without a password: its key is then the
# only way in. Values come from tablebox/firstrun-access.conf (flash.sh --ssh-key/--password), read as data.
ACCESS_FILE="$BOOT/tablebox/firstrun-access.conf"
USERCONF="$ROOT/usr/lib/userconf-pi/userconf"

read_access_settings() {
  ACCESS_USER="" ACCESS_HASH="" ACCESS_KEYS=()
  [[ -f "$ACCESS_FILE" ]] || return 1
  local line
  while IFS= read -r line || [[ -n "$line" ]]; do
    case "$line" in
      user=*) ACCESS_USER=${line#user=} ;;
      password_hash=*) ACCESS_HASH=${line#password_hash=} ;;
      key=*) ACCESS_KEYS+=("${line#key=}") ;;
    esac
  done < "$ACCESS_FILE"
  [[ "$ACCESS_USER" =~ ^[a-z][a-z0-9-]{0,31}$ && "$ACCESS_USER" != root ]]
}

# first_user FIELD: the name (1) or home (6) of the account with uid 1000, from the box's /etc/passwd.
first_user() { awk -F: -v f="$1" '$3 == 1000 { print $f; exit }' "$ROOT/etc/passwd" 2>/dev/null; }

as_root_of_box() {  # as_root_of_box COMMAND ARG...: usermod and friends, on $ROOT when set (tests)
  local cmd=$1; shift
  if [[ -n "$ROOT" ]]; then "$cmd" -R "$ROOT" "$@"; else "$cmd" "$@"; fi
}

install_keys_by_hand() {
  local home ssh_dir
  home=$(first_user 6)
  [[ -n "$home" ]] || { log "no user with uid 1000: the SSH key was not installed"; return 1; }
  ssh_dir="$ROOT$home/.ssh"
  install -d -m 0700 -o 1000 -g 1000 "$ssh_dir" || return 1
  printf '%s\n' "${ACCESS_KEYS[@]}" >> "$ssh_dir/authorized_keys" || return 1
  chown 1000:1000 "$ssh_dir/authorized_keys" && chmod 0600 "$ssh_dir/authorized_keys" || return 1
  install -d -m 0755 "$ROOT/etc/ssh/sshd_config.d"
  printf '# Written by Tablebox firstrun.sh: the technician signs in with a key only.\nPasswordAuthentication no\n' \
    > "$ROOT/etc/ssh/sshd_config.d/tablebox-keys-only.conf"
}

rename_by_hand() {
  local first
  first=$(first_user 1)
  [[ -n "$first" ]] || { log "no user with uid 1000 to rename to $ACCESS_USER"; return 1; }
  if [[ -n "$ACCESS_HASH" ]]; then as_root_of_box usermod -p "$ACCESS_HASH" "$first" || return 1; fi
  if [[ "$first" != "$ACCESS_USER" ]]; then
    as_root_of_box usermod -l "$ACCESS_USER" "$first" 2>>"$LOG" || return 1
    as_root_of_box usermod -m -d "/home/$ACCESS_USER" "$ACCESS_USER" 2>>"$LOG" || return 1
    as_root_of_box groupmod -n "$ACCESS_USER" "$first" 2>>"$LOG" || true
    if [[ -f "$ROOT/etc/sudoers.d/010_pi-nopasswd" ]]; then
      sed -i "s/^$first /$ACCESS_USER /" "$ROOT/etc/sudoers.d/010_pi-nopasswd"
    fi
  fi
}

configure_access() {
  if ! read_access_settings; then
    if [[ -f "$ACCESS_FILE" ]]; then log "tablebox/firstrun-access.conf names no valid user: no account set up"; fi
    rm -f "$ACCESS_FILE"
    return 0
  fi
  local -a sysctl=(systemctl)
  if [[ -n "$ROOT" ]]; then sysctl=(systemctl --root="$ROOT"); fi
  if [[ ${#ACCESS_KEYS[@]} -gt 0 ]]; then
    if [[ -f "$IMAGER_CUSTOM" ]]; then
      if "$IMAGER_CUSTOM" enable_ssh -k "${ACCESS_KEYS[@]}" >> "$LOG" 2>&1; then
        log "SSH: ${#ACCESS_KEYS[@]} key(s) installed with imager_custom, password sign-in over SSH off"
      else
        log "imager_custom enable_ssh failed (exit $?)"
      fi
    elif install_keys_by_hand; then
      log "SSH: ${#ACCESS_KEYS[@]} key(s) in the first user's authorized_keys, password sign-in over SSH off"
    else
      log "could not install the SSH key(s)"
    fi
  elif [[ -f "$IMAGER_CUSTOM" ]]; then
    "$IMAGER_CUSTOM" enable_ssh >> "$LOG" 2>&1 || log "imager_custom enable_ssh failed (exit $?)"
  fi
  "${sysctl[@]}" enable ssh >> "$LOG" 2>&1 || log "could not enable ssh (the ssh file on the boot partition does it at the next boot)"
  if [[ -f "$USERCONF" ]]; then
    if "$USERCONF" "$ACCESS_USER" "$ACCESS_HASH" >> "$LOG" 2>&1; then log "account $ACCESS_USER set up with userconf"
    else log "userconf failed (exit $?)"; fi
  elif rename_by_hand; then
    log "account $ACCESS_USER set up (first user renamed)"
  else
    log "could not set up the account $ACCESS_USER"
  fi
  if [[ -z "$ACCESS_HASH" ]]; then
    # Keys only: no password anyone could type (neither on the console nor over SSH), sudo without one.
    as_root_of_box usermod -p '*' "$ACCESS_USER" 2>>"$LOG" || log "could not lock the password of $ACCESS_USER"
    local sudoers="$ROOT/etc/sudoers.d/010_$ACCESS_USER-nopasswd"
    install -d -m 0750 "$ROOT/etc/sudoers.d"
    ( umask 0337 && printf '%s ALL=(ALL) NOPASSWD:ALL\n' "$ACCESS_USER" > "$sudoers.new" ) \
      && chmod 0440 "$sudoers.new" && mv -f "$sudoers.new" "$sudoers" \
      && log "sudo without a password for $ACCESS_USER (keys only: the key is the way in)"
  fi
  rm -f "$ACCESS_FILE"
}

install_firstboot_unit() {
  local -a sysctl=(systemctl)
  if [[ -n "$ROOT" ]]; then sysctl=(systemctl --root="$ROOT"); fi
  if install -D -m 0644 "$BOOT/tablebox/provision/firstboot/$UNIT" "$ROOT/etc/systemd/system/$UNIT" \
     && "${sysctl[@]}" enable "$UNIT" >> "$LOG" 2>&1; then
    log "$UNIT installed: Tablebox is provisioned at the next boot (log: tablebox/provision.log)"
  else
    log "could not install $UNIT: run provision.sh by hand (see tablebox/ on the boot partition)"
  fi
}

remove_from_cmdline() {
  local cmdline="$BOOT/cmdline.txt" arg
  local -a edits=()
  for arg in "${RUN_ARGS[@]}"; do edits+=(-e "s# ${arg//./\\.}##g"); done
  # The image's own script may already have cut everything from "systemd.run" on; this is then a no-op.
  sed -i "${edits[@]}" "$cmdline" && log "cmdline.txt: first-boot arguments removed"
  if grep -q 'systemd\.run=' "$cmdline"; then
    sed -i 's# systemd\.run[^ ]*##g; s# systemd\.unit=kernel-command-line\.target##g' "$cmdline"
  fi
}

main() {
  mkdir -p "$BOOT/tablebox"
  log "started"
  run_previous_firstrun
  configure_wifi
  configure_access
  install_firstboot_unit
  remove_from_cmdline
  rm -f "$BOOT/firstrun.sh"
  log "done; rebooting"
  exit 0
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then main "$@"; fi
