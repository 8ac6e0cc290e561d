//! Guarded re-enable on the emulator: a target the guard rolled back is brought back
//! 10 → 50 → 100 by schedule events while its alarm is OK (moto never evaluates alarms: their
//! state is set with SetAlarmState), and, the next time, aborted at 50 when the alarm goes
//! into ALARM; each step announced over SNS and EventBridge.

use guard_e2e::{Sandbox, ROLLBACK};
use rollback_guard::fakes::FakeClock;
use rollback_guard::guard::ReenableRequest;
use rollback_guard::Outcome;
use std::sync::Arc;

fn request() -> ReenableRequest {
    ReenableRequest {
        steps: vec![10, 50, 100],
        every: chrono::Duration::minutes(5),
        version: None,
        by: "e2e".into(),
    }
}

/// The sandbox's function rolled back by the guard (3 → 2), the cooldown over, the alarm OK;
/// the guard on an injected clock.
async fn rolled_back() -> (Sandbox, Arc<FakeClock>) {
    let s = Sandbox::new(ROLLBACK, 3, "3", &[], "ALARM").await;
    // The catalog alarm's own time: the schedule and the steps count from there.
    let clock = Arc::new(FakeClock::at("2026-11-20T03:13:00Z".parse().expect("t")));
    let report = s
        .guard_at(clock.clone())
        .handle(&s.event("eventbridge-alarm.json"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(s.alias().await, "2");
    clock.advance(chrono::Duration::minutes(31));
    s.emu
        .set_alarm(&format!("{}-error-rate", s.name), "OK")
        .await
        .expect("OK");
    (s, clock)
}

/// The detail-types of the audit events on the sandbox's bus so far.
async fn detail_types(s: &Sandbox) -> Vec<String> {
    s.audit_events()
        .await
        .iter()
        .map(|e| e["detail-type"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn tick(s: &Sandbox, clock: &Arc<FakeClock>, minutes: i64) {
    clock.advance(chrono::Duration::minutes(minutes));
    s.guard_at(clock.clone())
        .handle(&s.event("schedule.json"), false)
        .await;
}

#[tokio::test]
async fn brought_back_in_steps_while_the_alarm_is_ok() {
    let (s, clock) = rolled_back().await;
    let report = s
        .guard_at(clock.clone())
        .start_reenable(&s.name, &request())
        .await
        .expect("started");
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(s.alias().await, "2 + 3=0.1");
    tick(&s, &clock, 5).await;
    assert_eq!(s.alias().await, "2 + 3=0.5");
    tick(&s, &clock, 5).await;
    assert_eq!(s.alias().await, "3");
    let kinds = detail_types(&s).await;
    assert_eq!(
        kinds,
        [
            "Rollback Executed",
            "Re-enable Step",
            "Re-enable Step",
            "Re-enable Completed"
        ],
        "{kinds:?}"
    );
    assert_eq!(s.notifications().await.len(), 4);
}

#[tokio::test]
async fn aborted_at_fifty_when_the_alarm_goes_into_alarm() {
    let (s, clock) = rolled_back().await;
    s.guard_at(clock.clone())
        .start_reenable(&s.name, &request())
        .await
        .expect("started");
    tick(&s, &clock, 5).await;
    assert_eq!(s.alias().await, "2 + 3=0.5");
    // The alarm goes into ALARM (its event missed, say): the next check aborts.
    s.emu
        .set_alarm(&format!("{}-error-rate", s.name), "ALARM")
        .await
        .expect("ALARM");
    tick(&s, &clock, 1).await;
    assert_eq!(s.alias().await, "2", "all traffic back where it was");
    let kinds = detail_types(&s).await;
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("Re-enable Aborted"),
        "{kinds:?}"
    );
    // And it stays there: the plan is gone, the abort's cooldown holds.
    tick(&s, &clock, 5).await;
    assert_eq!(s.alias().await, "2");
}
