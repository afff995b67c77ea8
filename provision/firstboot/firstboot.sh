#!/bin/bash
# tablebox-firstboot: Tablebox's first-boot provisioning, retried until it succeeds, on both Raspberry Pi OS
# first-boot styles.
#
#   firstboot.sh install   put tablebox-firstboot.service in place, enable it and start it without waiting
#   firstboot.sh run       one attempt: provision.sh --unattended from the boot partition (the unit's ExecStart)
#
# How each style gets here:
# - cloud-init images (Trixie): flash.sh adds one runcmd entry, `bash .../firstboot.sh install`. cloud-init runs
#   runcmd once per instance only (cc_runcmd's frequency is PER_INSTANCE; its script is run by scripts_user in
#   cloud-final.service, which Debian orders After=multi-user.target), so the entry only installs the unit: the
#   unit, not cloud-init, owns the retries. `systemctl start --no-block`: cloud-final must not wait hours for
#   packages and a virtualenv.
# - firstrun.sh images (Bookworm): firstrun.sh (started from cmdline.txt before the network is up) installs and
#   enables the same unit; it runs at the next boot.
# The unit has Restart=on-failure (allowed for Type=oneshot since systemd 244; systemd.service(5)) with
# StartLimitIntervalSec=0, so a failed attempt (no network yet, apt mirror down, power cut during apt) is tried
# again every RestartSec until one succeeds, and at every boot until then; it disables itself on success.
#
# Progress: everything goes to standard output, which the unit (StandardOutput=append:) and the runcmd entry
# (>>) append to tablebox/provision.log on the boot partition (readable on a laptop), and to tty1 (the box's
# screen) when there is one.
set -uo pipefail

BOX=${FIRSTBOOT_BOX_DIR:-/boot/firmware/tablebox}  # tests point these at staging folders
ROOT=${FIRSTBOOT_ROOT:-}
TTY=${FIRSTBOOT_TTY:-/dev/tty1}
SYSTEMCTL=${SYSTEMCTL:-systemctl}
UNIT=tablebox-firstboot.service
STATE="$ROOT/var/lib/tablebox-firstboot"  # attempts so far (survives reboots until provisioning succeeds)

stamp() { date '+%F %T'; }

# show LINE: to the log and to the box's screen.
show() {
  printf '%s tablebox-firstboot: %s\n' "$(stamp)" "$*"
  if [[ -w "$TTY" ]]; then printf '\r\n*** Tablebox set-up: %s\r\n' "$*" >> "$TTY" 2>/dev/null || true; fi
}

cmd_install() {
  local -a sysctl=("$SYSTEMCTL")
  if [[ -n "$ROOT" ]]; then sysctl=("$SYSTEMCTL" --root="$ROOT"); fi
  if ! install -D -m 0644 "$BOX/provision/firstboot/$UNIT" "$ROOT/etc/systemd/system/$UNIT"; then
    show "could not install $UNIT: run provision.sh by hand (see tablebox/ on the boot partition)"
    return 1
  fi
  if [[ -z "$ROOT" ]]; then "$SYSTEMCTL" daemon-reload; fi
  "${sysctl[@]}" enable "$UNIT" || { show "could not enable $UNIT"; return 1; }
  show "$UNIT installed; it provisions this box and retries until that succeeds"
  if [[ -z "$ROOT" ]]; then "$SYSTEMCTL" start --no-block "$UNIT"; fi
}

# A power cut during apt leaves dpkg half-configured; apt then refuses everything until this runs.
repair_dpkg() {
  local updates="$ROOT/var/lib/dpkg/updates"
  if [[ -d "$updates" && -n "$(ls -A "$updates" 2>/dev/null)" ]]; then
    show "finishing an interrupted package installation (dpkg --configure -a)"
    DEBIAN_FRONTEND=noninteractive dpkg --configure -a 2>&1 || show "dpkg --configure -a failed (exit $?)"
  fi
}

cmd_run() {
  mkdir -p "$STATE"
  local attempt
  attempt=$(( $(cat "$STATE/attempts" 2>/dev/null || echo 0) + 1 ))
  echo "$attempt" > "$STATE/attempts"
  show "attempt $attempt started (log: tablebox/provision.log on the boot partition)"
  repair_dpkg
  local -a out=(cat)
  if [[ -w "$TTY" ]]; then out=(tee -a "$TTY"); fi
  bash "$BOX/provision/provision.sh" --unattended --config "$BOX/tablebox.toml" \
       --source "$BOX/tablebox-src.tar.gz" 2>&1 | "${out[@]}"
  local status=${PIPESTATUS[0]}
  if [[ "$status" -eq 0 ]]; then
    show "done after $attempt attempt(s): this box is set up"
    rm -f "$STATE/attempts"
    return 0
  fi
  show "attempt $attempt failed (exit $status); trying again in a minute (the log says why)"
  return "$status"
}

main() {
  case "${1:-}" in
    install) cmd_install ;;
    run) cmd_run ;;
    *) printf 'usage: %s install|run\n' "$0" >&2; return 2 ;;
  esac
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then main "$@"; fi
