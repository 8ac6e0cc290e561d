//! The Lambda handler's contract: reports as responses, refusals and failures as errors with
//! stable error types (what alarms on the guard and its failure destination key on).

use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use rollback_guard::fakes::{FakeBackends, FakeLambda};
use rollback_guard::rollback::AliasState;
use rollback_guard::{Guard, Policy};

fn guard(versions: u32, on: &str) -> Guard {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/policy.toml");
    let policy = Policy::from_file(path).expect("catalog policy");
    let lambda =
        FakeLambda::default().with_function("orders-ai", versions, "live", AliasState::on(on));
    let now = "2026-11-20T03:13:00Z".parse().expect("time");
    FakeBackends::new(lambda, "orders-ai-error-rate", now).guard(policy)
}

fn event(name: &str) -> LambdaEvent<guard_function::Payload> {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let payload =
        serde_json::value::RawValue::from_string(std::fs::read_to_string(path).expect("event"))
            .expect("json");
    LambdaEvent::new(payload, Context::default())
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
