//! The Lambda handler's contract: reports as responses, refusals and failures as errors with
//! stable error types (what alarms on the guard and its failure destination key on).

use guard_function::GuardFunction;
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use rollback_guard::fakes::{FakeBackends, FakeLambda};
use rollback_guard::rollback::AliasState;
use rollback_guard::Policy;
use std::sync::Arc;

/// The guard function's own ARN where the catalog's events come from.
const SAME_PLACE: &str = "arn:aws:lambda:us-east-1:123456789012:function:rollback-guard-guard";

fn backends(versions: u32, on: &str) -> Arc<FakeBackends> {
    let lambda =
        FakeLambda::default().with_function("orders-ai", versions, "live", AliasState::on(on));
    let now = "2026-11-20T03:13:00Z".parse().expect("time");
    Arc::new(FakeBackends::new(lambda, "orders-ai-error-rate", now))
}

fn function_over(backends: Arc<FakeBackends>) -> GuardFunction {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/policy.toml");
    let policy = Policy::from_file(path).expect("catalog policy");
    GuardFunction::new(move |home| backends.guard_in(policy.clone(), home), None)
}

/// How many times the alias was moved.
fn moves(fakes: &FakeBackends) -> usize {
    fakes
        .lambda
        .calls()
        .iter()
        .filter(|c| c.starts_with("UpdateAlias"))
        .count()
}

fn guard(versions: u32, on: &str) -> GuardFunction {
    function_over(backends(versions, on))
}

fn event(name: &str) -> LambdaEvent<guard_function::Payload> {
    event_to(name, SAME_PLACE)
}

fn event_to(name: &str, function_arn: &str) -> LambdaEvent<guard_function::Payload> {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let payload =
        serde_json::value::RawValue::from_string(std::fs::read_to_string(path).expect("event"))
            .expect("json");
    let mut context = Context::default();
    context.invoked_function_arn = function_arn.into();
    LambdaEvent::new(payload, context)
}

#[tokio::test]
async fn an_executed_rollback_is_returned_as_the_report() {
    let response =
        guard_function::function_handler(event("lambda-action-alarm.json"), &guard(3, "3"))
            .await
            .expect("success");
    assert_eq!(response["outcome"], "executed");
    assert_eq!(response["alias_before"]["version"], "3");
    assert_eq!(response["alias_after"]["version"], "2");
    assert_eq!(response["undo"], "guard undo --target orders-ai");
}

#[tokio::test]
async fn a_rejected_event_is_an_error_of_type_rejected() {
    let err = guard_function::function_handler(event("bad-wrong-source.json"), &guard(3, "3"))
        .await
        .expect_err("rejected");
    let d = Diagnostic::from(err);
    assert_eq!(d.error_type, "Guard.Rejected");
    assert!(
        d.error_message.contains("event source `my.app`"),
        "{}",
        d.error_message
    );
}

#[tokio::test]
async fn a_failed_rollback_is_an_error_of_type_rollback_failed() {
    // One published version: nothing older to go back to.
    let err = guard_function::function_handler(event("eventbridge-alarm.json"), &guard(1, "1"))
        .await
        .expect_err("failed");
    let d = Diagnostic::from(err);
    assert_eq!(d.error_type, "Guard.RollbackFailed");
    assert!(
        d.error_message
            .contains("no published version older than 1"),
        "{}",
        d.error_message
    );
}

#[tokio::test]
async fn ok_transitions_succeed_with_no_action() {
    let response = guard_function::function_handler(event("eventbridge-ok.json"), &guard(3, "3"))
        .await
        .expect("success");
    assert_eq!(response["outcome"], "no-action");
}

#[tokio::test]
async fn an_alarm_of_another_region_than_the_functions_own_is_rejected_and_nothing_moves() {
    let fakes = backends(3, "3");
    let function = function_over(fakes.clone());
    // The catalog's alarm is of us-east-1; this guard function runs in eu-west-1, where a
    // function `orders-ai` with the same alias may well exist too.
    let elsewhere = "arn:aws:lambda:eu-west-1:123456789012:function:rollback-guard-guard";
    let err =
        guard_function::function_handler(event_to("eventbridge-alarm.json", elsewhere), &function)
            .await
            .expect_err("rejected");
    let d = Diagnostic::from(err);
    assert_eq!(d.error_type, "Guard.Rejected");
    assert!(d.error_message.contains("us-east-1"), "{}", d.error_message);
    assert!(d.error_message.contains("eu-west-1"), "{}", d.error_message);
    assert!(
        fakes.lambda.calls().is_empty(),
        "{:?}",
        fakes.lambda.calls()
    );
    let alias = fakes.lambda.alias("orders-ai", "live").expect("alias");
    assert!(alias.same_routing(&AliasState::on("3")), "{alias}");
    assert!(fakes.notifier.sent().is_empty());
}

#[tokio::test]
async fn an_invocation_that_does_not_name_the_function_acts_on_nothing() {
    let fakes = backends(3, "3");
    let function = function_over(fakes.clone());
    let err = guard_function::function_handler(event_to("eventbridge-alarm.json", ""), &function)
        .await
        .expect_err("no home");
    let d = Diagnostic::from(err);
    assert_eq!(d.error_type, "Guard.UnknownHome");
    assert!(fakes.lambda.calls().is_empty());
}

/// An SQS batch (EventBridge → the guard's queue → the function) holding these catalog events
/// as its messages' bodies, `m0`, `m1`… as their ids.
fn queued(names: &[&str]) -> LambdaEvent<guard_function::Payload> {
    let records: Vec<serde_json::Value> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
            serde_json::json!({
                "messageId": format!("m{i}"),
                "receiptHandle": format!("handle-{i}"),
                "body": std::fs::read_to_string(path).expect("event"),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:rollback-guard-alarms",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    let text = serde_json::json!({ "Records": records }).to_string();
    let payload = serde_json::value::RawValue::from_string(text).expect("json");
    let mut context = Context::default();
    context.invoked_function_arn = SAME_PLACE.into();
    LambdaEvent::new(payload, context)
}

#[tokio::test]
async fn a_queued_batch_acts_on_each_message_and_reports_only_the_ones_not_done() {
    let fakes = backends(3, "3");
    let function = function_over(fakes.clone());
    let batch = queued(&[
        "eventbridge-alarm.json",
        "bad-wrong-source.json",
        "eventbridge-ok.json",
        // The same transition again: already done, not a failure, not a second move.
        "eventbridge-alarm.json",
    ]);
    let response = guard_function::function_handler(batch, &function)
        .await
        .expect("a batch response");
    assert_eq!(
        response,
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": "m1"}]})
    );
    let alias = fakes.lambda.alias("orders-ai", "live").expect("alias");
    assert!(alias.same_routing(&AliasState::on("2")), "{alias}");
    assert_eq!(moves(&fakes), 1, "{:?}", fakes.lambda.calls());
    assert_eq!(fakes.notifier.sent().len(), 1);
}

#[tokio::test]
async fn a_queued_rollback_that_fails_is_retried_alone_and_soon() {
    // One published version: nothing older to go back to.
    let batch = queued(&["eventbridge-ok.json", "eventbridge-alarm.json"]);
    let queue = Arc::new(rollback_guard::fakes::FakeAlarmQueue::default());
    let function = guard(1, "1").with_queue(queue.clone());
    let response = guard_function::function_handler(batch, &function)
        .await
        .expect("a batch response");
    assert_eq!(
        response,
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": "m1"}]})
    );
    // The failed message comes back in a minute, not after the queue's 30.
    assert_eq!(
        queue.retried(),
        vec![(
            "arn:aws:sqs:us-east-1:123456789012:rollback-guard-alarms".to_string(),
            vec!["handle-1".to_string()],
            guard_function::RETRY_FAILED_AFTER
        )]
    );
}

#[test]
fn a_batchs_failures_are_a_metric() {
    let line = guard_function::batch_metrics(4, 1);
    let directive = &line["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "RollbackGuard/Guard");
    assert_eq!(
        directive["Dimensions"],
        serde_json::json!([["FunctionName"]])
    );
    assert_eq!(line["Messages"], 4.0);
    assert_eq!(line["FailedMessages"], 1.0);
}

#[tokio::test]
async fn an_sns_event_is_not_taken_for_a_queued_batch() {
    let response = guard_function::function_handler(event("sns-alarm.json"), &guard(3, "3"))
        .await
        .expect("success");
    assert_eq!(response["outcome"], "executed");
}

#[tokio::test]
async fn two_alarms_of_one_function_in_a_batch_move_its_alias_once() {
    let fakes = backends(3, "3");
    fakes.alarms.set(
        "orders-ai-latency-p95",
        rollback_guard::transition::AlarmState::Alarm,
    );
    let function = function_over(fakes.clone());
    let mut batch = queued(&["eventbridge-alarm.json", "eventbridge-alarm.json"]);
    // The second message: another alarm of the same function, in ALARM at the same moment.
    let mut text: serde_json::Value = serde_json::from_str(batch.payload.get()).expect("json");
    let body = text["Records"][1]["body"]
        .as_str()
        .expect("a body")
        .replace("orders-ai-error-rate", "orders-ai-latency-p95");
    text["Records"][1]["body"] = body.into();
    batch.payload = serde_json::value::RawValue::from_string(text.to_string()).expect("json");

    let response = guard_function::function_handler(batch, &function)
        .await
        .expect("a batch response");
    assert_eq!(response, serde_json::json!({"batchItemFailures": []}));
    // Moved once, to the version before; the other alarm found the first's record.
    let alias = fakes.lambda.alias("orders-ai", "live").expect("alias");
    assert!(alias.same_routing(&AliasState::on("2")), "{alias}");
    assert_eq!(moves(&fakes), 1, "{:?}", fakes.lambda.calls());
    let sent = fakes.notifier.sent();
    assert_eq!(sent.len(), 2, "one action, one skip: {sent:?}");
}

#[tokio::test]
async fn an_executed_action_reports_its_latency_and_time_to_restore() {
    let function = guard(3, "3");
    let guard = function.guard(SAME_PLACE).await.expect("the guard");
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/lambda-action-alarm.json"
    );
    let report = guard
        .handle_bytes(&std::fs::read(path).expect("event"), false)
        .await;
    assert_eq!(report.outcome, rollback_guard::Outcome::Executed);
    let changed = report.transition.as_ref().expect("a transition").timestamp;
    let received = std::time::SystemTime::from(changed) + std::time::Duration::from_secs(40);
    let done = received + std::time::Duration::from_millis(250);
    let line = guard_function::report_metrics(&report, received, done);
    assert_eq!(line["Executed"], 1.0);
    assert_eq!(line["ActionLatency"], 250.0);
    assert_eq!(line["TimeToRestore"], 40.25);
    let names: Vec<_> = (line["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array())
        .expect("metrics")
        .iter()
        .map(|m| (m["Name"].clone(), m["Unit"].clone()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("Executed".into(), "Count".into()),
            ("ActionLatency".into(), "Milliseconds".into()),
            ("TimeToRestore".into(), "Seconds".into()),
        ]
    );
    // The same transition again: already done, counted as such, no restore time.
    let again = guard
        .handle_bytes(&std::fs::read(path).expect("event"), false)
        .await;
    let line = guard_function::report_metrics(&again, received, done);
    assert_eq!(line["AlreadyDone"], 1.0);
    assert!(line.get("TimeToRestore").is_none() && line.get("Executed").is_none());
}
