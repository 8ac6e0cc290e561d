//! Claims across instances: a second alarm of a function, taken by another instance while the
//! first's action is under way (its record not yet written), is held back as by the cooldown;
//! a cause whose action failed and changed nothing gives its claim back.

use crate::support::policy;
use rollback_guard::claims::{claim_key, Claims, LocalClaims};
use rollback_guard::fakes::{FakeBackends, FakeLambda};
use rollback_guard::ports::PortError;
use rollback_guard::rollback::AliasState;
use rollback_guard::transition::AlarmState;
use rollback_guard::Outcome;
use serde_json::Value;
use std::sync::Arc;

/// The catalog's EventBridge alarm on `orders-ai`, renamed to `alarm`.
fn alarm_event(alarm: &str) -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/eventbridge-alarm.json"
    );
    let text = std::fs::read_to_string(path).expect("event");
    serde_json::from_str(&text.replace("orders-ai-error-rate", alarm)).expect("json")
}

fn fakes(on: &str) -> FakeBackends {
    let lambda = FakeLambda::default().with_function("orders-ai", 3, "live", AliasState::on(on));
    let now = "2026-11-20T03:13:00Z".parse().expect("time");
    let fakes = FakeBackends::new(lambda, "orders-ai-error-rate", now);
    fakes.alarms.set("orders-ai-latency-p95", AlarmState::Alarm);
    fakes
}

fn moves(fakes: &FakeBackends) -> usize {
    fakes
        .lambda
        .calls()
        .iter()
        .filter(|c| c.starts_with("UpdateAlias"))
        .count()
}

#[tokio::test]
async fn another_instances_claim_holds_a_second_alarm_back() {
    // Instance 1 has moved the alias for the error-rate alarm and not yet written its record
    // (on a bad day the records wait behind the alias moves): the function is claimed.
    let fakes = fakes("2");
    let claims = Arc::new(LocalClaims::default());
    let key = claim_key("123456789012", "orders-ai");
    let at = "2026-11-20T03:13:00Z".parse().expect("time");
    let until = "2026-11-20T03:43:00Z".parse().expect("time");
    let held = claims
        .claim(&key, "the error-rate alarm's transition", at, until)
        .await;
    assert_eq!(held, Ok(None));

    // Instance 2 takes the latency alarm: no record yet, the alias on 2; without the claim it
    // would move the alias to 1.
    let second = fakes.guard(policy()).with_claims(claims.clone());
    let report = second
        .handle(&alarm_event("orders-ai-latency-p95"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Skipped, "{}", report.reason);
    assert!(
        report
            .reason
            .contains("another cause began acting on orders-ai"),
        "{}",
        report.reason
    );
    assert_eq!(moves(&fakes), 0);
    let alias = fakes.lambda.alias("orders-ai", "live").expect("alias");
    assert!(alias.same_routing(&AliasState::on("2")), "{alias}");
}

#[tokio::test]
async fn a_failed_action_that_changed_nothing_gives_its_claim_back() {
    let fakes = fakes("3");
    let claims = Arc::new(LocalClaims::default());
    fakes.lambda.fail(
        "UpdateAlias",
        [PortError::Other("AccessDeniedException".into())],
    );
    let first = fakes.guard(policy()).with_claims(claims.clone());
    let report = first
        .handle(&alarm_event("orders-ai-error-rate"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.reason);

    // The other alarm may act: nothing was done for the first.
    let second = fakes.guard(policy()).with_claims(claims);
    let report = second
        .handle(&alarm_event("orders-ai-latency-p95"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(moves(&fakes), 1);
}

#[tokio::test]
async fn a_cause_may_take_its_own_claim_again() {
    // A duplicate delivery of the first alarm, to another instance, while the first holds
    // the claim: it goes the usual way (and finds the alias moved).
    let fakes = fakes("3");
    let claims = Arc::new(LocalClaims::default());
    let first = fakes.guard(policy()).with_claims(claims.clone());
    let event = alarm_event("orders-ai-error-rate");
    assert_eq!(first.handle(&event, false).await.outcome, Outcome::Executed);
    let second = fakes.guard(policy()).with_claims(claims);
    let report = second.handle(&event, false).await;
    assert_eq!(report.outcome, Outcome::AlreadyDone, "{}", report.reason);
    assert_eq!(moves(&fakes), 1);
}
