# shellcheck shell=bash disable=SC2153  # ROOT is provision.sh's
# Technician access (sourced by provision.sh; no step of its own): who can sign in to this box.

# technician_accounts: the people's accounts (uid 1000-59999, a login shell) that can sign in: a usable password
# hash in /etc/shadow (not empty, not locked with ! or *) or a public key in ~/.ssh/authorized_keys. Names, one a line.
technician_accounts() {
  local name uid home shell hash
  while IFS=: read -r name _ uid _ _ home shell; do
    if ! [[ "$uid" =~ ^[0-9]+$ ]] || (( uid < 1000 || uid >= 60000 )); then continue; fi
    if [[ "$shell" == */nologin || "$shell" == */false || -z "$shell" ]]; then continue; fi
    hash=$(awk -F: -v n="$name" '$1 == n { print $2 }' "$(at /etc/shadow)" 2>/dev/null || true)
    if [[ -n "$hash" && "$hash" != '!'* && "$hash" != '*'* ]] \
       || grep -qE '^(ssh-|ecdsa-|sk-)' "$(at "$home")/.ssh/authorized_keys" 2>/dev/null; then
      printf '%s\n' "$name"
    fi
  done < "$(at /etc/passwd)"
  return 0
}
