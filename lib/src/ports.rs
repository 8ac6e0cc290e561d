//! The ports: one small trait per AWS capability the guard needs. Each has one SDK adapter
//! (`crate::adapters`) and one in-memory fake (`crate::fakes`).

use crate::ai::FunctionConfig;
use crate::notify::{AuditEvent, Notification};
use crate::policy::AlarmPattern;
pub use crate::policy::DeploymentGroup;
use crate::rollback::AliasState;
use crate::state::{StateKey, TargetState};
use crate::transition::{AlarmState, Suppression};
use crate::watched::Watched;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// What went wrong talking to a backend, sorted by what the guard can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("throttled: {0}")]
    Throttled(String),
    /// The resource is busy (Lambda's `ResourceConflictException`).
    #[error("resource conflict: {0}")]
    Conflict(String),
    /// The optimistic-concurrency token no longer matches (`PreconditionFailedException`).
    #[error("revision changed: {0}")]
    RevisionChanged(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// 5xx, timeouts, dropped connections.
    #[error("transient failure: {0}")]
    Transient(String),
    /// Not allowed (`AccessDenied`, 403): IAM, a resource policy, an SCP.
    #[error("access denied: {0}")]
    Denied(String),
    #[error("{0}")]
    Other(String),
}

impl PortError {
    /// Worth trying the same request again after a pause.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Self::Throttled(_) | Self::Conflict(_) | Self::Transient(_)
        )
    }
}

/// The backends, behind their ports.
#[derive(Clone)]
pub struct Ports {
    pub aliases: std::sync::Arc<dyn AliasManager>,
    pub functions: std::sync::Arc<dyn FunctionSettings>,
    pub alarms: std::sync::Arc<dyn AlarmStates>,
    pub deployments: std::sync::Arc<dyn Deployments>,
    pub notifier: std::sync::Arc<dyn Notifier>,
    pub audit: std::sync::Arc<dyn AuditBus>,
    /// What the guard remembers, in every account it acts in: its own table.
    pub state: std::sync::Arc<dyn StateStore>,
    pub clock: std::sync::Arc<dyn Clock>,
}

/// The ports that act in one account: Lambda (aliases, versions, tags, configuration),
/// CloudWatch (alarm states) and CodeDeploy (deployments shifting aliases). The guard's own are in [`Ports`]; another account's come from
/// [`MemberAccounts`].
#[derive(Clone)]
pub struct AccountPorts {
    pub aliases: std::sync::Arc<dyn AliasManager>,
    pub functions: std::sync::Arc<dyn FunctionSettings>,
    pub alarms: std::sync::Arc<dyn AlarmStates>,
    pub deployments: std::sync::Arc<dyn Deployments>,
}

/// Other accounts of an organisation, acted in through a role there (`guard.member_role`).
#[async_trait]
pub trait MemberAccounts: Send + Sync {
    /// The ports of `account`, acting as `role`. The role is assumed here, before any action,
    /// so one that cannot be assumed is this call's error, naming the account and the role.
    async fn member(&self, account: &str, role: &str) -> Result<AccountPorts, PortError>;
}

impl Ports {
    /// These ports with another account's Lambda, CloudWatch and CodeDeploy: notifications,
    /// audit events, the state table and the clock stay the guard's own.
    pub fn in_account(&self, account: AccountPorts) -> Self {
        Self {
            aliases: account.aliases,
            functions: account.functions,
            alarms: account.alarms,
            deployments: account.deployments,
            ..self.clone()
        }
    }

    /// The ports that act in the guard's own account.
    pub fn own_account(&self) -> AccountPorts {
        AccountPorts {
            aliases: self.aliases.clone(),
            functions: self.functions.clone(),
            alarms: self.alarms.clone(),
            deployments: self.deployments.clone(),
        }
    }
}

/// Lambda aliases, versions and the function tags its owners declare (opt-in, flag, group).
#[async_trait]
pub trait AliasManager: Send + Sync {
    async fn get_alias(&self, function: &str, alias: &str) -> Result<AliasState, PortError>;
    /// Published versions, never `$LATEST`.
    async fn list_versions(&self, function: &str) -> Result<Vec<String>, PortError>;
    /// Routes the alias as `to`, only if its revision still is `expected_revision`.
    async fn update_alias(
        &self,
        function: &str,
        alias: &str,
        to: &AliasState,
        expected_revision: Option<&str>,
    ) -> Result<AliasState, PortError>;
    /// The function's tags (`GetFunction`: a quota of its own, 100 requests/s, not the 15/s
    /// every other control-plane call shares).
    async fn tags(&self, function: &str) -> Result<BTreeMap<String, String>, PortError>;
    /// Whether `version` is a published version of the function (`GetFunction` too).
    async fn is_published(&self, function: &str, version: &str) -> Result<bool, PortError>;
    /// When `version` was published (its `LastModified`, `GetFunction` too); `None` when it is
    /// not a published version.
    async fn published_at(
        &self,
        function: &str,
        version: &str,
    ) -> Result<Option<DateTime<Utc>>, PortError>;
    /// The names of the account's functions in the guard's region (a fleet is those of them
    /// that opted in).
    async fn list_functions(&self) -> Result<Vec<String>, PortError>;
    /// Tags the function (an operator's `guard protect`; the guard itself never does).
    async fn tag(&self, function: &str, tags: &BTreeMap<String, String>) -> Result<(), PortError>;
    /// Removes these tag keys from the function (`guard unprotect`).
    async fn untag(&self, function: &str, keys: &[String]) -> Result<(), PortError>;
}

/// CloudWatch as an operator's commands change it (`guard protect` / `unprotect`) and read its
/// metrics (whether a watched metric has data): never called by the guard itself.
#[async_trait]
pub trait AlarmSetup: Send + Sync {
    /// Creates the alarm, or replaces the one of that name, with its tags.
    async fn put_alarm(&self, spec: &crate::protect::AlarmSpec) -> Result<(), PortError>;
    /// The alarm's tags; `None` when no alarm has that name.
    async fn alarm_tags(&self, name: &str) -> Result<Option<BTreeMap<String, String>>, PortError>;
    /// Deletes the named alarms.
    async fn delete_alarms(&self, names: &[String]) -> Result<(), PortError>;
    /// The metric's values, one a period that has data, oldest first (none: no data).
    async fn lambda_metric(
        &self,
        metric: &crate::protect::LambdaMetric,
    ) -> Result<Vec<f64>, PortError>;
}

/// Lambda function configuration: reading versions, changing `$LATEST`'s environment,
/// publishing it.
#[async_trait]
pub trait FunctionSettings: Send + Sync {
    /// A version's configuration; `None` for `$LATEST`.
    async fn get_config(
        &self,
        function: &str,
        qualifier: Option<&str>,
    ) -> Result<FunctionConfig, PortError>;
    /// Replaces `$LATEST`'s environment variables, and nothing else, if its revision still is
    /// `expected_revision`.
    async fn set_environment(
        &self,
        function: &str,
        variables: &BTreeMap<String, String>,
        expected_revision: Option<&str>,
    ) -> Result<(), PortError>;
    /// Publishes `$LATEST` as a new version, only if its code is `code_sha256` and its
    /// revision `expected_revision`. Returns the version number.
    async fn publish_version(
        &self,
        function: &str,
        code_sha256: &str,
        expected_revision: Option<&str>,
        description: &str,
    ) -> Result<String, PortError>;
}

/// CloudWatch alarm states, to confirm an alarm before acting on it.
#[async_trait]
pub trait AlarmStates: Send + Sync {
    /// The alarm this ARN names, now; `None` when there is no such alarm in the ARN's account
    /// and region (one of the same name elsewhere does not count).
    async fn alarm_state(&self, alarm_arn: &str) -> Result<Option<AlarmNow>, PortError>;
    /// Several alarms at once, each as [`AlarmStates::alarm_state`] answers it, in order (the
    /// SDK adapter reads up to 100 in one DescribeAlarms).
    async fn alarm_states(
        &self,
        alarm_arns: &[String],
    ) -> Result<Vec<Option<AlarmNow>>, PortError> {
        let mut out = Vec::with_capacity(alarm_arns.len());
        for arn in alarm_arns {
            out.push(self.alarm_state(arn).await?);
        }
        Ok(out)
    }
    /// The alarms a pattern names (an exact name, or a prefix), with their state and when
    /// they entered it.
    async fn alarms(&self, pattern: &AlarmPattern) -> Result<Vec<AlarmStatus>, PortError>;
}

/// An alarm as the guard confirms it before acting: its state, and whether people have
/// silenced its actions (disabled them, or a composite alarm's actions suppressor).
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmNow {
    pub state: AlarmState,
    pub actions_enabled: bool,
    pub suppressed: Option<Suppression>,
    /// What its metrics name, as CloudWatch keeps them (not as an event says).
    pub watched: Watched,
    /// When it went into the state it is in (`StateTransitionedTimestamp`, else
    /// `StateUpdatedTimestamp`), as CloudWatch keeps it.
    pub since: Option<DateTime<Utc>>,
}

impl AlarmNow {
    /// In `state`, actions enabled, nothing suppressed, no metrics naming a function.
    pub fn plain(state: AlarmState) -> Self {
        Self {
            state,
            actions_enabled: true,
            suppressed: None,
            watched: Watched::NoMetrics,
            since: None,
        }
    }
}

/// An alarm's state and since when, and whether its actions are enabled.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmStatus {
    pub name: String,
    pub state: AlarmState,
    pub since: DateTime<Utc>,
    pub actions_enabled: bool,
    /// The function alias its metrics name (fleet triggers).
    pub watched: Watched,
}

/// What a CodeDeploy deployment of a Lambda function shifts: `alias` from `current_version`
/// to `target_version` (its deployment target's `lambdaFunctionInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shift {
    pub deployment: String,
    pub function: String,
    pub alias: String,
    pub current_version: String,
    pub target_version: String,
}

/// A deployment in one of CodeDeploy's statuses, as far as the guard waits on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentNow {
    /// CodeDeploy's status (`InProgress`, `Succeeded`, `Stopped`, ...).
    pub status: String,
    /// The rollback deployment CodeDeploy started for it, once it has.
    pub rollback: Option<String>,
    /// What CodeDeploy says of its rollback (for instance that it cannot be rolled back).
    pub rollback_message: Option<String>,
}

impl DeploymentNow {
    /// Created, Queued, InProgress, Baking, Ready: not finished.
    pub fn finished(&self) -> bool {
        matches!(self.status.as_str(), "Succeeded" | "Failed" | "Stopped")
    }
}

/// How CodeDeploy took a stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopping {
    /// Stopped, or being stopped (`Succeeded`, `Pending`): its rollback follows.
    Stopping,
    /// It finished before it could be stopped (`DeploymentAlreadyCompletedException`).
    AlreadyCompleted,
}

/// CodeDeploy: the deployments that shift Lambda aliases, stopped with their rollback when an
/// alias they shift misbehaves.
#[async_trait]
pub trait Deployments: Send + Sync {
    /// Deployments not finished (Created, Queued, InProgress, Ready): of `group` when it is
    /// known, else of the whole account and region.
    async fn unfinished(&self, group: Option<&DeploymentGroup>) -> Result<Vec<String>, PortError>;
    /// What a deployment shifts; `None` when it is not a Lambda deployment or has not started
    /// (its targets are not known yet).
    async fn shift(&self, deployment: &str) -> Result<Option<Shift>, PortError>;
    /// Stops a deployment, with CodeDeploy's rollback (`autoRollbackEnabled`).
    async fn stop(&self, deployment: &str) -> Result<Stopping, PortError>;
    /// A deployment's status and rollback.
    async fn deployment(&self, deployment: &str) -> Result<DeploymentNow, PortError>;
    /// Deployments of `group` created since `since` that succeeded, with when each ended,
    /// newest first: when a version went live on the alias they shift.
    async fn succeeded(
        &self,
        group: &DeploymentGroup,
        since: DateTime<Utc>,
    ) -> Result<Vec<(String, DateTime<Utc>)>, PortError>;
}

/// The guard's state table: what it remembers about each target ([`crate::state`]), one item
/// a function alias, written only if nobody wrote it since it was read.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// The state of `key` and its revision (0: nothing stored). A stored item that does not
    /// validate ([`crate::state::codec`]) is an error naming what is wrong with it.
    async fn read(&self, key: &StateKey) -> Result<(TargetState, u64), PortError>;
    /// Stores `state` as `key`'s if its revision still is `revision`; the new revision.
    /// [`PortError::RevisionChanged`] when another writer came first.
    async fn write(
        &self,
        key: &StateKey,
        state: &TargetState,
        revision: u64,
    ) -> Result<u64, PortError>;
    /// Every target's state (the operator's commands: `guard targets`, `guard undo --since`).
    async fn all(&self) -> Result<Vec<(StateKey, TargetState)>, PortError>;
    /// Counts one automatic alias rollback of `account` in the hour that began at `hour`,
    /// unless `cap` were made already (then counts it as held back), across every instance.
    async fn count_rollback(
        &self,
        account: &str,
        hour: DateTime<Utc>,
        cap: u32,
    ) -> Result<Counted, PortError>;
}

/// An account's automatic alias rollbacks in one hour: whether this one may go ahead, how many
/// were made and how many held back (this one included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    pub allowed: bool,
    pub made: u32,
    pub held: u32,
}

/// The key of an account's rollbacks in the hour that began at `hour` (not a target's: it does
/// not parse as a [`StateKey`]).
pub fn rollbacks_key(account: &str, hour: DateTime<Utc>) -> String {
    format!("#rollbacks#{account}#{}", hour.format("%Y-%m-%dT%H"))
}

/// The queue alarm events reach the guard through (SQS): a message the guard could not settle
/// comes back sooner than the queue's visibility timeout.
#[async_trait]
pub trait AlarmQueue: Send + Sync {
    /// Makes the messages of `queue_arn` received as `receipts` visible again after `delay`.
    async fn retry_after(
        &self,
        queue_arn: &str,
        receipts: &[String],
        delay: std::time::Duration,
    ) -> Result<(), PortError>;
}

/// People-facing notifications (SNS).
#[async_trait]
pub trait Notifier: Send + Sync {
    async fn publish(&self, topic_arn: &str, notification: &Notification) -> Result<(), PortError>;
}

/// Machine-facing audit events (EventBridge).
#[async_trait]
pub trait AuditBus: Send + Sync {
    async fn put(&self, bus: &str, event: &AuditEvent) -> Result<(), PortError>;
}

/// Time, injectable so cooldowns can be tested.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
