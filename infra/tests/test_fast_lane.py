"""The fast lane in the template: the telemetry layer, the error-rate alarm's 10-second twin
and its direct action on the guard, the permission that lets the alarm invoke it, and the
dashboard of what the guard did (its metric names as the guard writes them).

Run by `make test`.
"""

import json
import re
import subprocess

from template_support import ROOT, defaults, resolve


def resources(template):
    return template["Resources"]


def test_the_layer_is_the_extension_for_the_stacks_architecture(template):
    layer = resources(template)["TelemetryLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    props = layer["Properties"]
    # make layer builds it there: Lambda runs what is under extensions/ in a layer.
    assert props["ContentUri"] == "../target/layer/telemetry"
    makefile = (ROOT / "Makefile").read_text()
    assert "target/layer/telemetry/extensions/" in makefile
    assert props["CompatibleArchitectures"] == [{"Ref": "Architecture"}]
    assert template["Parameters"]["Architecture"]["AllowedValues"] == ["arm64", "x86_64"]
    # Teams' templates name its versions: an update keeps the old ones.
    assert props["RetentionPolicy"] == "Retain"
    outputs = template["Outputs"]
    assert outputs["TelemetryLayerArn"]["Value"] == {"Ref": "TelemetryLayer"}


def test_make_layer_builds_for_the_architecture_it_is_given():
    """arm64 cannot be built on this machine (no rustup target): what make would run is."""
    for arch, flag in [("arm64", "--arm64"), ("x86_64", "--x86-64")]:
        plan = subprocess.run(
            ["make", "-n", "layer", f"ARCH={arch}"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.replace("\\\n", " ")
        build = next(line for line in plan.splitlines() if "lambda build" in line)
        assert "--extension" in build and "-p rollback-guard-telemetry" in build, build
        assert f" {flag} " in build, build
        assert "target/layer/telemetry/extensions/" in plan


def test_the_sample_carries_the_layer_when_the_fast_lane_is_on(template):
    sample = resources(template)["InsightFunction"]["Properties"]
    assert sample["Layers"] == {
        "Fn::If": ["SampleFastLane", [{"Ref": "TelemetryLayer"}], {"Ref": "AWS::NoValue"}]
    }
    conditions = template["Conditions"]
    assert conditions["SampleFastLane"] == {
        "Fn::And": [{"Condition": "HasSample"}, {"Condition": "FastLaneOn"}]
    }
    assert template["Parameters"]["FastLane"]["Default"] == "true"


def test_the_fast_twin_reads_ten_second_periods_and_invokes_the_guard(template):
    alarm = resources(template)["FastErrorRateAlarm"]
    assert alarm["Condition"] == "HasFastAlarms"
    assert template["Conditions"]["HasFastAlarms"] == {
        "Fn::And": [{"Condition": "HasSeedAlarms"}, {"Condition": "FastLaneOn"}]
    }
    props = alarm["Properties"]
    params = defaults(template)
    assert resolve(props["AlarmName"], params) == "guarded-fast-error-rate"
    # 2 of 3 ten-second periods; no data is no alarm.
    assert (props["EvaluationPeriods"], props["DatapointsToAlarm"]) == (3, 2)
    assert props["TreatMissingData"] == "notBreaching"
    assert props["Threshold"] == {"Ref": "ErrorRateThresholdPercent"}
    # Its action is the guard's alias itself: no topic or queue in between.
    assert props["AlarmActions"] == [{"Ref": "GuardFunction.Alias"}]
    metrics = {m["Id"]: m for m in props["Metrics"]}
    expression = resolve(metrics["rate"]["Expression"], params)
    assert expression == "IF(errors >= 3, 100 * errors / invocations, 0)"
    for name, metric_name in [("errors", "Errors"), ("invocations", "Invocations")]:
        stat = metrics[name]["MetricStat"]
        assert (stat["Period"], stat["Stat"]) == (10, "Sum")
        assert stat["Metric"]["Namespace"] == "RollbackGuard/Fast"
        assert stat["Metric"]["MetricName"] == metric_name
        dims = [d["Name"] for d in stat["Metric"]["Dimensions"]]
        assert dims == ["FunctionName", "Resource"]
    # The twin of the one-minute alarm on the same function and alias.
    slow = resources(template)["ErrorRateAlarm"]["Properties"]["Metrics"]
    slow_dims = [m for m in slow if m["Id"] == "errors"][0]["MetricStat"]["Metric"]["Dimensions"]
    assert stat["Metric"]["Dimensions"] == slow_dims


def test_the_extension_writes_what_the_alarm_reads():
    """The names the alarm and the dashboard read are the ones the extension prints."""
    emf = (ROOT / "extensions" / "telemetry" / "src" / "emf.rs").read_text()
    assert 'pub const NAMESPACE: &str = "RollbackGuard/Fast";' in emf
    for name in ["Invocations", "Errors", "Timeouts", "Duration", "FunctionName", "Resource"]:
        assert f'"{name}"' in emf, name


def test_only_the_fast_lanes_alarms_of_this_account_may_invoke_the_guard(template):
    permission = resources(template)["GuardAlarmInvokePermission"]["Properties"]
    assert permission["Principal"] == "lambda.alarms.cloudwatch.amazonaws.com"
    assert permission["Action"] == "lambda:InvokeFunction"
    assert permission["FunctionName"] == {"Ref": "GuardFunction.Alias"}
    assert permission["SourceAccount"] == {"Ref": "AWS::AccountId"}
    params = dict(
        defaults(template),
        **{"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012"},
    )
    assert (
        resolve(permission["SourceArn"], params)
        == "arn:aws:cloudwatch:us-east-1:123456789012:alarm:guarded-fast-*"
    )
    # The alarm is created once it may act.
    assert resources(template)["FastErrorRateAlarm"]["DependsOn"] == "GuardAlarmInvokePermission"


def dashboard(template):
    body = resources(template)["GuardDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    body = body.replace("${AWS::StackName}", "rollback-guard").replace("${AWS::Region}", "us-east-1")
    assert "${" not in body
    return json.loads(body)


def test_the_dashboard_shows_what_the_guard_writes(template):
    widgets = dashboard(template)["widgets"]
    titles = [w["properties"]["title"] for w in widgets]
    assert titles == [
        "Actions and outcomes",
        "Time to restore (alarm state change to action done, s)",
        "Skipped and failed",
        "Action latency (event received to action done, ms)",
        "Fast lane: errors per alias (10 s)",
        "Fast lane: invocations per alias (10 s)",
    ]
    # Every RollbackGuard/Guard metric a widget names is one the guard function writes.
    guard = (ROOT / "functions" / "guard" / "src" / "lib.rs").read_text()
    written = set(re.findall(r'name:? "?([A-Za-z]+)"?,?\s', guard)) | set(
        re.findall(r'=> "([A-Za-z]+)"', guard)
    )
    named = set()
    for w in widgets:
        namespace = None
        for row in w["properties"]["metrics"]:
            for item in row:
                if isinstance(item, dict) and "expression" in item:
                    assert "RollbackGuard/Fast" in item["expression"]
            strings = [x for x in row if isinstance(x, str)]
            if strings and strings[0] != "..." and strings[0] != ".":
                namespace = strings[0]
            if namespace == "RollbackGuard/Guard" and len(strings) > 1 and strings[1] != ".":
                named.add(strings[1])
    assert named >= {"Executed", "TimeToRestore", "Skipped", "Failed", "ActionLatency"}, named
    assert named <= written, named - written
