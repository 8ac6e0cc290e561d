//! A bad day, simulated (`make bench-fleet`): every alarm of a fleet fires at the same moment
//! and the guard's real code restores the aliases over fakes that enforce AWS's API quotas per
//! account and pool, on Tokio's paused clock. What decides the time to restore is the quota,
//! not the CPU: Lambda's control-plane calls share 15 requests/s per account and region (not
//! raisable; GetFunction has its own 100/s), CloudWatch DescribeAlarms 9/s. Each call takes a
//! latency; a call beyond its pool's budget fails as AWS answers it,
//! `TooManyRequestsException`, after the same latency.
//!
//! The guard runs as the template deploys it: `GuardReservedConcurrency` instances (5).
//!
//! - **new**: the alarms through the alarm queue, ten messages an invocation handled together
//!   (`Guard::handle_batch`), each instance its own guard held to its part of the policy's
//!   share of the quotas (`quota`); a message that fails comes back after the queue's
//!   visibility timeout (6 min), three receives in all. The record read and a version's
//!   existence are GetFunction calls, in their own 100/s pool.
//! - **baseline**: the previous release, one event an invocation from EventBridge, nothing
//!   held back; an invocation that fails is retried by Lambda's asynchronous invocation one
//!   minute later, then two. Its calls are charged as it made them: the record read as
//!   ListTags, the version lookup as ListVersionsByFunction, both in the 15/s pool.

mod quotas;

use quotas::{lock, IdleCodeDeploy, Pool, QuotaAlarms, QuotaLambda, SimState, PIPELINE};
pub use quotas::{
    Path, Quota, DESCRIBE_ALARMS_PER_S, GET_FUNCTION_PER_S, LAMBDA_CONTROL_PLANE_PER_S,
};
use rollback_guard::fakes::{
    FakeAlarmStates, FakeAuditBus, FakeClock, FakeLambda, FakeNotifier, FakeState,
};
use rollback_guard::fleet::PROTECT_TAG;
use rollback_guard::ports::{
    AccountPorts, AliasManager, MemberAccounts, PortError, Ports, StateStore,
};
use rollback_guard::quota::Share;
use rollback_guard::retry::RetryPolicy;
use rollback_guard::rollback::AliasState;
use rollback_guard::transition::AlarmState;
use rollback_guard::watched::{Watched, WatchedAlias};
use rollback_guard::{Guard, Home, Outcome, Policy};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The template's `GuardReservedConcurrency`.
pub const GUARD_CONCURRENCY: usize = 5;
/// Lambda's asynchronous invocation retries a failed event after these delays.
const ASYNC_RETRY_DELAYS: [Duration; 2] = [Duration::from_secs(60), Duration::from_secs(120)];
/// The alarm queue as the template wires it: a failed message comes back after its visibility
/// timeout, three receives in all; Lambda's pollers receive ten messages at a time and gather
/// up to `BatchSize` of them for an invocation, or what came within the batching window.
const QUEUE_RETRY_DELAYS: [Duration; 2] = [Duration::from_secs(1800), Duration::from_secs(1800)];
pub const QUEUE_BATCH: usize = 100;
const QUEUE_RECEIVE: usize = 10;
pub const QUEUE_WINDOW: Duration = Duration::from_secs(1);
const QUEUE_POLL: Duration = Duration::from_millis(20);
const CENTRAL: &str = "123456789012";

/// One scenario: `targets` aliases spread over `accounts` accounts, `alarms_per_target` alarms
/// each, every alarm in ALARM at 0;
/// the first account's deploy pipelines meanwhile calling its control plane `pipeline_per_s`
/// times a second.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    pub name: &'static str,
    pub targets: usize,
    pub accounts: usize,
    pub pipeline_per_s: f64,
    /// Alarms on each target (its error rate, its latency...), all firing at once.
    pub alarms_per_target: usize,
    /// `guard.max_rollbacks_per_hour`: the blast-radius cap, per account.
    pub cap: u32,
}

/// One scenario's result, as `target/bench/fleet.json` holds it.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub scenario: &'static str,
    pub path: &'static str,
    pub targets: usize,
    pub accounts: usize,
    /// Every rollback needs at least one read of the alias and one mutation in its account's
    /// 15/s pool: 2N/15 s for the account with the most targets.
    pub physical_limit_s: f64,
    pub last_restore_s: Option<f64>,
    pub p50_restore_s: Option<f64>,
    /// Each restore's time, in order (the figure of the bad day).
    pub restores_s: Vec<f64>,
    pub calls_by_api: BTreeMap<String, u64>,
    pub throttled_calls: u64,
    /// The deploy pipelines' calls refused meanwhile (what the guard's share is to spare).
    pub pipeline_throttled_calls: u64,
    pub unrestored: usize,
    pub duplicate_mutations: usize,
    /// Invocations that failed (their calls throttled past the guard's retries): Lambda's
    /// asynchronous retries took them again a minute or two later.
    pub failed_invocations: u64,
    /// The cap in force, the alarms it held back, and the notifications people got.
    pub cap: u32,
    pub held_by_cap: u64,
    pub pages: usize,
}

/// One account of the scenario: its functions and alarms, behind the quota.
struct Account {
    lambda: Arc<FakeLambda>,
    ports: AccountPorts,
}

/// The member accounts, their role assumed at once (STS is not the bottleneck here).
struct Members(BTreeMap<String, AccountPorts>);

#[async_trait::async_trait]
impl MemberAccounts for Members {
    async fn member(&self, account: &str, _role: &str) -> Result<AccountPorts, PortError> {
        self.0
            .get(account)
            .cloned()
            .ok_or_else(|| PortError::Other(format!("no simulated account {account}")))
    }
}

fn account_id(i: usize) -> String {
    if i == 0 {
        CENTRAL.into()
    } else {
        format!("{}", 200_000_000_000u64 + i as u64)
    }
}

/// The name of target `t`'s alarm `k`.
fn alarm_name(t: usize, k: usize) -> String {
    format!("svc{t}-alarm{k}")
}

/// The event of target `t`'s alarm `k` in `account` (the catalog's fleet event, renamed).
fn event(t: usize, k: usize, account: &str) -> serde_json::Value {
    let text = include_str!("../../../events/eventbridge-fleet-alarm.json")
        .replace("guarded-payments-error-rate", &alarm_name(t, k))
        .replace("payments", &format!("svc{t}"))
        .replace(CENTRAL, account);
    serde_json::from_str(&text).expect("the catalog's fleet event")
}

/// Runs `scenario` on the paused clock (call it inside a runtime whose time is paused), the
/// guard's `[guard]` settings the policy's defaults plus `settings` (TOML lines).
pub async fn run(scenario: Scenario, path: Path, latency: Duration, settings: &str) -> Run {
    let quota = Arc::new(Quota::new(latency));
    let mut accounts: Vec<(String, Account)> = Vec::new();
    // Delivered in the order the alarms fired: target by target, the accounts interleaved.
    let mut events: Vec<(usize, serde_json::Value)> = Vec::new();
    for a in 0..scenario.accounts {
        let id = account_id(a);
        let mut lambda = FakeLambda::default();
        let alarms = FakeAlarmStates::in_account(&id);
        for t in (0..scenario.targets).filter(|t| t % scenario.accounts == a) {
            let function = format!("svc{t}");
            lambda = lambda.with_function(&function, 3, "live", AliasState::on("3"));
            lambda.set_tag(&function, PROTECT_TAG, "live");
            for k in 0..scenario.alarms_per_target {
                alarms.set(&alarm_name(t, k), AlarmState::Alarm);
                alarms.set_watched(
                    &alarm_name(t, k),
                    Watched::Alias(WatchedAlias {
                        function: function.clone(),
                        alias: "live".into(),
                        version: None,
                    }),
                );
                events.push((t, event(t, k, &id)));
            }
        }
        let lambda = Arc::new(lambda);
        let quoted = Arc::new(QuotaLambda {
            inner: lambda.clone(),
            account: id.clone(),
            quota: quota.clone(),
            path,
        });
        let ports = AccountPorts {
            aliases: quoted.clone(),
            functions: quoted,
            alarms: Arc::new(QuotaAlarms {
                inner: Arc::new(alarms),
                account: id.clone(),
                quota: quota.clone(),
            }),
            deployments: Arc::new(IdleCodeDeploy { latency }),
        };
        accounts.push((id, Account { lambda, ports }));
    }
    let listed: Vec<String> = accounts.iter().map(|(id, _)| format!("\"{id}\"")).collect();
    let cap = if settings.contains("max_rollbacks_per_hour") {
        String::new()
    } else {
        format!("max_rollbacks_per_hour = {}\n", scenario.cap)
    };
    let policy = Policy::from_toml(&format!(
        "[guard]\n{settings}\n{cap}accounts = [{}]\nmember_role = \"arn:aws:iam::{{account}}:role/rollback-guard-member\"\nnotify_topic_arn = \"arn:aws:sns:us-east-1:{CENTRAL}:rollback-guard\"\n\n[[trigger]]\nalarm = \"svc*\"\ntarget = \"from-alarm\"\naction = \"rollback-alias\"\n",
        listed.join(", ")
    ))
    .expect("the simulation's policy");
    let state: Arc<dyn StateStore> = Arc::new(SimState {
        inner: FakeState::default(),
        latency,
        quota: quota.clone(),
        path,
    });
    // People's inbox, whichever instance pages them.
    let notifier = Arc::new(FakeNotifier::default());
    // One guard an instance, as Lambda runs them: apart, but for the state table.
    let instance = || {
        let central = &accounts[0].1.ports;
        let ports = Ports {
            aliases: central.aliases.clone(),
            functions: central.functions.clone(),
            alarms: central.alarms.clone(),
            deployments: central.deployments.clone(),
            notifier: notifier.clone(),
            audit: Arc::new(FakeAuditBus::default()),
            state: state.clone(),
            clock: Arc::new(FakeClock::at(
                "2026-11-20T03:13:00Z".parse().expect("a valid time"),
            )),
        };
        let members = Members(
            accounts
                .iter()
                .skip(1)
                .map(|(id, a)| (id.clone(), a.ports.clone()))
                .collect(),
        );
        let home = Home::new(CENTRAL, "us-east-1").expect("a valid home");
        let guard = Guard::new(policy.clone(), ports, home).with_members(Arc::new(members));
        match path {
            Path::New => {
                guard.with_quota_share(Share::per_instance(&policy.guard, GUARD_CONCURRENCY as u32))
            }
            // Its retries were not jittered.
            Path::Baseline => guard.with_retry(RetryPolicy {
                jitter: false,
                ..RetryPolicy::default()
            }),
        }
    };
    let guards: Vec<Arc<Guard>> = match path {
        Path::New => (0..GUARD_CONCURRENCY)
            .map(|_| Arc::new(instance()))
            .collect(),
        // The previous release's instances shared nothing either; one guard for all five
        // only lets them share what a warm instance remembers, to the baseline's advantage.
        Path::Baseline => {
            let shared = Arc::new(instance());
            (0..GUARD_CONCURRENCY).map(|_| shared.clone()).collect()
        }
    };

    events.sort_by_key(|(t, _)| *t);
    // Several alarms a target: in no particular order (the same one each run).
    if scenario.alarms_per_target > 1 {
        fastrand::Rng::with_seed(18).shuffle(&mut events);
    }
    let start = Instant::now();
    let pipeline = (scenario.pipeline_per_s > 0.0).then(|| {
        let (quota, account) = (quota.clone(), accounts[0].0.clone());
        let every = Duration::from_secs_f64(1.0 / scenario.pipeline_per_s);
        tokio::spawn(async move {
            loop {
                let _ = quota
                    .call(&account, PIPELINE, Pool::LambdaControlPlane)
                    .await;
                tokio::time::sleep(every.saturating_sub(quota.latency)).await;
            }
        })
    });
    let events = events.into_iter().map(|(_, e)| e).collect();
    let (failed, held) = deliver(guards, events, path).await;
    if let Some(pipeline) = pipeline {
        pipeline.abort();
    }
    let mut run = outcome(scenario, path, &accounts, &quota, start, failed).await;
    run.held_by_cap = held;
    run.pages = notifier.sent().len();
    run
}

/// Delivers `events` to the instances as the path's transport does; how many deliveries
/// failed (each retried as that transport retries), and how many the cap held back.
async fn deliver(
    guards: Vec<Arc<Guard>>,
    events: Vec<serde_json::Value>,
    path: Path,
) -> (u64, u64) {
    let (batch, receive, window, retries) = match path {
        Path::New => (QUEUE_BATCH, QUEUE_RECEIVE, QUEUE_WINDOW, QUEUE_RETRY_DELAYS),
        Path::Baseline => (1, 1, Duration::ZERO, ASYNC_RETRY_DELAYS),
    };
    let pending = Arc::new(AtomicU64::new(events.len() as u64));
    let queue: VecDeque<(serde_json::Value, usize)> = events.into_iter().map(|e| (e, 0)).collect();
    let queue = Arc::new(Mutex::new(queue));
    let failed = Arc::new(AtomicU64::new(0));
    let held = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for guard in guards {
        let (queue, pending, failed) = (queue.clone(), pending.clone(), failed.clone());
        let held = held.clone();
        workers.push(tokio::spawn(async move {
            while pending.load(Ordering::SeqCst) > 0 {
                // Receive until the batch is full or the window since its first message ends.
                let mut taken: Vec<(serde_json::Value, usize)> = Vec::new();
                let mut first = None;
                loop {
                    {
                        let mut q = lock(&queue);
                        let n = q.len().min(receive).min(batch - taken.len());
                        taken.extend(q.drain(..n));
                    }
                    if !taken.is_empty() && first.is_none() {
                        first = Some(Instant::now());
                    }
                    let full = taken.len() == batch;
                    let waited = first.is_some_and(|f| f.elapsed() >= window);
                    if full || waited || pending.load(Ordering::SeqCst) == 0 {
                        break;
                    }
                    tokio::time::sleep(QUEUE_POLL).await;
                }
                if taken.is_empty() {
                    continue;
                }
                let texts: Vec<String> = taken.iter().map(|(e, _)| e.to_string()).collect();
                let bodies: Vec<&[u8]> = texts.iter().map(|t| t.as_bytes()).collect();
                let reports = guard.handle_batch(&bodies).await;
                for ((event, attempt), report) in taken.into_iter().zip(reports) {
                    if report.outcome == Outcome::Failed {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                    if report.outcome == Outcome::Skipped
                        && report.reason.contains("blast-radius cap")
                    {
                        held.fetch_add(1, Ordering::SeqCst);
                    }
                    match retries.get(attempt) {
                        Some(delay) if report.outcome == Outcome::Failed => {
                            let (queue, delay) = (queue.clone(), *delay);
                            tokio::spawn(async move {
                                tokio::time::sleep(delay).await;
                                lock(&queue).push_back((event, attempt + 1));
                            });
                        }
                        _ => {
                            pending.fetch_sub(1, Ordering::SeqCst);
                        }
                    }
                }
            }
        }));
    }
    for w in workers {
        w.await.expect("a worker");
    }
    (failed.load(Ordering::SeqCst), held.load(Ordering::SeqCst))
}

/// What came of it: when each alias was first moved, what is left unrestored, the calls.
async fn outcome(
    scenario: Scenario,
    path: Path,
    accounts: &[(String, Account)],
    quota: &Quota,
    start: Instant,
    failed_invocations: u64,
) -> Run {
    let mut restores = Vec::new();
    let mut duplicate_mutations = 0;
    let mut unrestored = 0;
    for (_, account) in accounts {
        let mut updates: BTreeMap<String, Vec<Instant>> = BTreeMap::new();
        for (call, at) in account.lambda.timeline() {
            if let Some(rest) = call.strip_prefix("UpdateAlias ") {
                let function = rest.split(':').next().unwrap_or_default().to_string();
                updates.entry(function).or_default().push(at);
            }
        }
        for (function, times) in &updates {
            duplicate_mutations += times.len() - 1;
            let restored = account
                .lambda
                .alias(function, "live")
                .is_some_and(|a| a.version == "2" && a.weights.is_empty());
            if restored {
                restores.push(times[0].duration_since(start).as_secs_f64());
            }
        }
        let targets = account.lambda.list_functions().await.unwrap_or_default();
        unrestored += targets
            .iter()
            .filter(|f| {
                account
                    .lambda
                    .alias(f, "live")
                    .is_none_or(|a| a.version != "2" || !a.weights.is_empty())
            })
            .count();
    }
    restores.sort_by(f64::total_cmp);
    let calls_by_api = lock(&quota.calls).clone();
    let most = scenario.targets.div_ceil(scenario.accounts) as f64;
    Run {
        scenario: scenario.name,
        path: path.as_str(),
        targets: scenario.targets,
        accounts: scenario.accounts,
        physical_limit_s: 2.0 * most / LAMBDA_CONTROL_PLANE_PER_S,
        last_restore_s: restores.last().copied(),
        p50_restore_s: restores.get(restores.len() / 2).copied(),
        restores_s: restores.clone(),
        calls_by_api,
        throttled_calls: quota.throttled.load(Ordering::SeqCst),
        pipeline_throttled_calls: quota.others_throttled.load(Ordering::SeqCst),
        unrestored,
        duplicate_mutations,
        failed_invocations,
        cap: scenario.cap,
        held_by_cap: 0,
        pages: 0,
    }
}
