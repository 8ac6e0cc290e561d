#!/usr/bin/env bash
# Runs a command with the local AWS emulator up and the SDK pointed at it, then stops the
# emulator whatever the command's result.
#   scripts/with-emulator.sh cargo test --workspace
set -euo pipefail
cd "$(dirname "$0")/.."
endpoint=$(scripts/emulator.sh start)
trap 'scripts/emulator.sh stop' EXIT
export AWS_ENDPOINT_URL="$endpoint"
# Bedrock Runtime goes to llm-katan instead (the SDK's service-specific endpoint variable).
AWS_ENDPOINT_URL_BEDROCK_RUNTIME=$(cat .emulator/bedrock_endpoint)
export AWS_ENDPOINT_URL_BEDROCK_RUNTIME
# The emulator accepts any credentials; these keep the SDK off real profiles and IMDS.
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE
"$@"
