#!/usr/bin/env bash
# The operator console's browser tests, start to finish: installs what they need
# (.venv with Playwright, Debian's Chromium, axe-core), starts a make dev stack of its own
# (scripts/dev.sh: emulator, localstripe and the API on free loopback ports), runs
# console/tests/ with pytest in headless Chromium, stops the stack, and exits with the
# tests' status. Screenshots of every screen go to $CARGO_TARGET_DIR/console-screenshots/
# (target/console-screenshots/ without it).
#
# Env: CARGO_TARGET_DIR; CONSOLE_TEST_ARGS (extra pytest arguments, e.g. -k webhooks).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="$root/.venv/bin/python"
say() { printf 'console-test: %s\n' "$*" >&2; }

bash scripts/bootstrap.sh
bash scripts/browser.sh

free_port() {
  "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

target="${CARGO_TARGET_DIR:-$root/target}"
screenshots="$target/console-screenshots"
mkdir -p "$screenshots"
work="$(mktemp -d "${TMPDIR:-/tmp}/orders-console-test.XXXXXX")"
dev_pid=""

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [[ -n "$dev_pid" ]] && kill -0 "$dev_pid" 2>/dev/null; then
    # dev.sh's own trap stops the API, localstripe and the emulator it started.
    kill -TERM "$dev_pid" 2>/dev/null || true
    for _ in $(seq 300); do kill -0 "$dev_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$dev_pid" 2>/dev/null || true
  fi
  wait 2>/dev/null || true
  if [[ $status -ne 0 && -f "$work/dev.log" ]]; then
    say "the stack's log (last lines):"
    tail -n 30 "$work/dev.log" >&2 || true
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Built first, so that the stack's start below is quick (dev.sh runs `cargo run`).
cargo build -q -p orders-dev

port="$(free_port)"
env -u AWS_ENDPOINT_URL -u STRIPE_API_BASE \
  PORT="$port" MOTO_PORT="$(free_port)" STRIPE_PORT="$(free_port)" \
  bash scripts/dev.sh </dev/null >"$work/dev.log" 2>&1 &
dev_pid=$!
say "stack starting on 127.0.0.1:$port (scripts/dev.sh, pid $dev_pid)"

# Ready: the API answers, and localstripe knows where to send its payment events.
deadline=$((SECONDS + 300))
until grep -q 'localstripe sends payment_intent' "$work/dev.log" 2>/dev/null \
  && curl -fsS -o /dev/null "http://127.0.0.1:$port/health" 2>/dev/null; do
  if ! kill -0 "$dev_pid" 2>/dev/null; then say "error: the stack exited before it was ready"; exit 1; fi
  if ((SECONDS > deadline)); then say "error: the stack was not ready within 300 s"; exit 1; fi
  sleep 0.5
done

token() { sed -n "s/^  export $1=\([^ ]*\).*/\1/p" "$work/dev.log" | head -n 1; }
export CONSOLE_BASE_URL="http://127.0.0.1:$port"
export ADMIN_TOKEN="$(token ADMIN_TOKEN)"
export CUSTOMER_TOKEN="$(token TOKEN)"
export FULFILL_TOKEN="$(token FULFILL_TOKEN)"
export AWS_ENDPOINT_URL="$(sed -n 's/^dev: emulator (moto) on \([^,]*\), pid.*/\1/p' "$work/dev.log" | head -n 1)"
export STRIPE_API_BASE="$(sed -n 's/^dev: Stripe stand-in (localstripe) on \([^,]*\), pid.*/\1/p' "$work/dev.log" | head -n 1)"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
export CONSOLE_SCREENSHOTS="$screenshots"
export AXE_JS="$root/.cache/console/node_modules/axe-core/axe.min.js"
if [[ -z "$ADMIN_TOKEN" || -z "$AWS_ENDPOINT_URL" || -z "$STRIPE_API_BASE" ]]; then
  say "error: could not read the tokens or the emulator's address from the stack's log"
  exit 1
fi

status=0
# shellcheck disable=SC2086
"$python" -m pytest -p no:cacheprovider -q console/tests ${CONSOLE_TEST_ARGS:-} || status=$?
say "screenshots in $screenshots"
exit "$status"
