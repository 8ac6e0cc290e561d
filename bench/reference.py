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

It checks its verdicts against events/expected.json first, on every catalog event and not only
the timed ones (the trust checks, replays, triggers that match nothing): both sides must make
the same decision.
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
# Where the guard runs (its own account and region): the catalog's sample account.
HOME = ("123456789012", "us-east-1")
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


def guarded(policy, account, region):
    """An event the guard may act on: of an account in guard.accounts, and caused where the
    guard runs."""
    accounts = policy["guard"].get("accounts")
    return (not accounts or account in accounts) and (account, region) == HOME


def act(policy, action, target, replay, trigger=None):
    """Acting on a target: a replayed event as guard.on_replay says; an automatic cause under
    an observing trigger (or guard) only observed; a person's request (no trigger) acts."""
    if replay is not None:
        mode = policy["guard"].get("on_replay", "dry-run")
    elif trigger is not None and trigger.get("mode", policy["guard"].get("mode", "act")) == "observe":
        mode = "observe"
    else:
        mode = "act"
    if mode == "ignore":
        return verdict("ignored")
    out = verdict(mode, action, target)
    if trigger is not None and mode != "dry-run":
        judgement = judgement_to_come(policy, trigger, mode)
        if judgement is not None:
            out["judgement"] = judgement
    return out


def judgement_to_come(policy, trigger, mode):
    """What the guard judges when it acts on an automatic alias rollback (as the Rust
    decision's `judgement`): the window, the cap, observe mode."""
    action = trigger["action"]
    if "rollback-alias" not in (action if isinstance(action, list) else [action]):
        return None
    window = trigger.get("blame_window_minutes", policy["guard"].get("blame_window_minutes", 1440))
    source = "the trigger's blame_window_minutes" if "blame_window_minutes" in trigger else "guard.blame_window_minutes"
    cap = policy["guard"].get("max_rollbacks_per_hour", 20)
    observe = " Observe mode: it announces what it would do and changes nothing." if mode == "observe" else ""
    return (
        "before rolling the alias back the guard reads when the version it serves went live: "
        "CloudTrail's UpdateAlias record it kept (or a person's move through it), else the "
        "version's publish time (LastModified), else the CodeDeploy deployment that shifted the "
        f"alias. It rolls back only if that was within the last {window} minutes ({source}) and "
        "before the alarm went into ALARM (CloudWatch's time); once per release; never below a "
        "floor ([[target]] floor, tag rollback-guard:floor); at most "
        f"{cap} automatic rollbacks an hour in the account (guard.max_rollbacks_per_hour). "
        "Otherwise it pages people with the command that would roll back. A canary's abort is "
        f"not judged.{observe}"
    )


SUPPRESSED_BY = {"Alarm", "WaitPeriod", "ExtensionPeriod"}


def watched(metrics):
    """The (function, alias) every metric that names a function names, or None: what a fleet
    trigger (target = "from-alarm") acts on. `metrics` holds each metric's dimensions as a
    dict; None when the alarm has none (composite). Read only under a fleet trigger, as the
    guard does."""
    if not metrics:
        return None
    names, aliases = set(), set()
    for dims in metrics:
        resource = dims.get("Resource")
        fn, _, qualifier = (resource or "").partition(":")
        name = dims.get("FunctionName") or fn or None
        if name is None:
            continue
        if resource and fn != name:
            return None
        names.add(name)
        if qualifier and not qualifier.isdigit() and qualifier != "$LATEST":
            aliases.add(qualifier)
    if len(names) != 1 or len(aliases) != 1:
        return None
    return names.pop(), aliases.pop()


def eventbridge_metrics(configuration):
    metrics = (configuration or {}).get("metrics")
    if metrics is None:
        return None
    return [m["metricStat"]["metric"].get("dimensions", {}) for m in metrics if "metricStat" in m]


def sns_metrics(trigger):
    if trigger is None:
        return None
    pairs = lambda dims: {d["name"]: d["value"] for d in dims}
    if "Metrics" in trigger:
        return [pairs(m["MetricStat"]["Metric"].get("Dimensions", [])) for m in trigger["Metrics"] if "MetricStat" in m]
    return [pairs(trigger.get("Dimensions", []))]


def decide_alarm(policy, arn, name, state, old_state, at, replay=None, suppressed_by=None, metrics=None):
    m = ARN.match(arn or "")
    if not m or m.group(3) != name:
        raise ValueError("alarm ARN and name disagree")
    if state not in STATES or old_state not in STATES:
        raise ValueError("unknown state")
    timestamp(at)
    if not guarded(policy, m.group(2), m.group(1)):
        return verdict("rejected")
    trigger = alarm_trigger(policy, name)
    if trigger is None:
        return verdict("ignored")
    target = trigger["target"]
    if target == "from-alarm":
        alias = watched(metrics() if metrics else None)
        if alias is None:
            return verdict("rejected")
        target = alias[0]
    if state != "ALARM":
        return verdict("no-action")
    if suppressed_by is not None and suppressed_by != "None":
        if suppressed_by not in SUPPRESSED_BY:
            raise ValueError("unknown actionsSuppressedBy")
        # People silenced the alarm's actions (an actions suppressor): the guard stands down.
        return verdict("skipped", first_action(trigger), target)
    return act(policy, first_action(trigger), target, replay, trigger)


def decide_insight(policy, event, detail):
    risk = int(detail["risk_score"])
    if not 0 <= risk <= 100:
        raise ValueError("risk out of range")
    if not guarded(policy, event["account"], event["region"]):
        return verdict("rejected")
    source = event["source"]
    triggers = [t for t in policy["trigger"] if t.get("insight_source") == source]
    if not triggers:
        return verdict("rejected")
    for t in triggers:
        if t.get("stream_id", t["target"]) == detail["stream_id"]:
            if risk < t.get("min_risk", 80):
                return verdict("no-action")
            return act(policy, first_action(t), t["target"], event.get("replay-name"), t)
    return verdict("ignored")


FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def decide_request(policy, event, detail):
    if not guarded(policy, event["account"], event["region"]):
        return verdict("rejected")
    if event["source"] not in policy["guard"].get("request_sources", []):
        return verdict("rejected")
    target = policy["targets"].get(detail["target"])
    action = detail["action"]
    if action not in ("rollback-alias", "disable-ai"):
        return verdict("rejected")
    if target is None:
        # A fleet function, if a fleet trigger exists: its opt-in tag is read when acting.
        fleet = any(t.get("target") == "from-alarm" for t in policy["trigger"])
        if fleet and FUNCTION_NAME.fullmatch(detail["target"]):
            return act(policy, action, detail["target"], event.get("replay-name"))
        return verdict("rejected")
    if action == "rollback-alias" and "alias" not in target:
        return verdict("rejected")
    return act(policy, action, target["name"], event.get("replay-name"))


ALIAS_NAME = re.compile(r"(?!^[0-9]+$)[A-Za-z0-9_-]{1,128}")


def decide_alias_change(policy, event, detail):
    """CloudTrail's record of an UpdateAlias or CreateAlias: kept for the judgement, no action."""
    name = detail["eventName"]
    if not (name.startswith("UpdateAlias") or name.startswith("CreateAlias")):
        raise ValueError("not an alias change")
    if detail.get("errorCode"):
        raise ValueError("the call failed")
    datetime.fromisoformat(detail["eventTime"].replace("Z", "+00:00"))
    params = detail["requestParameters"]
    function = params["functionName"].split(":function:")[-1].split(":")[0]
    version = params["functionVersion"]
    if not (FUNCTION_NAME.fullmatch(function) and ALIAS_NAME.fullmatch(params["name"]) and version.isdigit()):
        raise ValueError("not a function, an alias and a version")
    if not guarded(policy, event["account"], event["region"]):
        return verdict("rejected")
    return verdict("no-action")


def decide(policy, raw):
    event = json.loads(raw)
    if "Records" in event:
        (record,) = event["Records"]
        if record.get("eventSource") == "aws:sqs":
            # The alarm queue's envelope: its one message's body is the event.
            return decide(policy, record["body"])
        sns = record["Sns"]
        if record["EventSource"] != "aws:sns" or sns["Type"] != "Notification":
            raise ValueError("not an SNS notification")
        message = json.loads(sns["Message"])
        return decide_alarm(
            policy,
            message["AlarmArn"],
            message["AlarmName"],
            message["NewStateValue"],
            message["OldStateValue"],
            message["StateChangeTime"],
            metrics=lambda: sns_metrics(message.get("Trigger")),
        )
    if "alarmData" in event:
        if event["source"] != "aws.cloudwatch":
            raise ValueError("not from CloudWatch")
        data = event["alarmData"]
        return decide_alarm(
            policy,
            event["alarmArn"],
            data["alarmName"],
            data["state"]["value"],
            data["previousState"]["value"],
            data["state"]["timestamp"],
            suppressed_by=data["state"].get("actionsSuppressedBy"),
            metrics=lambda: eventbridge_metrics(data.get("configuration")),
        )
    kind = event.get("detail-type")
    detail = event.get("detail", {})
    if kind == "CloudWatch Alarm State Change":
        if event.get("source") != "aws.cloudwatch":
            raise ValueError("not from CloudWatch")
        (arn,) = event["resources"]  # the alarm's ARN, alone
        return decide_alarm(
            policy,
            arn,
            detail["alarmName"],
            detail["state"]["value"],
            detail["previousState"]["value"],
            detail["state"]["timestamp"],
            event.get("replay-name"),
            detail["state"].get("actionsSuppressedBy"),
            lambda: eventbridge_metrics(detail.get("configuration")),
        )
    if kind == "Critical Insight":
        return decide_insight(policy, event, detail)
    if kind == "Rollback Requested":
        return decide_request(policy, event, detail)
    if kind == "AWS API Call via CloudTrail" and event.get("source") == "aws.lambda":
        return decide_alias_change(policy, event, detail)
    if kind == "Scheduled Event" and event.get("source") == "aws.events":
        return verdict("no-action" if guarded(policy, event["account"], event["region"]) else "rejected")
    raise ValueError("unknown event")


# What decide() raises on an event it cannot read (json.JSONDecodeError is a ValueError).
UNREADABLE = (ValueError, KeyError, IndexError, TypeError)


def decide_or_reject(policy, raw):
    """The verdict on any event: one the reference cannot read is rejected, as the guard
    rejects it."""
    try:
        return decide(policy, raw)
    except UNREADABLE:
        return verdict("rejected")


def check(policy):
    """The reference reaches the guard's verdict on every catalog event (events/expected.json),
    not only on the ones it times: both sides make the same decision."""
    expected = json.loads((EVENTS / "expected.json").read_text())
    for file, want in expected.items():
        got = decide_or_reject(policy, (EVENTS / file).read_bytes())
        got = {k: got[k] for k in ("outcome", "action", "target")}
        want = {k: want[k] for k in ("outcome", "action", "target")}
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
