//! Alias rollback end to end on the local AWS emulator: real SDK adapters, real Lambda,
//! CloudWatch, SNS and EventBridge state; notifications and audit events read back through
//! SQS. Each test provisions its own names, so they run side by side.

use guard_e2e::{Sandbox as World, ROLLBACK};
use rollback_guard::guard::Outcome;
use serde_json::Value;

fn detail_types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["detail-type"].as_str().unwrap_or("").to_string())
        .collect()
}

/// The JSON half of a notification's body.
fn notification_json(n: &Value) -> Value {
    let message = n["Message"].as_str().expect("message");
    let (_, json) = message.split_once("--- JSON ---\n").expect("JSON part");
    serde_json::from_str(json).expect("JSON part parses")
}

#[tokio::test]
async fn canary_is_aborted_keeping_the_primary_version_and_announced() {
    let w = World::new(ROLLBACK, 3, "2", &[("3", 0.1)], "ALARM").await;
    assert_eq!(w.alias().await, "2 + 3=0.1");

    let report = w
        .guard()
        .handle(&w.event("eventbridge-alarm.json"), false)
        .await;

    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(w.alias().await, "2");
    // The emulator's CodeDeploy was asked (the real adapter) and answered: nothing in
    // progress, so there is nothing to say about it.
    assert!(report.codedeploy.is_empty(), "{:?}", report.codedeploy);
    assert_eq!(report.deployment, None);
    let notes = w.notifications().await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    let n = &notes[0];
    let subject = n["Subject"].as_str().expect("subject");
    assert!(
        subject.len() <= 100 && subject.contains(&w.name) && subject.contains("Canary aborted"),
        "{subject}"
    );
    let body = n["Message"].as_str().expect("body");
    for needle in [
        "canary aborted: alias live now sends all traffic to version 2".to_string(),
        format!(
            "alarm \"{}-error-rate\" went from OK to ALARM at 2026-11-20T03:12:45.123Z",
            w.name
        ),
        "Why: Threshold Crossed: 2 out of the last 2 datapoints".to_string(),
        "Datapoints: 12.5, 14.2".to_string(),
        format!("How to undo: guard undo --target {}", w.name),
    ] {
        assert!(body.contains(&needle), "missing `{needle}` in:\n{body}");
    }
    let json = notification_json(n);
    assert_eq!(json["outcome"], "executed");
    assert_eq!(json["before"]["weights"]["3"], 0.1);
    assert_eq!(json["after"]["version"], "2");
    assert_eq!(json["after"]["weights"], serde_json::json!({}));
    assert_eq!(n["MessageAttributes"]["outcome"]["Value"], "executed");
    assert_eq!(n["MessageAttributes"]["target"]["Value"], w.name.as_str());
    assert_eq!(n["TopicArn"], w.topic.as_str());

    let audit = w.audit_events().await;
    assert_eq!(detail_types(&audit), vec!["Rollback Executed"]);
    let e = &audit[0];
    assert_eq!(e["source"], "rollback-guard");
    assert_eq!(e["detail"]["target"], w.name.as_str());
    assert_eq!(e["detail"]["alarm"]["transport"], "eventbridge");
    assert_eq!(e["detail"]["before"]["version"], "2");
    assert_eq!(
        e["detail"]["undo"],
        format!("guard undo --target {}", w.name)
    );
}

#[tokio::test]
async fn full_shift_rolls_back_to_the_recorded_stable_version() {
    let w = World::new(ROLLBACK, 4, "4", &[], "ALARM").await;
    let ports = w.ports();
    let stable = rollback_guard::operator::mark_stable(
        &guard_e2e::operating(&ports),
        &w.name,
        "live",
        Some("2"),
    )
    .await
    .expect("mark-stable");
    assert_eq!(stable, "2");

    let report = w.guard().handle(&w.event("sns-alarm.json"), false).await;

    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(w.alias().await, "2");
    assert!(
        report.reason.contains("recorded stable version"),
        "{}",
        report.reason
    );
    let state = w.state().await;
    let change = state.last.and_then(|r| r.alias).expect("the record");
    assert_eq!(
        (
            change.before.version.as_str(),
            change.after.version.as_str()
        ),
        ("4", "2")
    );
    assert_eq!(state.stable.as_deref(), Some("2"));
    assert!(w.emu.tags(&w.name).await.expect("tags").is_empty());
}

#[tokio::test]
async fn full_shift_without_a_record_rolls_back_to_the_previous_published_version() {
    let w = World::new(ROLLBACK, 3, "3", &[], "ALARM").await;
    let report = w
        .guard()
        .handle(&w.event("lambda-action-alarm.json"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(w.alias().await, "2");
}

#[tokio::test]
async fn latest_is_never_chosen_and_the_failure_is_announced() {
    // Version 1 is the only published version: the one older "version" is $LATEST.
    let w = World::new(ROLLBACK, 1, "1", &[], "ALARM").await;
    let report = w
        .guard()
        .handle(&w.event("eventbridge-alarm.json"), false)
        .await;

    assert_eq!(report.outcome, Outcome::Failed);
    assert!(
        report.reason.contains("no published version older than 1"),
        "{}",
        report.reason
    );
    assert_eq!(w.alias().await, "1");
    let notes = w.notifications().await;
    assert_eq!(notes.len(), 1);
    assert!(notes[0]["Subject"]
        .as_str()
        .unwrap_or("")
        .contains("FAILED"));
    assert!(notes[0]["Message"]
        .as_str()
        .unwrap_or("")
        .contains("alias live left unchanged on version 1"));
    assert_eq!(
        detail_types(&w.audit_events().await),
        vec!["Rollback Failed"]
    );
}

#[tokio::test]
async fn a_missing_recorded_stable_version_is_a_clear_failure() {
    let w = World::new(ROLLBACK, 3, "3", &[], "ALARM").await;
    let key = rollback_guard::state::StateKey::new(guard_e2e::ACCOUNT, &w.name, Some("live"));
    let stable = rollback_guard::state::TargetState {
        stable: Some("7".into()),
        ..Default::default()
    };
    rollback_guard::ports::StateStore::write(&w.state_store(), &key, &stable, 0)
        .await
        .expect("state");

    let report = w
        .guard()
        .handle(&w.event("eventbridge-alarm.json"), false)
        .await;

    assert_eq!(report.outcome, Outcome::Failed);
    assert!(
        report
            .reason
            .contains("recorded stable version 7 does not exist"),
        "{}",
        report.reason
    );
    assert_eq!(w.alias().await, "3");
    assert_eq!(
        detail_types(&w.audit_events().await),
        vec!["Rollback Failed"]
    );
}

#[tokio::test]
async fn ok_insufficient_data_and_unmatched_alarms_change_nothing() {
    let w = World::new(ROLLBACK, 3, "3", &[], "ALARM").await;
    let guard = w.guard();
    let expected = [
        ("eventbridge-ok.json", Outcome::NoAction),
        ("eventbridge-insufficient-data.json", Outcome::NoAction),
        ("eventbridge-unmatched-alarm.json", Outcome::Ignored),
    ];
    for (file, outcome) in expected {
        let report = guard.handle(&w.event(file), false).await;
        assert_eq!(report.outcome, outcome, "{file}: {}", report.reason);
    }
    w.assert_untouched("3").await;
}

#[tokio::test]
async fn an_alarm_that_has_recovered_is_not_acted_on() {
    // The event says ALARM, but by the time it arrives the alarm is OK again.
    let w = World::new(ROLLBACK, 3, "3", &[], "OK").await;
    let report = w
        .guard()
        .handle(&w.event("eventbridge-alarm.json"), false)
        .await;
    assert_eq!(report.outcome, Outcome::NoAction);
    assert!(report.reason.contains("is OK now"), "{}", report.reason);
    assert_eq!(w.alias().await, "3");
    assert!(w.notifications().await.is_empty());
}

#[tokio::test]
async fn one_transition_over_three_transports_is_one_rollback_and_one_notification() {
    let w = World::new(ROLLBACK, 3, "3", &[], "ALARM").await;
    let mut outcomes = Vec::new();
    for file in [
        "eventbridge-alarm.json",
        "sns-alarm.json",
        "lambda-action-alarm.json",
    ] {
        // A separate guard each time: the duplicate is found in the target's record, not in
        // one instance's memory.
        outcomes.push(w.guard().handle(&w.event(file), false).await.outcome);
    }
    assert_eq!(
        outcomes,
        vec![
            Outcome::Executed,
            Outcome::AlreadyDone,
            Outcome::AlreadyDone
        ]
    );
    // Once: 3 -> 2, not on to 1.
    assert_eq!(w.alias().await, "2");
    assert_eq!(w.notifications().await.len(), 1);
    assert_eq!(
        detail_types(&w.audit_events().await),
        vec!["Rollback Executed", "Rollback Skipped", "Rollback Skipped"]
    );
}

#[tokio::test]
async fn cooldown_holds_back_a_second_transition_and_says_so() {
    let w = World::new(ROLLBACK, 4, "4", &[], "ALARM").await;
    let first = w
        .guard()
        .handle(&w.event("eventbridge-alarm.json"), false)
        .await;
    assert_eq!(first.outcome, Outcome::Executed);
    // The same alarm again, a later transition (ALARM -> OK -> ALARM).
    let mut again = w.event("eventbridge-alarm.json");
    again["detail"]["state"]["timestamp"] = "2026-11-20T03:20:00.000+0000".into();
    let second = w.guard().handle(&again, false).await;

    assert_eq!(second.outcome, Outcome::Skipped, "{}", second.reason);
    assert!(second.reason.starts_with("cooldown"), "{}", second.reason);
    assert_eq!(w.alias().await, "3");
    let notes = w.notifications().await;
    assert_eq!(notes.len(), 2);
    assert!(notes[1]["Subject"]
        .as_str()
        .unwrap_or("")
        .contains("held back"));
}

#[tokio::test]
async fn bad_inputs_are_rejected_without_touching_the_target() {
    // With the catalog's fleet trigger too: `bad-fleet-*` are bad under it.
    let with_fleet = format!(
        "{ROLLBACK}\n[[trigger]]\nalarm = \"guarded-*\"\ntarget = \"from-alarm\"\n{ROLLBACK}"
    );
    let w = World::new(&with_fleet, 3, "3", &[], "ALARM").await;
    let guard = w.guard();
    let dir = guard_e2e::events_dir();
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("events/")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|f| f.starts_with("bad-"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "{files:?}");
    for file in &files {
        let text = guard_e2e::event_text(file).replace("orders-ai", &w.name);
        let report = guard.handle_bytes(text.as_bytes(), false).await;
        assert_eq!(
            report.outcome,
            Outcome::Rejected,
            "{file}: {}",
            report.reason
        );
        assert!(!report.reason.is_empty());
    }
    w.assert_untouched("3").await;
}

#[tokio::test]
async fn replayed_events_are_planned_and_change_nothing() {
    let w = World::new(ROLLBACK, 3, "3", &[], "ALARM").await;
    let report = w
        .guard()
        .handle(&w.event("eventbridge-replayed.json"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Planned, "{}", report.reason);
    assert_eq!(
        report.alias_after.as_ref().map(|a| a.version.as_str()),
        Some("2")
    );
    assert_eq!(w.alias().await, "3");
    let audit = w.audit_events().await;
    assert_eq!(detail_types(&audit), vec!["Rollback Planned"]);
    assert_eq!(
        audit[0]["detail"]["alarm"]["replay_name"],
        "incidents-2026-11"
    );
    assert!(w.notifications().await.is_empty());
}

#[tokio::test]
async fn undo_restores_the_alias_and_refuses_after_an_outside_change() {
    let w = World::new(ROLLBACK, 3, "3", &[], "ALARM").await;
    use rollback_guard::operator::OperatorError;

    assert_eq!(
        w.guard()
            .handle(&w.event("eventbridge-alarm.json"), false)
            .await
            .outcome,
        Outcome::Executed
    );
    assert_eq!(w.alias().await, "2");
    let undone = w.undo(&w.ports()).await.expect("undo");
    assert_eq!(
        undone.alias.as_ref().map(|a| a.after.version.as_str()),
        Some("3")
    );
    assert_eq!(w.alias().await, "3");
    // A second undo has nothing of the guard's left to undo.
    assert!(matches!(
        w.undo(&w.ports()).await,
        Err(OperatorError::Refused(_))
    ));

    // A fresh target for the other case: the guard rolls back, then someone else moves it.
    let w2 = World::new(ROLLBACK, 3, "3", &[], "ALARM").await;
    assert_eq!(
        w2.guard()
            .handle(&w2.event("eventbridge-alarm.json"), false)
            .await
            .outcome,
        Outcome::Executed
    );
    // Someone moves the alias by hand after the guard.
    w2.emu
        .lambda
        .update_alias()
        .function_name(&w2.name)
        .name("live")
        .function_version("1")
        .send()
        .await
        .expect("manual move");
    let refused = w2.undo(&w2.ports()).await;
    match refused {
        Err(OperatorError::Refused(why)) => {
            assert!(why.contains("something else changed it"), "{why}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(w2.emu.alias(&w2.name, "live").await.expect("alias"), "1");
}
