"""The Python reference for `make bench`: the guard's decision (intake, policy match, decision;
no I/O) written the way the seed runbooks' boto3 Lambdas are — json.loads and dict lookups —
on the same catalog events and policy as the Rust benchmark (bench/src/lib.rs TRANSPORTS).

  python bench/reference.py            -> JSON: median nanoseconds per event, per transport
  python bench/reference.py --round    -> the same, in a short round (15 batches of ~10 ms per
                                          transport) beside a round of the Rust decision
                                          (bench/report.py: the same-seconds ratio)
  python bench/reference.py --loads    -> json.loads alone on the same bytes: the part of the
                                          reference that is CPython's C code, for reading the
                                          ratio
  (bench/python_guard.py imports decide() for the cold-start comparison)

It checks its verdicts against events/expected.json first: both sides must do the same work.
"""

import json
import re
import statistics
import sys
import timeit
import tomllib
from datetime import datetime
from pathlib import Path

EVENTS = Path(__file__).resolve().parent.parent / "events"
TRANSPORTS = {
    "eventbridge": "eventbridge-alarm.json",
    "sns": "sns-alarm.json",
    "lambda-action": "lambda-action-alarm.json",
    "critical-insight": "insight-critical.json",
    "rollback-requested": "request-rollback.json",
    "schedule": "schedule.json",
}
STATES = {"OK", "ALARM", "INSUFFICIENT_DATA"}
ARN = re.compile(r"^arn:aws[a-z-]*:cloudwatch:([a-z0-9-]+):(\d{12}):alarm:(.+)$")


def load_policy(path=EVENTS / "policy.toml"):
    with open(path, "rb") as f:
        policy = tomllib.load(f)
    policy["targets"] = {t["name"]: t for t in policy.get("target", [])}
    return policy


def timestamp(text):
    # "2026-11-20T03:12:45.123+0000" or "...Z"
    return datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z")


def verdict(outcome, action=None, target=None):
    return {"outcome": outcome, "action": action, "target": target}


def alarm_trigger(policy, name):
    for t in policy["trigger"]:
        pattern = t.get("alarm")
        if pattern is None:
            continue
        if pattern.endswith("*") and name.startswith(pattern[:-1]) or pattern == name:
            return t
    return None


def first_action(trigger):
    action = trigger["action"]
    return action[0] if isinstance(action, list) else action


def decide_alarm(policy, arn, name, state, old_state, at):
    m = ARN.match(arn or "")
    if not m or m.group(3) != name:
        raise ValueError("alarm ARN and name disagree")
    accounts = policy["guard"].get("accounts")
    if accounts and m.group(2) not in accounts:
        raise ValueError("account not guarded")
    if state not in STATES or old_state not in STATES:
        raise ValueError("unknown state")
    timestamp(at)
    trigger = alarm_trigger(policy, name)
    if trigger is None or state != "ALARM":
        return verdict("no-action")
    return verdict("act", first_action(trigger), trigger["target"])


def decide(policy, raw):
    event = json.loads(raw)
    if "Records" in event:
        message = json.loads(event["Records"][0]["Sns"]["Message"])
        return decide_alarm(
            policy,
            message["AlarmArn"],
            message["AlarmName"],
            message["NewStateValue"],
            message["OldStateValue"],
            message["StateChangeTime"],
        )
    if "alarmData" in event:
        data = event["alarmData"]
        return decide_alarm(
            policy,
            event["alarmArn"],
            data["alarmName"],
            data["state"]["value"],
            data["previousState"]["value"],
            data["state"]["timestamp"],
        )
    kind = event.get("detail-type")
    detail = event.get("detail", {})
    if kind == "CloudWatch Alarm State Change":
        if event.get("source") != "aws.cloudwatch":
            raise ValueError("not from CloudWatch")
        return decide_alarm(
            policy,
            event["resources"][0],
            detail["alarmName"],
            detail["state"]["value"],
            detail["previousState"]["value"],
            detail["state"]["timestamp"],
        )
    if kind == "Critical Insight":
        risk = int(detail["risk_score"])
        if not 0 <= risk <= 100:
            raise ValueError("risk out of range")
        for t in policy["trigger"]:
            if t.get("insight_source") == event["source"] and t.get(
                "stream_id", t["target"]
            ) == detail["stream_id"]:
                if risk >= t.get("min_risk", 80):
                    return verdict("act", first_action(t), t["target"])
                return verdict("no-action")
        raise ValueError("insight source not trusted")
    if kind == "Rollback Requested":
        if event["source"] not in policy["guard"].get("request_sources", []):
            raise ValueError("source not trusted")
        target = detail["target"]
        if target not in policy["targets"]:
            raise ValueError("unknown target")
        return verdict("act", detail["action"], target)
    if kind == "Scheduled Event":
        return verdict("no-action")
    raise ValueError("unknown event")


def check(policy):
    expected = json.loads((EVENTS / "expected.json").read_text())
    for file in TRANSPORTS.values():
        got = decide(policy, (EVENTS / file).read_bytes())
        want = {k: expected[file][k] for k in ("outcome", "action", "target")}
        assert got == want, (file, got, want)


def batch_size(run, seconds=0.01):
    """How many calls fill a batch of `seconds`, from a short warm-up."""
    calls, start = 0, timeit.default_timer()
    while timeit.default_timer() - start < seconds:
        run()
        calls += 1
    return max(calls, 1)


def main():
    policy = load_policy()
    check(policy)
    loads_only = "--loads" in sys.argv
    result = {}
    for transport, file in TRANSPORTS.items():
        raw = (EVENTS / file).read_bytes()

        # One function per mode: the timed call holds no branch.
        if loads_only:

            def run():
                return json.loads(raw)

        else:

            def run():
                return decide(policy, raw)

        number = batch_size(run) if "--round" in sys.argv else 2000
        runs = timeit.repeat(run, number=number, repeat=15)
        result[transport] = statistics.median(runs) / number * 1e9
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
