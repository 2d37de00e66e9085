#!/usr/bin/env bash
# What the console's browser tests need besides .venv (scripts/bootstrap.sh puts the
# pinned Playwright there): Debian's Chromium (Playwright's own browser download is not
# used) and axe-core from npm, pinned, in the gitignored .cache/console/. Idempotent:
# installs only what is missing. Prints nothing when everything is there.
#
# Env: CHROMIUM (default /usr/bin/chromium).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
chromium="${CHROMIUM:-/usr/bin/chromium}"
# The accessibility engine the tests inject into the page (console/tests/conftest.py).
AXE_VERSION=4.14.1
axe_dir="$root/.cache/console"

say() { printf 'browser: %s\n' "$*" >&2; }

if [[ ! -x "$chromium" ]]; then
  if [[ "$(id -u)" != 0 ]] && ! command -v sudo >/dev/null 2>&1; then
    say "error: $chromium is missing and this user cannot install it; run: apt-get install chromium"
    exit 1
  fi
  sudo_cmd=()
  [[ "$(id -u)" == 0 ]] || sudo_cmd=(sudo)
  say "installing Debian's chromium (apt-get)"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq chromium >/dev/null
fi

axe="$axe_dir/node_modules/axe-core/axe.min.js"
installed=""
if [[ -f "$axe_dir/node_modules/axe-core/package.json" ]]; then
  installed="$(node -p "require('$axe_dir/node_modules/axe-core/package.json').version" 2>/dev/null || true)"
fi
if [[ "$installed" != "$AXE_VERSION" || ! -f "$axe" ]]; then
  command -v npm >/dev/null 2>&1 || { say "error: npm is needed to install axe-core"; exit 1; }
  say "installing axe-core@$AXE_VERSION into .cache/console (npm)"
  mkdir -p "$axe_dir"
  npm install --silent --prefix "$axe_dir" --no-save --no-package-lock --no-audit --no-fund \
    "axe-core@$AXE_VERSION" >&2
fi
