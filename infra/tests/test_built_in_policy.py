"""The template's built-in policy, filled in as CloudFormation would fill it, against the
`guard` binary: valid, with and without a protected function and member accounts, and deciding
as meant (`guard validate`, `guard evaluate`).

Run by `make test` (scripts/with-emulator.sh sets the endpoint and credentials).
"""

import json
import subprocess

from template_support import ACCOUNT, EVENTS, ROOT, defaults, resolve


def built_in_policies(template):
    """The built-in policy's two forms (with a protected function, the fleet alone), each as
    its Fn::Sub; and where the policy is read from otherwise."""
    variables = template["Resources"]["GuardFunction"]["Properties"]["Environment"]["Variables"]
    elsewhere, empty, chosen = variables["GUARD_POLICY"]["Fn::If"]
    assert (elsewhere, empty) == ("PolicyElsewhere", "")
    built_in, forms, given = chosen["Fn::If"]
    assert built_in == "BuiltInPolicy" and given == {"Ref": "GuardPolicy"}
    protected, with_target, fleet_only = forms["Fn::If"]
    assert protected == "HasProtected"
    assert variables["GUARD_POLICY_SSM"] == {"Ref": "PolicyParameterName"}
    assert variables["GUARD_POLICY_S3"] == {"Ref": "PolicyObjectUri"}
    return with_target["Fn::Sub"], fleet_only["Fn::Sub"]


def validated(tmp_path, name, policy):
    path = tmp_path / name
    path.write_text(policy)
    guard = ROOT / "target" / "debug" / "guard"
    if not guard.exists():
        subprocess.run(["cargo", "build", "-q", "-p", "guard-cli"], cwd=ROOT, check=True)
    result = subprocess.run([str(guard), "validate", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return guard, path


def test_without_a_protected_function_the_built_in_policy_is_the_fleet_alone(template, tmp_path):
    _, sub = built_in_policies(template)
    params = dict(defaults(template), **{"AWS::AccountId": ACCOUNT, "AWS::Partition": "aws", "Members": ""})
    policy = resolve({"Fn::Sub": sub[0]}, params)
    assert "${" not in policy and "[[target]]" not in policy, policy
    guard, path = validated(tmp_path, "fleet.toml", policy)
    out = subprocess.run([str(guard), "validate", str(path)], capture_output=True, text=True).stdout
    assert out.startswith("policy OK: 0 target(s), 2 trigger(s) (2 fleet"), out
    # The fast lane's alarms first (their own pattern), then every other one of the prefix.
    assert policy.index('alarm = "guarded-fast-*"') < policy.index('alarm = "guarded-*"'), policy


def test_the_built_in_policy_is_valid(template, tmp_path):
    sub, _ = built_in_policies(template)
    # With two member accounts, as the template's `Members` makes them.
    params = dict(
        defaults(template),
        **{
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "Fn": "rollback-guard-ai-insight",
            "Members": ', "222222222222", "333333333333"',
        },
    )
    members = sub[1]["Members"]["Fn::If"]
    assert members[0] == "HasMembers" and members[2] == ""
    assert members[1]["Fn::Sub"][0] == ', "${List}"'
    policy = resolve({"Fn::Sub": sub[0]}, params)
    assert 'accounts = ["123456789012", "222222222222", "333333333333"]' in policy, policy
    assert 'member_role = "arn:aws:iam::{account}:role/rollback-guard-member"' in policy
    assert "${" not in policy, policy
    guard, path = validated(tmp_path, "policy.toml", policy)
    # A seed alarm, a fleet alarm (its metrics name orders-ai:live) and a stranger's, through
    # the built-in policy.
    event = json.loads((EVENTS / "eventbridge-alarm.json").read_text())
    for alarm, decided, target in [
        ("guarded-error-rate", True, "protected"),
        ("guarded-fast-error-rate", True, "protected"),
        ("guarded-orders-errors", True, "orders-ai"),
        ("guarded-fast-orders-error-rate", True, "orders-ai"),
        ("payments-latency", False, None),
    ]:
        event["detail"]["alarmName"] = alarm
        arn = event["resources"][0].rsplit(":", 1)[0] + ":" + alarm
        event["resources"] = [arn]
        file = tmp_path / f"{alarm}.json"
        file.write_text(json.dumps(event))
        result = subprocess.run(
            [str(guard), "evaluate", "--policy", str(path), str(file)],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        assert ("rollback-alias" in result.stdout) == decided, result.stdout
        assert json.loads(result.stdout)["target"] == target, result.stdout
