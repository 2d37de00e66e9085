#!/usr/bin/env bash
# `make dev`: the whole stack on this machine, stopped with one Ctrl-C.
#
#   1. bootstrap .venv (moto, pinned) unless it is up to date;
#   2. unless AWS_ENDPOINT_URL is set (an emulator already running), start the emulator
#      (scripts/emulator.py, moto with DynamoDB serialised) on 127.0.0.1:${MOTO_PORT:-4566};
#   3. unless STRIPE_API_BASE is set, start localstripe (scripts/stripe_standin.py) on
#      127.0.0.1:${STRIPE_PORT:-8420}, and once the API answers, register its webhook to
#      the API's POST /api/payments/stripe/webhook (signed with the dev webhook secret);
#   3b. unless SHIPPO_API_URL is set (then that Shippo is used, with SHIPPO_API_TOKEN and
#      SHIPPO_WEBHOOK_TOKEN), start the Shippo stand-in (scripts/shippo_standin.py) on
#      127.0.0.1:${SHIPPO_PORT:-8430} with the dev token, webhook token and warehouse, and
#      once the API answers, point its track_updated webhook at the API's
#      POST /api/shipping/shippo/webhook?token=...; it prints the curl line that moves a
#      parcel to delivered;
#   4. `cargo run -p orders-dev`: provisions what template.yaml declares, seeds the demo
#      data, serves the API on 127.0.0.1:${PORT:-3000} and runs the event pipeline.
#
# Ctrl-C (or SIGTERM) stops the app, then the emulator this script started; nothing is
# left running. Everything the emulator held is gone with it (it is in memory).
#
# Env: AWS_ENDPOINT_URL (use that emulator, start none), MOTO_PORT (default 4566),
#      SHIPPO_API_URL (use that Shippo, start no stand-in), SHIPPO_PORT (default 8430),
#      PORT (API, default 3000), CARGO_TARGET_DIR, plus whatever orders-dev reads.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="$root/.venv/bin/python"

say() { printf 'dev: %s\n' "$*" >&2; }

port_in_use() {
  python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.settimeout(0.5)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)
PY
}

bash "$root/scripts/bootstrap.sh"

api_port="${PORT:-3000}"
if port_in_use "$api_port"; then
  say "error: port $api_port (PORT) is already in use on 127.0.0.1; stop what holds it or run: PORT=<other> make dev"
  exit 1
fi

workdir="$(mktemp -d "${TMPDIR:-/tmp}/orders-dev.XXXXXX")"
emulator_pid=""
stripe_pid=""
shippo_pid=""
app_pid=""

# Stop a background job and everything it started (its process group): FIRST signal to
# the group, up to GRACE seconds for the leader to exit, then SIGTERM and SIGKILL to
# whatever is left in the group (children the leader left behind included).
stop_group() {
  local pid="$1" first="$2" grace="$3"
  [[ -n "$pid" ]] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -"$first" -- "-$pid" 2>/dev/null || kill -"$first" "$pid" 2>/dev/null || true
    local tries=$((grace * 10))
    while ((tries-- > 0)) && kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  if kill -TERM -- "-$pid" 2>/dev/null; then
    sleep 0.5
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM HUP
  if [[ -n "$app_pid" ]]; then
    kill -0 "$app_pid" 2>/dev/null && say "stopping the API"
    stop_group "$app_pid" INT 10 # SIGINT: the app's Ctrl-C path, a graceful shutdown
  fi
  if [[ -n "$stripe_pid" ]]; then
    stop_group "$stripe_pid" TERM 5
  fi
  if [[ -n "$shippo_pid" ]]; then
    stop_group "$shippo_pid" TERM 5
  fi
  if [[ -n "$emulator_pid" ]]; then
    say "stopping the emulator"
    stop_group "$emulator_pid" TERM 5
  fi
  rm -rf "$workdir"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

if [[ -n "${AWS_ENDPOINT_URL:-}" ]]; then
  say "using the emulator at AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL (not starting one)"
else
  moto_port="${MOTO_PORT:-4566}"
  if port_in_use "$moto_port"; then
    say "error: port $moto_port (MOTO_PORT) is already in use on 127.0.0.1."
    say "  If an emulator is running there, use it:  AWS_ENDPOINT_URL=http://127.0.0.1:$moto_port make dev"
    say "  or start a fresh one on another port:    MOTO_PORT=<other> make dev"
    exit 1
  fi
  # Job control on for the background jobs only: each gets its own process group, so the
  # cleanup can stop it with everything it spawned (rustc, the app) and a terminal Ctrl-C
  # reaches this script, which then stops them in order.
  set -m
  "$python" "$root/scripts/emulator.py" --host 127.0.0.1 --port "$moto_port" \
    --ready-file "$workdir/url" --log-file "$workdir/emulator.log" --exit-with-parent \
    </dev/null >>"$workdir/emulator.log" 2>&1 &
  emulator_pid=$!
  set +m
  if ! url="$("$python" "$root/scripts/emulator.py" --wait --ready-file "$workdir/url" \
    --pid "$emulator_pid" --timeout 30)"; then
    say "error: the emulator did not start; its log:"
    tail -n 40 "$workdir/emulator.log" >&2 || true
    exit 1
  fi
  export AWS_ENDPOINT_URL="$url"
  say "emulator (moto) on $AWS_ENDPOINT_URL, pid $emulator_pid"
fi

# Emulator defaults, each only when not set: dummy credentials (unless a profile is in
# use), a region (the Rust SDK reads AWS_REGION, botocore AWS_DEFAULT_REGION), and no
# instance-metadata lookups.
if [[ -z "${AWS_ACCESS_KEY_ID:-}" && -z "${AWS_PROFILE:-}" ]]; then
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
fi
export AWS_REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-$AWS_REGION}"
export AWS_EC2_METADATA_DISABLED="${AWS_EC2_METADATA_DISABLED:-true}"

if [[ -z "${STRIPE_API_BASE:-}" ]]; then
  stripe_port="${STRIPE_PORT:-8420}"
  if port_in_use "$stripe_port"; then
    say "error: port $stripe_port (STRIPE_PORT) is in use; run STRIPE_PORT=<other> make dev"
    exit 1
  fi
  set -m
  "$python" "$root/scripts/stripe_standin.py" --port "$stripe_port" \
    --ready-file "$workdir/stripe-url" --exit-with-parent \
    </dev/null >>"$workdir/localstripe.log" 2>&1 &
  stripe_pid=$!
  set +m
  if ! STRIPE_API_BASE="$("$python" "$root/scripts/stripe_standin.py" --wait \
    --ready-file "$workdir/stripe-url" --pid "$stripe_pid" --timeout 30)"; then
    say "error: localstripe did not start; its log:"
    tail -n 40 "$workdir/localstripe.log" >&2 || true
    exit 1
  fi
  export STRIPE_API_BASE
  say "Stripe stand-in (localstripe) on $STRIPE_API_BASE, pid $stripe_pid"
  # Once the API answers, localstripe is told where to send its signed events.
  webhook_secret="${STRIPE_WEBHOOK_SECRET:-whsec_orders_local_dev}"
  (
    for _ in $(seq 1200); do
      curl -fsS -o /dev/null "http://127.0.0.1:$api_port/health" 2>/dev/null && break
      sleep 0.5
    done
    if curl -fsS -o /dev/null -X POST "$STRIPE_API_BASE/_config/webhooks/orders-dev" \
      -d "url=http://127.0.0.1:$api_port/api/payments/stripe/webhook" \
      -d "secret=$webhook_secret" \
      -d "events[]=payment_intent.succeeded" -d "events[]=payment_intent.payment_failed"; then
      say "localstripe sends payment_intent.succeeded/payment_failed to http://127.0.0.1:$api_port/api/payments/stripe/webhook"
    else
      say "warning: could not register the webhook with localstripe"
    fi
  ) &
fi

if [[ -z "${SHIPPO_API_URL:-}" ]]; then
  shippo_port="${SHIPPO_PORT:-8430}"
  if port_in_use "$shippo_port"; then
    say "error: port $shippo_port (SHIPPO_PORT) is in use; run SHIPPO_PORT=<other> make dev"
    exit 1
  fi
  set -m
  "$python" "$root/scripts/shippo_standin.py" --port "$shippo_port" \
    --ready-file "$workdir/shippo-url" --exit-with-parent \
    </dev/null >>"$workdir/shippo.log" 2>&1 &
  shippo_pid=$!
  set +m
  if ! SHIPPO_API_URL="$("$python" "$root/scripts/shippo_standin.py" --wait \
    --ready-file "$workdir/shippo-url" --pid "$shippo_pid" --timeout 30)"; then
    say "error: the Shippo stand-in did not start; its log:"
    tail -n 40 "$workdir/shippo.log" >&2 || true
    exit 1
  fi
  dev_warehouse='{"name": "Orders Warehouse", "street1": "215 Clayton St.", "city": "San Francisco", "state": "CA", "zip": "94117", "country": "US"}'
  export SHIPPO_API_URL
  export SHIPPO_API_TOKEN="${SHIPPO_API_TOKEN:-shippo_test_orders_local_dev}"
  export SHIPPO_WEBHOOK_TOKEN="${SHIPPO_WEBHOOK_TOKEN:-orders-local-shippo-webhook}"
  export SHIPPO_ADDRESS_FROM="${SHIPPO_ADDRESS_FROM:-$dev_warehouse}"
  say "Shippo stand-in on $SHIPPO_API_URL, pid $shippo_pid"
  # Once the API answers, the stand-in is told where to post track_updated (Shippo
  # authenticates its webhooks with nothing but the URL's token).
  (
    for _ in $(seq 1200); do
      curl -fsS -o /dev/null "http://127.0.0.1:$api_port/health" 2>/dev/null && break
      sleep 0.5
    done
    hook="$(python3 -c 'import json, sys, urllib.parse
print(json.dumps({"id": "orders-dev", "url": "http://127.0.0.1:%s/api/shipping/shippo/webhook?token=%s"
                  % (sys.argv[1], urllib.parse.quote(sys.argv[2], safe=""))}))' \
      "$api_port" "$SHIPPO_WEBHOOK_TOKEN")"
    if curl -fsS -o /dev/null -X POST "$SHIPPO_API_URL/_control/webhooks" \
      -H 'Content-Type: application/json' -d "$hook"; then
      say "the Shippo stand-in sends track_updated to http://127.0.0.1:$api_port/api/shipping/shippo/webhook"
      say "move a parcel to delivered (its carrier and tracking_number from the shipment):"
      say "  curl -X POST $SHIPPO_API_URL/_control/tracks/usps/<tracking_number> -H 'Content-Type: application/json' -d '{\"status\": \"DELIVERED\"}'"
    else
      say "warning: could not register the webhook with the Shippo stand-in"
    fi
  ) &
else
  say "using Shippo at SHIPPO_API_URL=$SHIPPO_API_URL (not starting the stand-in)"
fi

say "cargo run -p orders-dev --bin orders-dev (API on 127.0.0.1:$api_port); Ctrl-C stops everything"
set -m
cargo run -p orders-dev --bin orders-dev </dev/null &
app_pid=$!
set +m

# `wait` returns early when a trapped signal arrives; the EXIT trap then cleans up.
app_status=0
wait "$app_pid" || app_status=$?
if [[ -n "$emulator_pid" ]] && ! kill -0 "$emulator_pid" 2>/dev/null; then
  say "the emulator exited unexpectedly"
fi
exit "$app_status"
