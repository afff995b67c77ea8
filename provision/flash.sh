#!/usr/bin/env bash
# Write a Raspberry Pi OS image to an SD card (or to an image file) that provisions Tablebox at first boot.
#
#   flash.sh IMAGE TARGET --config FILE (--ssh-key FILE | --password | --password-file FILE | --password-hash HASH
#            | --no-account) [--user NAME] [--wheelhouse DIR] [--yes] [--force]
#
#   IMAGE   a Raspberry Pi OS image, .img or .img.xz (decompressed on the fly)
#   TARGET  the SD card's whole device (/dev/sdX, /dev/mmcblkN), or a file name for an output image
#   --config FILE   the box's tablebox.toml, with a [provision] table (store_name at least)
#   --ssh-key FILE  the technician's public key (~/.ssh/id_ed25519.pub; repeat for more): SSH with that key only,
#                   no password on the account, sudo without one
#   --password      asks for the technician's password (twice, not shown); --password-file FILE reads it from
#                   the file's first line; --password-hash HASH takes a crypt hash (openssl passwd -6). Only the
#                   hash goes on the card; sudo asks for the password. With --ssh-key too, SSH takes the key only.
#   --user NAME     the technician's account (default tech): the image's first user, renamed
#   --no-account    set up no account (the image already has one, e.g. from Raspberry Pi Imager)
#   --wheelhouse DIR  the wheels made by provision/wheelhouse.sh (--arch aarch64, --python 3.11 for Bookworm,
#                   3.13 for Trixie), copied as tablebox/wheels/: first boot installs Tablebox with no network
#   --yes           do not ask to type the device name before erasing it
#   --force         write a TARGET that already holds a Tablebox card, or an existing output file; replace
#                   Wi-Fi that the image's network-config already sets up with the one in the settings
#
# Puts tablebox/ on the card's boot partition (the settings, this provision/ folder, the Tablebox source) and
# the first-boot hook that runs provision.sh --unattended: a runcmd entry in cloud-init's user-data on images
# that have one, otherwise firstrun.sh started from cmdline.txt. The technician's account goes where each style
# reads it: a `user:` in user-data (provision/lib/user_data.py), or tablebox/firstrun-access.conf, which
# firstrun.sh applies as Raspberry Pi Imager's does (imager_custom enable_ssh -k, userconf), plus an empty `ssh`
# file (raspberrypi-sys-mods' sshswitch enables SSH). No password is ever a default. With [provision] wifi_ssid, wifi_password and
# wifi_country the box joins that Wi-Fi before provisioning: network-config on cloud-init images, firstrun.sh
# (NetworkManager) otherwise. Needs only dd, sfdisk and mtools: no loop devices, no mounting. Refuses devices
# that look like a system disk. Can be sourced by tests without running.
set -euo pipefail

PROVISION_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$PROVISION_DIR")
SYSFS_ROOT=${SYSFS_ROOT:-/sys}  # tests point these at a fake tree
PROC_ROOT=${PROC_ROOT:-/proc}
export MTOOLS_SKIP_CHECK=1       # mtools would otherwise object to geometries that Linux itself accepts

# A card above this size is more likely a disk than an SD card (cards sold as 256 GB hold less than 256 GiB).
MAX_CARD_BYTES=$((256 * 1024 * 1024 * 1024))
BOOT_MOUNT=/boot/firmware          # where Raspberry Pi OS (Bookworm, Trixie) mounts the boot partition
BOX_DIR=$BOOT_MOUNT/tablebox
# The runcmd entry only installs and starts the retried unit (provision/firstboot/firstboot.sh says why).
PROVISION_COMMAND="bash $BOX_DIR/provision/firstboot/firstboot.sh install"
PROVISION_LOG=$BOX_DIR/provision.log
RUNCMD_MARKER="tablebox: first-boot provisioning, added by provision/flash.sh"
FIRSTRUN_MARKER="tablebox-firstrun"
FIRSTRUN_WIFI=tablebox/firstrun-wifi.conf  # the Wi-Fi values firstrun.sh reads (see provision/lib/wifi.py)
RUN_ARGS="systemd.run=$BOOT_MOUNT/firstrun.sh systemd.run_success_action=reboot systemd.unit=kernel-command-line.target"

IMAGE=""
TARGET=""
CONFIG=""
ASSUME_YES=0
FORCE=0
FORCE_ARG=()       # (--force) for provision/lib/wifi.py when FORCE=1
TARGET_KIND=""     # device, new-file or file
DISK=""            # kernel name of a device TARGET (sdb, mmcblk0)
BOOT=""            # mtools image spec of the boot partition: TARGET@@OFFSET
WORK=""
CREATED_OUTPUT=0
ACCESS_USER=tech
ACCESS_ARGS=()     # for provision/lib/access.py: --ssh-key FILE..., --password-hash HASH
PASSWORD_FROM=""   # prompt, or a file to read the password from
NO_ACCOUNT=0
ACCESS=0           # 1 once $WORK/access.json describes the account to set up
FIRSTRUN_ACCESS=tablebox/firstrun-access.conf  # what firstrun.sh reads (see provision/lib/access.py)
WHEELHOUSE=""      # --wheelhouse DIR: copied to tablebox/wheels/, where provision.sh looks for one (find_wheelhouse)

say() { printf '%s\n' "$*"; }
warn() { printf 'flash: %s\n' "$*" >&2; }
die() { printf 'flash: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

usage() {
  sed -n '2,31p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

parse_args() {
  local -a positional=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --config) CONFIG=${2:?--config needs a file}; shift 2 ;;
      --config=*) CONFIG=${1#--config=}; shift ;;
      --ssh-key) ACCESS_ARGS+=(--ssh-key "${2:?--ssh-key needs a public key file}"); shift 2 ;;
      --password) PASSWORD_FROM=prompt; shift ;;
      --password-file) PASSWORD_FROM=${2:?--password-file needs a file}; shift 2 ;;
      --password-hash) ACCESS_ARGS+=(--password-hash "${2:?--password-hash needs a crypt hash}"); shift 2 ;;
      --user) ACCESS_USER=${2:?--user needs a name}; shift 2 ;;
      --no-account) NO_ACCOUNT=1; shift ;;
      --wheelhouse) WHEELHOUSE=${2:?--wheelhouse needs a folder made by provision/wheelhouse.sh}; shift 2 ;;
      --yes|-y) ASSUME_YES=1; shift ;;
      --force) FORCE=1; FORCE_ARG=(--force); shift ;;
      -h|--help) usage; exit 0 ;;
      -*) usage >&2; printf 'flash: unknown option %s\n' "$1" >&2; exit 2 ;;
      *) positional+=("$1"); shift ;;
    esac
  done
  if [[ ${#positional[@]} -ne 2 || -z "$CONFIG" ]]; then
    usage >&2
    printf 'flash: give IMAGE, TARGET and --config FILE\n' >&2
    exit 2
  fi
  IMAGE=${positional[0]}
  TARGET=${positional[1]}
  if [[ "$NO_ACCOUNT" == 1 && ( ${#ACCESS_ARGS[@]} -gt 0 || -n "$PASSWORD_FROM" ) ]]; then
    usage >&2
    printf 'flash: --no-account cannot go with --ssh-key or a password\n' >&2
    exit 2
  fi
}

# The technician's account, checked (and a password hashed) before anything is written: $WORK/access.json and
# $WORK/firstrun-access.conf. A password is read without echo, or from a file, and reaches access.py on stdin only.
prepare_access() {
  [[ "$NO_ACCOUNT" == 1 ]] && return 0
  [[ ${#ACCESS_ARGS[@]} -gt 0 || -n "$PASSWORD_FROM" ]] || return 0
  local password="" again summary
  local -a stdin_arg=()
  if [[ "$PASSWORD_FROM" == prompt ]]; then
    [[ -t 0 ]] || die "--password needs a terminal to ask on: use --password-file FILE or --password-hash HASH"
    read -r -s -p "Password for $ACCESS_USER on the box: " password; echo >&2
    read -r -s -p "The same password again: " again; echo >&2
    [[ "$password" == "$again" ]] || die "the two passwords differ; nothing was written"
    stdin_arg=(--password-stdin)
  elif [[ -n "$PASSWORD_FROM" ]]; then
    [[ -f "$PASSWORD_FROM" && -r "$PASSWORD_FROM" ]] || die "no password file at $PASSWORD_FROM"
    IFS= read -r password < "$PASSWORD_FROM" || [[ -n "$password" ]] || die "$PASSWORD_FROM is empty"
    stdin_arg=(--password-stdin)
  fi
  summary=$(printf '%s\n' "$password" | python3 "$PROVISION_DIR/lib/access.py" prepare --user "$ACCESS_USER" \
              "${ACCESS_ARGS[@]}" "${stdin_arg[@]}" --out "$WORK") || die "no account can be set up (see above); nothing was written"
  password="" again=""
  ACCESS=1
  say "$summary"
}

# The image's own account settings (Raspberry Pi Imager's user-data users or firstrun.sh), if any: a word for messages.
image_account() {
  if mexists "$BOOT" ::/user-data; then
    if mtype -i "$BOOT" ::/user-data 2>/dev/null | grep -Eq '^(user|users)[[:space:]]*:'; then echo "user-data"; fi
  elif mexists "$BOOT" ::/firstrun.sh && ! mtype -i "$BOOT" ::/firstrun.sh 2>/dev/null | grep -q "$FIRSTRUN_MARKER"; then
    echo "Raspberry Pi Imager's firstrun.sh"
  fi
}

# No way in is refused: an account from the flags, one the image brings, or --no-account said on purpose.
check_access() {
  local found
  found=$(image_account)
  if [[ "$ACCESS" == 1 && -n "$found" ]]; then
    die "the image already sets up an account ($found, from Raspberry Pi Imager?): leave out --ssh-key and --password to keep it, or use a plain image"
  fi
  if [[ "$ACCESS" == 0 && "$NO_ACCOUNT" == 0 && -z "$found" ]]; then
    die "no way into the box: give --ssh-key ~/.ssh/id_ed25519.pub (or --password), or --no-account if you set one up yourself; nothing was written"
  fi
}

# need COMMAND PACKAGE: stop with the Debian package to install when COMMAND is missing.
need() {
  have "$1" || die "$1 is missing: install it with  sudo apt install $2"
}

check_tools() {
  need dd coreutils
  need sfdisk fdisk
  need mcopy mtools
  need python3 python3
  if [[ "$IMAGE" == *.xz ]]; then need xz xz-utils; fi
  python3 -c 'import tomllib' 2>/dev/null || python3 -c 'import tomli' 2>/dev/null \
    || die "python3 cannot read TOML: use Python 3.11 or later, or install it with  sudo apt install python3-tomli"
}

# The settings file: valid TOML with [provision] store_name, checked before anything is written.
check_config() {
  [[ -f "$CONFIG" ]] || die "no settings file at $CONFIG"
  python3 - "$CONFIG" <<'PY' || die "$CONFIG cannot be used (see above); nothing was written"
import sys
try:
    import tomllib
except ImportError:
    import tomli as tomllib
path = sys.argv[1]
try:
    with open(path, "rb") as f:
        data = tomllib.load(f)
except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
    sys.exit(f"flash: {path} is not valid TOML: {exc}")
provision = data.get("provision")
if not isinstance(provision, dict):
    sys.exit(f"flash: {path} has no [provision] table (it needs at least store_name)")
name = provision.get("store_name")
if not isinstance(name, str) or not name.strip():
    sys.exit(f"flash: {path}: [provision] store_name is missing or empty")
PY
  # Wi-Fi: a box that has only Wi-Fi must get online at first boot, so mistakes are caught here.
  local wifi
  wifi=$(python3 "$PROVISION_DIR/lib/wifi.py" check "$CONFIG") \
    || die "$CONFIG cannot be used (see above); nothing was written"
  say "$wifi"
  # The same check provision.sh makes at first boot, made here where someone can still fix the file.
  if [[ -f "$PROVISION_DIR/lib/render_config.py" ]]; then
    python3 "$PROVISION_DIR/lib/render_config.py" --input "$CONFIG" --output "$WORK/rendered.toml" >/dev/null \
      || die "$CONFIG would be refused by provision.sh at first boot (see above); nothing was written"
  fi
}

# Size in bytes of the image once decompressed (empty when xz cannot tell).
image_bytes() {
  if [[ "$IMAGE" == *.xz ]]; then
    xz --robot --list "$IMAGE" 2>/dev/null | awk -F'\t' '$1 == "totals" { print $5 }'
  else
    stat -c %s "$IMAGE"
  fi
}

check_image() {
  [[ -f "$IMAGE" && -r "$IMAGE" ]] || die "no image at $IMAGE"
  case "$IMAGE" in
    *.img|*.img.xz) ;;
    *) die "$IMAGE: give a Raspberry Pi OS image (.img or .img.xz)" ;;
  esac
  if [[ "$IMAGE" == *.img ]]; then
    # Check the boot partition before writing; an .img.xz is checked once written.
    check_boot_partition "$IMAGE"
    check_access
    if mexists "$BOOT" ::/user-data; then check_network_config; fi
  fi
}

# Can the Wi-Fi go into the image's network-config? Asked of an .img before anything is written.
check_network_config() {
  rm -f "$WORK/network-config"
  if mexists "$BOOT" ::/network-config; then mget ::/network-config "$WORK/network-config"; fi
  python3 "$PROVISION_DIR/lib/wifi.py" network-config "$CONFIG" "$WORK/network-config" --dry-run "${FORCE_ARG[@]}" \
    >/dev/null || die "the Wi-Fi cannot be added to the image's network-config (see above); nothing was written"
}

# Byte offset of the first partition of FILE (an image or a device).
boot_offset() {
  sfdisk --json "$1" 2>/dev/null | python3 -c '
import json, sys
try:
    table = json.load(sys.stdin)["partitiontable"]
    first = table["partitions"][0]
except (ValueError, KeyError, IndexError):
    sys.exit(1)
print(int(first["start"]) * int(table.get("sectorsize", 512)))'
}

# mexists FILE@@OFFSET ::/PATH: does the boot partition hold PATH (file or folder)?
mexists() { mdir -b -i "$1" "$2" >/dev/null 2>&1; }

# check_boot_partition FILE: sets BOOT to FILE@@OFFSET of a FAT first partition holding cmdline.txt.
check_boot_partition() {
  local file=$1 offset
  offset=$(boot_offset "$file") || die "$file has no partition table: not a Raspberry Pi OS image"
  BOOT="$file@@$offset"
  mdir -i "$BOOT" ::/ >/dev/null 2>&1 || die "the first partition of $file is not a FAT boot partition"
  mexists "$BOOT" ::/cmdline.txt || die "no cmdline.txt on the boot partition of $file: not a Raspberry Pi OS image"
}

# Was TARGET written by this script before (tablebox/ or our firstrun.sh on its boot partition)?
already_flashed() {
  local offset spec
  offset=$(boot_offset "$TARGET") || return 1
  spec="$TARGET@@$offset"
  mexists "$spec" ::/tablebox && return 0
  mexists "$spec" ::/firstrun.sh && mtype -i "$spec" ::/firstrun.sh 2>/dev/null | grep -q "$FIRSTRUN_MARKER"
}

# check_disk NAME: refuse a block device (by kernel name) that looks like a system disk, or is in use.
check_disk() {
  local name=$1 dev=/dev/$1 sys=$SYSFS_ROOT/block/$1
  if [[ ! -d "$sys" ]]; then
    if [[ -f "$SYSFS_ROOT/class/block/$name/partition" ]]; then
      die "$dev is a partition: give the whole card (for example /dev/sdb, /dev/mmcblk0), not one partition"
    fi
    die "$dev is not a disk the kernel knows ($sys is missing)"
  fi
  local -a parts=("$name")
  local p
  for p in "$sys/$name"*; do
    if [[ -f "$p/partition" ]]; then parts+=("$(basename "$p")"); fi
  done
  local source mountpoint rest
  while read -r source mountpoint rest; do
    for p in "${parts[@]}"; do
      [[ "$source" == "/dev/$p" ]] || continue
      mountpoint=$(printf '%b' "$mountpoint")  # /proc/mounts writes spaces as \040
      case "$mountpoint" in
        /|/boot|/boot/*|/usr|/var|/home)
          die "$dev holds $mountpoint: it is a system disk, not an SD card" ;;
      esac
      die "/dev/$p is mounted on $mountpoint: unmount it first (udisksctl unmount -b /dev/$p)"
    done
  done < "$PROC_ROOT/mounts"
  if [[ -f "$PROC_ROOT/swaps" ]]; then
    while read -r source rest; do
      for p in "${parts[@]}"; do
        if [[ "$source" == "/dev/$p" ]]; then die "/dev/$p is in use as swap: it is not a spare SD card"; fi
      done
    done < "$PROC_ROOT/swaps"
  fi
  local holder
  for p in "$sys" "$sys/$name"*; do
    for holder in "$p"/holders/*; do
      if [[ -e "$holder" ]]; then
        die "$dev is in use by $(basename "$holder") (LVM, encryption or RAID): not a spare SD card"
      fi
    done
  done
  local removable path type
  removable=$(cat "$sys/removable" 2>/dev/null || echo 0)
  path=$(readlink -f "$sys/device" 2>/dev/null || true)
  type=$(cat "$sys/device/type" 2>/dev/null || true)
  if [[ "$removable" != 1 && "$path" != */usb* && "$type" != SD ]]; then
    die "$dev is not removable and not on USB or an SD card slot: it looks like a system disk"
  fi
  local bytes
  bytes=$(( $(cat "$sys/size" 2>/dev/null || echo 0) * 512 ))
  if [[ "$bytes" -eq 0 ]]; then die "$dev is empty: is the SD card in the reader?"; fi
  if [[ "$bytes" -gt "$MAX_CARD_BYTES" ]]; then
    die "$dev holds $(human "$bytes"): larger than 256 GB, so more likely a disk than an SD card"
  fi
  if [[ "$(cat "$sys/ro" 2>/dev/null || echo 0)" == 1 ]]; then
    die "$dev is read-only: is the SD card's lock switch on?"
  fi
}

human() { numfmt --to=si --suffix=B "$1" 2>/dev/null || printf '%s bytes' "$1"; }

disk_bytes() { echo $(( $(cat "$SYSFS_ROOT/block/$1/size") * 512 )); }

disk_label() {
  local sys=$SYSFS_ROOT/block/$1/device words
  words=$(cat "$sys/vendor" "$sys/model" "$sys/name" 2>/dev/null | tr -s ' \n' ' ' || true)
  printf '%s' "${words% }"
}

check_target() {
  if [[ -e "$TARGET" && "$IMAGE" -ef "$TARGET" ]]; then die "TARGET is the image itself ($IMAGE)"; fi
  if [[ -b "$TARGET" ]]; then
    TARGET_KIND="device"
    DISK=$(basename "$(readlink -f "$TARGET")")
    check_disk "$DISK"
    [[ -w "$TARGET" ]] || die "cannot write $TARGET: run as root (sudo $0 ...)"
    local need
    need=$(image_bytes)
    if [[ -n "$need" && "$need" -gt "$(disk_bytes "$DISK")" ]]; then
      die "the image needs $(human "$need") but $TARGET holds $(human "$(disk_bytes "$DISK")")"
    fi
  elif [[ "$TARGET" == /dev/* ]]; then
    die "$TARGET is not a block device: is the SD card in? (lsblk lists the disks)"
  elif [[ -d "$TARGET" ]]; then
    die "$TARGET is a folder: give a file name for the output image"
  elif [[ -e "$TARGET" && ! -f "$TARGET" ]]; then
    die "$TARGET is neither an SD card device nor a regular file"
  elif [[ -f "$TARGET" ]]; then
    TARGET_KIND="file"
  else
    [[ -d "$(dirname "$TARGET")" ]] || die "no folder $(dirname "$TARGET") for the output image"
    TARGET_KIND="new-file"
  fi
  if [[ "$TARGET_KIND" != new-file ]] && already_flashed; then
    [[ "$FORCE" == 1 ]] || die "$TARGET already holds a Tablebox card (tablebox/ on its boot partition); \
--force writes it again from the image"
    warn "$TARGET already holds a Tablebox card: writing it again (--force)"
  elif [[ "$TARGET_KIND" == file && "$FORCE" != 1 ]]; then
    die "$TARGET exists: --force overwrites it"
  fi
}

confirm() {
  [[ "$TARGET_KIND" == device && "$ASSUME_YES" != 1 ]] || return 0
  [[ -t 0 ]] || die "no terminal to confirm on: pass --yes to erase $TARGET"
  say "About to ERASE $TARGET ($(disk_label "$DISK"), $(human "$(disk_bytes "$DISK")")) and write $IMAGE to it."
  local answer
  read -r -p "Type the device name ($DISK) to go on: " answer
  [[ "$answer" == "$DISK" || "$answer" == "/dev/$DISK" ]] || die "not confirmed; nothing was written"
}

# The Tablebox source: git archive of HEAD in a clone (exactly what is committed, nothing untracked such as
# a demo store's secret); a tar of the folder, without local state, when this is not a git clone.
make_source_archive() {
  local out=$1 top=""
  if have git; then
    top=$(git -c safe.directory="$REPO_DIR" -C "$REPO_DIR" rev-parse --show-toplevel 2>/dev/null || true)
  fi
  if [[ -n "$top" && "$top" -ef "$REPO_DIR" ]] \
     && git -c safe.directory="$REPO_DIR" -C "$REPO_DIR" archive --format=tar.gz --prefix=tablebox-src/ \
          -o "$out" HEAD 2>/dev/null; then
    say "source: git archive of $(git -c safe.directory="$REPO_DIR" -C "$REPO_DIR" rev-parse --short HEAD)"
    if [[ -n "$(git -c safe.directory="$REPO_DIR" -C "$REPO_DIR" status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
      warn "uncommitted changes in $REPO_DIR are not in the source archive (it is the last commit)"
    fi
    return
  fi
  say "source: $REPO_DIR (not a git clone: a tar of the folder)"
  tar -C "$REPO_DIR" -czf "$out" --exclude=./.git --exclude=./.venv --exclude=./test-artifacts \
      --exclude=./tablebox-data --exclude=./build --exclude=./dist --exclude='*.egg-info' \
      --exclude=__pycache__ --exclude='*.pyc' --exclude=.pytest_cache --exclude=.hypothesis \
      --exclude='*.img' --exclude='*.img.xz' --transform='s,^\.,tablebox-src,' .
}

# --wheelhouse DIR: what provision/wheelhouse.sh made, checked before the card is touched. Raspberry Pi OS's 64-bit
# images are aarch64; which Python the image has is checked once its boot partition can be read (check_wheel_python).
wheelhouse_field() {  # wheelhouse_field KEY: a value of $WHEELHOUSE/wheelhouse.json
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$WHEELHOUSE/wheelhouse.json" "$1"
}

check_wheelhouse() {
  [[ -n "$WHEELHOUSE" ]] || return 0
  [[ -f "$WHEELHOUSE/wheelhouse.json" ]] \
    || die "$WHEELHOUSE is not a wheelhouse (no wheelhouse.json): make one with provision/wheelhouse.sh; nothing was written"
  local wheel arch
  wheel=$(wheelhouse_field wheel) || die "$WHEELHOUSE/wheelhouse.json cannot be read; nothing was written"
  [[ -f "$WHEELHOUSE/requirements.lock" && -f "$WHEELHOUSE/$wheel" ]] \
    || die "$WHEELHOUSE is incomplete (no requirements.lock or $wheel): make it again with provision/wheelhouse.sh"
  arch=$(wheelhouse_field arch)
  [[ "$arch" == aarch64 ]] \
    || die "$WHEELHOUSE holds wheels for $arch; a Raspberry Pi needs provision/wheelhouse.sh --arch aarch64; nothing was written"
  if ! cmp -s "$WHEELHOUSE/requirements.lock" "$PROVISION_DIR/requirements.lock"; then
    warn "$WHEELHOUSE was made from another requirements.lock than this checkout's: the box installs the wheelhouse's"
  fi
}

# The image's Python, from its first-boot style: cloud-init user-data means Trixie (Python 3.13), firstrun.sh
# from cmdline.txt means Bookworm (3.11); Raspberry Pi OS moved to cloud-init with Trixie. The box's provision.sh
# refuses wheels for another Python, so a card that would fail at first boot is refused here, before the copy.
check_wheel_python() {
  [[ -n "$WHEELHOUSE" ]] || return 0
  local want=3.11 style=Bookworm have
  if mexists "$BOOT" ::/user-data; then want=3.13; style=Trixie; fi
  have=$(wheelhouse_field python)
  [[ "$have" == "$want" ]] \
    || die "$WHEELHOUSE holds wheels for Python $have; this $style image has Python $want: make it with provision/wheelhouse.sh --python $want"
}

# Everything for tablebox/ on the boot partition, staged in $WORK/tablebox before the card is touched.
stage_files() {
  local stage=$WORK/tablebox dir
  mkdir -p "$stage"
  cp "$CONFIG" "$stage/tablebox.toml"
  # provision.sh finds the units in ../systemd: keep the repository's layout.
  for dir in provision systemd; do
    if [[ -d "$REPO_DIR/$dir" ]]; then
      tar -C "$REPO_DIR" -chf - --exclude=__pycache__ --exclude='*.pyc' "$dir" | tar -C "$stage" -xf -
    fi
  done
  make_source_archive "$stage/tablebox-src.tar.gz"
  if [[ -n "$WHEELHOUSE" ]]; then
    # Only what provision.sh installs from: the wheels, the lock and wheelhouse.json.
    mkdir -p "$stage/wheels"
    cp "$WHEELHOUSE"/*.whl "$WHEELHOUSE/requirements.lock" "$WHEELHOUSE/wheelhouse.json" "$stage/wheels/"
    # The Debian packages provision.sh would otherwise fetch (wheelhouse.sh --debs: fbterm, the font, python3-venv):
    # with them the first boot needs no network at all (provision/steps/packages.sh installs from them).
    if [[ -d "$WHEELHOUSE/debs" ]]; then
      cp -r "$WHEELHOUSE/debs" "$stage/wheels/debs"
      say "debian packages: $(find "$stage/wheels/debs" -name '*.deb' | wc -l) .debs ($(du -sh "$stage/wheels/debs" | cut -f1))"
    fi
    say "wheelhouse: $(find "$stage/wheels" -name '*.whl' | wc -l) wheels for Python $(wheelhouse_field python)," \
        "Tablebox $(wheelhouse_field version) ($(du -sh "$stage/wheels" | cut -f1))"
  fi
}

write_image() {
  say "writing $IMAGE to $TARGET"
  local conv=conv=fsync
  if [[ "$TARGET_KIND" != device ]]; then conv=conv=sparse,fsync; fi
  if [[ "$TARGET_KIND" == new-file ]]; then CREATED_OUTPUT=1; fi
  local size
  local -a pv_size=()
  size=$(image_bytes)
  if [[ -n "$size" ]]; then pv_size=(-s "$size"); fi
  if have pv; then
    if [[ "$IMAGE" == *.xz ]]; then
      xz -dc "$IMAGE" | pv "${pv_size[@]}" | dd of="$TARGET" bs=4M iflag=fullblock "$conv" status=none
    else
      pv "$IMAGE" | dd of="$TARGET" bs=4M iflag=fullblock "$conv" status=none
    fi
  elif [[ "$IMAGE" == *.xz ]]; then
    xz -dc "$IMAGE" | dd of="$TARGET" bs=4M iflag=fullblock "$conv" status=progress
  else
    dd if="$IMAGE" of="$TARGET" bs=4M "$conv" status=progress
  fi
}

# A desktop may mount the fresh card's partitions as soon as the new table appears: unmount them, since
# mtools writes to the device directly.
settle_device() {
  [[ "$TARGET_KIND" == device ]] || return 0
  if have blockdev; then blockdev --rereadpt "$TARGET" 2>/dev/null || true; fi
  if have udevadm; then udevadm settle 2>/dev/null || true; fi
  local source mountpoint rest
  while read -r source mountpoint rest; do
    if [[ "$source" == "/dev/$DISK"* ]]; then
      say "unmounting $source (mounted on $(printf '%b' "$mountpoint") by the desktop)"
      umount "$source"
    fi
  done < "$PROC_ROOT/mounts"
}

# mput LOCAL ::/PATH: copy onto the boot partition, replacing what is there.
mput() { mcopy -Q -D o -i "$BOOT" "$1" "$2"; }

# mget ::/PATH LOCAL: copy from the boot partition, byte for byte.
mget() { mcopy -Q -n -i "$BOOT" "$1" "$2"; }

copy_tablebox_folder() {
  local what="settings, provision/, source" free need
  if [[ -n "$WHEELHOUSE" ]]; then what+=", wheels/"; fi
  # Room on the boot partition (512 MB on Raspberry Pi OS; a wheelhouse is about 35 MB): said before a half copy.
  free=$(mdir -i "$BOOT" ::/ 2>/dev/null | sed -n 's/ bytes free$//p' | tr -dc '0-9')
  need=$(( $(du -sb "$WORK/tablebox" | cut -f1) + $(find "$WORK/tablebox" | wc -l) * 4096 ))
  if [[ -n "$free" ]] && (( need > free )); then
    die "the boot partition has $(human "$free") free, tablebox/ needs about $(human "$need")"
  fi
  say "boot partition: tablebox/ ($what)"
  mcopy -Q -s -D o -i "$BOOT" "$WORK/tablebox" ::/
}

# Cloud-init images: the Wi-Fi as a netplan wifis: section in network-config, the rest kept as it was.
add_network_config() {
  rm -f "$WORK/network-config"
  if mexists "$BOOT" ::/network-config; then mget ::/network-config "$WORK/network-config"; fi
  local result
  result=$(python3 "$PROVISION_DIR/lib/wifi.py" network-config "$WORK/tablebox/tablebox.toml" \
             "$WORK/network-config" "${FORCE_ARG[@]}") \
    || die "could not add the Wi-Fi to network-config (see above); the image is written, without the first-boot setup"
  case "$result" in
    none) return 0 ;;
    added|replaced) mput "$WORK/network-config" ::/network-config ;;
  esac
  say "boot partition: network-config Wi-Fi ($result) for cloud-init at first boot"
}

# Cloud-init images: the technician's account as a `user:` in user-data (see provision/lib/user_data.py).
add_cloud_init_account() {
  [[ "$ACCESS" == 1 ]] || return 0
  mget ::/user-data "$WORK/user-data"
  local result
  result=$(python3 "$PROVISION_DIR/lib/user_data.py" --account "$WORK/user-data" "$WORK/access.json") \
    || die "could not add the account to user-data (see above); the image is written, without it"
  if [[ "$result" == added ]]; then mput "$WORK/user-data" ::/user-data; fi
  say "boot partition: user-data user $ACCESS_USER ($result) with SSH enabled"
}

# Firstrun images: the account for firstrun.sh, and the empty `ssh` file Raspberry Pi OS reads to enable SSH.
add_firstrun_access() {
  [[ "$ACCESS" == 1 ]] || return 0
  mput "$WORK/firstrun-access.conf" "::/$FIRSTRUN_ACCESS"
  : > "$WORK/ssh"
  mput "$WORK/ssh" ::/ssh
  say "boot partition: $FIRSTRUN_ACCESS (firstrun.sh sets up $ACCESS_USER) and ssh (SSH on)"
}

# Images with cloud-init (the latest Trixie): one runcmd entry in user-data, the rest kept as it was.
add_cloud_init_runcmd() {
  mget ::/user-data "$WORK/user-data"
  local result
  result=$(python3 "$PROVISION_DIR/lib/user_data.py" "$WORK/user-data" \
             "$PROVISION_COMMAND >>$PROVISION_LOG 2>&1" "$RUNCMD_MARKER") \
    || die "could not add the first-boot command to user-data (see above); the image is written, without it"
  if [[ "$result" == added ]]; then mput "$WORK/user-data" ::/user-data; fi
  say "boot partition: user-data runcmd ($result) runs provision.sh at first boot"
}

# Images without cloud-init (Bookworm, early Trixie): firstrun.sh started by systemd.run= in cmdline.txt.
add_firstrun() {
  mget ::/cmdline.txt "$WORK/cmdline.txt"
  local line lines
  lines=$(grep -c '[^[:space:]]' "$WORK/cmdline.txt" || true)
  [[ "$lines" -le 1 ]] || die "cmdline.txt on the image has $lines lines; the Pi reads one: fix the image"
  line=$(tr -d '\r\n' < "$WORK/cmdline.txt" | sed 's/[[:space:]]*$//')
  if mexists "$BOOT" ::/firstrun.sh; then
    mget ::/firstrun.sh "$WORK/firstrun-found.sh"
    if ! grep -q "$FIRSTRUN_MARKER" "$WORK/firstrun-found.sh"; then
      # Raspberry Pi Imager's settings (user, SSH, Wi-Fi): ours runs it first.
      mput "$WORK/firstrun-found.sh" ::/firstrun-before-tablebox.sh
      say "boot partition: the image's own firstrun.sh is kept as firstrun-before-tablebox.sh and runs first"
    fi
  fi
  if [[ " $line " == *" systemd.run="* ]]; then
    if [[ " $line " != *" systemd.run=$BOOT_MOUNT/firstrun.sh "* ]]; then
      die "cmdline.txt already starts another first-boot script (${line##* systemd.run=}): use a plain image"
    fi
  else
    line="$line $RUN_ARGS"
  fi
  printf '%s\n' "$line" > "$WORK/cmdline.new"
  if ! cmp -s "$WORK/cmdline.new" "$WORK/cmdline.txt"; then mput "$WORK/cmdline.new" ::/cmdline.txt; fi
  mput "$PROVISION_DIR/firstboot/firstrun.sh" ::/firstrun.sh
  say "boot partition: firstrun.sh (from cmdline.txt) sets up provisioning for the boot after"
  add_firstrun_wifi
  add_firstrun_access
}

# The Wi-Fi values for firstrun.sh: a file of key=value lines it reads (never runs), so that no SSID or
# password can become shell code.
add_firstrun_wifi() {
  local result
  result=$(python3 "$PROVISION_DIR/lib/wifi.py" firstrun "$WORK/tablebox/tablebox.toml" "$WORK/firstrun-wifi.conf") \
    || die "could not write the Wi-Fi settings for firstrun.sh (see above); the image is written without them"
  if [[ "$result" == none ]]; then
    if mexists "$BOOT" "::/$FIRSTRUN_WIFI"; then mdel -i "$BOOT" "::/$FIRSTRUN_WIFI"; fi
    return 0
  fi
  mput "$WORK/firstrun-wifi.conf" "::/$FIRSTRUN_WIFI"
  say "boot partition: $FIRSTRUN_WIFI (firstrun.sh sets up the Wi-Fi before provisioning)"
}

install_first_boot() {
  if mexists "$BOOT" ::/user-data; then
    add_network_config
    add_cloud_init_account
    add_cloud_init_runcmd
  else
    add_firstrun
  fi
}

finish() {
  sync
  say ""
  say "Done: $TARGET provisions itself at first boot (log: tablebox/provision.log on its boot partition)."
  say "The settings file is on the card's boot partition as tablebox/tablebox.toml: keep the card safe until the"
  say "box has set itself up; then provision.sh removes manager_pin and the Wi-Fi password from the boot partition"
  say "(tablebox.toml, and network-config on cloud-init images; firstrun.sh deletes its own copy at first boot)."
  if [[ "$ACCESS" == 1 ]]; then
    say "Sign in once it is up: ssh $ACCESS_USER@<the box's address> (the hostname, or the address you gave it)."
  fi
  if [[ -n "$WHEELHOUSE" ]]; then
    if [[ -d "$WHEELHOUSE/debs" ]]; then
      say "Tablebox and its Debian packages install from tablebox/wheels/ on the card: the box needs no internet."
    else
      say "Tablebox installs from tablebox/wheels/ on the card; Debian packages the image lacks (fbterm, its font)"
      say "come from the internet, or are skipped and named in provision.log (wheelhouse.sh --debs brings them too)."
    fi
  fi
  if [[ "$TARGET_KIND" == device ]]; then say "You can take the card out."; fi
}

cleanup() {
  local status=$?
  if [[ "$status" -ne 0 && "$CREATED_OUTPUT" == 1 ]]; then rm -f "$TARGET"; fi
  if [[ -n "$WORK" ]]; then rm -rf "$WORK"; fi
  return "$status"
}

main() {
  parse_args "$@"
  WORK=$(mktemp -d)
  trap cleanup EXIT
  check_tools
  check_config
  check_wheelhouse
  prepare_access
  check_image
  if [[ "$IMAGE" == *.img ]]; then check_wheel_python; fi  # an .img.xz is checked once written
  check_target
  confirm
  stage_files
  write_image
  settle_device
  check_boot_partition "$TARGET"
  if [[ "$IMAGE" == *.xz ]]; then check_access; check_wheel_python; fi
  copy_tablebox_folder
  install_first_boot
  finish
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then main "$@"; fi
