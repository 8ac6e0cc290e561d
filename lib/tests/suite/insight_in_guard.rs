//! The guard's notifications carry an insight, and the insight never delays the action.

use rollback_guard::fakes::{FakeBackends, FakeInsightModel, FakeLambda};
use rollback_guard::insight::{InsightEngine, InsightSettings, ModelError};
use rollback_guard::rollback::AliasState;
use rollback_guard::{Guard, Outcome, Policy};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

fn guard(model: Arc<FakeInsightModel>, budget: Duration) -> (Guard, FakeBackends) {
    let lambda = FakeLambda::default().with_function("orders-ai", 3, "live", AliasState::on("3"));
    let fakes = FakeBackends::new(
        lambda,
        "orders-ai-error-rate",
        "2026-11-20T03:13:00Z".parse().expect("time"),
    );
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
    let guard = fakes
        .guard(policy)
        .with_insights(InsightEngine::new(model, settings));
    (guard, fakes)
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
    let (guard, fakes) = guard(model.clone(), Duration::from_secs(3));
    let (lambda, notifier) = (&fakes.lambda, &fakes.notifier);
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
    let (guard, fakes) = guard(model, Duration::from_secs(3));
    let notifier = &fakes.notifier;
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
    let (guard, _fakes) = guard(model.clone(), Duration::from_secs(3));
    let mut ok = event();
    ok["detail"]["state"]["value"] = "OK".into();
    assert_eq!(guard.handle(&ok, false).await.outcome, Outcome::NoAction);
    assert_eq!(model.calls(), 0);
}

/// Model access denied is a grant to fix, and the notification says so in those words.
#[tokio::test(start_paused = true)]
async fn the_notification_says_when_model_access_is_denied() {
    let model = Arc::new(FakeInsightModel::failing(ModelError::AccessDenied(
        "not authorized to perform: bedrock:InvokeModel".into(),
    )));
    let (guard, fakes) = guard(model.clone(), Duration::from_secs(3));
    let report = guard.handle(&event(), false).await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(model.calls(), 1, "not retried");
    let sent = fakes.notifier.sent();
    let body = &sent[0].1.message;
    assert!(
        body.contains("Why the rules answered: model access denied: not authorized to perform: bedrock:InvokeModel"),
        "{body}"
    );
}
