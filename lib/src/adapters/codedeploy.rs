//! CodeDeploy: the deployments shifting a Lambda alias (ListDeployments, then each one's
//! deployment target), stopped with their rollback, and followed until it is done.

use super::port_error;
use crate::ports::{DeploymentGroup, DeploymentNow, Deployments, PortError, Shift, Stopping};
use async_trait::async_trait;
use aws_sdk_codedeploy::error::SdkError;
use aws_sdk_codedeploy::operation::list_deployment_targets::ListDeploymentTargetsError;
use aws_sdk_codedeploy::operation::stop_deployment::StopDeploymentError;
use aws_sdk_codedeploy::types::DeploymentStatus;

/// The statuses of a deployment that may still shift an alias.
const UNFINISHED: [DeploymentStatus; 4] = [
    DeploymentStatus::Created,
    DeploymentStatus::Queued,
    DeploymentStatus::InProgress,
    DeploymentStatus::Ready,
];

pub struct CodeDeployDeployments {
    client: aws_sdk_codedeploy::Client,
}

impl CodeDeployDeployments {
    pub fn new(client: aws_sdk_codedeploy::Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl Deployments for CodeDeployDeployments {
    async fn unfinished(&self, group: Option<&DeploymentGroup>) -> Result<Vec<String>, PortError> {
        let mut ids = Vec::new();
        let mut next = None;
        loop {
            let mut call = self
                .client
                .list_deployments()
                .set_include_only_statuses(Some(UNFINISHED.to_vec()))
                .set_next_token(next.take());
            if let Some(g) = group {
                call = call
                    .application_name(&g.application)
                    .deployment_group_name(&g.group);
            }
            let out = call.send().await.map_err(port_error)?;
            ids.extend(out.deployments().iter().cloned());
            match out.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_string()),
                _ => return Ok(ids),
            }
        }
    }

    async fn shift(&self, deployment: &str) -> Result<Option<Shift>, PortError> {
        let targets = match self
            .client
            .list_deployment_targets()
            .deployment_id(deployment)
            .send()
            .await
        {
            Ok(out) => out.target_ids().to_vec(),
            Err(SdkError::ServiceError(e))
                if matches!(
                    e.err(),
                    ListDeploymentTargetsError::DeploymentNotStartedException(_)
                ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(port_error(e)),
        };
        // A Lambda deployment has one target: the function alias it shifts.
        for target in targets {
            let out = self
                .client
                .get_deployment_target()
                .deployment_id(deployment)
                .target_id(&target)
                .send()
                .await
                .map_err(port_error)?;
            let info = out
                .deployment_target()
                .and_then(|t| t.lambda_target())
                .and_then(|t| t.lambda_function_info());
            let Some(info) = info else { continue };
            let field = |v: Option<&str>, name: &str| {
                v.map(str::to_string).ok_or_else(|| {
                    PortError::Other(format!(
                        "deployment {deployment}'s Lambda target has no {name}"
                    ))
                })
            };
            return Ok(Some(Shift {
                deployment: deployment.to_string(),
                function: field(info.function_name(), "functionName")?,
                alias: field(info.function_alias(), "functionAlias")?,
                current_version: field(info.current_version(), "currentVersion")?,
                target_version: field(info.target_version(), "targetVersion")?,
            }));
        }
        Ok(None)
    }

    async fn stop(&self, deployment: &str) -> Result<Stopping, PortError> {
        match self
            .client
            .stop_deployment()
            .deployment_id(deployment)
            .auto_rollback_enabled(true)
            .send()
            .await
        {
            Ok(_) => Ok(Stopping::Stopping),
            Err(SdkError::ServiceError(e))
                if matches!(
                    e.err(),
                    StopDeploymentError::DeploymentAlreadyCompletedException(_)
                ) =>
            {
                Ok(Stopping::AlreadyCompleted)
            }
            Err(e) => Err(port_error(e)),
        }
    }

    async fn succeeded(
        &self,
        group: &DeploymentGroup,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<(String, chrono::DateTime<chrono::Utc>)>, PortError> {
        let range = aws_sdk_codedeploy::types::TimeRange::builder()
            .start(aws_smithy_types::DateTime::from_secs(since.timestamp()))
            .build();
        let out = self
            .client
            .list_deployments()
            .application_name(&group.application)
            .deployment_group_name(&group.group)
            .include_only_statuses(DeploymentStatus::Succeeded)
            .create_time_range(range)
            .send()
            .await
            .map_err(port_error)?;
        // BatchGetDeployments takes up to 25 ids: the first page's newest are enough to find
        // when the serving version went live.
        let ids: Vec<String> = out.deployments().iter().take(25).cloned().collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let out = self
            .client
            .batch_get_deployments()
            .set_deployment_ids(Some(ids))
            .send()
            .await
            .map_err(port_error)?;
        let mut ended: Vec<(String, chrono::DateTime<chrono::Utc>)> = out
            .deployments_info()
            .iter()
            .filter_map(|d| {
                let id = d.deployment_id()?.to_string();
                let at = d.complete_time()?;
                Some((
                    id,
                    chrono::DateTime::from_timestamp(at.secs(), at.subsec_nanos())?,
                ))
            })
            .collect();
        ended.sort_by_key(|e| std::cmp::Reverse(e.1));
        Ok(ended)
    }

    async fn deployment(&self, deployment: &str) -> Result<DeploymentNow, PortError> {
        let out = self
            .client
            .get_deployment()
            .deployment_id(deployment)
            .send()
            .await
            .map_err(port_error)?;
        let info = out.deployment_info().ok_or_else(|| {
            PortError::Other(format!("GetDeployment answered nothing for {deployment}"))
        })?;
        let rollback = info.rollback_info();
        Ok(DeploymentNow {
            status: info
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            rollback: rollback
                .and_then(|r| r.rollback_deployment_id())
                .map(str::to_string),
            rollback_message: rollback
                .and_then(|r| r.rollback_message())
                .map(str::to_string),
        })
    }
}
