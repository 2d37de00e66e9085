#!/usr/bin/env bash
# Usage: scripts/shippo_contract.sh [PYTEST-OPTIONS...]
#
# Contract tests of the Shippo stand-in (scripts/shippo_standin.py): tests/shippo/ drives
# it with Shippo's official Python SDK (pinned in requirements-dev.txt) where the SDK
# decodes (shipments, rates, tracks) and validates the rest (transactions, refunds,
# webhook bodies) against JSON Schemas transcribed from Shippo's OpenAPI description
# (tests/shippo/shippo.schema.json). Starts its own stand-in on a free loopback port
# (never the SHIPPO_API_URL of the environment, which may be the real Shippo), runs
# pytest, stops the stand-in, and exits with pytest's status.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="$root/.venv/bin/python"
bash "$root/scripts/bootstrap.sh" # fast no-op when .venv is up to date

workdir="$(mktemp -d "${TMPDIR:-/tmp}/orders-shippo-contract.XXXXXX")"
standin_pid=""
stop() {
  local status=$?
  trap - EXIT INT TERM
  if [[ -n "$standin_pid" ]]; then
    kill -TERM "$standin_pid" 2>/dev/null || true
    wait "$standin_pid" 2>/dev/null || true
  fi
  if [[ $status -eq 0 ]]; then
    rm -rf "$workdir"
  else
    echo "shippo_contract: exit status $status; the stand-in's log is $workdir/shippo.log" >&2
  fi
  exit "$status"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$python" "$root/scripts/shippo_standin.py" --port 0 --ready-file "$workdir/url" \
  --exit-with-parent </dev/null >>"$workdir/shippo.log" 2>&1 &
standin_pid=$!
if ! SHIPPO_STANDIN_URL="$("$python" "$root/scripts/shippo_standin.py" --wait \
  --ready-file "$workdir/url" --pid "$standin_pid" --timeout 30)"; then
  echo "shippo_contract: the Shippo stand-in did not start; its log:" >&2
  tail -n 40 "$workdir/shippo.log" >&2 || true
  exit 1
fi
export SHIPPO_STANDIN_URL
echo "shippo_contract: Shippo stand-in at $SHIPPO_STANDIN_URL (pid $standin_pid)" >&2

cd "$root/tests/shippo"
"$python" -m pytest "$@"
