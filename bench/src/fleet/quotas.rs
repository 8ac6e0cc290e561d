//! The simulation's AWS: each account's quota pools (token buckets on the paused clock) and
//! the services behind them, each call charged to its pool as the release that makes it
//! makes it: this release's (`Path::New`) or the previous one's (`Path::Baseline`).

use rollback_guard::ai::FunctionConfig;
use rollback_guard::fakes::{FakeAlarmStates, FakeLambda, FakeState};
use rollback_guard::policy::{AlarmPattern, DeploymentGroup};
use rollback_guard::ports::{
    AlarmNow, AlarmStates, AlarmStatus, AliasManager, DeploymentNow, Deployments, FunctionSettings,
    PortError, Shift, StateStore, Stopping,
};
use rollback_guard::rollback::AliasState;
use rollback_guard::state::{StateKey, TargetState};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Lambda's control plane: every call but GetFunction (and GetPolicy), per account and region.
pub const LAMBDA_CONTROL_PLANE_PER_S: f64 = 15.0;
/// CloudWatch DescribeAlarms, per account and region.
pub const DESCRIBE_ALARMS_PER_S: f64 = 9.0;
/// Lambda's GetFunction, per account and region: a quota of its own.
pub const GET_FUNCTION_PER_S: f64 = 100.0;
/// The calls of the account's deploy pipelines, in `calls_by_api` (and not in the guard's
/// throttled calls).
pub(super) const PIPELINE: &str = "(deploy pipelines)";

/// Which guard: this release's, or the previous one's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    New,
    Baseline,
}

impl Path {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Baseline => "baseline",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Pool {
    LambdaControlPlane,
    GetFunction,
    DescribeAlarms,
}

impl Pool {
    fn rate(self) -> f64 {
        match self {
            Self::LambdaControlPlane => LAMBDA_CONTROL_PLANE_PER_S,
            Self::GetFunction => GET_FUNCTION_PER_S,
            Self::DescribeAlarms => DESCRIBE_ALARMS_PER_S,
        }
    }
}

/// A token bucket on the paused clock: `rate` tokens a second, at most `rate` held.
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The quotas of every account, the calls made and the calls refused.
pub struct Quota {
    pub(super) latency: Duration,
    buckets: Mutex<HashMap<(String, Pool), Bucket>>,
    pub(super) calls: Mutex<BTreeMap<String, u64>>,
    pub(super) throttled: AtomicU64,
    pub(super) others_throttled: AtomicU64,
}

impl Quota {
    pub(super) fn new(latency: Duration) -> Self {
        Self {
            latency,
            buckets: Mutex::new(HashMap::new()),
            calls: Mutex::new(BTreeMap::new()),
            throttled: AtomicU64::new(0),
            others_throttled: AtomicU64::new(0),
        }
    }

    /// One call of `api` in `account`: a token from its pool, or throttled; either way after
    /// the call's latency.
    pub(super) async fn call(&self, account: &str, api: &str, pool: Pool) -> Result<(), PortError> {
        *lock(&self.calls).entry(api.to_string()).or_default() += 1;
        let now = Instant::now();
        let granted = {
            let mut buckets = lock(&self.buckets);
            let b = buckets
                .entry((account.to_string(), pool))
                .or_insert(Bucket {
                    tokens: pool.rate(),
                    at: now,
                });
            let refill = now.duration_since(b.at).as_secs_f64() * pool.rate();
            b.tokens = (b.tokens + refill).min(pool.rate());
            b.at = now;
            let granted = b.tokens >= 1.0;
            if granted {
                b.tokens -= 1.0;
            }
            granted
        };
        tokio::time::sleep(self.latency).await;
        if granted {
            Ok(())
        } else {
            if api == PIPELINE {
                self.others_throttled.fetch_add(1, Ordering::SeqCst);
            } else {
                self.throttled.fetch_add(1, Ordering::SeqCst);
            }
            Err(PortError::Throttled(format!(
                "TooManyRequestsException: {api} in {account}: Rate exceeded"
            )))
        }
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One account's Lambda behind its quota.
pub(super) struct QuotaLambda {
    pub(super) inner: Arc<FakeLambda>,
    pub(super) account: String,
    pub(super) quota: Arc<Quota>,
    pub(super) path: Path,
}

impl QuotaLambda {
    async fn call(&self, api: &str) -> Result<(), PortError> {
        self.quota
            .call(&self.account, api, Pool::LambdaControlPlane)
            .await
    }

    /// A GetFunction call; the previous release made `instead` in the control plane's pool.
    async fn get_function(&self, instead: &str) -> Result<(), PortError> {
        match self.path {
            Path::New => {
                self.quota
                    .call(&self.account, "GetFunction", Pool::GetFunction)
                    .await
            }
            Path::Baseline => self.call(instead).await,
        }
    }
}

#[async_trait::async_trait]
impl AliasManager for QuotaLambda {
    async fn get_alias(&self, function: &str, alias: &str) -> Result<AliasState, PortError> {
        self.call("GetAlias").await?;
        self.inner.get_alias(function, alias).await
    }

    async fn list_versions(&self, function: &str) -> Result<Vec<String>, PortError> {
        self.call("ListVersionsByFunction").await?;
        self.inner.list_versions(function).await
    }

    async fn update_alias(
        &self,
        function: &str,
        alias: &str,
        to: &AliasState,
        expected_revision: Option<&str>,
    ) -> Result<AliasState, PortError> {
        self.call("UpdateAlias").await?;
        self.inner
            .update_alias(function, alias, to, expected_revision)
            .await
    }

    async fn tags(&self, function: &str) -> Result<BTreeMap<String, String>, PortError> {
        self.get_function("ListTags").await?;
        self.inner.tags(function).await
    }

    async fn is_published(&self, function: &str, version: &str) -> Result<bool, PortError> {
        self.get_function("ListVersionsByFunction").await?;
        self.inner.is_published(function, version).await
    }

    async fn published_at(
        &self,
        function: &str,
        version: &str,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, PortError> {
        // The judgement's read: this release's alone (the previous one did not judge).
        if self.path == Path::New {
            self.quota
                .call(&self.account, "GetFunction", Pool::GetFunction)
                .await?;
        }
        self.inner.published_at(function, version).await
    }

    async fn tag(&self, function: &str, tags: &BTreeMap<String, String>) -> Result<(), PortError> {
        self.call("TagResource").await?;
        self.inner.tag(function, tags).await
    }

    async fn untag(&self, function: &str, keys: &[String]) -> Result<(), PortError> {
        self.call("UntagResource").await?;
        self.inner.untag(function, keys).await
    }

    async fn list_functions(&self) -> Result<Vec<String>, PortError> {
        self.call("ListFunctions").await?;
        self.inner.list_functions().await
    }
}

#[async_trait::async_trait]
impl FunctionSettings for QuotaLambda {
    async fn get_config(
        &self,
        function: &str,
        qualifier: Option<&str>,
    ) -> Result<FunctionConfig, PortError> {
        self.call("GetFunctionConfiguration").await?;
        self.inner.get_config(function, qualifier).await
    }

    async fn set_environment(
        &self,
        function: &str,
        variables: &BTreeMap<String, String>,
        expected_revision: Option<&str>,
    ) -> Result<(), PortError> {
        self.call("UpdateFunctionConfiguration").await?;
        self.inner
            .set_environment(function, variables, expected_revision)
            .await
    }

    async fn publish_version(
        &self,
        function: &str,
        code_sha256: &str,
        expected_revision: Option<&str>,
        description: &str,
    ) -> Result<String, PortError> {
        self.call("PublishVersion").await?;
        self.inner
            .publish_version(function, code_sha256, expected_revision, description)
            .await
    }
}

/// One account's CloudWatch behind its quota.
pub(super) struct QuotaAlarms {
    pub(super) inner: Arc<FakeAlarmStates>,
    pub(super) account: String,
    pub(super) quota: Arc<Quota>,
}

#[async_trait::async_trait]
impl AlarmStates for QuotaAlarms {
    async fn alarm_state(&self, alarm_arn: &str) -> Result<Option<AlarmNow>, PortError> {
        self.quota
            .call(&self.account, "DescribeAlarms", Pool::DescribeAlarms)
            .await?;
        self.inner.alarm_state(alarm_arn).await
    }

    async fn alarm_states(
        &self,
        alarm_arns: &[String],
    ) -> Result<Vec<Option<AlarmNow>>, PortError> {
        self.quota
            .call(&self.account, "DescribeAlarms", Pool::DescribeAlarms)
            .await?;
        self.inner.alarm_states(alarm_arns).await
    }

    async fn alarms(&self, pattern: &AlarmPattern) -> Result<Vec<AlarmStatus>, PortError> {
        self.quota
            .call(&self.account, "DescribeAlarms", Pool::DescribeAlarms)
            .await?;
        self.inner.alarms(pattern).await
    }
}

/// The state table every instance shares (DynamoDB in the template: no quota that matters
/// here), each call taking the latency. The previous release kept its record in the function's
/// tags and its claims in memory: on the baseline path a read is free (its record read is the
/// ListTags already charged), a write of a record is the `TagResource` it made in the 15/s
/// pool, and any other write (a claim, a plan, which it did not make) is free.
pub(super) struct SimState {
    pub(super) inner: FakeState,
    pub(super) latency: Duration,
    pub(super) quota: Arc<Quota>,
    pub(super) path: Path,
}

#[async_trait::async_trait]
impl StateStore for SimState {
    async fn read(&self, key: &StateKey) -> Result<(TargetState, u64), PortError> {
        if self.path == Path::New {
            tokio::time::sleep(self.latency).await;
        }
        self.inner.read(key).await
    }

    async fn write(
        &self,
        key: &StateKey,
        state: &TargetState,
        revision: u64,
    ) -> Result<u64, PortError> {
        let record = state.last != self.inner.get(key).last;
        match self.path {
            Path::New => tokio::time::sleep(self.latency).await,
            Path::Baseline if record => {
                self.quota
                    .call(&key.account, "TagResource", Pool::LambdaControlPlane)
                    .await?
            }
            Path::Baseline => {}
        }
        self.inner.write(key, state, revision).await
    }

    async fn all(&self) -> Result<Vec<(StateKey, TargetState)>, PortError> {
        tokio::time::sleep(self.latency).await;
        self.inner.all().await
    }

    async fn count_rollback(
        &self,
        account: &str,
        hour: chrono::DateTime<chrono::Utc>,
        cap: u32,
    ) -> Result<rollback_guard::ports::Counted, PortError> {
        if self.path == Path::New {
            tokio::time::sleep(self.latency).await;
        }
        self.inner.count_rollback(account, hour, cap).await
    }
}

/// CodeDeploy, with no deployment in progress (the bad day is not a deploy day), each call
/// taking the latency: the guard asks it once before each action.
pub(super) struct IdleCodeDeploy {
    pub(super) latency: Duration,
}

#[async_trait::async_trait]
impl Deployments for IdleCodeDeploy {
    async fn unfinished(&self, _: Option<&DeploymentGroup>) -> Result<Vec<String>, PortError> {
        tokio::time::sleep(self.latency).await;
        Ok(Vec::new())
    }

    async fn shift(&self, _: &str) -> Result<Option<Shift>, PortError> {
        tokio::time::sleep(self.latency).await;
        Ok(None)
    }

    async fn stop(&self, id: &str) -> Result<Stopping, PortError> {
        Err(PortError::Other(format!(
            "no deployment {id} in the simulation"
        )))
    }

    async fn deployment(&self, id: &str) -> Result<DeploymentNow, PortError> {
        Err(PortError::Other(format!(
            "no deployment {id} in the simulation"
        )))
    }

    async fn succeeded(
        &self,
        _: &DeploymentGroup,
        _: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<(String, chrono::DateTime<chrono::Utc>)>, PortError> {
        tokio::time::sleep(self.latency).await;
        Ok(Vec::new())
    }
}
