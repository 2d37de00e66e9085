# Orders: one command each to run, test, build and deploy.
#
#   make dev      the local stack (emulator + API on 127.0.0.1:${PORT:-3000}); Ctrl-C stops it
#   make test     fmt, clippy, cfn-lint, every test against a throw-away emulator, the fuzz run,
#                 make dev played as the README walks it (scripts/smoke.sh), the other targets
#                 in a reduced form (scripts/targets.sh)
#   make invoke FN=get-order   one function's binary on its sample event (events/)
#
# Needs Rust and python3; everything else (moto, cfn-lint, cargo-lambda, schemathesis, pinned in
# requirements-dev.txt) goes into .venv on first use. CARGO_TARGET_DIR is honoured.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

VENV := .venv
BOOTSTRAP := scripts/bootstrap.sh
# Must match Architectures in template.yaml.
LAMBDA_ARCH ?= arm64
LAMBDA_TRIPLE_arm64 := aarch64-unknown-linux-gnu
LAMBDA_TRIPLE_x86_64 := x86_64-unknown-linux-gnu
LAMBDA_TRIPLE := $(LAMBDA_TRIPLE_$(LAMBDA_ARCH))
# Extra flags for `sam deploy`; the first time: make deploy SAM_DEPLOY_FLAGS=--guided
SAM_DEPLOY_FLAGS ?=
# rustfmt colours its diff even into a pipe; CARGO_TERM_COLOR=never (CI) turns that off.
RUSTFMT_COLOR := $(if $(filter never,$(CARGO_TERM_COLOR)),--color never)

.PHONY: help bootstrap dev test lint fmt build deploy emulator invoke

help: ## List the targets
	@printf 'Orders: make TARGET\n\n'
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /  \1\t/' | expand -t 14
	@printf '\nSettings (env): PORT (API, 3000), MOTO_PORT (emulator, 4566), AWS_ENDPOINT_URL\n'
	@printf '(use a running emulator), CARGO_TARGET_DIR, SAM_DEPLOY_FLAGS (e.g. --guided).\n'

bootstrap: ## Create .venv and install the pinned dev tools (no-op when up to date)
	@bash $(BOOTSTRAP)

dev: ## Run the local stack: emulator, tables and seed from template.yaml, API on :3000
	@bash scripts/dev.sh

# The fuzz step (scripts/fuzz.sh): schemathesis against the local stack (orders-dev, debug)
# on its own throw-away emulator, as an admin and as a customer, fixed seed; FUZZ_EXAMPLES
# cases per operation and phase (25: over 1,000 cases a pass); any failing check, 5xx or
# panic fails the target. The smoke run and the targets' run close `make test`, each with
# a line `<step>: N passed, N failed`.
FUZZ_EXAMPLES ?= 25

test: lint ## Lint, every test against a throw-away emulator (debug profile), the schemathesis run, make dev's smoke run and the other targets
	scripts/with-emulator.sh cargo test --workspace --no-fail-fast 2>&1 | tee "$${TMPDIR:-/tmp}/orders-test.log"
	@# One closing line for the whole run, summed over every test binary.
	@awk '/^test result:/ { p += $$4; f += $$6; s += $$8 } END { printf "all tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$${TMPDIR:-/tmp}/orders-test.log"
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) scripts/fuzz.sh
	@# The README's first command as a new user runs it, its walk-through with curl, Ctrl-C.
	scripts/smoke.sh
	@# The same, pointed at an emulator, a Stripe and a cart API started elsewhere.
	scripts/with-emulator.sh scripts/smoke.sh --external
	@# The Shippo stand-in against Shippo's SDK and the shapes of its OpenAPI description.
	scripts/shippo_contract.sh
	@# The operator console in headless Chromium (Playwright) against a make dev stack.
	scripts/console_test.sh
	@# Every other target the README names, in a reduced form where the full one is long.
	scripts/targets.sh

.PHONY: fuzz
fuzz: bootstrap ## Only the schemathesis run of docs/openapi.yaml against the local stack
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) scripts/fuzz.sh

lint: bootstrap ## cargo fmt --check, clippy -D warnings, cfn-lint template.yaml
	cargo fmt --all -- --check $(RUSTFMT_COLOR)
	cargo clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/cfn-lint template.yaml

fmt: ## Format the Rust code
	cargo fmt --all

# BUILD_ONLY=get-order: that function only; BUILD_PROFILE: a cargo profile other than
# release (make test's reduced run: LAMBDA_ARCH=x86_64 BUILD_ONLY=get-order BUILD_PROFILE=quick).
BUILD_ONLY ?=
BUILD_PROFILE ?= release
build: bootstrap ## Release Lambda binaries (cargo lambda build) into target/lambda/ (or $CARGO_TARGET_DIR/lambda/)
	@if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx '$(LAMBDA_TRIPLE)'; then \
	  echo "build: adding the Rust target $(LAMBDA_TRIPLE) (rustup target add)"; \
	  rustup target add $(LAMBDA_TRIPLE) || { \
	    echo "build: rustup could not add $(LAMBDA_TRIPLE) (it downloads it from the Rust project's servers);" >&2; \
	    echo "  on a machine that cannot reach them, build for x86_64 Lambdas: make build LAMBDA_ARCH=x86_64" >&2; \
	    echo "  (and set Architectures: x86_64 in template.yaml)" >&2; exit 1; }; \
	fi
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda build $(if $(filter release,$(BUILD_PROFILE)),--release,--profile $(BUILD_PROFILE)) \
	  --target $(LAMBDA_TRIPLE) --package functions $(if $(BUILD_ONLY),--bin $(BUILD_ONLY),--bins)

# SAM's rust-cargolambda builder reads binaries from ./target/lambda/<name>/bootstrap, so
# CARGO_TARGET_DIR is unset for it. beta_features is on in samconfig.toml (SAM still
# marks the Rust builder as beta).
deploy: bootstrap ## sam build && sam deploy (needs the AWS SAM CLI and AWS credentials)
	@command -v sam >/dev/null 2>&1 || { \
	  echo "deploy: the AWS SAM CLI ('sam') is not installed; make deploy needs it:" >&2; \
	  echo "  https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/install-sam-cli.html" >&2; \
	  echo "  then, the first time: make deploy SAM_DEPLOY_FLAGS=--guided" >&2; \
	  exit 1; }
	env -u CARGO_TARGET_DIR PATH="$(CURDIR)/$(VENV)/bin:$$PATH" sam build
	sam deploy $(SAM_DEPLOY_FLAGS)

# make invoke FN=get-order: the function's binary (debug build) on events/$(FN).json, run as
# Lambda runs it (bench/src/bin/invoke.rs: the bench's fake Runtime API), with a dev token
# for the sample's caller and the demo order (and webhook) arranged first. Against make
# dev's emulator when AWS_ENDPOINT_URL points at it, else a throw-away one. PRINT_EVENT=1:
# print the prepared event instead (for cargo lambda invoke --data-file).
FN ?=
PRINT_EVENT ?=
invoke: bootstrap ## Run one function on its sample event: make invoke FN=get-order (see README)
	@if [[ -z "$(FN)" || ! -f "events/$(FN).json" ]]; then \
	  echo "usage: make invoke FN=<function>, one of: $$(ls events | sed 's/\.json$$//' | tr '\n' ' ')" >&2; exit 2; fi
	cargo build -q -p functions --bin $(FN)
	cargo build -q -p orders-bench --bin invoke
	scripts/with-emulator.sh "$${CARGO_TARGET_DIR:-target}/debug/invoke" $(FN) --bin-dir "$${CARGO_TARGET_DIR:-target}/debug" $(if $(PRINT_EVENT),--print-event)

# make redrive QUEUE=FulfillmentDeadLetters: moves a dead-letter queue's messages back
# to the queue whose redrive policy names it (or TO=<queue>), each once, deleting each
# only after the source took it (dev/src/redrive.rs). QUEUE is a name or URL; against
# AWS_ENDPOINT_URL when set (make dev's emulator: the template's logical ids are the
# names). On AWS: aws sqs start-message-move-task --source-arn <DLQ ARN>
# (docs/operations.md).
QUEUE ?=
TO ?=
.PHONY: redrive schema
redrive: ## Move a dead-letter queue's messages back to their queue: make redrive QUEUE=<name or URL>
	@if [[ -z "$(QUEUE)" ]]; then echo "usage: make redrive QUEUE=<dead-letter queue name or URL> [TO=<queue>]" >&2; exit 2; fi
	@# Against an emulator, its dummy credentials and region as make dev uses them.
	$(if $(AWS_ENDPOINT_URL),scripts/with-emulator.sh) cargo run -q -p orders-dev --bin redrive -- "$(QUEUE)" $(if $(TO),--to "$(TO)")

schema: ## Write docs/events.schema.json (as draft 4) into template.yaml's OrderEventSchema
	cargo run -q -p orders-dev --bin schema

emulator: bootstrap ## Run the AWS emulator in the foreground on 127.0.0.1:${MOTO_PORT:-4566}
	$(VENV)/bin/python scripts/emulator.py --host 127.0.0.1 --port $${MOTO_PORT:-4566}

# make bench: native release builds (the workspace profile as is) of every function and
# of bench/'s floors (a bare Lambda; the same plus the SDK configuration and a DynamoDB
# client; that plus one DynamoDB request per invocation), in one cargo invocation so they
# share dependency features; then bench/ runs each binary against a fake Lambda Runtime
# API and a throw-away emulator (or $AWS_ENDPOINT_URL, if it is one of
# scripts/emulator.py): first poll, first answer and warm invocations next to the floors,
# peak memory, zip size; prints the cold-start table and writes docs/bench.md.
# BENCH_RUNS: cold starts per binary. BENCH_ONLY=get-order,create-order: the cold starts
# of those functions only (every binary is still built: the requests-per-call table runs
# every API operation of the first 14; the newer functions, each on a stack arranged for
# its sample, only when named). One function, quickly:
#   make bench BENCH_ONLY=stripe-webhook BENCH_RUNS=2 BENCH_PROFILE=quick BENCH_OUT=/tmp/b.md
# BENCH_PROFILE: the cargo profile
# (`quick`, release without LTO, is what make test's reduced run uses). BENCH_OUT: the
# report's path.
BENCH_RUNS ?= 15
BENCH_NICE ?= nice -n 10
BENCH_ONLY ?=
BENCH_PROFILE ?= release
BENCH_OUT ?= docs/bench.md
.PHONY: bench
bench: bootstrap ## Cold start, peak memory, size and DynamoDB requests per call of every function; writes docs/bench.md
	$(BENCH_NICE) cargo build --profile $(BENCH_PROFILE) -p functions -p orders-bench --no-default-features --features sdk-floor --bins
	$(BENCH_NICE) cargo build -p orders-bench --bin bench
	scripts/with-emulator.sh cargo run -q -p orders-bench --bin bench -- --runs $(BENCH_RUNS) \
	  --bin-dir "$${CARGO_TARGET_DIR:-target}/$(BENCH_PROFILE)" --out $(BENCH_OUT) --command "make bench" \
	  $(if $(BENCH_ONLY),--only $(BENCH_ONLY))

# make load: the local stack under load and under faults (bench/src/load/). Builds orders-dev
# with LOAD_PROFILE (release, the default: the workspace's fat LTO, a few minutes the first
# time; dev: the debug build, no release build, the reduced form CI runs) and the driver,
# which starts its own emulator (so that it can pause it), localstripe, the Shippo stand-in
# and orders-dev (make dev's Stripe and Shippo settings) on free loopback ports, runs
# LOAD_CLIENTS clients taking orders through their whole life (paid by card or bank transfer, refunded,
# shipped with labels, delivered, returned) for LOAD_SECONDS, then the fault runs (the emulator
# stopped mid-load within LOAD_FAULT_SECONDS, a webhook receiver that hangs, a poison stream
# record), checks that nothing was lost or doubled and writes its report (LOAD_OUT:
# docs/load.md for release, a temporary file for dev). Exits non-zero if a check fails.
# Not part of make test: it takes minutes. Reduced (scripts/targets.sh runs it in make test),
# one to four minutes on a warm target, the longer when a receive lost while the emulator
# was stopped hides webhook messages for the queue's VisibilityTimeout:
#   make load LOAD_PROFILE=dev LOAD_CLIENTS=2 LOAD_SECONDS=5 LOAD_FAULT_SECONDS=12
LOAD_PROFILE ?= release
LOAD_CLIENTS ?= 8
LOAD_SECONDS ?= 20
LOAD_FAULT_SECONDS ?= 20
LOAD_NICE ?= nice -n 10
LOAD_DEV_DIR = $(if $(filter dev,$(LOAD_PROFILE)),debug,release)
LOAD_OUT ?= $(if $(filter dev,$(LOAD_PROFILE)),$${TMPDIR:-/tmp}/orders-load-dev.md,docs/load.md)
.PHONY: load
load: bootstrap ## Load and fault runs on the local stack (throughput, latency, nothing lost); writes docs/load.md
	@case "$(LOAD_PROFILE)" in release|dev) ;; \
	  *) echo "load: LOAD_PROFILE must be release or dev, not $(LOAD_PROFILE)" >&2; exit 2 ;; esac
	$(LOAD_NICE) cargo build $(if $(filter release,$(LOAD_PROFILE)),--release) -p orders-dev
	$(LOAD_NICE) cargo build -p orders-bench --bin load
	cargo run -q -p orders-bench --bin load -- --clients $(LOAD_CLIENTS) --seconds $(LOAD_SECONDS) \
	  --fault-seconds $(LOAD_FAULT_SECONDS) --dev-bin "$${CARGO_TARGET_DIR:-target}/$(LOAD_DEV_DIR)/orders-dev" \
	  --out "$(LOAD_OUT)" --command "make load$(if $(filter dev,$(LOAD_PROFILE)), LOAD_PROFILE=dev LOAD_CLIENTS=$(LOAD_CLIENTS) LOAD_SECONDS=$(LOAD_SECONDS) LOAD_FAULT_SECONDS=$(LOAD_FAULT_SECONDS))"
