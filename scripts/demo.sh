#!/usr/bin/env bash
# The demo: a sample account on the local emulator, alarms replayed through the real `guard`
# CLI, what the guard did, and a check that it did what the demo says (a demo that shows a
# failure fails). Run through `make demo`, which builds both binaries and starts and stops the
# emulator.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/debug
# What the guard remembers (records, the stable version, claims) lives in its state table; the
# sample account has one, as the template's stack does.
export GUARD_STATE_TABLE=rollback-guard-state

echo "== 1. the sample account =="
$bin/demo provision

echo
echo "== 2. the alarms fire: guard replay --policy events/policy.toml ... =="
echo "   (orders-ai's alarm arrives twice, over EventBridge and SNS: one rollback;"
echo "    support-ai's fallback-rate alarm switches its AI off, keeping its other settings;"
echo "    search-ai's release went live weeks ago, as CloudTrail recorded: its alarm is not"
echo "    blamed on it, people are paged; reports-ai's trigger observes: announced, not done)"
mapfile -t files < <($bin/demo files)
# Insights from the local Bedrock (llm-katan, a stand-in: its answers are placeholders).
MODEL_ID=anthropic.claude-3-haiku-20240307-v1:0 $bin/guard replay --policy events/policy.toml \
  "${files[@]}" |
  tee .emulator/replay.jsonl |
  python3 -c '
import json, sys
for line in sys.stdin:
    d = json.loads(line)
    moved = ""
    if d.get("alias_before") and d.get("alias_after"):
        moved = " (alias on %s -> %s)" % (d["alias_before"]["version"], d["alias_after"]["version"])
    print("   %s: %s%s\n      %s" % (d["file"], d["outcome"], moved, d["reason"]))
'

echo
echo "== 3. one more function under the guard: guard protect --function shipping --alias live =="
echo "   (its standard alarms under the fleet trigger's prefix, then the opt-in tag; the"
echo "    emulator's function has no traffic, which protect says: such alarms cannot fire)"
$bin/guard protect --policy events/policy.toml --function shipping --alias live --p95-ms 1500 |
  sed 's/^/   /'

echo
echo "== 4. what the guard did =="
$bin/demo show

echo
echo "== 5. checked =="
$bin/demo check .emulator/replay.jsonl
