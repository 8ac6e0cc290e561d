//! The pipeline, as an event travels: intake and decision (here), [`confirm`] the alarm, the
//! action ([`alias`], [`disable_ai`]), the [`record`] of it, [`escalate`] to the ladder's next
//! rung, the way back ([`reenable`]), the scheduled [`sweep`], and [`announce`] the outcome. Talks to AWS only through the
//! ports; the shared [`Report`] and [`Outcome`] live below every step, in `crate::report`.

mod accounts;
mod alias;
mod announce;
mod cause;
mod claim;
mod codedeploy;
mod confirm;
mod disable_ai;
mod escalate;
mod fleet;
mod judge;
mod record;
mod reenable;
mod releases;
mod state;
mod sweep;

pub use judge::FLOOR_TAG;
pub use reenable::ReenableRequest;

pub use crate::ports::Ports;
pub use crate::report::{Outcome, Report};

use crate::decision::{decide, decide_insight, decide_request, origin_refused, Decision, Mode};
use crate::home::Home;
use crate::insight::InsightEngine;
use crate::intake::{self, Inbound};
use crate::policy::{Action, Policy, Target, Trigger};
use crate::quota::{self, Share};
use crate::retry::RetryPolicy;
use crate::state::{fingerprint, ActionRecord, AliasChange, FlagChange};
use cause::Cause;
use chrono::{DateTime, Utc};
use claim::Claimed;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tracing::{info, warn};

/// The guard: one per Lambda instance (or CLI run), holding the policy, the backends and
/// where it runs; every event goes through [`Guard::handle_bytes`] or [`Guard::handle`].
pub struct Guard {
    policy: Policy,
    ports: Ports,
    /// The account and region the guard runs in: the only place it changes anything.
    home: Home,
    retry: RetryPolicy,
    insights: InsightEngine,
    /// Dedupe keys this instance has settled: a warm instance answers duplicates from memory.
    settled: Mutex<HashSet<String>>,
    /// Other accounts' guards, when this one may act there (`guard.member_role`).
    members: Option<accounts::Members>,
    /// The share of each account's API quotas this instance holds to, when it is held to one.
    share: Option<Share>,
    /// One action at a time on a function, in this instance: a second alarm of the same
    /// function in the same batch waits for the first's record, and finds its cooldown.
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// What an action runs for.
struct Ctx<'a> {
    /// The transition's dedupe key, or an escalation's own key.
    key: String,
    /// This delivery of it: one handling of one event (others may run at once elsewhere).
    delivery: String,
    alarm: &'a str,
    mode: Mode,
    now: DateTime<Utc>,
    /// The version the alarm watches (`ExecutedVersion`).
    watched_version: Option<String>,
    /// The target's state, as this guard last saw it.
    state: &'a state::Remembered,
    /// An automatic cause's (an alarm, an insight, an escalation), not a person's.
    automatic: bool,
    /// The trigger's blame window.
    window: chrono::TimeDelta,
    /// When the alarm went into ALARM (an alarm cause).
    alarm_since: Option<DateTime<Utc>>,
}

impl Ctx<'_> {
    /// The record of an action taken for this cause, now.
    fn record(
        &self,
        action: Action,
        alias: Option<AliasChange>,
        flag: Option<FlagChange>,
    ) -> ActionRecord {
        ActionRecord {
            event: fingerprint(&self.key),
            action: action.as_str().into(),
            at: self.now,
            alarm: self.alarm.to_string(),
            alias,
            flag,
            deployment: None,
            automatic: self.automatic,
        }
    }
}

impl Guard {
    /// A guard running in `home`, learned once from where it runs (never from an event).
    /// The policy's targets that name no account are in the guard's own.
    pub fn new(mut policy: Policy, ports: Ports, home: Home) -> Self {
        for target in &mut policy.targets {
            target.account.get_or_insert_with(|| home.account.clone());
        }
        Self {
            policy,
            ports,
            home,
            retry: RetryPolicy::default(),
            insights: InsightEngine::rules_only(),
            settled: Mutex::new(HashSet::new()),
            members: None,
            share: None,
            turns: Mutex::new(HashMap::new()),
        }
    }

    /// Explains incidents with this insight path (default: rules only).
    pub fn with_insights(mut self, insights: InsightEngine) -> Self {
        self.insights = insights;
        self
    }

    /// Holds this guard's calls, in its own account and in every member account, to `share`
    /// ([`quota`](crate::quota)).
    pub fn with_quota_share(mut self, share: Share) -> Self {
        let own = self.ports.own_account();
        self.ports = self.ports.in_account(quota::metered(own, share));
        self.share = Some(share);
        self
    }

    /// The share of the quotas this guard holds to, if any.
    pub fn quota_share(&self) -> Option<Share> {
        self.share
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn home(&self) -> &Home {
        &self.home
    }

    /// Handles raw event bytes (a file, a payload): read straight into the transports' shapes;
    /// what is not JSON is rejected like any bad event.
    pub async fn handle_bytes(&self, bytes: &[u8], force_plan: bool) -> Report {
        // The alarm queue's envelope (a file holding one, `guard replay`): each message's body
        // is its own delivery. The function takes its batches apart itself, to report each
        // message's failure alone.
        if let Some(batch) = std::str::from_utf8(bytes)
            .ok()
            .and_then(intake::queue_messages)
        {
            return self.handle_messages(batch, force_plan).await;
        }
        match intake::parse_inbound_bytes(bytes) {
            Err(intake::IntakeError::SeveralRecords(_)) => {
                self.handle_records(bytes, force_plan).await
            }
            inbound => self.handle_inbound(inbound, force_plan).await,
        }
    }

    /// Handles one event end to end and announces the outcome. `force_plan` makes every action
    /// a plan (`guard replay --dry-run`).
    pub async fn handle(&self, event: &Value, force_plan: bool) -> Report {
        self.handle_bytes(event.to_string().as_bytes(), force_plan)
            .await
    }

    /// Events delivered together (an SQS batch): each its own delivery, all handled at once
    /// (their AWS calls held to the guard's share of the quotas, when it has one); a report
    /// each, in order.
    pub async fn handle_batch(&self, events: &[&[u8]]) -> Vec<Report> {
        futures_util::future::join_all(events.iter().map(|e| self.handle_bytes(e, false))).await
    }

    /// An SQS batch: each message's body its own delivery; one message's report, or one report
    /// with each message's as a step.
    async fn handle_messages(
        &self,
        batch: Result<Vec<intake::QueueMessage>, intake::IntakeError>,
        force_plan: bool,
    ) -> Report {
        let messages = match batch {
            Ok(messages) => messages,
            Err(e) => return Report::rejected(e.to_string()),
        };
        let mut steps = Vec::with_capacity(messages.len());
        for m in &messages {
            let inbound = intake::parse_inbound_bytes(m.body.as_bytes());
            steps.push(self.handle_inbound(inbound, force_plan).await);
        }
        match <[Report; 1]>::try_from(steps) {
            Ok([one]) => one,
            Err(steps) => Report::of_deliveries(steps),
        }
    }

    /// An SNS event with several records: each record its own delivery, read, checked and
    /// acted on (exactly once, as any delivery) alone; one report with each record's as a step.
    async fn handle_records(&self, bytes: &[u8], force_plan: bool) -> Report {
        let records = match intake::sns_records(bytes) {
            Ok(records) => records,
            Err(e) => return Report::rejected(e.to_string()),
        };
        let mut steps = Vec::with_capacity(records.len());
        for record in records {
            let inbound = intake::parse_inbound_bytes(record.as_bytes());
            steps.push(self.handle_inbound(inbound, force_plan).await);
        }
        Report::of_deliveries(steps)
    }

    async fn handle_inbound(
        &self,
        inbound: Result<Inbound, intake::IntakeError>,
        force_plan: bool,
    ) -> Report {
        let policy = &self.policy;
        let inbound = match inbound {
            Ok(inbound) => inbound,
            Err(e) => {
                warn!(error = %e, "event rejected");
                return Report::rejected(e.to_string());
            }
        };
        // Before anything else, and before any AWS call: whose event it is, and whether it was
        // caused where the guard runs.
        if let Some(why) = origin_refused(policy, &self.home, &inbound) {
            warn!(reason = %why, "event rejected");
            return match inbound {
                Inbound::Alarm(t) => Report::about(&t, Outcome::Rejected, why),
                Inbound::Insight(a) => Cause::Insight(a).report(Outcome::Rejected, why),
                Inbound::Request(r) => Cause::Request(r).report(Outcome::Rejected, why),
                Inbound::Schedule { .. } | Inbound::AliasChange(_) => Report::rejected(why),
            };
        }
        let account = inbound.origin().0.to_string();
        let (cause, decision) = match inbound {
            Inbound::Alarm(t) => {
                let d = decide(policy, &t, force_plan);
                (Cause::Alarm(t), d)
            }
            Inbound::Insight(a) => {
                let d = decide_insight(policy, &a, force_plan);
                (Cause::Insight(a), d)
            }
            Inbound::Request(r) => {
                let d = decide_request(policy, &r, force_plan);
                (Cause::Request(r), d)
            }
            Inbound::Schedule { .. } => return self.sweep().await,
            Inbound::AliasChange(change) => return self.alias_changed(change).await,
        };
        let report = match decision {
            Decision::Rejected(r) => {
                warn!(cause = %cause.label(), reason = %r, "event rejected");
                return cause.report(Outcome::Rejected, r);
            }
            Decision::Ignored(r) => return cause.report(Outcome::Ignored, r),
            Decision::StandDown {
                target,
                action,
                reason,
            } => {
                let report = cause
                    .report(Outcome::Skipped, String::new())
                    .on_target(&target, action);
                let acting = match self.guard_in(&account).await {
                    Ok(acting) => acting,
                    Err(why) => return self.cannot_act(report, why).await,
                };
                // A fleet function that did not opt in is not the guard's to stand down for.
                if target.fleet {
                    if let Err((outcome, why)) = acting.opted_in(&target).await {
                        return report.settle(outcome, why);
                    }
                }
                let mut report = report.stand_down(reason);
                self.announce(&mut report).await;
                report
            }
            Decision::NoAction(r) => return cause.report(Outcome::NoAction, r),
            Decision::Act {
                target,
                trigger,
                mode,
            } => match self.guard_in(&account).await {
                Ok(acting) => acting.act(&cause, &target, &trigger, mode).await,
                Err(why) => {
                    let report = cause
                        .report(Outcome::Failed, String::new())
                        .on_target(&target, trigger.first_action());
                    self.cannot_act(report, why).await
                }
            },
        };
        info!(
            cause = %cause.label(),
            target = report.target.as_deref().unwrap_or(""),
            action = report.action.unwrap_or(""),
            outcome = report.outcome.as_str(),
            reason = %report.reason,
            "settled"
        );
        report
    }

    /// An action in an account the guard cannot act in (its role cannot be assumed): failed,
    /// announced, nothing changed.
    async fn cannot_act(&self, report: Report, why: String) -> Report {
        warn!(reason = %why, "cannot act in the event's account");
        let mut report = report.settle(Outcome::Failed, why);
        self.announce(&mut report).await;
        report
    }

    /// The first rung of the trigger's ladder (or the requested action), exactly once.
    async fn act(&self, cause: &Cause, target: &Target, trigger: &Trigger, mode: Mode) -> Report {
        let action = trigger.first_action();
        let key = cause.key();
        let report = cause
            .report(Outcome::Failed, String::new())
            .on_target(target, action);
        let turn = match mode {
            Mode::Execute | Mode::Observe => Some(self.turn_on(&target.function).await),
            Mode::Plan => None,
        };
        let mut report = self
            .act_once(report, cause, target, trigger, mode, &key)
            .await;
        drop(turn);
        // A fleet function that did not opt in: nothing changed, and nobody hears of it.
        if report.outcome != Outcome::Ignored {
            self.announce(&mut report).await;
        }
        report
    }

    /// This instance's turn to act on `function`: the actions on one function, from reading
    /// its record to writing the next, one after the other.
    async fn turn_on(&self, function: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let turn = {
            let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
            turns.entry(function.to_string()).or_default().clone()
        };
        turn.lock_owned().await
    }

    async fn act_once(
        &self,
        mut report: Report,
        cause: &Cause,
        target: &Target,
        trigger: &Trigger,
        mode: Mode,
        key: &str,
    ) -> Report {
        // Plans change nothing, so a plan is never a duplicate: a backtest of a transition
        // handled long ago still says what the policy would do.
        if mode.live() && self.is_settled(key) {
            return report.settle(
                Outcome::AlreadyDone,
                "duplicate delivery: this transition was already handled",
            );
        }
        // A fleet target first: a function that did not opt in costs no further call.
        let (opted_in, fleet_tags) = if target.fleet {
            match self.opted_in(target).await {
                Ok((t, tags)) => (Some(t), Some(tags)),
                // A person asked for it: they hear why not.
                Err((Outcome::Ignored, why)) if !cause.automatic() => {
                    return report.settle(Outcome::Rejected, why)
                }
                Err((outcome, why)) => return report.settle(outcome, why),
            }
        } else {
            (None, None)
        };
        let target = opted_in.as_ref().unwrap_or(target);
        if let Some(t) = &opted_in {
            report.alias = t.alias.clone();
        }
        // Plans are not confirmed: a replayed event is history, and its alarm has long moved on.
        // Since when the alarm is in ALARM is CloudWatch's word, not the event's.
        let mut alarm_since = cause.since();
        if let Cause::Alarm(t) = cause {
            if mode.live() {
                match self.confirm_transition(t, target).await {
                    Ok(since) => alarm_since = Some(since),
                    Err((outcome, why)) => return report.settle_unconfirmed(outcome, why),
                }
            }
        }
        let tags = match fleet_tags {
            Some(tags) => tags,
            None => match self.read_tags_of(&target.function).await {
                Ok(tags) => tags,
                Err(why) => return report.settle(Outcome::Failed, why),
            },
        };
        let remembered = match self.remember(target).await {
            Ok(r) => r,
            Err(why) => return report.settle(Outcome::Failed, why),
        };
        let state = remembered.now();
        let execute = mode == Mode::Execute;
        let live = mode.live();
        if let Some(r) = state
            .last
            .as_ref()
            .filter(|r| execute && r.event == fingerprint(key))
        {
            self.settle_key(key);
            return report.settle(
                Outcome::AlreadyDone,
                format!(
                    "duplicate delivery: this transition was already handled at {}",
                    r.at
                ),
            );
        }
        let now = self.ports.clock.now();
        // People paused the target: automatic causes stand down; a person's request does not.
        if let Some(pause) = state.pause_at(now).filter(|_| live && cause.automatic()) {
            return report.stand_down(format!("{} is {pause}", target.name));
        }
        // A re-enable in progress: an alarm of the target in ALARM aborts it, and that is all
        // this transition does (the traffic goes back to where it was before it began).
        if let Some(plan) = state.reenable.as_ref().filter(|_| execute) {
            if let Some((alarm, _)) = cause.alarm() {
                return self
                    .abort(report, target, &remembered, plan, alarm, key, now)
                    .await;
            }
        }
        let cooldown = chrono::Duration::minutes(i64::from(self.policy.guard.cooldown_minutes));
        let claimed = execute && cause.automatic();
        if live && cause.automatic() {
            // Other instances, and a second cause: one automatic action on a target until its
            // cooldown ends, claimed in the state every instance reads (observing, only seen).
            let held = match mode {
                Mode::Observe => self.observe(&remembered, key, now, cooldown).await,
                _ => self.claim(&remembered, key, now, cooldown).await,
            };
            match held {
                Ok(Claimed::Ours) => {}
                Ok(Claimed::Duplicate(at)) => {
                    self.settle_key(key);
                    return report.settle(
                        Outcome::AlreadyDone,
                        format!("duplicate delivery: this transition was already handled at {at}"),
                    );
                }
                Ok(Claimed::Cooldown(r)) => {
                    return report.settle(
                        Outcome::Skipped,
                        format!(
                            "cooldown: the guard last acted on {} at {} ({}); no automatic action before {}",
                            target.name,
                            r.at,
                            r.action,
                            r.at + cooldown
                        ),
                    )
                }
                Ok(Claimed::Held(holder)) => {
                    return report.settle(
                        Outcome::Skipped,
                        format!(
                            "cooldown: another cause began acting on {} at {} ({}); no automatic action before {}",
                            target.name, holder.at, holder.cause, holder.until
                        ),
                    )
                }
                // Acting without knowing whether another instance acts too could move the
                // alias twice: not acting is the safe side, and people hear of it.
                Err(why) => return report.settle(Outcome::Failed, why),
            }
        }
        let label = cause.label();
        let ctx = Ctx {
            key: key.to_string(),
            delivery: delivery_id(),
            alarm: &label,
            mode,
            now,
            watched_version: cause.watched_version(target),
            state: &remembered,
            automatic: cause.automatic(),
            window: trigger.blame_window(&self.policy.guard),
            alarm_since,
        };
        let action = trigger.first_action();
        let mut report = self.run_action(report, target, action, &tags, &ctx).await;
        let mut done = action;
        if report.refused && report.deployment.is_some() {
            // CodeDeploy's rollback already took the traffic off the deployed version.
            let why = format!("{action} was refused: {}", report.reason);
            report = self
                .codedeploy_rolled_back(report, target, &ctx, Some(why))
                .await;
            done = Action::RollbackAlias;
        } else if let Some(fallback) = trigger.fallback_after(action).filter(|_| report.refused) {
            // The refusal is announced on its own; then the ladder's alias rollback runs now.
            self.announce(&mut report).await;
            let next = cause
                .report(Outcome::Failed, String::new())
                .on_target(target, fallback);
            let mut next = self.run_action(next, target, fallback, &tags, &ctx).await;
            next.reason = format!("{} (fallback: {action} was refused)", next.reason);
            next.steps.push(report);
            report = next;
            done = fallback;
        }
        if claimed && changed_nothing(&report) {
            // It failed and changed nothing: another cause may act.
            if let Err(e) = self.release(&remembered, key).await {
                warn!(target = %remembered.key, error = %e, "claim not given back; it ends with the cooldown");
            }
        }
        // Escalation watches an alarm: only alarm causes have a ladder to climb.
        if let Some((alarm, _)) = cause
            .alarm()
            .filter(|_| mode == Mode::Execute && report.ladder_continues)
        {
            self.schedule_next(&mut report, &remembered, trigger, done, alarm, now)
                .await;
        }
        report
    }

    async fn run_action(
        &self,
        report: Report,
        target: &Target,
        action: Action,
        tags: &BTreeMap<String, String>,
        ctx: &Ctx<'_>,
    ) -> Report {
        match action {
            Action::RollbackAlias => self.rollback_alias(report, target, tags, ctx).await,
            Action::DisableAi => self.disable_ai(report, target, tags, ctx).await,
        }
    }
}

/// A name for one handling of one event, unlike any other's.
fn delivery_id() -> String {
    format!("{:016x}", fastrand::u64(..))
}

/// A failed action that left the target as it was: no alias moved, no environment changed,
/// nothing recorded to undo.
fn changed_nothing(report: &Report) -> bool {
    let alias_moved = match (&report.alias_before, &report.alias_after) {
        (Some(before), Some(after)) => !before.same_routing(after),
        (None, Some(_)) => true,
        _ => false,
    };
    matches!(report.outcome, Outcome::Failed | Outcome::Skipped)
        && !alias_moved
        && report.undo.is_none()
        && report.preserved_variables.is_empty()
}
