# shellcheck shell=bash disable=SC2153  # VENV, ROOT, WORK... are provision.sh's
# Releases (sourced by provision.sh): each release of Tablebox in its own folder, the running one named by a symlink.
#
#   /opt/tablebox/releases/<id>/venv          the release's virtualenv (installed once, never pip'd over)
#   /opt/tablebox/releases/<id>/release.json  written last: a release without it is unfinished and is made again
#   /opt/tablebox/venv -> releases/<id>/venv  what every unit runs; switched with one rename (atomic)
#   /opt/tablebox/previous -> releases/<id>   the release `provision.sh rollback` goes back to
#
# <id> is the version and 12 hex digits of the hash of what was installed, so two builds of one version differ.
# An install that fails half-way leaves the running release untouched: only the symlink switch makes a release live.

HEALTH_TIMEOUT=${TABLEBOX_HEALTH_TIMEOUT:-90}  # seconds for the web server to answer and the print worker to stay up
HEALTH_SETTLE=${TABLEBOX_HEALTH_SETTLE:-5}     # the print worker must still be active this long after the web answers
UPDATE_UNITS=(tablebox-web.service tablebox-printd.service tablebox-syncd.service tablebox-console.service)

# The wheelhouse to install from: --wheelhouse DIR, else one flash.sh put on the card; empty for none.
find_wheelhouse() {
  local dir
  for dir in "$WHEELHOUSE" "$(at /boot/firmware/tablebox/wheels)" "$(at /boot/tablebox/wheels)"; do
    [[ -n "$dir" ]] || continue
    if [[ -f "$dir/wheelhouse.json" ]]; then printf '%s\n' "$dir"; return; fi
    if [[ "$dir" == "$WHEELHOUSE" ]]; then die "$dir is not a wheelhouse (no wheelhouse.json): make one with provision/wheelhouse.sh"; fi
  done
}

wheelhouse_field() {  # wheelhouse_field DIR KEY
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1/wheelhouse.json" "$2"
}

# release_id [WHEELHOUSE]: version-hash of a wheelhouse (its wheel and lock), or of the staged source.
release_id() {
  local wheels=${1:-} version hash
  if [[ -n "$wheels" ]]; then
    version=$(wheelhouse_field "$wheels" version)
    hash=$(cat "$wheels/$(wheelhouse_field "$wheels" wheel)" "$wheels/requirements.lock" | sha256sum | cut -c1-12)
  else
    version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$WORK/src/pyproject.toml" | head -1)
    hash=$(source_hash | cut -c1-12)
  fi
  printf '%s-%s\n' "${version:-0}" "$hash"
}

# The id of the release the venv symlink names; "legacy" for a venv from before releases; empty for none.
current_release() {
  local link target
  link=$(at "$VENV")
  if [[ -L "$link" ]]; then
    target=$(readlink "$link")
    target=${target%/venv}
    printf '%s\n' "${target##*/}"
  elif [[ -d "$link" ]]; then
    printf 'legacy\n'
  fi
}

previous_release() {
  local link
  link=$(at "$PREFIX/previous")
  if [[ -L "$link" ]]; then basename "$(readlink "$link")"; fi
}

# check_wheelhouse DIR PYTHON MACHINE: refuse wheels made for another Python or CPU than the box's.
check_wheelhouse() {
  local dir=$1 python=$2 machine=$3 want_py want_arch
  want_py=$(wheelhouse_field "$dir" python)
  want_arch=$(wheelhouse_field "$dir" arch)
  [[ "$want_arch" == "$machine" ]] \
    || die "$dir holds wheels for $want_arch, this box is $machine: make one with provision/wheelhouse.sh --arch $machine"
  [[ "$want_py" == "$python" ]] \
    || die "$dir holds wheels for Python $want_py, this box has $python: make one with provision/wheelhouse.sh --python $python"
  [[ -f "$dir/requirements.lock" && -f "$dir/$(wheelhouse_field "$dir" wheel)" ]] \
    || die "$dir is incomplete (no requirements.lock or Tablebox wheel): make it again with provision/wheelhouse.sh"
}

# install_release WHEELHOUSE ID: a new virtualenv in releases/ID. From a wheelhouse nothing is downloaded
# (--no-index, every file checked against the lock's hashes); without one, the lock's versions from the index.
# Under --root with an image that has its own python3, the venv is made by that Python inside the image (under
# qemu for an arm64 image on a PC), so it never holds this machine's CPU's modules.
install_release() {
  local wheels=$1 id=$2 rel venv py wheels_in version
  local -a run=()
  local -a pip=(-m pip install --quiet --disable-pip-version-check --no-deps)
  rel=$(at "$RELEASES/$id")
  venv=$RELEASES/$id/venv  # the path as the box sees it
  py=python3
  wheels_in=$wheels
  if ! running_here && [[ -x "$ROOT/usr/bin/python3" ]]; then
    [[ -n "$wheels" ]] || die "under --root Tablebox is installed with the image's own Python, offline: give --wheelhouse DIR (provision/wheelhouse.sh)"
    run=(chroot "$ROOT")
    py=/usr/bin/python3
    check_wheelhouse "$wheels" "$("${run[@]}" "$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
      "$("${run[@]}" "$py" -c 'import platform; print(platform.machine())')"
    wheels_in=/var/tmp/tablebox-wheels
    rm -rf "$ROOT$wheels_in"
    install -d "$ROOT$wheels_in"
    cp -a "$wheels"/. "$ROOT$wheels_in/"
  elif ! running_here; then
    say "  the folder under --root has no python3 of its own: the venv is made with this machine's Python ($(uname -m))"
    venv=$rel/venv
  elif [[ -n "$wheels" ]]; then
    check_wheelhouse "$wheels" "$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')" "$(uname -m)"
  fi
  rm -rf "$rel"
  install -d -m 0755 "$rel"
  "${run[@]}" "$py" -m venv "$venv"
  if [[ -n "$wheels" ]]; then
    "${run[@]}" "$venv/bin/python" "${pip[@]}" --no-index --find-links "$wheels_in" --require-hashes \
      -r "$wheels_in/requirements.lock"
    "${run[@]}" "$venv/bin/python" "${pip[@]}" --no-index "$wheels_in/$(wheelhouse_field "$wheels" wheel)"
    version=$(wheelhouse_field "$wheels" version)
  elif [[ -f "$WORK/src/provision/requirements.lock" ]]; then
    # shellcheck disable=SC2086  # PROVISION_PIP_ARGS is a list of pip options
    "$venv/bin/python" "${pip[@]}" --require-hashes ${PROVISION_PIP_ARGS:-} -r "$WORK/src/provision/requirements.lock"
    # shellcheck disable=SC2086
    "$venv/bin/python" "${pip[@]}" ${PROVISION_PIP_ARGS:-} "$WORK/src"
    version=${id%-*}
  else  # a source from before the lock file
    # shellcheck disable=SC2086
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check ${PROVISION_PIP_ARGS:-} "$WORK/src"
    version=${id%-*}
  fi
  if [[ ${#run[@]} -gt 0 ]]; then rm -rf "${ROOT:?}$wheels_in"; fi
  if [[ "$venv" == "$rel/venv" ]]; then
    # Scripts name their interpreter by absolute path: point them at where the venv will be on the box. A path
    # over 127 bytes is not a #! line but pip's /bin/sh trampoline (its second and third lines): both are rewritten.
    { grep -rlZ -- "$venv/bin/" "$venv/bin" || true; } | xargs -0 -r sed -i "1,3s|$venv/bin/|$RELEASES/$id/venv/bin/|"
    sed -i "s|$venv|$RELEASES/$id/venv|g" "$venv/bin/activate" "$venv/pyvenv.cfg" 2>/dev/null || true
  fi
  local from=source
  if [[ -n "$wheels" ]]; then from=wheelhouse; fi
  printf '{"id": "%s", "version": "%s", "installed_at": "%s", "from": "%s"}\n' "$id" "$version" "$(date -Is)" \
    "$from" > "$rel/release.json.new"
  mv -f "$rel/release.json.new" "$rel/release.json"
}

# switch_release ID: make releases/ID the running one (one rename); the one it replaces becomes `previous`.
switch_release() {
  local id=$1 link old
  link=$(at "$VENV")
  old=$(current_release)
  if [[ -d "$link" && ! -L "$link" ]]; then
    # A venv from before releases: kept as a release to go back to. Its scripts name /opt/tablebox/venv/bin/python,
    # which is its own again whenever the symlink names it.
    old="legacy-$(date +%Y%m%d%H%M%S)"
    install -d -m 0755 "$(at "$RELEASES/$old")"
    mv "$link" "$(at "$RELEASES/$old/venv")"
    printf '{"id": "%s", "version": "from before releases", "installed_at": null, "from": "legacy"}\n' "$old" \
      > "$(at "$RELEASES/$old/release.json")"
  fi
  ln -sfn "releases/$id/venv" "$link.new"
  mv -Tf "$link.new" "$link"
  if [[ -n "$old" && "$old" != "$id" ]]; then
    ln -sfn "releases/$old" "$(at "$PREFIX/previous.new")"
    mv -Tf "$(at "$PREFIX/previous.new")" "$(at "$PREFIX/previous")"
  fi
}

# Keep the running release and the previous one; older ones only take space on the card.
prune_releases() {
  local keep_now keep_before dir
  keep_now=$(current_release)
  keep_before=$(previous_release)
  for dir in "$(at "$RELEASES")"/*/; do
    dir=${dir%/}
    [[ -d "$dir" ]] || continue
    case "$(basename "$dir")" in "$keep_now"|"$keep_before") ;; *) rm -rf "$dir"; say "  removed the old release $(basename "$dir")" ;; esac
  done
}

# as_service CMD...: run a tablebox command as the service user (files stay its own).
as_service() {
  if [[ "$(id -un)" == "$SERVICE_USER" ]]; then "$@"; else runuser -u "$SERVICE_USER" -- "$@"; fi
}

tablebox_cmd() { as_service "$VENV/bin/tablebox" --data-dir "$DATA" --config "$ETC/tablebox.toml" "$@"; }

box_port() {
  python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb")).get("port", 8080))' "$ETC/tablebox.toml" \
    2>/dev/null || echo 8080
}

# Where the web server can be asked: 127.0.0.1 when it listens on every address, else the one it listens on.
box_host() {
  python3 -c '
import sys, tomllib
host = str(tomllib.load(open(sys.argv[1], "rb")).get("host", "0.0.0.0"))
print("127.0.0.1" if host in ("", "0.0.0.0", "::") else ("[%s]" % host if ":" in host else host))' "$ETC/tablebox.toml" \
    2>/dev/null || echo 127.0.0.1
}

# The units that run now, to start again after the switch (syncd and the console only where they ran).
ACTIVE_UNITS=()
stop_services() {
  local unit
  ACTIVE_UNITS=()
  for unit in "${UPDATE_UNITS[@]}"; do
    if [[ "$("$SYSTEMCTL" is-active "$unit" 2>/dev/null || true)" == active ]]; then ACTIVE_UNITS+=("$unit"); fi
  done
  "$SYSTEMCTL" stop "${UPDATE_UNITS[@]}" || true
}

start_services() {
  local -a units=("${ACTIVE_UNITS[@]}")
  # The web server and the print worker always: a box whose units were down comes back taking orders.
  [[ " ${units[*]} " == *" tablebox-web.service "* ]] || units+=(tablebox-web.service)
  [[ " ${units[*]} " == *" tablebox-printd.service "* ]] || units+=(tablebox-printd.service)
  "$SYSTEMCTL" start "${units[@]}"
}

# health_check: the web server answers /healthz with 200 and the print worker is active, and still is a little later.
health_check() {
  local port host deadline
  port=$(box_port)
  host=$(box_host)
  deadline=$((SECONDS + HEALTH_TIMEOUT))
  until python3 - "$host" "$port" <<'PY'
import sys, urllib.request
try:
    with urllib.request.urlopen(f"http://{sys.argv[1]}:{sys.argv[2]}/healthz", timeout=3) as answer:
        sys.exit(0 if answer.status == 200 else 1)
except Exception:
    sys.exit(1)
PY
  do
    if (( SECONDS >= deadline )); then say "  the web server did not answer http://$host:$port/healthz within ${HEALTH_TIMEOUT} s"; return 1; fi
    # Between automatic restarts systemd says "activating"; "failed" or "inactive" means it gave up (a refused
    # start, exit 2, or the start limit): no answer will come, so do not wait out the timeout.
    case "$("$SYSTEMCTL" is-active tablebox-web.service 2>/dev/null || true)" in
      failed|inactive) say "  the web server is not running (systemctl is-active: stopped or failed)"; return 1 ;;
    esac
    sleep 1
  done
  say "  web: /healthz answers"
  sleep "$HEALTH_SETTLE"
  if [[ "$("$SYSTEMCTL" is-active tablebox-printd.service 2>/dev/null || true)" != active ]]; then
    say "  the print worker (tablebox-printd) is not running"
    return 1
  fi
  say "  print worker: running"
}

make_update_backup() {
  local folder=$DATA/backups/updates line
  install -d -m 0700 "$folder"
  chown "$(id -u "$SERVICE_USER"):$(id -g "$SERVICE_USER")" "$folder" 2>/dev/null || true
  line=$(tablebox_cmd backup --dest "$folder" --keep-daily 30 --keep-weekly 0 | grep '^backup: ') || return 1
  line=${line#backup: }
  printf '%s\n' "${line%% (*}"
}

update_prelude() {
  running_here || die "$COMMAND runs on the box itself, not with --root"
  if [[ $(id -u) -ne 0 && -z "${TABLEBOX_PREFIX:-}" ]]; then die "run as root (sudo $0 $COMMAND ...)"; fi
  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
  # One update or rollback at a time: a second one waits for nothing and says so.
  install -d -m 0755 "$PREFIX"
  exec 9>"$PREFIX/.update.lock"
  flock -n 9 || die "another update or rollback is running (lock $PREFIX/.update.lock): wait for it to finish"
}

# provision.sh update --from WHEELHOUSE
cmd_update() {
  update_prelude
  [[ -n "$WHEELHOUSE" ]] || die "give --from WHEELHOUSE (a folder made by provision/wheelhouse.sh)"
  [[ -f "$WHEELHOUSE/wheelhouse.json" ]] || die "$WHEELHOUSE is not a wheelhouse (no wheelhouse.json)"
  local old new backup
  old=$(current_release)
  [[ -n "$old" ]] || die "no Tablebox at $VENV: provision the box first"
  new=$(release_id "$WHEELHOUSE")
  if [[ "$old" == "$new" ]]; then say "release $new already runs: nothing to do"; return; fi
  say "update: $old -> $new"
  say "1/5 installing release $new beside the running one (orders are still taken)"
  install_release "$WHEELHOUSE" "$new"
  say "2/5 stopping Tablebox"
  stop_services
  say "3/5 backup of the store before the update"
  if ! backup=$(make_update_backup) || [[ ! -f "$backup" ]]; then
    start_services || true
    die "the backup before the update failed (see above): nothing was changed, release $old runs again"
  fi
  say "  $backup"
  printf '%s\n' "$backup" > "$(at "$RELEASES/$new")/backup-before"
  say "4/5 starting release $new (it migrates the store as it starts)"
  switch_release "$new"
  # systemctl start fails when a Type=notify unit exits before READY=1: that is for the health check to judge
  # (and undo), never a reason to stop here with the new release switched in and nothing running.
  start_services || say "  systemctl could not start release $new"
  say "5/5 health"
  if health_check; then
    prune_releases
    say "update done: release $new runs. To go back: provision.sh rollback (release $old and the backup above)"
    return
  fi
  say "release $new is not healthy: going back to release $old and the store as it was before the update"
  go_back "$old" "$backup"
  die "the update failed and was undone: release $old runs (journalctl -u tablebox-web for why)"
}

# The newest migration the store has had, and the newest release ID ships (read from its files, so that a
# release from before `tablebox version` answers too).
store_schema() {
  python3 - "$DATA/store.db" <<'PY' 2>/dev/null || true
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
print(db.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] or 0)
PY
}

release_schema() {
  local file newest=""
  for file in "$(at "$RELEASES/$1")"/venv/lib/python3*/site-packages/appliance/db/migrations/[0-9][0-9][0-9][0-9]_*.sql; do
    [[ -f "$file" ]] || continue
    file=$(basename "$file")
    newest=$((10#${file:0:4}))
  done
  printf '%s\n' "$newest"
}

# go_back ID BACKUP: stop, switch to ID, restore BACKUP, start, check.
go_back() {
  local id=$1 backup=$2 failed
  failed=$(current_release)
  stop_services
  switch_release "$id"
  # The store goes back to the backup only when the release going away migrated it past what ID knows (the
  # schema guard would refuse to start otherwise); when it did not, the store is kept with every order taken since.
  local store_at knows
  store_at=$(store_schema)
  knows=$(release_schema "$id")
  if [[ -n "$store_at" && -n "$knows" ]] && (( store_at > knows )); then
    [[ -n "$backup" && -f "$backup" ]] || die "the store was migrated by release $failed and no backup from before it is here: restore one by hand (tablebox restore FILE)"
    tablebox_cmd restore "$backup" >/dev/null || die "could not restore $backup: restore it by hand (tablebox restore)"
    say "  store restored from $backup (the store it replaced is kept beside it)"
  else
    say "  store kept: release $id reads its schema, so every order taken since stays"
  fi
  rm -f "$(at "$PREFIX/previous")"
  if [[ -n "$failed" && "$failed" != "$id" ]]; then ln -sfn "releases/$failed" "$(at "$PREFIX/previous")"; fi
  start_services || say "  systemctl could not start release $id"
  if health_check; then say "  release $id runs again"; else say "  release $id is not healthy either: tablebox doctor"; fi
}

# provision.sh rollback: back to the previous release, with the store from the backup made before the update.
cmd_rollback() {
  update_prelude
  local now before backup=""
  now=$(current_release)
  before=$(previous_release)
  [[ -n "$before" && -d "$(at "$RELEASES/$before/venv")" ]] || die "no earlier release to go back to (only $now is installed)"
  if [[ -f "$(at "$RELEASES/$now")/backup-before" ]]; then backup=$(cat "$(at "$RELEASES/$now")/backup-before"); fi
  say "rollback: release $now -> $before"
  go_back "$before" "$backup"
}
