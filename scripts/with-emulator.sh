#!/usr/bin/env bash
# Usage: scripts/with-emulator.sh CMD [ARGS...]
#
# Runs CMD against a local AWS emulator (and the Stripe stand-in) and exits with CMD's
# status.
#   - AWS_ENDPOINT_URL already set: an emulator is running; just run CMD.
#   - otherwise: start scripts/emulator.py (moto, DynamoDB serialised) on a free loopback
#     port, wait until it answers, export AWS_ENDPOINT_URL, run CMD, and always stop the
#     emulator afterwards (on exit, Ctrl-C or SIGTERM; on SIGKILL it stops by itself).
# Either way, dummy credentials, a region and AWS_EC2_METADATA_DISABLED are exported when
# not already set. Unless STRIPE_API_BASE is set, localstripe (scripts/stripe_standin.py)
# is started on a free port too and STRIPE_API_BASE exported, for the payment tests.
# Unless SHIPPO_API_URL is set, the Shippo stand-in (scripts/shippo_standin.py) is started
# on a free port too and SHIPPO_API_URL exported, with SHIPPO_API_TOKEN,
# SHIPPO_WEBHOOK_TOKEN and SHIPPO_ADDRESS_FROM (the dev values unless set), for the
# shipping tests.
# The emulator log (errors only) is kept and its path printed when CMD fails.
set -euo pipefail

if [[ $# -eq 0 ]]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 64
fi

# Emulator defaults, each only when not set: dummy credentials (unless a profile is in
# use), a region (the Rust SDK reads AWS_REGION, botocore AWS_DEFAULT_REGION), and no
# instance-metadata lookups.
emulator_env_defaults() {
  if [[ -z "${AWS_ACCESS_KEY_ID:-}" && -z "${AWS_PROFILE:-}" ]]; then
    export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
  fi
  export AWS_REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}"
  export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-$AWS_REGION}"
  export AWS_EC2_METADATA_DISABLED="${AWS_EC2_METADATA_DISABLED:-true}"
}

if [[ -n "${AWS_ENDPOINT_URL:-}" ]]; then
  emulator_env_defaults
  exec "$@"
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="$root/.venv/bin/python"
bash "$root/scripts/bootstrap.sh" # fast no-op when .venv is up to date

workdir="$(mktemp -d "${TMPDIR:-/tmp}/orders-emulator.XXXXXX")"
log="$workdir/emulator.log"
emulator_pid=""
stripe_pid=""
shippo_pid=""
status=0

stop_emulator() {
  status=$?
  trap - EXIT INT TERM
  if [[ -n "$stripe_pid" ]]; then
    kill -TERM "$stripe_pid" 2>/dev/null || true
    wait "$stripe_pid" 2>/dev/null || true
  fi
  if [[ -n "$shippo_pid" ]]; then
    kill -TERM "$shippo_pid" 2>/dev/null || true
    wait "$shippo_pid" 2>/dev/null || true
  fi
  if [[ -n "$emulator_pid" ]] && kill -0 "$emulator_pid" 2>/dev/null; then
    kill -TERM "$emulator_pid" 2>/dev/null || true
    # Give it up to 5 s to close, then insist.
    for _ in $(seq 50); do
      kill -0 "$emulator_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$emulator_pid" 2>/dev/null || true
    wait "$emulator_pid" 2>/dev/null || true
  fi
  if [[ $status -eq 0 ]]; then
    rm -rf "$workdir"
  else
    echo "with-emulator: exit status $status; emulator log kept at $log" >&2
  fi
  exit "$status"
}
trap stop_emulator EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Port 0: the emulator binds a free port itself and reports the URL in the ready file,
# so no other process can take the port between choosing and binding it.
"$python" "$root/scripts/emulator.py" --host 127.0.0.1 --port 0 \
  --ready-file "$workdir/url" --log-file "$log" --exit-with-parent \
  </dev/null >>"$log" 2>&1 &
emulator_pid=$!

if ! url="$("$python" "$root/scripts/emulator.py" --wait --ready-file "$workdir/url" \
  --pid "$emulator_pid" --timeout 30)"; then
  echo "with-emulator: the emulator did not start; its log:" >&2
  tail -n 40 "$log" >&2 || true
  exit 1
fi

export AWS_ENDPOINT_URL="$url"
emulator_env_defaults

echo "with-emulator: moto at $AWS_ENDPOINT_URL (pid $emulator_pid)" >&2

if [[ -z "${STRIPE_API_BASE:-}" ]]; then
  "$python" "$root/scripts/stripe_standin.py" --port 0 --ready-file "$workdir/stripe-url" \
    --exit-with-parent </dev/null >>"$workdir/localstripe.log" 2>&1 &
  stripe_pid=$!
  if ! STRIPE_API_BASE="$("$python" "$root/scripts/stripe_standin.py" --wait \
    --ready-file "$workdir/stripe-url" --pid "$stripe_pid" --timeout 30)"; then
    echo "with-emulator: localstripe did not start; its log:" >&2
    tail -n 40 "$workdir/localstripe.log" >&2 || true
    exit 1
  fi
  export STRIPE_API_BASE
  echo "with-emulator: localstripe at $STRIPE_API_BASE (pid $stripe_pid)" >&2
fi

if [[ -z "${SHIPPO_API_URL:-}" ]]; then
  "$python" "$root/scripts/shippo_standin.py" --port 0 --ready-file "$workdir/shippo-url" \
    --exit-with-parent </dev/null >>"$workdir/shippo.log" 2>&1 &
  shippo_pid=$!
  if ! SHIPPO_API_URL="$("$python" "$root/scripts/shippo_standin.py" --wait \
    --ready-file "$workdir/shippo-url" --pid "$shippo_pid" --timeout 30)"; then
    echo "with-emulator: the Shippo stand-in did not start; its log:" >&2
    tail -n 40 "$workdir/shippo.log" >&2 || true
    exit 1
  fi
  export SHIPPO_API_URL
  # The stand-in takes any shippo_test_ token; each test registers its own webhook URL.
  export SHIPPO_API_TOKEN="${SHIPPO_API_TOKEN:-shippo_test_orders_local_dev}"
  export SHIPPO_WEBHOOK_TOKEN="${SHIPPO_WEBHOOK_TOKEN:-orders-local-shippo-webhook}"
  dev_warehouse='{"name": "Orders Warehouse", "street1": "215 Clayton St.", "city": "San Francisco", "state": "CA", "zip": "94117", "country": "US"}'
  export SHIPPO_ADDRESS_FROM="${SHIPPO_ADDRESS_FROM:-$dev_warehouse}"
  echo "with-emulator: Shippo stand-in at $SHIPPO_API_URL (pid $shippo_pid)" >&2
fi
"$@"
