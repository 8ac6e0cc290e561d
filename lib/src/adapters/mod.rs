//! The SDK adapters, one per port, and the one place the SDK clients are built.

use crate::ai::{FunctionConfig, UpdateStatus};
use crate::guard::Guard;
use crate::home::Home;
use crate::insight::{
    tool_schema, ConfigError, InsightEngine, InsightModel, InsightRequest, ModelConfig, ModelError,
    ModelReply, TEMPERATURE, TOOL_NAME,
};
use crate::notify::{AuditEvent, Notification};
use crate::policy::AlarmPattern;
use crate::ports::Ports;
use crate::ports::{
    AlarmNow, AlarmStates, AlarmStatus, AliasManager, AuditBus, FunctionSettings, Notifier,
    PortError, SystemClock,
};
use crate::rollback::AliasState;
use crate::transition::{AlarmArn, AlarmState, Suppression, SuppressionKind};
use crate::watched::{watched, MetricDimensions, Watched};
use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use aws_sdk_lambda::config::http::HttpResponse;
use aws_sdk_lambda::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod claims;
mod members;

pub use aws_config::SdkConfig;
pub use claims::{DynamoClaims, ENV_CLAIM_TABLE};
pub use members::AssumeRoleMembers;
/// The EventBridge client, for functions that build an [`EventBridgeAuditBus`] themselves.
pub type EventBridgeClient = aws_sdk_eventbridge::Client;

/// One attempt of one call may take this long before it counts as a (retryable) timeout.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// The shared SDK configuration: region, credentials and `AWS_ENDPOINT_URL` from the
/// environment. The SDK's own retries are off: `RetryPolicy` is the one schedule in force.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(shared_http_client())
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .build(),
        )
        .load()
        .await
}

/// The HTTP client every SDK client built from [`sdk_config`] shares (member accounts' too):
/// the SDK's default stack (hyper, rustls with aws-lc), built once. Left to itself the SDK
/// builds one per client, with its own pool and TLS context: measured on the emulator, about
/// 220 KB an account's clients instead of about 40.
pub fn shared_http_client() -> aws_sdk_lambda::config::SharedHttpClient {
    use aws_smithy_http_client::tls;
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .build_https()
}

/// Where the credentials of `config` act: the account STS `GetCallerIdentity` names (its
/// partition from the caller's ARN) and the configuration's region. For the CLI, and for the
/// guard function only when an invocation names no function ARN (local runtimes): in Lambda
/// it reads its home from the invoked function's ARN, with no call.
pub async fn home(config: &SdkConfig) -> Result<Home, String> {
    let region = config
        .region()
        .map(|r| r.to_string())
        .ok_or("no AWS region is configured (AWS_REGION or the profile's region)")?;
    let me = aws_sdk_sts::Client::new(config)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| {
            format!(
                "cannot learn the account the guard runs in (sts:GetCallerIdentity): {}",
                DisplayErrorContext(&e)
            )
        })?;
    let account = me
        .account()
        .ok_or("sts:GetCallerIdentity named no account")?;
    let partition = me
        .arn()
        .and_then(|arn| arn.split(':').nth(1))
        .unwrap_or("aws");
    Home::in_partition(partition, account, &region)
}

/// `guard` with clients for its member accounts, made on first use from `config`, when its
/// policy names `guard.member_role` (an organisation's guard); else `guard` as it is. The one
/// place the guard function and `guard replay` give a guard other accounts.
pub fn with_member_accounts(guard: Guard, config: &SdkConfig) -> Guard {
    if guard.policy().guard.member_role.is_none() {
        return guard;
    }
    let members = Arc::new(AssumeRoleMembers::new(config, guard.home()));
    guard.with_members(members)
}

/// The claim table all the guard's instances share, when `GUARD_CLAIM_TABLE` names one (the
/// template's `ClaimTable`); without, each guard keeps its claims in memory.
pub fn shared_claims(config: &SdkConfig) -> Option<Arc<dyn crate::claims::Claims>> {
    let table = std::env::var(ENV_CLAIM_TABLE)
        .ok()
        .filter(|t| !t.is_empty())?;
    Some(Arc::new(DynamoClaims::new(
        aws_sdk_dynamodb::Client::new(config),
        &table,
    )))
}

/// The real backends, built once (per cold start).
pub fn aws_ports(config: &SdkConfig) -> Ports {
    let lambda = aws_sdk_lambda::Client::new(config);
    Ports {
        aliases: Arc::new(LambdaAliasManager::new(lambda.clone())),
        functions: Arc::new(LambdaFunctionSettings::new(lambda)),
        alarms: Arc::new(CloudWatchAlarmStates::new(aws_sdk_cloudwatch::Client::new(
            config,
        ))),
        notifier: Arc::new(SnsNotifier::new(aws_sdk_sns::Client::new(config))),
        audit: Arc::new(EventBridgeAuditBus::new(aws_sdk_eventbridge::Client::new(
            config,
        ))),
        clock: Arc::new(SystemClock),
    }
}

/// Sorts an SDK error by what the guard can do about it.
pub fn port_error<E>(e: SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let text = DisplayErrorContext(&e).to_string();
    match &e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            PortError::Transient(text)
        }
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            match se.err().code().unwrap_or_default() {
                "TooManyRequestsException"
                | "ThrottlingException"
                | "Throttling"
                | "ThrottledException"
                | "RequestLimitExceeded" => PortError::Throttled(text),
                "ResourceConflictException" => PortError::Conflict(text),
                "PreconditionFailedException" => PortError::RevisionChanged(text),
                "ResourceNotFoundException" | "ResourceNotFound" | "NotFound" => {
                    PortError::NotFound(text)
                }
                _ if status == 429 => PortError::Throttled(text),
                _ if status >= 500 => PortError::Transient(text),
                _ => PortError::Other(text),
            }
        }
        _ => PortError::Other(text),
    }
}

/// An alarm as DescribeAlarms describes it, as the guard confirms it.
fn alarm_now(
    state: Option<&aws_sdk_cloudwatch::types::StateValue>,
    actions_enabled: Option<bool>,
    suppressed_by: Option<&str>,
    suppressor: Option<&str>,
) -> Result<Option<AlarmNow>, PortError> {
    let Some(state) = state else {
        return Ok(None);
    };
    let state = AlarmState::parse(state.as_str())
        .ok_or_else(|| PortError::Other(format!("unknown alarm state `{}`", state.as_str())))?;
    let kind = suppressed_by
        .map(SuppressionKind::parse)
        .transpose()
        .map_err(|why| PortError::Other(format!("ActionsSuppressedBy: {why}")))?
        .flatten();
    Ok(Some(AlarmNow {
        state,
        // The API leaves it out only where it does not apply; actions are on by default.
        actions_enabled: actions_enabled.unwrap_or(true),
        suppressed: kind.map(|kind| Suppression {
            kind,
            suppressor: suppressor.map(str::to_string),
        }),
    }))
}

pub struct LambdaAliasManager {
    client: aws_sdk_lambda::Client,
    /// Function name → ARN (tagging needs the ARN), resolved once per instance.
    arns: Mutex<HashMap<String, String>>,
}

impl LambdaAliasManager {
    pub fn new(client: aws_sdk_lambda::Client) -> Self {
        Self {
            client,
            arns: Mutex::new(HashMap::new()),
        }
    }

    async fn function_arn(&self, function: &str) -> Result<String, PortError> {
        if function.starts_with("arn:") {
            return Ok(function.to_string());
        }
        if let Some(arn) = self.arns.lock().ok().and_then(|m| m.get(function).cloned()) {
            return Ok(arn);
        }
        let out = self
            .client
            .get_function_configuration()
            .function_name(function)
            .send()
            .await
            .map_err(port_error)?;
        let arn = out
            .function_arn()
            .ok_or_else(|| PortError::Other(format!("no ARN returned for function {function}")))?
            .to_string();
        if let Ok(mut m) = self.arns.lock() {
            m.insert(function.to_string(), arn.clone());
        }
        Ok(arn)
    }
}

fn alias_state(
    version: Option<&str>,
    routing: Option<&aws_sdk_lambda::types::AliasRoutingConfiguration>,
    revision: Option<&str>,
) -> Result<AliasState, PortError> {
    let version =
        version.ok_or_else(|| PortError::Other("alias without a function version".into()))?;
    let weights = routing
        .and_then(|r| r.additional_version_weights())
        .map(|w| w.iter().map(|(k, v)| (k.clone(), *v)).collect())
        .unwrap_or_default();
    Ok(AliasState {
        version: version.to_string(),
        weights,
        revision_id: revision.map(str::to_string),
    })
}

#[async_trait]
impl AliasManager for LambdaAliasManager {
    async fn get_alias(&self, function: &str, alias: &str) -> Result<AliasState, PortError> {
        let out = self
            .client
            .get_alias()
            .function_name(function)
            .name(alias)
            .send()
            .await
            .map_err(port_error)?;
        alias_state(
            out.function_version(),
            out.routing_config(),
            out.revision_id(),
        )
    }

    async fn list_functions(&self) -> Result<Vec<String>, PortError> {
        let mut pages = self.client.list_functions().into_paginator().items().send();
        let mut names = Vec::new();
        while let Some(item) = pages.next().await {
            if let Some(name) = item.map_err(port_error)?.function_name() {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }

    async fn list_versions(&self, function: &str) -> Result<Vec<String>, PortError> {
        let mut pages = self
            .client
            .list_versions_by_function()
            .function_name(function)
            .into_paginator()
            .items()
            .send();
        let mut versions = Vec::new();
        while let Some(item) = pages.next().await {
            let config = item.map_err(port_error)?;
            if let Some(v) = config.version().filter(|v| *v != "$LATEST") {
                versions.push(v.to_string());
            }
        }
        Ok(versions)
    }

    async fn update_alias(
        &self,
        function: &str,
        alias: &str,
        to: &AliasState,
        expected_revision: Option<&str>,
    ) -> Result<AliasState, PortError> {
        // An empty weight map removes the canary routing.
        let routing = aws_sdk_lambda::types::AliasRoutingConfiguration::builder()
            .set_additional_version_weights(Some(
                to.weights.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            ))
            .build();
        let out = self
            .client
            .update_alias()
            .function_name(function)
            .name(alias)
            .function_version(&to.version)
            .routing_config(routing)
            .set_revision_id(expected_revision.map(str::to_string))
            .send()
            .await
            .map_err(port_error)?;
        alias_state(
            out.function_version(),
            out.routing_config(),
            out.revision_id(),
        )
    }

    async fn tags(&self, function: &str) -> Result<BTreeMap<String, String>, PortError> {
        // GetFunction, not ListTags: its own quota (100/s), and the ARN tagging needs with it.
        let out = self
            .client
            .get_function()
            .function_name(function)
            .send()
            .await
            .map_err(port_error)?;
        // Tags come back only with lambda:ListTags allowed; when they cannot be read the
        // answer says why instead. No tags read is not "no record", nor "not opted in".
        if let Some(e) = out.tags_error() {
            return Err(PortError::Other(format!(
                "GetFunction could not read {function}'s tags: {}: {}",
                e.error_code(),
                e.message()
            )));
        }
        if let (Some(arn), Ok(mut arns)) = (
            out.configuration().and_then(|c| c.function_arn()),
            self.arns.lock(),
        ) {
            arns.insert(function.to_string(), arn.to_string());
        }
        Ok(out
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default())
    }

    async fn is_published(&self, function: &str, version: &str) -> Result<bool, PortError> {
        let out = self
            .client
            .get_function()
            .function_name(function)
            .qualifier(version)
            .send()
            .await
            .map_err(port_error);
        match out {
            Ok(out) => Ok(out
                .configuration()
                .and_then(|c| c.version())
                .is_some_and(|v| v == version)),
            Err(PortError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn tag(&self, function: &str, tags: &BTreeMap<String, String>) -> Result<(), PortError> {
        let arn = self.function_arn(function).await?;
        self.client
            .tag_resource()
            .resource(arn)
            .set_tags(Some(
                tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            ))
            .send()
            .await
            .map_err(port_error)?;
        Ok(())
    }
}

pub struct LambdaFunctionSettings {
    client: aws_sdk_lambda::Client,
}

impl LambdaFunctionSettings {
    pub fn new(client: aws_sdk_lambda::Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl FunctionSettings for LambdaFunctionSettings {
    async fn get_config(
        &self,
        function: &str,
        qualifier: Option<&str>,
    ) -> Result<FunctionConfig, PortError> {
        use aws_sdk_lambda::types::LastUpdateStatus;
        let out = self
            .client
            .get_function_configuration()
            .function_name(function)
            .set_qualifier(qualifier.map(str::to_string))
            .send()
            .await
            .map_err(port_error)?;
        let env = out.environment();
        let last_update_status = match out.last_update_status() {
            Some(LastUpdateStatus::InProgress) => UpdateStatus::InProgress,
            Some(LastUpdateStatus::Failed) => UpdateStatus::Failed(
                out.last_update_status_reason()
                    .unwrap_or("no reason given")
                    .to_string(),
            ),
            // Functions created before the field existed report none: they are settled.
            _ => UpdateStatus::Successful,
        };
        Ok(FunctionConfig {
            version: out
                .version()
                .unwrap_or(qualifier.unwrap_or("$LATEST"))
                .to_string(),
            code_sha256: out.code_sha256().unwrap_or_default().to_string(),
            revision_id: out.revision_id().map(str::to_string),
            variables: env
                .and_then(|e| e.variables())
                .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
            environment_error: env.and_then(|e| e.error()).map(|e| {
                format!(
                    "{}: {}",
                    e.error_code().unwrap_or("Error"),
                    e.message().unwrap_or("")
                )
            }),
            memory_size: out.memory_size(),
            timeout: out.timeout(),
            layers: out
                .layers()
                .iter()
                .filter_map(|l| l.arn().map(str::to_string))
                .collect(),
            kms_key_arn: out.kms_key_arn().map(str::to_string),
            runtime: out.runtime().map(|r| r.as_str().to_string()),
            handler: out.handler().map(str::to_string),
            role: out.role().map(str::to_string),
            last_update_status,
        })
    }

    async fn set_environment(
        &self,
        function: &str,
        variables: &BTreeMap<String, String>,
        expected_revision: Option<&str>,
    ) -> Result<(), PortError> {
        // Only `Environment` is sent: Lambda leaves every parameter not given as it is.
        let env = aws_sdk_lambda::types::Environment::builder()
            .set_variables(Some(
                variables
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ))
            .build();
        self.client
            .update_function_configuration()
            .function_name(function)
            .environment(env)
            .set_revision_id(expected_revision.map(str::to_string))
            .send()
            .await
            .map_err(port_error)?;
        Ok(())
    }

    async fn publish_version(
        &self,
        function: &str,
        code_sha256: &str,
        expected_revision: Option<&str>,
        description: &str,
    ) -> Result<String, PortError> {
        let out = self
            .client
            .publish_version()
            .function_name(function)
            .code_sha256(code_sha256)
            .set_revision_id(expected_revision.map(str::to_string))
            .description(description)
            .send()
            .await
            .map_err(port_error)?;
        out.version().map(str::to_string).ok_or_else(|| {
            PortError::Other(format!("PublishVersion on {function} returned no version"))
        })
    }
}

pub struct CloudWatchAlarmStates {
    client: aws_sdk_cloudwatch::Client,
}

impl CloudWatchAlarmStates {
    pub fn new(client: aws_sdk_cloudwatch::Client) -> Self {
        Self { client }
    }
}

/// What a metric alarm's metrics name: its one metric's dimensions, or each metric of its
/// metric math (expressions have none).
fn metric_alarm_watched(alarm: &aws_sdk_cloudwatch::types::MetricAlarm) -> Watched {
    let pairs = |dims: &[aws_sdk_cloudwatch::types::Dimension]| {
        let pairs: Vec<(String, String)> = dims
            .iter()
            .filter_map(|d| Some((d.name()?.to_string(), d.value()?.to_string())))
            .collect();
        pairs
    };
    let metrics: Vec<Vec<(String, String)>> = if alarm.metrics().is_empty() {
        vec![pairs(alarm.dimensions())]
    } else {
        alarm
            .metrics()
            .iter()
            .filter_map(|q| q.metric_stat()?.metric())
            .map(|m| pairs(m.dimensions()))
            .collect()
    };
    let dims: Vec<MetricDimensions> = metrics
        .iter()
        .map(|m| MetricDimensions::of(m.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
        .collect();
    watched(&dims)
}

#[async_trait]
impl AlarmStates for CloudWatchAlarmStates {
    async fn alarm_state(&self, alarm_arn: &str) -> Result<Option<AlarmNow>, PortError> {
        let mut one = self.alarm_states(&[alarm_arn.to_string()]).await?;
        Ok(one.pop().flatten())
    }

    async fn alarm_states(
        &self,
        alarm_arns: &[String],
    ) -> Result<Vec<Option<AlarmNow>>, PortError> {
        use aws_sdk_cloudwatch::types::AlarmType;
        let mut names = Vec::with_capacity(alarm_arns.len());
        for arn in alarm_arns {
            let name = AlarmArn::parse(arn)
                .ok_or_else(|| PortError::Other(format!("`{arn}` is not an alarm ARN")))?
                .name;
            if !names.contains(&name) {
                names.push(name);
            }
        }
        let mut metric = Vec::new();
        let mut composite = Vec::new();
        // DescribeAlarms takes up to 100 names a call.
        for chunk in names.chunks(100) {
            let mut pages = self
                .client
                .describe_alarms()
                .set_alarm_names(Some(chunk.iter().map(|n| n.to_string()).collect()))
                .alarm_types(AlarmType::MetricAlarm)
                .alarm_types(AlarmType::CompositeAlarm)
                .max_records(100)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(port_error)?;
                metric.extend(page.metric_alarms().iter().cloned());
                composite.extend(page.composite_alarms().iter().cloned());
            }
        }
        // DescribeAlarms answers for the client's account and region: an alarm of the same
        // name there is another alarm, and its ARN says so.
        alarm_arns
            .iter()
            .map(|arn| {
                let metric = metric.iter().find(|a| a.alarm_arn() == Some(arn.as_str()));
                let composite = composite
                    .iter()
                    .find(|a| a.alarm_arn() == Some(arn.as_str()));
                // Only composite alarms have an actions suppressor.
                let (state, actions_enabled, suppressed_by, suppressor) = match (metric, composite)
                {
                    (Some(a), _) => (a.state_value(), a.actions_enabled(), None, None),
                    (None, Some(a)) => (
                        a.state_value(),
                        a.actions_enabled(),
                        a.actions_suppressed_by().map(|s| s.as_str()),
                        a.actions_suppressor(),
                    ),
                    (None, None) => return Ok(None),
                };
                alarm_now(state, actions_enabled, suppressed_by, suppressor)
            })
            .collect()
    }

    async fn alarms(&self, pattern: &AlarmPattern) -> Result<Vec<AlarmStatus>, PortError> {
        use aws_sdk_cloudwatch::types::AlarmType;
        let request = self
            .client
            .describe_alarms()
            .alarm_types(AlarmType::MetricAlarm)
            .alarm_types(AlarmType::CompositeAlarm);
        let request = match pattern {
            AlarmPattern::Exact(name) => request.alarm_names(name),
            AlarmPattern::Prefix(prefix) => request.alarm_name_prefix(prefix),
        };
        let mut pages = request.into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(port_error)?;
            let metric = page.metric_alarms().iter().map(|a| {
                (
                    a.alarm_name(),
                    a.state_value().map(|s| s.as_str()),
                    a.state_updated_timestamp(),
                    a.actions_enabled(),
                    metric_alarm_watched(a),
                )
            });
            let composite = page.composite_alarms().iter().map(|a| {
                (
                    a.alarm_name(),
                    a.state_value().map(|s| s.as_str()),
                    a.state_updated_timestamp(),
                    a.actions_enabled(),
                    Watched::NoMetrics,
                )
            });
            for (name, state, since, actions_enabled, watched) in metric.chain(composite) {
                let (Some(name), Some(state)) = (name, state.and_then(AlarmState::parse)) else {
                    continue;
                };
                let since = since
                    .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
                    .unwrap_or_default();
                out.push(AlarmStatus {
                    name: name.to_string(),
                    state,
                    since,
                    actions_enabled: actions_enabled.unwrap_or(true),
                    watched,
                });
            }
        }
        Ok(out)
    }
}

pub struct SnsNotifier {
    client: aws_sdk_sns::Client,
}

impl SnsNotifier {
    pub fn new(client: aws_sdk_sns::Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl Notifier for SnsNotifier {
    async fn publish(&self, topic_arn: &str, n: &Notification) -> Result<(), PortError> {
        let mut request = self
            .client
            .publish()
            .topic_arn(topic_arn)
            .subject(&n.subject)
            .message(&n.message);
        for (k, v) in &n.attributes {
            let value = aws_sdk_sns::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .map_err(|e| PortError::Other(e.to_string()))?;
            request = request.message_attributes(k, value);
        }
        request.send().await.map_err(port_error)?;
        Ok(())
    }
}

pub struct EventBridgeAuditBus {
    client: aws_sdk_eventbridge::Client,
}

impl EventBridgeAuditBus {
    pub fn new(client: aws_sdk_eventbridge::Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl AuditBus for EventBridgeAuditBus {
    async fn put(&self, bus: &str, e: &AuditEvent) -> Result<(), PortError> {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .source(&e.source)
            .detail_type(&e.detail_type)
            .detail(e.detail.to_string())
            .event_bus_name(bus)
            .set_resources(Some(e.resources.clone()))
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(port_error)?;
        if out.failed_entry_count() > 0 {
            let failed = out.entries().iter().find(|x| x.error_code().is_some());
            let code = failed.and_then(|x| x.error_code()).unwrap_or("unknown");
            let message = failed.and_then(|x| x.error_message()).unwrap_or("");
            let text = format!("PutEvents entry failed: {code}: {message}");
            return Err(if code.contains("Throttl") {
                PortError::Throttled(text)
            } else {
                PortError::Other(text)
            });
        }
        Ok(())
    }
}

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
            E::ValidationException(_)
            | E::AccessDeniedException(_)
            | E::ResourceNotFoundException(_) => ModelError::Permanent(text),
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

/// EventBridge archive replays, for `guard backtest`: last week's incidents through the
/// policy again, as shadow runs (replayed events carry `replay-name`).
pub struct EventBridgeReplays {
    client: aws_sdk_eventbridge::Client,
}

impl EventBridgeReplays {
    pub fn new(client: aws_sdk_eventbridge::Client) -> Self {
        Self { client }
    }

    /// Starts replaying `archive`'s events from `from` to `to` onto the bus they were
    /// archived from. Returns the replay's state.
    pub async fn start(
        &self,
        archive: &str,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
        name: &str,
    ) -> Result<String, PortError> {
        let described = self
            .client
            .describe_archive()
            .archive_name(archive)
            .send()
            .await
            .map_err(port_error)?;
        let (Some(archive_arn), Some(bus_arn)) =
            (described.archive_arn(), described.event_source_arn())
        else {
            return Err(PortError::Other(format!(
                "archive {archive} has no ARN or source bus"
            )));
        };
        let out = self
            .client
            .start_replay()
            .replay_name(name)
            .event_source_arn(archive_arn)
            .event_start_time(aws_smithy_types::DateTime::from_secs(from.timestamp()))
            .event_end_time(aws_smithy_types::DateTime::from_secs(to.timestamp()))
            .destination(
                aws_sdk_eventbridge::types::ReplayDestination::builder()
                    .arn(bus_arn)
                    .build()
                    .map_err(|e| PortError::Other(e.to_string()))?,
            )
            .send()
            .await
            .map_err(port_error)?;
        Ok(out
            .state()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default())
    }

    /// The replay's state and, when it failed, why.
    pub async fn state(&self, name: &str) -> Result<(String, Option<String>), PortError> {
        let out = self
            .client
            .describe_replay()
            .replay_name(name)
            .send()
            .await
            .map_err(port_error)?;
        Ok((
            out.state()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            out.state_reason().map(str::to_string),
        ))
    }
}
