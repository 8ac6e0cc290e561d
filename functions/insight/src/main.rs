use ai_insight::{Config, InsightService};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use rollback_guard::adapters::{self, BedrockInsightModel, EventBridgeAuditBus, EventBridgeClient};
use rollback_guard::insight::InsightEngine;
use rollback_guard::ports::SystemClock;
use serde_json::Value;
use std::sync::Arc;

// A Lambda instance takes one event at a time: one thread is enough (and starts faster, in
// less memory, than a worker pool).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let sdk = adapters::sdk_config().await;
    let bedrock = BedrockInsightModel::client(&sdk, config.model.settings.budget);
    let model = BedrockInsightModel::new(bedrock, &config.model.model_id, config.model.max_tokens);
    let engine = InsightEngine::new(Arc::new(model), config.model.settings);
    let bus = Arc::new(EventBridgeAuditBus::new(EventBridgeClient::new(&sdk)));
    let service = InsightService::new(config, engine, bus, Arc::new(SystemClock));
    run(service_fn(|event: LambdaEvent<Value>| {
        ai_insight::function_handler(event, &service)
    }))
    .await
}
