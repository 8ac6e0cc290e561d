//! The guard's share of AWS's API quotas. On a bad day a hundred alarms fire within a minute
//! and the account's quotas, not the guard, decide how fast traffic is restored: Lambda's
//! control plane takes 15 requests/s per account and region in all (every call but
//! GetFunction), shared with the account's deploy pipelines; CloudWatch's DescribeAlarms 9/s.
//!
//! In front of each account's Lambda and CloudWatch ports, a token bucket per quota pool holds
//! the guard to its share (`guard.lambda_calls_per_second`, `guard.alarm_reads_per_second`,
//! divided among the function's instances, which run apart). Calls that restore traffic go
//! first: a tag write (`TagResource`, which the guard itself never makes: its record is in
//! its state table, outside Lambda's quotas) waits while any of them waits. A call throttled
//! all the same (someone else took the rest) halves the bucket's rate; each call that passes
//! wins a sixteenth of the share back.
//!
//! Confirmations gather: an alarm read that waits for its DescribeAlarms token takes with it
//! every other read that came meanwhile (up to 100 alarms a call), so a batch of events
//! confirms its alarms in one call or a few.
//!
//! GetFunction (the tags read, a version's existence) has a quota of its own, 100/s: the
//! guard takes the same part of it as of the control plane's (12 of 15 → 80 of 100), since a
//! batch of events reads all their functions' tags at once.

use crate::ai::FunctionConfig;
use crate::policy::{AlarmPattern, Settings, LAMBDA_CONTROL_PLANE_PER_SECOND};
use crate::ports::{
    AccountPorts, AlarmNow, AlarmStates, AlarmStatus, AliasManager, FunctionSettings, PortError,
};
use crate::rollback::AliasState;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// One instance's requests a second in each account, per quota pool.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share {
    pub lambda_per_s: f64,
    pub get_function_per_s: f64,
    pub alarm_reads_per_s: f64,
}

/// Lambda's GetFunction quota per account and region.
pub const GET_FUNCTION_PER_SECOND: f64 = 100.0;

impl Share {
    /// One instance's part of the policy's shares: `instances` run apart (the guard
    /// function's reserved concurrency), so each takes its part and together they never take
    /// more than the policy allows.
    pub fn per_instance(settings: &Settings, instances: u32) -> Self {
        let instances = f64::from(instances.max(1));
        let lambda = f64::from(settings.lambda_calls_per_second);
        let part = lambda / f64::from(LAMBDA_CONTROL_PLANE_PER_SECOND);
        Self {
            lambda_per_s: lambda / instances,
            get_function_per_s: GET_FUNCTION_PER_SECOND * part / instances,
            alarm_reads_per_s: f64::from(settings.alarm_reads_per_second) / instances,
        }
    }
}

/// The most control-plane calls one event makes: switching an AI off (two configurations
/// read, the environment updated, a version published, the alias read and moved, the record).
pub const MOST_CALLS_AN_EVENT: u32 = 7;

impl Share {
    /// How long `events` handled together may take at this share, at worst.
    pub fn worst_time(&self, events: usize) -> Duration {
        let calls = events as f64 * f64::from(MOST_CALLS_AN_EVENT);
        Duration::from_secs_f64(calls / self.lambda_per_s.max(0.01))
    }
}

/// Which calls go first when the share runs short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Reading and moving what serves traffic.
    Action,
    /// What restores nothing (a tag write).
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

/// Where an alarm read gathered with others hears its answer.
type Answer = oneshot::Sender<Result<Option<AlarmNow>, PortError>>;

/// Alarm reads waiting to go in one DescribeAlarms, and whether one of them leads (waits for
/// the token and makes the call for all).
#[derive(Default)]
struct Gathering {
    waiting: Vec<(String, Answer)>,
    led: bool,
}

/// DescribeAlarms takes up to 100 names a call.
const ALARMS_A_CALL: usize = 100;

/// One account's ports held to `share`.
pub fn metered(ports: AccountPorts, share: Share) -> AccountPorts {
    // CodeDeploy has quotas of its own, and the guard asks it once an action.
    let deployments = ports.deployments.clone();
    let metered = Arc::new(Metered {
        gathering: Mutex::new(Gathering::default()),
        inner: ports,
        lambda: Bucket::new(share.lambda_per_s),
        get_function: Bucket::new(share.get_function_per_s),
        alarms: Bucket::new(share.alarm_reads_per_s),
    });
    AccountPorts {
        aliases: metered.clone(),
        functions: metered.clone(),
        alarms: metered,
        deployments,
    }
}

/// An account's ports behind its buckets: Lambda's control plane, GetFunction,
/// DescribeAlarms.
struct Metered {
    inner: AccountPorts,
    lambda: Bucket,
    get_function: Bucket,
    alarms: Bucket,
    gathering: Mutex<Gathering>,
}

impl Metered {
    /// Leads the gathered alarm reads: a token, then one call for up to 100 of them, until
    /// none waits.
    async fn lead_alarm_reads(&self) {
        let leading = Leading(self);
        loop {
            self.alarms.take(Priority::Action).await;
            let batch: Vec<_> = {
                let mut g = lock(&self.gathering);
                let n = g.waiting.len().min(ALARMS_A_CALL);
                g.waiting.drain(..n).collect()
            };
            let arns: Vec<String> = batch.iter().map(|(arn, _)| arn.clone()).collect();
            let result = self.inner.alarms.alarm_states(&arns).await;
            match &result {
                Err(PortError::Throttled(_)) => self.alarms.throttled(),
                _ => self.alarms.passed(),
            }
            for (i, (_, answer)) in batch.into_iter().enumerate() {
                let one = match &result {
                    Ok(states) => Ok(states.get(i).cloned().flatten()),
                    Err(e) => Err(e.clone()),
                };
                // A reader that is gone no longer needs its answer.
                let _ = answer.send(one);
            }
            let mut g = lock(&self.gathering);
            if g.waiting.is_empty() {
                g.led = false;
                std::mem::forget(leading);
                return;
            }
        }
    }

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
        self.get_function
            .call(Priority::Action, self.inner.aliases.tags(function))
            .await
    }

    async fn is_published(&self, function: &str, version: &str) -> Result<bool, PortError> {
        self.get_function
            .call(
                Priority::Action,
                self.inner.aliases.is_published(function, version),
            )
            .await
    }

    async fn published_at(
        &self,
        function: &str,
        version: &str,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, PortError> {
        self.get_function
            .call(
                Priority::Action,
                self.inner.aliases.published_at(function, version),
            )
            .await
    }

    async fn list_functions(&self) -> Result<Vec<String>, PortError> {
        self.lambda(self.inner.aliases.list_functions()).await
    }

    async fn tag(&self, function: &str, tags: &BTreeMap<String, String>) -> Result<(), PortError> {
        self.lambda
            .call(Priority::Record, self.inner.aliases.tag(function, tags))
            .await
    }

    async fn untag(&self, function: &str, keys: &[String]) -> Result<(), PortError> {
        self.lambda
            .call(Priority::Record, self.inner.aliases.untag(function, keys))
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

/// Leads the gathered reads until dropped midway (its invocation cancelled): then the others
/// hear so (a transient failure, retried) and the next read leads.
struct Leading<'m>(&'m Metered);

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        let mut g = lock(&self.0.gathering);
        g.led = false;
        for (_, answer) in g.waiting.drain(..) {
            let _ = answer.send(Err(PortError::Transient(
                "the alarm read this one was gathered with was cancelled".into(),
            )));
        }
    }
}

#[async_trait]
impl AlarmStates for Metered {
    async fn alarm_state(&self, alarm_arn: &str) -> Result<Option<AlarmNow>, PortError> {
        let (answer, answered) = oneshot::channel();
        let lead = {
            let mut g = lock(&self.gathering);
            g.waiting.push((alarm_arn.to_string(), answer));
            !std::mem::replace(&mut g.led, true)
        };
        if lead {
            self.lead_alarm_reads().await;
        }
        answered.await.unwrap_or_else(|_| {
            Err(PortError::Transient(
                "the alarm read this one was gathered with was cancelled".into(),
            ))
        })
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
        let takers: Vec<_> = (0..n)
            .map(|_| {
                let bucket = bucket.clone();
                tokio::spawn(async move {
                    bucket.take(priority).await;
                    start.elapsed().as_secs_f64()
                })
            })
            .collect();
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
        // Two thirds of the control plane's 15/s: two thirds of GetFunction's 100/s.
        assert!((share.get_function_per_s - 100.0 * 2.0 / 3.0 / 5.0).abs() < 1e-9);
        assert_eq!(share.alarm_reads_per_s, 1.0);
    }

    /// Counts DescribeAlarms calls and the alarms each asked after; every alarm is in ALARM.
    #[derive(Default)]
    struct CountingAlarms(Mutex<Vec<usize>>);

    #[async_trait]
    impl AlarmStates for CountingAlarms {
        async fn alarm_state(&self, alarm_arn: &str) -> Result<Option<AlarmNow>, PortError> {
            let mut one = self.alarm_states(&[alarm_arn.to_string()]).await?;
            Ok(one.pop().flatten())
        }

        async fn alarm_states(
            &self,
            alarm_arns: &[String],
        ) -> Result<Vec<Option<AlarmNow>>, PortError> {
            lock(&self.0).push(alarm_arns.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(alarm_arns
                .iter()
                .map(|_| Some(AlarmNow::plain(crate::transition::AlarmState::Alarm)))
                .collect())
        }

        async fn alarms(&self, _: &AlarmPattern) -> Result<Vec<AlarmStatus>, PortError> {
            Ok(Vec::new())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn alarm_reads_that_wait_together_go_in_one_call() {
        let counting = Arc::new(CountingAlarms::default());
        let lambda = Arc::new(crate::fakes::FakeLambda::default());
        let ports = metered(
            AccountPorts {
                aliases: lambda.clone(),
                functions: lambda,
                alarms: counting.clone(),
                deployments: Arc::new(crate::fakes::FakeDeployments::default()),
            },
            Share {
                lambda_per_s: 1.0,
                get_function_per_s: 1.0,
                alarm_reads_per_s: 1.0,
            },
        );
        let reads: Vec<_> = (0..150)
            .map(|i| {
                let alarms = ports.alarms.clone();
                tokio::spawn(async move {
                    alarms
                        .alarm_state(&format!(
                            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:a{i}"
                        ))
                        .await
                })
            })
            .collect();
        for read in reads {
            let state = read.await.expect("a read").expect("an answer");
            assert_eq!(
                state.map(|s| s.state),
                Some(crate::transition::AlarmState::Alarm)
            );
        }
        // The first alone (it found no one waiting), then the rest, 100 at most a call.
        let calls = lock(&counting.0).clone();
        assert_eq!(calls.iter().sum::<usize>(), 150, "{calls:?}");
        assert!(
            calls.len() <= 3 && calls.iter().all(|n| *n <= 100),
            "{calls:?}"
        );
    }
}
