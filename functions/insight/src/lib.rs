//! The ai-insight function: takes a metric sample, returns an insight (model, or rules when the
//! model path fails or `AI_ENABLED` is false), emits CloudWatch Embedded Metric Format lines,
//! and puts a `Critical Insight` event on EventBridge for `risk_score >= 80` — at most one per
//! stream and prediction type in five minutes. It is also the sample AI workload the guard
//! protects in the demo.

use chrono::{DateTime, Utc};
use lambda_runtime::{Diagnostic, LambdaEvent};
use rollback_guard::insight::{
    rules_for_sample, sample_request, ConfigError, InsightEngine, MetricSample, ModelConfig,
};
use rollback_guard::notify::AuditEvent;
use rollback_guard::ports::{AuditBus, Clock};
use rollback_guard::state::fingerprint;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Risk from which an insight is critical.
pub const CRITICAL_RISK: u8 = 80;
/// One Critical Insight per stream and prediction type inside this window.
pub const CRITICAL_WINDOW_MINUTES: i64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum InsightError {
    #[error("bad sample: {0}")]
    BadSample(String),
    #[error("insight computed, but the Critical Insight event was not delivered: {0}")]
    NotPublished(String),
}

impl From<InsightError> for Diagnostic {
    fn from(e: InsightError) -> Self {
        let error_type = match e {
            InsightError::BadSample(_) => "Insight.BadSample",
            InsightError::NotPublished(_) => "Insight.NotPublished",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub function_name: String,
    pub model: ModelConfig,
    /// `source` of the Critical Insight events (`INSIGHT_SOURCE`).
    pub source: String,
    /// Where they go (`EVENT_BUS`).
    pub event_bus: String,
}

impl Config {
    /// Reads the configuration from the environment, strictly.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            function_name: get("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|| "ai-insight".into()),
            model: ModelConfig::from_lookup(get, Duration::from_secs(10))?,
            source: get("INSIGHT_SOURCE").unwrap_or_else(|| "rollback-guard.insight".into()),
            event_bus: get("EVENT_BUS").unwrap_or_else(|| "default".into()),
        })
    }
}

pub struct InsightService {
    pub config: Config,
    engine: InsightEngine,
    bus: Arc<dyn AuditBus>,
    clock: Arc<dyn Clock>,
    /// Last Critical Insight per (stream, prediction type) from this instance.
    recent: Mutex<HashMap<(String, String), DateTime<Utc>>>,
}

impl InsightService {
    pub fn new(
        config: Config,
        engine: InsightEngine,
        bus: Arc<dyn AuditBus>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            config,
            engine,
            bus,
            clock,
            recent: Mutex::new(HashMap::new()),
        }
    }

    pub async fn handle(&self, event: Value) -> Result<Value, InsightError> {
        let sample: MetricSample =
            serde_json::from_value(event).map_err(|e| InsightError::BadSample(e.to_string()))?;
        sample.validate().map_err(InsightError::BadSample)?;
        let explained = self
            .engine
            .explain(&sample_request(&sample), rules_for_sample(&sample))
            .await;
        let now = self.clock.now();
        // The EMF line goes to stdout, where Lambda's log stream turns it into metrics.
        println!(
            "{}",
            rollback_guard::insight::emf_line(
                &self.config.function_name,
                &explained,
                now.timestamp_millis()
            )
        );
        let insight = &explained.insight;
        let mut alert_id = None;
        if insight.risk_score >= CRITICAL_RISK
            && self.due(&sample.stream_id, &insight.prediction_type, now)
        {
            let id = format!(
                "{}-{}",
                insight.prediction_type,
                fingerprint(&format!(
                    "{}@{}@{}",
                    sample.stream_id, insight.prediction_type, sample.timestamp
                ))
            );
            let event = AuditEvent {
                source: self.config.source.clone(),
                detail_type: "Critical Insight".into(),
                resources: Vec::new(),
                detail: json!({
                    "alert_id": id,
                    "risk_score": insight.risk_score,
                    "stream_id": sample.stream_id,
                    "prediction_type": insight.prediction_type,
                    "explanation": insight.explanation,
                    "source": insight.source,
                }),
            };
            self.bus
                .put(&self.config.event_bus, &event)
                .await
                .map_err(|e| InsightError::NotPublished(e.to_string()))?;
            if let Ok(mut recent) = self.recent.lock() {
                recent.insert(
                    (sample.stream_id.clone(), insight.prediction_type.clone()),
                    now,
                );
            }
            alert_id = Some(id);
        }
        Ok(json!({
            "stream_id": sample.stream_id,
            "insight": insight,
            "critical_alert_id": alert_id,
            "model_calls": explained.calls,
            "latency_ms": explained.latency_ms,
            "fallback_reason": explained.fallback_reason,
        }))
    }

    fn due(&self, stream: &str, kind: &str, now: DateTime<Utc>) -> bool {
        let window = chrono::Duration::minutes(CRITICAL_WINDOW_MINUTES);
        self.recent
            .lock()
            .map(|r| {
                r.get(&(stream.to_string(), kind.to_string()))
                    .is_none_or(|last| now >= *last + window)
            })
            .unwrap_or(true)
    }
}

pub async fn function_handler(
    event: LambdaEvent<Value>,
    service: &InsightService,
) -> Result<Value, InsightError> {
    service.handle(event.payload).await
}
