#!/usr/bin/env bash
# Make provision/requirements.lock: the exact version and sha256 hashes of every package a box installs.
#
#   provision/lock.sh            after changing [project] dependencies in pyproject.toml (needs the package index)
#
# uv resolves once for every platform and Python the box runs (--universal: Bookworm's 3.11 and Trixie's 3.13,
# aarch64 and x86_64) and writes every file's hash, so `pip install --require-hashes` refuses anything else.
# Left out on purpose: polyfactory and faker, which litestar lists but imports only to invent OpenAPI examples
# (create_examples, off in Tablebox); the box installs the lock with --no-deps, so they never land on the card.
# tests/provision/test_lock.py checks the lock still matches pyproject.toml (offline, every CI run).
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-.venv/bin/uv}
[[ -x "$UV" ]] || { echo "lock: no uv at $UV: .venv/bin/pip install uv" >&2; exit 1; }
"$UV" pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes \
  --no-emit-package polyfactory --no-emit-package faker \
  --custom-compile-command provision/lock.sh --quiet -o provision/requirements.lock
echo "provision/requirements.lock: $(grep -c '^[a-z0-9]' provision/requirements.lock) packages"
