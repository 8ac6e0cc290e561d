//! Claims and plans across instances: a second cause held back by the first's claim until its
//! cooldown ends; a failed action that changed nothing gives its claim back; and one
//! transition delivered twice (SNS and the queue, to two instances, or retried after its
//! record was lost) moves the alias once (issue 26, finding 1).

use crate::support::policy;
use rollback_guard::fakes::{FakeBackends, FakeLambda};
use rollback_guard::ports::PortError;
use rollback_guard::rollback::AliasState;
use rollback_guard::state::{Claim, StateKey, TargetState};
use rollback_guard::transition::AlarmState;
use rollback_guard::Outcome;
use serde_json::Value;

/// The catalog's event `file` on `orders-ai`, its alarm renamed to `alarm`.
fn alarm_event(file: &str, alarm: &str) -> Value {
    let path = format!("{}/../events/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).expect("event");
    serde_json::from_str(&text.replace("orders-ai-error-rate", alarm)).expect("json")
}

fn eventbridge(alarm: &str) -> Value {
    alarm_event("eventbridge-alarm.json", alarm)
}

fn fakes(on: &str) -> FakeBackends {
    let lambda = FakeLambda::default().with_function("orders-ai", 3, "live", AliasState::on(on));
    let now = "2026-11-20T03:13:00Z".parse().expect("time");
    let fakes = FakeBackends::new(lambda, "orders-ai-error-rate", now);
    fakes.alarms.set("orders-ai-latency-p95", AlarmState::Alarm);
    fakes
}

fn key() -> StateKey {
    StateKey::new("123456789012", "orders-ai", Some("live"))
}

fn alias(fakes: &FakeBackends) -> AliasState {
    fakes.lambda.alias("orders-ai", "live").expect("alias")
}

#[tokio::test]
async fn another_causes_claim_holds_a_second_alarm_back() {
    // Another instance is acting for the error-rate alarm: it claimed the alias and has not
    // yet written its record (on a bad day the records wait behind the alias moves).
    let fakes = fakes("2");
    let at = "2026-11-20T03:13:00Z".parse().expect("time");
    fakes.state.set(
        &key(),
        &TargetState {
            claim: Some(Claim {
                cause: "the error-rate alarm's transition".into(),
                at,
                until: at + chrono::TimeDelta::minutes(30),
            }),
            ..TargetState::default()
        },
    );
    // Without the claim, the latency alarm would move the alias from 2 to 1.
    let report = fakes
        .guard(policy())
        .handle(&eventbridge("orders-ai-latency-p95"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Skipped, "{}", report.reason);
    assert!(
        report
            .reason
            .contains("another cause began acting on orders-ai"),
        "{}",
        report.reason
    );
    assert_eq!(fakes.lambda.alias_updates(), 0);
    assert!(alias(&fakes).same_routing(&AliasState::on("2")));
}

#[tokio::test]
async fn a_failed_action_that_changed_nothing_gives_its_claim_back() {
    let fakes = fakes("3");
    fakes.lambda.fail(
        "UpdateAlias",
        [PortError::Denied("AccessDeniedException".into())],
    );
    let report = fakes
        .guard(policy())
        .handle(&eventbridge("orders-ai-error-rate"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.reason);
    let state = fakes.state_of("orders-ai", "live");
    assert!(state.claim.is_none() && state.plan.is_none(), "{state:?}");

    // The other alarm may act: nothing was done for the first.
    let report = fakes
        .guard(policy())
        .handle(&eventbridge("orders-ai-latency-p95"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(fakes.lambda.alias_updates(), 1);
}

#[tokio::test]
async fn a_duplicate_delivery_to_another_instance_finds_the_record() {
    let fakes = fakes("3");
    let event = eventbridge("orders-ai-error-rate");
    let first = fakes.guard(policy()).handle(&event, false).await;
    assert_eq!(first.outcome, Outcome::Executed, "{}", first.reason);
    let second = fakes.guard(policy()).handle(&event, false).await;
    assert_eq!(second.outcome, Outcome::AlreadyDone, "{}", second.reason);
    assert_eq!(fakes.lambda.alias_updates(), 1);
}

/// The first instance's writes: the claim, the plan, then the record, which fails past its
/// retries (throttled four times).
fn lose_the_first_record(fakes: &FakeBackends) {
    fakes.state.fail_after(
        "Write",
        2,
        (0..4).map(|_| PortError::Throttled("ProvisionedThroughputExceededException".into())),
    );
}

#[tokio::test]
async fn the_sns_copy_of_a_transition_whose_record_was_lost_does_not_move_the_alias_again() {
    let fakes = fakes("3");
    lose_the_first_record(&fakes);
    let first = fakes
        .guard(policy())
        .handle(&eventbridge("orders-ai-error-rate"), false)
        .await;
    assert_eq!(first.outcome, Outcome::Executed, "{}", first.reason);
    assert!(
        first
            .notes
            .iter()
            .any(|n| n.contains("record could not be written")),
        "{:?}",
        first.notes
    );
    assert!(alias(&fakes).same_routing(&AliasState::on("2")));

    // The same transition over SNS, a second later, on another instance: it finds the plan of
    // its cause with the alias on the planned "after", so it is done, and writes the record
    // the first could not.
    let sns = alarm_event("sns-alarm.json", "orders-ai-error-rate");
    let second = fakes.guard(policy()).handle(&sns, false).await;
    assert_eq!(second.outcome, Outcome::AlreadyDone, "{}", second.reason);
    assert!(
        second
            .reason
            .contains("already moved alias live from version 3 to version 2"),
        "{}",
        second.reason
    );
    assert_eq!(
        fakes.lambda.alias_updates(),
        1,
        "{:?}",
        fakes.lambda.calls()
    );
    assert!(alias(&fakes).same_routing(&AliasState::on("2")));
    let state = fakes.state_of("orders-ai", "live");
    let record = state
        .last
        .expect("the record, written by the second delivery");
    assert_eq!(
        record.alias.expect("an alias change").after,
        AliasState::on("2")
    );
    assert!(state.plan.is_none());
}

#[tokio::test]
async fn deliveries_racing_on_two_instances_move_the_alias_once() {
    for order in [false, true] {
        let fakes = fakes("3");
        lose_the_first_record(&fakes);
        let (a, b) = (fakes.guard(policy()), fakes.guard(policy()));
        let eb = eventbridge("orders-ai-error-rate");
        let sns = alarm_event("sns-alarm.json", "orders-ai-error-rate");
        let (first, second) = if order { (&eb, &sns) } else { (&sns, &eb) };
        let (x, y) = tokio::join!(a.handle(first, false), b.handle(second, false));
        let outcomes = [x.outcome, y.outcome];
        assert!(
            outcomes.contains(&Outcome::Executed) && outcomes.contains(&Outcome::AlreadyDone),
            "{outcomes:?}: {} / {}",
            x.reason,
            y.reason
        );
        assert_eq!(
            fakes.lambda.alias_updates(),
            1,
            "{:?}",
            fakes.lambda.calls()
        );
        assert!(alias(&fakes).same_routing(&AliasState::on("2")));
    }
}

#[tokio::test]
async fn a_plan_whose_alias_someone_else_moved_is_not_carried_on() {
    let fakes = fakes("3");
    lose_the_first_record(&fakes);
    let event = eventbridge("orders-ai-error-rate");
    let first = fakes.guard(policy()).handle(&event, false).await;
    assert_eq!(first.outcome, Outcome::Executed, "{}", first.reason);
    // A person puts the alias on 1 meanwhile; the retried transition stands back.
    fakes
        .lambda
        .set_alias("orders-ai", "live", AliasState::on("1"));
    let retried = fakes.guard(policy()).handle(&event, false).await;
    assert_eq!(retried.outcome, Outcome::Skipped, "{}", retried.reason);
    assert!(
        retried.reason.contains("something else moved it"),
        "{}",
        retried.reason
    );
    assert_eq!(fakes.lambda.alias_updates(), 1);
    assert!(alias(&fakes).same_routing(&AliasState::on("1")));
}

#[tokio::test]
async fn a_state_table_that_cannot_be_read_or_claimed_is_a_failure_that_changes_nothing() {
    for op in ["Read", "Write"] {
        let fakes = fakes("3");
        fakes.state.fail(
            op,
            (0..4).map(|_| PortError::Transient("InternalServerError".into())),
        );
        let report = fakes
            .guard(policy())
            .handle(&eventbridge("orders-ai-error-rate"), false)
            .await;
        assert_eq!(report.outcome, Outcome::Failed, "{op}: {}", report.reason);
        assert!(
            report
                .reason
                .contains("what the guard remembers of orders-ai:live"),
            "{}",
            report.reason
        );
        assert_eq!(fakes.lambda.alias_updates(), 0);
    }
}
