//! Guarded re-enable over fakes, on an injected clock: the first step at once, the next ones
//! by the schedule only while every watched alarm is OK, complete at 100 %; an ALARM between
//! steps aborts (once, however often delivered); INSUFFICIENT_DATA holds; cancel; a new
//! instance (a cold start) carries on from the tags; the refusals.

use crate::support::{event, policy};
use chrono::Duration;
use rollback_guard::fakes::{FakeBackends, FakeLambda};
use rollback_guard::guard::ReenableRequest;
use rollback_guard::rollback::AliasState;
use rollback_guard::transition::AlarmState;
use rollback_guard::{Guard, Outcome};
use serde_json::Value;

const ALARM: &str = "orders-ai-error-rate";

/// The catalog's alarm, its transition at another moment (a new one, not a duplicate).
fn alarm_at(timestamp: &str) -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/eventbridge-alarm.json"
    );
    let text = std::fs::read_to_string(path)
        .expect("event")
        .replace("2026-11-20T03:12:45.123+0000", timestamp);
    serde_json::from_str(&text).expect("json")
}

fn request() -> ReenableRequest {
    ReenableRequest {
        steps: vec![10, 50, 100],
        every: Duration::minutes(5),
        version: None,
        by: "alice".into(),
    }
}

fn routing(version: &str, back: &str, weight: f64) -> AliasState {
    let mut a = AliasState::on(version);
    a.weights.insert(back.into(), weight);
    a
}

/// `orders-ai` rolled back by the guard (3 → 2), the cooldown over, its alarm OK again.
async fn rolled_back() -> (FakeBackends, Guard) {
    let lambda = FakeLambda::default().with_function("orders-ai", 3, "live", AliasState::on("3"));
    let fakes = FakeBackends::new(lambda, ALARM, "2026-11-20T03:13:00Z".parse().expect("t"));
    let guard = fakes.guard(policy());
    let report = guard.handle(&event("eventbridge-alarm.json"), false).await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    fakes.clock.advance(Duration::minutes(31));
    fakes.alarms.set(ALARM, AlarmState::Ok);
    (fakes, guard)
}

fn alias(fakes: &FakeBackends) -> AliasState {
    let mut a = fakes.lambda.alias("orders-ai", "live").expect("alias");
    a.revision_id = None;
    a
}

/// The subjects of what people heard about `orders-ai` (the catalog's other targets have no
/// function in these fakes: their scheduled checks fail, as they would).
fn about_orders(fakes: &FakeBackends) -> Vec<String> {
    fakes
        .notifier
        .sent()
        .into_iter()
        .map(|(_, n)| n.subject)
        .filter(|s| s.contains("orders-ai"))
        .collect()
}

async fn tick(fakes: &FakeBackends, guard: &Guard, minutes: i64) {
    fakes.clock.advance(Duration::minutes(minutes));
    guard.handle(&event("schedule.json"), false).await;
}

#[tokio::test]
async fn steps_advance_only_on_ok_and_complete_at_all_traffic() {
    let (fakes, guard) = rolled_back().await;
    let report = guard
        .start_reenable("orders-ai", &request())
        .await
        .expect("started");
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(alias(&fakes), routing("2", "3", 0.1));
    // Not due yet: nothing moves.
    tick(&fakes, &guard, 1).await;
    assert_eq!(alias(&fakes), routing("2", "3", 0.1));
    // Due, the alarm OK: 50 %.
    tick(&fakes, &guard, 4).await;
    assert_eq!(alias(&fakes), routing("2", "3", 0.5));
    tick(&fakes, &guard, 5).await;
    assert_eq!(alias(&fakes), AliasState::on("3"));
    assert_eq!(guard.reenable_status("orders-ai").await, Ok(None));
    // Announced: the rollback, the first step, the second, the completion.
    let subjects = about_orders(&fakes);
    assert_eq!(subjects.len(), 4, "{subjects:?}");
    assert!(
        subjects[1].starts_with("Re-enable step on orders-ai"),
        "{subjects:?}"
    );
    assert!(
        subjects[3].starts_with("Re-enable complete on orders-ai"),
        "{subjects:?}"
    );
    let kinds = fakes.audit.detail_types();
    assert!(
        kinds.contains(&"Re-enable Completed".to_string()),
        "{kinds:?}"
    );
    // Nothing after it.
    tick(&fakes, &guard, 5).await;
    assert_eq!(about_orders(&fakes).len(), 4);
}

#[tokio::test]
async fn insufficient_data_holds_the_step_and_says_why() {
    let (fakes, guard) = rolled_back().await;
    guard
        .start_reenable("orders-ai", &request())
        .await
        .expect("started");
    fakes.alarms.set(ALARM, AlarmState::InsufficientData);
    fakes.clock.advance(Duration::minutes(5));
    let report = guard.handle(&event("schedule.json"), false).await;
    assert_eq!(alias(&fakes), routing("2", "3", 0.1));
    let held = report
        .steps
        .iter()
        .find(|s| s.reason.contains("held"))
        .expect("held");
    assert!(held.reason.contains("INSUFFICIENT_DATA"), "{}", held.reason);
    // Held, not paged each minute: of the re-enable, the first step only.
    let steps = about_orders(&fakes)
        .into_iter()
        .filter(|s| s.starts_with("Re-enable"))
        .count();
    assert_eq!(steps, 1, "{:?}", about_orders(&fakes));
    fakes.alarms.set(ALARM, AlarmState::Ok);
    tick(&fakes, &guard, 1).await;
    assert_eq!(alias(&fakes), routing("2", "3", 0.5));
}

#[tokio::test]
async fn an_alarm_between_steps_aborts_once_and_puts_the_traffic_back() {
    let (fakes, guard) = rolled_back().await;
    guard
        .start_reenable("orders-ai", &request())
        .await
        .expect("started");
    tick(&fakes, &guard, 5).await;
    assert_eq!(alias(&fakes), routing("2", "3", 0.5));
    fakes.alarms.set(ALARM, AlarmState::Alarm);
    let again = alarm_at("2026-11-20T03:50:01.000+0000");
    let report = guard.handle(&again, false).await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(report.action, Some("reenable-abort"));
    assert!(report.reason.contains(ALARM), "{}", report.reason);
    assert_eq!(alias(&fakes), AliasState::on("2"));
    assert_eq!(guard.reenable_status("orders-ai").await, Ok(None));
    // The same transition again, to another instance: aborted once.
    let other = fakes.guard(policy());
    let dup = other.handle(&again, false).await;
    assert_eq!(dup.outcome, Outcome::AlreadyDone, "{}", dup.reason);
    let aborts = fakes
        .audit
        .detail_types()
        .iter()
        .filter(|t| *t == "Re-enable Aborted")
        .count();
    assert_eq!(aborts, 1);
    // The abort starts the cooldown: the alias is not rolled back further meanwhile.
    tick(&fakes, &guard, 1).await;
    assert_eq!(alias(&fakes), AliasState::on("2"));
}

#[tokio::test]
async fn cancel_stops_where_it_stands_and_a_cold_start_carries_on() {
    let (fakes, guard) = rolled_back().await;
    guard
        .start_reenable("orders-ai", &request())
        .await
        .expect("started");
    // A new instance (cold start) takes the next step from the tags.
    fakes.clock.advance(Duration::minutes(5));
    let fresh = fakes.guard(policy());
    fresh.handle(&event("schedule.json"), false).await;
    assert_eq!(alias(&fakes), routing("2", "3", 0.5));
    let report = fresh
        .cancel_reenable("orders-ai", "bob")
        .await
        .expect("cancelled");
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert!(
        report.reason.contains("cancelled by bob at step 2 of 3"),
        "{}",
        report.reason
    );
    tick(&fakes, &fresh, 10).await;
    assert_eq!(alias(&fakes), routing("2", "3", 0.5), "left where it stood");
    assert!(fresh.cancel_reenable("orders-ai", "bob").await.is_err());
}

#[tokio::test]
async fn a_reenable_is_refused_in_the_cooldown_with_a_bad_version_or_twice() {
    let lambda = FakeLambda::default().with_function("orders-ai", 3, "live", AliasState::on("3"));
    let fakes = FakeBackends::new(lambda, ALARM, "2026-11-20T03:13:00Z".parse().expect("t"));
    let guard = fakes.guard(policy());
    guard.handle(&event("eventbridge-alarm.json"), false).await;
    let refused = guard.start_reenable("orders-ai", &request()).await;
    assert!(
        refused.as_ref().is_err_and(|e| e.contains("cooldown")),
        "{refused:?}"
    );
    fakes.clock.advance(Duration::minutes(31));
    for (version, why) in [
        ("$LATEST", "not a published version number"),
        ("7", "not published"),
        ("2", "already serves version 2"),
    ] {
        let mut r = request();
        r.version = Some(version.into());
        let refused = guard.start_reenable("orders-ai", &r).await;
        assert!(
            refused.as_ref().is_err_and(|e| e.contains(why)),
            "{version}: {refused:?}"
        );
    }
    assert_eq!(alias(&fakes), AliasState::on("2"), "nothing moved");
    guard
        .start_reenable("orders-ai", &request())
        .await
        .expect("started");
    let twice = guard.start_reenable("orders-ai", &request()).await;
    assert!(
        twice
            .as_ref()
            .is_err_and(|e| e.contains("already in progress")),
        "{twice:?}"
    );
    let unknown = guard.start_reenable("nobody", &request()).await;
    assert!(unknown.is_err());
}
