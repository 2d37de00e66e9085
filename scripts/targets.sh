#!/usr/bin/env bash
# The README's other make targets, each run the way a user runs it, in a reduced form
# where the full one takes long; `make test` runs this after the smoke step (which runs
# make dev, make redrive and make invoke against the running stack). A target that
# cannot run on this machine must say why and exit non-zero: that is checked too.
#
#   make help, make schema            as they are (schema must leave template.yaml as committed)
#   make bench                        one function, two cold starts, the `quick` profile
#   make load                         the debug orders-dev, 2 clients, a few seconds a phase
#   make build                        one function for x86_64, the `quick` profile
#   make deploy                       without the SAM CLI: must refuse, saying why
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
work="$(mktemp -d "${TMPDIR:-/tmp}/orders-targets.XXXXXX")"
trap 'rm -rf "$work"' EXIT

say() { printf 'targets: %s\n' "$*" >&2; }
passed=0
failed=0
# run NAME CMD...: runs CMD with its output in a log; prints the log when it fails.
run() {
  local name="$1" started=$SECONDS
  shift
  if "$@" >"$work/$name.log" 2>&1; then
    passed=$((passed + 1))
    say "ok    $name ($((SECONDS - started)) s)"
  else
    failed=$((failed + 1))
    say "FAIL  $name ($((SECONDS - started)) s); its output:"
    tail -n 40 "$work/$name.log" >&2
  fi
}

schema_unchanged() {
  make -s schema && git diff --quiet -- template.yaml docs/events.schema.json ||
    { echo "make schema changed template.yaml: run it and commit the result"; git diff --stat; return 1; }
}

bench_reduced() {
  make -s bench BENCH_ONLY=get-order BENCH_RUNS=2 BENCH_PROFILE=quick BENCH_NICE= BENCH_OUT="$work/bench.md"
  grep -q 'get-order' "$work/bench.md"
}

load_reduced() {
  make -s load LOAD_PROFILE=dev LOAD_CLIENTS=2 LOAD_SECONDS=5 LOAD_FAULT_SECONDS=12 LOAD_NICE= \
    LOAD_OUT="$work/load.md"
}

build_reduced() {
  local out="${CARGO_TARGET_DIR:-target}/lambda/get-order/bootstrap"
  rm -f "$out"
  make -s build LAMBDA_ARCH=x86_64 BUILD_ONLY=get-order BUILD_PROFILE=quick
  [[ -x "$out" ]] || { echo "make build wrote no $out"; return 1; }
}

deploy_refuses() {
  if command -v sam >/dev/null 2>&1; then
    echo "the SAM CLI is installed here; make deploy is not run by the tests (it needs AWS credentials)"
    return 0
  fi
  if make -s deploy >"$work/deploy.out" 2>&1; then
    echo "make deploy exited 0 without the SAM CLI"
    return 1
  fi
  grep -q "the AWS SAM CLI ('sam') is not installed" "$work/deploy.out"
}

run help make -s help
run schema schema_unchanged
run bench bench_reduced
run load load_reduced
run build build_reduced
run deploy-refuses deploy_refuses
say "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
