//! Judgement before an automatic alias rollback, over fakes with a clock that stands still
//! (issue 27): the blame window on every alarm transport, named and fleet targets, insights and
//! each rung of a ladder; the evidence of when a release went live (publish time, CloudTrail,
//! CodeDeploy); the alarm that was in ALARM before the release; and what is never judged.
//! What else holds a rollback back is in `judgement_holds.rs`.

use crate::support::{event, text};
use chrono::{DateTime, Duration, Utc};
use rollback_guard::fakes::{FakeBackends, FakeLambda};
use rollback_guard::fleet::PROTECT_TAG;
use rollback_guard::policy::DeploymentGroup;
use rollback_guard::ports::Shift;
use rollback_guard::rollback::AliasState;
use rollback_guard::transition::AlarmState;
use rollback_guard::watched::{Watched, WatchedAlias};
use rollback_guard::{Outcome, Policy, Report};

pub(crate) const START: &str = "2026-11-20T03:13:00Z";
pub(crate) const ALARM: &str = "orders-ai-error-rate";

pub(crate) fn start() -> DateTime<Utc> {
    START.parse().expect("time")
}

/// `orders-ai` guarded by its alarms, `payments` by the fleet trigger, `support-ai` by the
/// ladder (disable-ai, then rollback-alias) and by insights; `extra` goes into `[guard]`.
pub(crate) fn policy(extra: &str) -> Policy {
    Policy::from_toml(&format!(
        r#"
[guard]
notify_topic_arn = "arn:aws:sns:us-east-1:123456789012:rollback-guard"
{extra}

[[target]]
name = "orders-ai"
function = "orders-ai"
alias = "live"

[[trigger]]
alarm = "orders-ai-*"
target = "orders-ai"
action = "rollback-alias"

[[target]]
name = "support-ai"
function = "support-ai"
alias = "live"
ai_flag = "AI_ENABLED"

[[trigger]]
alarm = "support-ai-fallback-rate"
target = "support-ai"
action = ["disable-ai", "rollback-alias"]
escalate_after_minutes = 10

[[trigger]]
insight_source = "rollback-guard.insight"
min_risk = 80
target = "support-ai"
action = "rollback-alias"

[[trigger]]
alarm = "guarded-*"
target = "from-alarm"
action = "rollback-alias"
"#
    ))
    .expect("policy")
}

/// `orders-ai`, `support-ai` and the fleet's `payments`, each live on version 3 of 3, every
/// version published an hour before the catalog's alarms (the fakes' default); the alarms in
/// ALARM since the catalog's transitions.
pub(crate) fn backends() -> FakeBackends {
    let lambda = FakeLambda::default()
        .with_function("orders-ai", 3, "live", AliasState::on("3"))
        .with_function("support-ai", 3, "live", AliasState::on("3"))
        .with_function("payments", 3, "live", AliasState::on("3"));
    lambda.set_tag("payments", PROTECT_TAG, "live");
    let b = FakeBackends::new(lambda, ALARM, start());
    b.alarms.set("support-ai-fallback-rate", AlarmState::Alarm);
    b.alarms
        .set("guarded-payments-error-rate", AlarmState::Alarm);
    b.alarms.set_watched(
        "guarded-payments-error-rate",
        Watched::Alias(WatchedAlias {
            function: "payments".into(),
            alias: "live".into(),
            version: None,
        }),
    );
    b
}

/// A new guard instance on `b`, its policy's `[guard]` with `extra`, handles catalog event
/// `name`.
pub(crate) async fn act(b: &FakeBackends, extra: &str, name: &str) -> Report {
    b.guard(policy(extra)).handle(&event(name), false).await
}

pub(crate) fn served(b: &FakeBackends, function: &str) -> String {
    b.lambda
        .alias(function, "live")
        .map(|a| a.to_string())
        .unwrap_or_default()
}

/// Version 3 of `function` published `ago` before the clock's now.
pub(crate) fn published_ago(b: &FakeBackends, function: &str, ago: Duration) {
    b.lambda.set_published_at(function, "3", start() - ago);
}

/// Held back by the judgement: skipped, nothing moved, people paged with the reason and the
/// command that would roll back.
pub(crate) fn assert_held(b: &FakeBackends, report: &Report, function: &str, needle: &str) {
    assert_eq!(report.outcome, Outcome::Skipped, "{}", report.reason);
    assert!(
        report.reason.contains(needle),
        "{needle}: {}",
        report.reason
    );
    let command = format!("guard request --target {function} --action rollback-alias");
    assert!(report.reason.contains(&command), "{}", report.reason);
    assert_eq!(served(b, function), "version 3");
    assert_eq!(b.lambda.alias_updates(), 0);
    let sent = b.notifier.sent();
    assert_eq!(sent.len(), 1, "paged once: {sent:?}");
    assert!(
        sent[0].1.subject.starts_with(&format!(
            "Rollback NOT made on {function}: a person decides"
        )),
        "{}",
        sent[0].1.subject
    );
    assert!(sent[0].1.message.contains(&command));
}

/// Every alarm transport, on a named target and on a fleet one.
const ALARMS: [(&str, &str); 5] = [
    ("eventbridge-alarm.json", "orders-ai"),
    ("sns-alarm.json", "orders-ai"),
    ("lambda-action-alarm.json", "orders-ai"),
    ("eventbridge-fleet-alarm.json", "payments"),
    ("sns-fleet-alarm.json", "payments"),
];

fn fleet_over_sns(name: &str) -> String {
    // The catalog's SNS fleet alarm is shipping's, which did not opt in: the same alarm of
    // payments', over SNS.
    if name == "sns-fleet-alarm.json" {
        return text(name)
            .replace("guarded-shipping-errors", "guarded-payments-error-rate")
            .replace("shipping", "payments");
    }
    text(name)
}

#[tokio::test]
async fn a_release_older_than_the_window_is_not_rolled_back_on_any_transport_and_people_are_paged()
{
    for (file, function) in ALARMS {
        let b = backends();
        published_ago(&b, function, Duration::days(3));
        let report = b
            .guard(policy(""))
            .handle_bytes(fleet_over_sns(file).as_bytes(), false)
            .await;
        assert_held(
            &b,
            &report,
            function,
            "version 3 went live at 2026-11-17T03:13:00.000Z (its publish time, LastModified), more than 1440 minutes ago",
        );
        assert_eq!(b.audit.detail_types(), vec!["Rollback Skipped"], "{file}");
        // Nothing was claimed: a person's request acts at once.
        let state = b.state_of(function, "live");
        assert!(state.claim.is_none() && state.last.is_none(), "{file}");
    }
}

#[tokio::test]
async fn a_fresh_release_is_rolled_back_on_every_transport_saying_which_evidence_decided() {
    for (file, function) in ALARMS {
        let b = backends();
        published_ago(&b, function, Duration::hours(2));
        let report = b
            .guard(policy(""))
            .handle_bytes(fleet_over_sns(file).as_bytes(), false)
            .await;
        assert_eq!(
            report.outcome,
            Outcome::Executed,
            "{file}: {}",
            report.reason
        );
        assert!(
            report.reason.contains(
                "version 3 went live at 2026-11-20T01:13:00.000Z (its publish time, LastModified), within the 1440-minute blame window"
            ),
            "{file}: {}",
            report.reason
        );
        assert_eq!(served(&b, function), "version 2", "{file}");
    }
}

#[tokio::test]
async fn the_window_is_the_triggers_when_it_has_one_else_the_guards() {
    let b = backends();
    published_ago(&b, "orders-ai", Duration::hours(3));
    let narrow = policy("blame_window_minutes = 120");
    let report = b
        .guard(narrow)
        .handle(&event("eventbridge-alarm.json"), false)
        .await;
    assert_held(&b, &report, "orders-ai", "more than 120 minutes ago");

    let b = backends();
    published_ago(&b, "orders-ai", Duration::hours(3));
    let mut per_trigger = policy("blame_window_minutes = 60");
    per_trigger.triggers[0].blame_window_minutes = Some(240);
    let report = b
        .guard(per_trigger)
        .handle(&event("eventbridge-alarm.json"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert!(report.reason.contains("within the 240-minute blame window"));
}

#[tokio::test]
async fn an_alarm_already_in_alarm_when_the_release_went_out_does_not_blame_it() {
    let b = backends();
    // Released at 03:00; the alarm has been in ALARM since 02:30 (CloudWatch's time, whatever
    // the event says).
    b.lambda
        .set_published_at("orders-ai", "3", "2026-11-20T03:00:00Z".parse().expect("t"));
    b.alarms.set_since(
        ALARM,
        AlarmState::Alarm,
        "2026-11-20T02:30:00Z".parse().expect("t"),
    );
    let report = act(&b, "", "eventbridge-alarm.json").await;
    assert_held(
        &b,
        &report,
        "orders-ai",
        "the alarm went into ALARM at 2026-11-20T02:30:00.000Z, before version 3 went live at 2026-11-20T03:00:00.000Z",
    );
}

#[tokio::test]
async fn an_insight_is_judged_as_an_alarm_is() {
    let b = backends();
    published_ago(&b, "support-ai", Duration::days(2));
    let report = act(&b, "", "insight-critical.json").await;
    assert_held(&b, &report, "support-ai", "more than 1440 minutes ago");

    let b = backends();
    published_ago(&b, "support-ai", Duration::minutes(30));
    let report = act(&b, "", "insight-critical.json").await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(served(&b, "support-ai"), "version 2");
}

#[tokio::test]
async fn a_ladders_rollback_rung_is_judged_and_disable_ai_is_not() {
    let b = backends();
    published_ago(&b, "support-ai", Duration::days(2));
    let guard = || b.guard(policy(""));
    // The first rung, switching the AI off, is a switch, not older code: not judged.
    let first = guard()
        .handle(&event("eventbridge-fallback-rate.json"), false)
        .await;
    assert_eq!(first.outcome, Outcome::Executed, "{}", first.reason);
    assert_eq!(served(&b, "support-ai"), "version 4");
    // Ten minutes on, the rollback rung: version 4 is release 3 with the AI off, published
    // two days ago: held, and the ladder ends there.
    b.clock.advance(Duration::minutes(10));
    let due = guard().handle(&event("schedule.json"), false).await;
    let step = due.steps.first().expect("the rung ran");
    assert_eq!(step.outcome, Outcome::Skipped, "{}", step.reason);
    assert!(
        step.reason.contains("version 3 went live"),
        "{}",
        step.reason
    );
    assert_eq!(served(&b, "support-ai"), "version 4");
    b.clock.advance(Duration::minutes(30));
    let later = guard().handle(&event("schedule.json"), false).await;
    assert!(later.steps.is_empty(), "{:?}", later.steps);
}

#[tokio::test]
async fn cloudtrail_says_when_a_version_went_live_and_the_guards_own_moves_are_not_releases() {
    let b = backends();
    // Published two weeks ago, pointed at an hour ago (CloudTrail's record of the call).
    published_ago(&b, "orders-ai", Duration::days(14));
    let call = text("cloudtrail-update-alias.json")
        .replace("search-ai", "orders-ai")
        .replace("2026-11-06T09:00:00Z", "2026-11-20T02:13:00Z");
    let recorded = b
        .guard(policy(""))
        .handle_bytes(call.as_bytes(), false)
        .await;
    assert_eq!(recorded.outcome, Outcome::NoAction, "{}", recorded.reason);
    assert!(recorded
        .reason
        .contains("version 3 went live on orders-ai:live at 2026-11-20T02:13:00.000Z"));
    let report = act(&b, "", "eventbridge-alarm.json").await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert!(
        report.reason.contains("(CloudTrail: UpdateAlias by arn:aws:sts::123456789012:assumed-role/deployer/pipeline), within the 1440-minute blame window"),
        "{}",
        report.reason
    );
    // CloudTrail's record of the guard's own rollback is not a release of version 2.
    let own = call
        .replace("\"functionVersion\": \"3\"", "\"functionVersion\": \"2\"")
        .replace("2026-11-20T02:13:00Z", "2026-11-20T03:13:00Z");
    let kept = b
        .guard(policy(""))
        .handle_bytes(own.as_bytes(), false)
        .await;
    assert_eq!(kept.outcome, Outcome::NoAction);
    assert!(
        kept.reason.contains("the guard's own move: not a release"),
        "{}",
        kept.reason
    );
    // An older record than what the guard knows changes nothing.
    let old = call.replace("2026-11-20T02:13:00Z", "2026-11-19T02:13:00Z");
    let older = b
        .guard(policy(""))
        .handle_bytes(old.as_bytes(), false)
        .await;
    assert!(
        older.reason.contains("this record is older"),
        "{}",
        older.reason
    );
    // Another account's record is refused (the guard's policy trusts its own account only).
    let elsewhere = call.replace(
        "\"account\": \"123456789012\"",
        "\"account\": \"210987654321\"",
    );
    let refused = b
        .guard(policy("accounts = [\"123456789012\"]"))
        .handle_bytes(elsewhere.as_bytes(), false)
        .await;
    assert_eq!(refused.outcome, Outcome::Rejected, "{}", refused.reason);
}

#[tokio::test]
async fn a_codedeploy_deployment_says_when_a_version_published_long_ago_went_live() {
    let b = backends();
    published_ago(&b, "orders-ai", Duration::days(10));
    let group = DeploymentGroup {
        application: "orders".into(),
        group: "orders-live".into(),
    };
    b.deployments.succeeded_at(
        group.clone(),
        Shift {
            deployment: "d-RELEASE003".into(),
            function: "orders-ai".into(),
            alias: "live".into(),
            current_version: "2".into(),
            target_version: "3".into(),
        },
        "2026-11-20T01:00:00Z".parse().expect("t"),
    );
    b.lambda.set_tag(
        "orders-ai",
        rollback_guard::codedeploy::APPLICATION_TAG,
        "orders",
    );
    b.lambda.set_tag(
        "orders-ai",
        rollback_guard::codedeploy::GROUP_TAG,
        "orders-live",
    );
    let report = act(&b, "", "eventbridge-alarm.json").await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert!(
        report.reason.contains(
            "version 3 went live at 2026-11-20T01:00:00.000Z (CodeDeploy deployment d-RELEASE003)"
        ),
        "{}",
        report.reason
    );
}

#[tokio::test]
async fn a_canarys_abort_is_never_judged() {
    let b = backends();
    let mut canary = AliasState::on("2");
    canary.weights.insert("3".into(), 0.1);
    b.lambda.set_alias("orders-ai", "live", canary);
    // Both versions were published a month ago: judged, neither would be blamed.
    for version in ["2", "3"] {
        b.lambda
            .set_published_at("orders-ai", version, start() - Duration::days(30));
    }
    let report = act(&b, "", "eventbridge-alarm.json").await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(served(&b, "orders-ai"), "version 2");
}
