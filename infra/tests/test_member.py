"""infra/member.yaml, the member accounts' stack of an organisation, created in the local
emulator's CloudFormation (moto's server, AWS_ENDPOINT_URL): its role's trust and grants, the
operators' role when asked for, and the rule forwarding the prefix's alarms to the central bus.

Run by `make test` (scripts/with-emulator.sh sets the endpoint and credentials).
"""

import ast
import json
import uuid

import pytest
from cfnlint.decode import decode
from template_support import ACCOUNT, ROOT, wait_created


@pytest.fixture
def stacks(aws):
    """The member stacks a test creates, taken away after it with their rules: a rule forwarding
    the default bus's alarm changes to the (same, emulated) central default bus makes the
    emulator's PutEvents fail for every test after it."""
    made = []
    yield made
    events = aws["events"]
    for stack in made:
        aws["cloudformation"].delete_stack(StackName=stack)
        for rule in events.list_rules(NamePrefix=stack)["Rules"]:
            targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
            if targets:
                events.remove_targets(Rule=rule["Name"], Ids=[t["Id"] for t in targets])
            events.delete_rule(Name=rule["Name"])
    assert not any(events.list_rules(NamePrefix=stack)["Rules"] for stack in made)


def test_the_member_template_gives_operators_a_role_of_their_own_only_when_asked(aws, stacks):
    member, matches = decode(str(ROOT / "infra" / "member.yaml"))
    assert not matches, matches
    body = json.dumps(json.loads(json.dumps(member, default=str)))
    cfn = aws["cloudformation"]
    operators = f"arn:aws:iam::{ACCOUNT}:role/platform-operators"
    stack = f"rgo-{uuid.uuid4().hex[:8]}"
    stacks.append(stack)
    common = [
        {"ParameterKey": "CentralGuardRoleArn", "ParameterValue": f"arn:aws:iam::{ACCOUNT}:role/rg-GuardRole"},
        {"ParameterKey": "OrganizationId", "ParameterValue": "o-abcdefghij"},
        {"ParameterKey": "CentralEventBusArn", "ParameterValue": f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/default"},
        {"ParameterKey": "MemberRoleName", "ParameterValue": f"{stack}-member"},
    ]
    cfn.create_stack(
        StackName=stack,
        TemplateBody=body,
        Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=common
        + [
            {"ParameterKey": "OperatorPrincipalArn", "ParameterValue": operators},
            {"ParameterKey": "OperatorRoleName", "ParameterValue": f"{stack}-operator"},
        ],
    )
    wait_created(cfn, stack)
    role = aws["iam"].get_role(RoleName=f"{stack}-operator")["Role"]
    trust = role["AssumeRolePolicyDocument"]
    if isinstance(trust, str):
        trust = json.loads(trust)
    (only,) = trust["Statement"]
    assert only["Principal"] == {"AWS": operators}
    assert only["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}}
    document = aws["iam"].get_role_policy(RoleName=f"{stack}-operator", PolicyName="operate")[
        "PolicyDocument"
    ]
    if isinstance(document, str):
        document = ast.literal_eval(document)
    statements = {s["Sid"]: s for s in document["Statement"]}
    assert set(statements) == {
        "ReadFunctions",
        "ListFunctions",
        "OperateOptedInFunctions",
        "OptInTagOnly",
        "GuardedAlarms",
        "ReadMetrics",
        "ReadDeployments",
        "ReadDeploymentTargets",
    }
    # Moving an alias or restoring a flag: opted-in functions only; tagging: the opt-in key only.
    assert statements["OperateOptedInFunctions"]["Condition"] == {
        "Null": {"aws:ResourceTag/rollback-guard:protect": "false"}
    }
    assert statements["OptInTagOnly"]["Condition"] == {
        "ForAllValues:StringEquals": {"aws:TagKeys": ["rollback-guard:protect"]}
    }
    assert statements["GuardedAlarms"]["Resource"].endswith(":alarm:guarded-*")
    outputs = {o["OutputKey"] for o in cfn.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]}
    assert "OperatorRoleArn" in outputs
    # Without a principal, no operator role.
    bare = f"rgn-{uuid.uuid4().hex[:8]}"
    stacks.append(bare)
    cfn.create_stack(
        StackName=bare,
        TemplateBody=body,
        Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[dict(p, ParameterValue=p["ParameterValue"].replace(stack, bare)) for p in common],
    )
    wait_created(cfn, bare)
    resources = cfn.list_stack_resources(StackName=bare)["StackResourceSummaries"]
    logical = {r["LogicalResourceId"] for r in resources}
    assert "MemberRole" in logical and "OperatorRole" not in logical


def test_the_member_template_creates_the_role_and_the_forwarding(aws, stacks):
    member, matches = decode(str(ROOT / "infra" / "member.yaml"))
    assert not matches, matches
    stack = f"rgm-{uuid.uuid4().hex[:8]}"
    stacks.append(stack)
    central_role = f"arn:aws:iam::{ACCOUNT}:role/rg-GuardRole"
    bus = f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/default"
    cfn = aws["cloudformation"]
    cfn.create_stack(
        StackName=stack,
        TemplateBody=json.dumps(json.loads(json.dumps(member, default=str))),
        Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[
            {"ParameterKey": "CentralGuardRoleArn", "ParameterValue": central_role},
            {"ParameterKey": "OrganizationId", "ParameterValue": "o-abcdefghij"},
            {"ParameterKey": "CentralEventBusArn", "ParameterValue": bus},
            {"ParameterKey": "MemberRoleName", "ParameterValue": f"{stack}-member"},
        ],
    )
    wait_created(cfn, stack)
    role = aws["iam"].get_role(RoleName=f"{stack}-member")["Role"]
    trust = role["AssumeRolePolicyDocument"]
    if isinstance(trust, str):
        trust = json.loads(trust)
    (only,) = trust["Statement"]
    # Only the central guard's role, and only from inside the organisation.
    assert only["Principal"] == {"AWS": central_role}
    assert only["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}}
    assert role["MaxSessionDuration"] == 3600
    document = aws["iam"].get_role_policy(RoleName=f"{stack}-member", PolicyName="guard")[
        "PolicyDocument"
    ]
    if isinstance(document, str):
        document = ast.literal_eval(document)
    statements = {s["Sid"]: s for s in document["Statement"]}
    assert set(statements) == {
        "FleetFunctions",
        "NeverTagsFunctions",
        "ConfirmAlarm",
        "FindShiftingDeployments",
        "StopShiftingDeployments",
    }
    opted_in = {"Null": {"aws:ResourceTag/rollback-guard:protect": "false"}}
    assert statements["FleetFunctions"]["Condition"] == opted_in
    assert statements["NeverTagsFunctions"]["Effect"] == "Deny"
    assert statements["ConfirmAlarm"]["Resource"].endswith(":alarm:guarded-*")
    assert statements["FindShiftingDeployments"]["Resource"].endswith(":deploymentgroup:*/*")
    assert "codedeploy:BatchGetDeployments" in statements["FindShiftingDeployments"]["Action"]
    assert statements["StopShiftingDeployments"]["Resource"] == "*"
    # The forwarding rule: the guarded alarms' state changes, to the central bus, with a role.
    rules = aws["events"].list_rules()["Rules"]
    assert any(r["Name"].startswith(f"{stack}-ForwardAliasChangesRule") for r in rules)
    rule = next(r for r in rules if r["Name"].startswith(f"{stack}-ForwardRule"))
    pattern = json.loads(rule["EventPattern"])
    assert pattern["detail"]["alarmName"] == [{"prefix": "guarded-"}]
    (target,) = aws["events"].list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert target["Arn"] == bus and target["RoleArn"].startswith("arn:aws:iam::")
