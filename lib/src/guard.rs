//! The pipeline: intake, decision, confirmation, the action exactly once, and the
//! announcement. Talks to AWS only through the ports.

use crate::ai::{disabled_environment, unpublished_differences, FunctionConfig};
use crate::decision::{decide, decide_insight, decide_request, origin_refused, Decision, Mode};
use crate::flag;
use crate::home::Home;
use crate::insight::{incident_request, rules_for_incident, Insight, InsightEngine};
use crate::intake::{self, ActionRequest, Inbound, InsightAlert};
use crate::notify;
use crate::policy::{Action, Policy, Target, Trigger};
use crate::ports::{
    AlarmStates, AliasManager, AuditBus, Clock, FunctionSettings, Notifier, PortError,
};
use crate::record::{
    blind_tags, fingerprint, stable_tag, warned_blind, ActionRecord, AliasChange, Escalation,
    FlagChange,
};
use crate::retry::RetryPolicy;
use crate::rollback::{plan_rollback, AliasPlan, AliasState};
use crate::transition::{rfc3339_millis, AlarmState, Transition, Transport};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
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
    /// Names (never values) of the environment variables kept as they were.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub preserved_variables: Vec<String>,
    /// The exact command that reverts what was done.
    pub undo: Option<String>,
    /// The ladder's next rung, when one is pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalation: Option<String>,
    /// Things that went wrong after the outcome was settled (an announcement that failed).
    pub notes: Vec<String>,
    /// What the insight path makes of the incident (model, or rules).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insight: Option<Insight>,
    /// Why the insight came from the rules, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insight_fallback: Option<String>,
    /// Earlier reports this one follows from: a refused action before its fallback, the
    /// escalations of a scheduled check.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Report>,
    #[serde(skip)]
    pub transition: Option<Transition>,
    /// The action was refused before anything changed (a fallback may follow).
    #[serde(skip)]
    refused: bool,
    /// The action left the target where the ladder's next rung may follow.
    #[serde(skip)]
    ladder_continues: bool,
}

impl Report {
    /// A check on `target` that could not be made: reported, with the target it was about.
    fn failed_on(target: &Target, reason: String) -> Self {
        Self {
            outcome: Outcome::Failed,
            target: Some(target.name.clone()),
            ..Self::rejected(reason)
        }
    }

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
            preserved_variables: Vec::new(),
            undo: None,
            escalation: None,
            insight: None,
            insight_fallback: None,
            notes: Vec::new(),
            steps: Vec::new(),
            transition: None,
            refused: false,
            ladder_continues: false,
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

    fn on_target(mut self, target: &Target, action: Action) -> Self {
        self.action = Some(action.as_str());
        self.target = Some(target.name.clone());
        self.function = Some(target.function.clone());
        self.alias = target.alias.clone();
        self
    }

    fn settle(mut self, outcome: Outcome, reason: impl Into<String>) -> Self {
        self.outcome = outcome;
        self.reason = reason.into();
        self
    }

    fn refuse(mut self, reason: impl Into<String>) -> Self {
        self.refused = true;
        self.settle(Outcome::Failed, reason)
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
    pub functions: Arc<dyn FunctionSettings>,
    pub alarms: Arc<dyn AlarmStates>,
    pub notifier: Arc<dyn Notifier>,
    pub audit: Arc<dyn AuditBus>,
    pub clock: Arc<dyn Clock>,
}

pub struct Guard {
    policy: Policy,
    ports: Ports,
    /// The account and region the guard runs in: the only place it changes anything.
    home: Home,
    retry: RetryPolicy,
    insights: InsightEngine,
    /// Dedupe keys this instance has settled: a warm instance answers duplicates from memory.
    settled: Mutex<HashSet<String>>,
}

enum UpdateResult {
    Updated(AliasState),
    /// Another delivery of the same transition got there first.
    AlreadyThere,
}

/// Whether an action goes on, or has settled its report already.
enum Step {
    Go(Report),
    Done(Report),
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
        }
    }
}

/// What moves the guard to act.
enum Cause {
    Alarm(Transition),
    Insight(InsightAlert),
    Request(ActionRequest),
}

impl Cause {
    /// One cause, one action, however often and by whichever transport it arrives.
    fn key(&self) -> String {
        match self {
            Self::Alarm(t) => t.dedupe_key(),
            Self::Insight(a) => format!("insight:{}:{}", a.source, a.alert_id),
            Self::Request(r) => format!("request:{}:{}", r.source, r.id),
        }
    }

    /// The alarm to confirm before acting and to escalate on: its name and ARN.
    fn alarm(&self) -> Option<(&str, &str)> {
        match self {
            Self::Alarm(t) => Some((&t.alarm_name, &t.alarm_arn)),
            _ => None,
        }
    }

    /// Automatic causes are held back by the cooldown; a person's request is not.
    fn automatic(&self) -> bool {
        !matches!(self, Self::Request(_))
    }

    fn label(&self) -> String {
        match self {
            Self::Alarm(t) => t.alarm_name.clone(),
            Self::Insight(a) => format!(
                "Critical Insight {} on {} (risk {})",
                a.alert_id, a.stream_id, a.risk_score
            ),
            Self::Request(r) => format!(
                "request {} by {}{}",
                r.id,
                r.requested_by.as_deref().unwrap_or(&r.source),
                if r.reason.is_empty() {
                    String::new()
                } else {
                    format!(": {}", r.reason)
                }
            ),
        }
    }

    fn report(&self, outcome: Outcome, reason: String) -> Report {
        match self {
            Self::Alarm(t) => Report::about(t, outcome, reason),
            _ => Report {
                outcome,
                alarm: Some(self.label()),
                transport: Some(Transport::Eventbridge.as_str()),
                dedupe_key: Some(self.key()),
                ..Report::rejected(reason)
            },
        }
    }
}

/// What an action runs for.
struct Ctx<'a> {
    /// The transition's dedupe key, or an escalation's own key.
    key: String,
    alarm: &'a str,
    mode: Mode,
    now: DateTime<Utc>,
}

impl Guard {
    /// A guard running in `home`, learned once from where it runs (never from an event).
    pub fn new(policy: Policy, ports: Ports, home: Home) -> Self {
        Self {
            policy,
            ports,
            home,
            retry: RetryPolicy::default(),
            insights: InsightEngine::rules_only(),
            settled: Mutex::new(HashSet::new()),
        }
    }

    /// Explains incidents with this insight path (default: rules only).
    pub fn with_insights(mut self, insights: InsightEngine) -> Self {
        self.insights = insights;
        self
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
        self.handle_inbound(intake::parse_inbound_bytes(bytes), force_plan)
            .await
    }

    /// Handles one event end to end and announces the outcome. `force_plan` makes every action
    /// a plan (`guard replay --dry-run`).
    pub async fn handle(&self, event: &Value, force_plan: bool) -> Report {
        self.handle_inbound(intake::parse_inbound(event), force_plan)
            .await
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
                Inbound::Schedule { .. } => Report::rejected(why),
            };
        }
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
        };
        let report = match decision {
            Decision::Rejected(r) => {
                warn!(cause = %cause.label(), reason = %r, "event rejected");
                return cause.report(Outcome::Rejected, r);
            }
            Decision::Ignored(r) => return cause.report(Outcome::Ignored, r),
            Decision::NoAction(r) => return cause.report(Outcome::NoAction, r),
            Decision::Act {
                target,
                trigger,
                mode,
            } => self.act(&cause, target, &trigger, mode).await,
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

    /// The first rung of the trigger's ladder (or the requested action), exactly once.
    async fn act(&self, cause: &Cause, target: &Target, trigger: &Trigger, mode: Mode) -> Report {
        let action = trigger.first_action();
        let key = cause.key();
        let report = cause
            .report(Outcome::Failed, String::new())
            .on_target(target, action);
        let mut report = self
            .act_once(report, cause, target, trigger, mode, &key)
            .await;
        self.announce(&mut report).await;
        report
    }

    /// Adds the insight to a report people will read. Runs after the action, never before:
    /// the insight explains, it does not decide, and its budget bounds only the notification.
    async fn explain(&self, report: &mut Report) {
        if !notify::notifies_people(report.outcome) || report.insight.is_some() {
            return;
        }
        let alarm = report.alarm.clone().unwrap_or_default();
        let (reason, datapoints) = match &report.transition {
            Some(t) => (t.reason.clone(), t.datapoints()),
            None => (report.reason.clone(), Vec::new()),
        };
        let request = incident_request(&alarm, &reason, &datapoints, &report.reason);
        let explained = self
            .insights
            .explain(&request, rules_for_incident(&alarm, &reason))
            .await;
        report.insight = Some(explained.insight);
        report.insight_fallback = explained.fallback_reason;
    }

    async fn act_once(
        &self,
        report: Report,
        cause: &Cause,
        target: &Target,
        trigger: &Trigger,
        mode: Mode,
        key: &str,
    ) -> Report {
        // Plans change nothing, so a plan is never a duplicate: a backtest of a transition
        // handled long ago still says what the policy would do.
        if mode == Mode::Execute && self.is_settled(key) {
            return report.settle(
                Outcome::AlreadyDone,
                "duplicate delivery: this transition was already handled",
            );
        }
        // Plans are not confirmed: a replayed event is history, and its alarm has long moved on.
        if let Some((alarm, arn)) = cause.alarm().filter(|_| mode == Mode::Execute) {
            if let Err((outcome, why)) = self.confirm_alarm(alarm, arn).await {
                return report.settle(outcome, why);
            }
        }
        let function = target.function.as_str();
        let tags = match self.read_record(function).await {
            Ok(tags) => tags,
            Err(why) => return report.settle(Outcome::Failed, why),
        };
        let record = ActionRecord::from_tags(&tags);
        if let Some(r) = record
            .as_ref()
            .filter(|r| mode == Mode::Execute && r.event == fingerprint(key))
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
        let cooldown = chrono::Duration::minutes(i64::from(self.policy.guard.cooldown_minutes));
        if let Some(r) = record
            .as_ref()
            .filter(|r| mode == Mode::Execute && cause.automatic() && now < r.at + cooldown)
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
        let label = cause.label();
        let ctx = Ctx {
            key: key.to_string(),
            alarm: &label,
            mode,
            now,
        };
        let action = trigger.first_action();
        let mut report = self.run_action(report, target, action, &tags, &ctx).await;
        let mut done = action;
        if let Some(fallback) = trigger.fallback_after(action).filter(|_| report.refused) {
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
        // Escalation watches an alarm: only alarm causes have a ladder to climb.
        if let Some((alarm, _)) = cause
            .alarm()
            .filter(|_| mode == Mode::Execute && report.ladder_continues)
        {
            self.schedule_next(&mut report, target, trigger, done, alarm, now)
                .await;
        }
        report
    }

    /// Confirms with CloudWatch that the alarm is in ALARM now: a late or retried delivery of
    /// an alarm that has since recovered must not act. The alarm is the one its ARN names,
    /// never another of the same name elsewhere.
    async fn confirm_alarm(&self, alarm: &str, arn: &str) -> Result<(), (Outcome, String)> {
        let state = self
            .retry
            .run("DescribeAlarms", || self.ports.alarms.alarm_state(arn))
            .await;
        match state {
            Ok(Some(AlarmState::Alarm)) => Ok(()),
            Ok(Some(now)) => Err((
                Outcome::NoAction,
                format!(
                    "alarm `{alarm}` is {now} now: the transition has recovered, nothing to do"
                ),
            )),
            Ok(None) => Err((
                Outcome::Failed,
                format!(
                    "alarm `{alarm}` does not exist in {}: cannot confirm it is in ALARM, not acting",
                    self.home
                ),
            )),
            Err(e) => Err((
                Outcome::Failed,
                format!("cannot confirm alarm `{alarm}` is in ALARM ({e}); not acting"),
            )),
        }
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
            Action::DisableAi => self.disable_ai(report, target, ctx).await,
        }
    }

    async fn rollback_alias(
        &self,
        mut report: Report,
        target: &Target,
        tags: &BTreeMap<String, String>,
        ctx: &Ctx<'_>,
    ) -> Report {
        let function = target.function.as_str();
        let Some(alias) = target.alias.as_deref() else {
            // Policy validation refuses rollback-alias on a target without an alias.
            return report.settle(Outcome::Failed, "target has no alias");
        };
        let aliases = &self.ports.aliases;
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
        // A version the guard published with the AI off is the same release as the one it
        // was made from: the rollback goes past both.
        let derived_from = ActionRecord::from_tags(tags)
            .filter(|r| r.action == Action::DisableAi.as_str())
            .and_then(|r| r.alias)
            .filter(|c| c.alias == alias && c.after.version == before.version)
            .map(|c| c.before.version);
        let stable = tags.get(&stable_tag(alias)).map(String::as_str);
        let plan = match plan_rollback(&before, &published, stable, derived_from.as_deref()) {
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
        report.alias_after = Some(after.clone());
        // Whatever comes of it, the alias is (or will be) on the stable version: a later rung
        // of the ladder may follow.
        report.ladder_continues = true;
        if let AliasPlan::AlreadyStable { .. } = plan {
            self.settle_key(&ctx.key);
            return report.settle(Outcome::AlreadyDone, description);
        }
        if ctx.mode == Mode::Plan {
            return report.settle(Outcome::Planned, format!("would be done: {description}"));
        }
        if let Some(done) = self
            .move_alias(&mut report, function, alias, &before, &after)
            .await
        {
            return done;
        }
        let record = ctx.record(
            Action::RollbackAlias,
            Some(AliasChange {
                alias: alias.into(),
                before,
                after,
            }),
            None,
        );
        self.write_record(&mut report, target, &record, &ctx.key)
            .await;
        report.settle(Outcome::Executed, description)
    }

    /// Moves the alias from `before` to `after`. `None` when it moved; otherwise the settled
    /// report (already done by another delivery, or failed with the alias state re-read).
    async fn move_alias(
        &self,
        report: &mut Report,
        function: &str,
        alias: &str,
        before: &AliasState,
        after: &AliasState,
    ) -> Option<Report> {
        match self.update_alias(function, alias, before, after).await {
            Ok(UpdateResult::Updated(now)) => {
                report.alias_after = Some(now);
                None
            }
            Ok(UpdateResult::AlreadyThere) => Some(report.clone().settle(
                Outcome::AlreadyDone,
                format!(
                    "another delivery of this transition already moved alias {alias} to {after}"
                ),
            )),
            Err(e) => {
                let now = match self.ports.aliases.get_alias(function, alias).await {
                    Ok(a) => {
                        let state = a.to_string();
                        report.alias_after = Some(a);
                        state
                    }
                    Err(read) => format!("unknown (re-reading it failed: {read})"),
                };
                Some(report.clone().settle(
                    Outcome::Failed,
                    format!("could not update alias {function}:{alias} ({e}); it is now on {now}"),
                ))
            }
        }
    }

    /// `disable-ai`: the flag off, every other setting kept. With an alias, published versions
    /// are immutable, so `$LATEST` (checked to hold exactly the served version's code and
    /// settings) gets the flag, is published, and the alias moves to the new version.
    async fn disable_ai(&self, mut report: Report, target: &Target, ctx: &Ctx<'_>) -> Report {
        let function = target.function.as_str();
        let flag = target.ai_flag.as_str();
        let functions = &self.ports.functions;
        let alias = match target.alias.as_deref() {
            Some(alias) => alias,
            None => return self.disable_ai_on_latest(report, target, ctx).await,
        };
        let before = match self
            .retry
            .run("GetAlias", || self.ports.aliases.get_alias(function, alias))
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
        if before.version == "$LATEST" && before.weights.is_empty() {
            // The alias follows $LATEST: changing $LATEST is enough.
            return self.disable_ai_on_latest(report, target, ctx).await;
        }
        if !before.weights.is_empty() {
            return report.refuse(format!(
                "alias {alias} is mid-canary ({before}): disable-ai needs the alias on one version"
            ));
        }
        let served_version = before.version.clone();
        let served = match self
            .retry
            .run("GetFunctionConfiguration", || {
                functions.get_config(function, Some(&served_version))
            })
            .await
        {
            Ok(c) => c,
            Err(e) => {
                return report.settle(
                    Outcome::Failed,
                    format!("cannot read version {served_version} of {function}: {e}"),
                )
            }
        };
        let place = format!("version {served_version} (served by alias {alias})");
        let mut report = match self.check_flag(report, &served, flag, &place, &ctx.key) {
            Step::Go(report) => report,
            Step::Done(settled) => return settled,
        };
        let latest = match flag::settled(functions.as_ref(), &self.retry, function).await {
            Ok(c) => c,
            Err(e) => {
                return report.settle(
                    Outcome::Failed,
                    format!("cannot read $LATEST of {function}: {e}"),
                )
            }
        };
        let differences = unpublished_differences(&latest, &served, flag);
        if !differences.is_empty() {
            report.alias_after = Some(before.clone());
            return report.refuse(format!(
                "refusing to publish $LATEST of {function}: its {} differ from version {served_version}, which alias {alias} serves; nothing was changed",
                differences.join(", ")
            ));
        }
        if ctx.mode == Mode::Plan {
            return report.settle(
                Outcome::Planned,
                format!("would be done: publish version {served_version}'s code and settings with {flag}=false and move alias {alias} to it"),
            );
        }
        let updated = flag::update_environment(functions.as_ref(), &self.retry, function, |vars| {
            disabled_environment(vars, flag)
        })
        .await;
        let latest = match updated {
            Ok(c) if c.ai_disabled(flag) && c.code_sha256 == served.code_sha256 => c,
            Ok(_) => {
                return report.settle(
                    Outcome::Failed,
                    format!("$LATEST of {function} changed while the guard updated it; nothing published, alias {alias} still on {before}"),
                )
            }
            Err(e) => {
                return report.settle(
                    Outcome::Failed,
                    format!("could not set {flag}=false on $LATEST of {function} ({e}); nothing published, alias {alias} still on {before}"),
                )
            }
        };
        let description = format!("rollback-guard: version {served_version} with {flag}=false");
        let published = self
            .retry
            .run("PublishVersion", || {
                functions.publish_version(
                    function,
                    &served.code_sha256,
                    latest.revision_id.as_deref(),
                    &description,
                )
            })
            .await;
        let new_version = match published {
            Ok(v) => v,
            Err(e) => {
                return report.settle(
                    Outcome::Failed,
                    format!("could not publish a version ({e}); $LATEST of {function} has {flag}=false, unpublished; alias {alias} still on {before}"),
                )
            }
        };
        // Published versions are what will serve traffic: check this one before moving to it.
        match self.retry.run("GetFunctionConfiguration", || functions.get_config(function, Some(&new_version))).await {
            Ok(c) if c.ai_disabled(flag) && c.code_sha256 == served.code_sha256 => {}
            Ok(_) => {
                return report.settle(
                    Outcome::Failed,
                    format!("published version {new_version} does not hold version {served_version}'s code with {flag}=false; alias {alias} left on {before}"),
                )
            }
            Err(e) => {
                return report.settle(
                    Outcome::Failed,
                    format!("cannot verify published version {new_version} ({e}); alias {alias} left on {before}"),
                )
            }
        }
        let after = AliasState::on(&new_version);
        report.alias_after = Some(after.clone());
        if let Some(done) = self
            .move_alias(&mut report, function, alias, &before, &after)
            .await
        {
            return done;
        }
        let record = ctx.record(
            Action::DisableAi,
            Some(AliasChange {
                alias: alias.into(),
                before,
                after,
            }),
            Some(FlagChange {
                name: flag.into(),
                before: served.flag(flag).map(str::to_string),
            }),
        );
        self.write_record(&mut report, target, &record, &ctx.key)
            .await;
        report.ladder_continues = true;
        let kept = report.preserved_variables.len();
        report.settle(
            Outcome::Executed,
            format!(
                "AI disabled: alias {alias} moved from version {served_version} to version {new_version}, the same code and settings with {flag}=false; {kept} other variable(s) kept"
            ),
        )
    }

    /// `disable-ai` on a target invoked through `$LATEST` (no alias, or an alias on `$LATEST`).
    async fn disable_ai_on_latest(&self, report: Report, target: &Target, ctx: &Ctx<'_>) -> Report {
        let function = target.function.as_str();
        let flag = target.ai_flag.as_str();
        let functions = self.ports.functions.as_ref();
        let latest = match flag::settled(functions, &self.retry, function).await {
            Ok(c) => c,
            Err(e) => {
                return report.settle(
                    Outcome::Failed,
                    format!("cannot read $LATEST of {function}: {e}"),
                )
            }
        };
        let place = format!("$LATEST of {function}");
        let mut report = match self.check_flag(report, &latest, flag, &place, &ctx.key) {
            Step::Go(report) => report,
            Step::Done(settled) => return settled,
        };
        if ctx.mode == Mode::Plan {
            return report.settle(
                Outcome::Planned,
                format!("would be done: set {flag}=false on $LATEST of {function}"),
            );
        }
        let flag_before = latest.flag(flag).map(str::to_string);
        if let Err(e) = flag::update_environment(functions, &self.retry, function, |vars| {
            disabled_environment(vars, flag)
        })
        .await
        {
            return report.settle(
                Outcome::Failed,
                format!("could not set {flag}=false on $LATEST of {function} ({e}); its environment is as it was"),
            );
        }
        let record = ctx.record(
            Action::DisableAi,
            None,
            Some(FlagChange {
                name: flag.into(),
                before: flag_before,
            }),
        );
        self.write_record(&mut report, target, &record, &ctx.key)
            .await;
        report.ladder_continues = true;
        let kept = report.preserved_variables.len();
        report.settle(
            Outcome::Executed,
            format!(
                "AI disabled: {flag}=false on $LATEST of {function}; {kept} other variable(s) kept"
            ),
        )
    }

    /// What every disable-ai path checks on the configuration it would change: the flag
    /// already off (a no-op the ladder may go on from) or variables that cannot be read (a
    /// refusal: writing them back would lose them).
    fn check_flag(
        &self,
        mut report: Report,
        config: &FunctionConfig,
        flag: &str,
        place: &str,
        key: &str,
    ) -> Step {
        report.preserved_variables = preserved(&config.variables, flag);
        if config.ai_disabled(flag) {
            report.ladder_continues = true;
            self.settle_key(key);
            return Step::Done(report.settle(
                Outcome::AlreadyDone,
                format!("AI already disabled: {flag}=false on {place}"),
            ));
        }
        if let Some(e) = &config.environment_error {
            return Step::Done(
                report.refuse(format!("the environment of {place} cannot be read ({e})")),
            );
        }
        Step::Go(report)
    }

    async fn write_record(
        &self,
        report: &mut Report,
        target: &Target,
        record: &ActionRecord,
        key: &str,
    ) {
        let function = target.function.as_str();
        let tags = record.to_tags();
        if let Err(e) = self
            .retry
            .run("TagResource", || self.ports.aliases.tag(function, &tags))
            .await
        {
            report.notes.push(format!(
                "the action record could not be written to {function}'s tags ({e}): cooldown, duplicate detection and undo do not hold for this action"
            ));
        }
        self.settle_key(key);
        report.undo = Some(format!("guard undo --target {}", target.name));
    }

    /// Records the ladder's next rung after `done`, due `escalate_after_minutes` from now, or
    /// clears the pending one when the ladder has ended.
    async fn schedule_next(
        &self,
        report: &mut Report,
        target: &Target,
        trigger: &Trigger,
        done: Action,
        alarm: &str,
        now: DateTime<Utc>,
    ) {
        let next = trigger
            .actions
            .iter()
            .position(|a| *a == done)
            .map(|i| i + 1);
        let pending = match (next, trigger.escalate_after_minutes) {
            (Some(step), Some(minutes)) if step < trigger.actions.len() => Some(Escalation {
                step,
                due: now + chrono::Duration::minutes(i64::from(minutes)),
                alarm: alarm.to_string(),
            }),
            _ => None,
        };
        if pending.is_none() && trigger.actions.len() < 2 {
            return;
        }
        let function = target.function.as_str();
        let result = match Escalation::to_tags(pending.as_ref()) {
            Ok(tags) => self
                .retry
                .run("TagResource", || self.ports.aliases.tag(function, &tags))
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match (result, pending) {
            (Err(e), _) => report
                .notes
                .push(format!("the escalation could not be recorded: {e}")),
            (Ok(()), Some(p)) => {
                report.escalation = Some(format!(
                    "{} at {} if alarm `{alarm}` is still in ALARM",
                    trigger.actions[p.step],
                    rfc3339_millis(&p.due)
                ))
            }
            (Ok(()), None) => {}
        }
    }

    /// The every-minute check: runs the escalations that are due, and warns once about each
    /// watched alarm that has been without data too long.
    async fn sweep(&self) -> Report {
        let now = self.ports.clock.now();
        let mut steps = Vec::new();
        for target in &self.policy.targets {
            steps.extend(self.blindness(target, now).await);
        }
        let mut seen = HashSet::new();
        for trigger in self.policy.triggers.iter().filter(|t| t.actions.len() > 1) {
            if !seen.insert(trigger.target.as_str()) {
                continue;
            }
            if let Some(target) = self.policy.target(&trigger.target) {
                if let Some(mut r) = self.escalate(target, now).await {
                    self.announce(&mut r).await;
                    steps.push(r);
                }
            }
        }
        let count = |o: Outcome| steps.iter().filter(|r| r.outcome == o).count();
        let outcome = if count(Outcome::Failed) > 0 {
            Outcome::Failed
        } else if count(Outcome::Executed) > 0 {
            Outcome::Executed
        } else {
            Outcome::NoAction
        };
        let blind = steps
            .iter()
            .filter(|r| r.reason.starts_with("blind:"))
            .count();
        let mut report = Report::rejected(String::new());
        report.outcome = outcome;
        report.reason = format!(
            "scheduled check: {blind} blindness warning(s); {} escalation(s) due, {} executed, {} cancelled, {} failed",
            steps.len() - blind,
            count(Outcome::Executed),
            count(Outcome::NoAction) - blind,
            count(Outcome::Failed)
        );
        // What went wrong inside a step (an undelivered warning) is the check's too: the
        // handler then fails, and says so.
        report.notes = steps
            .iter()
            .flat_map(|r| {
                let target = r.target.clone().unwrap_or_default();
                r.notes.iter().map(move |n| format!("{target}: {n}"))
            })
            .collect();
        report.steps = steps;
        report
    }

    /// Watched alarms of `target` in INSUFFICIENT_DATA for longer than `blind_after_minutes`,
    /// each warned about once per spell (recorded in the target's tags).
    async fn blindness(&self, target: &Target, now: DateTime<Utc>) -> Vec<Report> {
        let minutes = self.policy.guard.blind_after_minutes;
        let limit = chrono::Duration::minutes(i64::from(minutes));
        let mut blind = Vec::new();
        let mut failed = Vec::new();
        for pattern in self
            .policy
            .triggers
            .iter()
            .filter(|t| t.target == target.name)
            .filter_map(|t| t.alarm.as_ref())
        {
            match self
                .retry
                .run("DescribeAlarms", || self.ports.alarms.alarms(pattern))
                .await
            {
                Ok(alarms) => {
                    blind.extend(alarms.into_iter().filter(|a| {
                        a.state == AlarmState::InsufficientData && now >= a.since + limit
                    }))
                }
                Err(e) => failed.push(format!("cannot check the alarms of {}: {e}", target.name)),
            }
        }
        let mut reports: Vec<Report> = failed
            .into_iter()
            .map(|why| Report::failed_on(target, why))
            .collect();
        if blind.is_empty() {
            return reports;
        }
        let function = target.function.as_str();
        let tags = match self.read_record(function).await {
            Ok(tags) => tags,
            Err(why) => {
                reports.push(Report::failed_on(target, why));
                return reports;
            }
        };
        let mut warned = warned_blind(&tags);
        for alarm in blind {
            let since = rfc3339_millis(&alarm.since);
            let spell = fingerprint(&format!("{}@{since}", alarm.name));
            if warned.contains(&spell) {
                continue;
            }
            let mut report = Report::rejected(format!(
                "blind: alarm `{}` has been INSUFFICIENT_DATA since {since}, more than {minutes} min: the guard cannot see {}",
                alarm.name, target.name
            ));
            report.outcome = Outcome::NoAction;
            report.target = Some(target.name.clone());
            report.alarm = Some(alarm.name.clone());
            report.state = Some(AlarmState::InsufficientData);
            let (notification, event) =
                notify::blind_warning(&target.name, &alarm.name, &since, minutes);
            if let Some(topic) = self.policy.guard.notify_topic_arn.as_deref() {
                if let Err(e) = self
                    .retry
                    .run("Publish", || {
                        self.ports.notifier.publish(topic, &notification)
                    })
                    .await
                {
                    report
                        .notes
                        .push(format!("blindness warning not delivered to {topic}: {e}"));
                }
            }
            let bus = &self.policy.guard.event_bus;
            if let Err(e) = self
                .retry
                .run("PutEvents", || self.ports.audit.put(bus, &event))
                .await
            {
                report
                    .notes
                    .push(format!("audit event not delivered to bus {bus}: {e}"));
            }
            if report.notes.is_empty() {
                warned.push(spell);
            }
            reports.push(report);
        }
        let record = blind_tags(&warned);
        if let Err(e) = self
            .retry
            .run("TagResource", || self.ports.aliases.tag(function, &record))
            .await
        {
            if let Some(last) = reports.last_mut() {
                last.notes.push(format!(
                    "the warning could not be recorded ({e}): it may be repeated"
                ));
            }
        }
        reports
    }

    /// The target's pending escalation, if it is due: the next rung if the alarm is still in
    /// ALARM, cancelled if it is not.
    async fn escalate(&self, target: &Target, now: DateTime<Utc>) -> Option<Report> {
        let function = target.function.as_str();
        let mut report = Report::rejected(String::new());
        report.target = Some(target.name.clone());
        report.function = Some(function.to_string());
        report.alias = target.alias.clone();
        let tags = match self.read_record(function).await {
            Ok(tags) => tags,
            Err(why) => return Some(report.settle(Outcome::Failed, why)),
        };
        let pending = Escalation::from_tags(&tags)?;
        if pending.due > now {
            return None;
        }
        report.alarm = Some(pending.alarm.clone());
        let rung = self
            .policy
            .trigger_for(&pending.alarm)
            .filter(|t| t.target == target.name)
            .and_then(|t| Some((t, *t.actions.get(pending.step)?)));
        let Some((trigger, action)) = rung else {
            self.clear_escalation(&mut report, function).await;
            return Some(report.settle(
                Outcome::NoAction,
                format!(
                    "the pending escalation for alarm `{}` no longer matches the policy: cancelled",
                    pending.alarm
                ),
            ));
        };
        let mut report = report.on_target(target, action);
        let arn = self.home.alarm_arn(&pending.alarm);
        if let Err((outcome, why)) = self.confirm_alarm(&pending.alarm, &arn).await {
            // Recovered, gone or unreadable: the escalation ends here, and says so.
            self.clear_escalation(&mut report, function).await;
            return Some(
                report.settle(outcome, format!("{why}; escalation to {action} cancelled")),
            );
        }
        let ctx = Ctx {
            key: format!(
                "{}@escalation-{}@{}",
                pending.alarm,
                pending.step,
                rfc3339_millis(&pending.due)
            ),
            alarm: &pending.alarm,
            mode: Mode::Execute,
            now,
        };
        let mut report = self.run_action(report, target, action, &tags, &ctx).await;
        report.reason = format!(
            "escalation: alarm `{}` still in ALARM at {} (due {}); {}",
            pending.alarm,
            rfc3339_millis(&now),
            rfc3339_millis(&pending.due),
            report.reason
        );
        if report.ladder_continues {
            self.schedule_next(&mut report, target, trigger, action, &pending.alarm, now)
                .await;
        } else {
            self.clear_escalation(&mut report, function).await;
        }
        Some(report)
    }

    async fn clear_escalation(&self, report: &mut Report, function: &str) {
        let cleared = match Escalation::to_tags(None) {
            Ok(tags) => self
                .retry
                .run("TagResource", || self.ports.aliases.tag(function, &tags))
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        if let Err(e) = cleared {
            report
                .notes
                .push(format!("the pending escalation could not be cleared: {e}"));
        }
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
        self.explain(report).await;
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

    /// The guard's record on `function` (its tags), read with retries; the error is the
    /// reason a report gives.
    async fn read_record(&self, function: &str) -> Result<BTreeMap<String, String>, String> {
        self.retry
            .run("ListTags", || self.ports.aliases.tags(function))
            .await
            .map_err(|e| format!("cannot read the guard's record on {function}: {e}"))
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

/// The names of the variables kept as they were: all but the flag.
fn preserved(variables: &BTreeMap<String, String>, flag: &str) -> Vec<String> {
    variables.keys().filter(|k| *k != flag).cloned().collect()
}
