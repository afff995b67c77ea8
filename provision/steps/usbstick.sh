# shellcheck shell=bash disable=SC2153  # PROVISION_DIR, SYSTEMCTL... are provision.sh's
# Step usbstick (sourced by provision.sh): the backup USB stick. A FAT32 or exFAT stick labelled TABLEBOX is
# mounted at /media/tablebox, owned by the tablebox user, whenever it is plugged in (udev's SYSTEMD_WANTS=
# starts systemd/media-tablebox.mount), and `tablebox backup` copies every backup there (backup_usb_dir's
# default). Why those mount options, and why no .automount: systemd/media-tablebox.mount.

step_usbstick() {
  say "usbstick: a stick labelled TABLEBOX is mounted at /media/tablebox for backups"
  put "$PROVISION_DIR/udev/99-tablebox-usb.rules" /etc/udev/rules.d/99-tablebox-usb.rules 0644
  put "$PROVISION_DIR/../systemd/media-tablebox.mount" /etc/systemd/system/media-tablebox.mount 0644
  if running_here && [[ "${CHANGES[*]}" == *media-tablebox.mount* || "${CHANGES[*]}" == *99-tablebox-usb.rules* ]]; then
    # a stick already plugged in is mounted now, not at the next boot
    { "$SYSTEMCTL" daemon-reload && udevadm control --reload-rules \
      && udevadm trigger --subsystem-match=block --action=add; } \
      || say "  (udev or systemd not running: the stick is mounted from the next boot)"
  fi
}
