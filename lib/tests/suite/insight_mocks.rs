//! The insight path through the real Bedrock Runtime client under aws-smithy-mocks: the retry
//! schedule (1 s, 2 s, 4 s, scaled down here), which errors are retried and which are not, and
//! the request itself (temperature, forced tool, schema).

use aws_sdk_bedrockruntime::operation::converse::{
    ConverseError, ConverseInput, ConverseOutput as Out,
};
use aws_sdk_bedrockruntime::types::error::{ThrottlingException, ValidationException};
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ConversationRole, ConverseOutput, Message, StopReason, TokenUsage, ToolUseBlock,
};
use aws_sdk_bedrockruntime::Client;
use aws_smithy_mocks::{mock, mock_client, MockResponse, Rule, RuleMode};
use rollback_guard::adapters::{from_document, to_document, BedrockInsightModel};
use rollback_guard::insight::{
    rules_for_incident, tool_schema, Explained, InsightEngine, InsightRequest, InsightSettings,
    InsightSource, TOOL_NAME,
};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

fn reply() -> Out {
    let input = json!({
        "prediction_type": "performance_degradation",
        "risk_score": 82,
        "explanation": "p95 latency doubled after version 3",
        "recommendations": ["roll back to version 2"],
        "confidence": 0.85
    });
    let tool_use = ToolUseBlock::builder()
        .tool_use_id("tooluse_1")
        .name(TOOL_NAME)
        .input(to_document(&input))
        .build()
        .expect("tool use");
    let message = Message::builder()
        .role(ConversationRole::Assistant)
        .content(ContentBlock::ToolUse(tool_use))
        .build()
        .expect("message");
    Out::builder()
        .output(ConverseOutput::Message(message))
        .stop_reason(StopReason::ToolUse)
        .usage(
            TokenUsage::builder()
                .input_tokens(120)
                .output_tokens(40)
                .total_tokens(160)
                .build()
                .expect("usage"),
        )
        .build()
        .expect("output")
}

fn throttled() -> ConverseError {
    ConverseError::ThrottlingException(
        ThrottlingException::builder()
            .message("Too many requests")
            .build(),
    )
}

/// What each call saw: when it came (paused clock) and the request.
type Calls = Arc<Mutex<Vec<(Instant, ConverseInput)>>>;

/// A rule answering call n (0-based) with `answer(n)`, recording each call.
fn scripted(calls: &Calls, answer: fn(usize) -> MockResponse<Out, ConverseError>) -> Rule {
    let calls = calls.clone();
    mock!(Client::converse).then_compute_response(move |req| {
        let mut c = calls.lock().expect("calls");
        c.push((Instant::now(), req.clone()));
        answer(c.len() - 1)
    })
}

const BASE: Duration = Duration::from_millis(100);

async fn explain(rule: &Rule) -> Explained {
    let client = mock_client!(aws_sdk_bedrockruntime, RuleMode::MatchAny, &[rule], |c| c
        .retry_config(aws_sdk_bedrockruntime::config::retry::RetryConfig::disabled()));
    let model = BedrockInsightModel::new(client, "anthropic.claude-3-haiku-20240307-v1:0", 400);
    let settings = InsightSettings {
        enabled: true,
        budget: Duration::from_secs(60),
        base_delay: BASE,
        max_retries: 3,
    };
    let engine = InsightEngine::new(Arc::new(model), settings);
    let request = InsightRequest {
        system: "sys".into(),
        prompt: "alarm orders-ai-latency".into(),
    };
    engine
        .explain(
            &request,
            rules_for_incident("orders-ai-latency", "p95 above 2 s"),
        )
        .await
}

fn gaps(calls: &Calls) -> Vec<Duration> {
    let c = calls.lock().expect("calls");
    c.windows(2).map(|w| w[1].0 - w[0].0).collect()
}

#[tokio::test(start_paused = true)]
async fn two_throttles_then_success_is_three_calls_and_a_model_insight() {
    let calls = Calls::default();
    let rule = scripted(&calls, |n| {
        if n < 2 {
            MockResponse::Error(throttled())
        } else {
            MockResponse::Output(reply())
        }
    });
    let e = explain(&rule).await;
    assert_eq!(e.calls, 3);
    assert_eq!(e.insight.source, InsightSource::Model);
    assert_eq!(e.insight.risk_score, 82);
    assert_eq!((e.input_tokens, e.output_tokens), (120, 40));
    assert_eq!(gaps(&calls), vec![BASE, BASE * 2]);
}

#[tokio::test(start_paused = true)]
async fn validation_errors_are_not_retried_and_fall_back() {
    let calls = Calls::default();
    let rule = scripted(&calls, |_| {
        MockResponse::Error(ConverseError::ValidationException(
            ValidationException::builder().message("bad").build(),
        ))
    });
    let e = explain(&rule).await;
    assert_eq!(e.calls, 1);
    assert_eq!(e.insight.source, InsightSource::Fallback);
    assert_eq!(e.insight.confidence, 0.6);
    assert!(
        e.fallback_reason
            .as_deref()
            .unwrap_or("")
            .contains("ValidationException"),
        "{:?}",
        e.fallback_reason
    );
}

/// The template's `Explain` grant does not match the model (an inference profile's ID with the
/// foundation model's grant, another region): AccessDenied on Converse is not retried, and the
/// fallback says "model access denied" and what to grant, not "model failed".
#[tokio::test(start_paused = true)]
async fn access_denied_is_said_as_such_and_not_retried() {
    use aws_sdk_bedrockruntime::types::error::AccessDeniedException;
    let calls = Calls::default();
    let rule = scripted(&calls, |_| {
        MockResponse::Error(ConverseError::AccessDeniedException(
            AccessDeniedException::builder()
                .message("User: arn:aws:sts::123456789012:assumed-role/rg-guard/x is not authorized to perform: bedrock:InvokeModel on resource: arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20241022-v2:0")
                .build(),
        ))
    });
    let e = explain(&rule).await;
    assert_eq!(e.calls, 1);
    assert_eq!(e.insight.source, InsightSource::Fallback);
    let why = e.fallback_reason.unwrap_or_default();
    assert!(why.starts_with("model access denied:"), "{why}");
    assert!(why.contains("inference profile"), "{why}");
    assert!(!why.contains("model call failed"), "{why}");
}

#[tokio::test(start_paused = true)]
async fn four_throttles_are_four_calls_on_the_1_2_4_schedule_then_the_fallback() {
    let calls = Calls::default();
    let rule = scripted(&calls, |_| MockResponse::Error(throttled()));
    let e = explain(&rule).await;
    assert_eq!(e.calls, 4);
    assert_eq!(e.insight.source, InsightSource::Fallback);
    assert_eq!(gaps(&calls), vec![BASE, BASE * 2, BASE * 4]);
}

#[tokio::test(start_paused = true)]
async fn malformed_model_output_counts_as_a_failure() {
    let calls = Calls::default();
    let rule = scripted(&calls, |_| {
        let mut out = reply();
        if let Some(ConverseOutput::Message(m)) = out.output.as_mut() {
            m.content = vec![ContentBlock::Text("I think it is fine".into())];
        }
        MockResponse::Output(out)
    });
    let e = explain(&rule).await;
    assert_eq!(e.insight.source, InsightSource::Fallback);
    assert!(
        e.fallback_reason
            .as_deref()
            .unwrap_or("")
            .contains("did not call"),
        "{:?}",
        e.fallback_reason
    );
}

#[tokio::test(start_paused = true)]
async fn the_request_has_temperature_0_3_and_forces_the_insight_tool_with_its_schema() {
    let calls = Calls::default();
    let rule = scripted(&calls, |_| MockResponse::Output(reply()));
    explain(&rule).await;
    let c = calls.lock().expect("calls");
    let req = &c[0].1;
    assert_eq!(
        req.inference_config().and_then(|i| i.temperature()),
        Some(0.3)
    );
    assert_eq!(
        req.inference_config().and_then(|i| i.max_tokens()),
        Some(400)
    );
    let tools = req.tool_config().expect("tool config");
    match tools.tool_choice() {
        Some(aws_sdk_bedrockruntime::types::ToolChoice::Tool(t)) => assert_eq!(t.name(), TOOL_NAME),
        other => panic!("tool choice not forced: {other:?}"),
    }
    match &tools.tools()[0] {
        aws_sdk_bedrockruntime::types::Tool::ToolSpec(spec) => {
            assert_eq!(spec.name(), TOOL_NAME);
            match spec.input_schema() {
                Some(aws_sdk_bedrockruntime::types::ToolInputSchema::Json(d)) => {
                    assert_eq!(from_document(d), tool_schema())
                }
                other => panic!("no JSON schema: {other:?}"),
            }
        }
        other => panic!("not a tool spec: {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn the_budget_bounds_the_whole_path() {
    let calls = Calls::default();
    let rule = scripted(&calls, |_| MockResponse::Error(throttled()));
    let client = mock_client!(aws_sdk_bedrockruntime, RuleMode::MatchAny, &[&rule], |c| c
        .retry_config(aws_sdk_bedrockruntime::config::retry::RetryConfig::disabled()));
    let settings = InsightSettings {
        enabled: true,
        budget: Duration::from_millis(250),
        base_delay: BASE,
        max_retries: 3,
    };
    let engine = InsightEngine::new(
        Arc::new(BedrockInsightModel::new(client, "m", 100)),
        settings,
    );
    let started = Instant::now();
    let e = engine
        .explain(
            &InsightRequest {
                system: "s".into(),
                prompt: "p".into(),
            },
            rules_for_incident("a", "b"),
        )
        .await;
    assert_eq!(e.insight.source, InsightSource::Fallback);
    assert!(
        e.fallback_reason
            .as_deref()
            .unwrap_or("")
            .contains("budget"),
        "{:?}",
        e.fallback_reason
    );
    assert_eq!(started.elapsed(), Duration::from_millis(250));
    // Calls at 0 and 100 ms; the third would have been at 300 ms.
    assert_eq!(e.calls, 2);
}
