"""infra/template.yaml against the local emulator (moto's server, AWS_ENDPOINT_URL).

- The guard's EventBridge rules, with the template's own event patterns, take exactly the
  catalog events they should (EventBridge pattern semantics, as the emulator implements
  them): PutEvents -> rule -> SQS target -> read back.
- The template's non-SAM resources create in the emulator's CloudFormation; what it creates is
  asserted (it skips CloudWatch alarms silently, so those are checked in the template itself).
- Elsewhere: the built-in policy (test_built_in_policy.py), infra/member.yaml (test_member.py).

Run by `make test` (scripts/with-emulator.sh sets the endpoint and credentials).
"""

import ast
import json
import uuid

from cfnlint.decode import decode
from template_support import (
    ACCOUNT,
    EVENTS,
    ROOT,
    catalog_envelopes,
    defaults,
    delivered_through,
    entry,
    guard_events,
    resolve,
    wait_created,
    without_sam,
)

# The guard's audit events go to the same bus as insights and requests; the rule must never
# hand them back to the guard.
AUDIT_DETAIL_TYPES = [
    "Rollback Executed",
    "AI Disabled",
    "Rollback Planned",
    "Rollback Skipped",
    "Rollback Failed",
    "Guard Blind",
]


def test_the_alarm_rule_takes_guarded_alarm_state_changes_only(template, aws):
    params = dict(defaults(template), AlarmNamePrefix="orders-ai-")
    props = template["Resources"]["AlarmStateRule"]["Properties"]
    assert "EventBusName" not in props, "alarm state changes arrive on the default bus"
    pattern = resolve(props["EventPattern"], params)
    assert pattern["detail"]["alarmName"] == [{"prefix": "orders-ai-"}]
    entries = {n: entry(e) for n, e in catalog_envelopes().items()}
    got = delivered_through(aws, "default", pattern, entries)
    # Every alarm state change of an `orders-ai-` alarm, whatever its state, kind or flaws
    # inside the detail: those the guard's intake rejects (bad-*) or ignores (OK,
    # INSUFFICIENT_DATA) are its to judge, with an error or a no-op on record.
    assert got == {
        "bad-arn-mismatch.json",
        "bad-missing-timestamp.json",
        "bad-other-account.json",
        "bad-other-region.json",
        "bad-unknown-state.json",
        "eventbridge-alarm.json",
        "eventbridge-anomaly-detection.json",
        "eventbridge-composite.json",
        "eventbridge-composite-suppressed.json",
        "eventbridge-insufficient-data.json",
        "eventbridge-ok.json",
        "eventbridge-replayed.json",
    }
    # Never: another source claiming to be an alarm (bad-wrong-source), unguarded alarms
    # (checkout-ai-, support-ai-, payments-), insights, requests, the schedule.


def test_insights_and_requests_reach_the_guard_each_on_its_own_bus_from_its_source(template, aws):
    params = defaults(template)
    entries = {n: entry(e) for n, e in catalog_envelopes().items()}
    for detail_type in AUDIT_DETAIL_TYPES:
        entries[detail_type] = {
            "Source": "rollback-guard",
            "DetailType": detail_type,
            "Detail": json.dumps({"what": detail_type}),
        }
    wanted = {
        # Insights on the audit bus, from the insight source.
        "Insights": (
            {"Ref": "AuditBus"},
            {"bad-insight-risk-out-of-range.json", "insight-critical.json", "insight-low-risk.json"},
        ),
        # Requests on the request bus only people's roles may write, from the CLI's source.
        "Requests": (
            {"Ref": "RequestBus"},
            {"bad-request-unknown-target.json", "request-rollback.json"},
        ),
    }
    for name, (bus_ref, want) in wanted.items():
        props = guard_events(template)[name]["Properties"]
        assert props["EventBusName"] == bus_ref, name
        bus = f"{name.lower()}-{uuid.uuid4().hex[:8]}"
        aws["events"].create_event_bus(Name=bus)
        got = delivered_through(aws, bus, resolve(props["Pattern"], params), entries)
        assert got == want, name
    # Never: unlisted sources (bad-insight-unknown-source, bad-request-unlisted-source), the
    # guard's own audit events, alarm state changes, the schedule.
    assert "InsightsAndRequests" not in guard_events(template)


def test_each_writer_puts_only_its_own_source_and_requests_come_from_peoples_roles(template):
    resources = template["Resources"]

    def statement(role, sid):
        statements = resources[role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        return next(s for s in statements if isinstance(s, dict) and s.get("Sid") == sid)

    audit = statement("GuardRole", "Audit")
    assert audit["Condition"] == {"StringEquals": {"events:source": "rollback-guard"}}
    insights = statement("InsightRole", "CriticalInsights")
    assert insights["Condition"] == {"StringEquals": {"events:source": {"Ref": "InsightSource"}}}
    # Neither may write the request bus.
    for role in ("GuardRole", "InsightRole"):
        statements = resources[role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        assert not any(
            isinstance(s, dict) and "RequestBus" in json.dumps(s.get("Resource")) for s in statements
        ), role
    policy = resources["RequestBus"]["Properties"]["Policy"]
    assert policy["Fn::If"][0] == "HasRequestSenders"
    (deny,) = policy["Fn::If"][1]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Action"] == "events:PutEvents"
    assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": {"Ref": "RequestSenderArns"}}}


def test_only_the_guarded_alarms_publish_to_the_guards_topic(template):
    statements = template["Resources"]["AlarmsPublish"]["Properties"]["PolicyDocument"]["Statement"]
    deny = next(s for s in statements if s["Sid"] == "OnlyGuardedAlarmsPublishToTheGuard")
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*"
    assert deny["Resource"] == {"Ref": "AlarmTopic"}
    assert "alarm:${AlarmNamePrefix}*" in json.dumps(deny["Condition"]["ArnNotLike"])


def test_the_rules_retry_and_dead_letter(template):
    events = guard_events(template)
    [to_queue] = template["Resources"]["AlarmStateRule"]["Properties"]["Targets"]
    for name, props in [
        ("AlarmStateRule", to_queue),
        ("Insights", events["Insights"]["Properties"]),
        ("Requests", events["Requests"]["Properties"]),
        ("EveryMinute", events["EveryMinute"]["Properties"]),
    ]:
        assert props["RetryPolicy"]["MaximumRetryAttempts"] >= 2, name
        assert props["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}}
    assert events["EveryMinute"]["Properties"]["Schedule"] == "rate(1 minute)"
    assert events["AlarmTopic"]["Properties"]["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    }
    guard = template["Resources"]["GuardFunction"]["Properties"]
    assert guard["EventInvokeConfig"]["MaximumRetryAttempts"] == 2
    assert template["Globals"]["Function"]["DeadLetterQueue"]["Type"] == "SQS"


def test_alarms_reach_the_guard_through_a_queue_in_batches_retried_item_by_item(template):
    resources = template["Resources"]
    [to_queue] = resources["AlarmStateRule"]["Properties"]["Targets"]
    assert to_queue["Arn"] == {"Fn::GetAtt": ["AlarmQueue", "Arn"]}
    queue = guard_events(template)["AlarmQueue"]
    assert queue["Type"] == "SQS"
    props = queue["Properties"]
    assert props["Queue"] == {"Fn::GetAtt": ["AlarmQueue", "Arn"]}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 1 < props["BatchSize"] <= 100
    # More than ten a batch needs a batching window.
    assert props["BatchSize"] <= 10 or props["MaximumBatchingWindowInSeconds"] >= 1
    # As many pollers as instances, each instance its part of the share (GUARD_INSTANCES).
    concurrency = {"Ref": "GuardReservedConcurrency"}
    assert props["ScalingConfig"]["MaximumConcurrency"] == concurrency
    guard = resources["GuardFunction"]["Properties"]
    assert guard["ReservedConcurrentExecutions"] == concurrency
    assert guard["Environment"]["Variables"]["GUARD_INSTANCES"] == concurrency
    assert template["Parameters"]["GuardReservedConcurrency"]["MinValue"] >= 2
    # Lambda asks for six times the function's timeout; failed items end in the DLQ.
    q = resources["AlarmQueue"]["Properties"]
    assert q["VisibilityTimeout"] >= 6 * guard["Timeout"]
    assert q["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    # Only the alarm rule may send to it, and everyone else is refused.
    send, nobody = resources["AlarmQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    rule = [{"Fn::GetAtt": ["AlarmStateRule", "Arn"]}, {"Fn::GetAtt": ["AliasChangeRule", "Arn"]}]
    assert send["Principal"] == {"Service": "events.amazonaws.com"}
    assert send["Condition"] == {"ArnEquals": {"aws:SourceArn": rule}}
    assert nobody["Effect"] == "Deny" and nobody["Principal"] == "*"
    assert nobody["Action"] == "sqs:SendMessage"
    assert nobody["Condition"] == {"ArnNotEquals": {"aws:SourceArn": rule}}
    # A failed message comes back soon; its age and the batch's failures are alarmed on.
    statements = resources["GuardRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    soon = next(s for s in statements if isinstance(s, dict) and s.get("Sid") == "RetryFailedAlarmsSoon")
    assert soon["Action"] == "sqs:ChangeMessageVisibility"
    assert soon["Resource"] == {"Fn::GetAtt": ["AlarmQueue", "Arn"]}
    url = next(s for s in statements if isinstance(s, dict) and s.get("Sid") == "FindAlarmQueue")
    assert (url["Action"], url["Resource"]) == ("sqs:GetQueueUrl", soon["Resource"])
    age = resources["AlarmQueueAgeAlarm"]["Properties"]
    assert age["MetricName"] == "ApproximateAgeOfOldestMessage"
    failed = resources["FailedAlarmEventsAlarm"]["Properties"]
    assert (failed["Namespace"], failed["MetricName"]) == ("RollbackGuard/Guard", "FailedMessages")
    # No alarm rule invokes the function directly any more.
    assert "AlarmStateChange" not in guard_events(template)


def test_the_instances_share_one_state_table_the_guard_may_only_read_and_write(template):
    resources = template["Resources"]
    table = resources["StateTable"]["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "target", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "until", "Enabled": True}
    assert table["SSESpecification"]["KMSMasterKeyId"] == {"Ref": "Key"}
    env = resources["GuardFunction"]["Properties"]["Environment"]["Variables"]
    assert env["GUARD_STATE_TABLE"] == {"Ref": "StateTable"}
    statements = resources["GuardRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    on_table = {
        s["Action"]: s.get("Condition")
        for s in statements
        if isinstance(s, dict) and s.get("Resource") == {"Fn::GetAtt": ["StateTable", "Arn"]}
    }
    # UpdateItem only counts rollbacks (the blast-radius cap): on the counts' keys alone.
    assert on_table == {
        "dynamodb:GetItem": None,
        "dynamodb:PutItem": None,
        "dynamodb:UpdateItem": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["#rollbacks#*"]}},
    }
    # The key the guard counts under (lib/src/ports.rs rollbacks_key) matches that condition.
    ports = (ROOT / "lib" / "src" / "ports.rs").read_text()
    assert 'format!("#rollbacks#{account}#' in ports


ALIAS_CHANGE = {
    "Source": "aws.lambda",
    "DetailType": "AWS API Call via CloudTrail",
}


def cloudtrail_call(name, error=None):
    detail = {
        "eventSource": "lambda.amazonaws.com",
        "eventName": name,
        "eventTime": "2026-11-27T09:00:00Z",
        "requestParameters": {"functionName": "orders-ai", "name": "live", "functionVersion": "5"},
    }
    if error:
        detail["errorCode"] = error
    return dict(ALIAS_CHANGE, Detail=json.dumps(detail))


def test_successful_alias_changes_reach_the_guard_through_the_queue_here_and_from_members(template, aws):
    resources = template["Resources"]
    props = resources["AliasChangeRule"]["Properties"]
    assert "EventBusName" not in props, "CloudTrail's events arrive on the default bus"
    [target] = props["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["AlarmQueue", "Arn"]}
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    pattern = resolve(props["EventPattern"], defaults(template))
    entries = {
        "update": cloudtrail_call("UpdateAlias20150331"),
        "create": cloudtrail_call("CreateAlias20150331"),
        "failed": cloudtrail_call("UpdateAlias20150331", error="AccessDenied"),
        "publish": cloudtrail_call("PublishVersion20150331"),
        "catalog": entry(json.loads((EVENTS / "cloudtrail-update-alias.json").read_text())),
    }
    assert delivered_through(aws, "default", pattern, entries) == {"update", "create", "catalog"}
    member, _ = decode(str(ROOT / "infra" / "member.yaml"))
    member = json.loads(json.dumps(member, default=str))
    forward = member["Resources"]["ForwardAliasChangesRule"]["Properties"]
    assert forward["EventPattern"] == props["EventPattern"]
    [to_central] = forward["Targets"]
    assert to_central["Arn"] == {"Ref": "CentralEventBusArn"}


def test_the_seed_alarms_watch_the_alias_and_reach_the_guard(template):
    resources = template["Resources"]
    alarms = {k: v["Properties"] for k, v in resources.items() if v["Type"] == "AWS::CloudWatch::Alarm"}
    seeds = {k: p for k, p in alarms.items() if "AlarmNamePrefix" in json.dumps(p["AlarmName"])}
    assert set(seeds) == {
        "ErrorRateAlarm",
        "CanaryErrorRateAlarm",
        "LatencyAlarm",
        "ThrottlesAlarm",
        "FallbackRateAlarm",
        "BedrockCostAlarm",
        "Api5xxAlarm",
        "FastErrorRateAlarm",
    }
    for name, p in seeds.items():
        # The fast lane's twin invokes the guard itself (test_fast_lane.py).
        action = {"Ref": "GuardFunction.Alias"} if name == "FastErrorRateAlarm" else {"Ref": "AlarmTopic"}
        assert p["AlarmActions"] == [action], name
    params = dict(defaults(template), **{"AWS::StackName": "rg"})
    error_rate = seeds["ErrorRateAlarm"]
    assert error_rate["EvaluationPeriods"] == 2 and error_rate["DatapointsToAlarm"] == 2
    errors = next(m for m in error_rate["Metrics"] if m["Id"] == "errors")
    dims = errors["MetricStat"]["Metric"]["Dimensions"]
    assert [d["Name"] for d in dims] == ["FunctionName", "Resource"]
    canary = seeds["CanaryErrorRateAlarm"]
    dims = canary["Metrics"][1]["MetricStat"]["Metric"]["Dimensions"]
    assert dims[-1] == {"Name": "ExecutedVersion", "Value": {"Ref": "CanaryVersion"}}
    cost = seeds["BedrockCostAlarm"]
    expression = resolve(cost["Metrics"][0]["Expression"], params)
    assert expression == "(input * 0.00025 + output * 0.00125) / 1000"
    assert {m["MetricStat"]["Metric"]["MetricName"] for m in cost["Metrics"][1:]} == {
        "InputTokens",
        "OutputTokens",
    }
    # The guard's own health goes to people, never to the guard.
    for name in ["GuardErrorsAlarm", "DeadLetterAlarm"]:
        assert alarms[name]["AlarmActions"] == [{"Ref": "NotificationTopic"}]
        assert "AlarmNamePrefix" not in json.dumps(alarms[name]["AlarmName"])


def test_the_guard_may_assume_the_member_role_in_the_listed_accounts_only(template):
    statements = template["Resources"]["GuardRole"]["Properties"]["Policies"][0][
        "PolicyDocument"
    ]["Statement"]
    (members,) = [
        s["Fn::If"] for s in statements if "Fn::If" in s and s["Fn::If"][0] == "HasMembers"
    ]
    assert members[2] == {"Ref": "AWS::NoValue"}
    assume = members[1]
    assert assume["Action"] == "sts:AssumeRole"
    assert assume["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:iam::*:role/${MemberRoleName}"}
    assert assume["Condition"] == {"StringEquals": {"aws:ResourceAccount": {"Ref": "MemberAccounts"}}}
    bus = template["Resources"]["OrganizationForwarding"]
    assert bus["Condition"] == "HasOrganization"
    assert bus["Properties"]["Statement"]["Condition"] == {
        "StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}
    }


def test_the_non_sam_resources_create_on_the_emulator(template, aws):
    stack = f"rg-{uuid.uuid4().hex[:8]}"
    cfn = aws["cloudformation"]
    # The demo's stack: the sample workload, protected by name, with its seed alarms.
    cfn.create_stack(
        StackName=stack,
        TemplateBody=json.dumps(without_sam(template)),
        Capabilities=["CAPABILITY_IAM"],
        Parameters=[
            {"ParameterKey": "SampleWorkload", "ParameterValue": "true"},
            {"ParameterKey": "SeedAlarms", "ParameterValue": "true"},
        ],
    )
    wait_created(cfn, stack)
    created = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]
    }
    for name in [
        "Key",
        "AlarmTopic",
        "NotificationTopic",
        "AuditBus",
        "DeadLetterQueue",
        "AlarmQueue",
        "AlarmStateRule",
        "StateTable",
        "GuardRole",
        "InsightRole",
        "GuardLogGroup",
        "InsightLogGroup",
    ]:
        assert name in created, (name, sorted(created))

    key = created["Key"]
    assert aws["kms"].get_key_rotation_status(KeyId=key)["KeyRotationEnabled"]

    def encrypted_with_the_key(key_id):
        # The key's id or its ARN (CloudFormation's Ref gives the id).
        return key_id == key or key_id.endswith(f":key/{key}")

    for topic in ["AlarmTopic", "NotificationTopic"]:
        attributes = aws["sns"].get_topic_attributes(TopicArn=created[topic])["Attributes"]
        assert encrypted_with_the_key(attributes["KmsMasterKeyId"]), (topic, attributes)
    assert created["AlarmTopic"].endswith(f":{stack}-alarms")

    queue = aws["sqs"].get_queue_attributes(
        QueueUrl=created["DeadLetterQueue"], AttributeNames=["All"]
    )["Attributes"]
    assert encrypted_with_the_key(queue["KmsMasterKeyId"]), queue
    assert queue["MessageRetentionPeriod"] == "1209600"

    buses = {b["Name"] for b in aws["events"].list_event_buses()["EventBuses"]}
    assert f"{stack}-audit" in buses

    groups = {
        g["logGroupName"]: g
        for g in aws["logs"].describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{stack}-")[
            "logGroups"
        ]
    }
    assert set(groups) == {f"/aws/lambda/{stack}-guard", f"/aws/lambda/{stack}-ai-insight"}
    for g in groups.values():
        assert g["retentionInDays"] == 365

    # The guard's role: the Lambda calls on the protected function (here this stack's
    # ai-insight) and its qualifiers, and on the functions that opted in (by tag); each other
    # grant one action on one resource, no wildcard resource anywhere.
    role = created["GuardRole"]
    names = aws["iam"].list_role_policies(RoleName=role)["PolicyNames"]
    assert names == ["guard"]
    document = aws["iam"].get_role_policy(RoleName=role, PolicyName="guard")["PolicyDocument"]
    if isinstance(document, str):
        # The emulator stores a policy created through CloudFormation as a Python literal.
        document = ast.literal_eval(document)
    # The emulator keeps a statement `!Ref AWS::NoValue` removed as a null.
    statements = {s["Sid"]: s for s in document["Statement"] if s}
    # No member accounts (the default): no role to assume anywhere.
    assert "AssumeMemberRoles" not in statements
    function = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{stack}-ai-insight"
    every = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:*"
    calls = [
        "lambda:GetAlias",
        "lambda:GetFunction",
        "lambda:GetFunctionConfiguration",
        "lambda:ListTags",
        "lambda:ListVersionsByFunction",
        "lambda:PublishVersion",
        "lambda:UpdateAlias",
        "lambda:UpdateFunctionConfiguration",
    ]
    assert statements["ProtectedFunction"]["Resource"] == [function, f"{function}:*"]
    assert sorted(statements["ProtectedFunction"]["Action"]) == calls
    assert "Condition" not in statements["ProtectedFunction"]
    # The fleet: every function, only while it carries the opt-in tag.
    opted_in = {"Null": {"aws:ResourceTag/rollback-guard:protect": "false"}}
    assert statements["FleetFunctions"]["Resource"] == [every, f"{every}:*"]
    assert sorted(statements["FleetFunctions"]["Action"]) == calls
    assert statements["FleetFunctions"]["Condition"] == opted_in
    # A function's tags are its owners': the guard may write none of them (its memory is the
    # state table), and no statement allows it.
    deny = statements["NeverTagsFunctions"]
    assert deny["Effect"] == "Deny"
    assert deny["Action"] == ["lambda:TagResource", "lambda:UntagResource"]
    assert deny["Resource"] == every
    for s in statements.values():
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        if s["Effect"] == "Allow":
            assert not any(a in ("lambda:TagResource", "lambda:UntagResource") for a in actions)
    assert statements["ConfirmAlarm"]["Resource"] == (
        f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:guarded-*"
    )
    assert statements["Notify"]["Resource"] == created["NotificationTopic"]
    assert statements["Explain"]["Resource"] == (
        "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"
    )
    # CodeDeploy: the calls that take a deployment group, on the account's groups; the three
    # the Service Authorization Reference gives no resource type, on "*" and nothing else.
    find = statements["FindShiftingDeployments"]
    assert sorted(find["Action"]) == [
        "codedeploy:BatchGetDeployments",
        "codedeploy:GetDeployment",
        "codedeploy:ListDeployments",
    ]
    assert find["Resource"] == f"arn:aws:codedeploy:us-east-1:{ACCOUNT}:deploymentgroup:*/*"
    stop = statements["StopShiftingDeployments"]
    assert sorted(stop["Action"]) == [
        "codedeploy:GetDeploymentTarget",
        "codedeploy:ListDeploymentTargets",
        "codedeploy:StopDeployment",
    ]
    codedeploy = ("FindShiftingDeployments", "StopShiftingDeployments")
    for sid, s in statements.items():
        resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
        assert "*" not in resources or sid == "StopShiftingDeployments", sid
        if sid not in ("ProtectedFunction", "FleetFunctions", "NeverTagsFunctions", *codedeploy):
            assert isinstance(s["Action"], str), sid


def test_a_guard_without_the_sample_protects_the_fleet_alone_and_keeps_its_logs(template, aws):
    stack = f"rgf-{uuid.uuid4().hex[:8]}"
    cfn = aws["cloudformation"]
    cfn.create_stack(
        StackName=stack,
        TemplateBody=json.dumps(without_sam(template)),
        Capabilities=["CAPABILITY_IAM"],
    )
    wait_created(cfn, stack)
    created = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]
    }
    for sample in ["InsightRole", "InsightLogGroup"]:
        assert sample not in created, sample
    assert "GuardLogGroup" in created and "PolicyRejectedAlarm" in {
        k for k, v in template["Resources"].items() if v["Type"] == "AWS::CloudWatch::Alarm"
    }
    document = aws["iam"].get_role_policy(RoleName=created["GuardRole"], PolicyName="guard")[
        "PolicyDocument"
    ]
    if isinstance(document, str):
        document = ast.literal_eval(document)
    sids = {s["Sid"] for s in document["Statement"] if s}
    assert "ProtectedFunction" not in sids and "FleetFunctions" in sids
    assert not {"ReadPolicyParameter", "ReadPolicyObject"} & sids
    resources = template["Resources"]
    # The log groups outlive the stack: the record of what the guard did.
    for group in ["GuardLogGroup", "InsightLogGroup"]:
        assert resources[group]["DeletionPolicy"] == "Retain"
        assert resources[group]["UpdateReplacePolicy"] == "Retain"
    # Seed alarms only on request, and only with a function to watch.
    for alarm in ["ErrorRateAlarm", "LatencyAlarm", "ThrottlesAlarm", "FallbackRateAlarm", "BedrockCostAlarm"]:
        assert resources[alarm]["Condition"] == "HasSeedAlarms", alarm
    assert template["Conditions"]["HasSeedAlarms"]["Fn::And"][0] == {"Condition": "HasProtected"}


def test_the_guard_upgrades_itself_gradually_rolled_back_by_its_own_errors(template):
    guard = template["Resources"]["GuardFunction"]["Properties"]
    assert guard["AutoPublishAlias"] == "live"
    preference = guard["DeploymentPreference"]
    assert preference["Type"] == {"Ref": "GuardDeployment"}
    assert preference["Alarms"] == [{"Ref": "GuardErrorsAlarm"}]
    assert template["Parameters"]["GuardDeployment"]["Default"] == "Canary10Percent5Minutes"
    rejected = template["Resources"]["PolicyRejectedAlarm"]["Properties"]
    assert (rejected["Namespace"], rejected["MetricName"]) == ("RollbackGuard/Guard", "PolicyRejected")
    assert rejected["AlarmActions"] == [{"Ref": "NotificationTopic"}]


def test_the_policy_and_the_model_grants_follow_where_they_are(template, aws):
    """A policy in SSM or S3 is granted exactly that parameter or object; an inference
    profile's ID is granted the profile and its foundation model in every region."""
    stack = f"rgp-{uuid.uuid4().hex[:8]}"
    cfn = aws["cloudformation"]
    profile = "us.anthropic.claude-3-5-sonnet-20241022-v2:0"
    cfn.create_stack(
        StackName=stack,
        TemplateBody=json.dumps(without_sam(template)),
        Capabilities=["CAPABILITY_IAM"],
        Parameters=[
            {"ParameterKey": "PolicyParameterName", "ParameterValue": "/rollback-guard/policy"},
            {"ParameterKey": "PolicyObjectUri", "ParameterValue": "s3://guard-config/prod/policy.toml"},
            {"ParameterKey": "ModelId", "ParameterValue": profile},
        ],
    )
    wait_created(cfn, stack)
    created = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]
    }
    document = aws["iam"].get_role_policy(RoleName=created["GuardRole"], PolicyName="guard")[
        "PolicyDocument"
    ]
    if isinstance(document, str):
        document = ast.literal_eval(document)
    statements = {s["Sid"]: s for s in document["Statement"] if s}
    assert statements["ReadPolicyParameter"]["Action"] == "ssm:GetParameter"
    assert statements["ReadPolicyParameter"]["Resource"] == (
        f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/rollback-guard/policy"
    )
    assert statements["ReadPolicyObject"]["Action"] == "s3:GetObject"
    assert statements["ReadPolicyObject"]["Resource"] == "arn:aws:s3:::guard-config/prod/policy.toml"
    assert statements["Explain"]["Resource"] == [
        f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/{profile}",
        "arn:aws:bedrock:*::foundation-model/anthropic.claude-3-5-sonnet-20241022-v2:0",
    ]
