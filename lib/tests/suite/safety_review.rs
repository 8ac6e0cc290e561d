//! Issue 26, the safety review: each finding pinned by a test that fails without its fix (the
//! first finding, one transition moving an alias twice, is in `claims`).

use crate::support::{event, policy};
use aws_sdk_lambda::Client;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use rollback_guard::adapters::{LambdaAliasManager, LambdaFunctionSettings};
use rollback_guard::fakes::{fast_retry, FakeBackends, FakeLambda};
use rollback_guard::fleet::PROTECT_TAG;
use rollback_guard::rollback::AliasState;
use rollback_guard::state::StateKey;
use rollback_guard::transition::AlarmState;
use rollback_guard::watched::{Watched, WatchedAlias};
use rollback_guard::{Guard, Outcome, Policy};
use serde_json::Value;
use std::sync::Arc;

const START: &str = "2026-11-20T03:13:00Z";

fn backends(lambda: FakeLambda, alarm: &str) -> FakeBackends {
    FakeBackends::new(lambda, alarm, START.parse().expect("time"))
}

fn alias_of(b: &FakeBackends, function: &str, alias: &str) -> AliasState {
    let mut a = b.lambda.alias(function, alias).expect("alias");
    a.revision_id = None;
    a
}

fn watching(function: &str, version: Option<&str>) -> Watched {
    Watched::Alias(WatchedAlias {
        function: function.into(),
        alias: "live".into(),
        version: version.map(str::to_string),
    })
}

/// The catalog's fleet canary event (billing:live, ExecutedVersion 4), renamed.
fn canary_event(function: &str, alarm: &str, version: &str) -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/lambda-action-fleet-canary.json"
    ))
    .expect("event")
    .replace("guarded-billing-canary-errors", alarm)
    .replace("billing", function)
    .replace(
        "\"ExecutedVersion\": \"4\"",
        &format!("\"ExecutedVersion\": \"{version}\""),
    );
    serde_json::from_str(&text).expect("json")
}

/// Finding 2: the template grants reading tags only on opted-in functions, so on any other
/// AWS answers AccessDenied. That is "not opted in", quietly: no page, no failed delivery.
#[tokio::test]
async fn an_untagged_fleet_function_denied_by_iam_is_not_opted_in_and_pages_nobody() {
    const DENIED: &str = r#"{"__type":"AccessDeniedException","Message":"User is not authorized to perform: lambda:GetFunction on resource: payments because no identity-based policy allows the lambda:GetFunction action"}"#;
    let denied = mock!(Client::get_function)
        .sequence()
        .http_status(403, Some(DENIED.into()))
        .times(100)
        .build();
    let client = mock_client!(aws_sdk_lambda, RuleMode::MatchAny, &[&denied], |c| c
        .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled()));
    let b = backends(FakeLambda::default(), "guarded-payments-error-rate");
    b.alarms
        .set_watched("guarded-payments-error-rate", watching("payments", None));
    let mut ports = b.ports();
    ports.aliases = Arc::new(LambdaAliasManager::new(client.clone()));
    ports.functions = Arc::new(LambdaFunctionSettings::new(client));
    let guard = Guard::new(policy(), ports, rollback_guard::fakes::home()).with_retry(fast_retry());

    let report = guard
        .handle(&event("eventbridge-fleet-alarm.json"), false)
        .await;

    assert_eq!(report.outcome, Outcome::Ignored, "{}", report.reason);
    assert!(
        report.reason.starts_with("not opted in"),
        "{}",
        report.reason
    );
    assert!(!report.is_error());
    assert!(b.notifier.sent().is_empty());
    assert!(b.audit.events().is_empty());
    // The every-minute check passes such a function over too.
    b.alarms.set_since(
        "guarded-payments-error-rate",
        AlarmState::InsufficientData,
        "2026-11-20T01:00:00Z".parse().expect("t"),
    );
    let check = guard.handle(&event("schedule.json"), false).await;
    assert!(!check.is_error(), "{check:?}");
}

/// Finding 3: a named trigger reads `ExecutedVersion` as a fleet trigger does. An alarm on
/// version 2 (the primary) with 3 at 10 % moves the alias to 1, canary and all: aborting the
/// healthy canary would leave all traffic on the failing version.
#[tokio::test]
async fn a_named_trigger_on_the_primary_version_moves_the_alias_rather_than_abort_the_canary() {
    let mut canary = AliasState::on("2");
    canary.weights.insert("3".into(), 0.1);
    let b = backends(
        FakeLambda::default().with_function("checkout-ai", 3, "live", canary),
        "checkout-ai-v2-errors",
    );
    b.alarms
        .set_watched("checkout-ai-v2-errors", watching("checkout-ai", Some("2")));
    let report = b
        .guard(policy())
        .handle(
            &canary_event("checkout-ai", "checkout-ai-v2-errors", "2"),
            false,
        )
        .await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(alias_of(&b, "checkout-ai", "live"), AliasState::on("1"));
}

/// Finding 8: the confirmation compares what the event says the alarm watches with what
/// CloudWatch's own alarm watches. A forged event naming a real alarm in ALARM with another
/// function's metrics moves nothing.
#[tokio::test]
async fn an_event_whose_metrics_are_not_its_alarms_is_rejected_and_moves_nothing() {
    let lambda = FakeLambda::default()
        .with_function("payments", 3, "live", AliasState::on("3"))
        .with_function("victim", 3, "live", AliasState::on("3"));
    lambda.set_tag("payments", PROTECT_TAG, "live");
    lambda.set_tag("victim", PROTECT_TAG, "live");
    let b = backends(lambda, "guarded-payments-error-rate");
    b.alarms
        .set_watched("guarded-payments-error-rate", watching("payments", None));
    let forged: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../events/eventbridge-fleet-alarm.json"
        ))
        .expect("event")
        .replace("\"payments\"", "\"victim\"")
        .replace("payments:live", "victim:live"),
    )
    .expect("json");
    let report = b.guard(policy()).handle(&forged, false).await;
    assert_eq!(report.outcome, Outcome::Rejected, "{}", report.reason);
    assert!(
        report.reason.contains("not the alarm's own"),
        "{}",
        report.reason
    );
    assert_eq!(b.lambda.alias_updates(), 0);
    // The alarm's own event acts.
    let report = b
        .guard(policy())
        .handle(&event("eventbridge-fleet-alarm.json"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(alias_of(&b, "victim", "live"), AliasState::on("3"));
}

/// Finding 4: nothing the guard remembers is read from the function's tags, so a team that
/// may tag its function cannot steer the guard with the guard's old keys: a forged re-enable
/// moving another alias, a pause for ever, an escalation out of turn, `$LATEST` to undo to.
#[tokio::test]
async fn forged_record_tags_steer_nothing() {
    let lambda = FakeLambda::default().with_function("orders-ai", 3, "live", AliasState::on("3"));
    for (key, value) in [
        (
            "rollback-guard:reenable",
            "beta 3 1 100+1 0 60 2020-01-01T00:00:00.000Z x",
        ),
        ("rollback-guard:paused-until", "2099-01-01T00:00:00.000Z"),
        ("rollback-guard:paused-at", "2026-11-20T03:00:00.000Z"),
        (
            "rollback-guard:escalation",
            "1 2020-01-01T00:00:00.000Z orders-ai-error-rate",
        ),
        ("rollback-guard:last-event", "0000000000000000"),
        ("rollback-guard:last-action", "rollback-alias"),
        ("rollback-guard:last-at", "2026-11-20T03:12:00.000Z"),
        ("rollback-guard:last-alias", "live"),
        ("rollback-guard:last-before", "LATEST"),
        ("rollback-guard:last-after", "3"),
        ("rollback-guard:stable:live", "1"),
    ] {
        lambda.set_tag("orders-ai", key, value);
    }
    let b = backends(lambda, "orders-ai-error-rate");
    // The schedule finds no re-enable and no escalation; the alarm is not paused, not in a
    // cooldown, and rolls back to the version before (not the forged stable 1).
    let check = b
        .guard(policy())
        .handle(&event("schedule.json"), false)
        .await;
    assert!(check.steps.is_empty(), "{:?}", check.steps);
    let report = b
        .guard(policy())
        .handle(&event("eventbridge-alarm.json"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(alias_of(&b, "orders-ai", "live"), AliasState::on("2"));
    // Undo restores what the guard did (3), never the forged `$LATEST`.
    let undone = rollback_guard::operator::undo(&policy(), &b.operating(), "orders-ai")
        .await
        .expect("undo");
    assert_eq!(undone.alias.map(|a| a.after), Some(AliasState::on("3")));
}

/// Finding 4, the state table's side: an item the guard would not have written is refused
/// whole (the guard acts on nothing there until people look), never trusted.
#[tokio::test]
async fn a_state_item_the_guard_would_not_have_written_is_refused() {
    let b = backends(
        FakeLambda::default().with_function("orders-ai", 3, "live", AliasState::on("3")),
        "orders-ai-error-rate",
    );
    let key = StateKey::new("123456789012", "orders-ai", Some("live"));
    b.state.set_raw(
        &key,
        r#"{"v":1,"pause":{"until":"2099-01-01T00:00:00.000Z","at":"2026-11-20T03:00:00.000Z","by":"x","reason":"y"}}"#,
    );
    let report = b
        .guard(policy())
        .handle(&event("eventbridge-alarm.json"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.reason);
    assert!(
        report.reason.contains("at most 7 days"),
        "{}",
        report.reason
    );
    assert_eq!(b.lambda.alias_updates(), 0);
    assert_eq!(b.notifier.sent().len(), 1, "people hear of it");
}

/// Finding 6: two named targets on one function, each its own alias: each its own record,
/// claim and cooldown, and `guard undo` of one leaves the other alone.
#[tokio::test]
async fn two_named_targets_on_one_function_keep_their_own_records() {
    let lambda = FakeLambda::default().with_function("orders", 3, "live", AliasState::on("3"));
    lambda.set_alias("orders", "beta", AliasState::on("3"));
    let b = backends(lambda, "orders-live-errors");
    b.alarms.set("orders-beta-errors", AlarmState::Alarm);
    let policy = Policy::from_toml(
        r#"
[guard]
cooldown_minutes = 30

[[target]]
name = "orders-live"
function = "orders"
alias = "live"

[[target]]
name = "orders-beta"
function = "orders"
alias = "beta"

[[trigger]]
alarm = "orders-live-*"
target = "orders-live"
action = "rollback-alias"

[[trigger]]
alarm = "orders-beta-*"
target = "orders-beta"
action = "rollback-alias"
"#,
    )
    .expect("policy");
    let named = |alarm: &str| {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../events/eventbridge-alarm.json"
        ))
        .expect("event")
        .replace("orders-ai-error-rate", alarm);
        serde_json::from_str::<Value>(&text).expect("json")
    };
    let live = b
        .guard(policy.clone())
        .handle(&named("orders-live-errors"), false)
        .await;
    assert_eq!(live.outcome, Outcome::Executed, "{}", live.reason);
    let beta = b
        .guard(policy.clone())
        .handle(&named("orders-beta-errors"), false)
        .await;
    assert_eq!(beta.outcome, Outcome::Executed, "{}", beta.reason);
    assert_eq!(alias_of(&b, "orders", "live"), AliasState::on("2"));
    assert_eq!(alias_of(&b, "orders", "beta"), AliasState::on("2"));
    let undone = rollback_guard::operator::undo(&policy, &b.operating(), "orders-beta")
        .await
        .expect("undo");
    assert_eq!(undone.alias.map(|a| a.alias), Some("beta".to_string()));
    assert_eq!(alias_of(&b, "orders", "beta"), AliasState::on("3"));
    assert_eq!(alias_of(&b, "orders", "live"), AliasState::on("2"));
}

/// Finding 7: a member account's alarm named like a central named trigger's goes on to the
/// fleet trigger after it, instead of being refused as the central target's (and ending in
/// the dead-letter queue).
#[test]
fn a_member_alarm_named_like_a_central_trigger_reaches_the_fleet_trigger() {
    let policy = Policy::from_toml(
        r#"
[guard]
accounts = ["123456789012", "222222222222"]
member_role = "arn:aws:iam::{account}:role/rollback-guard-member"

[[target]]
name = "central"
function = "central-fn"
alias = "live"
account = "123456789012"

[[trigger]]
alarm = "guarded-payments-error-rate"
target = "central"
action = "rollback-alias"

[[trigger]]
alarm = "guarded-*"
target = "from-alarm"
action = "rollback-alias"
"#,
    )
    .expect("policy");
    let from_member = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/eventbridge-fleet-alarm.json"
    ))
    .expect("event")
    .replace("123456789012", "222222222222");
    let verdict = rollback_guard::evaluate::evaluate(&policy, None, from_member.as_bytes(), false);
    assert_eq!(verdict.outcome, "act", "{}", verdict.reason);
    assert_eq!(verdict.target.as_deref(), Some("payments"));
    // The central account's own alarm of that name is the named trigger's.
    let own = rollback_guard::evaluate::evaluate(
        &policy,
        None,
        from_member
            .replace("222222222222", "123456789012")
            .as_bytes(),
        false,
    );
    assert_eq!(own.target.as_deref(), Some("central"));
}

/// Finding 9: `$LATEST` with settings the served version does not have (tracing here) is not
/// published with the flag: they would ship unreviewed.
#[tokio::test]
async fn disable_ai_refuses_to_publish_settings_the_served_version_does_not_have() {
    let b = backends(
        FakeLambda::default().with_function("support-ai", 3, "live", AliasState::on("3")),
        "support-ai-fallback-rate",
    );
    b.lambda.edit_latest("support-ai", |c| {
        c.settings.insert("tracing", "Active".into());
    });
    let report = b
        .guard(policy())
        .handle(&event("eventbridge-fallback-rate.json"), false)
        .await;
    let refused = report.steps.first().unwrap_or(&report);
    assert!(
        refused.reason.contains("tracing differ"),
        "{}",
        refused.reason
    );
    assert_eq!(b.lambda.count_calls("PublishVersion"), 0);
}

/// Finding 10: what the guard remembers is not held to a tag's 256 characters: a long flag
/// value and a long, non-ASCII alarm name's escalation are kept whole.
#[tokio::test]
async fn a_long_flag_value_and_a_long_alarm_name_are_remembered_whole() {
    let alarm = format!("support-ai-fallback-rate-{}", "é".repeat(200));
    let b = backends(
        FakeLambda::default().with_function("support-ai", 3, "live", AliasState::on("3")),
        &alarm,
    );
    let long = "on:".repeat(200);
    b.lambda.edit_every_version("support-ai", |c| {
        c.variables.insert("AI_ENABLED".into(), long.clone());
    });
    let policy = Policy::from_toml(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../events/policy.toml"
        ))
        .expect("policy")
        .replace(
            "alarm = \"support-ai-fallback-rate\"",
            "alarm = \"support-ai-fallback-rate*\"",
        ),
    )
    .expect("policy");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/eventbridge-fallback-rate.json"
    ))
    .expect("event")
    .replace("support-ai-fallback-rate", &alarm);
    let report = b
        .guard(policy)
        .handle(&serde_json::from_str::<Value>(&text).expect("json"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert!(report.notes.is_empty(), "{:?}", report.notes);
    let state = b.state_of("support-ai", "live");
    let flag = state.last.and_then(|r| r.flag).expect("the flag's record");
    assert_eq!(flag.before.as_deref(), Some(long.as_str()));
    assert_eq!(state.escalation.map(|e| e.alarm), Some(alarm));
}

/// Finding 13: two schedule runs that find one escalation due at once (one still waiting on
/// CodeDeploy when the next begins) run it once.
#[tokio::test]
async fn overlapping_schedule_runs_take_a_due_escalation_once() {
    let b = backends(
        FakeLambda::default().with_function("support-ai", 3, "live", AliasState::on("3")),
        "support-ai-fallback-rate",
    );
    let first = b
        .guard(policy())
        .handle(&event("eventbridge-fallback-rate.json"), false)
        .await;
    assert_eq!(first.outcome, Outcome::Executed, "{}", first.reason);
    b.clock.advance(chrono::Duration::minutes(11));
    let (one, two) = (b.guard(policy()), b.guard(policy()));
    let schedule = event("schedule.json");
    let (x, y) = tokio::join!(one.handle(&schedule, false), two.handle(&schedule, false));
    let rungs = x
        .steps
        .iter()
        .chain(&y.steps)
        .filter(|s| s.action == Some("rollback-alias"))
        .count();
    assert_eq!(rungs, 1, "{:?} / {:?}", x.steps, y.steps);
    // Disable-ai moved 3 -> 4 (the AI off), the one rung 4 -> 2: two moves in all.
    assert_eq!(b.lambda.alias_updates(), 2, "{:?}", b.lambda.calls());
}

/// Finding 13: a fleet alarm whose metrics are another account's (a cross-account alarm)
/// names a function of that account, not of the alarm's: rejected, nothing called.
#[test]
fn a_fleet_alarm_on_another_accounts_metrics_is_rejected() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/eventbridge-fleet-alarm.json"
    ))
    .expect("event")
    .replace(
        "\"id\": \"errors\",",
        "\"id\": \"errors\", \"accountId\": \"999999999999\",",
    );
    assert!(text.contains("999999999999"));
    let policy = policy();
    let verdict = rollback_guard::evaluate::evaluate(&policy, None, text.as_bytes(), false);
    assert_eq!(verdict.outcome, "rejected", "{}", verdict.reason);
    assert!(
        verdict.reason.contains("account 999999999999"),
        "{}",
        verdict.reason
    );
}

/// Finding 13: notifications carry the target's account, so a subscription can tell a
/// staging function from its production twin.
#[tokio::test]
async fn notifications_carry_the_account_for_subscription_filters() {
    let b = backends(
        FakeLambda::default().with_function("orders-ai", 3, "live", AliasState::on("3")),
        "orders-ai-error-rate",
    );
    b.guard(policy())
        .handle(&event("eventbridge-alarm.json"), false)
        .await;
    let sent = b.notifier.sent();
    assert_eq!(
        sent[0].1.attributes.get("account").map(String::as_str),
        Some("123456789012")
    );
}

/// Finding 11: a backtest replays to the guard's own rules only (`FilterArns`), never to every
/// consumer of the bus.
#[tokio::test]
async fn a_backtest_replays_to_the_guards_rule_only() {
    use aws_sdk_eventbridge::operation::describe_archive::DescribeArchiveOutput;
    use aws_sdk_eventbridge::operation::describe_rule::DescribeRuleOutput;
    use aws_sdk_eventbridge::operation::start_replay::StartReplayOutput;
    use aws_sdk_eventbridge::Client as Events;
    let bus = "arn:aws:events:us-east-1:123456789012:event-bus/default";
    let rule = "arn:aws:events:us-east-1:123456789012:rule/guard-alarm-state";
    let archive = mock!(Events::describe_archive).then_output(move || {
        DescribeArchiveOutput::builder()
            .archive_arn("arn:aws:events:us-east-1:123456789012:archive/week")
            .event_source_arn(bus)
            .build()
    });
    let described = mock!(Events::describe_rule)
        .match_requests(|r| r.name() == Some("guard-alarm-state"))
        .then_output(move || DescribeRuleOutput::builder().arn(rule).build());
    let started = mock!(Events::start_replay)
        .match_requests(move |r| {
            r.replay_name() == Some("backtest-week")
                && r.destination().map(|d| d.arn()) == Some(bus)
                && r.destination().map(|d| d.filter_arns()) == Some(&[rule.to_string()][..])
        })
        .then_output(|| {
            StartReplayOutput::builder()
                .state(aws_sdk_eventbridge::types::ReplayState::Starting)
                .build()
        });
    let client = mock_client!(
        aws_sdk_eventbridge,
        RuleMode::MatchAny,
        &[&archive, &described, &started]
    );
    let replays = rollback_guard::adapters::EventBridgeReplays::new(client);
    let from = "2026-11-13T00:00:00Z".parse().expect("t");
    let to = "2026-11-20T00:00:00Z".parse().expect("t");
    let state = replays
        .start(
            "week",
            from,
            to,
            "backtest-week",
            &["guard-alarm-state".into()],
        )
        .await
        .expect("started");
    assert_eq!(state, "STARTING");
    assert_eq!(started.num_calls(), 1);
    // No rule named: refused before any call.
    assert!(replays
        .start("week", from, to, "backtest-week", &[])
        .await
        .is_err());
}
