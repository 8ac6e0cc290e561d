//! `disable-ai`, the escalation ladder and undo, over in-memory fakes (with an injected
//! clock). The same behaviours run on the emulator in tests/tests/e2e/disable_ai.rs.

use crate::support::event;
use chrono::{DateTime, Duration, Utc};
use rollback_guard::fakes::{FakeBackends, FakeLambda};
use rollback_guard::operator::{undo, OperatorError};
use rollback_guard::ports::{AliasManager, PortError};
use rollback_guard::rollback::AliasState;
use rollback_guard::transition::AlarmState;
use rollback_guard::{Guard, Outcome, Policy};

const ALARM: &str = "support-ai-fallback-rate";

struct World {
    fakes: FakeBackends,
    policy: Policy,
}

impl std::ops::Deref for World {
    type Target = FakeBackends;
    fn deref(&self) -> &FakeBackends {
        &self.fakes
    }
}

impl World {
    /// `support-ai` with versions 1..=3, `live` on `on`, its fallback-rate alarm in ALARM, and
    /// the catalog policy (ladder: disable-ai, then rollback-alias after 10 minutes).
    fn new(on: AliasState) -> Self {
        let lambda = FakeLambda::default().with_function("support-ai", 3, "live", on);
        let start: DateTime<Utc> = "2026-11-20T05:03:00Z".parse().expect("time");
        Self {
            fakes: FakeBackends::new(lambda, ALARM, start),
            policy: Policy::from_file(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../events/policy.toml"
            ))
            .expect("policy"),
        }
    }

    fn with_policy(mut self, toml: &str) -> Self {
        self.policy = Policy::from_toml(toml).expect("policy");
        self
    }

    fn guard(&self) -> Guard {
        self.fakes.guard(self.policy.clone())
    }

    fn alias(&self) -> AliasState {
        let mut a = self.lambda.alias("support-ai", "live").expect("alias");
        a.revision_id = None;
        a
    }

    fn env(&self, version: Option<&str>) -> std::collections::BTreeMap<String, String> {
        self.lambda
            .config("support-ai", version)
            .expect("config")
            .variables
    }

    /// `support-ai` on version 3 after the guard switched its AI off (the fallback-rate alarm:
    /// the AI-off version 4 published, the alias moved to it).
    async fn with_ai_disabled() -> Self {
        let w = Self::new(AliasState::on("3"));
        let report = w
            .guard()
            .handle(&event("eventbridge-fallback-rate.json"), false)
            .await;
        assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
        w
    }

    /// Why undo refused; a panic if it did anything else.
    async fn undo_refused(&self) -> String {
        match self.undo().await {
            Err(OperatorError::Refused(why)) => why,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    async fn undo(&self) -> Result<rollback_guard::operator::Undone, OperatorError> {
        undo(&self.policy, &self.fakes.operating(), "support-ai").await
    }
}

#[tokio::test]
async fn disable_ai_publishes_the_served_code_with_the_flag_off_and_moves_the_alias() {
    let w = World::new(AliasState::on("3"));
    let served = w.lambda.config("support-ai", Some("3")).expect("v3");

    let report = w
        .guard()
        .handle(&event("eventbridge-fallback-rate.json"), false)
        .await;

    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(w.alias(), AliasState::on("4"));
    let v4 = w.lambda.config("support-ai", Some("4")).expect("v4");
    let mut expected = served.variables.clone();
    expected.insert("AI_ENABLED".into(), "false".into());
    assert_eq!(v4.variables, expected);
    assert_eq!(v4.code_sha256, served.code_sha256);
    assert_eq!(
        (v4.memory_size, v4.timeout, &v4.layers, &v4.kms_key_arn),
        (
            served.memory_size,
            served.timeout,
            &served.layers,
            &served.kms_key_arn
        )
    );
    // Version 3 is immutable and still has the AI on: undo can go back to it.
    assert_eq!(w.env(Some("3"))["AI_ENABLED"], "true");
    assert_eq!(report.preserved_variables, vec!["LOG_LEVEL", "MODEL_ID"]);

    let sent = w.notifier.sent();
    assert_eq!(sent.len(), 1);
    let n = &sent[0].1;
    assert!(
        n.subject.starts_with("AI disabled on support-ai"),
        "{}",
        n.subject
    );
    assert!(
        n.message
            .contains("Variables kept as they were: LOG_LEVEL, MODEL_ID"),
        "{}",
        n.message
    );
    assert!(
        !n.message.contains("anthropic.claude-3-haiku"),
        "a variable's value leaked:\n{}",
        n.message
    );
    assert!(
        n.message
            .contains("Next: rollback-alias at 2026-11-20T05:13:00.000Z"),
        "{}",
        n.message
    );
    assert_eq!(w.audit.detail_types(), vec!["AI Disabled"]);
}

#[tokio::test]
async fn latest_with_other_code_is_refused_nothing_published_and_the_ladder_falls_back() {
    let w = World::new(AliasState::on("3"));
    w.lambda
        .edit_latest("support-ai", |c| c.code_sha256 = "code-next-release".into());

    let report = w
        .guard()
        .handle(&event("eventbridge-fallback-rate.json"), false)
        .await;

    assert_eq!(w.lambda.count_calls("PublishVersion"), 0);
    assert_eq!(w.lambda.count_calls("UpdateFunctionConfiguration"), 0);
    // The refusal is announced, then the ladder's rollback runs at once.
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(report.action, Some("rollback-alias"));
    assert_eq!(report.steps.len(), 1);
    assert!(
        report.steps[0].reason.contains("its code differ"),
        "{}",
        report.steps[0].reason
    );
    assert_eq!(w.alias(), AliasState::on("2"));
    assert_eq!(
        w.audit.detail_types(),
        vec!["Rollback Failed", "Rollback Executed"]
    );
    assert_eq!(w.notifier.sent().len(), 2);
}

/// Lambda shows no variables when it cannot decrypt them (a KMS error): switching the flag
/// would write the flag alone over them. disable-ai is refused with nothing written, and the
/// ladder rolls the alias back instead.
#[tokio::test]
async fn variables_lambda_cannot_show_are_never_written_and_the_ladder_falls_back() {
    let w = World::new(AliasState::on("$LATEST"));
    w.lambda.edit_latest("support-ai", |c| {
        c.environment_error = Some("KMSAccessDeniedException: access denied".into());
        c.variables.clear();
    });
    let report = w
        .guard()
        .handle(&event("eventbridge-fallback-rate.json"), false)
        .await;
    assert_eq!(w.lambda.count_calls("UpdateFunctionConfiguration"), 0);
    assert_eq!(w.lambda.count_calls("PublishVersion"), 0);
    assert!(w.env(None).is_empty());
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(report.action, Some("rollback-alias"));
    assert!(
        report.steps[0]
            .reason
            .contains("cannot be read (KMSAccessDeniedException"),
        "{}",
        report.steps[0].reason
    );
    assert_eq!(w.alias(), AliasState::on("3"));
    assert_eq!(
        w.audit.detail_types(),
        vec!["Rollback Failed", "Rollback Executed"]
    );
}

#[tokio::test]
async fn without_a_ladder_the_refusal_is_a_failure_and_the_alias_stays() {
    let w = World::new(AliasState::on("3")).with_policy(
        "[[target]]\nname='support-ai'\nfunction='support-ai'\nalias='live'\n[[trigger]]\nalarm='support-ai-*'\ntarget='support-ai'\naction='disable-ai'\n",
    );
    w.lambda
        .edit_latest("support-ai", |c| c.memory_size = Some(2048));
    let report = w
        .guard()
        .handle(&event("eventbridge-fallback-rate.json"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Failed);
    assert!(
        report.reason.contains("memory size differ"),
        "{}",
        report.reason
    );
    assert_eq!(w.alias(), AliasState::on("3"));
    assert_eq!(w.lambda.count_calls("PublishVersion"), 0);
}

#[tokio::test]
async fn already_off_is_a_no_op_with_at_most_one_notification() {
    let w = World::new(AliasState::on("3"));
    let guard = w.guard();
    assert_eq!(
        guard
            .handle(&event("eventbridge-fallback-rate.json"), false)
            .await
            .outcome,
        Outcome::Executed
    );
    // A new transition later, past the cooldown: the served version already has the AI off.
    w.clock.advance(Duration::minutes(45));
    let mut again = event("eventbridge-fallback-rate.json");
    again["detail"]["state"]["timestamp"] = "2026-11-20T05:48:00.000+0000".into();
    let report = w.guard().handle(&again, false).await;
    assert_eq!(report.outcome, Outcome::AlreadyDone, "{}", report.reason);
    assert!(
        report.reason.starts_with("AI already disabled"),
        "{}",
        report.reason
    );
    assert_eq!(w.lambda.count_calls("PublishVersion"), 1);
    assert_eq!(w.notifier.sent().len(), 1);
}

#[tokio::test]
async fn a_target_without_an_alias_has_latest_updated_in_place() {
    let w = World::new(AliasState::on("3")).with_policy(
        "[[target]]\nname='support-ai'\nfunction='support-ai'\n[[trigger]]\nalarm='support-ai-*'\ntarget='support-ai'\naction='disable-ai'\n",
    );
    let before = w.env(None);
    let report = w
        .guard()
        .handle(&event("eventbridge-fallback-rate.json"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    let mut expected = before.clone();
    expected.insert("AI_ENABLED".into(), "false".into());
    assert_eq!(w.env(None), expected);
    assert_eq!(w.lambda.count_calls("PublishVersion"), 0);
    assert_eq!(w.alias(), AliasState::on("3"));
    // Undo puts the flag back.
    w.undo().await.expect("undo");
    assert_eq!(w.env(None), before);
}

#[tokio::test]
async fn the_ladder_escalates_to_rollback_when_the_alarm_is_still_in_alarm() {
    let w = World::new(AliasState::on("3"));
    assert_eq!(
        w.guard()
            .handle(&event("eventbridge-fallback-rate.json"), false)
            .await
            .outcome,
        Outcome::Executed
    );
    assert_eq!(w.alias(), AliasState::on("4"));

    // Nine minutes on: not due yet.
    w.clock.advance(Duration::minutes(9));
    let early = w.guard().handle(&event("schedule.json"), false).await;
    assert_eq!(early.outcome, Outcome::NoAction);
    assert!(early.steps.is_empty());
    assert_eq!(w.alias(), AliasState::on("4"));

    // Ten minutes on, still in ALARM: the next rung, the alias rollback, runs.
    w.clock.advance(Duration::minutes(1));
    let due = w.guard().handle(&event("schedule.json"), false).await;
    assert_eq!(due.outcome, Outcome::Executed, "{:?}", due.steps);
    assert_eq!(due.steps.len(), 1);
    assert_eq!(due.steps[0].action, Some("rollback-alias"));
    assert!(
        due.steps[0]
            .reason
            .starts_with("escalation: alarm `support-ai-fallback-rate` still in ALARM"),
        "{}",
        due.steps[0].reason
    );
    // Version 4 is release 3 with the AI off: the rollback goes back past both, to 2.
    assert_eq!(w.alias(), AliasState::on("2"));
    assert_eq!(
        w.audit.detail_types(),
        vec!["AI Disabled", "Rollback Executed"]
    );

    // The ladder has ended: later checks do nothing.
    w.clock.advance(Duration::minutes(30));
    let after = w.guard().handle(&event("schedule.json"), false).await;
    assert!(after.steps.is_empty());
    assert_eq!(w.alias(), AliasState::on("2"));
}

#[tokio::test]
async fn the_ladder_stops_when_the_alarm_has_recovered() {
    let w = World::new(AliasState::on("3"));
    assert_eq!(
        w.guard()
            .handle(&event("eventbridge-fallback-rate.json"), false)
            .await
            .outcome,
        Outcome::Executed
    );
    w.alarms.set(ALARM, AlarmState::Ok);
    w.clock.advance(Duration::minutes(11));
    let check = w.guard().handle(&event("schedule.json"), false).await;
    assert_eq!(check.steps.len(), 1);
    assert_eq!(check.steps[0].outcome, Outcome::NoAction);
    assert!(
        check.steps[0]
            .reason
            .contains("escalation to rollback-alias cancelled"),
        "{}",
        check.steps[0].reason
    );
    assert_eq!(w.alias(), AliasState::on("4"));
    // Cancelled for good, even if the alarm fires again later: that is a new transition.
    w.alarms.set(ALARM, AlarmState::Alarm);
    w.clock.advance(Duration::minutes(5));
    assert!(w
        .guard()
        .handle(&event("schedule.json"), false)
        .await
        .steps
        .is_empty());
    assert_eq!(w.alias(), AliasState::on("4"));
}

#[tokio::test]
async fn undo_after_disable_ai_restores_the_alias_and_the_flag() {
    let latest_before = World::new(AliasState::on("3")).env(None);
    let w = World::with_ai_disabled().await;
    let undone = w.undo().await.expect("undo");
    assert_eq!(undone.alias.map(|a| a.after), Some(AliasState::on("3")));
    assert_eq!(w.alias(), AliasState::on("3"));
    assert_eq!(w.env(None), latest_before);
    // An undo is not undone: the record says the last change already was one.
    let why = w.undo_refused().await;
    assert!(why.contains("already was an undo"), "{why}");
    assert_eq!(w.alias(), AliasState::on("3"));
    assert_eq!(w.env(None), latest_before);
}

#[tokio::test]
async fn undo_refuses_after_an_outside_change_to_the_alias() {
    let w = World::with_ai_disabled().await;
    let latest_after = w.env(None);
    // Someone moves the alias by hand after the guard did.
    w.lambda
        .update_alias("support-ai", "live", &AliasState::on("2"), None)
        .await
        .expect("moved by hand");
    let why = w.undo_refused().await;
    assert!(why.contains("something else changed it since"), "{why}");
    assert_eq!(w.alias(), AliasState::on("2"));
    assert_eq!(
        w.env(None),
        latest_after,
        "the flag is left as the guard set it"
    );
}

#[tokio::test]
async fn undo_refuses_after_an_outside_change_to_the_flag() {
    let w = World::with_ai_disabled().await;
    // Someone turns the AI back on by hand on $LATEST.
    w.lambda.edit_latest("support-ai", |c| {
        c.variables.insert("AI_ENABLED".into(), "true".into());
    });
    let why = w.undo_refused().await;
    assert!(why.contains("something else changed it"), "{why}");
    assert_eq!(w.alias(), AliasState::on("4"));
}

#[tokio::test]
async fn a_canary_cannot_have_its_ai_disabled_so_the_ladder_aborts_it() {
    let mut canary = AliasState::on("2");
    canary.weights.insert("3".into(), 0.1);
    let w = World::new(canary);
    let report = w
        .guard()
        .handle(&event("eventbridge-fallback-rate.json"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert!(
        report.steps[0].reason.contains("mid-canary"),
        "{}",
        report.steps[0].reason
    );
    assert_eq!(w.alias(), AliasState::on("2"));
}

#[tokio::test]
async fn conflicts_and_throttling_on_configuration_and_publish_are_retried() {
    let w = World::new(AliasState::on("3"));
    w.lambda.fail(
        "UpdateFunctionConfiguration",
        [
            PortError::Conflict("update in progress".into()),
            PortError::Throttled("rate".into()),
        ],
    );
    w.lambda.fail(
        "PublishVersion",
        [PortError::Conflict("update in progress".into())],
    );
    w.lambda
        .fail("UpdateAlias", [PortError::Throttled("rate".into())]);
    let report = w
        .guard()
        .handle(&event("eventbridge-fallback-rate.json"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(w.alias(), AliasState::on("4"));
    assert_eq!(w.lambda.count_calls("PublishVersion"), 1);
}

#[tokio::test]
async fn a_failed_publish_leaves_a_known_state_and_a_retry_completes_it() {
    let w = World::new(AliasState::on("3"));
    w.lambda.fail(
        "PublishVersion",
        (0..4).map(|_| PortError::Transient("HTTP 500".into())),
    );
    let report = w
        .guard()
        .handle(&event("eventbridge-fallback-rate.json"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Failed);
    assert!(
        report
            .reason
            .contains("$LATEST of support-ai has AI_ENABLED=false, unpublished"),
        "{}",
        report.reason
    );
    assert_eq!(w.alias(), AliasState::on("3"));
    // Lambda retries the event: $LATEST differs from version 3 only by the flag, so it proceeds.
    let retry = w
        .guard()
        .handle(&event("eventbridge-fallback-rate.json"), false)
        .await;
    assert_eq!(retry.outcome, Outcome::Executed, "{}", retry.reason);
    assert_eq!(w.alias(), AliasState::on("4"));
}

/// After the AI was switched off, the way back is to an AI-on version: the one it was switched
/// off from by default; a version named with its flag off is refused; nothing starts while the
/// ladder's next rung may still act.
#[tokio::test]
async fn reenable_after_ai_disabled_brings_back_an_ai_on_version_only() {
    use rollback_guard::guard::ReenableRequest;
    let w = World::with_ai_disabled().await;
    let guard = w.guard();
    let request = |version: Option<&str>| ReenableRequest {
        steps: vec![10, 50, 100],
        every: chrono::Duration::minutes(5),
        version: version.map(str::to_string),
        by: "alice".into(),
    };
    w.clock.advance(chrono::Duration::minutes(31));
    let pending = guard.start_reenable("support-ai", &request(None)).await;
    assert!(
        pending
            .as_ref()
            .is_err_and(|e| e.contains("escalation is pending")),
        "{pending:?}"
    );
    // The alarm recovered: the schedule cancels the rung.
    w.alarms.set(ALARM, AlarmState::Ok);
    guard.handle(&event("schedule.json"), false).await;
    let off = guard
        .start_reenable("support-ai", &request(Some("4")))
        .await;
    assert!(
        off.as_ref().is_err_and(|e| e.contains("AI_ENABLED=false")),
        "{off:?}"
    );
    let report = guard
        .start_reenable("support-ai", &request(None))
        .await
        .expect("started");
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    let mut want = AliasState::on("4");
    want.weights.insert("3".into(), 0.1);
    assert_eq!(w.alias(), want);
}
