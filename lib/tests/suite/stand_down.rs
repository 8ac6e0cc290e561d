//! The guard stands down when people say so, over fakes: an alarm whose actions an actions
//! suppressor holds back (in the event, on every transport that carries it, or at the
//! confirmation), an alarm whose actions are disabled (`guard.honour_disabled_actions`), and
//! `guard pause`. Each is `skipped` with the reason, announced as an audit event, nobody
//! paged, nothing changed; a person's request still acts during a pause.

use chrono::{DateTime, Duration, Utc};
use rollback_guard::evaluate::evaluate;
use rollback_guard::fakes::{home, FakeBackends, FakeLambda};
use rollback_guard::intake::{parse_inbound_bytes, Inbound};
use rollback_guard::operator::{self, pause_duration, OperatorError, PauseRequest};
use rollback_guard::rollback::AliasState;
use rollback_guard::state::Pause;
use rollback_guard::transition::{Suppression, SuppressionKind};
use rollback_guard::{Guard, Outcome, Policy, Report};
use serde_json::Value;

const START: &str = "2026-11-20T03:13:00Z";

fn policy_text() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/policy.toml"
    ))
    .expect("policy")
}

fn policy() -> Policy {
    Policy::from_toml(&policy_text()).expect("policy")
}

/// `orders-ai` on version 3 of 3 and `support-ai` on 3; the error-rate alarm and the
/// composite in ALARM.
fn backends() -> FakeBackends {
    let lambda = FakeLambda::default()
        .with_function("orders-ai", 3, "live", AliasState::on("3"))
        .with_function("support-ai", 3, "live", AliasState::on("3"));
    let b = FakeBackends::new(lambda, "orders-ai-error-rate", START.parse().expect("time"));
    b.alarms.set(
        "orders-ai-composite",
        rollback_guard::transition::AlarmState::Alarm,
    );
    b
}

fn text(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR")))
        .expect("event")
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("json")
}

/// The catalog's alarm event `name` with `actionsSuppressedBy` = `by` and the suppressor
/// `orders-ai-maintenance` set where its transport carries them (`state_path` is the state
/// object, `config_path` the configuration).
fn suppressed(name: &str, state_path: &str, config_path: &str, by: &str) -> Value {
    let mut event = json(&text(name));
    event
        .pointer_mut(state_path)
        .and_then(Value::as_object_mut)
        .expect("state")
        .insert("actionsSuppressedBy".into(), by.into());
    event
        .pointer_mut(config_path)
        .and_then(Value::as_object_mut)
        .expect("configuration")
        .insert("actionsSuppressor".into(), "orders-ai-maintenance".into());
    event
}

const CARRIERS: [(&str, &str, &str); 2] = [
    (
        "eventbridge-alarm.json",
        "/detail/state",
        "/detail/configuration",
    ),
    (
        "lambda-action-alarm.json",
        "/alarmData/state",
        "/alarmData/configuration",
    ),
];

const KINDS: [(&str, SuppressionKind); 3] = [
    ("Alarm", SuppressionKind::Alarm),
    ("WaitPeriod", SuppressionKind::WaitPeriod),
    ("ExtensionPeriod", SuppressionKind::ExtensionPeriod),
];

fn alias(b: &FakeBackends) -> AliasState {
    let mut a = b.lambda.alias("orders-ai", "live").expect("alias");
    a.revision_id = None;
    a
}

/// Skipped, with every one of `needles` in the reason; one `Rollback Skipped` audit event,
/// no notification, no Lambda mutation.
fn assert_stood_down(b: &FakeBackends, report: &Report, needles: &[&str]) {
    assert_eq!(report.outcome, Outcome::Skipped, "{}", report.reason);
    for needle in needles {
        assert!(
            report.reason.contains(needle),
            "{needle}: {}",
            report.reason
        );
    }
    assert!(b.notifier.sent().is_empty(), "{:?}", b.notifier.sent());
    assert_eq!(b.audit.detail_types(), vec!["Rollback Skipped"]);
    assert!(b.lambda.calls().is_empty(), "{:?}", b.lambda.calls());
    assert_eq!(alias(b), AliasState::on("3"));
}

#[test]
fn each_suppression_kind_is_read_on_every_transport_that_carries_it() {
    for (file, state, config) in CARRIERS {
        for (by, kind) in KINDS {
            let event = suppressed(file, state, config, by);
            let Ok(Inbound::Alarm(t)) = parse_inbound_bytes(event.to_string().as_bytes()) else {
                panic!("{file} {by}: not an alarm");
            };
            assert_eq!(
                t.suppressed,
                Some(Suppression {
                    kind,
                    suppressor: Some("orders-ai-maintenance".into())
                }),
                "{file} {by}"
            );
        }
        let none = suppressed(file, state, config, "None");
        let Ok(Inbound::Alarm(t)) = parse_inbound_bytes(none.to_string().as_bytes()) else {
            panic!("{file}: not an alarm");
        };
        assert_eq!(t.suppressed, None, "{file}: `None` is not a suppression");
        let odd = suppressed(file, state, config, "Maintenance");
        let err = parse_inbound_bytes(odd.to_string().as_bytes())
            .expect_err("an unknown suppression is refused");
        assert!(
            err.to_string().contains("actionsSuppressedBy")
                && err.to_string().contains("`Maintenance`"),
            "{file}: {err}"
        );
    }
}

#[test]
fn the_fixture_shape_of_a_suppressed_composite_evaluates_as_skipped() {
    let policy = policy();
    let verdict = evaluate(
        &policy,
        Some(&home()),
        text("eventbridge-composite-suppressed.json").as_bytes(),
        false,
    );
    assert_eq!(verdict.outcome, "skipped", "{}", verdict.reason);
    assert_eq!(verdict.target.as_deref(), Some("orders-ai"));
    assert!(
        verdict.reason.contains("orders-ai-maintenance") && verdict.reason.contains("WaitPeriod"),
        "{}",
        verdict.reason
    );
}

#[tokio::test]
async fn a_suppressed_alarm_in_the_event_is_skipped_quietly_on_every_transport() {
    for (file, state, config) in CARRIERS {
        for (by, _) in KINDS {
            let b = backends();
            let report = b
                .guard(policy())
                .handle(&suppressed(file, state, config, by), false)
                .await;
            assert_stood_down(&b, &report, &["orders-ai-maintenance", by]);
        }
    }
}

#[tokio::test]
async fn a_suppression_seen_only_at_the_confirmation_is_skipped_too() {
    // SNS notifications carry no suppression: DescribeAlarms tells.
    let b = backends();
    b.alarms.set_suppressed(
        "orders-ai-error-rate",
        Some(Suppression {
            kind: SuppressionKind::Alarm,
            suppressor: Some("orders-ai-maintenance".into()),
        }),
    );
    let report = b
        .guard(policy())
        .handle(&json(&text("sns-alarm.json")), false)
        .await;
    assert_stood_down(&b, &report, &["orders-ai-maintenance", "(Alarm:"]);
}

#[tokio::test]
async fn disabled_alarm_actions_are_honoured_and_enabling_them_again_lets_the_next_transition_act()
{
    let b = backends();
    b.alarms.set_actions_enabled("orders-ai-error-rate", false);
    let report = b
        .guard(policy())
        .handle(&json(&text("eventbridge-alarm.json")), false)
        .await;
    assert_stood_down(
        &b,
        &report,
        &["alarm actions are disabled on orders-ai-error-rate"],
    );
    b.alarms.set_actions_enabled("orders-ai-error-rate", true);
    let later = b
        .guard(policy())
        .handle(&json(&text("sns-alarm.json")), false)
        .await;
    assert_eq!(later.outcome, Outcome::Executed, "{}", later.reason);
    assert_eq!(alias(&b), AliasState::on("2"));
}

#[tokio::test]
async fn a_team_that_disables_actions_for_other_reasons_can_say_so() {
    let b = backends();
    b.alarms.set_actions_enabled("orders-ai-error-rate", false);
    let toml = policy_text().replace(
        "cooldown_minutes = 30",
        "cooldown_minutes = 30\nhonour_disabled_actions = false",
    );
    let policy = Policy::from_toml(&toml).expect("policy");
    assert!(!policy.guard.honour_disabled_actions);
    let report = b
        .guard(policy)
        .handle(&json(&text("eventbridge-alarm.json")), false)
        .await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(alias(&b), AliasState::on("2"));
}

/// `guard pause` on `target` for `hours`, by oncall, for `reason`.
async fn pause_on(b: &FakeBackends, target: &str, hours: i64, reason: &str) -> Pause {
    let request = PauseRequest {
        duration: Duration::hours(hours),
        by: "oncall",
        reason,
    };
    operator::pause(&policy(), &b.operating(), target, &request)
        .await
        .expect("paused")
}

async fn pause(b: &FakeBackends, hours: i64) -> Pause {
    pause_on(b, "orders-ai", hours, "database migration").await
}

fn guard(b: &FakeBackends) -> Guard {
    b.guard(policy())
}

#[tokio::test]
async fn a_paused_target_skips_alarms_with_the_pauses_reason_and_end_then_acts_once_it_ends() {
    let b = backends();
    let paused = pause(&b, 2).await;
    assert_eq!(
        paused.until,
        START.parse::<DateTime<Utc>>().expect("t") + Duration::hours(2)
    );
    let mutations = b.lambda.calls().len();
    let writes = b.state.writes().len();
    let report = guard(&b)
        .handle(&json(&text("eventbridge-alarm.json")), false)
        .await;
    assert_eq!(report.outcome, Outcome::Skipped, "{}", report.reason);
    for needle in ["oncall", "database migration", "2026-11-20T05:13:00.000Z"] {
        assert!(
            report.reason.contains(needle),
            "{needle}: {}",
            report.reason
        );
    }
    assert!(b.notifier.sent().is_empty());
    assert_eq!(b.lambda.calls().len(), mutations, "nothing changed");
    assert_eq!(
        b.state.writes().len(),
        writes,
        "nothing but the pause written"
    );
    assert_eq!(alias(&b), AliasState::on("3"));
    // The pause ends by itself: a later transition acts.
    b.clock.advance(Duration::hours(2));
    let mut later = json(&text("eventbridge-alarm.json"));
    later["detail"]["state"]["timestamp"] = "2026-11-20T05:20:00.000+0000".into();
    let report = guard(&b).handle(&later, false).await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(alias(&b), AliasState::on("2"));
}

#[tokio::test]
async fn resume_ends_a_pause_at_once_and_the_next_transition_acts() {
    let b = backends();
    pause(&b, 6).await;
    let was = operator::resume(&policy(), &b.operating(), "orders-ai")
        .await
        .expect("resumed");
    assert_eq!(was.map(|p| p.reason), Some("database migration".into()));
    assert_eq!(b.state_of("orders-ai", "live").pause, None);
    let report = guard(&b)
        .handle(&json(&text("eventbridge-alarm.json")), false)
        .await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
}

#[tokio::test]
async fn a_persons_request_still_acts_during_a_pause_and_an_insight_does_not() {
    let b = backends();
    pause_on(&b, "support-ai", 1, "load test").await;
    let insight = guard(&b)
        .handle(&json(&text("insight-critical.json")), false)
        .await;
    assert_eq!(insight.outcome, Outcome::Skipped, "{}", insight.reason);
    assert!(insight.reason.contains("load test"), "{}", insight.reason);
    let mut request = json(&text("request-rollback.json"));
    request["detail"]["target"] = "orders-ai".into();
    pause_on(&b, "orders-ai", 1, "load test").await;
    let report = guard(&b).handle(&request, false).await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(alias(&b), AliasState::on("2"));
}

#[tokio::test]
async fn a_pending_escalation_is_cancelled_while_the_target_is_paused() {
    let b = backends();
    b.alarms.set(
        "support-ai-fallback-rate",
        rollback_guard::transition::AlarmState::Alarm,
    );
    let first = guard(&b)
        .handle(&json(&text("eventbridge-fallback-rate.json")), false)
        .await;
    assert_eq!(first.outcome, Outcome::Executed, "{}", first.reason);
    assert!(first.escalation.is_some());
    pause_on(&b, "support-ai", 1, "fixing it by hand").await;
    b.clock.advance(Duration::minutes(11));
    let sweep = guard(&b).handle(&json(&text("schedule.json")), false).await;
    let step = sweep
        .steps
        .iter()
        .find(|s| s.target.as_deref() == Some("support-ai"))
        .expect("the escalation's step");
    assert_eq!(step.outcome, Outcome::Skipped, "{}", step.reason);
    assert!(
        step.reason.contains("fixing it by hand") && step.reason.contains("cancelled"),
        "{}",
        step.reason
    );
    // Cancelled, not postponed: after the pause nothing escalates.
    b.clock.advance(Duration::hours(2));
    let after = guard(&b).handle(&json(&text("schedule.json")), false).await;
    assert!(after.steps.is_empty(), "{:?}", after.steps);
}

#[tokio::test]
async fn a_pause_is_refused_without_a_reason_past_seven_days_or_on_an_unknown_target() {
    let b = backends();
    let ask = |hours: i64, reason: &'static str| PauseRequest {
        duration: Duration::hours(hours),
        by: "oncall",
        reason,
    };
    for (target, request, needle) in [
        ("orders-ai", ask(2, " "), "--reason"),
        ("orders-ai", ask(7 * 24 + 1, "long"), "at most 7 days"),
        ("orders-ai", ask(0, "none"), "more than nothing"),
        ("payments", ask(2, "x"), "unknown target `payments`"),
    ] {
        let err = operator::pause(&policy(), &b.operating(), target, &request)
            .await
            .expect_err("refused");
        assert!(
            matches!(&err, OperatorError::Refused(why) if why.contains(needle)),
            "{needle}: {err}"
        );
    }
    assert!(b.lambda.calls().is_empty(), "{:?}", b.lambda.calls());
    assert!(b.state.writes().is_empty());
}

#[test]
fn pause_durations_are_minutes_hours_or_days_up_to_seven_days() {
    assert_eq!(pause_duration("30m").ok(), Some(Duration::minutes(30)));
    assert_eq!(pause_duration("2h").ok(), Some(Duration::hours(2)));
    assert_eq!(pause_duration("7d").ok(), Some(Duration::days(7)));
    for bad in [
        "",
        "2",
        "h",
        "0h",
        "-1h",
        "8d",
        "169h",
        "2w",
        "1.5h",
        "99999999999999999d",
    ] {
        assert!(pause_duration(bad).is_err(), "{bad}");
    }
}

/// One scheduled check a minute for `minutes` minutes; the blindness warnings they gave.
async fn sweep_for(b: &FakeBackends, minutes: i64) -> Vec<Report> {
    let mut warnings = Vec::new();
    for _ in 0..minutes {
        b.clock.advance(Duration::minutes(1));
        let check = guard(b).handle(&json(&text("schedule.json")), false).await;
        assert!(!check.is_error(), "{check:?}");
        warnings.extend(
            check
                .steps
                .into_iter()
                .filter(|r| r.reason.starts_with("blind:")),
        );
    }
    warnings
}

#[tokio::test]
async fn a_watched_alarm_with_its_actions_disabled_too_long_is_one_blindness_warning() {
    let b = backends();
    b.alarms.set_actions_enabled("orders-ai-error-rate", false);
    // Seen disabled for 29 minutes: not yet (blind_after_minutes is 30 by default).
    assert!(sweep_for(&b, 29).await.is_empty());
    let warned = sweep_for(&b, 5).await;
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].reason.contains("orders-ai-error-rate")
            && warned[0].reason.contains("actions disabled"),
        "{}",
        warned[0].reason
    );
    let sent = b.notifier.sent();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].1.subject.contains("has its actions disabled")
            && sent[0]
                .1
                .message
                .contains("enable-alarm-actions --alarm-names orders-ai-error-rate"),
        "{:?}",
        sent[0].1
    );
    assert_eq!(b.audit.detail_types(), vec!["Guard Blind"]);
    assert_eq!(alias(&b), AliasState::on("3"));
    // Enabled, then disabled again: a new spell, counted from when the guard saw it again.
    b.alarms.set_actions_enabled("orders-ai-error-rate", true);
    assert!(sweep_for(&b, 10).await.is_empty());
    b.alarms.set_actions_enabled("orders-ai-error-rate", false);
    assert!(sweep_for(&b, 29).await.is_empty());
    assert_eq!(sweep_for(&b, 3).await.len(), 1);
}

#[tokio::test]
async fn disabled_actions_do_not_blind_a_guard_that_does_not_honour_them() {
    let b = backends();
    b.alarms.set_actions_enabled("orders-ai-error-rate", false);
    let toml = policy_text().replace(
        "cooldown_minutes = 30",
        "cooldown_minutes = 30\nhonour_disabled_actions = false",
    );
    let guard = b.guard(Policy::from_toml(&toml).expect("policy"));
    for _ in 0..40 {
        b.clock.advance(Duration::minutes(1));
        let check = guard.handle(&json(&text("schedule.json")), false).await;
        assert!(check.steps.iter().all(|r| !r.reason.starts_with("blind:")));
    }
    assert!(b.notifier.sent().is_empty());
}

#[tokio::test]
async fn a_target_blind_for_want_of_data_alone_gets_no_record_of_disabled_actions() {
    let b = backends();
    b.alarms.set_since(
        "orders-ai-error-rate",
        rollback_guard::transition::AlarmState::InsufficientData,
        START.parse::<DateTime<Utc>>().expect("t") - Duration::minutes(40),
    );
    assert_eq!(sweep_for(&b, 2).await.len(), 1);
    let state = b.state_of("orders-ai", "live");
    assert_eq!(state.blind.len(), 1, "{state:?}");
    assert!(state.muted.is_empty(), "{state:?}");
    assert!(b.lambda.tags_of("orders-ai").is_empty());
}
