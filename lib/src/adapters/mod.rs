//! The SDK adapters, one per port, and the one place the SDK clients are built.

use crate::guard::Guard;
use crate::home::Home;
use crate::ports::{AccountPorts, PortError, Ports, SystemClock};
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use aws_sdk_lambda::config::http::HttpResponse;
use aws_sdk_lambda::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use std::sync::Arc;
use std::time::Duration;

mod alarm_setup;
mod announce;
mod bedrock;
mod cloudwatch;
mod codedeploy;
mod lambda;
mod members;
mod policy_store;
mod queue;
mod replays;
mod state;

pub use alarm_setup::CloudWatchAlarmSetup;
pub use announce::{EventBridgeAuditBus, SnsNotifier};
pub use aws_config::SdkConfig;
pub use bedrock::{from_document, guard_insights, to_document, BedrockInsightModel};
pub use cloudwatch::CloudWatchAlarmStates;
pub use codedeploy::CodeDeployDeployments;
pub use lambda::{LambdaAliasManager, LambdaFunctionSettings};
pub use members::AssumeRoleMembers;
pub use policy_store::{load_policy, policy_text, url_escape};
pub use queue::SqsAlarmQueue;
pub use replays::EventBridgeReplays;
pub use state::{DynamoState, ENV_STATE_TABLE};
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
        .map_err(|e| match &e {
            aws_sdk_sts::error::SdkError::DispatchFailure(_)
            | aws_sdk_sts::error::SdkError::TimeoutError(_) => format!(
                "cannot reach AWS to learn which account these credentials are in (sts:GetCallerIdentity{}): {}. Check the credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID) and the network, or AWS_ENDPOINT_URL",
                config
                    .endpoint_url()
                    .map(|u| format!(" at {u}"))
                    .unwrap_or_default(),
                e
            ),
            _ => format!(
                "AWS refused sts:GetCallerIdentity (the credentials are not valid?): {}",
                DisplayErrorContext(&e)
            ),
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

/// The IAM identity `config`'s credentials are (STS `GetCallerIdentity`): who sends a
/// request.
pub async fn caller_arn(config: &SdkConfig) -> Result<String, String> {
    aws_sdk_sts::Client::new(config)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| {
            format!(
                "cannot learn who sends (sts:GetCallerIdentity): {}",
                DisplayErrorContext(&e)
            )
        })?
        .arn()
        .map(str::to_string)
        .ok_or_else(|| "sts:GetCallerIdentity named no identity".to_string())
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

/// The state table `GUARD_STATE_TABLE` names (the template's `StateTable`), if it names one.
pub fn state_table() -> Option<String> {
    std::env::var(ENV_STATE_TABLE)
        .ok()
        .filter(|t| !t.is_empty())
}

/// Where the guard remembers what it did: the state table all its instances (and its
/// operators' commands) share, when `GUARD_STATE_TABLE` names one; else this process's memory,
/// which no other instance sees (local runs only: the function warns at its cold start).
pub fn state_store(config: &SdkConfig) -> Arc<dyn crate::ports::StateStore> {
    match state_table() {
        Some(table) => Arc::new(DynamoState::new(
            aws_sdk_dynamodb::Client::new(config),
            &table,
        )),
        None => Arc::new(crate::fakes::FakeState::default()),
    }
}

/// The real backends, built once (per cold start).
pub fn aws_ports(config: &SdkConfig) -> Ports {
    let here = account_ports(config);
    Ports {
        aliases: here.aliases,
        functions: here.functions,
        alarms: here.alarms,
        deployments: here.deployments,
        notifier: Arc::new(SnsNotifier::new(aws_sdk_sns::Client::new(config))),
        audit: Arc::new(EventBridgeAuditBus::new(aws_sdk_eventbridge::Client::new(
            config,
        ))),
        state: state_store(config),
        clock: Arc::new(SystemClock),
    }
}

/// The ports that act in the account `config`'s credentials are in (a member's, through its
/// role).
pub fn account_ports(config: &SdkConfig) -> AccountPorts {
    let lambda = aws_sdk_lambda::Client::new(config);
    AccountPorts {
        aliases: Arc::new(LambdaAliasManager::new(lambda.clone())),
        functions: Arc::new(LambdaFunctionSettings::new(lambda)),
        alarms: Arc::new(CloudWatchAlarmStates::new(aws_sdk_cloudwatch::Client::new(
            config,
        ))),
        deployments: Arc::new(CodeDeployDeployments::new(aws_sdk_codedeploy::Client::new(
            config,
        ))),
    }
}

/// CloudWatch as the operator's commands change it and read its metrics.
pub fn alarm_setup(config: &SdkConfig) -> Arc<dyn crate::ports::AlarmSetup> {
    Arc::new(CloudWatchAlarmSetup::new(aws_sdk_cloudwatch::Client::new(
        config,
    )))
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
                "AccessDeniedException" | "AccessDenied" | "UnauthorizedOperation" => {
                    PortError::Denied(text)
                }
                _ if status == 403 => PortError::Denied(text),
                _ if status == 429 => PortError::Throttled(text),
                _ if status >= 500 => PortError::Transient(text),
                _ => PortError::Other(text),
            }
        }
        _ => PortError::Other(text),
    }
}
