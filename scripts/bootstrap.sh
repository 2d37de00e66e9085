#!/usr/bin/env bash
# Creates the project-local virtualenv (.venv) and installs requirements-dev.txt into it.
#
# Idempotent and fast when nothing changed: the sha256 of requirements-dev.txt (and the
# interpreter version) is stamped into .venv after a successful install, and a matching
# stamp means there is nothing to do. Needs only python3 (with the venv module).
#
# Env: PYTHON (interpreter used to create the venv, default python3).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
req="$root/requirements-dev.txt"
stamp="$venv/.requirements-dev.sha256"
python="${PYTHON:-python3}"

log() { printf 'bootstrap: %s\n' "$*" >&2; }

fingerprint() {
  # Content of the requirements + the venv's interpreter version: a changed file or a
  # venv recreated on another Python both trigger a reinstall.
  "$venv/bin/python" - "$req" <<'PY'
import hashlib, sys
with open(sys.argv[1], "rb") as f:
    digest = hashlib.sha256(f.read()).hexdigest()
print(f"{digest} python{sys.version_info[0]}.{sys.version_info[1]}")
PY
}

up_to_date() {
  [[ -x "$venv/bin/python" && -f "$stamp" ]] || return 1
  [[ "$(cat "$stamp")" == "$(fingerprint 2>/dev/null)" ]]
}

# Fast path, no lock: nothing to do.
if up_to_date; then
  exit 0
fi

# `make dev` and `make test` may bootstrap at the same time: serialise the slow path.
mkdir -p "$venv"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$venv/.bootstrap.lock"
  flock 9
  if up_to_date; then
    exit 0
  fi
fi

if ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
  command -v "$python" >/dev/null 2>&1 || {
    log "error: '$python' not found; install Python 3 (3.9+) or set PYTHON=/path/to/python3"
    exit 1
  }
  log "creating virtualenv in $venv"
  "$python" -m venv "$venv" || {
    log "error: '$python -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)"
    exit 1
  }
fi

log "installing $(basename "$req") into .venv (once per change of that file)"
rm -f "$stamp"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
fingerprint >"$stamp"
log "done"
