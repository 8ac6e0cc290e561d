//! The fast lane on the emulator: a 10-second alarm on the telemetry layer's metrics
//! (RollbackGuard/Fast), shaped as the template's FastErrorRateAlarm, reaches the guard by its
//! Lambda action and through the built-in policy's fleet pattern (`guarded-fast-*`,
//! `from-alarm`) rolls back the opted-in alias its metrics name. The same transition arriving
//! again by the alarm rule (EventBridge, the audit trail) moves nothing more.

use guard_e2e::{event_text, home, unique, Emulator};
use rollback_guard::guard::Outcome;
use rollback_guard::{Guard, Policy};
use serde_json::{json, Value};

/// The fast twin as the template makes it, on `function`'s `live` alias.
async fn fast_alarm(emu: &Emulator, name: &str, function: &str) {
    use aws_sdk_cloudwatch::types::{
        ComparisonOperator, Dimension, Metric, MetricDataQuery, MetricStat,
    };
    let mut request = emu
        .cloudwatch
        .put_metric_alarm()
        .alarm_name(name)
        .evaluation_periods(3)
        .datapoints_to_alarm(2)
        .threshold(10.0)
        .treat_missing_data("notBreaching")
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .metrics(
            MetricDataQuery::builder()
                .id("rate")
                .expression("IF(errors >= 3, 100 * errors / invocations, 0)")
                .return_data(true)
                .build(),
        );
    for (id, metric_name) in [("errors", "Errors"), ("invocations", "Invocations")] {
        let metric = Metric::builder()
            .namespace("RollbackGuard/Fast")
            .metric_name(metric_name)
            .dimensions(
                Dimension::builder()
                    .name("FunctionName")
                    .value(function)
                    .build(),
            )
            .dimensions(
                Dimension::builder()
                    .name("Resource")
                    .value(format!("{function}:live"))
                    .build(),
            )
            .build();
        let stat = MetricStat::builder()
            .metric(metric)
            .period(10)
            .stat("Sum")
            .build();
        request = request.metrics(
            MetricDataQuery::builder()
                .id(id)
                .metric_stat(stat)
                .return_data(false)
                .build(),
        );
    }
    request.send().await.expect("the fast alarm");
    emu.set_alarm(name, "ALARM").await.expect("in ALARM");
}

#[tokio::test]
async fn a_fast_alarms_action_rolls_back_the_alias_its_metrics_name_once() {
    let emu = Emulator::connect().await;
    let prefix = unique("fast");
    let function = format!("{prefix}-pay");
    let alarm = format!("guarded-fast-{prefix}-error-rate");
    emu.function(&function, 3, "live", "3", &[])
        .await
        .expect("function");
    emu.opt_in(&function, "live").await.expect("opt in");
    fast_alarm(&emu, &alarm, &function).await;
    let (topic, inbox) = emu
        .topic_with_queue(&format!("{prefix}-notify"))
        .await
        .expect("topic");
    // The built-in policy's fleet part, as the template writes it.
    let policy = Policy::from_toml(&format!(
        r#"
[guard]
notify_topic_arn = "{topic}"

[[trigger]]
alarm = "guarded-fast-*"
target = "from-alarm"
action = "rollback-alias"

[[trigger]]
alarm = "guarded-*"
target = "from-alarm"
action = "rollback-alias"
"#
    ))
    .expect("policy");
    let ports = emu
        .ports_with_state(&format!("{prefix}-state"))
        .await
        .expect("ports");
    let guard = Guard::new(policy, ports, home());

    // The alarm's Lambda action: the catalog's fast-lane event, for this function.
    let text = event_text("lambda-action-fast-alarm.json")
        .replace("guarded-fast-payments-error-rate", &alarm)
        .replace("payments", &function);
    let action: Value = serde_json::from_str(&text).expect("json");
    let report = guard.handle(&action, false).await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(emu.alias(&function, "live").await.expect("alias"), "2");
    let notified = emu.drain(&inbox).await.expect("inbox");
    assert_eq!(notified.len(), 1, "{notified:#?}");
    assert!(notified[0].to_string().contains(&alarm));

    // The same state change by the alarm rule: already done, nothing moves or is announced.
    let mut rule = serde_json::from_str::<Value>(
        &event_text("eventbridge-fleet-alarm.json")
            .replace("guarded-payments-error-rate", &alarm)
            .replace("payments", &function),
    )
    .expect("json");
    rule["resources"] = json!([action["alarmArn"]]);
    rule["detail"]["state"]["timestamp"] = action["alarmData"]["state"]["timestamp"].clone();
    rule["detail"]["configuration"] = action["alarmData"]["configuration"].clone();
    let again = guard.handle(&rule, false).await;
    assert_eq!(again.outcome, Outcome::AlreadyDone, "{}", again.reason);
    assert_eq!(emu.alias(&function, "live").await.expect("alias"), "2");
    assert!(emu.drain(&inbox).await.expect("inbox").is_empty());
}
