# rollback-guard: `make demo` shows a real rollback on the local emulator; `make test` runs
# every test. Everything that must be installed goes into .venv/ (ignored by git).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
WITH_EMULATOR := scripts/with-emulator.sh

.PHONY: setup setup-infra layer build demo replay watch invoke fuzz bench bench-extension bench-mttr bench-accounts bench-storm bench-fleet bench-instructions test lint infra-lint infra-build deploy undeploy fmt clean

setup: $(VENV)/.installed

# moto's server (the local AWS), pinned with everything it brings in requirements.txt.
$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

# The SAM CLI and checkov, each in its own virtualenv (checkov pins an old boto3).
setup-infra: .venv-sam/.installed .venv-checkov/.installed

.venv-sam/.installed: infra/requirements-sam.txt
	$(PYTHON) -m venv .venv-sam
	.venv-sam/bin/pip install --quiet --disable-pip-version-check -r $<
	touch $@

.venv-checkov/.installed: infra/requirements-checkov.txt
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install --quiet --disable-pip-version-check -r $<
	touch $@

build:
	cargo build --workspace --all-targets

demo: setup
	cargo build -q -p guard-e2e -p guard-cli --bin demo --bin guard
	$(WITH_EMULATOR) scripts/demo.sh

# The whole event catalog through the guard on the sample account, as a table; fails on any
# outcome that differs from events/expected.json. (make test runs the same comparison.)
replay: setup
	cargo build -q -p guard-e2e --bin replay
	$(WITH_EMULATOR) target/debug/replay

# cargo lambda watch on loopback, with the emulators up and the catalog's policy; stop with ^C.
# In another shell: make invoke FN=guard-function EVENT=events/eventbridge-alarm.json
WATCH_PORT ?= 9009
watch: setup
	GUARD_POLICY_FILE=events/policy.toml $(WITH_EMULATOR) \
	  .venv/bin/cargo-lambda lambda watch --invoke-address 127.0.0.1 --invoke-port $(WATCH_PORT)

FN ?= guard-function
EVENT ?= events/eventbridge-alarm.json
invoke:
	.venv/bin/cargo-lambda lambda invoke $(FN) --invoke-address 127.0.0.1 --invoke-port $(WATCH_PORT) \
	  --data-file $(EVENT) --output-format json

# Fuzz the intake (arbitrary bytes, mutated catalog events) for FUZZ_SECONDS per target;
# make test runs one short pass.
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) cargo test -p rollback-guard --test suite robustness -- --nocapture

# Benchmarks (BENCHMARKS.md): the decision path per transport and an alarm storm (criterion),
# cold start, peak RSS and sizes of the release guard, mitigation latency on the emulator, each
# beside the Python reference measured in the same run. Not part of make test.
bench: setup
	cargo bench -p guard-bench --bench decision
	cargo build --release --bin guard-function --bin mitigation --bin decide-loop
	mkdir -p target/bench
	$(WITH_EMULATOR) target/release/mitigation > target/bench/mitigation.json
	$(MAKE) bench-extension
	$(VENV)/bin/python bench/report.py

# The fast lane's extension alone (part of make bench): init, billed time per invocation, peak
# RSS and the layer's zip, against the fake Lambda APIs (bench/src/bin/extension-cost.rs).
bench-extension:
	cargo build --release --bin extension-cost
	@# The extension as make layer builds it: its own package's features only.
	cargo build --release -p rollback-guard-telemetry
	mkdir -p target/bench
	target/release/extension-cost target/release/rollback-guard-telemetry | tee target/bench/extension.json

# An organisation's guard on the emulator: peak RSS with clients for 500 member accounts, and
# the first action in a new account beside one in an account already seen (release build).
# A bad day on the emulator, real clock: 50 aliases rolled back by one batch of alarm events,
# beside the same 50 UpdateAlias calls alone (tests/src/bin/storm.rs); target/bench/storm.json.
bench-storm: setup
	cargo build --release --bin storm
	mkdir -p target/bench
	$(WITH_EMULATOR) target/release/storm | tee target/bench/storm.json

bench-accounts: setup
	cargo build --release --bin accounts
	mkdir -p target/bench
	$(WITH_EMULATOR) target/release/accounts | tee target/bench/accounts.json

# A bad day, simulated: every alarm of a fleet at once, the guard's real code over fakes that
# enforce AWS's API quotas, on a paused clock (bench/src/fleet.rs); target/bench/fleet.json.
# Virtual time: the figures do not depend on the build or the machine, so a debug build.
bench-fleet:
	cargo run -q -p guard-bench --bin fleet-sim

# Time to restore from a bad release's first errors, simulated: the one-minute path beside the
# fast lane, 1/10/100 requests/s, 10/50/100 % failing; false alarms a day; the EMF delay's
# sensitivity (bench/src/mttr.rs). target/bench/mttr.json and figures/restore-time.svg.
bench-mttr:
	cargo run -q -p guard-bench --bin mttr-sim

# Instructions per decision (callgrind): a measure the machine's noise does not move.
bench-instructions:
	bench/instructions.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

# The templates, offline: cfn-lint (no error, warning or note), sam validate --lint (the
# central one; member.yaml is plain CloudFormation), checkov (no failed check; each skip has
# its reason beside it in the template).
SAM := SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 .venv-sam/bin/sam
infra-lint: setup setup-infra
	$(VENV)/bin/cfn-lint infra/template.yaml infra/member.yaml
	$(SAM) validate --lint --template infra/template.yaml
	.venv-checkov/bin/checkov --file infra/template.yaml --file infra/member.yaml \
	  --framework cloudformation --skip-download --compact --quiet

# `sam build` for x86_64, offline (arm64 needs a rustup target this machine cannot fetch): each
# function's artifact an executable x86-64 `bootstrap`, and its zip's size. Not in make test
# (a third of its time on a fresh clone); .ci/run runs it.
infra-build: setup setup-infra
	infra/build-check.sh

# The fast lane's extension as the layer's content for ARCH (arm64, the template's default, or
# x86_64): target/layer/telemetry/extensions/rollback-guard-telemetry, TelemetryLayer's
# ContentUri. make deploy and make infra-build run it for the stack's architecture.
ARCH ?= arm64
layer: setup
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/cargo-lambda lambda build --release --extension \
	  -p rollback-guard-telemetry --$(subst _,-,$(ARCH)) --lambda-dir target/layer-build
	rm -rf target/layer/telemetry
	mkdir -p target/layer/telemetry/extensions
	cp target/layer-build/extensions/rollback-guard-telemetry target/layer/telemetry/extensions/

# Deploys with infra/samconfig.toml (stack rollback-guard; the AWS profile and region are
# yours). POLICY=path/to/policy.toml deploys that policy instead of the built-in one;
# PARAMS='Key=Value ...' sets other parameters.
deploy: setup setup-infra
	scripts/deploy.sh

undeploy: setup-infra
	cd infra && $(abspath .venv-sam)/bin/sam delete --config-file samconfig.toml --config-env $(or $(ENV),default)

# Every test. The pinned tools install while clippy compiles (pip waits on the network, cargo
# on the CPU). The release `sam build` is a packaging check, not a test: `make infra-build`,
# which .ci/run runs on every submission.
test:
	$(MAKE) --no-print-directory -j3 --output-sync=line setup setup-infra lint
	$(MAKE) --no-print-directory infra-lint
	$(WITH_EMULATOR) cargo test --workspace
	$(WITH_EMULATOR) $(VENV)/bin/python -m pytest -q -p no:cacheprovider infra/tests bench/tests
	@# The catalog's table, by the replay binary `cargo test` just built (`make replay` builds it
	@# for guard-e2e alone: other features, the whole dependency tree again).
	$(WITH_EMULATOR) target/debug/replay

clean:
	scripts/emulator.sh stop
	rm -rf $(VENV) .venv-sam .venv-checkov .emulator target
