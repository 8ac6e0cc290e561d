//! The insight path against llm-katan, the local Bedrock Runtime: a model insight when it
//! answers, the rule-based fallback inside the budget when it is gone; and the guard's
//! notification on the emulator carrying the model's insight.

use ai_insight::{Config, InsightService};
use guard_e2e::{Emulator, Sandbox, ROLLBACK};
use rollback_guard::adapters::{self, BedrockInsightModel};
use rollback_guard::fakes::FakeAuditBus;
use rollback_guard::insight::{InsightEngine, InsightSettings};
use rollback_guard::ports::SystemClock;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const MODEL: &str = "anthropic.claude-3-haiku-20240307-v1:0";

fn settings(budget_ms: u64) -> InsightSettings {
    InsightSettings {
        enabled: true,
        budget: Duration::from_millis(budget_ms),
        base_delay: Duration::from_millis(50),
        max_retries: 3,
    }
}

fn service(client: aws_sdk_bedrockruntime::Client, budget_ms: u64) -> InsightService {
    let config = Config::from_lookup(&|_| None).expect("config");
    let engine = InsightEngine::new(
        Arc::new(BedrockInsightModel::new(client, MODEL, 300)),
        settings(budget_ms),
    );
    InsightService::new(
        config,
        engine,
        Arc::new(FakeAuditBus::default()),
        Arc::new(SystemClock),
    )
}

fn sample() -> serde_json::Value {
    json!({
        "stream_id": "orders",
        "timestamp": "2026-11-20T03:00:00Z",
        "utilization": 40.0,
        "latency_ms": 180.0,
        "baseline_latency_ms": 150.0,
        "error_rate": 0.2
    })
}

#[tokio::test]
async fn llm_katan_answers_with_a_model_insight() {
    assert!(
        std::env::var("AWS_ENDPOINT_URL_BEDROCK_RUNTIME")
            .is_ok_and(|e| e.starts_with("http://127.0.0.1")),
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME must point at llm-katan: run `make test`"
    );
    let emu = Emulator::connect().await;
    let out = service(
        BedrockInsightModel::client(&emu.config, Duration::from_secs(10)),
        10_000,
    )
    .handle(sample())
    .await
    .expect("insight");
    assert_eq!(out["insight"]["source"], "model", "{out}");
    assert_eq!(out["model_calls"], 1);
    // llm-katan fills the tool input from the schema: the first enum value, and so on.
    assert_eq!(out["insight"]["prediction_type"], "resource_saturation");
}

#[tokio::test]
async fn with_bedrock_gone_the_fallback_comes_inside_the_budget() {
    let emu = Emulator::connect().await;
    // A loopback port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let conf = aws_sdk_bedrockruntime::config::Builder::from(&emu.config)
        .endpoint_url(url)
        .retry_config(aws_sdk_bedrockruntime::config::retry::RetryConfig::disabled())
        .build();
    let out = service(aws_sdk_bedrockruntime::Client::from_conf(conf), 2_000)
        .handle(sample())
        .await
        .expect("insight");
    assert_eq!(out["insight"]["source"], "fallback", "{out}");
    assert_eq!(out["insight"]["confidence"], 0.6);
    // Four connection failures, 50 + 100 + 200 ms apart: well inside the 2 s budget.
    assert_eq!(out["model_calls"], 4);
    assert!(
        out["latency_ms"].as_u64().is_some_and(|ms| ms < 2_000),
        "{out}"
    );
}

#[tokio::test]
async fn the_guards_notification_carries_the_models_insight() {
    let s = Sandbox::new(ROLLBACK, 3, "3", &[], "ALARM").await;
    let engine = InsightEngine::new(
        Arc::new(BedrockInsightModel::new(
            BedrockInsightModel::client(&s.emu.config, Duration::from_secs(5)),
            MODEL,
            300,
        )),
        settings(5_000),
    );
    let guard = rollback_guard::Guard::new(
        s.policy.clone(),
        adapters::aws_ports(&s.emu.config),
        guard_e2e::home(),
    )
    .with_insights(engine);
    let report = guard
        .handle(&s.event("eventbridge-alarm.json"), false)
        .await;
    assert_eq!(
        report.outcome,
        rollback_guard::Outcome::Executed,
        "{}",
        report.reason
    );
    let notes = s.notifications().await;
    let body = notes[0]["Message"].as_str().unwrap_or("");
    assert!(
        body.contains("AI insight (model): resource_saturation"),
        "{body}"
    );
}
