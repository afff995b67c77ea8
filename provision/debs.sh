#!/usr/bin/env bash
# Download the Debian packages provision.sh installs (its PACKAGES) and all their dependencies, so a box can
# install them at its first boot with no network.
#
#   provision/debs.sh [--suite bookworm|trixie] [--arch arm64|amd64] --out DIR
#
#   --suite    the image's Debian: bookworm for Raspberry Pi OS Bookworm (the default), trixie for Trixie
#   --arch     arm64 for a Raspberry Pi with the 64-bit image (the default), amd64 for a PC box
#   --out DIR  where the .deb files and their Packages index go (wheelhouse.sh --debs uses WHEELHOUSE/debs)
#
# Runs on the technician's laptop (any Debian or Ubuntu with apt; no root needed for the box's packages): apt
# resolves the packages for that suite and CPU from deb.debian.org with a private state (an empty dpkg status, so
# every dependency is downloaded, also those the image already has) and checks every file against the Release
# file signed by /usr/share/keyrings/debian-archive-keyring.gpg. DIR then holds the .debs and a Packages index:
# provision.sh's step_packages uses DIR as a local apt repository, and apt installs only what the box lacks.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SUITE=bookworm
ARCH=arm64
OUT=""
MIRROR=${DEBS_MIRROR:-http://deb.debian.org/debian}
SECURITY=${DEBS_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
KEYRING=${DEBS_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}
die() { printf 'debs: %s\n' "$*" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --suite) SUITE=${2:?--suite needs bookworm or trixie}; shift 2 ;;
    --arch) ARCH=${2:?--arch needs arm64 or amd64}; shift 2 ;;
    --out) OUT=${2:?--out needs a folder}; shift 2 ;;
    -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[[ -n "$OUT" ]] || die "give --out DIR (see --help)"
case "$SUITE" in bookworm|trixie) ;; *) die "--suite $SUITE: give bookworm or trixie" ;; esac
case "$ARCH" in arm64|amd64) ;; *) die "--arch $ARCH: give arm64 or amd64" ;; esac
command -v apt-get >/dev/null || die "needs apt-get (a Debian or Ubuntu)"
command -v dpkg-deb >/dev/null || die "needs apt-get and dpkg-deb (a Debian or Ubuntu)"
[[ -f "$KEYRING" ]] || die "no $KEYRING: install debian-archive-keyring"

# The one list of packages: provision.sh's PACKAGES (provision.sh can be sourced without running).
mapfile -t packages < <(bash -c 'source "$1" && printf "%s\n" "${PACKAGES[@]}"' _ "$HERE/provision.sh")
[[ ${#packages[@]} -gt 0 ]] || die "no PACKAGES in $HERE/provision.sh"

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
apt_dir=$(mktemp -d)
trap 'rm -rf "$apt_dir"' EXIT
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$apt_dir/empty"
: > "$apt_dir/status"
{
  printf 'deb [arch=%s signed-by=%s] %s %s main\n' "$ARCH" "$KEYRING" "$MIRROR" "$SUITE"
  printf 'deb [arch=%s signed-by=%s] %s %s-updates main\n' "$ARCH" "$KEYRING" "$MIRROR" "$SUITE"
  printf 'deb [arch=%s signed-by=%s] %s %s-security main\n' "$ARCH" "$KEYRING" "$SECURITY" "$SUITE"
} > "$apt_dir/sources.list"
# Wheels already in DIR are kept by wheelhouse.sh; .debs already here are kept too (apt checks their hashes).
cp -n "$OUT"/*.deb "$apt_dir/archives/" 2>/dev/null || true
apt_opts=(
  -o "APT::Architecture=$ARCH" -o "APT::Architectures::=$ARCH"
  -o "Dir::State=$apt_dir" -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::State::status=$apt_dir/status"
  -o "Dir::Cache=$apt_dir" -o "Dir::Cache::archives=$apt_dir/archives"
  -o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o "Dir::Etc::sourceparts=$apt_dir/empty"
  -o "Dir::Etc::preferences=$apt_dir/empty/none" -o "Dir::Etc::preferencesparts=$apt_dir/empty"
  -o "Debug::NoLocking=1" -o "APT::Install-Recommends=0"
)
if [[ $(id -u) -eq 0 ]]; then apt_opts+=(-o "APT::Sandbox::User=root"); fi  # _apt cannot write a mktemp folder
echo "debs: ${#packages[@]} packages and their dependencies for Debian $SUITE $ARCH into $OUT" >&2
apt-get "${apt_opts[@]}" -qq update >&2 || die "apt could not read $MIRROR for $SUITE (network? see above)"
apt-get "${apt_opts[@]}" -qq -y --download-only install "${packages[@]}" >&2 \
  || die "apt could not resolve or download ${packages[*]} for $SUITE $ARCH (see above)"

# Only this run's files: an old version left from an earlier run would be a second candidate.
rm -f "$OUT"/*.deb "$OUT/Packages"
cp "$apt_dir"/archives/*.deb "$OUT/"
# The Packages index of a flat repository (what dpkg-scanpackages writes, with only dpkg-deb and sha256sum).
for deb in "$OUT"/*.deb; do
  dpkg-deb -f "$deb"
  printf 'Filename: ./%s\nSize: %s\nSHA256: %s\n\n' "$(basename "$deb")" "$(stat -c %s "$deb")" \
    "$(sha256sum "$deb" | cut -d' ' -f1)"
done > "$OUT/Packages"
printf '{"suite": "%s", "arch": "%s", "packages": "%s"}\n' "$SUITE" "$ARCH" "${packages[*]}" > "$OUT/debs.json"
echo "debs: $(find "$OUT" -name '*.deb' | wc -l) .deb files, $(du -sh "$OUT" | cut -f1)" >&2
echo "$OUT"
