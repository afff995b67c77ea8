#!/usr/bin/env bash
# Provision a Tablebox box: one command, as root, on a fresh Raspberry Pi OS (Bookworm/Trixie) or Debian 12+.
#
#   provision.sh [--root DIR] [--unattended] [--config FILE] [--source PATH] [--wheelhouse DIR] [--store-name N]
#                [--currency C] [--timezone TZ] [--languages zh,en] [--public-base-url URL] [--hostname H] [step NAME]
#   provision.sh update --from WHEELHOUSE      a checked backup, the new release beside the old, health, or back
#   provision.sh rollback                      back to the release before the last update, and its backup
#
# Every step is a function that checks before it changes, so a second run changes nothing and says so.
# With --root DIR every write goes under DIR (an image being built, or a staging folder for tests).
# The script can be sourced without running (tests call its functions one by one).
set -Eeuo pipefail

PROVISION_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FILES="$PROVISION_DIR/files"

ROOT=""
UNATTENDED=0
CONFIG=""
SOURCE=""
WHEELHOUSE=""
COMMAND=provision
ONLY_STEP=""
declare -a FLAGS=()
declare -a CHANGES=()
WORK=""

# The TABLEBOX_* variables exist for tests (a box under a temporary folder, run by the current user).
PREFIX=${TABLEBOX_PREFIX:-/opt/tablebox}
VENV=$PREFIX/venv                # a symlink to releases/<id>/venv: what every unit runs
RELEASES=$PREFIX/releases        # one folder per installed release: <id>/venv, <id>/release.json
ETC=${TABLEBOX_ETC:-/etc/tablebox}
DATA=${TABLEBOX_DATA:-/var/lib/tablebox}
SERVICE_USER=${TABLEBOX_SERVICE_USER:-tablebox}
SYSTEMCTL=${SYSTEMCTL:-systemctl}  # tests put a stand-in on PATH that runs the real processes
UNITS_ENABLED=(tablebox-web.service tablebox-printd.service tablebox-console.service tablebox-backup.timer tablebox-prune.timer)
PACKAGES=(python3 python3-venv python3-pip libusb-1.0-0 fbterm fonts-wqy-microhei sqlite3 fake-hwclock)
STEPS=(clock packages user venv config store udev usbstick units watchdog journald fstab hostname network summary)

# Steps added since the first release live one file each in provision/steps/ (sourced here, run in STEPS order).
for _step_file in "$PROVISION_DIR"/steps/*.sh; do
  # shellcheck source=/dev/null
  [[ -f "$_step_file" ]] && source "$_step_file"
done
unset _step_file

CFG_HOSTNAME=""
CFG_MANAGER_NAME=""
CFG_MANAGER_PIN=""
CFG_STORE_NAME=""
CFG_PUBLIC_BASE_URL=""
CFG_PORT=8080
CFG_SYNC_TARGETS=0
CFG_SYNC_SECRETS=0

say() { printf '%s\n' "$*"; }
die() { printf 'provision: %s\n' "$*" >&2; exit 1; }
changed() { CHANGES+=("$1"); say "  changed: $1"; }
unchanged() { say "  ok: $1"; }
at() { printf '%s%s' "$ROOT" "$1"; }  # a path of the box, under --root when given
running_here() { [[ -z "$ROOT" ]]; }

usage() {
  sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  say "steps: ${STEPS[*]}"
}

# shellcheck disable=SC2034  # WHEELHOUSE is read by provision/steps/release.sh
parse_args() {
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --root) ROOT=$(realpath -m "${2:?--root needs a folder}"); shift 2 ;;
      --unattended) UNATTENDED=1; shift ;;
      --config) CONFIG=${2:?--config needs a file}; shift 2 ;;
      --source) SOURCE=${2:?--source needs a path}; shift 2 ;;
      --wheelhouse|--from) WHEELHOUSE=$(realpath -m "${2:?$1 needs a folder made by provision/wheelhouse.sh}"); shift 2 ;;
      update|rollback) COMMAND=$1; shift ;;
      --store-name|--currency|--timezone|--languages|--public-base-url|--hostname|--address|--gateway|--dns)
        FLAGS+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
      step) ONLY_STEP=${2:?step needs a NAME}; shift 2 ;;
      -h|--help) usage; exit 0 ;;
      *) die "unknown argument $1 (see --help)" ;;
    esac
  done
  if [[ "$ROOT" == "/" ]]; then ROOT=""; fi
  # A word match, not `printf | grep -q`: grep -q stops reading early and pipefail turns printf's SIGPIPE into "no".
  if [[ -n "$ONLY_STEP" && " ${STEPS[*]} " != *" $ONLY_STEP "* ]]; then
    die "no step called $ONLY_STEP; steps: ${STEPS[*]}"
  fi
}

# The technician's settings: --config, else a file on the boot partition or a USB stick.
find_config() {
  if [[ -n "$CONFIG" ]]; then
    [[ -f "$CONFIG" ]] || die "no settings file at $CONFIG"
    return
  fi
  local candidate
  for candidate in "$(at /boot/firmware/tablebox/tablebox.toml)" "$(at /boot/tablebox/tablebox.toml)" \
                   "$(at /media)"/*/tablebox.toml "$(at /media)"/*/*/tablebox.toml; do
    if [[ -f "$candidate" ]]; then CONFIG=$candidate; say "settings from $CONFIG"; return; fi
  done
}

ask() {  # ask VAR "question" DEFAULT: only when a person is there
  local var=$1 question=$2 default=${3:-} answer
  if [[ -n "${!var}" || "$UNATTENDED" == 1 || ! -t 0 ]]; then return; fi
  read -r -p "$question${default:+ [$default]}: " answer
  printf -v "$var" '%s' "${answer:-$default}"
}

load_config() {
  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
  find_config
  local -a input=()
  if [[ -n "$CONFIG" ]]; then input=(--input "$CONFIG"); fi
  local assignments
  assignments=$(python3 "$PROVISION_DIR/lib/render_config.py" "${input[@]}" --output "$WORK/tablebox.toml" \
                --secrets-output "$WORK/sync.env" "${FLAGS[@]}") || die "the settings could not be used (see above)"
  eval "$assignments"
  if [[ -z "$CFG_STORE_NAME" ]]; then
    ask CFG_STORE_NAME "Restaurant name" "Tablebox"
    if [[ -n "$CFG_STORE_NAME" ]]; then
      FLAGS+=(--store-name "$CFG_STORE_NAME")
      python3 "$PROVISION_DIR/lib/render_config.py" "${input[@]}" --output "$WORK/tablebox.toml" \
        --secrets-output "$WORK/sync.env" "${FLAGS[@]}" >/dev/null
    fi
  fi
  ask CFG_HOSTNAME "Host name of this box" "tablebox"
  : "${CFG_HOSTNAME:=tablebox}"
}

uid_of() { if [[ "$1" == root ]]; then echo 0; else awk -F: -v n="$1" '$1 == n { print $3 }' "$(at /etc/passwd)" 2>/dev/null; fi; }
gid_of() { if [[ "$1" == root ]]; then echo 0; else awk -F: -v n="$1" '$1 == n { print $3 }' "$(at /etc/group)" 2>/dev/null; fi; }

# put SRC DEST MODE [USER:GROUP]: install a file unless it is already there, the same, with that mode and owner.
put() {
  local src=$1 dest=$2 mode=$3 owner=${4:-root:root} path ids
  path=$(at "$dest")
  ids="$(uid_of "${owner%%:*}"):$(gid_of "${owner##*:}")"
  [[ "$ids" != ":" && "$ids" != *: && "$ids" != :* ]] || die "no user or group $owner in $(at /etc/passwd)"
  if [[ -f "$path" ]] && cmp -s "$src" "$path" && [[ "$(stat -c '%a %u:%g' "$path")" == "${mode#0} $ids" ]]; then
    unchanged "$dest"
    return
  fi
  install -D -m "$mode" -o "${ids%%:*}" -g "${ids##*:}" "$src" "$path"
  changed "$dest"
}

# wait_for_clock (before apt): provision/steps/clock.sh.

step_packages() {
  say "packages: ${PACKAGES[*]}"
  if ! running_here; then
    say "  skipped under --root: install them in the image build (pi-gen: a stage's 00-packages)"
    return
  fi
  local -a missing=()
  local pkg
  for pkg in "${PACKAGES[@]}"; do
    [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" == "install ok installed" ]] || missing+=("$pkg")
  done
  if [[ ${#missing[@]} -eq 0 ]]; then unchanged "all installed"; return; fi
  # Without a network first: the card's .debs (provision/steps/packages.sh), then apt's network, then neither.
  local debs
  debs=$(debs_dir)
  if [[ -n "$debs" ]]; then
    say "  from the card's Debian packages, no network: $debs"
    if install_debs "$debs" "${missing[@]}"; then changed "installed ${missing[*]} (from $debs)"; return; fi
    say "  the card's packages did not install (see above): trying the network"
  fi
  if ! network_up; then packages_offline "${missing[@]}"; return; fi
  say "  from the network (apt-get)"
  wait_for_clock
  if apt-get update -qq "${APT_CLOCK_OPTS[@]}" \
     && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
    changed "installed ${missing[*]}"
    return
  fi
  packages_offline "${missing[@]}"
}

identities() { { cat "$(at /etc/passwd)" "$(at /etc/group)" 2>/dev/null || true; } | sha256sum; }

step_user() {
  say "user: $SERVICE_USER (groups lp, dialout, video, tty)"
  put "$FILES/usr/lib/sysusers.d/tablebox.conf" /usr/lib/sysusers.d/tablebox.conf 0644
  local before after
  before=$(identities)
  install -d -m 0755 "$(at /etc)"
  if running_here; then
    systemd-sysusers /usr/lib/sysusers.d/tablebox.conf
  else
    systemd-sysusers --root="$ROOT" "$(at /usr/lib/sysusers.d/tablebox.conf)"
  fi
  after=$(identities)
  if [[ "$before" == "$after" ]]; then unchanged "user $SERVICE_USER"; else changed "user $SERVICE_USER"; fi
}

# The Tablebox source as a folder in $WORK/src: a source folder (this repository), an sdist or a tarball.
stage_source() {
  local src=${SOURCE:-$PROVISION_DIR/..}
  rm -rf "$WORK/src"
  mkdir -p "$WORK/src"
  if [[ -d "$src" ]]; then
    tar -C "$src" --exclude=.venv --exclude=.git --exclude=test-artifacts --exclude=tablebox-data \
        --exclude='*.egg-info' --exclude=__pycache__ --exclude=build -cf - . | tar -C "$WORK/src" -xf -
  elif [[ -f "$src" ]]; then
    tar -C "$WORK/src" -xf "$src"
    local -a top=("$WORK/src"/*)
    if [[ ${#top[@]} -eq 1 && -d "${top[0]}" && ! -f "$WORK/src/pyproject.toml" ]]; then
      mv "${top[0]}" "$WORK/src.inner" && rm -rf "$WORK/src" && mv "$WORK/src.inner" "$WORK/src"
    fi
  else
    die "no Tablebox source at $src"
  fi
  [[ -f "$WORK/src/pyproject.toml" ]] || die "$src is not a Tablebox source (no pyproject.toml)"
}

source_hash() {
  (cd "$WORK/src" && find pyproject.toml appliance printers sync tui -type f ! -name '*.pyc' -print0 2>/dev/null \
     | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
}

# Tablebox itself: a new release folder (never pip over the running one), then the venv symlink switched to it.
step_venv() {
  say "venv: Tablebox in $VENV (a release in $RELEASES)"
  local wheels id
  wheels=$(find_wheelhouse)
  if [[ -z "$wheels" ]]; then stage_source
  elif running_here; then check_wheelhouse "$wheels" "$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')" "$(uname -m)"
  fi
  id=$(release_id "$wheels")
  if [[ "$(current_release)" == "$id" && -f "$(at "$RELEASES/$id/release.json")" ]]; then
    unchanged "$VENV (release $id)"
    return
  fi
  install_release "$wheels" "$id"
  switch_release "$id"
  changed "$VENV -> release $id"
}

step_config() {
  say "config: $ETC/tablebox.toml"
  [[ -n "$(gid_of "$SERVICE_USER")" ]] || die "no $SERVICE_USER group yet: run the user step first"
  if [[ -x "$(at "$VENV")/bin/python" ]] && running_here; then
    "$VENV/bin/python" -c 'import sys; from appliance.settings import load_settings; load_settings(environ={}, config_file=sys.argv[1])' \
      "$WORK/tablebox.toml" || die "the settings are not valid (see above)"
  elif [[ -d "$WORK/src/appliance" ]]; then
    PYTHONPATH="$WORK/src" python3 -c 'import sys; from appliance.settings import load_settings; load_settings(environ={}, config_file=sys.argv[1])' \
      "$WORK/tablebox.toml" || die "the settings are not valid (see above)"
  fi
  install -d -m 0750 -o 0 -g "$(gid_of "$SERVICE_USER")" "$(at "$ETC")"
  put "$WORK/tablebox.toml" "$ETC/tablebox.toml" 0640 "root:$SERVICE_USER"
  if [[ "$CFG_SYNC_SECRETS" -gt 0 ]]; then
    # The ERP's API keys: read by systemd (as root) for tablebox-syncd only, never by the other services.
    put "$WORK/sync.env" "$ETC/sync.env" 0600 root:root
  fi
}

# The store database and its secret (0600, the service user's), created once; never replaced.
step_store() {
  say "store: $DATA"
  local data uid gid
  data=$(at "$DATA")
  uid=$(uid_of "$SERVICE_USER")
  gid=$(gid_of "$SERVICE_USER")
  if ! running_here; then
    # An image is flashed onto many boxes: each must make its own secret. tablebox-web.service runs
    # `tablebox init --if-missing` before it starts, so the store and its secret are made at the first start.
    unchanged "no store under --root: each box makes its own store.db and store.secret at its first start"
    if [[ -n "$CFG_MANAGER_NAME" ]]; then
      say "  the manager is added on the box: sudo -u $SERVICE_USER $VENV/bin/tablebox staff add $CFG_MANAGER_NAME --role manager"
    fi
    return
  fi
  if [[ -f "$data/store.db" ]]; then unchanged "$DATA/store.db (kept)"; else
    [[ -x "$(at "$VENV")/bin/python" ]] || die "Tablebox is not installed yet: run the venv step first"
    install -d -m 0750 -o "$uid" -g "$gid" "$data"
    (umask 077 && "$(at "$VENV")/bin/python" -m appliance init --data-dir "$data" \
       --config "$(at "$ETC/tablebox.toml")" >/dev/null)
    chown -R "$uid:$gid" "$data"
    changed "$DATA/store.db and store.secret"
  fi
  if [[ -n "$CFG_MANAGER_NAME" && -n "$CFG_MANAGER_PIN" ]]; then
    if "$(at "$VENV")/bin/python" -m appliance staff --data-dir "$data" --config "$(at "$ETC/tablebox.toml")" 2>/dev/null \
         | grep -q "^$CFG_MANAGER_NAME "; then
      unchanged "manager $CFG_MANAGER_NAME"
    else
      TABLEBOX_PIN=$CFG_MANAGER_PIN "$(at "$VENV")/bin/python" -m appliance staff add "$CFG_MANAGER_NAME" \
        --role manager --data-dir "$data" --config "$(at "$ETC/tablebox.toml")" >/dev/null
      chown -R "$uid:$gid" "$data"
      changed "manager $CFG_MANAGER_NAME"
    fi
  fi
}

# A PIN or Wi-Fi password left on a boot partition or USB stick can be read by anyone holding it: once the
# box is set up (the manager exists, NetworkManager keeps its own 0600 copy of the Wi-Fi), remove them.
scrub_secrets() {
  [[ "$CONFIG" == "$(at /boot)"/* || "$CONFIG" == "$(at /media)"/* ]] || return 0
  local key
  for key in manager_pin wifi_password; do
    if grep -q "^[[:space:]]*${key}[[:space:]]*=" "$CONFIG"; then
      sed -i "s/^[[:space:]]*${key}[[:space:]]*=.*/# $key removed by provision.sh once the box was set up/" "$CONFIG"
      say "  removed $key from $CONFIG"
    fi
  done
  scrub_boot_wifi  # provision/steps/network.sh: cloud-init's network-config
}

step_udev() {
  say "udev: USB printers for the lp group, printer drivers loaded at boot"
  put "$PROVISION_DIR/udev/99-tablebox-printers.rules" /etc/udev/rules.d/99-tablebox-printers.rules 0644
  put "$FILES/etc/modules-load.d/tablebox.conf" /etc/modules-load.d/tablebox.conf 0644
  if running_here && [[ "${CHANGES[*]}" == *99-tablebox-printers.rules* ]]; then
    { udevadm control --reload-rules && udevadm trigger --subsystem-match=usb; } || say "  (udev not running: the rule applies at the next boot)"
  fi
}

step_units() {
  local -a enable=("${UNITS_ENABLED[@]}")
  if [[ "$CFG_SYNC_TARGETS" -gt 0 ]]; then enable+=(tablebox-syncd.service); fi
  say "units: ${enable[*]}"
  local unit before=${#CHANGES[@]}
  for unit in "$PROVISION_DIR"/../systemd/*.service "$PROVISION_DIR"/../systemd/*.timer; do
    [[ -f "$unit" ]] || continue
    put "$unit" "/etc/systemd/system/$(basename "$unit")" 0644
  done
  local -a sysctl=(systemctl)
  if ! running_here; then sysctl=(systemctl --root="$ROOT"); else systemctl daemon-reload; fi
  for unit in "${enable[@]}"; do
    if [[ "$("${sysctl[@]}" is-enabled "$unit" 2>/dev/null || true)" == enabled ]]; then unchanged "enabled $unit"
    else "${sysctl[@]}" enable --quiet "$unit"; changed "enabled $unit"; fi
  done
  # Raspberry Pi OS's set-up wizard (userconfig.service, RPi-Distro/userconf-pi) asks for a user and password on a
  # keyboard (tty8, switching the screen away from the console). It is turned off only once someone can sign in
  # (flash.sh --ssh-key/--password, or Raspberry Pi Imager; userconf's cancel-rename turns it off itself then):
  # without any account it is the image's only way to make one, and disabling it would leave the box locked.
  local wizard=userconfig.service state accounts
  state=$("${sysctl[@]}" is-enabled "$wizard" 2>/dev/null || true)
  if [[ "$state" == enabled ]]; then
    accounts=$(technician_accounts | paste -sd, -)
    if [[ -n "$accounts" ]]; then
      "${sysctl[@]}" disable --quiet "$wizard"
      changed "disabled $wizard (Raspberry Pi OS set-up wizard; $accounts can sign in)"
    else
      say "  kept $wizard: no account can sign in yet (no password, no SSH key), so it asks for one on a keyboard;"
      say "  flash the card with flash.sh --ssh-key FILE to skip it"
    fi
  fi
  if running_here && [[ ${#CHANGES[@]} -gt 0 ]]; then
    # New code or units: restart what runs (start what does not); the console is left alone while in use.
    systemctl try-restart tablebox-web.service tablebox-printd.service
    systemctl start tablebox-web.service tablebox-printd.service tablebox-backup.timer
    if [[ "$CFG_SYNC_TARGETS" -gt 0 ]]; then systemctl try-restart tablebox-syncd.service; systemctl start tablebox-syncd.service; fi
    if [[ ${#CHANGES[@]} -gt $before ]]; then systemctl restart tablebox-console.service || true; fi
  fi
}

step_journald() {
  say "journald: capped, fewer SD card writes"
  put "$FILES/etc/systemd/journald.conf.d/tablebox.conf" /etc/systemd/journald.conf.d/tablebox.conf 0644
  if running_here && [[ "${CHANGES[*]}" == *journald.conf.d* ]]; then systemctl restart systemd-journald || true; fi
}

step_fstab() {
  say "fstab: noatime on the SD card's file systems"
  local fstab
  fstab=$(at /etc/fstab)
  if [[ ! -f "$fstab" ]]; then unchanged "no /etc/fstab"; return; fi
  awk 'BEGIN { OFS = "\t" }
       /^[[:space:]]*#/ || NF < 4 { print; next }
       ($3 == "ext4" || $3 == "vfat" || $3 == "f2fs") && $4 !~ /(^|,)noatime(,|$)/ {
         sub(/(^|,)relatime/, "", $4); $4 = ($4 == "" || $4 == "defaults" ? "defaults,noatime" : $4 ",noatime") }
       { print }' "$fstab" > "$WORK/fstab"
  if cmp -s "$WORK/fstab" "$fstab"; then unchanged "/etc/fstab"; return; fi
  cat "$WORK/fstab" > "$fstab"
  changed "/etc/fstab (noatime; takes effect at the next boot)"
}

step_hostname() {
  say "hostname: $CFG_HOSTNAME"
  [[ "$CFG_HOSTNAME" =~ ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ ]] \
    || die "hostname $CFG_HOSTNAME: use lower-case letters, digits and '-' (at most 63)"
  local file hosts
  file=$(at /etc/hostname)
  hosts=$(at /etc/hosts)
  if [[ -f "$file" && "$(cat "$file")" == "$CFG_HOSTNAME" ]]; then unchanged "/etc/hostname"; else
    install -D -m 0644 /dev/null "$file"
    printf '%s\n' "$CFG_HOSTNAME" > "$file"
    changed "/etc/hostname"
    if running_here; then hostname "$CFG_HOSTNAME"; fi
  fi
  if [[ -f "$hosts" ]] && grep -qE "^127\.0\.1\.1[[:space:]]+$CFG_HOSTNAME\$" "$hosts"; then unchanged "/etc/hosts"; else
    touch "$hosts"
    sed -i '/^127\.0\.1\.1[[:space:]]/d' "$hosts"
    printf '127.0.1.1\t%s\n' "$CFG_HOSTNAME" >> "$hosts"
    changed "/etc/hosts"
  fi
}

step_summary() {
  local url=${CFG_PUBLIC_BASE_URL:-http://$CFG_HOSTNAME.local:$CFG_PORT}
  say ""
  if [[ ${#CHANGES[@]} -eq 0 ]]; then
    say "Nothing changed: this box was already provisioned."
  else
    say "Done: ${#CHANGES[@]} change(s)."
  fi
  say "Diners order at $url/t/<table code>: list every table's address with"
  say "  sudo -u $SERVICE_USER $VENV/bin/tablebox tables"
  say "and print the QR stickers with"
  say "  sudo -u $SERVICE_USER $VENV/bin/tablebox stickers --pdf /tmp/stickers.pdf"
  if [[ -z "$CFG_MANAGER_NAME" ]]; then
    say "No manager yet: sudo -u $SERVICE_USER $VENV/bin/tablebox staff add NAME --role manager"
  fi
  say "Health: $url/healthz   Checklist: sudo -u $SERVICE_USER $VENV/bin/tablebox doctor"
  if [[ ${#PACKAGES_SKIPPED[@]} -gt 0 ]]; then
    say "Not installed (no network): ${PACKAGES_SKIPPED[*]}. Plug in the network cable, then run"
    say "  sudo $PROVISION_DIR/provision.sh step packages && sudo systemctl restart tablebox-console.service"
  fi
  if [[ -z "$CFG_PUBLIC_BASE_URL" ]]; then
    say "No fixed address yet, so stickers cannot be printed (a DHCP lease can change): re-run with"
    say "  --address IP/24 --gateway ROUTER, or reserve this box's lease on the router ($(lease_hint))"
    say "  and set public_base_url = \"http://THAT-ADDRESS:$CFG_PORT\" in $ETC/tablebox.toml"
  fi
}

# The box's wired (else Wi-Fi) MAC address and current address, for the router's reservation page.
lease_hint() {
  local dev mac addr
  for dev in eth0 end0 wlan0; do
    mac=$(cat "/sys/class/net/$dev/address" 2>/dev/null) || continue
    addr=$(ip -4 -o addr show dev "$dev" 2>/dev/null | awk '{ print $4 }' | head -n1)
    printf '%s MAC %s, now %s' "$dev" "$mac" "${addr:-no address}"
    return 0
  done
  printf 'the MAC address is on the router'\''s client list'
}

main() {
  trap 'printf "provision: failed at line %s: %s\n" "$LINENO" "$BASH_COMMAND" >&2' ERR
  parse_args "$@"
  if running_here && [[ $(id -u) -ne 0 ]]; then die "run as root (sudo $0 ...)"; fi
  if [[ "$COMMAND" == update ]]; then cmd_update; return; fi
  if [[ "$COMMAND" == rollback ]]; then cmd_rollback; return; fi
  load_config
  if [[ -n "$ONLY_STEP" ]]; then
    if [[ "$ONLY_STEP" != venv && "$ONLY_STEP" != user && "$ONLY_STEP" != packages ]]; then stage_source; fi
    "step_$ONLY_STEP"
    return
  fi
  local step
  for step in "${STEPS[@]}"; do
    "step_$step"
  done
  scrub_secrets
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
