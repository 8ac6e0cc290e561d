//! The guard's notifications carry an insight, and the insight never delays the action.

use rollback_guard::fakes::{
    FakeAlarmStates, FakeAuditBus, FakeClock, FakeInsightModel, FakeLambda, FakeNotifier,
};
use rollback_guard::insight::{InsightEngine, InsightSettings, ModelError};
use rollback_guard::rollback::AliasState;
use rollback_guard::transition::AlarmState;
use rollback_guard::{Guard, Outcome, Policy, Ports};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

fn guard(
    model: Arc<FakeInsightModel>,
    budget: Duration,
) -> (Guard, Arc<FakeLambda>, Arc<FakeNotifier>) {
    let alarms = FakeAlarmStates::default();
    alarms.set("orders-ai-error-rate", AlarmState::Alarm);
    let lambda =
        Arc::new(FakeLambda::default().with_function("orders-ai", 3, "live", AliasState::on("3")));
    let notifier = Arc::new(FakeNotifier::default());
    let ports = Ports {
        aliases: lambda.clone(),
        functions: lambda.clone(),
        alarms: Arc::new(alarms),
        notifier: notifier.clone(),
        audit: Arc::new(FakeAuditBus::default()),
        clock: Arc::new(FakeClock::at("2026-11-20T03:13:00Z".parse().expect("time"))),
    };
    let policy = Policy::from_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/policy.toml"
    ))
    .expect("policy");
    let settings = InsightSettings {
        enabled: true,
        budget,
        base_delay: Duration::from_secs(1),
        max_retries: 3,
    };
    let guard = Guard::new(policy, ports).with_insights(InsightEngine::new(model, settings));
    (guard, lambda, notifier)
}

fn event() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/eventbridge-alarm.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("event")).expect("json")
}

fn model_answer() -> Value {
    json!({
        "prediction_type": "connection_instability",
        "risk_score": 88,
        "explanation": "errors rose with version 3",
        "recommendations": ["keep version 2 until the dependency is fixed"],
        "confidence": 0.9
    })
}

#[tokio::test(start_paused = true)]
async fn a_bedrock_stall_of_ten_seconds_adds_nothing_to_the_action() {
    let model = Arc::new(FakeInsightModel::answering(
        Duration::from_secs(10),
        model_answer(),
    ));
    let (guard, lambda, notifier) = guard(model.clone(), Duration::from_secs(3));
    let start = Instant::now();

    let report = guard.handle(&event(), false).await;

    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    let update = lambda
        .timeline()
        .into_iter()
        .find(|(call, _)| call.starts_with("UpdateAlias"))
        .expect("the alias was updated");
    // The action happened at once; the notification waited out the insight's budget and went
    // out with the rule-based insight.
    assert_eq!(update.1 - start, Duration::ZERO);
    assert_eq!(notifier.sent_at(), vec![start + Duration::from_secs(3)]);
    let message = &notifier.sent()[0].1.message;
    assert!(
        message.contains("AI insight (rules (fallback)): connection_instability"),
        "{message}"
    );
    assert_eq!(model.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_notification_carries_the_model_insight_when_it_answers_in_time() {
    let model = Arc::new(FakeInsightModel::answering(
        Duration::from_millis(400),
        model_answer(),
    ));
    let (guard, _, notifier) = guard(model, Duration::from_secs(3));
    let report = guard.handle(&event(), false).await;
    assert_eq!(report.insight.as_ref().map(|i| i.risk_score), Some(88));
    let message = &notifier.sent()[0].1.message;
    assert!(message.contains("AI insight (model): connection_instability, risk 88/100, confidence 0.90. errors rose with version 3"), "{message}");
    assert!(
        message.contains("Recommendations: keep version 2 until the dependency is fixed"),
        "{message}"
    );
    assert!(
        message.contains("\"insight\""),
        "the JSON half carries it too"
    );
}

#[tokio::test(start_paused = true)]
async fn no_insight_is_asked_for_what_people_are_not_told() {
    let model = Arc::new(FakeInsightModel::failing(ModelError::Permanent(
        "unused".into(),
    )));
    let (guard, _, _) = guard(model.clone(), Duration::from_secs(3));
    let mut ok = event();
    ok["detail"]["state"]["value"] = "OK".into();
    assert_eq!(guard.handle(&ok, false).await.outcome, Outcome::NoAction);
    assert_eq!(model.calls(), 0);
}
