//! The pipeline: intake, decision, confirmation, the action exactly once, and the
//! announcement. Talks to AWS only through the ports.

use crate::decision::{decide, Decision, Mode};
use crate::intake;
use crate::notify;
use crate::policy::{Action, Policy, Target};
use crate::ports::{AlarmStates, AliasManager, AuditBus, Clock, Notifier, PortError};
use crate::record::{fingerprint, stable_tag, ActionRecord};
use crate::retry::RetryPolicy;
use crate::rollback::{plan_rollback, AliasPlan, AliasState};
use crate::transition::{AlarmState, Transition};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tracing::{info, warn};

/// Dedupe keys a warm instance remembers (about 150 bytes each).
const MAX_SETTLED_IN_MEMORY: usize = 10_000;

/// How one event ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The action was carried out.
    Executed,
    /// Dry-run or replayed event: what would have been done.
    Planned,
    /// A duplicate delivery, or the target already is where the action would take it.
    AlreadyDone,
    /// Held back by the cooldown.
    Skipped,
    NoAction,
    Ignored,
    Rejected,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Executed => "executed",
            Self::Planned => "planned",
            Self::AlreadyDone => "already-done",
            Self::Skipped => "skipped",
            Self::NoAction => "no-action",
            Self::Ignored => "ignored",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
        }
    }
}

/// What the guard did with one event, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub outcome: Outcome,
    pub action: Option<&'static str>,
    pub target: Option<String>,
    pub function: Option<String>,
    pub alias: Option<String>,
    pub alarm: Option<String>,
    pub state: Option<AlarmState>,
    pub transport: Option<&'static str>,
    pub dedupe_key: Option<String>,
    pub reason: String,
    pub alias_before: Option<AliasState>,
    pub alias_after: Option<AliasState>,
    /// The exact command that reverts what was done.
    pub undo: Option<String>,
    /// Things that went wrong after the outcome was settled (an announcement that failed).
    pub notes: Vec<String>,
    #[serde(skip)]
    pub transition: Option<Transition>,
}

impl Report {
    fn rejected(reason: String) -> Self {
        Self {
            outcome: Outcome::Rejected,
            action: None,
            target: None,
            function: None,
            alias: None,
            alarm: None,
            state: None,
            transport: None,
            dedupe_key: None,
            reason,
            alias_before: None,
            alias_after: None,
            undo: None,
            notes: Vec::new(),
            transition: None,
        }
    }

    fn about(t: &Transition, outcome: Outcome, reason: String) -> Self {
        Self {
            outcome,
            alarm: Some(t.alarm_name.clone()),
            state: Some(t.new_state),
            transport: Some(t.transport.as_str()),
            dedupe_key: Some(t.dedupe_key()),
            transition: Some(t.clone()),
            ..Self::rejected(reason)
        }
    }

    fn settle(mut self, outcome: Outcome, reason: impl Into<String>) -> Self {
        self.outcome = outcome;
        self.reason = reason.into();
        self
    }

    /// The handler fails (so Lambda's retries and failure destination take over) when the
    /// input was refused, the action failed, or the announcement of an action failed.
    pub fn is_error(&self) -> bool {
        matches!(self.outcome, Outcome::Rejected | Outcome::Failed) || !self.notes.is_empty()
    }
}

/// The backends, behind their ports.
#[derive(Clone)]
pub struct Ports {
    pub aliases: Arc<dyn AliasManager>,
    pub alarms: Arc<dyn AlarmStates>,
    pub notifier: Arc<dyn Notifier>,
    pub audit: Arc<dyn AuditBus>,
    pub clock: Arc<dyn Clock>,
}

pub struct Guard {
    policy: Policy,
    ports: Ports,
    retry: RetryPolicy,
    /// Dedupe keys this instance has settled: a warm instance answers duplicates from memory.
    settled: Mutex<HashSet<String>>,
}

enum UpdateResult {
    Updated(AliasState),
    /// Another delivery of the same transition got there first.
    AlreadyThere,
}

impl Guard {
    pub fn new(policy: Policy, ports: Ports) -> Self {
        Self {
            policy,
            ports,
            retry: RetryPolicy::default(),
            settled: Mutex::new(HashSet::new()),
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Handles raw event bytes (a file): what is not JSON is rejected like any bad event.
    pub async fn handle_bytes(&self, bytes: &[u8], force_plan: bool) -> Report {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(event) => self.handle(&event, force_plan).await,
            Err(e) => {
                let e = intake::IntakeError::NotJson(e.to_string());
                warn!(error = %e, "event rejected");
                Report::rejected(e.to_string())
            }
        }
    }

    /// Handles one event end to end and announces the outcome. `force_plan` makes every action
    /// a plan (`guard replay --dry-run`).
    pub async fn handle(&self, event: &Value, force_plan: bool) -> Report {
        let t = match intake::parse(event) {
            Ok(t) => t,
            Err(e) => {
                warn!(error = %e, "event rejected");
                return Report::rejected(e.to_string());
            }
        };
        let mut report = match decide(&self.policy, &t, force_plan) {
            Decision::Rejected(r) => {
                warn!(alarm = %t.alarm_name, reason = %r, "event rejected");
                return Report::about(&t, Outcome::Rejected, r);
            }
            Decision::Ignored(r) => return Report::about(&t, Outcome::Ignored, r),
            Decision::NoAction(r) => return Report::about(&t, Outcome::NoAction, r),
            Decision::Act {
                target,
                action,
                mode,
            } => match action {
                Action::RollbackAlias => self.rollback_alias(&t, &target, mode).await,
            },
        };
        info!(
            alarm = %t.alarm_name,
            target = report.target.as_deref().unwrap_or(""),
            outcome = report.outcome.as_str(),
            reason = %report.reason,
            "settled"
        );
        self.announce(&mut report).await;
        report
    }

    async fn rollback_alias(&self, t: &Transition, target: &Target, mode: Mode) -> Report {
        let key = t.dedupe_key();
        let function = target.function.as_str();
        let mut report = Report {
            action: Some(Action::RollbackAlias.as_str()),
            target: Some(target.name.clone()),
            function: Some(function.to_string()),
            alias: target.alias.clone(),
            ..Report::about(t, Outcome::Failed, String::new())
        };
        let Some(alias) = target.alias.as_deref() else {
            // Policy validation refuses rollback-alias on a target without an alias.
            return report.settle(Outcome::Failed, "target has no alias");
        };
        if self.is_settled(&key) {
            return report.settle(
                Outcome::AlreadyDone,
                "duplicate delivery: this transition was already handled",
            );
        }
        let aliases = &self.ports.aliases;

        // Plans are not confirmed: a replayed event is history, and its alarm has long moved on.
        if mode == Mode::Execute {
            // A late or retried delivery of an alarm that has since recovered must not act.
            let state = self
                .retry
                .run("DescribeAlarms", || {
                    self.ports.alarms.alarm_state(&t.alarm_name)
                })
                .await;
            match state {
                Ok(Some(AlarmState::Alarm)) => {}
                Ok(Some(now)) => {
                    return report.settle(
                        Outcome::NoAction,
                        format!(
                            "alarm `{}` is {now} now: the transition has recovered, nothing to do",
                            t.alarm_name
                        ),
                    )
                }
                Ok(None) => {
                    return report.settle(
                        Outcome::Failed,
                        format!(
                            "alarm `{}` does not exist: cannot confirm it is in ALARM, not acting",
                            t.alarm_name
                        ),
                    )
                }
                Err(e) => {
                    return report.settle(
                        Outcome::Failed,
                        format!(
                            "cannot confirm alarm `{}` is in ALARM ({e}); not acting",
                            t.alarm_name
                        ),
                    )
                }
            }
        }

        let tags = match self.retry.run("ListTags", || aliases.tags(function)).await {
            Ok(tags) => tags,
            Err(e) => {
                return report.settle(
                    Outcome::Failed,
                    format!("cannot read the guard's record on {function}: {e}"),
                )
            }
        };
        let record = ActionRecord::from_tags(&tags);
        if let Some(r) = record.as_ref().filter(|r| r.event == fingerprint(&key)) {
            self.settle_key(&key);
            return report.settle(
                Outcome::AlreadyDone,
                format!(
                    "duplicate delivery: this transition was already handled at {}",
                    r.at
                ),
            );
        }
        let now = self.ports.clock.now();
        let cooldown = chrono::Duration::minutes(i64::from(self.policy.guard.cooldown_minutes));
        if let Some(r) = record
            .as_ref()
            .filter(|r| mode == Mode::Execute && now < r.at + cooldown)
        {
            return report.settle(
                Outcome::Skipped,
                format!(
                    "cooldown: the guard last acted on {} at {} ({}); no automatic action before {}",
                    target.name,
                    r.at,
                    r.action,
                    r.at + cooldown
                ),
            );
        }

        let before = match self
            .retry
            .run("GetAlias", || aliases.get_alias(function, alias))
            .await
        {
            Ok(a) => a,
            Err(e) => {
                return report.settle(
                    Outcome::Failed,
                    format!("cannot read alias {function}:{alias}: {e}"),
                )
            }
        };
        report.alias_before = Some(before.clone());
        let published = match self
            .retry
            .run("ListVersionsByFunction", || aliases.list_versions(function))
            .await
        {
            Ok(v) => v,
            Err(e) => {
                return report.settle(
                    Outcome::Failed,
                    format!("cannot list versions of {function}: {e}"),
                )
            }
        };
        let plan = match plan_rollback(
            &before,
            &published,
            tags.get(&stable_tag(alias)).map(String::as_str),
        ) {
            Ok(plan) => plan,
            Err(e) => {
                report.alias_after = Some(before.clone());
                return report.settle(
                    Outcome::Failed,
                    format!("{e}; alias {alias} left unchanged on {before}"),
                );
            }
        };
        let after = plan.after(&before);
        let description = plan.describe(alias, &before);
        if let AliasPlan::AlreadyStable { .. } = plan {
            report.alias_after = Some(after);
            self.settle_key(&key);
            return report.settle(Outcome::AlreadyDone, description);
        }
        report.alias_after = Some(after.clone());
        if mode == Mode::Plan {
            return report.settle(Outcome::Planned, format!("would be done: {description}"));
        }

        match self.update_alias(function, alias, &before, &after).await {
            Ok(UpdateResult::Updated(now)) => report.alias_after = Some(now),
            Ok(UpdateResult::AlreadyThere) => {
                self.settle_key(&key);
                return report.settle(
                    Outcome::AlreadyDone,
                    format!("another delivery of this transition already did it: {description}"),
                );
            }
            Err(e) => {
                let now = match aliases.get_alias(function, alias).await {
                    Ok(a) => {
                        let state = a.to_string();
                        report.alias_after = Some(a);
                        state
                    }
                    Err(read) => format!("unknown (re-reading it failed: {read})"),
                };
                return report.settle(
                    Outcome::Failed,
                    format!("could not update alias {function}:{alias} ({e}); it is now on {now}"),
                );
            }
        }
        report.undo = Some(format!("guard undo --target {}", target.name));
        let record = ActionRecord {
            event: fingerprint(&key),
            action: Action::RollbackAlias.as_str().into(),
            at: now,
            alias: alias.into(),
            before: before.clone(),
            after: after.clone(),
            alarm: t.alarm_name.clone(),
        };
        let record_tags = record.to_tags();
        if let Err(e) = self
            .retry
            .run("TagResource", || aliases.tag(function, &record_tags))
            .await
        {
            report.notes.push(format!(
                "the action record could not be written to {function}'s tags ({e}): cooldown and duplicate detection do not hold for this action"
            ));
        }
        self.settle_key(&key);
        report.settle(Outcome::Executed, description)
    }

    /// `UpdateAlias` guarded by the alias revision: of concurrent deliveries, one moves the
    /// alias, the others find it moved.
    async fn update_alias(
        &self,
        function: &str,
        alias: &str,
        before: &AliasState,
        after: &AliasState,
    ) -> Result<UpdateResult, PortError> {
        let aliases = &self.ports.aliases;
        let mut expected = before.clone();
        let mut attempt = 1;
        loop {
            let result = aliases
                .update_alias(function, alias, after, expected.revision_id.as_deref())
                .await;
            match result {
                Ok(state) => return Ok(UpdateResult::Updated(state)),
                Err(PortError::RevisionChanged(_)) if attempt < self.retry.attempts => {
                    let now = self
                        .retry
                        .run("GetAlias", || aliases.get_alias(function, alias))
                        .await?;
                    if now.same_routing(after) {
                        return Ok(UpdateResult::AlreadyThere);
                    }
                    if !now.same_routing(before) {
                        return Err(PortError::Other(format!(
                            "alias changed underneath the guard: expected {before}, found {now}"
                        )));
                    }
                    // Only the revision moved (a description edit, say): try again on it.
                    expected = now;
                }
                Err(e) if e.retryable() && attempt < self.retry.attempts => {
                    let delay = self.retry.delay(attempt);
                    warn!(call = "UpdateAlias", attempt, error = %e, "retrying");
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(e),
            }
            attempt += 1;
        }
    }

    /// Sends the notification and the audit event the outcome calls for. A failure here is
    /// recorded on the report (and makes the handler fail), never swallowed.
    async fn announce(&self, report: &mut Report) {
        if let Some(event) = notify::audit_event(report) {
            let bus = &self.policy.guard.event_bus;
            if let Err(e) = self
                .retry
                .run("PutEvents", || self.ports.audit.put(bus, &event))
                .await
            {
                warn!(error = %e, "audit event not delivered");
                report
                    .notes
                    .push(format!("audit event not delivered to bus {bus}: {e}"));
            }
        }
        if !notify::notifies_people(report.outcome) {
            return;
        }
        let Some(topic) = self.policy.guard.notify_topic_arn.as_deref() else {
            return;
        };
        let message = notify::notification(report);
        if let Err(e) = self
            .retry
            .run("Publish", || self.ports.notifier.publish(topic, &message))
            .await
        {
            warn!(error = %e, "notification not delivered");
            report
                .notes
                .push(format!("notification not delivered to {topic}: {e}"));
        }
    }

    fn is_settled(&self, key: &str) -> bool {
        self.settled
            .lock()
            .map(|s| s.contains(key))
            .unwrap_or(false)
    }

    fn settle_key(&self, key: &str) {
        if let Ok(mut s) = self.settled.lock() {
            // Only a shortcut (the record in the target's tags is the authority), so a
            // long-lived instance simply starts over rather than grow without bound.
            if s.len() >= MAX_SETTLED_IN_MEMORY {
                s.clear();
            }
            s.insert(key.to_string());
        }
    }
}
