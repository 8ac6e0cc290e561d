#!/usr/bin/env bash
# make deploy: the telemetry layer (make layer), sam build (cargo lambda, arm64 unless PARAMS
# says Architecture=x86_64) and sam deploy with infra/samconfig.toml.
#   POLICY=path/to/policy.toml  deploys that policy (checked first with `guard validate`);
#                               without it, the template's built-in policy applies.
#   PARAMS='Key=Value ...'      other template parameters (ProtectedFunctionName, ...).
#   ENV=demo                    the demo's stack (infra/samconfig.toml [demo]: the sample
#                               workload and its seed alarms); default: the guard alone.
set -euo pipefail
cd "$(dirname "$0")/.."
sam="$PWD/.venv-sam/bin/sam"
export SAM_CLI_TELEMETRY=0
env="${ENV:-default}"
overrides=()
build_overrides=()
# Overrides given here replace samconfig's: the demo's own come first.
if [ "$env" = demo ]; then
  overrides+=(SampleWorkload=true SeedAlarms=true)
  build_overrides+=(SampleWorkload=true)
fi
if [ -n "${POLICY:-}" ]; then
  cargo run -q -p guard-cli -- validate "$POLICY"
  # One parameter value, quoted for the SAM CLI: backslashes and double quotes escaped.
  escaped=$(sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' "$POLICY")
  overrides+=("GuardPolicy=\"$escaped\"")
fi
if [ -n "${PARAMS:-}" ]; then
  read -r -a extra <<<"$PARAMS"
  overrides+=("${extra[@]}")
  # The build must target the architecture the stack will run.
  for kv in "${extra[@]}"; do
    if [[ $kv == Architecture=* ]]; then build_overrides+=("$kv"); fi
  done
fi
# The fast lane's layer, for the architecture the stack will run (TelemetryLayer's content).
arch=arm64
for kv in ${build_overrides[@]+"${build_overrides[@]}"}; do
  if [[ $kv == Architecture=* ]]; then arch=${kv#Architecture=}; fi
done
make --no-print-directory layer ARCH="$arch"
cd infra
# .venv first: its python3 holds ziglang, which cargo-lambda runs as `python3 -m ziglang`.
PATH="$PWD/../.venv/bin:$(dirname "$sam"):$PATH" "$sam" build --config-file samconfig.toml --config-env "$env" \
  ${build_overrides[@]+--parameter-overrides "${build_overrides[@]}"}
if [ ${#overrides[@]} -gt 0 ]; then
  "$sam" deploy --config-file samconfig.toml --config-env "$env" --parameter-overrides "${overrides[@]}"
else
  "$sam" deploy --config-file samconfig.toml --config-env "$env"
fi
