//! Lambda: aliases, versions, tags (the function owners' declarations), configuration and
//! publishing.

use super::port_error;
use crate::ai::{FunctionConfig, UpdateStatus};
use crate::ports::{AliasManager, FunctionSettings, PortError};
use crate::rollback::AliasState;
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

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

    /// The configuration of published `version` (`GetFunction`, its own quota); `None` when
    /// it is not one (not found, or the qualifier named something else).
    async fn version_config(
        &self,
        function: &str,
        version: &str,
    ) -> Result<Option<aws_sdk_lambda::types::FunctionConfiguration>, PortError> {
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
                .filter(|c| c.version() == Some(version))
                .cloned()),
            Err(PortError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
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
        // answer says why instead. No tags read is not "not opted in".
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
        Ok(self.version_config(function, version).await?.is_some())
    }

    async fn published_at(
        &self,
        function: &str,
        version: &str,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, PortError> {
        let Some(config) = self.version_config(function, version).await? else {
            return Ok(None);
        };
        let modified = config.last_modified().unwrap_or_default();
        crate::transition::parse_timestamp(modified)
            .map(Some)
            .ok_or_else(|| {
                PortError::Other(format!(
                    "version {version} of {function}: LastModified `{modified}` is not a time"
                ))
            })
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

    async fn untag(&self, function: &str, keys: &[String]) -> Result<(), PortError> {
        let arn = self.function_arn(function).await?;
        self.client
            .untag_resource()
            .resource(arn)
            .set_tag_keys(Some(keys.to_vec()))
            .send()
            .await
            .map_err(port_error)?;
        Ok(())
    }
}

/// The settings publishing copies into a version beyond those `FunctionConfig` names, each as
/// text (absent when not set). SnapStart's `ApplyOn` only: its optimisation status differs
/// between `$LATEST` and a published version by design.
fn published_settings(
    out: &aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput,
) -> BTreeMap<&'static str, String> {
    let mut settings = BTreeMap::new();
    if let Some(vpc) = out
        .vpc_config()
        .filter(|v| v.vpc_id().is_some_and(|id| !id.is_empty()))
    {
        settings.insert(
            "VPC",
            format!(
                "{} subnets {} security groups {} ipv6 {:?}",
                vpc.vpc_id().unwrap_or_default(),
                vpc.subnet_ids().join(","),
                vpc.security_group_ids().join(","),
                vpc.ipv6_allowed_for_dual_stack()
            ),
        );
    }
    if let Some(dlq) = out.dead_letter_config().and_then(|d| d.target_arn()) {
        settings.insert("dead-letter target", dlq.to_string());
    }
    if let Some(mode) = out.tracing_config().and_then(|t| t.mode()) {
        settings.insert("tracing", mode.as_str().to_string());
    }
    if let Some(size) = out.ephemeral_storage().map(|e| e.size()) {
        settings.insert("ephemeral storage", format!("{size} MB"));
    }
    if let Some(apply) = out.snap_start().and_then(|s| s.apply_on()) {
        settings.insert("SnapStart", apply.as_str().to_string());
    }
    if let Some(l) = out.logging_config() {
        settings.insert(
            "logging",
            format!(
                "{:?} {:?} {:?} {:?}",
                l.log_format(),
                l.application_log_level(),
                l.system_log_level(),
                l.log_group()
            ),
        );
    }
    let mounts: Vec<String> = out
        .file_system_configs()
        .iter()
        .map(|f| format!("{}:{}", f.arn(), f.local_mount_path()))
        .collect();
    if !mounts.is_empty() {
        settings.insert("file systems", mounts.join(","));
    }
    let architectures: Vec<&str> = out.architectures().iter().map(|a| a.as_str()).collect();
    if !architectures.is_empty() {
        settings.insert("architectures", architectures.join(","));
    }
    settings
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
            settings: published_settings(&out),
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
