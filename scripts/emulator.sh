#!/usr/bin/env bash
# Starts or stops the local emulators on free loopback ports: moto's server (AWS) and
# llm-katan (Bedrock Runtime, echo backend: answers Converse, fills tool use from the schema).
#   scripts/emulator.sh start   -> prints the AWS endpoint; writes .emulator/{pid,endpoint,
#                                  bedrock.pid,bedrock_endpoint}
#   scripts/emulator.sh stop    -> stops both by their process ids
set -euo pipefail
cd "$(dirname "$0")/.."
state=.emulator
mkdir -p "$state"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

case "${1:-}" in
  start)
    if [ -f "$state/pid" ] && kill -0 "$(cat "$state/pid")" 2>/dev/null; then
      cat "$state/endpoint"; exit 0
    fi
    port=$(free_port)
    .venv/bin/moto_server -H 127.0.0.1 -p "$port" >"$state/moto.log" 2>&1 &
    echo $! >"$state/pid"
    endpoint="http://127.0.0.1:$port"
    for _ in $(seq 1 100); do
      if curl -sf "$endpoint/moto-api/" >/dev/null 2>&1; then break; fi
      sleep 0.1
    done
    curl -sf "$endpoint/moto-api/" >/dev/null || { echo "moto did not start; see $state/moto.log" >&2; exit 1; }
    # Lambda functions are stored, never run: no Docker engine here.
    curl -sf -X POST "$endpoint/moto-api/config" -H 'Content-Type: application/json' \
      -d '{"lambda":{"use_docker":false}}' >/dev/null
    echo "$endpoint" >"$state/endpoint"

    bport=$(free_port)
    .venv/bin/llm-katan --model rollback-guard-test --backend echo --providers bedrock \
      --host 127.0.0.1 --port "$bport" --log-level warning >"$state/llm-katan.log" 2>&1 &
    echo $! >"$state/bedrock.pid"
    bedrock="http://127.0.0.1:$bport"
    for _ in $(seq 1 150); do
      if curl -sf "$bedrock/health" >/dev/null 2>&1; then break; fi
      sleep 0.1
    done
    curl -sf "$bedrock/health" >/dev/null || { echo "llm-katan did not start; see $state/llm-katan.log" >&2; exit 1; }
    echo "$bedrock" >"$state/bedrock_endpoint"
    echo "$endpoint"
    ;;
  stop)
    for p in pid bedrock.pid; do
      if [ -f "$state/$p" ]; then
        kill "$(cat "$state/$p")" 2>/dev/null || true
        rm -f "$state/$p"
      fi
    done
    rm -f "$state/endpoint" "$state/bedrock_endpoint"
    ;;
  *)
    echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
