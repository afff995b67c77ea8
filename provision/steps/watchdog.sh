# shellcheck shell=bash
# Step `watchdog`: the Pi's hardware watchdog, fed by systemd. Sourced by provision/provision.sh.
#
# RuntimeWatchdogSec= makes systemd (PID 1) open /dev/watchdog0 and ping it every half of that time; a kernel or
# PID 1 that hangs stops the pings and the chip resets the board. The limit is the chip's: the bcm2835 watchdog
# (Pi 1-5; Linux drivers/watchdog/bcm2835_wdt.c) counts 16-bit fractions of a second in a 20-bit register, so
# max_timeout = WDOG_TICKS_TO_SECS(PM_WDOG_TIME_SET) = 0xfffff >> 16 = 15 s. A longer value is refused by the
# driver core (WDIOC_SETTIMEOUT: EINVAL) and systemd then closes the device ("Failed to set watchdog hardware
# timeout", src/shared/watchdog.c): the watchdog would silently stay off. 14 s stays under the limit.
# RebootWatchdogSec= arms the same watchdog during a reboot: a reboot that hangs (a stuck SD card, a driver)
# still ends in a reset, after 2 minutes instead of the default 10.
# The services themselves are watched by their own WatchdogSec= (systemd/*.service); tablebox-web.service's
# StartLimitAction=reboot reboots the box when the web server cannot stay up (10 starts in 10 minutes).
WATCHDOG_CONF=/etc/systemd/system.conf.d/tablebox.conf
WATCHDOG_RUNTIME=14s
WATCHDOG_REBOOT=2min

step_watchdog() {
  say "watchdog: the hardware watchdog fed by systemd (${WATCHDOG_RUNTIME}; the bcm2835 allows 15 s at most)"
  {
    printf '# Written by provision.sh (provision/steps/watchdog.sh says why these values).\n'
    printf '[Manager]\nRuntimeWatchdogSec=%s\nRebootWatchdogSec=%s\n' "$WATCHDOG_RUNTIME" "$WATCHDOG_REBOOT"
  } > "$WORK/watchdog.conf"
  local before=${#CHANGES[@]}
  put "$WORK/watchdog.conf" "$WATCHDOG_CONF" 0644
  if running_here; then
    if [[ ! -e /dev/watchdog0 && ! -e /dev/watchdog ]]; then
      say "  no /dev/watchdog0 on this machine: the setting waits for a board that has one"
    elif [[ ${#CHANGES[@]} -gt $before ]]; then
      systemctl daemon-reexec && say "  systemd re-read its settings: the watchdog runs now"
    fi
  fi
}
