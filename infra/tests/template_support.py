"""What the template's tests share: where things are, the template's parameters resolved as
CloudFormation would, the catalog's EventBridge envelopes, and a rule's deliveries read back
through SQS (the emulator cannot deliver to SNS or Lambda targets)."""

import json
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "template.yaml"
EVENTS = ROOT / "events"
ACCOUNT = "123456789012"


def defaults(template):
    return {k: v.get("Default") for k, v in template["Parameters"].items()}


def resolve(node, params):
    """The template's Ref and Sub on parameters and pseudo parameters, as CloudFormation does."""
    if isinstance(node, list):
        return [resolve(n, params) for n in node]
    if isinstance(node, dict):
        if set(node) == {"Ref"}:
            return params[node["Ref"]]
        if set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], str):
            text = node["Fn::Sub"]
            for k, v in params.items():
                text = text.replace("${%s}" % k, str(v))
            return text
        return {k: resolve(v, params) for k, v in node.items()}
    return node


def guard_events(template):
    return template["Resources"]["GuardFunction"]["Properties"]["Events"]


def catalog_envelopes():
    """Every catalog file that is an EventBridge envelope (the SNS, Lambda-action and truncated
    ones never reach a rule)."""
    out = {}
    for path in sorted(EVENTS.glob("*.json")):
        if path.name == "expected.json":
            continue
        try:
            event = json.loads(path.read_text())
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict) and "detail-type" in event:
            out[path.name] = event
    return out


def delivered_through(aws, bus, pattern, entries):
    """Puts `entries` (name -> PutEvents entry) on `bus` under a rule with `pattern` whose
    target is a fresh SQS queue; returns the names that arrived."""
    suffix = uuid.uuid4().hex[:8]
    queue_url = aws["sqs"].create_queue(QueueName=f"rule-{suffix}")["QueueUrl"]
    queue_arn = aws["sqs"].get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    rule = f"rule-{suffix}"
    aws["events"].put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps(pattern))
    aws["events"].put_targets(
        Rule=rule, EventBusName=bus, Targets=[{"Id": "queue", "Arn": queue_arn}]
    )
    # Each entry carries its name as one more resource (no pattern here looks at resources).
    marker = "arn:aws:test:::entry/"
    for name, entry in entries.items():
        entry = dict(entry, EventBusName=bus, Resources=entry.get("Resources", []) + [marker + name])
        result = aws["events"].put_events(Entries=[entry])
        assert result["FailedEntryCount"] == 0, (name, result)
    got = set()
    deadline = time.time() + 10
    while time.time() < deadline:
        messages = aws["sqs"].receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            break
        for m in messages:
            body = json.loads(m["Body"])
            got.update(r[len(marker) :] for r in body["resources"] if r.startswith(marker))
            aws["sqs"].delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    return got


def entry(event):
    return {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Detail": json.dumps(event["detail"]),
        "Resources": event.get("resources", []),
    }


def wait_created(cfn, stack):
    """Waits for the stack to be created, and fails with its events if it was not."""
    status = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
    for _ in range(100):
        if not status.endswith("IN_PROGRESS"):
            break
        time.sleep(0.1)
        status = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
    assert status == "CREATE_COMPLETE", cfn.describe_stack_events(StackName=stack)


def without_sam(template):
    """The template less its SAM parts: the transform, the globals, the serverless resources,
    and the resources and outputs that name them (`Fn`, `Fn.Alias`, a DependsOn)."""
    removed = {
        k for k, v in template["Resources"].items() if v["Type"].startswith("AWS::Serverless::")
    }

    def names_removed(node):
        words = set(json.dumps(node).split('"'))
        return any(w in removed or w.split(".")[0] in removed for w in words)

    # What names a removed resource goes too, and then what names that.
    while True:
        more = {
            k
            for k, v in template["Resources"].items()
            if k not in removed and names_removed(v)
        }
        if not more:
            break
        removed |= more
    plain = {
        k: v
        for k, v in template.items()
        if k not in ("Transform", "Globals", "Outputs", "Resources")
    }
    plain["Resources"] = {k: v for k, v in template["Resources"].items() if k not in removed}
    plain["Outputs"] = {k: v for k, v in template["Outputs"].items() if not names_removed(v)}
    assert "GuardRole" in plain["Resources"] and "GuardFunction" not in plain["Resources"]
    return plain
