//! The pipeline over in-memory fakes: exactly-once under duplicate and concurrent delivery,
//! cooldown with an injected clock, and failures that are reported, never silent.

use crate::support::{event, policy};
use chrono::{DateTime, Duration, Utc};
use rollback_guard::fakes::{FakeBackends, FakeLambda};
use rollback_guard::ports::PortError;
use rollback_guard::rollback::AliasState;
use rollback_guard::{Guard, Outcome, Policy};
use serde_json::Value;

struct Fakes(FakeBackends);

impl std::ops::Deref for Fakes {
    type Target = FakeBackends;
    fn deref(&self) -> &FakeBackends {
        &self.0
    }
}

impl Fakes {
    /// `orders-ai` with versions 1..=3 and `live` on `on`; its error-rate alarm in ALARM.
    fn new(on: AliasState) -> Self {
        let lambda = FakeLambda::default().with_function("orders-ai", 3, "live", on);
        let start: DateTime<Utc> = "2026-11-20T03:13:00Z".parse().expect("time");
        Self(FakeBackends::new(lambda, "orders-ai-error-rate", start))
    }

    /// A guard instance over these backends (a new one = a new Lambda instance).
    fn guard(&self) -> Guard {
        self.0.guard(policy())
    }

    fn alias(&self) -> AliasState {
        let mut a = self.lambda.alias("orders-ai", "live").expect("alias");
        a.revision_id = None;
        a
    }
}

const TRANSPORTS: [&str; 3] = [
    "eventbridge-alarm.json",
    "sns-alarm.json",
    "lambda-action-alarm.json",
];

#[tokio::test]
async fn twenty_concurrent_deliveries_over_three_transports_make_one_mutation_and_one_notification()
{
    let f = Fakes::new(AliasState::on("3"));
    let mut tasks = Vec::new();
    for i in 0..20 {
        // Each delivery lands on its own instance: only the alias revision can stop doubles.
        let guard = f.guard();
        let e = event(TRANSPORTS[i % 3]);
        tasks.push(tokio::spawn(async move { guard.handle(&e, false).await }));
    }
    let mut reports = Vec::new();
    for t in tasks {
        reports.push(t.await.expect("task"));
    }
    let outcomes: Vec<Outcome> = reports.iter().map(|r| r.outcome).collect();
    // The race was real: some deliveries lost on the alias revision, not on the record.
    assert!(
        reports
            .iter()
            .any(|r| r.reason.starts_with("another delivery")),
        "{:?}",
        reports.iter().map(|r| &r.reason).collect::<Vec<_>>()
    );
    assert_eq!(
        outcomes.iter().filter(|o| **o == Outcome::Executed).count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == Outcome::AlreadyDone)
            .count(),
        19,
        "{outcomes:?}"
    );
    assert_eq!(f.lambda.alias_updates(), 1);
    assert_eq!(f.alias(), AliasState::on("2"));
    assert_eq!(f.notifier.sent().len(), 1);
}

#[tokio::test]
async fn a_warm_instance_answers_duplicates_from_memory_without_calls() {
    let f = Fakes::new(AliasState::on("3"));
    let guard = f.guard();
    assert_eq!(
        guard
            .handle(&event("eventbridge-alarm.json"), false)
            .await
            .outcome,
        Outcome::Executed
    );
    let calls_after_first = f.lambda.calls().len();
    let again = guard.handle(&event("sns-alarm.json"), false).await;
    assert_eq!(again.outcome, Outcome::AlreadyDone);
    assert_eq!(f.lambda.calls().len(), calls_after_first);
    assert_eq!(f.notifier.sent().len(), 1);
}

/// The cooldown holds a second transition back; once it has passed, the release the guard
/// rolled back from is not walked further back (issue 27: one rollback per release) until a
/// newer release goes live.
#[tokio::test]
async fn cooldown_holds_a_new_transition_and_then_one_rollback_per_release_does() {
    let f = Fakes::new(AliasState::on("3"));
    assert_eq!(
        f.guard()
            .handle(&event("eventbridge-alarm.json"), false)
            .await
            .outcome,
        Outcome::Executed
    );
    let mut later = event("eventbridge-alarm.json");
    later["detail"]["state"]["timestamp"] = "2026-11-20T03:30:00.000+0000".into();

    f.clock.advance(Duration::minutes(29));
    assert_eq!(
        f.guard().handle(&later, false).await.outcome,
        Outcome::Skipped
    );
    assert_eq!(f.alias(), AliasState::on("2"));

    f.clock.advance(Duration::minutes(2));
    let held = f.guard().handle(&later, false).await;
    assert_eq!(held.outcome, Outcome::Skipped, "{}", held.reason);
    assert!(
        held.reason
            .contains("already rolled this alias back from version 3 to version 2"),
        "{}",
        held.reason
    );
    assert_eq!(f.alias(), AliasState::on("2"));
    assert_eq!(
        f.audit.detail_types(),
        vec!["Rollback Executed", "Rollback Skipped", "Rollback Skipped"]
    );
    assert_eq!(f.notifier.sent().len(), 3, "each held back is paged");
}

#[tokio::test]
async fn throttled_and_conflicting_updates_are_retried() {
    let f = Fakes::new(AliasState::on("3"));
    f.lambda.fail(
        "UpdateAlias",
        [
            PortError::Throttled("rate".into()),
            PortError::Conflict("busy".into()),
        ],
    );
    let report = f
        .guard()
        .handle(&event("eventbridge-alarm.json"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(f.alias(), AliasState::on("2"));
}

#[tokio::test]
async fn persistent_update_failure_is_reported_with_the_alias_state_and_leaves_it_unchanged() {
    let f = Fakes::new(AliasState::on("3"));
    f.lambda.fail(
        "UpdateAlias",
        (0..4).map(|_| PortError::Transient("HTTP 500".into())),
    );
    let report = f
        .guard()
        .handle(&event("eventbridge-alarm.json"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Failed);
    assert!(
        report.reason.contains("it is now on version 3"),
        "{}",
        report.reason
    );
    assert_eq!(f.alias(), AliasState::on("3"));
    assert_eq!(f.lambda.alias_updates(), 0);
    let sent = f.notifier.sent();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].1.subject.contains("FAILED"));
    assert_eq!(f.audit.detail_types(), vec!["Rollback Failed"]);
    // Nothing was recorded: a retried delivery will try again.
    assert!(f.lambda.tags_of("orders-ai").is_empty());
}

#[tokio::test]
async fn an_alias_moved_by_someone_else_mid_flight_is_not_overwritten() {
    let f = Fakes::new(AliasState::on("3"));
    // A person moves the alias to 1 between the guard's read and its update.
    f.lambda
        .move_before_next_update("orders-ai", "live", AliasState::on("1"));
    let report = f
        .guard()
        .handle(&event("eventbridge-alarm.json"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Failed);
    assert!(
        report.reason.contains("changed underneath"),
        "{}",
        report.reason
    );
    assert_eq!(f.alias(), AliasState::on("1"));
}

#[tokio::test]
async fn bad_events_cause_no_call_at_all() {
    let f = Fakes::new(AliasState::on("3"));
    let guard = f.guard();
    for raw in [
        &b"{\"detail-type\": \"CloudWatch Alarm State Change\", \"source\": \"aws.cl"[..],
        br#"{"source":"aws.cloudwatch","alarmArn":"x"}"#,
        br#"{"Records":[]}"#,
    ] {
        assert_eq!(
            guard.handle_bytes(raw, false).await.outcome,
            Outcome::Rejected
        );
    }
    let mut other_account = event("eventbridge-alarm.json");
    other_account["account"] = "999999999999".into();
    other_account["resources"][0] =
        "arn:aws:cloudwatch:us-east-1:999999999999:alarm:orders-ai-error-rate".into();
    assert_eq!(
        guard.handle(&other_account, false).await.outcome,
        Outcome::Rejected
    );
    assert!(f.lambda.calls().is_empty());
    assert!(f.notifier.sent().is_empty());
    assert!(f.audit.events().is_empty());
}

#[tokio::test]
async fn dry_run_plans_without_mutating() {
    let f = Fakes::new(AliasState::on("3"));
    let report = f
        .guard()
        .handle(&event("eventbridge-alarm.json"), true)
        .await;
    assert_eq!(report.outcome, Outcome::Planned);
    assert_eq!(report.alias_after, Some(AliasState::on("2")));
    assert!(f.lambda.calls().is_empty());
    assert_eq!(f.audit.detail_types(), vec!["Rollback Planned"]);
    assert!(f.notifier.sent().is_empty());
}

#[tokio::test]
async fn a_failed_notification_is_reported_not_swallowed() {
    let f = Fakes::new(AliasState::on("3"));
    f.notifier
        .fail_with(PortError::Other("AuthorizationError".into()));
    let report = f
        .guard()
        .handle(&event("eventbridge-alarm.json"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Executed);
    assert!(report.is_error());
    assert!(
        report.notes[0].contains("notification not delivered"),
        "{:?}",
        report.notes
    );
    assert_eq!(f.alias(), AliasState::on("2"));
}

#[tokio::test]
async fn already_on_the_recorded_stable_version_is_a_quiet_no_op() {
    let f = Fakes::new(AliasState::on("2"));
    rollback_guard::operator::mark_stable(&f.operating(), "orders-ai", "live", Some("2"))
        .await
        .expect("marked");
    let report = f
        .guard()
        .handle(&event("eventbridge-alarm.json"), false)
        .await;
    assert_eq!(report.outcome, Outcome::AlreadyDone);
    assert_eq!(f.lambda.alias_updates(), 0);
    assert!(f.notifier.sent().is_empty());
    assert_eq!(f.audit.detail_types(), vec!["Rollback Skipped"]);
}

#[tokio::test]
async fn undo_restores_the_canary_weights() {
    use rollback_guard::operator::undo;
    let mut canary = AliasState::on("2");
    canary.weights.insert("3".into(), 0.2);
    let f = Fakes::new(canary.clone());
    assert_eq!(
        f.guard()
            .handle(&event("eventbridge-alarm.json"), false)
            .await
            .outcome,
        Outcome::Executed
    );
    assert_eq!(f.alias(), AliasState::on("2"));
    let policy = policy();
    let undone = undo(&policy, &f.operating(), "orders-ai")
        .await
        .expect("undo");
    assert_eq!(undone.alias.map(|a| a.after), Some(canary.clone()));
    assert_eq!(f.alias(), canary);
}

/// The catalog's event `name` as if caused in `account` and `region` (every mention of the
/// catalog's own replaced: the envelope and the alarm ARN agree, as AWS writes them).
fn event_from(name: &str, account: &str, region: &str) -> Value {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path)
        .expect("event")
        .replace("123456789012", account)
        .replace("us-east-1", region);
    serde_json::from_str(&text).expect("json")
}

/// Every kind of event (an alarm over each transport, an insight, a request, the schedule),
/// caused in `account` and `region`: each rejected with a reason naming every one of
/// `places`, and nothing changed or announced.
async fn assert_rejected_everywhere(
    f: &Fakes,
    guard: &Guard,
    account: &str,
    region: &str,
    places: &[&str],
) {
    let others = [
        "insight-critical.json",
        "request-rollback.json",
        "schedule.json",
    ];
    for file in TRANSPORTS.iter().chain(&others) {
        let report = guard
            .handle(&event_from(file, account, region), false)
            .await;
        assert_eq!(
            report.outcome,
            Outcome::Rejected,
            "{file}: {}",
            report.reason
        );
        for place in places {
            assert!(report.reason.contains(place), "{file}: {}", report.reason);
        }
    }
    assert_eq!(f.alias(), AliasState::on("3"));
    assert!(f.lambda.calls().is_empty(), "{:?}", f.lambda.calls());
    assert!(f.notifier.sent().is_empty());
    assert!(f.audit.events().is_empty());
}

#[tokio::test]
async fn events_of_a_listed_account_that_is_not_the_guards_own_are_rejected_on_every_transport() {
    let f = Fakes::new(AliasState::on("3"));
    // guard.accounts accepts the member's events; it must not widen what the guard changes.
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/policy.toml"
    ))
    .expect("policy")
    .replace(
        r#"accounts = ["123456789012"]"#,
        r#"accounts = ["123456789012", "222222222222"]"#,
    );
    let guard = f.0.guard(Policy::from_toml(&text).expect("policy"));
    let places = ["account 222222222222", "account 123456789012"];
    assert_rejected_everywhere(&f, &guard, "222222222222", "us-east-1", &places).await;
}

#[tokio::test]
async fn events_of_another_region_are_rejected_on_every_transport() {
    let f = Fakes::new(AliasState::on("3"));
    let places = ["us-west-2", "us-east-1"];
    assert_rejected_everywhere(&f, &f.guard(), "123456789012", "us-west-2", &places).await;
}

#[tokio::test]
async fn an_account_outside_guard_accounts_is_still_rejected_as_untrusted_first() {
    let f = Fakes::new(AliasState::on("3"));
    let report = f
        .guard()
        .handle(
            &event_from("eventbridge-alarm.json", "999999999999", "us-east-1"),
            false,
        )
        .await;
    assert_eq!(report.outcome, Outcome::Rejected);
    assert_eq!(
        report.reason,
        "account 999999999999 is not in guard.accounts"
    );
}

/// The catalog's SNS alarm event holding `records` (each a record object).
fn sns_with(records: Vec<Value>) -> Value {
    let mut e = event("sns-alarm.json");
    e["Records"] = Value::Array(records);
    e
}

#[tokio::test]
async fn each_record_of_an_sns_event_is_its_own_delivery_and_acts_once() {
    let f = Fakes::new(AliasState::on("3"));
    let record = event("sns-alarm.json")["Records"][0].clone();
    let report = f
        .guard()
        .handle(&sns_with(vec![record.clone(), record]), false)
        .await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    let steps: Vec<Outcome> = report.steps.iter().map(|s| s.outcome).collect();
    assert_eq!(steps, vec![Outcome::Executed, Outcome::AlreadyDone]);
    assert!(
        report.reason.starts_with("SNS event with 2 records"),
        "{}",
        report.reason
    );
    assert_eq!(f.alias(), AliasState::on("2"));
    assert_eq!(f.lambda.alias_updates(), 1);
    assert_eq!(f.notifier.sent().len(), 1);
}

#[tokio::test]
async fn a_bad_record_is_rejected_alone_and_the_event_fails_so_it_is_retried() {
    let f = Fakes::new(AliasState::on("3"));
    let good = event("sns-alarm.json")["Records"][0].clone();
    let mut bad = good.clone();
    bad["EventSource"] = "aws:sqs".into();
    let report = f.guard().handle(&sns_with(vec![bad, good]), false).await;
    // The good record acted; the event as a whole is an error (Lambda retries it, and the
    // retry finds the good record's action done).
    assert_eq!(report.outcome, Outcome::Rejected, "{}", report.reason);
    assert!(report.is_error());
    let steps: Vec<Outcome> = report.steps.iter().map(|s| s.outcome).collect();
    assert_eq!(steps, vec![Outcome::Rejected, Outcome::Executed]);
    assert!(
        report.reason.contains("EventSource `aws:sqs`"),
        "{}",
        report.reason
    );
    assert_eq!(f.alias(), AliasState::on("2"));
}
