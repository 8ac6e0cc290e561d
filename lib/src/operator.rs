//! Operator commands that change a target on purpose: recording the stable version and
//! undoing the guard's last action. Both refuse rather than guess.

use crate::policy::Policy;
use crate::ports::{AliasManager, Clock, PortError};
use crate::record::{stable_tag, ActionRecord};
use crate::retry::RetryPolicy;
use crate::rollback::AliasState;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperatorError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Backend(#[from] PortError),
}

/// Records `version` (default: the version the alias serves now) as the alias's stable
/// version. Refuses `$LATEST`, versions that do not exist, and an alias mid-canary without an
/// explicit version.
pub async fn mark_stable(
    aliases: &dyn AliasManager,
    retry: &RetryPolicy,
    function: &str,
    alias: &str,
    version: Option<&str>,
) -> Result<String, OperatorError> {
    let version = match version {
        Some(v) => v.to_string(),
        None => {
            let current = retry
                .run("GetAlias", || aliases.get_alias(function, alias))
                .await?;
            if !current.weights.is_empty() {
                return Err(OperatorError::Refused(format!(
                    "alias {alias} is mid-canary ({current}); pass --version to say which one is stable"
                )));
            }
            current.version
        }
    };
    if version == "$LATEST" {
        return Err(OperatorError::Refused(
            "$LATEST is mutable and cannot be a stable version; publish a version first".into(),
        ));
    }
    let published = retry
        .run("ListVersionsByFunction", || aliases.list_versions(function))
        .await?;
    if !published.contains(&version) {
        return Err(OperatorError::Refused(format!(
            "version {version} of {function} does not exist (published: {})",
            published.join(", ")
        )));
    }
    let tags = BTreeMap::from([(stable_tag(alias), version.clone())]);
    retry
        .run("TagResource", || aliases.tag(function, &tags))
        .await?;
    Ok(version)
}

/// What `guard undo` did.
#[derive(Debug, Clone, PartialEq)]
pub struct Undone {
    pub function: String,
    pub alias: String,
    pub from: AliasState,
    pub to: AliasState,
}

/// Restores what the guard's last action on `target` changed, if nothing else changed the
/// target since.
pub async fn undo(
    policy: &Policy,
    aliases: &dyn AliasManager,
    clock: &dyn Clock,
    retry: &RetryPolicy,
    target: &str,
) -> Result<Undone, OperatorError> {
    let target = policy.target(target).ok_or_else(|| {
        OperatorError::Refused(format!("unknown target `{target}` in the policy"))
    })?;
    let function = target.function.as_str();
    let tags = retry.run("ListTags", || aliases.tags(function)).await?;
    let record = ActionRecord::from_tags(&tags).ok_or_else(|| {
        OperatorError::Refused(format!(
            "the guard has no recorded action on {function}: nothing to undo"
        ))
    })?;
    if record.action == UNDO_ACTION {
        return Err(OperatorError::Refused(format!(
            "the last recorded change to {function} already was an undo, at {}",
            record.at
        )));
    }
    let alias = record.alias.as_str();
    let current = retry
        .run("GetAlias", || aliases.get_alias(function, alias))
        .await?;
    if !current.same_routing(&record.after) {
        return Err(OperatorError::Refused(format!(
            "alias {alias} is on {current}, but the guard left it on {}: something else changed it since, so undo would overwrite that change",
            record.after
        )));
    }
    let revision = current.revision_id.clone();
    retry
        .run("UpdateAlias", || {
            aliases.update_alias(function, alias, &record.before, revision.as_deref())
        })
        .await
        .map_err(|e| match e {
            PortError::RevisionChanged(_) => OperatorError::Refused(format!(
                "alias {alias} changed while undoing; nothing was restored"
            )),
            other => OperatorError::Backend(other),
        })?;
    let undone = ActionRecord {
        event: UNDO_ACTION.into(),
        action: UNDO_ACTION.into(),
        at: clock.now(),
        alias: alias.into(),
        before: record.after.clone(),
        after: record.before.clone(),
        alarm: record.alarm.clone(),
    };
    let undone_tags = undone.to_tags();
    retry
        .run("TagResource", || aliases.tag(function, &undone_tags))
        .await?;
    Ok(Undone {
        function: function.into(),
        alias: alias.into(),
        from: current,
        to: record.before,
    })
}

const UNDO_ACTION: &str = "undo";
