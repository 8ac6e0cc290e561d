//! The every-minute schedule on the emulator: a watched alarm without data for too long is
//! one warning (the guard is blind to the target), never an action.

use chrono::{Duration, Utc};
use guard_e2e::{Sandbox, ROLLBACK};
use rollback_guard::fakes::FakeClock;
use std::sync::Arc;

#[tokio::test]
async fn an_alarm_without_data_for_too_long_is_one_warning() {
    let s = Sandbox::new(ROLLBACK, 3, "3", &[], "OK").await;
    s.emu
        .set_alarm(&format!("{}-error-rate", s.name), "INSUFFICIENT_DATA")
        .await
        .expect("state");
    let schedule = guard_e2e::event_for("schedule.json", "orders-ai", &s.name);

    // Twenty minutes on: not blind yet (the default is 30).
    let early = s
        .guard_at(Arc::new(FakeClock::at(Utc::now() + Duration::minutes(20))))
        .handle(&schedule, false)
        .await;
    assert!(early.steps.is_empty(), "{:?}", early.steps);

    let later = Arc::new(FakeClock::at(Utc::now() + Duration::minutes(31)));
    let check = s.guard_at(later.clone()).handle(&schedule, false).await;
    assert_eq!(check.steps.len(), 1, "{:?}", check.steps);
    assert!(
        check.steps[0].reason.starts_with("blind:"),
        "{}",
        check.steps[0].reason
    );
    let again = s.guard_at(later).handle(&schedule, false).await;
    assert!(again.steps.is_empty());

    let notes = s.notifications().await;
    assert_eq!(notes.len(), 1);
    assert!(notes[0]["Subject"]
        .as_str()
        .unwrap_or("")
        .starts_with("Guard is blind to"));
    let audit = s.audit_events().await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["detail-type"], "Guard Blind");
    assert_eq!(s.alias().await, "3");
}
