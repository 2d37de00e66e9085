#!/usr/bin/env bash
# Usage: scripts/fuzz.sh [SCHEMATHESIS-RUN-OPTIONS...]   (the last step of `make test`)
#
# Extra options go to both `schemathesis run`s, e.g. to narrow a run while debugging:
#   scripts/fuzz.sh --include-operation-id cancel-order --phases coverage
#
# Property-based tests of docs/openapi.yaml against the local stack, with schemathesis
# (pinned in requirements-dev.txt; config: tests/fuzz/schemathesis.toml):
#   1. runs itself under scripts/with-emulator.sh unless AWS_ENDPOINT_URL is set;
#   2. builds and starts the `orders-dev` debug binary (the API `make dev` serves, with
#      template.yaml's routes and the event pipeline) on a free loopback port, its carts
#      from a stand-in Shopping Cart API (tests/fuzz/support.py) that has a cart for every
#      id, so that generated creates succeed and the stateful phase can follow the
#      document's links (create -> get, status, cancel, history);
#   3. waits for GET /health, mints HS256 tokens, and runs `schemathesis run` twice, as an
#      admin and as a customer: every check but use_after_free (DELETE cancels and keeps
#      the order), a fixed seed, FUZZ_EXAMPLES cases per operation and phase;
#   4. stops what it started, prints one closing line and exits non-zero on any failing
#      check, 5xx or error.
#
# Env: FUZZ_EXAMPLES (default 25), FUZZ_SEED (default 20261201), FUZZ_MIN_CASES (default
#      1000: a pass that generates fewer fails), FUZZ_WORKERS (default 1: hypothesis parses
#      lambdas with `ast`, which is not thread-safe on CPython 3.11 and crashed a 2-worker
#      run), FUZZ_CONFIG (default tests/fuzz/schemathesis.toml; tests/fuzz/outside.toml is
#      an outside reviewer's run: no per-operation allowances), CARGO_TARGET_DIR. Reports (JUnit) and logs: $FUZZ_REPORT_DIR (default
#      ${TMPDIR:-/tmp}/orders-fuzz), kept after the run.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if [[ -z "${AWS_ENDPOINT_URL:-}" ]]; then
  exec "$root/scripts/with-emulator.sh" "$root/scripts/fuzz.sh" "$@"
fi

say() { printf 'fuzz: %s\n' "$*" >&2; }

python="$root/.venv/bin/python"
support="$root/tests/fuzz/support.py"
examples="${FUZZ_EXAMPLES:-25}"
seed="${FUZZ_SEED:-20261201}"
workers="${FUZZ_WORKERS:-1}"
min_cases="${FUZZ_MIN_CASES:-1000}"
config="${FUZZ_CONFIG:-$root/tests/fuzz/schemathesis.toml}"
reports="${FUZZ_REPORT_DIR:-${TMPDIR:-/tmp}/orders-fuzz}"
secret="orders-fuzz-secret-at-least-32-bytes-long"
started=$SECONDS
extra=("$@")

bash "$root/scripts/bootstrap.sh"
cargo build -q -p orders-dev
app_bin="${CARGO_TARGET_DIR:-$root/target}/debug/orders-dev"

rm -rf "$reports"
mkdir -p "$reports"
cart_pid=""
app_pid=""
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [[ -n "$app_pid" ]] && kill -0 "$app_pid" 2>/dev/null; then
    kill -INT "$app_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$app_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$app_pid" 2>/dev/null || true
  fi
  [[ -n "$cart_pid" ]] && kill -TERM "$cart_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$python" "$support" cart-api --ready-file "$reports/cart-url" >"$reports/cart-api.log" 2>&1 &
cart_pid=$!
for _ in $(seq 100); do [[ -s "$reports/cart-url" ]] && break; sleep 0.1; done
[[ -s "$reports/cart-url" ]] || { say "error: the stand-in cart API did not start"; exit 1; }

port="$("$python" "$support" free-port)"
base="http://127.0.0.1:$port"
env PORT="$port" JWT_SECRET="$secret" CART_API_URL="$(cat "$reports/cart-url")" \
  TABLE_NAME=fuzz-orders EVENT_BUS_NAME=fuzz-orders ORDERS_TEMPLATE="$root/template.yaml" \
  RUST_LOG="${RUST_LOG:-warn}" "$app_bin" </dev/null >"$reports/orders-dev.log" 2>&1 &
app_pid=$!
for _ in $(seq 600); do
  curl -fsS -o /dev/null "$base/health" 2>/dev/null && break
  kill -0 "$app_pid" 2>/dev/null || break
  sleep 0.1
done
if ! curl -fsS -o /dev/null "$base/health" 2>/dev/null; then
  say "error: orders-dev did not answer GET /health; its log:"
  tail -n 40 "$reports/orders-dev.log" >&2 || true
  exit 1
fi
say "orders-dev on $base (emulator $AWS_ENDPOINT_URL); schemathesis $("$root/.venv/bin/schemathesis" --version | awk '{print $NF}'), seed $seed, $examples cases per operation and phase"

# One pass per role. Both tokens are of the user `fuzzer`, who owns every stand-in cart.
total=0
failed=0
summary=""
run_pass() {
  local role="$1" scope="$2" token status=0
  token="$("$python" "$support" token --secret "$secret" --sub fuzzer --scope "$scope")"
  "$root/.venv/bin/schemathesis" --no-color --config-file "$config" \
    run "$root/docs/openapi.yaml" --url "$base" \
    --header "Authorization: Bearer $token" \
    --seed "$seed" --max-examples "$examples" --workers "$workers" \
    --checks all --exclude-checks use_after_free \
    --report junit --report-junit-path "$reports/$role.xml" \
    "${extra[@]}" 2>&1 | tee "$reports/$role.log" || status=$?
  # "Test cases:" is followed by "N generated, N passed, ..." in the summary.
  local cases
  cases="$(grep -A1 -E '^Test cases:' "$reports/$role.log" | grep -oE '[0-9]+ generated' | grep -oE '[0-9]+' || echo 0)"
  total=$((total + cases))
  summary="${summary:+$summary, }$role $cases"
  if [[ $status -ne 0 ]]; then
    failed=$((failed + 1))
    say "the $role pass failed (exit $status); report: $reports/$role.xml"
  elif ((cases < min_cases)); then
    failed=$((failed + 1))
    say "the $role pass generated $cases cases, fewer than FUZZ_MIN_CASES=$min_cases"
  fi
}
run_pass admin "orders:admin"
run_pass customer ""

if grep -qE 'panicked|thread .* panicked' "$reports/orders-dev.log"; then
  say "orders-dev panicked during the run:"
  grep -E -A3 'panicked' "$reports/orders-dev.log" | head -20 >&2
  failed=$((failed + 1))
fi

elapsed=$((SECONDS - started))
if [[ $failed -eq 0 ]]; then
  echo "fuzz: schemathesis passed: $total cases ($summary), no 5xx, no failing check, in ${elapsed}s"
else
  echo "fuzz: schemathesis FAILED: $total cases ($summary), $failed failing pass(es), in ${elapsed}s; logs in $reports"
  exit 1
fi
