//! The guard Lambda function: one handler for every transport an alarm transition arrives on
//! (EventBridge, SNS, the alarm's Lambda action, and EventBridge through an SQS queue). All
//! logic lives in the `rollback-guard` library; this crate maps its reports onto Lambda's
//! success and error responses.

use aws_config::SdkConfig;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse};
use lambda_runtime::{Diagnostic, LambdaEvent};
use rollback_guard::emf::Metric;
use rollback_guard::intake::QueueMessage;
use rollback_guard::ports::AlarmQueue;
use rollback_guard::quota::Share;
use rollback_guard::{adapters, Guard, Home, Outcome, Report};
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::OnceLock;
use tracing::{info, warn};

/// The handler's errors, with stable `errorType`s for alarms and failure destinations.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// Malformed, untrusted or unrecognised input: retrying it cannot help.
    #[error("event rejected: {0}")]
    Rejected(String),
    /// The action failed; the target is as the `Rollback Failed` notification describes.
    #[error("rollback failed: {0}")]
    Failed(String),
    /// The outcome is settled but telling people about it failed.
    #[error("{outcome}, but not announced: {notes}")]
    NotAnnounced {
        outcome: &'static str,
        notes: String,
    },
    /// The invocation does not say which account and region the guard runs in: it acts on
    /// nothing until it knows.
    #[error("cannot tell where the guard runs: {0}")]
    UnknownHome(String),
}

impl From<GuardError> for Diagnostic {
    fn from(e: GuardError) -> Self {
        let error_type = match e {
            GuardError::Rejected(_) => "Guard.Rejected",
            GuardError::Failed(_) => "Guard.RollbackFailed",
            GuardError::NotAnnounced { .. } => "Guard.NotAnnounced",
            GuardError::UnknownHome(_) => "Guard.UnknownHome",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}

/// Turns a report into the function's response: the report itself, or an error.
pub fn response(report: Report) -> Result<Value, GuardError> {
    match report.outcome {
        Outcome::Rejected => return Err(GuardError::Rejected(report.reason)),
        Outcome::Failed => return Err(GuardError::Failed(report.reason)),
        _ => {}
    }
    if !report.notes.is_empty() {
        return Err(GuardError::NotAnnounced {
            outcome: report.outcome.as_str(),
            notes: report.notes.join("; "),
        });
    }
    serde_json::to_value(&report)
        .map_err(|e| GuardError::Failed(format!("cannot encode report: {e}")))
}

/// The guard for `home`, from what the cold start built (its state in the table every
/// instance shares), held to `share` of each account's API quotas; an organisation's guard
/// (the policy names `guard.member_role`) with clients for member accounts, made on first use.
pub fn guard(
    policy: &rollback_guard::Policy,
    ports: &rollback_guard::Ports,
    insights: &rollback_guard::insight::InsightEngine,
    config: &SdkConfig,
    share: Share,
    home: Home,
) -> Guard {
    let guard = Guard::new(policy.clone(), ports.clone(), home)
        .with_insights(insights.clone())
        .with_quota_share(share);
    adapters::with_member_accounts(guard, config)
}

/// How many instances of the guard function may run at once (`GUARD_INSTANCES`, the
/// template's reserved concurrency; 1 when unset): each holds to its part of the policy's
/// share of the quotas.
pub fn instances() -> Result<u32, String> {
    match std::env::var("GUARD_INSTANCES") {
        Err(_) => Ok(1),
        Ok(n) => n
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| format!("GUARD_INSTANCES: expected a positive number, got `{n}`")),
    }
}

/// The event as Lambda delivered it: the runtime checks that it is JSON and hands over the
/// text, which the guard reads straight into the transport's shape (no JSON tree in between).
pub type Payload = Box<RawValue>;

/// The guard of this function instance. Lambda tells the function's own ARN (and so its
/// account and region) only with an invocation, so the guard is made at the first one, from
/// the policy and clients built at cold start, and kept for the instance's life.
pub struct GuardFunction {
    build: Box<dyn Fn(Home) -> Guard + Send + Sync>,
    /// The alarm queue, to bring a message that failed back soon (none: it comes back after
    /// the queue's visibility timeout).
    queue: Option<Arc<dyn AlarmQueue>>,
    /// Where the home comes from when the invocation's function ARN is not an ARN: local
    /// runtimes such as `cargo lambda watch` pass a placeholder. Then the credentials' own
    /// account (STS) and the configured region, as for the CLI; never the event.
    caller: Option<SdkConfig>,
    guard: OnceLock<Guard>,
}

impl GuardFunction {
    /// `build` makes the guard for the account and region the first invocation names;
    /// `caller`, when given, answers for an invocation that names no function ARN.
    pub fn new(
        build: impl Fn(Home) -> Guard + Send + Sync + 'static,
        caller: Option<SdkConfig>,
    ) -> Self {
        Self {
            build: Box::new(build),
            queue: None,
            caller,
            guard: OnceLock::new(),
        }
    }

    /// Brings the messages of a batch the guard could not settle back after
    /// [`RETRY_FAILED_AFTER`] through `queue`.
    pub fn with_queue(mut self, queue: Arc<dyn AlarmQueue>) -> Self {
        self.queue = Some(queue);
        self
    }

    /// The guard, learning where it runs the first time.
    pub async fn guard(&self, invoked_function_arn: &str) -> Result<&Guard, GuardError> {
        if let Some(guard) = self.guard.get() {
            return Ok(guard);
        }
        let home = match (Home::from_function_arn(invoked_function_arn), &self.caller) {
            (Ok(home), _) => home,
            (Err(why), None) => return Err(GuardError::UnknownHome(why)),
            (Err(why), Some(config)) => {
                warn!(reason = %why, "no function ARN in the invocation: asking STS where the guard runs");
                adapters::home(config)
                    .await
                    .map_err(GuardError::UnknownHome)?
            }
        };
        info!(account = %home.account, region = %home.region, "the guard runs here");
        Ok(self.guard.get_or_init(|| (self.build)(home)))
    }
}

pub async fn function_handler(
    event: LambdaEvent<Payload>,
    function: &GuardFunction,
) -> Result<Value, GuardError> {
    let received = std::time::SystemTime::now();
    let guard = function.guard(&event.context.invoked_function_arn).await?;
    let text = event.payload.get();
    // An SQS batch (alarm events through the guard's queue): every record from `aws:sqs`.
    // Anything else goes the other transports' way (and is rejected there if it is none).
    if let Some(batch) = rollback_guard::intake::queue_messages(text) {
        let batch = batch.map_err(|e| GuardError::Rejected(e.to_string()))?;
        warn_if_it_may_not_fit(guard, batch.len(), event.context.deadline);
        return queue_response(guard, function.queue.as_deref(), &batch, received).await;
    }
    let report = guard.handle_bytes(text.as_bytes(), false).await;
    println!(
        "{}",
        report_metrics(&report, received, std::time::SystemTime::now())
    );
    response(report)
}

/// Says so, loudly, when a batch this size may not be done before the invocation's deadline
/// at the instance's share of the quotas (a lower `guard.lambda_calls_per_second`, more
/// instances or a larger batch than the template's): the template's BatchSize and Timeout
/// are to be made to fit.
fn warn_if_it_may_not_fit(guard: &Guard, events: usize, deadline_ms: u64) {
    let Some(share) = guard.quota_share() else {
        return;
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let left = std::time::Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    let worst = share.worst_time(events);
    if worst > left {
        tracing::error!(
            events,
            worst_s = worst.as_secs_f64(),
            left_s = left.as_secs_f64(),
            lambda_calls_per_second = share.lambda_per_s,
            "a batch this size may outlast the invocation at this instance's share of the quotas: lower the queue's BatchSize or raise the function's Timeout"
        );
    }
}

/// A message of a batch the guard could not settle comes back after this, not after the
/// queue's visibility timeout (30 minutes: six times the function's, as Lambda asks).
pub const RETRY_FAILED_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// Each message's body is one event, all handled at once; the messages whose report would be
/// an error (rejected, failed, not announced) are the batch's failures, and only they come
/// back for another try (`ReportBatchItemFailures`), in a minute, then to the queue's
/// dead-letter queue. How many failed is a metric (a batch with failures is a successful
/// invocation: Lambda's `Errors` does not count it).
async fn queue_response(
    guard: &Guard,
    queue: Option<&dyn AlarmQueue>,
    batch: &[QueueMessage],
    received: std::time::SystemTime,
) -> Result<Value, GuardError> {
    let bodies: Vec<&[u8]> = batch.iter().map(|m| m.body.as_bytes()).collect();
    let reports = guard.handle_batch(&bodies).await;
    let done = std::time::SystemTime::now();
    for report in &reports {
        println!("{}", report_metrics(report, received, done));
    }
    let mut answer = SqsBatchResponse::default();
    let mut again: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (message, report) in batch.iter().zip(reports) {
        if let Err(e) = response(report) {
            warn!(message_id = %message.message_id, error = %e, "queued event not done: it is retried alone");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message.message_id.clone();
            answer.batch_item_failures.push(failure);
            if let (Some(arn), Some(receipt)) = (&message.queue_arn, &message.receipt_handle) {
                again.entry(arn).or_default().push(receipt.clone());
            }
        }
    }
    println!(
        "{}",
        batch_metrics(batch.len(), answer.batch_item_failures.len())
    );
    if let Some(queue) = queue {
        for (arn, receipts) in again {
            if let Err(e) = queue.retry_after(arn, &receipts, RETRY_FAILED_AFTER).await {
                warn!(queue = arn, error = %e, "failed messages come back after the queue's visibility timeout");
            }
        }
    }
    serde_json::to_value(&answer)
        .map_err(|e| GuardError::Failed(format!("cannot encode the batch response: {e}")))
}

/// The EMF line saying the guard refused its policy at start (`RollbackGuard/Guard`
/// `PolicyRejected`, by `FunctionName`): the template's `PolicyRejectedAlarm` watches it.
pub fn policy_rejected_metric() -> Value {
    guard_metrics(&[Metric {
        name: "PolicyRejected",
        unit: "Count",
        value: 1.0,
    }])
}

/// The EMF line of one batch: its messages and how many failed (`RollbackGuard/Guard`, by
/// `FunctionName`), what `FailedAlarmEventsAlarm` watches.
pub fn batch_metrics(messages: usize, failed: usize) -> Value {
    guard_metrics(&[
        Metric {
            name: "Messages",
            unit: "Count",
            value: messages as f64,
        },
        Metric {
            name: "FailedMessages",
            unit: "Count",
            value: failed as f64,
        },
    ])
}

/// The EMF line of one report (`RollbackGuard/Guard`, by `FunctionName`): its outcome
/// counted (`Executed`, `Skipped`, `Failed`...), and for an action carried out `ActionLatency`
/// (the event received → the action done; in a batch, → the batch done) and `TimeToRestore`
/// (the alarm's state change → the action done: what detection and delivery took, and the
/// guard). What the template's dashboard shows.
pub fn report_metrics(
    report: &Report,
    received: std::time::SystemTime,
    done: std::time::SystemTime,
) -> Value {
    let name = match report.outcome {
        Outcome::Executed => "Executed",
        Outcome::Planned => "Planned",
        Outcome::AlreadyDone => "AlreadyDone",
        Outcome::Skipped => "Skipped",
        Outcome::NoAction => "NoAction",
        Outcome::Ignored => "Ignored",
        Outcome::Rejected => "Rejected",
        Outcome::Failed => "Failed",
    };
    let mut metrics = vec![Metric {
        name,
        unit: "Count",
        value: 1.0,
    }];
    if report.outcome == Outcome::Executed {
        let latency = done.duration_since(received).unwrap_or_default();
        metrics.push(Metric {
            name: "ActionLatency",
            unit: "Milliseconds",
            value: latency.as_secs_f64() * 1000.0,
        });
        let changed =
            (report.transition.as_ref()).map(|t| std::time::SystemTime::from(t.timestamp));
        if let Some(since) = changed.and_then(|c| done.duration_since(c).ok()) {
            metrics.push(Metric {
                name: "TimeToRestore",
                unit: "Seconds",
                value: since.as_secs_f64(),
            });
        }
    }
    guard_metrics(&metrics)
}

/// One EMF line of the guard's own metrics, now, in `RollbackGuard/Guard` by `FunctionName`.
fn guard_metrics(metrics: &[Metric]) -> Value {
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    rollback_guard::emf::line(
        "RollbackGuard/Guard",
        &[("FunctionName", &function)],
        metrics,
        now,
    )
}
