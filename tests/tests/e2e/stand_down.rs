//! The guard stands down when people say so, on the emulator: alarm actions disabled with
//! `DisableAlarmActions` (which the emulator keeps), and a pause in the target's tags that
//! ends by itself. Skipped with nothing changed and nobody paged; acting again once people
//! let it; a person's request acts during a pause.

use chrono::{DateTime, Duration, Utc};
use guard_e2e::{Sandbox as World, ROLLBACK};
use rollback_guard::fakes::FakeClock;
use rollback_guard::guard::Outcome;
use rollback_guard::operator::{self, PauseRequest};
use serde_json::Value;
use std::sync::Arc;

fn detail_types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["detail-type"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn disabled_alarm_actions_hold_the_guard_back_until_they_are_enabled_again() {
    let w = World::new(ROLLBACK, 3, "3", &[], "ALARM").await;
    let alarm = format!("{}-error-rate", w.name);
    w.emu
        .cloudwatch
        .disable_alarm_actions()
        .alarm_names(&alarm)
        .send()
        .await
        .expect("disable");

    let report = w
        .guard()
        .handle(&w.event("eventbridge-alarm.json"), false)
        .await;

    assert_eq!(report.outcome, Outcome::Skipped, "{}", report.reason);
    assert!(
        report
            .reason
            .contains(&format!("alarm actions are disabled on {alarm}")),
        "{}",
        report.reason
    );
    assert_eq!(w.alias().await, "3");
    assert!(w.emu.tags(&w.name).await.expect("tags").is_empty());
    assert!(w.notifications().await.is_empty());
    assert_eq!(
        detail_types(&w.audit_events().await),
        vec!["Rollback Skipped"]
    );

    w.emu
        .cloudwatch
        .enable_alarm_actions()
        .alarm_names(&alarm)
        .send()
        .await
        .expect("enable");
    let report = w.guard().handle(&w.event("sns-alarm.json"), false).await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(w.alias().await, "2");
    assert_eq!(w.notifications().await.len(), 1);
}

#[tokio::test]
async fn a_pause_skips_alarms_lets_a_request_through_and_ends_by_itself() {
    // The sandbox's policy, plus the requests of the CLI's source.
    let mut w = World::new(ROLLBACK, 3, "3", &[], "ALARM").await;
    w.policy_toml = w.policy_toml.replace(
        "cooldown_minutes = 30",
        "cooldown_minutes = 0\nrequest_sources = [\"rollback-guard.cli\"]",
    );
    w.policy = rollback_guard::Policy::from_toml(&w.policy_toml).expect("policy");
    let ports = w.ports();
    let paused = operator::pause(
        &w.policy,
        &guard_e2e::operating(&ports),
        &w.name,
        &PauseRequest {
            duration: Duration::hours(1),
            by: "oncall",
            reason: "failover drill",
        },
    )
    .await
    .expect("paused");

    let held = w
        .guard()
        .handle(&w.event("eventbridge-alarm.json"), false)
        .await;
    assert_eq!(held.outcome, Outcome::Skipped, "{}", held.reason);
    assert!(held.reason.contains("failover drill"), "{}", held.reason);
    assert_eq!(w.alias().await, "3");
    assert!(w.notifications().await.is_empty());

    // A person's request is a decision, not held back by the pause.
    let mut request = w.event("request-rollback.json");
    request["detail"]["target"] = w.name.as_str().into();
    let asked = w.guard().handle(&request, false).await;
    assert_eq!(asked.outcome, Outcome::Executed, "{}", asked.reason);
    assert_eq!(w.alias().await, "2");

    // Once the pause has ended, the next transition acts (here: back from 3, moved by hand).
    w.emu
        .lambda
        .update_alias()
        .function_name(&w.name)
        .name("live")
        .function_version("3")
        .send()
        .await
        .expect("redeploy");
    let after: DateTime<Utc> = paused.until + Duration::minutes(1);
    let mut later = w.event("eventbridge-alarm.json");
    later["detail"]["state"]["timestamp"] = "2026-11-20T05:20:00.000+0000".into();
    let report = w
        .guard_at(Arc::new(FakeClock::at(after)))
        .handle(&later, false)
        .await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(w.alias().await, "2");
}
