//! The guard's share of AWS's API quotas. On a bad day a hundred alarms fire within a minute
//! and the account's quotas, not the guard, decide how fast traffic is restored: Lambda's
//! control plane takes 15 requests/s per account and region in all (every call but
//! GetFunction), shared with the account's deploy pipelines; CloudWatch's DescribeAlarms 9/s.
//!
//! In front of each account's Lambda and CloudWatch ports, a token bucket per quota pool holds
//! the guard to its share (`guard.lambda_calls_per_second`, `guard.alarm_reads_per_second`,
//! divided among the function's instances, which run apart). Calls that restore traffic go
//! first: the record written after an action (`TagResource`) waits while any of them waits,
//! so a hundred rollbacks move a hundred aliases before they write a hundred records. A call
//! throttled all the same (someone else took the rest) halves the bucket's rate; each call
//! that passes wins a sixteenth of the share back.
//!
//! GetFunction (the record read, a version's existence) is not metered: its own quota is
//! 100/s, and the 15/s pool caps the guard at 7.5 rollbacks a second, two GetFunction each.

use crate::ai::FunctionConfig;
use crate::policy::{AlarmPattern, Settings};
use crate::ports::{
    AccountPorts, AlarmNow, AlarmStates, AlarmStatus, AliasManager, FunctionSettings, PortError,
};
use crate::rollback::AliasState;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// One instance's requests a second in each account, per quota pool.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share {
    pub lambda_per_s: f64,
    pub alarm_reads_per_s: f64,
}

impl Share {
    /// One instance's part of the policy's shares: `instances` run apart (the guard
    /// function's reserved concurrency), so each takes its part and together they never take
    /// more than the policy allows.
    pub fn per_instance(settings: &Settings, instances: u32) -> Self {
        let instances = f64::from(instances.max(1));
        Self {
            lambda_per_s: f64::from(settings.lambda_calls_per_second) / instances,
            alarm_reads_per_s: f64::from(settings.alarm_reads_per_second) / instances,
        }
    }
}

/// Which calls go first when the share runs short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Reading and moving what serves traffic.
    Action,
    /// Writing the guard's record after an action.
    Record,
}

/// A token bucket: up to a second's worth of requests at once, then `rate` a second.
pub struct Bucket {
    share: f64,
    state: Mutex<BucketState>,
}

struct BucketState {
    tokens: f64,
    rate: f64,
    at: Instant,
    actions_waiting: usize,
}

impl Bucket {
    pub fn new(share: f64) -> Self {
        let share = share.max(0.01);
        Self {
            share,
            state: Mutex::new(BucketState {
                tokens: share.max(1.0),
                rate: share,
                at: Instant::now(),
                actions_waiting: 0,
            }),
        }
    }

    /// The rate in force now (the share, or less after throttling).
    pub fn rate(&self) -> f64 {
        lock(&self.state).rate
    }

    /// Waits for a request's token. A `Record` token is not taken while an `Action` waits.
    pub async fn take(&self, priority: Priority) {
        let _waiting = (priority == Priority::Action).then(|| ActionWaiting::new(self));
        loop {
            let wait = {
                let mut s = lock(&self.state);
                let now = Instant::now();
                let refill = now.duration_since(s.at).as_secs_f64() * s.rate;
                s.tokens = (s.tokens + refill).min(s.rate.max(1.0));
                s.at = now;
                let behind_actions = priority == Priority::Record && s.actions_waiting > 0;
                if s.tokens >= 1.0 && !behind_actions {
                    s.tokens -= 1.0;
                    return;
                }
                // Behind the actions: look again once the next token is theirs to take.
                let missing = if behind_actions { 1.0 } else { 1.0 - s.tokens };
                Duration::from_secs_f64((missing / s.rate).max(0.001))
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Throttled all the same: half the rate (not below an eighth of the share), and no burst.
    pub fn throttled(&self) {
        let mut s = lock(&self.state);
        s.rate = (s.rate / 2.0).max(self.share / 8.0);
        s.tokens = s.tokens.min(0.0);
    }

    /// A call passed: a sixteenth of the share back, up to the share.
    pub fn passed(&self) {
        let mut s = lock(&self.state);
        s.rate = (s.rate + self.share / 16.0).min(self.share);
    }

    /// Takes a token, makes the call, and learns from its answer.
    async fn call<T>(
        &self,
        priority: Priority,
        call: impl Future<Output = Result<T, PortError>>,
    ) -> Result<T, PortError> {
        self.take(priority).await;
        let result = call.await;
        match &result {
            Err(PortError::Throttled(_)) => self.throttled(),
            _ => self.passed(),
        }
        result
    }
}

/// An `Action` waiting for a token, counted while it waits (a waiter dropped midway too).
struct ActionWaiting<'b>(&'b Bucket);

impl<'b> ActionWaiting<'b> {
    fn new(bucket: &'b Bucket) -> Self {
        lock(&bucket.state).actions_waiting += 1;
        Self(bucket)
    }
}

impl Drop for ActionWaiting<'_> {
    fn drop(&mut self) {
        lock(&self.0.state).actions_waiting -= 1;
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One account's ports held to `share`.
pub fn metered(ports: AccountPorts, share: Share) -> AccountPorts {
    let metered = Arc::new(Metered {
        inner: ports,
        lambda: Bucket::new(share.lambda_per_s),
        alarms: Bucket::new(share.alarm_reads_per_s),
    });
    AccountPorts {
        aliases: metered.clone(),
        functions: metered.clone(),
        alarms: metered,
    }
}

/// An account's ports behind its buckets: Lambda's control plane, DescribeAlarms.
struct Metered {
    inner: AccountPorts,
    lambda: Bucket,
    alarms: Bucket,
}

impl Metered {
    async fn lambda<T>(
        &self,
        call: impl Future<Output = Result<T, PortError>>,
    ) -> Result<T, PortError> {
        self.lambda.call(Priority::Action, call).await
    }
}

#[async_trait]
impl AliasManager for Metered {
    async fn get_alias(&self, function: &str, alias: &str) -> Result<AliasState, PortError> {
        self.lambda(self.inner.aliases.get_alias(function, alias))
            .await
    }

    async fn list_versions(&self, function: &str) -> Result<Vec<String>, PortError> {
        self.lambda(self.inner.aliases.list_versions(function))
            .await
    }

    async fn update_alias(
        &self,
        function: &str,
        alias: &str,
        to: &AliasState,
        expected_revision: Option<&str>,
    ) -> Result<AliasState, PortError> {
        self.lambda(
            self.inner
                .aliases
                .update_alias(function, alias, to, expected_revision),
        )
        .await
    }

    async fn tags(&self, function: &str) -> Result<BTreeMap<String, String>, PortError> {
        self.inner.aliases.tags(function).await
    }

    async fn is_published(&self, function: &str, version: &str) -> Result<bool, PortError> {
        self.inner.aliases.is_published(function, version).await
    }

    async fn list_functions(&self) -> Result<Vec<String>, PortError> {
        self.lambda(self.inner.aliases.list_functions()).await
    }

    async fn tag(&self, function: &str, tags: &BTreeMap<String, String>) -> Result<(), PortError> {
        self.lambda
            .call(Priority::Record, self.inner.aliases.tag(function, tags))
            .await
    }
}

#[async_trait]
impl FunctionSettings for Metered {
    async fn get_config(
        &self,
        function: &str,
        qualifier: Option<&str>,
    ) -> Result<FunctionConfig, PortError> {
        self.lambda(self.inner.functions.get_config(function, qualifier))
            .await
    }

    async fn set_environment(
        &self,
        function: &str,
        variables: &BTreeMap<String, String>,
        expected_revision: Option<&str>,
    ) -> Result<(), PortError> {
        self.lambda(
            self.inner
                .functions
                .set_environment(function, variables, expected_revision),
        )
        .await
    }

    async fn publish_version(
        &self,
        function: &str,
        code_sha256: &str,
        expected_revision: Option<&str>,
        description: &str,
    ) -> Result<String, PortError> {
        self.lambda(self.inner.functions.publish_version(
            function,
            code_sha256,
            expected_revision,
            description,
        ))
        .await
    }
}

#[async_trait]
impl AlarmStates for Metered {
    async fn alarm_state(&self, alarm_arn: &str) -> Result<Option<AlarmNow>, PortError> {
        self.alarms
            .call(Priority::Action, self.inner.alarms.alarm_state(alarm_arn))
            .await
    }

    async fn alarms(&self, pattern: &AlarmPattern) -> Result<Vec<AlarmStatus>, PortError> {
        self.alarms
            .call(Priority::Action, self.inner.alarms.alarms(pattern))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes `n` tokens of `priority` at once; when each was granted, in seconds from now.
    async fn grants(bucket: &Arc<Bucket>, n: usize, priority: Priority) -> Vec<f64> {
        let start = Instant::now();
        let takers = (0..n).map(|_| {
            let bucket = bucket.clone();
            tokio::spawn(async move {
                bucket.take(priority).await;
                start.elapsed().as_secs_f64()
            })
        });
        let mut at = Vec::new();
        for t in takers {
            at.push(t.await.expect("a taker"));
        }
        at.sort_by(f64::total_cmp);
        at
    }

    #[tokio::test(start_paused = true)]
    async fn a_bucket_grants_a_seconds_burst_then_its_rate() {
        let bucket = Arc::new(Bucket::new(4.0));
        let at = grants(&bucket, 12, Priority::Action).await;
        assert_eq!(at.iter().filter(|t| **t < 0.01).count(), 4, "{at:?}");
        // The other eight at 4 a second: the last about two seconds in.
        let last = at[11];
        assert!((1.95..=2.1).contains(&last), "{at:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn records_wait_while_actions_wait() {
        let bucket = Arc::new(Bucket::new(2.0));
        // Empty the burst, so both kinds queue.
        grants(&bucket, 2, Priority::Action).await;
        let start = Instant::now();
        let record = {
            let bucket = bucket.clone();
            tokio::spawn(async move {
                bucket.take(Priority::Record).await;
                start.elapsed().as_secs_f64()
            })
        };
        tokio::task::yield_now().await;
        let actions = grants(&bucket, 4, Priority::Action).await;
        let record = record.await.expect("the record");
        assert!(
            actions.iter().all(|a| *a < record),
            "actions {actions:?}, record {record}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_halves_the_rate_and_passing_calls_win_it_back() {
        let bucket = Bucket::new(8.0);
        bucket.throttled();
        assert_eq!(bucket.rate(), 4.0);
        for _ in 0..5 {
            bucket.throttled();
        }
        assert_eq!(bucket.rate(), 1.0, "never below an eighth of the share");
        for _ in 0..100 {
            bucket.passed();
        }
        assert_eq!(bucket.rate(), 8.0, "never above the share");
    }

    #[test]
    fn each_instance_takes_its_part_of_the_policys_share() {
        let policy = crate::Policy::from_toml(
            "[guard]\nlambda_calls_per_second = 10\nalarm_reads_per_second = 5\n\n[[target]]\nname = \"t\"\nfunction = \"f\"\nalias = \"live\"\n\n[[trigger]]\nalarm = \"a\"\ntarget = \"t\"\naction = \"rollback-alias\"\n",
        )
        .expect("policy");
        let share = Share::per_instance(&policy.guard, 5);
        assert_eq!(share.lambda_per_s, 2.0);
        assert_eq!(share.alarm_reads_per_s, 1.0);
    }
}
