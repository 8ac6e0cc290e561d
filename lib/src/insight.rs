//! AI insight: an explanation of an incident or a metric sample, from a model (Bedrock
//! `Converse` with a forced tool whose JSON schema is the insight), retried on transient
//! errors within a total time budget, and from rules when the model path fails or is off.
//! The rules decide nothing here: an insight explains, it never gates an action.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, info, warn};

/// The tool the model must call; its input schema is the insight.
pub const TOOL_NAME: &str = "record_insight";
/// Sampling temperature for insights: low, for stable answers.
pub const TEMPERATURE: f32 = 0.3;
/// Confidence of a rule-based insight.
pub const FALLBACK_CONFIDENCE: f64 = 0.6;
/// Kinds of prediction an insight may make.
pub const PREDICTION_TYPES: [&str; 6] = [
    "resource_saturation",
    "performance_degradation",
    "connection_instability",
    "ai_quality_degradation",
    "cost_anomaly",
    "normal",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InsightSource {
    Model,
    Fallback,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Insight {
    pub prediction_type: String,
    pub risk_score: u8,
    pub explanation: String,
    pub recommendations: Vec<String>,
    pub confidence: f64,
    pub source: InsightSource,
}

/// A metric sample of an AI workload (the ai-insight function's input). Utilisation and error
/// rate are percentages (0-100).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSample {
    pub stream_id: String,
    pub timestamp: String,
    pub utilization: f64,
    pub latency_ms: f64,
    pub baseline_latency_ms: f64,
    pub error_rate: f64,
    #[serde(default)]
    pub dimensions: Map<String, Value>,
}

impl MetricSample {
    pub fn validate(&self) -> Result<(), String> {
        if self.stream_id.trim().is_empty() {
            return Err("`stream_id`: expected a non-empty string".into());
        }
        if crate::transition::parse_timestamp(&self.timestamp).is_none() {
            return Err(format!(
                "`timestamp`: `{}` is not an RFC 3339 timestamp",
                self.timestamp
            ));
        }
        let checks = [
            ("utilization", self.utilization, 0.0, 100.0),
            ("error_rate", self.error_rate, 0.0, 100.0),
            ("latency_ms", self.latency_ms, 0.0, f64::MAX),
            (
                "baseline_latency_ms",
                self.baseline_latency_ms,
                0.0,
                f64::MAX,
            ),
        ];
        for (field, v, lo, hi) in checks {
            if !v.is_finite() || v < lo || v > hi {
                return Err(format!("`{field}`: {v} is outside {lo}..={hi}"));
            }
        }
        Ok(())
    }
}

/// The seed runbooks' rules for a metric sample.
pub fn rules_for_sample(s: &MetricSample) -> Insight {
    let (kind, risk, why) = if s.utilization > 90.0 {
        (
            "resource_saturation",
            85,
            format!("utilisation is {:.1} %, above 90 %", s.utilization),
        )
    } else if s.baseline_latency_ms > 0.0 && s.latency_ms > 2.0 * s.baseline_latency_ms {
        (
            "performance_degradation",
            75,
            format!(
                "latency {:.0} ms is more than twice the baseline {:.0} ms",
                s.latency_ms, s.baseline_latency_ms
            ),
        )
    } else if s.error_rate > 5.0 {
        (
            "connection_instability",
            70,
            format!("error rate is {:.1} %, above 5 %", s.error_rate),
        )
    } else {
        (
            "normal",
            10,
            "utilisation, latency and error rate are within their bounds".to_string(),
        )
    };
    fallback(kind, risk, why)
}

/// Rules for an alarm incident: the kind of metric the alarm watches.
pub fn rules_for_incident(alarm: &str, reason: &str) -> Insight {
    let text = format!("{alarm} {reason}").to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| text.contains(w));
    let (kind, risk) = if has(&["fallback", "quality"]) {
        ("ai_quality_degradation", 80)
    } else if has(&["cost", "token", "bedrock"]) {
        ("cost_anomaly", 70)
    } else if has(&["throttl", "concurrency", "utiliz", "saturat", "memory"]) {
        ("resource_saturation", 85)
    } else if has(&["latency", "duration", "p95", "p99"]) {
        ("performance_degradation", 75)
    } else if has(&["error", "5xx", "fault"]) {
        ("connection_instability", 80)
    } else {
        ("performance_degradation", 60)
    };
    fallback(kind, risk, format!("alarm `{alarm}` is in ALARM: {reason}"))
}

fn fallback(kind: &str, risk: u8, why: String) -> Insight {
    let recommendations = match kind {
        "resource_saturation" => vec![
            "raise memory or reserved concurrency",
            "check for a retry storm",
        ],
        "performance_degradation" => vec![
            "compare the new version's duration with the stable one",
            "check downstream latency",
        ],
        "connection_instability" => vec![
            "check downstream dependencies and timeouts",
            "roll back if errors started with the deployment",
        ],
        "ai_quality_degradation" => vec![
            "switch the AI path off until the model answers again",
            "check the model's quotas and errors",
        ],
        "cost_anomaly" => vec![
            "check token usage per request",
            "cap max tokens or switch the AI path off",
        ],
        _ => vec!["no action needed"],
    };
    Insight {
        prediction_type: kind.into(),
        risk_score: risk,
        explanation: format!("rule-based: {why}"),
        recommendations: recommendations.into_iter().map(String::from).collect(),
        confidence: FALLBACK_CONFIDENCE,
        source: InsightSource::Fallback,
    }
}

/// The JSON schema of the insight tool's input.
pub fn tool_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "prediction_type": { "type": "string", "enum": PREDICTION_TYPES },
            "risk_score": { "type": "integer", "minimum": 0, "maximum": 100 },
            "explanation": { "type": "string" },
            "recommendations": { "type": "array", "items": { "type": "string" } },
            "confidence": { "type": "number", "minimum": 0, "maximum": 1 }
        },
        "required": ["prediction_type", "risk_score", "explanation", "recommendations", "confidence"]
    })
}

/// Validates what the model put in the tool call; anything off is a failure.
pub fn parse_model_output(input: &Value) -> Result<Insight, String> {
    let obj = input.as_object().ok_or("tool input is not an object")?;
    let text = |k: &str| {
        obj.get(k)
            .and_then(Value::as_str)
            .ok_or(format!("`{k}` missing or not a string"))
    };
    let prediction_type = text("prediction_type")?;
    if !PREDICTION_TYPES.contains(&prediction_type) {
        return Err(format!(
            "`prediction_type` `{prediction_type}` is not one of {PREDICTION_TYPES:?}"
        ));
    }
    let risk = obj
        .get("risk_score")
        .and_then(Value::as_f64)
        .ok_or("`risk_score` missing or not a number")?;
    if !(0.0..=100.0).contains(&risk) || risk.fract() != 0.0 {
        return Err(format!("`risk_score` {risk} is not an integer in 0..=100"));
    }
    let confidence = obj
        .get("confidence")
        .and_then(Value::as_f64)
        .ok_or("`confidence` missing or not a number")?;
    if !(0.0..=1.0).contains(&confidence) {
        return Err(format!("`confidence` {confidence} is outside 0..=1"));
    }
    let recommendations = obj
        .get("recommendations")
        .and_then(Value::as_array)
        .ok_or("`recommendations` missing or not a list")?
        .iter()
        .map(|r| {
            r.as_str()
                .map(String::from)
                .ok_or("a recommendation is not a string")
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Insight {
        prediction_type: prediction_type.into(),
        risk_score: risk as u8,
        explanation: text("explanation")?.into(),
        recommendations,
        confidence,
        source: InsightSource::Model,
    })
}

/// What the model is asked.
#[derive(Debug, Clone, PartialEq)]
pub struct InsightRequest {
    pub system: String,
    pub prompt: String,
}

const SYSTEM: &str = "You are the reliability analyst of an AI-powered AWS Lambda service. \
Assess the evidence, then call the record_insight tool exactly once with your assessment.";

pub fn sample_request(s: &MetricSample) -> InsightRequest {
    InsightRequest {
        system: SYSTEM.into(),
        prompt: format!(
            "Metric sample of stream {}: at {}, utilisation {} %, latency {} ms (baseline {} ms), error rate {} %, dimensions {}.",
            s.stream_id,
            s.timestamp,
            s.utilization,
            s.latency_ms,
            s.baseline_latency_ms,
            s.error_rate,
            Value::Object(s.dimensions.clone())
        ),
    }
}

pub fn incident_request(
    alarm: &str,
    reason: &str,
    datapoints: &[f64],
    action: &str,
) -> InsightRequest {
    InsightRequest {
        system: SYSTEM.into(),
        prompt: format!(
            "CloudWatch alarm {alarm} went into ALARM. Reason: {reason}. Recent datapoints: {datapoints:?}. \
The rollback guard's response: {action}."
        ),
    }
}

/// A model's answer: the tool call's input, and the tokens it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelReply {
    pub tool_input: Value,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// Throttling, unavailable, model not ready, internal error, timeout.
    #[error("retryable: {0}")]
    Retryable(String),
    /// The role may not invoke the model: a grant to fix, not a model failing. An inference
    /// profile (`us.…`, `eu.…`, `apac.…`, `global.…`) needs the profile and the foundation
    /// models in every region it routes to.
    #[error("model access denied: {0}")]
    AccessDenied(String),
    /// Validation, not found, anything else.
    #[error("{0}")]
    Permanent(String),
}

/// The model behind the insight path (Bedrock `Converse`).
#[async_trait]
pub trait InsightModel: Send + Sync {
    async fn converse(&self, request: &InsightRequest) -> Result<ModelReply, ModelError>;
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InsightSettings {
    /// Whether the model is asked at all (`AI_ENABLED`).
    pub enabled: bool,
    /// Bounds the whole model path, retries included.
    pub budget: Duration,
    /// First retry delay; then 2×, 4×.
    pub base_delay: Duration,
    pub max_retries: u32,
}

impl Default for InsightSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            budget: Duration::from_secs(10),
            base_delay: Duration::from_secs(1),
            max_retries: 3,
        }
    }
}

/// A configuration problem, naming the variable and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration: {variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

/// The insight path's configuration, from the function's environment: `AI_ENABLED`
/// (`true`/`false`, default true), `MODEL_ID`, `MAX_TOKENS` (1-4096, default 512),
/// `INSIGHT_BUDGET_MS`, `INSIGHT_RETRY_BASE_MS` (default 1000).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub model_id: String,
    pub max_tokens: i32,
    pub settings: InsightSettings,
}

impl ModelConfig {
    pub fn from_lookup(
        get: &dyn Fn(&str) -> Option<String>,
        default_budget: Duration,
    ) -> Result<Self, ConfigError> {
        let err = |variable, message: String| ConfigError { variable, message };
        let enabled = match get("AI_ENABLED").as_deref() {
            None | Some("true") => true,
            Some("false") => false,
            Some(other) => {
                return Err(err(
                    "AI_ENABLED",
                    format!("expected \"true\" or \"false\", got `{other}`"),
                ))
            }
        };
        let millis = |variable: &'static str, default: Duration| -> Result<Duration, ConfigError> {
            match get(variable) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u64>()
                    .map(Duration::from_millis)
                    .map_err(|_| err(variable, format!("expected milliseconds, got `{v}`"))),
            }
        };
        let max_tokens = match get("MAX_TOKENS") {
            None => 512,
            Some(v) => v
                .parse::<i32>()
                .ok()
                .filter(|n| (1..=4096).contains(n))
                .ok_or_else(|| err("MAX_TOKENS", format!("expected 1..=4096, got `{v}`")))?,
        };
        let model_id =
            get("MODEL_ID").unwrap_or_else(|| "anthropic.claude-3-haiku-20240307-v1:0".into());
        if model_id.trim().is_empty() {
            return Err(err("MODEL_ID", "expected a Bedrock model id".into()));
        }
        Ok(Self {
            model_id,
            max_tokens,
            settings: InsightSettings {
                enabled,
                budget: millis("INSIGHT_BUDGET_MS", default_budget)?,
                base_delay: millis("INSIGHT_RETRY_BASE_MS", Duration::from_secs(1))?,
                max_retries: 3,
            },
        })
    }
}

/// An insight and how it was reached.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explained {
    pub insight: Insight,
    /// Model calls made.
    pub calls: u32,
    pub latency_ms: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Why the fallback was used, when it was.
    pub fallback_reason: Option<String>,
}

/// The insight path: the model with retries inside the budget, else the rules.
#[derive(Clone)]
pub struct InsightEngine {
    model: Option<Arc<dyn InsightModel>>,
    settings: InsightSettings,
}

struct Attempts {
    calls: u32,
    result: Result<(Insight, u64, u64), String>,
}

impl InsightEngine {
    pub fn new(model: Arc<dyn InsightModel>, settings: InsightSettings) -> Self {
        Self {
            model: Some(model),
            settings,
        }
    }

    /// Rules only: no model configured.
    pub fn rules_only() -> Self {
        Self {
            model: None,
            settings: InsightSettings {
                enabled: false,
                ..InsightSettings::default()
            },
        }
    }

    pub fn settings(&self) -> InsightSettings {
        self.settings
    }

    pub async fn explain(&self, request: &InsightRequest, fallback: Insight) -> Explained {
        let started = tokio::time::Instant::now();
        let model = match (&self.model, self.settings.enabled) {
            (Some(m), true) => m.clone(),
            _ => {
                info!(path = "fallback", why = "AI disabled", "insight");
                return explained_fallback(fallback, 0, started, "AI path switched off".into());
            }
        };
        let calls = std::sync::atomic::AtomicU32::new(0);
        let attempt = tokio::time::timeout(
            self.settings.budget,
            self.attempts(model.as_ref(), request, &calls),
        )
        .await;
        let attempts = match attempt {
            Ok(a) => a,
            Err(_) => Attempts {
                calls: calls.load(std::sync::atomic::Ordering::SeqCst),
                result: Err(format!(
                    "time budget of {} ms exhausted",
                    self.settings.budget.as_millis()
                )),
            },
        };
        match attempts.result {
            Ok((insight, input_tokens, output_tokens)) => {
                let latency_ms = started.elapsed().as_millis() as u64;
                info!(
                    path = "model",
                    calls = attempts.calls,
                    latency_ms,
                    input_tokens,
                    output_tokens,
                    "insight"
                );
                Explained {
                    insight,
                    calls: attempts.calls,
                    latency_ms,
                    input_tokens,
                    output_tokens,
                    fallback_reason: None,
                }
            }
            Err(why) => {
                warn!(path = "fallback", calls = attempts.calls, why = %why, "insight");
                explained_fallback(fallback, attempts.calls, started, why)
            }
        }
    }

    async fn attempts(
        &self,
        model: &dyn InsightModel,
        request: &InsightRequest,
        calls: &std::sync::atomic::AtomicU32,
    ) -> Attempts {
        debug!(system = %request.system, prompt = %request.prompt, "insight request");
        let mut retry = 0;
        loop {
            let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            match model.converse(request).await {
                Ok(reply) => {
                    debug!(completion = %reply.tool_input, "insight reply");
                    let result = parse_model_output(&reply.tool_input)
                        .map(|i| (i, reply.input_tokens, reply.output_tokens))
                        .map_err(|e| format!("malformed model output: {e}"));
                    return Attempts { calls: n, result };
                }
                Err(ModelError::Retryable(e)) if retry < self.settings.max_retries => {
                    let delay = self
                        .settings
                        .base_delay
                        .saturating_mul(2u32.saturating_pow(retry));
                    warn!(attempt = n, error = %e, delay_ms = delay.as_millis() as u64, "model call failed; retrying");
                    tokio::time::sleep(delay).await;
                    retry += 1;
                }
                Err(e @ ModelError::AccessDenied(_)) => {
                    return Attempts {
                        calls: n,
                        result: Err(format!(
                            "{e} (grant bedrock:InvokeModel on the model; for an inference profile, on the profile and on the foundation model in every region it routes to)"
                        )),
                    }
                }
                Err(e) => {
                    return Attempts {
                        calls: n,
                        result: Err(format!("model call failed: {e}")),
                    }
                }
            }
        }
    }
}

fn explained_fallback(
    insight: Insight,
    calls: u32,
    started: tokio::time::Instant,
    why: String,
) -> Explained {
    Explained {
        insight,
        calls,
        latency_ms: started.elapsed().as_millis() as u64,
        input_tokens: 0,
        output_tokens: 0,
        fallback_reason: Some(why),
    }
}

/// One CloudWatch Embedded Metric Format line for an insight: what the seed's "fallback rate"
/// and "Bedrock cost" alarms are built on.
pub fn emf_line(function: &str, e: &Explained, timestamp_ms: i64) -> Value {
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": "RollbackGuard/Insight",
                "Dimensions": [["FunctionName"]],
                "Metrics": [
                    { "Name": "InsightCount", "Unit": "Count" },
                    { "Name": "FallbackCount", "Unit": "Count" },
                    { "Name": "BedrockLatency", "Unit": "Milliseconds" },
                    { "Name": "InputTokens", "Unit": "Count" },
                    { "Name": "OutputTokens", "Unit": "Count" }
                ]
            }]
        },
        "FunctionName": function,
        "InsightCount": 1,
        "FallbackCount": u8::from(e.insight.source == InsightSource::Fallback),
        "BedrockLatency": if e.calls > 0 { e.latency_ms } else { 0 },
        "InputTokens": e.input_tokens,
        "OutputTokens": e.output_tokens,
        "prediction_type": e.insight.prediction_type,
        "risk_score": e.insight.risk_score,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(utilization: f64, latency: f64, baseline: f64, errors: f64) -> MetricSample {
        MetricSample {
            stream_id: "orders".into(),
            timestamp: "2026-11-20T03:00:00Z".into(),
            utilization,
            latency_ms: latency,
            baseline_latency_ms: baseline,
            error_rate: errors,
            dimensions: Map::new(),
        }
    }

    #[test]
    fn the_fallback_rules_follow_the_runbook_order() {
        let r = rules_for_sample(&sample(95.0, 900.0, 100.0, 20.0));
        assert_eq!(
            (r.prediction_type.as_str(), r.risk_score),
            ("resource_saturation", 85)
        );
        assert_eq!(r.confidence, 0.6);
        assert_eq!(r.source, InsightSource::Fallback);
        assert_eq!(
            rules_for_sample(&sample(50.0, 201.0, 100.0, 20.0)).prediction_type,
            "performance_degradation"
        );
        assert_eq!(
            rules_for_sample(&sample(50.0, 200.0, 100.0, 5.1)).prediction_type,
            "connection_instability"
        );
        let normal = rules_for_sample(&sample(90.0, 200.0, 100.0, 5.0));
        assert_eq!(normal.prediction_type, "normal");
        assert!(normal.risk_score < 30);
    }

    #[test]
    fn model_output_is_validated() {
        let good = json!({"prediction_type": "normal", "risk_score": 12, "explanation": "fine", "recommendations": ["none"], "confidence": 0.9});
        assert_eq!(parse_model_output(&good).expect("valid").risk_score, 12);
        for (field, bad) in [
            ("prediction_type", json!("weather")),
            ("risk_score", json!(101)),
            ("risk_score", json!(12.5)),
            ("confidence", json!(1.5)),
            ("recommendations", json!("one")),
            ("explanation", json!(null)),
        ] {
            let mut v = good.clone();
            v[field] = bad;
            assert!(parse_model_output(&v).is_err(), "{field} accepted");
        }
    }

    #[test]
    fn samples_are_validated() {
        assert!(sample(50.0, 1.0, 1.0, 1.0).validate().is_ok());
        assert!(sample(150.0, 1.0, 1.0, 1.0)
            .validate()
            .expect_err("too high")
            .contains("utilization"));
        assert!(sample(50.0, f64::NAN, 1.0, 1.0).validate().is_err());
        let mut s = sample(50.0, 1.0, 1.0, 1.0);
        s.stream_id = " ".into();
        assert!(s.validate().is_err());
    }

    #[test]
    fn the_emf_line_counts_fallbacks_and_tokens() {
        let e = Explained {
            insight: rules_for_sample(&sample(95.0, 1.0, 1.0, 0.0)),
            calls: 4,
            latency_ms: 7000,
            input_tokens: 0,
            output_tokens: 0,
            fallback_reason: Some("throttled".into()),
        };
        let line = emf_line("ai-insight", &e, 1);
        assert_eq!(line["FallbackCount"], 1);
        assert_eq!(line["InsightCount"], 1);
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "RollbackGuard/Insight"
        );
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .map(Vec::len),
            Some(5)
        );
    }
}
