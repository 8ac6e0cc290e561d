//! Critical Insight and Rollback Requested events through the pipeline, over fakes: the same
//! decision core, intake errors and exactly-once as alarm transitions.

use crate::support::event;
use rollback_guard::fakes::{FakeBackends, FakeLambda};
use rollback_guard::rollback::AliasState;
use rollback_guard::{Guard, Outcome, Policy};

fn backends() -> FakeBackends {
    let mut canary = AliasState::on("2");
    canary.weights.insert("3".into(), 0.1);
    let lambda = FakeLambda::default()
        .with_function("support-ai", 3, "live", AliasState::on("3"))
        .with_function("checkout-ai", 3, "live", canary);
    FakeBackends::new(
        lambda,
        "checkout-ai-error-rate",
        "2026-11-20T05:31:00Z".parse().expect("time"),
    )
}

fn guard(b: &FakeBackends) -> Guard {
    b.guard(
        Policy::from_file(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../events/policy.toml"
        ))
        .expect("policy"),
    )
}

fn alias(b: &FakeBackends, function: &str) -> AliasState {
    let mut a = b.lambda.alias(function, "live").expect("alias");
    a.revision_id = None;
    a
}

#[tokio::test]
async fn a_critical_insight_runs_its_triggers_action_once() {
    let b = backends();
    let first = guard(&b)
        .handle(&event("insight-critical.json"), false)
        .await;
    assert_eq!(first.outcome, Outcome::Executed, "{}", first.reason);
    assert_eq!(first.action, Some("disable-ai"));
    assert_eq!(alias(&b, "support-ai"), AliasState::on("4"));
    assert!(first
        .alarm
        .as_deref()
        .unwrap_or("")
        .starts_with("Critical Insight resource_saturation-5c1d2a9e0b7f4e31"));
    // Delivered again (EventBridge is at-least-once): nothing more.
    let again = guard(&b)
        .handle(&event("insight-critical.json"), false)
        .await;
    assert_eq!(again.outcome, Outcome::AlreadyDone);
    assert_eq!(b.lambda.count_calls("PublishVersion"), 1);
    assert_eq!(b.notifier.sent().len(), 1);
}

#[tokio::test]
async fn low_risk_and_untrusted_insights_change_nothing() {
    let b = backends();
    let low = guard(&b)
        .handle(&event("insight-low-risk.json"), false)
        .await;
    assert_eq!(low.outcome, Outcome::NoAction);
    assert!(
        low.reason.contains("below the trigger's min_risk 80"),
        "{}",
        low.reason
    );
    let untrusted = guard(&b)
        .handle(&event("bad-insight-unknown-source.json"), false)
        .await;
    assert_eq!(untrusted.outcome, Outcome::Rejected);
    assert!(
        untrusted.reason.contains("`my.scraper`"),
        "{}",
        untrusted.reason
    );
    let malformed = guard(&b)
        .handle(&event("bad-insight-risk-out-of-range.json"), false)
        .await;
    assert_eq!(malformed.outcome, Outcome::Rejected);
    assert!(b.lambda.calls().is_empty());
    assert!(b.notifier.sent().is_empty());
}

#[tokio::test]
async fn a_manual_request_acts_once_even_inside_the_cooldown() {
    let b = backends();
    // An alarm aborted checkout-ai's canary a minute ago: the cooldown is running.
    let alarm = guard(&b)
        .handle(&event("eventbridge-canary-alarm.json"), false)
        .await;
    assert_eq!(alarm.outcome, Outcome::Executed, "{}", alarm.reason);
    // A person asks for a rollback: the cooldown holds back automatic actions, not people.
    let request = guard(&b)
        .handle(&event("request-rollback.json"), false)
        .await;
    assert_eq!(request.outcome, Outcome::Executed, "{}", request.reason);
    assert_eq!(alias(&b, "checkout-ai"), AliasState::on("1"));
    assert!(request
        .alarm
        .as_deref()
        .unwrap_or("")
        .contains("oncall@example.com"));
    let again = guard(&b)
        .handle(&event("request-rollback.json"), false)
        .await;
    assert_eq!(again.outcome, Outcome::AlreadyDone);
    assert_eq!(b.lambda.alias_updates(), 2);
}

#[tokio::test]
async fn requests_from_unlisted_sources_for_unknown_targets_or_actions_are_rejected() {
    let b = backends();
    let mut unknown_action = event("request-rollback.json");
    unknown_action["detail"]["action"] = "delete-function".into();
    let requests = [
        event("bad-request-unlisted-source.json"),
        event("bad-request-unknown-target.json"),
        unknown_action,
    ];
    for request in &requests {
        let r = guard(&b).handle(request, false).await;
        assert_eq!(r.outcome, Outcome::Rejected, "{request}");
        if request["detail"]["action"] == "delete-function" {
            assert!(
                r.reason.contains("unknown action `delete-function`"),
                "{}",
                r.reason
            );
        }
    }
    assert!(b.lambda.calls().is_empty());
}

#[tokio::test]
async fn a_replayed_request_is_only_planned() {
    let b = backends();
    let mut replayed = event("request-rollback.json");
    replayed["replay-name"] = "last-week".into();
    let r = guard(&b).handle(&replayed, false).await;
    assert_eq!(r.outcome, Outcome::Planned, "{}", r.reason);
    assert!(b.lambda.calls().is_empty());
}

fn minutes_before(b: &FakeBackends, m: i64) -> chrono::DateTime<chrono::Utc> {
    use rollback_guard::ports::Clock;
    b.clock.now() - chrono::Duration::minutes(m)
}

#[tokio::test]
async fn a_watched_alarm_without_data_too_long_is_one_warning_not_an_action() {
    use rollback_guard::transition::AlarmState;
    let b = backends();
    b.alarms.set_since(
        "checkout-ai-error-rate",
        AlarmState::InsufficientData,
        minutes_before(&b, 31),
    );
    // Not yet blind: 10 minutes without data.
    b.alarms.set_since(
        "orders-ai-latency-p95",
        AlarmState::InsufficientData,
        minutes_before(&b, 10),
    );

    let first = guard(&b).handle(&event("schedule.json"), false).await;
    let warnings: Vec<_> = first
        .steps
        .iter()
        .filter(|r| r.reason.starts_with("blind:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{:?}", first.steps);
    assert_eq!(warnings[0].alarm.as_deref(), Some("checkout-ai-error-rate"));
    let sent = b.notifier.sent();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0]
            .1
            .subject
            .starts_with("Guard is blind to checkout-ai"),
        "{}",
        sent[0].1.subject
    );
    assert_eq!(b.audit.detail_types(), vec!["Guard Blind"]);
    assert_eq!(b.lambda.alias_updates(), 0);

    // The next minutes: the same spell is not warned about again.
    b.clock.advance(chrono::Duration::minutes(1));
    guard(&b).handle(&event("schedule.json"), false).await;
    assert_eq!(b.notifier.sent().len(), 1);

    // A new spell (the alarm had data, then lost it again) is.
    b.alarms.set_since(
        "checkout-ai-error-rate",
        AlarmState::InsufficientData,
        minutes_before(&b, 45),
    );
    guard(&b).handle(&event("schedule.json"), false).await;
    assert_eq!(b.notifier.sent().len(), 2);
}

#[tokio::test]
async fn an_undelivered_blindness_warning_fails_the_check_and_is_tried_again() {
    use rollback_guard::ports::PortError;
    use rollback_guard::transition::AlarmState;
    let b = backends();
    b.alarms.set_since(
        "checkout-ai-error-rate",
        AlarmState::InsufficientData,
        minutes_before(&b, 40),
    );
    b.notifier
        .fail_with(PortError::Other("AuthorizationError".into()));
    let check = guard(&b).handle(&event("schedule.json"), false).await;
    assert!(check.is_error(), "{check:?}");
    assert!(
        check.notes[0].starts_with("checkout-ai: blindness warning not delivered"),
        "{:?}",
        check.notes
    );
    // Not recorded as warned: the next check tries again.
    let again = guard(&b).handle(&event("schedule.json"), false).await;
    assert_eq!(
        again
            .steps
            .iter()
            .filter(|r| r.reason.starts_with("blind:"))
            .count(),
        1
    );
}

#[tokio::test]
async fn a_blindness_check_that_cannot_read_the_targets_state_fails_on_its_target() {
    use rollback_guard::ports::PortError;
    use rollback_guard::transition::AlarmState;
    let b = backends();
    b.alarms.set_since(
        "checkout-ai-error-rate",
        AlarmState::InsufficientData,
        minutes_before(&b, 40),
    );
    b.state.fail(
        "Read",
        (0..4).map(|_| PortError::Transient("InternalServerError".into())),
    );
    let check = guard(&b).handle(&event("schedule.json"), false).await;
    assert!(check.is_error(), "{check:?}");
    let failed: Vec<_> = check
        .steps
        .iter()
        .filter(|r| r.outcome == Outcome::Failed)
        .collect();
    assert_eq!(failed.len(), 1, "{:?}", check.steps);
    assert_eq!(failed[0].target.as_deref(), Some("checkout-ai"));
    assert!(
        failed[0]
            .reason
            .contains("cannot read what the guard remembers of checkout-ai"),
        "{}",
        failed[0].reason
    );
    // Not warned without the state that says whether it already was.
    assert!(b.notifier.sent().is_empty());
}
