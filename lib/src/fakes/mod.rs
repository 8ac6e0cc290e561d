//! In-memory fakes of every port, for tests and offline runs. They keep state the way the
//! real services do (revisions, versions, tags) and log every mutating call, so tests can
//! assert on what happened rather than on "no error".

use crate::insight::{InsightModel, InsightRequest, ModelError, ModelReply};
use crate::notify::{AuditEvent, Notification};
use crate::policy::AlarmPattern;
use crate::ports::{
    AccountPorts, AlarmNow, AlarmStates, AlarmStatus, AuditBus, Clock, MemberAccounts, Notifier,
    PortError,
};
use crate::rollback::AliasState;
use crate::transition::{AlarmArn, AlarmState, Suppression};
use crate::watched::Watched;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::Mutex;

mod alarm_setup;
mod deployments;
mod lambda;
mod state;

pub use alarm_setup::FakeAlarmSetup;
pub use deployments::{FakeDeployments, Rollback};
pub use lambda::{sample_config, FakeLambda};
pub use state::FakeState;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A test that panicked while holding the lock has already failed; keep the state readable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The account the event catalog (`events/`) and the fakes live in.
pub const HOME_ACCOUNT: &str = "123456789012";

/// The account and region the event catalog (`events/`) and the fakes live in: where a test's
/// guard runs.
pub fn home() -> crate::home::Home {
    crate::home::Home::new(HOME_ACCOUNT, "us-east-1").expect("a valid home")
}

/// When the catalog's alarms went into the state their events carry: a fake alarm's state
/// began then unless a test says otherwise.
pub const TRANSITIONED: &str = "2026-11-20T03:12:45Z";

/// Alarm states in memory, all in [`home`]; an alarm not set does not exist.
#[derive(Default)]
pub struct FakeAlarmStates {
    states: Mutex<std::collections::BTreeMap<String, (AlarmState, DateTime<Utc>)>>,
    /// Alarms whose actions someone disabled, and composite alarms' suppressions.
    disabled: Mutex<std::collections::BTreeSet<String>>,
    suppressed: Mutex<BTreeMap<String, Suppression>>,
    /// What each alarm's metrics name (none set: a composite alarm's none).
    watched: Mutex<BTreeMap<String, Watched>>,
    /// Where these alarms are (`None`: [`home`]).
    account: Option<String>,
}

impl FakeAlarmStates {
    /// Alarms of another account (in [`home`]'s region).
    pub fn in_account(account: &str) -> Self {
        Self {
            account: Some(account.into()),
            ..Self::default()
        }
    }

    /// The alarm in `state` since the catalog's transitions ([`TRANSITIONED`]).
    pub fn set(&self, alarm: &str, state: AlarmState) {
        let since = DateTime::parse_from_rfc3339(TRANSITIONED)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        self.set_since(alarm, state, since);
    }

    pub fn set_since(&self, alarm: &str, state: AlarmState, since: DateTime<Utc>) {
        lock(&self.states).insert(alarm.into(), (state, since));
    }

    /// `aws cloudwatch disable-alarm-actions` (`false`) or `enable-alarm-actions` (`true`).
    pub fn set_actions_enabled(&self, alarm: &str, enabled: bool) {
        let mut disabled = lock(&self.disabled);
        if enabled {
            disabled.remove(alarm);
        } else {
            disabled.insert(alarm.into());
        }
    }

    /// The function alias (or none) the alarm's metrics name.
    pub fn set_watched(&self, alarm: &str, watched: Watched) {
        lock(&self.watched).insert(alarm.into(), watched);
    }

    /// A composite alarm's actions suppressed (`None`: no longer).
    pub fn set_suppressed(&self, alarm: &str, suppression: Option<Suppression>) {
        let mut suppressed = lock(&self.suppressed);
        match suppression {
            Some(s) => suppressed.insert(alarm.into(), s),
            None => suppressed.remove(alarm),
        };
    }
}

#[async_trait]
impl AlarmStates for FakeAlarmStates {
    async fn alarm_state(&self, alarm_arn: &str) -> Result<Option<AlarmNow>, PortError> {
        // As CloudWatch answers: only alarms of its own account and region exist.
        let here = match &self.account {
            Some(account) => crate::home::Home::new(account, &home().region).unwrap_or(home()),
            None => home(),
        };
        let Some(name) = AlarmArn::parse(alarm_arn)
            .filter(|a| here.alarm_arn(a.name) == alarm_arn)
            .map(|a| a.name)
        else {
            return Ok(None);
        };
        Ok(lock(&self.states).get(name).map(|(state, since)| AlarmNow {
            state: *state,
            since: Some(*since),
            actions_enabled: !lock(&self.disabled).contains(name),
            suppressed: lock(&self.suppressed).get(name).cloned(),
            watched: lock(&self.watched)
                .get(name)
                .cloned()
                .unwrap_or(Watched::NoMetrics),
        }))
    }

    async fn alarms(&self, pattern: &AlarmPattern) -> Result<Vec<AlarmStatus>, PortError> {
        Ok(lock(&self.states)
            .iter()
            .filter(|(name, _)| pattern.matches(name))
            .map(|(name, (state, since))| AlarmStatus {
                name: name.clone(),
                state: *state,
                since: *since,
                actions_enabled: !lock(&self.disabled).contains(name),
                watched: lock(&self.watched)
                    .get(name)
                    .cloned()
                    .unwrap_or(Watched::NoMetrics),
            })
            .collect())
    }
}

/// Member accounts in memory: each its own Lambda and alarms; a role that cannot be assumed
/// where [`FakeMembers::refuse`] says so.
#[derive(Default)]
pub struct FakeMembers {
    accounts: Mutex<BTreeMap<String, AccountPorts>>,
    refused: Mutex<std::collections::BTreeSet<String>>,
    asked: Mutex<Vec<(String, String)>>,
}

impl FakeMembers {
    /// Account `account`, with `lambda` and its own alarms.
    pub fn add(
        &self,
        account: &str,
        lambda: std::sync::Arc<FakeLambda>,
    ) -> std::sync::Arc<FakeAlarmStates> {
        let alarms = std::sync::Arc::new(FakeAlarmStates::in_account(account));
        lock(&self.accounts).insert(
            account.into(),
            AccountPorts {
                aliases: lambda.clone(),
                functions: lambda.clone(),
                alarms: alarms.clone(),
                deployments: std::sync::Arc::new(FakeDeployments::over(lambda)),
            },
        );
        alarms
    }

    /// The member role of `account` cannot be assumed (missing, or trusting someone else).
    pub fn refuse(&self, account: &str) {
        lock(&self.refused).insert(account.into());
    }

    /// Each account and role asked for, in order.
    pub fn asked(&self) -> Vec<(String, String)> {
        lock(&self.asked).clone()
    }
}

#[async_trait]
impl MemberAccounts for FakeMembers {
    async fn member(&self, account: &str, role: &str) -> Result<AccountPorts, PortError> {
        lock(&self.asked).push((account.into(), role.into()));
        if lock(&self.refused).contains(account) {
            return Err(PortError::Other(format!(
                "cannot assume role {role} in account {account}: AccessDenied: not authorized to perform sts:AssumeRole"
            )));
        }
        lock(&self.accounts)
            .get(account)
            .cloned()
            .ok_or_else(|| PortError::Other(format!("no fake account {account}")))
    }
}

/// Records what would have been published.
#[derive(Default)]
pub struct FakeNotifier {
    pub sent: Mutex<Vec<(String, Notification)>>,
    times: Mutex<Vec<tokio::time::Instant>>,
    fail: Mutex<Option<PortError>>,
}

impl FakeNotifier {
    pub fn sent(&self) -> Vec<(String, Notification)> {
        lock(&self.sent).clone()
    }

    /// When each notification was published (tokio's clock).
    pub fn sent_at(&self) -> Vec<tokio::time::Instant> {
        lock(&self.times).clone()
    }

    /// Every publish fails with `e` from now on.
    pub fn fail_with(&self, e: PortError) {
        *lock(&self.fail) = Some(e);
    }
}

#[async_trait]
impl Notifier for FakeNotifier {
    async fn publish(&self, topic_arn: &str, notification: &Notification) -> Result<(), PortError> {
        if let Some(e) = lock(&self.fail).clone() {
            return Err(e);
        }
        lock(&self.sent).push((topic_arn.into(), notification.clone()));
        lock(&self.times).push(tokio::time::Instant::now());
        Ok(())
    }
}

/// The alarm queue in memory: what was made visible again, and after how long.
#[derive(Default)]
pub struct FakeAlarmQueue {
    retried: Mutex<Vec<(String, Vec<String>, std::time::Duration)>>,
}

impl FakeAlarmQueue {
    /// Each call: the queue's ARN, the receipt handles, the delay.
    pub fn retried(&self) -> Vec<(String, Vec<String>, std::time::Duration)> {
        lock(&self.retried).clone()
    }
}

#[async_trait]
impl crate::ports::AlarmQueue for FakeAlarmQueue {
    async fn retry_after(
        &self,
        queue_arn: &str,
        receipts: &[String],
        delay: std::time::Duration,
    ) -> Result<(), PortError> {
        lock(&self.retried).push((queue_arn.into(), receipts.to_vec(), delay));
        Ok(())
    }
}

/// Records what would have been put on the bus.
#[derive(Default)]
pub struct FakeAuditBus {
    pub events: Mutex<Vec<(String, AuditEvent)>>,
}

impl FakeAuditBus {
    pub fn events(&self) -> Vec<(String, AuditEvent)> {
        lock(&self.events).clone()
    }

    pub fn detail_types(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .map(|(_, e)| e.detail_type)
            .collect()
    }
}

#[async_trait]
impl AuditBus for FakeAuditBus {
    async fn put(&self, bus: &str, event: &AuditEvent) -> Result<(), PortError> {
        lock(&self.events).push((bus.into(), event.clone()));
        Ok(())
    }
}

/// A clock that stands still until moved.
pub struct FakeClock(Mutex<DateTime<Utc>>);

impl FakeClock {
    pub fn at(t: DateTime<Utc>) -> Self {
        Self(Mutex::new(t))
    }

    pub fn advance(&self, by: chrono::Duration) {
        *lock(&self.0) += by;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> DateTime<Utc> {
        *lock(&self.0)
    }
}

/// A model that answers after `delay` with a fixed reply (or error).
pub struct FakeInsightModel {
    delay: std::time::Duration,
    reply: Result<ModelReply, ModelError>,
    calls: std::sync::atomic::AtomicU32,
}

impl FakeInsightModel {
    pub fn answering(delay: std::time::Duration, tool_input: serde_json::Value) -> Self {
        Self {
            delay,
            reply: Ok(ModelReply {
                tool_input,
                input_tokens: 100,
                output_tokens: 30,
            }),
            calls: std::sync::atomic::AtomicU32::new(0),
        }
    }

    pub fn failing(error: ModelError) -> Self {
        Self {
            delay: std::time::Duration::ZERO,
            reply: Err(error),
            calls: std::sync::atomic::AtomicU32::new(0),
        }
    }

    pub fn calls(&self) -> u32 {
        self.calls.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait]
impl InsightModel for FakeInsightModel {
    async fn converse(&self, _request: &InsightRequest) -> Result<ModelReply, ModelError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.reply.clone()
    }
}

/// Every backend faked, on one clock: what a test's guard runs on.
pub struct FakeBackends {
    pub lambda: std::sync::Arc<FakeLambda>,
    pub alarms: std::sync::Arc<FakeAlarmStates>,
    /// CodeDeploy over `lambda`: no deployment unless a test starts one.
    pub deployments: std::sync::Arc<FakeDeployments>,
    pub notifier: std::sync::Arc<FakeNotifier>,
    pub audit: std::sync::Arc<FakeAuditBus>,
    /// The guard's state table, shared by every guard made from these backends.
    pub state: std::sync::Arc<FakeState>,
    pub clock: std::sync::Arc<FakeClock>,
}

impl FakeBackends {
    /// `lambda` as given, `alarm` in ALARM, the clock at `now`.
    pub fn new(lambda: FakeLambda, alarm: &str, now: DateTime<Utc>) -> Self {
        let alarms = FakeAlarmStates::default();
        alarms.set(alarm, AlarmState::Alarm);
        let lambda = std::sync::Arc::new(lambda);
        Self {
            deployments: std::sync::Arc::new(FakeDeployments::over(lambda.clone())),
            lambda,
            alarms: std::sync::Arc::new(alarms),
            notifier: std::sync::Arc::default(),
            audit: std::sync::Arc::default(),
            state: std::sync::Arc::default(),
            clock: std::sync::Arc::new(FakeClock::at(now)),
        }
    }

    pub fn ports(&self) -> crate::guard::Ports {
        crate::guard::Ports {
            aliases: self.lambda.clone(),
            functions: self.lambda.clone(),
            alarms: self.alarms.clone(),
            deployments: self.deployments.clone(),
            notifier: self.notifier.clone(),
            audit: self.audit.clone(),
            state: self.state.clone(),
            clock: self.clock.clone(),
        }
    }

    /// An operator's commands over these backends, in [`home`]'s account.
    pub fn operating(&self) -> crate::operator::Operating<'_> {
        crate::operator::Operating {
            aliases: self.lambda.as_ref(),
            functions: self.lambda.as_ref(),
            state: self.state.as_ref(),
            clock: self.clock.as_ref(),
            retry: fast_retry(),
            account: HOME_ACCOUNT,
            by: "oncall",
        }
    }

    /// `guard targets` over these backends, in [`home`]'s account (metrics not read).
    pub async fn targets(
        &self,
        policy: &crate::policy::Policy,
    ) -> Result<crate::targets::Targets, crate::operator::OperatorError> {
        self.targets_with(policy, None).await
    }

    /// `guard targets`, reading the targets' traffic from `metrics`.
    pub async fn targets_with(
        &self,
        policy: &crate::policy::Policy,
        metrics: Option<&dyn crate::ports::AlarmSetup>,
    ) -> Result<crate::targets::Targets, crate::operator::OperatorError> {
        let ports = self.ports().own_account();
        let retry = fast_retry();
        let seeing = crate::targets::Seeing {
            ports: &ports,
            state: self.state.as_ref(),
            account: HOME_ACCOUNT,
            clock: self.clock.as_ref(),
            retry: &retry,
            metrics,
        };
        crate::targets::targets(policy, &seeing).await
    }

    /// `guard protect` / `unprotect` over these backends and `alarms`.
    pub fn protecting<'a>(
        &'a self,
        alarms: &'a dyn crate::ports::AlarmSetup,
    ) -> crate::operator::Protecting<'a> {
        crate::operator::Protecting {
            aliases: self.lambda.as_ref(),
            alarms,
            clock: self.clock.as_ref(),
            retry: fast_retry(),
            account_flag: String::new(),
        }
    }

    /// What the guard remembers of `function`'s `alias` in [`home`]'s account.
    pub fn state_of(&self, function: &str, alias: &str) -> crate::state::TargetState {
        self.state.get(&crate::state::StateKey::new(
            HOME_ACCOUNT,
            function,
            Some(alias),
        ))
    }

    /// A guard over these backends with millisecond retries; a new one is a new instance,
    /// remembering nothing in memory (the state table is the backends').
    pub fn guard(&self, policy: crate::policy::Policy) -> crate::guard::Guard {
        self.guard_in(policy, home())
    }

    /// The same, for a guard running in another account or region than the fakes' [`home`].
    pub fn guard_in(
        &self,
        policy: crate::policy::Policy,
        home: crate::home::Home,
    ) -> crate::guard::Guard {
        crate::guard::Guard::new(policy, self.ports(), home).with_retry(fast_retry())
    }
}

/// The retry schedule for tests: the same attempts, millisecond delays.
pub fn fast_retry() -> crate::retry::RetryPolicy {
    crate::retry::RetryPolicy {
        attempts: 4,
        base_delay: std::time::Duration::from_millis(1),
        max_delay: std::time::Duration::from_millis(4),
        jitter: false,
    }
}

/// An alarm storm: `targets` functions (`svc0`…, alias `live` on version 3 of 3), each guarded
/// by `alarms_per_target` alarms in ALARM, and 20 deliveries of each alarm's one transition over
/// the three alarm transports (the catalog's EventBridge, SNS and Lambda-action events),
/// shuffled with a fixed seed so that a run can be replayed. Each target should move once.
pub struct Storm {
    pub backends: FakeBackends,
    pub policy: crate::policy::Policy,
    pub deliveries: Vec<String>,
}

/// Deliveries of one transition in a storm.
pub const STORM_REPEATS: usize = 20;

impl Storm {
    pub fn new(targets: usize, alarms_per_target: usize) -> Self {
        let mut policy = String::from("[guard]\ncooldown_minutes = 30\n");
        let mut lambda = FakeLambda::default();
        for t in 0..targets {
            policy.push_str(&format!(
                "[[target]]\nname = \"svc{t}\"\nfunction = \"svc{t}\"\nalias = \"live\"\n[[trigger]]\nalarm = \"svc{t}-*\"\ntarget = \"svc{t}\"\naction = \"rollback-alias\"\n"
            ));
            lambda = lambda.with_function(&format!("svc{t}"), 3, "live", AliasState::on("3"));
        }
        let backends = FakeBackends::new(
            lambda,
            "unused",
            "2026-11-20T03:13:00Z".parse().expect("a valid time"),
        );
        let templates = [
            include_str!("../../../events/eventbridge-alarm.json"),
            include_str!("../../../events/sns-alarm.json"),
            include_str!("../../../events/lambda-action-alarm.json"),
        ];
        let mut deliveries = Vec::new();
        for t in 0..targets {
            for a in 0..alarms_per_target {
                let alarm = format!("svc{t}-alarm{a}");
                backends.alarms.set(&alarm, AlarmState::Alarm);
                for d in 0..STORM_REPEATS {
                    deliveries.push(templates[d % 3].replace("orders-ai-error-rate", &alarm));
                }
            }
        }
        // A fixed shuffle (an LCG).
        let mut state: u64 = 0x5eed;
        for i in (1..deliveries.len()).rev() {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            deliveries.swap(i, (state >> 33) as usize % (i + 1));
        }
        Self {
            backends,
            policy: crate::policy::Policy::from_toml(&policy).expect("the storm's policy is valid"),
            deliveries,
        }
    }

    /// A warm guard (one instance) over the storm's backends.
    pub fn guard(&self) -> crate::guard::Guard {
        self.backends.guard(self.policy.clone())
    }
}
