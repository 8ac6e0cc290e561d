//! Bedrock Runtime: the insight model (`Converse`, forced tool use).

use crate::insight::{
    tool_schema, ConfigError, InsightEngine, InsightModel, InsightRequest, ModelConfig, ModelError,
    ModelReply, TEMPERATURE, TOOL_NAME,
};
use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::SdkConfig;
use aws_sdk_lambda::config::http::HttpResponse;
use aws_sdk_lambda::error::{DisplayErrorContext, SdkError};
use std::sync::Arc;
use std::time::Duration;

/// The guard's insight path: the model named by `MODEL_ID` on Bedrock (budget
/// `INSIGHT_BUDGET_MS`, default 3 s: notifications wait for it, actions never do), or rules
/// only when `MODEL_ID` is not set or `AI_ENABLED` is false.
pub fn guard_insights(config: &SdkConfig) -> Result<InsightEngine, ConfigError> {
    let get = |k: &str| std::env::var(k).ok();
    if get("MODEL_ID").is_none() {
        return Ok(InsightEngine::rules_only());
    }
    let model = ModelConfig::from_lookup(&get, Duration::from_secs(3))?;
    let client = BedrockInsightModel::client(config, model.settings.budget);
    Ok(InsightEngine::new(
        Arc::new(BedrockInsightModel::new(
            client,
            &model.model_id,
            model.max_tokens,
        )),
        model.settings,
    ))
}

/// The insight model on Bedrock Runtime `Converse`: forced tool use whose input schema is
/// the insight, temperature 0.3, bounded output.
pub struct BedrockInsightModel {
    client: aws_sdk_bedrockruntime::Client,
    model_id: String,
    max_tokens: i32,
}

impl BedrockInsightModel {
    pub fn new(client: aws_sdk_bedrockruntime::Client, model_id: &str, max_tokens: i32) -> Self {
        Self {
            client,
            model_id: model_id.to_string(),
            max_tokens,
        }
    }

    /// A client for the insight path: the SDK's retries off (the insight path's schedule is
    /// the one in force) and each attempt bounded by the whole budget.
    pub fn client(config: &SdkConfig, budget: Duration) -> aws_sdk_bedrockruntime::Client {
        let conf = aws_sdk_bedrockruntime::config::Builder::from(config)
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_attempt_timeout(budget)
                    .build(),
            )
            .build();
        aws_sdk_bedrockruntime::Client::from_conf(conf)
    }
}

#[async_trait]
impl InsightModel for BedrockInsightModel {
    async fn converse(&self, request: &InsightRequest) -> Result<ModelReply, ModelError> {
        use aws_sdk_bedrockruntime::types::{
            ContentBlock, ConversationRole, ConverseOutput, InferenceConfiguration, Message,
            SpecificToolChoice, SystemContentBlock, Tool, ToolChoice, ToolConfiguration,
            ToolInputSchema, ToolSpecification,
        };
        let build =
            |e: aws_sdk_bedrockruntime::error::BuildError| ModelError::Permanent(e.to_string());
        let tool = ToolSpecification::builder()
            .name(TOOL_NAME)
            .description("Record the insight about the incident or sample.")
            .input_schema(ToolInputSchema::Json(to_document(&tool_schema())))
            .build()
            .map_err(build)?;
        let tools = ToolConfiguration::builder()
            .tools(Tool::ToolSpec(tool))
            .tool_choice(ToolChoice::Tool(
                SpecificToolChoice::builder()
                    .name(TOOL_NAME)
                    .build()
                    .map_err(build)?,
            ))
            .build()
            .map_err(build)?;
        let message = Message::builder()
            .role(ConversationRole::User)
            .content(ContentBlock::Text(request.prompt.clone()))
            .build()
            .map_err(build)?;
        let out = self
            .client
            .converse()
            .model_id(&self.model_id)
            .system(SystemContentBlock::Text(request.system.clone()))
            .messages(message)
            .inference_config(
                InferenceConfiguration::builder()
                    .temperature(TEMPERATURE)
                    .max_tokens(self.max_tokens)
                    .build(),
            )
            .tool_config(tools)
            .send()
            .await
            .map_err(model_error)?;
        let tool_input = match out.output() {
            Some(ConverseOutput::Message(m)) => m.content().iter().find_map(|b| match b {
                ContentBlock::ToolUse(t) if t.name() == TOOL_NAME => Some(from_document(t.input())),
                _ => None,
            }),
            _ => None,
        }
        .ok_or_else(|| ModelError::Permanent(format!("the model did not call `{TOOL_NAME}`")))?;
        let usage = out.usage();
        Ok(ModelReply {
            tool_input,
            input_tokens: usage.map_or(0, |u| u.input_tokens().max(0) as u64),
            output_tokens: usage.map_or(0, |u| u.output_tokens().max(0) as u64),
        })
    }
}

/// Sorts Bedrock's errors: transient ones are worth a retry, the rest are not.
fn model_error(
    e: SdkError<aws_sdk_bedrockruntime::operation::converse::ConverseError, HttpResponse>,
) -> ModelError {
    use aws_sdk_bedrockruntime::operation::converse::ConverseError as E;
    let text = DisplayErrorContext(&e).to_string();
    match &e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            ModelError::Retryable(text)
        }
        SdkError::ServiceError(se) => match se.err() {
            E::ThrottlingException(_)
            | E::ServiceUnavailableException(_)
            | E::ModelNotReadyException(_)
            | E::InternalServerException(_)
            | E::ModelTimeoutException(_) => ModelError::Retryable(text),
            E::AccessDeniedException(_) => ModelError::AccessDenied(text),
            E::ValidationException(_) | E::ResourceNotFoundException(_) => {
                ModelError::Permanent(text)
            }
            _ if se.raw().status().as_u16() >= 500 || se.raw().status().as_u16() == 429 => {
                ModelError::Retryable(text)
            }
            _ => ModelError::Permanent(text),
        },
        _ => ModelError::Permanent(text),
    }
}

/// serde_json to Smithy documents and back (the SDK's tool schema and tool input type).
pub fn to_document(v: &serde_json::Value) -> aws_smithy_types::Document {
    use aws_smithy_types::{Document, Number};
    match v {
        serde_json::Value::Null => Document::Null,
        serde_json::Value::Bool(b) => Document::Bool(*b),
        serde_json::Value::Number(n) => Document::Number(match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Number::PosInt(u),
            (None, Some(i)) => Number::NegInt(i),
            _ => Number::Float(n.as_f64().unwrap_or(0.0)),
        }),
        serde_json::Value::String(s) => Document::String(s.clone()),
        serde_json::Value::Array(a) => Document::Array(a.iter().map(to_document).collect()),
        serde_json::Value::Object(o) => {
            Document::Object(o.iter().map(|(k, v)| (k.clone(), to_document(v))).collect())
        }
    }
}

pub fn from_document(d: &aws_smithy_types::Document) -> serde_json::Value {
    use aws_smithy_types::{Document, Number};
    match d {
        Document::Null => serde_json::Value::Null,
        Document::Bool(b) => (*b).into(),
        Document::Number(Number::PosInt(u)) => (*u).into(),
        Document::Number(Number::NegInt(i)) => (*i).into(),
        Document::Number(Number::Float(f)) => {
            serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
        }
        Document::String(s) => s.clone().into(),
        Document::Array(a) => a.iter().map(from_document).collect(),
        Document::Object(o) => o
            .iter()
            .map(|(k, v)| (k.clone(), from_document(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
    }
}
