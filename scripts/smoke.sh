#!/usr/bin/env bash
# The README's first command, as a new user runs it: `make dev` on free ports with its own
# emulator and stand-ins, then the README's walk-through with curl (every answer checked),
# then the README's other targets that need a running stack (make redrive, make invoke),
# then the signal a person's Ctrl-C sends (SIGINT to make's process group), and a check
# that nothing `make dev` started is left running. Any failure fails `make test`.
#
# `scripts/smoke.sh --external`, run under scripts/with-emulator.sh: the same make dev
# pointed at services started elsewhere (AWS_ENDPOINT_URL, STRIPE_API_BASE, SHIPPO_API_URL and a
# Shopping Cart API stand-in as CART_API_URL), which it must use and leave running.
#
# Env: SMOKE_BOOT_SECONDS (how long make dev may take to answer /health; a cold build
# is included in it; default 1200).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

say() { printf 'smoke: %s\n' "$*" >&2; }
fail() {
  say "FAILED: $*"
  exit 1
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

work="$(mktemp -d "${TMPDIR:-/tmp}/orders-smoke.XXXXXX")"
log="$work/make-dev.log"
api_port="$(free_port)"
moto_port="$(free_port)"
stripe_port="$(free_port)"
shippo_port="$(free_port)"
base="http://127.0.0.1:$api_port"
stripe="http://127.0.0.1:$stripe_port"
dev_pid=""
checks=0

external=""
if [[ "${1:-}" == --external ]]; then
  external=1
  [[ -n "${AWS_ENDPOINT_URL:-}" && -n "${STRIPE_API_BASE:-}" && -n "${SHIPPO_API_URL:-}" ]] ||
    { say "--external needs AWS_ENDPOINT_URL, STRIPE_API_BASE and SHIPPO_API_URL (run it under scripts/with-emulator.sh)"; exit 2; }
  stripe="$STRIPE_API_BASE"
else
  # A clean environment for make dev: no emulator, Stripe or Shippo of the caller's.
  unset AWS_ENDPOINT_URL STRIPE_API_BASE SHIPPO_API_URL SHIPPO_API_TOKEN SHIPPO_WEBHOOK_TOKEN CART_API_URL
fi
cart_api_pid=""

# Everything make dev starts stays in the session setsid gives it, so "nothing left" is
# "no process of that session left".
session_processes() {
  [[ -n "$dev_pid" ]] || return 0
  ps -eo pid=,sid=,args= | awk -v sid="$dev_pid" '$2 == sid { print }'
}

# What a failed stop leaves is killed, so that the next step finds its ports free.
kill_session() {
  session_processes | awk '{ print $1 }' | xargs -r kill -KILL 2>/dev/null || true
  dev_pid=""
}

stop_dev() {
  [[ -n "$dev_pid" ]] || return 0
  # A terminal's Ctrl-C: SIGINT to every process of the foreground process group.
  kill -INT -- "-$dev_pid" 2>/dev/null || true
  local deadline=$((SECONDS + 60))
  while kill -0 "$dev_pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "$dev_pid" 2>/dev/null; then
    say "make dev did not stop within 60 s of Ctrl-C"
    kill_session
    return 1
  fi
  # The leader is gone; what it started must be gone too.
  deadline=$((SECONDS + 10))
  while [[ -n "$(session_processes)" ]] && ((SECONDS < deadline)); do sleep 0.2; done
  local left
  left="$(session_processes)"
  if [[ -n "$left" ]]; then
    say "processes make dev started are still running after Ctrl-C:"
    printf '%s\n' "$left" >&2
    kill_session
    return 1
  fi
  dev_pid=""
}

on_exit() {
  local status=$?
  trap - EXIT INT TERM
  if [[ -n "$dev_pid" ]]; then
    stop_dev || status=1
  fi
  [[ -z "$cart_api_pid" ]] || kill "$cart_api_pid" 2>/dev/null || true
  if [[ $status -ne 0 ]]; then
    say "make dev's output (last 60 lines; all of it in $log):"
    tail -n 60 "$log" >&2 || true
  else
    rm -rf "$work"
  fi
  exit "$status"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -n "$external" ]]; then
  # The Shopping Cart API, as the fuzz run stands it in: a cart of user `fuzzer` for any id.
  python3 tests/fuzz/support.py cart-api --ready-file "$work/cart-url" </dev/null >"$work/cart-api.log" 2>&1 &
  cart_api_pid=$!
  for _ in $(seq 100); do [[ -s "$work/cart-url" ]] && break; sleep 0.1; done
  [[ -s "$work/cart-url" ]] || fail "the cart API stand-in did not start"
  export CART_API_URL="$(cat "$work/cart-url")"
  export JWT_SECRET="smoke-external-secret-of-32-bytes-or-more"
  say "external services: emulator $AWS_ENDPOINT_URL, Stripe $STRIPE_API_BASE, carts $CART_API_URL"
fi

if [[ -n "$external" ]]; then
  say "make dev on 127.0.0.1:$api_port with the services above"
else
  say "make dev on 127.0.0.1:$api_port (emulator :$moto_port, Stripe :$stripe_port, Shippo :$shippo_port)"
fi
# In a session of its own, as in a terminal, with SIGINT at its default: a background job
# of a script starts with SIGINT ignored, and a shell cannot trap what it inherited ignored.
PORT="$api_port" MOTO_PORT="$moto_port" STRIPE_PORT="$stripe_port" SHIPPO_PORT="$shippo_port" \
  python3 -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.setsid()
os.execvp(sys.argv[1], sys.argv[1:])' make dev </dev/null >"$log" 2>&1 &
dev_pid=$!

deadline=$((SECONDS + ${SMOKE_BOOT_SECONDS:-1200}))
until curl -fsS -o /dev/null "$base/health" 2>/dev/null; do
  kill -0 "$dev_pid" 2>/dev/null || fail "make dev exited before answering GET /health"
  ((SECONDS < deadline)) || fail "make dev did not answer GET /health within ${SMOKE_BOOT_SECONDS:-1200} s"
  sleep 0.5
done
say "GET /health answered after ${SECONDS} s"

# The tokens make dev prints, as the README tells the user to copy them.
token_of() {
  sed -nE "s/^ *export $1=([^ ]+).*/\1/p" "$log" | tail -n 1
}
deadline=$((SECONDS + 30))
until [[ -n "$(token_of FULFILL_TOKEN)" ]]; do
  ((SECONDS < deadline)) || fail "make dev printed no FULFILL_TOKEN"
  sleep 0.2
done
TOKEN="$(token_of TOKEN)"
ADMIN_TOKEN="$(token_of ADMIN_TOKEN)"
FULFILL_TOKEN="$(token_of FULFILL_TOKEN)"
if [[ -n "$external" ]]; then
  emulator="$AWS_ENDPOINT_URL"
  grep -q "using the emulator at AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL" "$log" ||
    fail "make dev did not say it uses the emulator at AWS_ENDPOINT_URL"
  grep -q "using Shippo at SHIPPO_API_URL=$SHIPPO_API_URL" "$log" ||
    fail "make dev did not say it uses the Shippo at SHIPPO_API_URL"
  ! grep -qE '^dev: (emulator \(moto\) on|Stripe stand-in|Shippo stand-in)' "$log" ||
    fail "make dev started an emulator or a stand-in although each was given"
else
  emulator="$(sed -nE 's/^dev: emulator \(moto\) on ([^,]+),.*/\1/p' "$log" | head -n 1)"
  [[ -n "$emulator" ]] || fail "make dev did not say where its emulator is"
fi

# --- a request and its checks ---------------------------------------------------------
# call METHOD PATH [curl args...]: sets $status, $body and $headers.
call() {
  local method="$1" path="$2"
  shift 2
  local out="$work/body" hdr="$work/headers"
  status="$(curl -sS -o "$out" -D "$hdr" -w '%{http_code}' -X "$method" "$base$path" "$@")"
  body="$(cat "$out")"
  headers="$(tr -d '\r' <"$hdr")"
}

expect_status() {
  checks=$((checks + 1))
  [[ "$status" == "$1" ]] || fail "$2: expected $1, got $status: $body"
}

# json EXPR: evaluates a Python expression over the last body (as `b`).
json() {
  python3 -c "import json, sys; b = json.loads(sys.argv[1]); print($1)" "$body"
}

expect_json() {
  local got
  got="$(json "$1")"
  checks=$((checks + 1))
  [[ "$got" == "$2" ]] || fail "$3: $1 is '$got', expected '$2' (body: $body)"
}

expect_header() {
  checks=$((checks + 1))
  grep -qiE "^$1: ?$2" <<<"$headers" || fail "$3: no header '$1: $2' in: $headers"
}

# poll PATH TOKEN EXPR VALUE WHAT: GET until the expression has the value (30 s deadline).
poll() {
  local path="$1" token="$2" expr="$3" want="$4" what="$5" deadline=$((SECONDS + 30))
  while :; do
    call GET "$path" -H "Authorization: Bearer $token"
    if [[ "$status" == 200 && "$(json "$expr")" == "$want" ]]; then
      checks=$((checks + 1))
      return 0
    fi
    ((SECONDS < deadline)) || fail "$what: $expr never became '$want' (last: $status $body)"
    sleep 0.2
  done
}

# The customer pays at the Stripe stand-in, as the README shows.
pay() {
  curl -fsS -u sk_test_orders_local: "$stripe/v1/payment_intents/$1" -d payment_method=pm_card_visa >/dev/null ||
    fail "localstripe did not take the card for $1"
  curl -fsS -X POST -u sk_test_orders_local: "$stripe/v1/payment_intents/$1/confirm" | grep -q '"status": "succeeded"' ||
    fail "localstripe did not confirm $1"
}

# --- against services started elsewhere ------------------------------------------------
if [[ -n "$external" ]]; then
  # A Stripe of one's own is told where to send its events by its owner, not by make dev.
  curl -fsS -o /dev/null -X POST "$STRIPE_API_BASE/_config/webhooks/smoke" \
    -d "url=$base/api/payments/stripe/webhook" -d "secret=${STRIPE_WEBHOOK_SECRET:-whsec_orders_local_dev}" \
    -d "events[]=payment_intent.succeeded" || fail "could not register the webhook with the given Stripe"
  FUZZER_TOKEN="$(python3 tests/fuzz/support.py token --secret "$JWT_SECRET" --sub fuzzer)"
  call POST /api/orders -H "Authorization: Bearer $FUZZER_TOKEN" -H "Content-Type: application/json" \
    -d '{"cart_id":"smoke-1","payment_method":"credit_card","shipping_address":{"name":"Jane Doe","address":"123 Main St","city":"New York","state":"NY","zip":"10001","country":"US"}}'
  expect_status 201 "create from CART_API_URL's cart"
  ORDER="$(json 'b["order_id"]')"
  call GET "/api/orders/$ORDER" -H "Authorization: Bearer $FUZZER_TOKEN"
  expect_status 200 "get"
  expect_json 'b["total"]' 20.0 "the cart API's prices"
  pay "$(json 'b["payment"]["intent_id"]')"
  poll "/api/orders/$ORDER" "$FUZZER_TOKEN" 'b["status"] + "/" + b["payment_status"]' confirmed/paid "payment at STRIPE_API_BASE"
  stop_dev || fail "Ctrl-C did not stop everything make dev started"
  checks=$((checks + 1))
  curl -sS -o /dev/null "$AWS_ENDPOINT_URL" || fail "the emulator make dev was given is gone after its Ctrl-C"
  curl -sS -o /dev/null "$STRIPE_API_BASE/v1/payment_intents" || fail "the Stripe given to make dev is gone after its Ctrl-C"
  curl -fsS -o /dev/null "$SHIPPO_API_URL/_control/health" || fail "the Shippo given to make dev is gone after its Ctrl-C"
  checks=$((checks + 1))
  say "external services: used, and left running after Ctrl-C"
  say "$checks passed, 0 failed"
  exit 0
fi

# The seed's request body, verbatim (README, "Walk-through").
seed_body='{
    "cart_id": "abc123",
    "user_id": "user789",
    "payment_method": "credit_card",
    "shipping_address": {
      "name": "Jane Doe",
      "address": "123 Main St",
      "city": "New York",
      "state": "NY",
      "zip": "10001",
      "country": "US"
    }
  }'

# --- the walk-through -------------------------------------------------------------------
call POST /api/orders -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \
  -H "Idempotency-Key: checkout-1" -d "$seed_body"
expect_status 201 "create the seed's order"
expect_json 'b["status"]' pending "create"
expect_json 'b["message"]' "Order received and pending payment." "create"
expect_json 'b["payment"]["provider"]' stripe "create"
ORDER="$(json 'b["order_id"]')"
INTENT="$(json 'b["payment"]["intent_id"]')"
expect_header location "/api/orders/$ORDER" "create"
say "created $ORDER (intent $INTENT)"

call POST /api/orders -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \
  -H "Idempotency-Key: checkout-1" -d "$seed_body"
expect_status 201 "the same create again"
expect_json 'b["order_id"]' "$ORDER" "the replay"
expect_header idempotent-replayed true "the replay"

call GET "/api/orders/$ORDER" -H "Authorization: Bearer $TOKEN"
expect_status 200 "get the order"
expect_json 'b["payment_status"]' unpaid "get"
expect_json 'b["total"]' 75.0 "get"
expect_json 'b["currency"]' USD "get"
expect_json 'len(b["items"])' 2 "get"

pay "$INTENT"
poll "/api/orders/$ORDER" "$TOKEN" 'b["status"] + "/" + b["payment_status"]' confirmed/paid "payment"
# Fulfillment reserves the stock (version 3), as the README says before its If-Match.
poll "/api/orders/$ORDER" "$TOKEN" 'b["shipping_status"] + "/" + str(b["version"])' processing/3 "fulfillment"

call PUT "/api/orders/$ORDER/status" -H "Authorization: Bearer $FULFILL_TOKEN" -H 'If-Match: "2"' \
  -H "Content-Type: application/json" -d '{"status": "shipped"}'
expect_status 412 "ship with a stale If-Match"
call PUT "/api/orders/$ORDER/status" -H "Authorization: Bearer $FULFILL_TOKEN" -H 'If-Match: "3"' \
  -H "Content-Type: application/json" \
  -d '{"status": "shipped", "tracking_number": "1Z999AA10123456784", "carrier": "UPS"}'
expect_status 200 "ship"
expect_json 'b["status"]' shipped "ship"
call PUT "/api/orders/$ORDER/status" -H "Authorization: Bearer $FULFILL_TOKEN" \
  -H "Content-Type: application/json" -d '{"status": "delivered"}'
expect_status 200 "deliver"
expect_json 'b["status"]' delivered "deliver"

call DELETE "/api/orders/$ORDER" -H "Authorization: Bearer $TOKEN"
expect_status 409 "cancel a delivered order"
expect_json 'b["code"]' invalid_transition "cancel a delivered order"
expect_json 'b["current_status"]' delivered "cancel a delivered order"

call GET "/api/orders/$ORDER/history" -H "Authorization: Bearer $TOKEN"
expect_status 200 "history"
# Shipping-status changes are entries too; the statuses in order are the lifecycle's.
expect_json '",".join(dict.fromkeys(e["to"] for e in b["history"]))' pending,confirmed,shipped,delivered "history"
call GET "/api/orders?status=delivered&limit=10" -H "Authorization: Bearer $TOKEN"
expect_status 200 "list"
expect_json "'$ORDER' in [o['order_id'] for o in b['orders']]" True "list"

# The invoice the paid order got (README, "Messages and invoices").
poll "/api/orders/$ORDER/invoice" "$TOKEN" 'b["invoice_number"][:9]' INV-2026- "invoice"
curl -fsS -o "$work/invoice.pdf" -H "Accept: application/pdf" -H "Authorization: Bearer $TOKEN" \
  "$base/api/orders/$ORDER/invoice" || fail "the invoice as PDF"
checks=$((checks + 1))
[[ "$(head -c 5 "$work/invoice.pdf")" == "%PDF-" ]] || fail "the invoice PDF is no PDF"

# Refunds: an order of limit-1, paid, refunded in part, then cancelled by an admin.
call POST /api/orders -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \
  -d '{"cart_id":"limit-1","payment_method":"credit_card","shipping_address":{"name":"Jane Doe","address":"123 Main St","city":"New York","state":"NY","zip":"10001","country":"US"}}'
expect_status 201 "create from limit-1"
ORDER2="$(json 'b["order_id"]')"
pay "$(json 'b["payment"]["intent_id"]')"
poll "/api/orders/$ORDER2" "$ADMIN_TOKEN" 'b["payment_status"]' paid "payment of $ORDER2"
call POST "/api/orders/$ORDER2/refunds" -H "Authorization: Bearer $ADMIN_TOKEN" \
  -H "Content-Type: application/json" -H "Idempotency-Key: refund-1" -d '{"amount": "25.00", "reason": "damaged"}'
expect_status 201 "refund 25.00"
expect_json 'b["payment_status"]' partially_refunded "refund 25.00"
# Allocated pro rata to what remains refundable of each line (largest remainder).
expect_json '[(a["part"], a["net"]) for a in b["payment"]["refunds"][0]["allocation"]]' \
  "[('p001', 6.67), ('p002', 18.33)]" "refund 25.00's allocation"
call DELETE "/api/orders/$ORDER2" -H "Authorization: Bearer $ADMIN_TOKEN"
expect_status 200 "cancel a paid order"
expect_json 'b["message"]' "Order $ORDER2 cancelled successfully." "cancel"
poll "/api/orders/$ORDER2" "$ADMIN_TOKEN" 'b["payment_status"] + "/" + str(sum(r["amount"] for r in b["payment"]["refunds"]))' \
  refunded/75.0 "the refund saga"

# A pending order cancelled by its owner.
call POST /api/orders -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \
  -d '{"cart_id":"limit-2","payment_method":"bank_transfer","shipping_address":{"name":"Jane Doe","address":"123 Main St","city":"New York","state":"NY","zip":"10001","country":"US"}}'
expect_status 201 "create from limit-2"
ORDER3="$(json 'b["order_id"]')"
call DELETE "/api/orders/$ORDER3" -H "Authorization: Bearer $TOKEN"
expect_status 200 "the owner cancels a pending order"
expect_json 'b["status"]' cancelled "cancel"

# Shipping in parcels, to delivery (README): an order paid by bank transfer, confirmed by
# an admin, shipped in two parcels (one by hand, one with a Shippo label), delivered by
# the carrier's reports through the Shippo stand-in.
shippo="$(sed -nE 's/^dev: Shippo stand-in on ([^,]+),.*/\1/p' "$log" | head -n 1)"
[[ -n "$shippo" ]] || fail "make dev did not say where its Shippo stand-in is"
call POST /api/orders -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \
  -d '{"cart_id":"limit-3","payment_method":"bank_transfer","shipping_address":{"name":"Jane Doe","address":"123 Main St","city":"New York","state":"NY","zip":"10001","country":"US"}}'
expect_status 201 "create from limit-3"
ORDER4="$(json 'b["order_id"]')"
call PUT "/api/orders/$ORDER4/status" -H "Authorization: Bearer $ADMIN_TOKEN" \
  -H "Content-Type: application/json" -d '{"status": "confirmed"}'
expect_status 200 "an admin confirms a bank-transfer order"
poll "/api/orders/$ORDER4" "$ADMIN_TOKEN" 'b["shipping_status"]' processing "fulfillment of $ORDER4"
call POST "/api/orders/$ORDER4/shipments" -H "Authorization: Bearer $FULFILL_TOKEN" \
  -H "Content-Type: application/json" -H "Idempotency-Key: parcel-1" \
  -d '{"items": [{"product_id": "p001", "quantity": 1}], "carrier": "usps", "tracking_number": "9400111899223197428490"}'
expect_status 201 "a parcel shipped by hand"
expect_json 'b["status"]' in_transit "a parcel shipped by hand"
call GET "/api/orders/$ORDER4" -H "Authorization: Bearer $TOKEN"
expect_json 'b["status"] + "/" + b["shipping_status"] + "/" + str(b["items"][0]["quantity_shipped"])' \
  confirmed/partially_shipped/1 "after the first parcel"
call POST "/api/orders/$ORDER4/shipments" -H "Authorization: Bearer $FULFILL_TOKEN" \
  -H "Content-Type: application/json" -H "Idempotency-Key: parcel-2" -d '{}'
expect_status 201 "the rest with a Shippo label"
expect_json 'b["status"]' label_created "the rest with a Shippo label"
PARCEL2="$(json 'b["shipment_id"]')"
LABEL_TRACKING_NUMBER="$(json 'b["tracking_number"]')"
call POST "/api/orders/$ORDER4/shipments" -H "Authorization: Bearer $FULFILL_TOKEN" \
  -H "Content-Type: application/json" -H "Idempotency-Key: parcel-2" -d '{}'
expect_json 'b["shipment_id"]' "$PARCEL2" "the same label request again"
expect_header idempotent-replayed true "the same label request again"
call GET "/api/orders/$ORDER4/shipments" -H "Authorization: Bearer $TOKEN"
expect_status 200 "the parcels"
expect_json 'len(b["shipments"])' 2 "the parcels"
curl -fsS -o /dev/null -X POST "$shippo/_control/tracks/usps/9400111899223197428490" \
  -H 'Content-Type: application/json' -d '{"status": "DELIVERED"}' || fail "the stand-in's tracking control route"
poll "/api/orders/$ORDER4" "$TOKEN" 'b["shipping_status"]' partially_delivered "the first parcel delivered"
curl -fsS -o /dev/null -X POST "$shippo/_control/tracks/usps/$LABEL_TRACKING_NUMBER" \
  -H 'Content-Type: application/json' -d '{"status": "DELIVERED"}' || fail "the stand-in's tracking control route"
poll "/api/orders/$ORDER4" "$TOKEN" 'b["status"] + "/" + b["shipping_status"] + "/" + str([i["quantity_delivered"] for i in b["items"]])' \
  "delivered/delivered/[2, 1]" "both parcels delivered"

# Returns (README): one cable of the delivered, card-paid $ORDER comes back: asked by the
# customer, approved by support with a Shippo return label, carried back (the stand-in's
# tracking), received by the warehouse, restocked and refunded at Stripe, each once.
call POST "/api/orders/$ORDER/returns" -H "Authorization: Bearer $TOKEN" \
  -H "Content-Type: application/json" -H "Idempotency-Key: return-1" \
  -d '{"items": [{"product_id": "p001", "quantity": 1, "reason": "damaged"}], "note": "bent connector"}'
expect_status 201 "the customer asks to return a cable"
expect_json 'b["status"]' requested "the customer asks to return a cable"
RETURN="$(json 'b["return_id"]')"
call GET "/api/orders/$ORDER" -H "Authorization: Bearer $TOKEN"
expect_json 'b["status"] + "/" + b["return_status"]' delivered/requested "the order once a return is asked"
call GET "/api/returns?status=requested" -H "Authorization: Bearer $ADMIN_TOKEN"
expect_status 200 "support's queue of returns"
expect_json "'$RETURN' in [r['return_id'] for r in b['returns']]" True "support's queue of returns"
call POST "/api/orders/$ORDER/returns/$RETURN/approve" -H "Authorization: Bearer $ADMIN_TOKEN"
expect_status 200 "support approves the return"
expect_json 'b["status"] + "/" + b["label"]["status"]' approved/label_created "support approves the return"
RETURN_CARRIER="$(json 'b["label"]["carrier"]')"
RETURN_TRACKING="$(json 'b["label"]["tracking_number"]')"
curl -fsS -o /dev/null -X POST "$shippo/_control/tracks/$RETURN_CARRIER/$RETURN_TRACKING" \
  -H 'Content-Type: application/json' -d '{"status": "DELIVERED"}' || fail "the stand-in's tracking control route (return)"
poll "/api/orders/$ORDER/returns" "$TOKEN" 'b["returns"][0]["status"] + "/" + b["returns"][0]["label"]["status"]' \
  approved/delivered "the return parcel at the warehouse"
call POST "/api/orders/$ORDER/returns/$RETURN/receive" -H "Authorization: Bearer $FULFILL_TOKEN" \
  -H "Content-Type: application/json" -H "Idempotency-Key: receive-1" \
  -d '{"items": [{"product_id": "p001", "quantity": 1, "restock": true}], "refund_shipping": false, "restocking_fee": "0.00"}'
expect_status 200 "the warehouse receives the return"
expect_json 'b["status"] + "/" + str(b["receipt"]["restocked"]) + "/" + b["refund"]["status"] + "/" + str(b["refund"]["amount"])' \
  received/True/refunded/10.0 "the warehouse receives the return"
call POST "/api/orders/$ORDER/returns/$RETURN/receive" -H "Authorization: Bearer $FULFILL_TOKEN" \
  -H "Content-Type: application/json" -H "Idempotency-Key: receive-1" \
  -d '{"items": [{"product_id": "p001", "quantity": 1, "restock": true}], "refund_shipping": false, "restocking_fee": "0.00"}'
expect_header idempotent-replayed true "the same receive again"
poll "/api/orders/$ORDER" "$TOKEN" 'b["payment_status"] + "/" + b["return_status"] + "/" + str(len(b["payment"]["refunds"]))' \
  partially_refunded/partially_returned/1 "the order after the return"

# Bad input: a clear problem, never a 500.
call POST /api/orders -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" -d '{"cart_id":'
expect_status 400 "malformed JSON"
expect_header content-type application/problem\\+json "malformed JSON"
call GET "/api/orders/$ORDER"
expect_status 401 "no token"
say "walk-through: $checks checks passed"

# --- the README's targets that need the running stack -----------------------------------
export AWS_ENDPOINT_URL="$emulator"
make -s redrive QUEUE=FulfillmentDeadLetters >"$work/redrive.log" 2>&1 ||
  { cat "$work/redrive.log" >&2; fail "make redrive QUEUE=FulfillmentDeadLetters"; }
checks=$((checks + 1))
say "make redrive QUEUE=FulfillmentDeadLetters: $(tail -n 1 "$work/redrive.log")"
make -s invoke FN=get-order >"$work/invoke.log" 2>&1 ||
  { cat "$work/invoke.log" >&2; fail "make invoke FN=get-order"; }
grep -q '"statusCode": *200' "$work/invoke.log" ||
  { cat "$work/invoke.log" >&2; fail "make invoke FN=get-order did not answer 200"; }
checks=$((checks + 1))
say "make invoke FN=get-order: 200"

# README, "Invoking one function": cargo lambda watch with dev/lambda.env's settings (its
# emulator address made this stack's), the sample printed by make invoke, cargo lambda invoke.
lambda_port="$(free_port)"
sed "s|^AWS_ENDPOINT_URL=.*|AWS_ENDPOINT_URL=$emulator|" dev/lambda.env >"$work/lambda.env"
PATH="$root/.venv/bin:$PATH" python3 -c 'import os, sys
os.setsid()
os.execvp(sys.argv[1], sys.argv[1:])' cargo lambda watch --package functions --env-file "$work/lambda.env" \
  --invoke-port "$lambda_port" </dev/null >"$work/watch.log" 2>&1 &
watch_pid=$!
make -s invoke FN=get-order PRINT_EVENT=1 >"$work/get-order.json" 2>"$work/print-event.log" ||
  { cat "$work/print-event.log" >&2; fail "make -s invoke FN=get-order PRINT_EVENT=1"; }
deadline=$((SECONDS + 600))
until PATH="$root/.venv/bin:$PATH" cargo lambda invoke get-order --data-file "$work/get-order.json" \
  --invoke-port "$lambda_port" >"$work/lambda-invoke.log" 2>&1; do
  if ! kill -0 "$watch_pid" 2>/dev/null || ((SECONDS >= deadline)); then
    kill -TERM -- "-$watch_pid" 2>/dev/null || true
    cat "$work/watch.log" "$work/lambda-invoke.log" >&2
    fail "cargo lambda invoke get-order against cargo lambda watch"
  fi
  sleep 1
done
kill -TERM -- "-$watch_pid" 2>/dev/null || true
wait "$watch_pid" 2>/dev/null || true
grep -q '"statusCode": *200' "$work/lambda-invoke.log" ||
  { cat "$work/lambda-invoke.log" >&2; fail "cargo lambda invoke get-order did not answer 200"; }
checks=$((checks + 1))
say "cargo lambda watch + cargo lambda invoke get-order: 200"
unset AWS_ENDPOINT_URL

stop_dev || fail "Ctrl-C did not stop everything make dev started"
checks=$((checks + 1))
say "Ctrl-C stopped make dev and everything it started"
say "$checks passed, 0 failed"
