//! Fleet triggers over fakes: the target read from the alarm's metrics, acted on only while
//! the function opts in by tag (`rollback-guard:protect` = the alias); silence for the rest;
//! the every-minute check (escalations, blindness) and `guard targets` over the fleet.

use chrono::{DateTime, Duration, Utc};
use rollback_guard::fakes::{FakeBackends, FakeLambda};
use rollback_guard::fleet::{AI_FLAG_TAG, PROTECT_TAG};
use rollback_guard::ports::{AliasManager, PortError};
use rollback_guard::rollback::AliasState;
use rollback_guard::transition::AlarmState;
use rollback_guard::watched::{Watched, WatchedAlias};
use rollback_guard::{Outcome, Policy};
use serde_json::Value;

const START: &str = "2026-11-20T03:13:00Z";

fn start() -> DateTime<Utc> {
    START.parse().expect("time")
}

fn text(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR")))
        .expect("event")
}

fn event(name: &str) -> Value {
    serde_json::from_str(&text(name)).expect("json")
}

/// The catalog's policy: named targets, and the fleet trigger `guarded-*` → rollback-alias.
fn catalog_policy() -> Policy {
    Policy::from_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/policy.toml"
    ))
    .expect("policy")
}

/// The routing of `function`'s alias `live`.
pub fn served(lambda: &FakeLambda, function: &str) -> String {
    lambda
        .alias(function, "live")
        .map(|a| a.to_string())
        .unwrap_or_default()
}

/// A policy of fleet triggers alone, no [[target]].
fn fleet_policy(action: &str) -> Policy {
    Policy::from_toml(&format!(
        r#"
[guard]
notify_topic_arn = "arn:aws:sns:us-east-1:123456789012:rollback-guard"

[[trigger]]
alarm = "guarded-*"
target = "from-alarm"
action = {action}
"#
    ))
    .expect("a fleet-only policy is valid")
}

fn watched(function: &str, alias: &str) -> Watched {
    Watched::Alias(WatchedAlias {
        function: function.into(),
        alias: alias.into(),
        version: None,
    })
}

/// payments (live on 3 of 3) and billing (live on 3 + 4 at 10 %) opted in, shipping (live on
/// 3) not; the catalog's fleet alarms in ALARM.
fn fleet() -> FakeBackends {
    let mut canary = AliasState::on("3");
    canary.weights.insert("4".into(), 0.1);
    let lambda = FakeLambda::default()
        .with_function("payments", 3, "live", AliasState::on("3"))
        .with_function("billing", 4, "live", canary)
        .with_function("shipping", 3, "live", AliasState::on("3"))
        .with_function("ledger", 1, "live", AliasState::on("1"));
    lambda.set_tag("payments", PROTECT_TAG, "live");
    lambda.set_tag("billing", PROTECT_TAG, "live");
    lambda.set_tag("shipping", "team", "logistics");
    let b = FakeBackends::new(lambda, "guarded-payments-error-rate", start());
    b.alarms
        .set("guarded-billing-canary-errors", AlarmState::Alarm);
    b.alarms.set("guarded-shipping-errors", AlarmState::Alarm);
    // What CloudWatch keeps of each alarm's metrics: what the catalog's events say.
    b.alarms
        .set_watched("guarded-payments-error-rate", watched("payments", "live"));
    b.alarms
        .set_watched("guarded-shipping-errors", watched("shipping", "live"));
    b.alarms.set_watched(
        "guarded-billing-canary-errors",
        Watched::Alias(WatchedAlias {
            function: "billing".into(),
            alias: "live".into(),
            version: Some("4".into()),
        }),
    );
    b
}

#[tokio::test]
async fn an_opted_in_functions_alias_is_rolled_back_and_a_watched_canary_aborted() {
    let b = fleet();
    let guard = b.guard(catalog_policy());
    let report = guard
        .handle(&event("eventbridge-fleet-alarm.json"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(report.target.as_deref(), Some("payments"));
    assert_eq!(served(&b.lambda, "payments"), "version 2");
    assert_eq!(report.undo.as_deref(), Some("guard undo --target payments"));
    // ExecutedVersion 4: the alarm watches the canary, which is aborted; 3 keeps serving.
    let report = guard
        .handle(&event("lambda-action-fleet-canary.json"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(served(&b.lambda, "billing"), "version 3");
    assert_eq!(b.notifier.sent().len(), 2);
}

#[tokio::test]
async fn a_function_not_opted_in_or_for_another_alias_is_ignored_in_silence() {
    let b = fleet();
    b.lambda.set_tag("payments", PROTECT_TAG, "beta");
    let guard = b.guard(catalog_policy());
    for (file, why) in [
        (
            "sns-fleet-alarm.json",
            "shipping has no rollback-guard:protect tag",
        ),
        (
            "eventbridge-fleet-alarm.json",
            "payments protects alias `beta` (rollback-guard:protect), not `live`",
        ),
    ] {
        let report = guard.handle(&event(file), false).await;
        assert_eq!(
            report.outcome,
            Outcome::Ignored,
            "{file}: {}",
            report.reason
        );
        assert_eq!(report.reason, format!("not opted in: {why}"));
    }
    assert_eq!(served(&b.lambda, "payments"), "version 3");
    assert_eq!(served(&b.lambda, "shipping"), "version 3");
    assert!(b.lambda.calls().is_empty(), "{:?}", b.lambda.calls());
    assert!(b.notifier.sent().is_empty());
    assert!(b.audit.events().is_empty());
    assert!(!b.lambda.tags_of("shipping").contains_key(PROTECT_TAG));
}

#[tokio::test]
async fn a_watched_version_the_alias_no_longer_serves_needs_nothing() {
    let b = fleet();
    b.lambda.set_alias("billing", "live", AliasState::on("3"));
    let report = b
        .guard(catalog_policy())
        .handle(&event("lambda-action-fleet-canary.json"), false)
        .await;
    assert_eq!(report.outcome, Outcome::AlreadyDone, "{}", report.reason);
    assert!(
        report.reason.contains("no longer serves version 4"),
        "{}",
        report.reason
    );
    assert_eq!(b.lambda.alias_updates(), 0);
}

#[tokio::test]
async fn alarms_naming_no_single_alias_are_rejected_before_any_call() {
    let b = fleet();
    // Pending failures a call would consume: still there after the events.
    b.lambda
        .fail("GetFunction", [PortError::Other("called".into())]);
    let guard = b.guard(catalog_policy());
    for (file, why) in [
        (
            "bad-fleet-two-functions.json",
            "name two functions, payments and shipping",
        ),
        ("bad-fleet-composite.json", "composite alarm"),
    ] {
        let report = guard.handle(&event(file), false).await;
        assert_eq!(report.outcome, Outcome::Rejected, "{file}");
        assert!(report.reason.contains(why), "{file}: {}", report.reason);
    }
    assert_eq!(
        b.lambda.tags("payments").await,
        Err(PortError::Other("called".into()))
    );
    assert!(b.lambda.calls().is_empty());
    assert!(b.notifier.sent().is_empty() && b.audit.events().is_empty());
}

#[tokio::test]
async fn disable_ai_turns_off_the_flag_the_functions_tag_names_and_keeps_the_rest() {
    let b = fleet();
    b.lambda.set_tag("payments", AI_FLAG_TAG, "USE_LLM");
    b.lambda.edit_every_version("payments", |c| {
        c.variables.insert("USE_LLM".into(), "true".into());
    });
    let report = b
        .guard(fleet_policy(r#""disable-ai""#))
        .handle(&event("eventbridge-fleet-alarm.json"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    let version = b.lambda.alias("payments", "live").expect("alias").version;
    let config = b.lambda.config("payments", Some(&version)).expect("config");
    assert_eq!(config.variables["USE_LLM"], "false");
    assert_eq!(config.variables["AI_ENABLED"], "true");
    assert_eq!(config.variables["LOG_LEVEL"], "info");
}

#[tokio::test]
async fn the_schedule_climbs_a_fleet_targets_ladder_and_passes_over_the_rest() {
    let b = fleet();
    for (alarm, function) in [
        ("guarded-payments-error-rate", "payments"),
        ("guarded-shipping-errors", "shipping"),
    ] {
        b.alarms.set_since(alarm, AlarmState::Alarm, start());
        b.alarms.set_watched(alarm, watched(function, "live"));
    }
    let policy = fleet_policy(
        r#"["disable-ai", "rollback-alias"]
escalate_after_minutes = 10"#,
    );
    let first = b
        .guard(policy.clone())
        .handle(&event("eventbridge-fleet-alarm.json"), false)
        .await;
    assert_eq!(first.outcome, Outcome::Executed, "{}", first.reason);
    assert_eq!(first.action, Some("disable-ai"));
    assert_eq!(
        served(&b.lambda, "payments"),
        "version 4",
        "the AI-off version"
    );

    b.clock.advance(Duration::minutes(11));
    let check = b.guard(policy).handle(&event("schedule.json"), false).await;
    assert_eq!(check.outcome, Outcome::Executed, "{}", check.reason);
    let climbed: Vec<_> = check
        .steps
        .iter()
        .filter(|s| s.outcome == Outcome::Executed)
        .collect();
    assert_eq!(climbed.len(), 1, "{:#?}", check.steps);
    assert_eq!(climbed[0].target.as_deref(), Some("payments"));
    assert_eq!(climbed[0].action, Some("rollback-alias"));
    // Past the AI-off version and the release it was made from.
    assert_eq!(served(&b.lambda, "payments"), "version 2");
    assert_eq!(served(&b.lambda, "shipping"), "version 3");
    assert!(b.lambda.tags_of("shipping").keys().all(|k| k == "team"));
}

#[tokio::test]
async fn the_schedule_warns_once_about_an_opted_in_function_blind_for_want_of_data() {
    let b = fleet();
    let long_ago = start() - Duration::hours(2);
    for (alarm, function) in [
        ("guarded-payments-error-rate", "payments"),
        ("guarded-shipping-errors", "shipping"),
    ] {
        b.alarms
            .set_since(alarm, AlarmState::InsufficientData, long_ago);
        b.alarms.set_watched(alarm, watched(function, "live"));
    }
    let guard = b.guard(fleet_policy(r#""rollback-alias""#));
    let check = guard.handle(&event("schedule.json"), false).await;
    let blind: Vec<_> = check
        .steps
        .iter()
        .filter(|s| s.reason.starts_with("blind:"))
        .collect();
    assert_eq!(blind.len(), 1, "{:#?}", check.steps);
    assert_eq!(blind[0].target.as_deref(), Some("payments"));
    assert_eq!(b.notifier.sent().len(), 1);
    let again = guard.handle(&event("schedule.json"), false).await;
    assert!(again.steps.iter().all(|s| !s.reason.starts_with("blind:")));
    assert_eq!(b.notifier.sent().len(), 1);
}

#[tokio::test]
async fn targets_lists_the_opted_in_functions_and_what_leaves_the_guard_blind_or_idle() {
    let b = fleet();
    // One more opted in, which no alarm watches.
    b.lambda.set_tag("ledger", PROTECT_TAG, "live");
    b.alarms
        .set_watched("guarded-payments-error-rate", watched("payments", "live"));
    b.alarms
        .set_watched("guarded-shipping-errors", watched("shipping", "live"));
    b.alarms.set_watched(
        "guarded-billing-canary-errors",
        Watched::Alias(WatchedAlias {
            function: "billing".into(),
            alias: "live".into(),
            version: Some("4".into()),
        }),
    );
    b.alarms.set("guarded-composite", AlarmState::Ok);
    let seen = b.targets(&catalog_policy()).await.expect("targets");
    let fleet: Vec<_> = seen
        .targets
        .iter()
        .filter(|t| t.source == "fleet")
        .map(|t| (t.name.as_str(), t.alarms.clone()))
        .collect();
    assert_eq!(
        fleet,
        vec![
            ("billing", vec!["guarded-billing-canary-errors".to_string()]),
            ("ledger", vec![]),
            ("payments", vec!["guarded-payments-error-rate".to_string()]),
        ]
    );
    let billing = seen
        .targets
        .iter()
        .find(|t| t.name == "billing")
        .expect("billing");
    assert_eq!(
        billing.serving.as_ref().map(ToString::to_string).as_deref(),
        Some("version 3 + version 4 at 10%")
    );
    let warnings: Vec<&str> = seen
        .warnings
        .iter()
        .map(String::as_str)
        .filter(|w| !w.starts_with("target `"))
        .collect();
    assert_eq!(warnings.len(), 3, "{warnings:#?}");
    assert!(warnings[0].starts_with("alarm `guarded-composite` matches a fleet trigger"));
    assert!(warnings[1]
        .contains("alarm `guarded-shipping-errors` names shipping:live, which has not opted in"));
    assert_eq!(
        warnings[2],
        "blind: ledger:live is opted in, but no alarm of a fleet trigger names it"
    );
    // The policy's targets are listed beside the fleet; those whose function is missing here
    // are named in a warning.
    assert!(seen
        .warnings
        .contains(&"target `orders-ai`: there is no function orders-ai".to_string()));
}

#[tokio::test]
async fn a_request_may_name_an_opted_in_function_and_is_refused_for_another() {
    let b = fleet();
    let policy = Policy::from_toml(
        r#"
[guard]
request_sources = ["rollback-guard.cli"]

[[trigger]]
alarm = "guarded-*"
target = "from-alarm"
action = "rollback-alias"
"#,
    )
    .expect("policy");
    let guard = b.guard(policy);
    let request = |function: &str| {
        let mut e = event("request-rollback.json");
        e["detail"]["target"] = function.into();
        e["id"] = format!("request-for-{function}").into();
        e
    };
    let done = guard.handle(&request("payments"), false).await;
    assert_eq!(done.outcome, Outcome::Executed, "{}", done.reason);
    assert_eq!(done.alias.as_deref(), Some("live"));
    assert_eq!(served(&b.lambda, "payments"), "version 2");
    let refused = guard.handle(&request("shipping"), false).await;
    assert_eq!(refused.outcome, Outcome::Rejected);
    assert_eq!(
        refused.reason,
        "not opted in: shipping has no rollback-guard:protect tag"
    );
    assert_eq!(served(&b.lambda, "shipping"), "version 3");
}

#[tokio::test]
async fn an_opted_in_function_with_a_bad_flag_tag_fails_and_people_hear_of_it() {
    let b = fleet();
    b.lambda.set_tag("payments", AI_FLAG_TAG, "use llm");
    let report = b
        .guard(catalog_policy())
        .handle(&event("eventbridge-fleet-alarm.json"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.reason);
    assert!(
        report
            .reason
            .contains("`use llm` is not an environment variable name"),
        "{}",
        report.reason
    );
    assert_eq!(served(&b.lambda, "payments"), "version 3");
    assert_eq!(b.notifier.sent().len(), 1);
}
