#!/usr/bin/env bash
# Instructions per decision (intake + policy match + decision), per transport, counted by
# callgrind on an unstripped build of the criterion benchmark: unlike time, the same for the
# same binary and input however busy the machine is. `make bench-instructions`.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${PROFILE_TARGET_DIR:-target/profile}
export CARGO_PROFILE_BENCH_STRIP=false CARGO_PROFILE_BENCH_DEBUG=line-tables-only \
  CARGO_PROFILE_BENCH_LTO=false CARGO_PROFILE_BENCH_CODEGEN_UNITS=16
binary=$(CARGO_TARGET_DIR=$TARGET cargo bench -p guard-bench --bench decision --no-run \
  --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "decision" and m.get("executable"):
        print(m["executable"])')
out=$(mktemp -d)
cd bench
for transport in eventbridge sns lambda-action critical-insight rollback-requested schedule; do
  valgrind --tool=callgrind --callgrind-out-file="$out/$transport" "$binary" --bench \
    --profile-time 1 "decision/$transport\$" > /dev/null 2>&1
  python3 - "$out/$transport" "$transport" <<'PY'
import re, sys
lines = open(sys.argv[1]).read().split("\n")
names = {}
for line in lines:
    m = re.match(r"c?fn=\((\d+)\)( (.*))?", line)
    if m and m.group(3):
        names[m.group(1)] = m.group(3)
calls = cost = 0
for i, line in enumerate(lines):
    m = re.match(r"cfn=\((\d+)\)", line)
    if m and re.search(r"decision::evaluate( |$)", names.get(m.group(1), "")):
        calls += int(lines[i + 1].split()[0].split("=")[1])
        cost += int(lines[i + 2].split()[1])
print(f"{sys.argv[2]:20s} {cost / calls:8.0f} instructions per event ({calls} calls)")
PY
done
rm -rf "$out"
