//! The ai-insight function over fakes: AI_ENABLED honoured, Critical Insight events at most
//! once per stream and prediction type in five minutes, bad samples and configuration refused.

use ai_insight::{Config, InsightError, InsightService};
use chrono::Duration;
use rollback_guard::fakes::{FakeAuditBus, FakeClock, FakeInsightModel};
use rollback_guard::insight::InsightEngine;
use serde_json::{json, Value};
use std::sync::Arc;

fn config(ai: &str) -> Config {
    let ai = ai.to_string();
    Config::from_lookup(&move |k| match k {
        "AI_ENABLED" => Some(ai.clone()),
        "INSIGHT_BUDGET_MS" => Some("2000".into()),
        "INSIGHT_RETRY_BASE_MS" => Some("10".into()),
        _ => None,
    })
    .expect("config")
}

struct World {
    service: InsightService,
    model: Arc<FakeInsightModel>,
    bus: Arc<FakeAuditBus>,
    clock: Arc<FakeClock>,
}

fn world(ai: &str) -> World {
    let config = config(ai);
    let model = Arc::new(FakeInsightModel::answering(
        std::time::Duration::from_millis(5),
        json!({"prediction_type": "normal", "risk_score": 5, "explanation": "fine", "recommendations": [], "confidence": 0.9}),
    ));
    let bus = Arc::new(FakeAuditBus::default());
    let clock = Arc::new(FakeClock::at("2026-11-20T03:00:00Z".parse().expect("time")));
    let engine = InsightEngine::new(model.clone(), config.model.settings);
    World {
        service: InsightService::new(config, engine, bus.clone(), clock.clone()),
        model,
        bus,
        clock,
    }
}

fn saturated(stream: &str) -> Value {
    json!({
        "stream_id": stream,
        "timestamp": "2026-11-20T03:00:00Z",
        "utilization": 97.5,
        "latency_ms": 120.0,
        "baseline_latency_ms": 100.0,
        "error_rate": 0.5,
        "dimensions": {"region": "us-east-1"}
    })
}

#[tokio::test]
async fn ai_disabled_means_rules_only_and_no_model_call() {
    let w = world("false");
    let out = w
        .service
        .handle(saturated("orders"))
        .await
        .expect("insight");
    assert_eq!(out["insight"]["source"], "fallback");
    assert_eq!(out["insight"]["prediction_type"], "resource_saturation");
    assert_eq!(out["insight"]["risk_score"], 85);
    assert_eq!(out["insight"]["confidence"], 0.6);
    assert_eq!(w.model.calls(), 0);
}

#[tokio::test]
async fn ai_enabled_asks_the_model() {
    let w = world("true");
    let out = w
        .service
        .handle(saturated("orders"))
        .await
        .expect("insight");
    assert_eq!(out["insight"]["source"], "model");
    assert_eq!(w.model.calls(), 1);
    // A low-risk model answer raises no Critical Insight.
    assert!(w.bus.events().is_empty());
}

#[tokio::test]
async fn critical_insights_go_out_once_per_stream_and_type_in_five_minutes() {
    let w = world("false");
    let first = w
        .service
        .handle(saturated("orders"))
        .await
        .expect("insight");
    assert!(first["critical_alert_id"].is_string());
    let events = w.bus.events();
    assert_eq!(events.len(), 1);
    let (bus, e) = &events[0];
    assert_eq!(bus, "default");
    assert_eq!(e.source, "rollback-guard.insight");
    assert_eq!(e.detail_type, "Critical Insight");
    assert_eq!(e.detail["risk_score"], 85);
    assert_eq!(e.detail["stream_id"], "orders");
    assert_eq!(e.detail["source"], "fallback");
    for field in ["alert_id", "explanation"] {
        assert!(e.detail[field].is_string(), "{field}");
    }

    w.clock.advance(Duration::minutes(4));
    let again = w
        .service
        .handle(saturated("orders"))
        .await
        .expect("insight");
    assert!(again["critical_alert_id"].is_null());
    // Another stream is its own.
    w.service
        .handle(saturated("payments"))
        .await
        .expect("insight");
    assert_eq!(w.bus.events().len(), 2);

    w.clock.advance(Duration::minutes(1));
    w.service
        .handle(saturated("orders"))
        .await
        .expect("insight");
    assert_eq!(w.bus.events().len(), 3);
}

#[tokio::test]
async fn bad_samples_are_refused() {
    let w = world("false");
    let mut high = saturated("orders");
    high["utilization"] = json!(250.0);
    for bad in [json!({"stream_id": "x"}), high, json!([1, 2]), {
        let mut extra = saturated("orders");
        extra["surprise"] = json!(true);
        extra
    }] {
        assert!(matches!(
            w.service.handle(bad).await,
            Err(InsightError::BadSample(_))
        ));
    }
    assert!(w.bus.events().is_empty());
}

#[test]
fn configuration_mistakes_name_the_variable() {
    let bad = |k: &'static str, v: &'static str| {
        Config::from_lookup(&move |key| (key == k).then(|| v.to_string()))
            .expect_err("refused")
            .to_string()
    };
    assert!(bad("AI_ENABLED", "yes").starts_with("configuration: AI_ENABLED:"));
    assert!(bad("INSIGHT_BUDGET_MS", "soon").starts_with("configuration: INSIGHT_BUDGET_MS:"));
    assert!(bad("MAX_TOKENS", "0").starts_with("configuration: MAX_TOKENS:"));
}
