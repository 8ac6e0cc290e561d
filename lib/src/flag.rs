//! Changing one environment variable of `$LATEST` without losing the others: read, merge,
//! write back guarded by `RevisionId`, then wait until Lambda has applied it.

use crate::ai::{FunctionConfig, UpdateStatus};
use crate::ports::{FunctionSettings, PortError};
use crate::retry::RetryPolicy;
use std::collections::BTreeMap;

/// Sets `$LATEST`'s environment to `change(current variables)`, retrying on a changed
/// revision with a fresh read (the merge is always onto what is there now), and returns the
/// configuration once the update has settled. Refuses when the variables cannot be read.
pub async fn update_environment(
    functions: &dyn FunctionSettings,
    retry: &RetryPolicy,
    function: &str,
    change: impl Fn(&BTreeMap<String, String>) -> BTreeMap<String, String>,
) -> Result<FunctionConfig, PortError> {
    let mut attempt = 1;
    loop {
        let latest = settled(functions, retry, function).await?;
        if let Some(e) = &latest.environment_error {
            return Err(PortError::Other(format!(
                "the environment of {function} cannot be read ({e}); writing it would lose the variables"
            )));
        }
        let wanted = change(&latest.variables);
        if wanted == latest.variables {
            return Ok(latest);
        }
        let revision = latest.revision_id.as_deref();
        match retry
            .run("UpdateFunctionConfiguration", || {
                functions.set_environment(function, &wanted, revision)
            })
            .await
        {
            Ok(()) => return settled(functions, retry, function).await,
            Err(PortError::RevisionChanged(_)) if attempt < retry.attempts => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

/// `$LATEST`'s configuration once `LastUpdateStatus` is `Successful`; an error if the update
/// failed or is still in progress after the retry budget.
pub async fn settled(
    functions: &dyn FunctionSettings,
    retry: &RetryPolicy,
    function: &str,
) -> Result<FunctionConfig, PortError> {
    let mut attempt = 1;
    loop {
        let config = retry
            .run("GetFunctionConfiguration", || {
                functions.get_config(function, None)
            })
            .await?;
        match &config.last_update_status {
            UpdateStatus::Successful => return Ok(config),
            UpdateStatus::Failed(reason) => {
                return Err(PortError::Other(format!(
                    "the last update of {function} failed: {reason}"
                )))
            }
            UpdateStatus::InProgress if attempt < retry.attempts * 2 => {
                tokio::time::sleep(retry.pause(attempt)).await;
                attempt += 1;
            }
            UpdateStatus::InProgress => {
                return Err(PortError::Transient(format!(
                    "the update of {function} is still in progress"
                )))
            }
        }
    }
}
