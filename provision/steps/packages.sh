# shellcheck shell=bash
# Debian packages with no network, for step_packages (provision.sh). Sourced by provision/provision.sh.
#
# A box must finish its first boot with the cable unplugged. Three ways, said in the output:
# - the card's packages: provision/wheelhouse.sh --debs (provision/debs.sh) puts every .deb of PACKAGES and their
#   dependencies, with a Packages index, in WHEELHOUSE/debs; on the card that is tablebox/wheels/debs. apt uses
#   that folder as its only repository ([trusted=yes]: the files were checked against Debian's signed Release
#   when they were downloaded, and the card is trusted as its wheels are), with private package lists, so it
#   installs only what the box lacks, and never touches the network or the image's own lists;
# - the network: apt-get update and install, as before;
# - neither: the packages Tablebox cannot run without (everything not in PACKAGES_LATER) stop provisioning with
#   what to do; the others are skipped, said, and named again in the summary (the box takes orders without
#   them: the kitchen console, the sqlite3 shell, fake-hwclock and the system pip can come later).

# Packages the box can take orders without: installed later with `provision.sh step packages`.
PACKAGES_LATER=(python3-pip fbterm fonts-wqy-microhei sqlite3 fake-hwclock)
declare -a PACKAGES_SKIPPED=()  # set by packages_offline; read by step_summary
OS_RELEASE=${TABLEBOX_OS_RELEASE:-/etc/os-release}

# debs_dir: the card's (or --wheelhouse's) debs/ folder when it is for this Debian and CPU, else nothing.
debs_dir() {
  local wheels dir suite arch want_suite want_arch
  wheels=$(find_wheelhouse)
  dir=${wheels:+$wheels/debs}
  [[ -n "$dir" && -f "$dir/Packages" && -f "$dir/debs.json" ]] || return 0
  suite=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["suite"])' "$dir/debs.json")
  arch=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["arch"])' "$dir/debs.json")
  want_suite=$(sed -n 's/^VERSION_CODENAME=//p' "$OS_RELEASE" 2>/dev/null | tr -d '"')
  want_arch=$(dpkg --print-architecture)
  if [[ "$suite" != "$want_suite" || "$arch" != "$want_arch" ]]; then
    say "  $dir holds packages for $suite $arch; this box is ${want_suite:-unknown} $want_arch: not used" >&2  # stdout is the answer
    return 0
  fi
  printf '%s\n' "$dir"
}

# install_debs DIR PACKAGE...: apt with DIR as its only repository and lists of its own (no network).
install_debs() {
  local dir=$1 apt_dir rc=0
  shift
  apt_dir=$(mktemp -d)
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/empty"
  printf 'deb [trusted=yes] file:%s ./\n' "$dir" > "$apt_dir/sources.list"
  local -a opts=(-o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o "Dir::Etc::sourceparts=$apt_dir/empty"
                 -o "Dir::State::Lists=$apt_dir/lists" -o "APT::Get::List-Cleanup=false")
  apt-get "${opts[@]}" update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get "${opts[@]}" install -y -qq --no-install-recommends "$@" \
    || rc=$?
  rm -rf "$apt_dir"
  return "$rc"
}

# A route out: with none (cable unplugged, no Wi-Fi), apt is not tried and the clock is not waited for.
network_up() {
  [[ -n "$(ip -4 route show default 2>/dev/null)$(ip -6 route show default 2>/dev/null)" ]]
}

# packages_offline PACKAGE...: no network and no packages on the card: stop for the essential, skip the rest.
packages_offline() {
  local -a essential=() later=()
  local pkg
  for pkg in "$@"; do
    if [[ " ${PACKAGES_LATER[*]} " == *" $pkg "* ]]; then later+=("$pkg"); else essential+=("$pkg"); fi
  done
  if [[ ${#essential[@]} -gt 0 ]]; then
    die "cannot install ${essential[*]} (Tablebox needs them): no network (or apt failed, see above) and no Debian packages on the card. Plug in the network cable (or set up Wi-Fi) and run provision.sh again, or flash the card with a wheelhouse made by provision/wheelhouse.sh --debs"
  fi
  # shellcheck disable=SC2034  # read by step_summary in provision.sh
  PACKAGES_SKIPPED=("${later[@]}")
  say "  no network and no Debian packages on the card: skipped ${later[*]} (orders work without them; see the summary)"
}
