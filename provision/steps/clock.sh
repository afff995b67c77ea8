# shellcheck shell=bash
# Step `clock`: a clock that is right, or known not to be. Sourced by provision/provision.sh.
#
# A Pi has no clock battery. At boot it starts from a saved time: fake-hwclock's /etc/fake-hwclock.data (saved
# hourly and at shutdown) and systemd-timesyncd's /var/lib/systemd/timesync/clock (its mtime, advanced at each
# synchronisation; systemd-timesyncd.service(8)). A saved time is sane but can be months old, until an NTP
# server answers.
# - [provision] ntp_server = "192.168.1.1" (one name or address, or several separated by spaces): a local time
#   source for sites without internet (many routers serve NTP), written as NTP= in a timesyncd.conf.d drop-in;
#   without it the image's own servers are used (Debian's pool, and any the DHCP server names).
# - systemd-time-wait-sync.service enabled: time-sync.target then means "synchronised" (it waits until timesyncd
#   creates /run/systemd/timesync/synchronized; systemd-time-wait-sync.service(8)), instead of "timesyncd has
#   started". Its own unit has TimeoutStartSec=infinity (systemd units/systemd-time-wait-sync.service.in): every
#   unit ordered after time-sync.target (tablebox-web.service is) would wait for ever on a site without NTP. The
#   drop-in bounds the wait to CLOCK_BOOT_WAIT: the box takes orders with its saved time after that; the failed
#   wait does not block time-sync.target (it only Wants= it), and `tablebox doctor` says the clock is unsynced.
# - fake-hwclock (a package on Raspberry Pi OS; provision.sh installs it elsewhere): saved once here, after a
#   synchronisation, so the next boot starts from today rather than from the image's build date.
# wait_for_clock (in provision.sh) waits for the synchronisation before apt; see there.

TIMESYNCD_DROPIN=/etc/systemd/timesyncd.conf.d/tablebox.conf
TIME_WAIT_DROPIN=/etc/systemd/system/systemd-time-wait-sync.service.d/tablebox.conf
CLOCK_BOOT_WAIT=${TABLEBOX_CLOCK_BOOT_WAIT:-90s}
CLOCK_SYNC_FILE=${TABLEBOX_CLOCK_SYNC_FILE:-/run/systemd/timesync/synchronized}
TIMEDATECTL=${TIMEDATECTL:-timedatectl}
CLOCK_EARLIEST=${TABLEBOX_CLOCK_EARLIEST:-2025-01-01}  # a clock before this was never set
CLOCK_WAIT_SECONDS=${TABLEBOX_CLOCK_WAIT_SECONDS:-300}
CLOCK_POLL_SECONDS=${TABLEBOX_CLOCK_POLL_SECONDS:-5}
# shellcheck disable=SC2034  # read by step_packages in provision.sh
declare -a APT_CLOCK_OPTS=()  # set by wait_for_clock when apt must go on with a saved time

# Synchronised: timesyncd's flag file (what systemd-time-wait-sync waits for), or the kernel's "clock is
# synchronised" status as timedatectl reports it (NTPSynchronized, from adjtimex: chrony or ntpd set it too).
clock_synchronised() {
  [[ -e "$CLOCK_SYNC_FILE" ]] && return 0
  [[ "$("$TIMEDATECTL" show -p NTPSynchronized --value 2>/dev/null)" == yes ]]
}

# The newest saved time (seconds since 1970), or nothing: fake-hwclock's file (UTC "YYYY-MM-DD HH:MM:SS") and
# timesyncd's clock file (its mtime).
saved_clock_epoch() {
  local best="" t file
  file=$(at /etc/fake-hwclock.data)
  if [[ -s "$file" ]] && t=$(date -u -d "$(head -n 1 "$file")" +%s 2>/dev/null); then best=$t; fi
  file=$(at /var/lib/systemd/timesync/clock)
  if [[ -e "$file" ]] && t=$(stat -c %Y "$file" 2>/dev/null) && [[ -z "$best" || "$t" -gt "$best" ]]; then best=$t; fi
  printf '%s' "$best"
}

valid_ntp_servers() {  # names or addresses separated by spaces, as timesyncd.conf's NTP= takes them
  [[ "$1" =~ ^[A-Za-z0-9.:_-]+([[:space:]]+[A-Za-z0-9.:_-]+)*$ ]]
}

step_clock() {
  say "clock: time from ${CFG_NTP_SERVER:-the NTP servers of the image}; time-sync.target means synchronised"
  local -a sysctl=(systemctl)
  if ! running_here; then sysctl=(systemctl --root="$ROOT"); fi
  local before=${#CHANGES[@]}
  if [[ -n "${CFG_NTP_SERVER:-}" ]]; then
    valid_ntp_servers "$CFG_NTP_SERVER" \
      || die "ntp_server \"$CFG_NTP_SERVER\": give host names or addresses separated by spaces"
    printf '# Written by provision.sh from [provision] ntp_server.\n[Time]\nNTP=%s\n' "$CFG_NTP_SERVER" > "$WORK/timesyncd.conf"
    put "$WORK/timesyncd.conf" "$TIMESYNCD_DROPIN" 0644
  elif [[ -f "$(at "$TIMESYNCD_DROPIN")" ]]; then
    rm -f "$(at "$TIMESYNCD_DROPIN")"
    changed "$TIMESYNCD_DROPIN removed (no ntp_server: the image's servers)"
  else
    unchanged "NTP servers: the image's"
  fi
  if running_here && [[ ${#CHANGES[@]} -gt $before ]]; then
    systemctl try-restart systemd-timesyncd.service || say "  (systemd-timesyncd did not restart: it reads the change at the next boot)"
  fi
  {
    printf '# Written by provision.sh (provision/steps/clock.sh): on a site without a time server every unit after\n'
    printf '# time-sync.target would wait for ever; after this the box goes on with its saved time.\n'
    printf '[Service]\nTimeoutStartSec=%s\n' "$CLOCK_BOOT_WAIT"
  } > "$WORK/time-wait-sync.conf"
  put "$WORK/time-wait-sync.conf" "$TIME_WAIT_DROPIN" 0644
  if [[ "$("${sysctl[@]}" is-enabled systemd-time-wait-sync.service 2>/dev/null || true)" == enabled ]]; then
    unchanged "enabled systemd-time-wait-sync.service"
  elif [[ -f "$(at /lib/systemd/system/systemd-time-wait-sync.service)" \
          || -f "$(at /usr/lib/systemd/system/systemd-time-wait-sync.service)" ]]; then
    "${sysctl[@]}" enable --quiet systemd-time-wait-sync.service
    changed "enabled systemd-time-wait-sync.service (time-sync.target waits for a synchronised clock)"
  else
    say "  no systemd-time-wait-sync.service on this system: time-sync.target does not wait for the clock"
  fi
  if running_here && command -v fake-hwclock >/dev/null 2>&1 && clock_synchronised; then
    fake-hwclock save && unchanged "fake-hwclock saved $(date -u '+%F %T') UTC for the next boot"
  fi
}

# Before apt: wait until the clock is synchronised. A saved time is sane but may be older than the package lists,
# which apt then refuses as "not valid yet". When no time server answers within CLOCK_WAIT_SECONDS (NTP blocked,
# no internet) and the clock holds a saved time after CLOCK_EARLIEST, go on and tell apt not to check the lists'
# dates (APT_CLOCK_OPTS; the signatures are still checked). With neither, fail: the first-boot unit tries again.
wait_for_clock() {
  APT_CLOCK_OPTS=()
  if clock_synchronised; then return 0; fi
  say "  waiting for the clock to be synchronised (it says $(date '+%F %T'); time from ${CFG_NTP_SERVER:-the NTP servers of the image})"
  local waited=0
  while ! clock_synchronised && [[ $waited -lt $CLOCK_WAIT_SECONDS ]]; do
    sleep "$CLOCK_POLL_SECONDS"
    waited=$((waited + CLOCK_POLL_SECONDS))
  done
  if clock_synchronised; then say "  clock synchronised: $(date '+%F %T')"; return 0; fi
  local now saved earliest
  now=$(date +%s)
  saved=$(saved_clock_epoch)
  earliest=$(date -u -d "$CLOCK_EARLIEST" +%s)
  if [[ -n "$saved" && "$saved" -ge "$earliest" && "$now" -ge "$saved" ]]; then
    say "  no time server answered in ${CLOCK_WAIT_SECONDS}s: going on with the saved time ($(date '+%F %T')); apt does not check the package lists' dates"
    # shellcheck disable=SC2034  # read by step_packages in provision.sh
    APT_CLOCK_OPTS=(-o Acquire::Check-Date=false)
    return 0
  fi
  die "the clock is not synchronised (it says $(date '+%F %T')) and no saved time after $CLOCK_EARLIEST: connect the box to the internet, set [provision] ntp_server to a time server on this network, or set the time with timedatectl set-time"
}
