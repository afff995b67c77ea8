#!/usr/bin/env bash
# Make a wheelhouse: every wheel a box needs to install Tablebox with no network, for one Python and one CPU.
#
#   provision/wheelhouse.sh [--python 3.11|3.13] [--arch aarch64|x86_64] [--debs] --out DIR
#
#   --python   the image's Python: 3.11 on Raspberry Pi OS Bookworm (the default), 3.13 on Trixie
#   --arch     aarch64 for a Raspberry Pi with the 64-bit image (the default), x86_64 for a PC box
#   --debs     also DIR/debs: provision.sh's Debian packages for that image (provision/debs.sh), so the box's
#              first boot needs no network at all (Bookworm for 3.11, Trixie for 3.13)
#   --out DIR  where the wheels go (made when missing; wheels already there are kept)
#
# Run on the technician's laptop (any CPU: pip downloads the box's wheels, it does not build them). DIR then holds
# the pinned wheels of provision/requirements.lock (checked against its sha256 hashes), Tablebox's own wheel, a
# copy of the lock and wheelhouse.json. Give DIR to flash.sh --wheelhouse (first boot installs from the card) or to
# provision.sh update --from DIR (an update). Needs the package index once, here; the box never does.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
PY=3.11
ARCH=aarch64
OUT=""
DEBS=0
die() { printf 'wheelhouse: %s\n' "$*" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --python) PY=${2:?--python needs 3.11 or 3.13}; shift 2 ;;
    --arch) ARCH=${2:?--arch needs aarch64 or x86_64}; shift 2 ;;
    --out) OUT=${2:?--out needs a folder}; shift 2 ;;
    --debs) DEBS=1; shift ;;
    -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[[ -n "$OUT" ]] || die "give --out DIR (see --help)"
[[ "$PY" =~ ^3\.(1[1-9])$ ]] || die "--python $PY: give 3.11 (Bookworm) or 3.13 (Trixie)"
case "$ARCH" in aarch64|x86_64) ;; *) die "--arch $ARCH: give aarch64 or x86_64" ;; esac
LOCK=$HERE/requirements.lock
[[ -f "$LOCK" ]] || die "no $LOCK: run provision/lock.sh"
PYTHON=${PYTHON:-python3}
abi="cp${PY/./}"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
echo "wheelhouse: $(grep -c '^[a-z0-9]' "$LOCK") pinned packages for Python $PY on $ARCH into $OUT" >&2
# manylinux_2_17 / 2_28 cover glibc 2.36 (Bookworm) and 2.41 (Trixie); linux_$ARCH for pure-Python builds.
"$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes --only-binary=:all: \
  --platform "manylinux_2_17_$ARCH" --platform "manylinux2014_$ARCH" --platform "manylinux_2_28_$ARCH" \
  --platform "manylinux_2_34_$ARCH" --platform "linux_$ARCH" \
  --python-version "$PY" --implementation cp --abi "$abi" --abi abi3 --abi none \
  -r "$LOCK" -d "$OUT"
echo "wheelhouse: building Tablebox's own wheel" >&2
rm -f "$OUT"/tablebox-*.whl
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
# From a clean copy of the source: what git tracks (or the folder, minus the developer's leftovers).
if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$REPO" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) | tar -C "$build" -xf -
else
  tar -C "$REPO" --exclude=.venv --exclude=.git --exclude='*.egg-info' --exclude=__pycache__ -cf - . | tar -C "$build" -xf -
fi
"$PYTHON" -m pip wheel --quiet --disable-pip-version-check --no-deps -w "$OUT" "$build" >&2
cp "$LOCK" "$OUT/requirements.lock"
wheel=$(basename "$(ls "$OUT"/tablebox-*.whl)")
version=${wheel#tablebox-}; version=${version%%-*}
lock_sha=$(sha256sum "$LOCK" | cut -d' ' -f1)
printf '{"python": "%s", "arch": "%s", "version": "%s", "lock_sha256": "%s", "wheel": "%s"}\n' \
  "$PY" "$ARCH" "$version" "$lock_sha" "$wheel" > "$OUT/wheelhouse.json"
if [[ "$DEBS" == 1 ]]; then
  suite=bookworm; if [[ "$PY" != 3.11 ]]; then suite=trixie; fi
  deb_arch=arm64; if [[ "$ARCH" == x86_64 ]]; then deb_arch=amd64; fi
  "$HERE/debs.sh" --suite "$suite" --arch "$deb_arch" --out "$OUT/debs" >/dev/null
fi
echo "wheelhouse: $(find "$OUT" -name '*.whl' | wc -l) wheels, $(du -sh "$OUT" | cut -f1), Tablebox $version" >&2
echo "$OUT"
