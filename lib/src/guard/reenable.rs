//! Guarded re-enable: `guard reenable` takes the first step at once, the schedule takes each
//! next one while every alarm the target's triggers watch is OK, an alarm of the target
//! going into ALARM aborts it (traffic back where it was before it began), `--cancel` stops
//! it where it stands. Each step, the completion, an abort and a cancel are announced with the
//! routing before and after. The plan is in the target's state (`crate::state`).

use crate::policy::{Action, Target};
use crate::ports::AlarmStatus;
use crate::reenable::{Reenable, Verdict};
use crate::report::{Outcome, Report};
use crate::rollback::AliasState;
use crate::state::{fingerprint, ActionRecord, AliasChange};
use crate::transition::AlarmState;
use chrono::{DateTime, TimeDelta, Utc};

use super::state::{Edit, Remembered};
use super::Guard;

/// The report actions of a re-enable, as notifications and audit events name them.
pub const STEP: &str = "reenable-step";
pub const COMPLETE: &str = "reenable-complete";
pub const ABORT: &str = "reenable-abort";
pub const CANCEL: &str = "reenable-cancel";

/// What `guard reenable` is asked for.
#[derive(Debug, Clone)]
pub struct ReenableRequest {
    pub steps: Vec<u32>,
    pub every: TimeDelta,
    /// The version to bring back; `None`: the one the guard's last action moved away from.
    pub version: Option<String>,
    pub by: String,
}

impl Guard {
    /// `guard reenable --target T`: refused (with the reason) in the target's cooldown, with
    /// an escalation pending, with a re-enable already in progress, or when the version to
    /// bring back is not a published version (or, after an AI switched off, has it off);
    /// else the first step, announced. `Err`: the refusal.
    pub async fn start_reenable(
        &self,
        target: &str,
        request: &ReenableRequest,
    ) -> Result<Report, String> {
        let target = self.reenable_target(target)?;
        let acting = self
            .guard_in(target.account.as_deref().unwrap_or(""))
            .await?;
        let mut report = acting.begin_reenable(&target, request).await?;
        acting.announce(&mut report).await;
        Ok(report)
    }

    /// `guard reenable --status`: the plan in progress, if any.
    pub async fn reenable_status(&self, target: &str) -> Result<Option<Reenable>, String> {
        let target = self.reenable_target(target)?;
        let acting = self
            .guard_in(target.account.as_deref().unwrap_or(""))
            .await?;
        Ok(acting.remember(&target).await?.now().reenable)
    }

    /// `guard reenable --cancel`: the plan cleared, the alias left where it stands, announced.
    pub async fn cancel_reenable(&self, target: &str, by: &str) -> Result<Report, String> {
        let target = self.reenable_target(target)?;
        let acting = self
            .guard_in(target.account.as_deref().unwrap_or(""))
            .await?;
        let remembered = acting.remember(&target).await?;
        let plan = remembered
            .now()
            .reenable
            .ok_or_else(|| format!("no re-enable is in progress on {}", target.name))?;
        let mut report = reenable_report(&target, CANCEL, &plan);
        let standing = plan.current();
        report.alias_before = Some(standing.clone());
        report.alias_after = Some(standing.clone());
        let report = match acting.write_plan(&remembered, None, None).await {
            Ok(()) => report.settle(
                Outcome::Executed,
                format!(
                    "re-enable of version {} cancelled by {by} at step {} of {}: alias {} stays on {standing}",
                    plan.version,
                    plan.taken + 1,
                    plan.steps.len(),
                    plan.alias
                ),
            ),
            Err(why) => report.settle(Outcome::Failed, why),
        };
        let mut report = report;
        acting.announce(&mut report).await;
        Ok(report)
    }

    /// A policy target a re-enable can run on: named, with an alias.
    fn reenable_target(&self, name: &str) -> Result<Target, String> {
        let target = self.policy.target(name).ok_or_else(|| {
            format!("unknown target `{name}`: a re-enable runs on the policy's named targets (a fleet function's way back is `guard undo`)")
        })?;
        if target.alias.is_none() {
            return Err(format!(
                "target {name} has no alias: a re-enable shifts an alias's traffic"
            ));
        }
        Ok(target.clone())
    }

    async fn begin_reenable(
        &self,
        target: &Target,
        request: &ReenableRequest,
    ) -> Result<Report, String> {
        let function = target.function.as_str();
        let alias = target.alias.clone().unwrap_or_default();
        let remembered = self.remember(target).await?;
        let state = remembered.now();
        let now = self.ports.clock.now();
        if let Some(plan) = &state.reenable {
            return Err(format!(
                "a re-enable is already in progress: {}; cancel it first",
                plan.describe()
            ));
        }
        let record = state.last.clone();
        let cooldown = TimeDelta::minutes(i64::from(self.policy.guard.cooldown_minutes));
        if let Some(r) = record.as_ref().filter(|r| now < r.at + cooldown) {
            return Err(format!(
                "{} is in its cooldown until {} (the guard's {} at {}): the way back waits until it ends",
                target.name,
                r.at + cooldown,
                r.action,
                r.at
            ));
        }
        if let Some(e) = &state.escalation {
            return Err(format!(
                "an escalation is pending for {} (alarm {}, due {}): no re-enable while it may still act",
                target.name, e.alarm, e.due
            ));
        }
        let before = self.read_alias(function, &alias).await?;
        if !before.weights.is_empty() {
            return Err(format!(
                "alias {alias} is split ({before}): a re-enable starts from an alias on one version"
            ));
        }
        let moved = record
            .as_ref()
            .and_then(|r| r.alias.as_ref().filter(|c| c.alias == alias));
        let version = match (&request.version, moved) {
            (Some(v), _) => v.clone(),
            (None, Some(change)) => change.before.version.clone(),
            (None, None) => {
                return Err(format!(
                    "the guard's record on {} names no version it moved alias {alias} away from: name one with --version",
                    target.name
                ))
            }
        };
        self.check_version(target, &version, &before, record.as_ref())
            .await?;
        let plan = Reenable {
            alias: alias.clone(),
            version,
            from: before.version.clone(),
            steps: request.steps.clone(),
            taken: 0,
            every: request.every,
            next: now + request.every,
            by: request.by.clone(),
        };
        let report = reenable_report(target, STEP, &plan);
        Ok(self
            .take_step(report, target, &remembered, &plan, &before, 0)
            .await)
    }

    /// The version to bring back: published (never `$LATEST`), not the one serving, and,
    /// where the guard's last action switched the AI off, with the flag on.
    async fn check_version(
        &self,
        target: &Target,
        version: &str,
        serving: &AliasState,
        record: Option<&ActionRecord>,
    ) -> Result<(), String> {
        let function = target.function.as_str();
        if version.parse::<u64>().is_err() {
            return Err(format!(
                "`{version}` is not a published version number (never $LATEST: it changes under you)"
            ));
        }
        let published = self
            .retry
            .run("GetFunction", || {
                self.ports.aliases.is_published(function, version)
            })
            .await
            .map_err(|e| format!("cannot tell whether version {version} is published: {e}"))?;
        if !published {
            return Err(format!("version {version} of {function} is not published"));
        }
        let ai_was_disabled = record.is_some_and(|r| r.action == Action::DisableAi.as_str());
        if ai_was_disabled {
            let config = self
                .retry
                .run("GetFunctionConfiguration", || {
                    self.ports.functions.get_config(function, Some(version))
                })
                .await
                .map_err(|e| format!("cannot read version {version}'s configuration: {e}"))?;
            let flag = &target.ai_flag;
            if let Some(why) = &config.environment_error {
                return Err(format!(
                    "version {version}'s variables cannot be read ({why}): whether its {flag} is on is unknown"
                ));
            }
            if config.ai_disabled(flag) {
                return Err(format!(
                    "version {version} has {flag}=false: the AI's way back needs a version with it on"
                ));
            }
        }
        if version == serving.version {
            return Err(format!("alias already serves version {version}"));
        }
        Ok(())
    }

    /// Moves the alias from `before` to step `i` and keeps the plan (cleared once complete).
    async fn take_step(
        &self,
        mut report: Report,
        target: &Target,
        remembered: &Remembered,
        plan: &Reenable,
        before: &AliasState,
        i: usize,
    ) -> Report {
        let function = target.function.as_str();
        let after = plan.routing(i);
        report.alias_before = Some(before.clone());
        report.alias_after = Some(after.clone());
        if let Some(done) = self
            .move_alias(&mut report, function, &plan.alias, before, &after)
            .await
        {
            return done;
        }
        let mut next = plan.clone();
        next.taken = i;
        let complete = next.complete();
        let back = format!(
            "aws lambda update-alias --function-name {function} --name {} --function-version {} --routing-config AdditionalVersionWeights={{}}",
            plan.alias, plan.from
        );
        report.undo = Some(if complete {
            back
        } else {
            format!(
                "stop here: guard reenable --target {} --cancel; all traffic back: {back}",
                target.name
            )
        });
        let kept = (!complete).then_some(&next);
        if let Err(why) = self.write_plan(remembered, kept, None).await {
            report.notes.push(why);
        }
        if complete {
            report.action = Some(COMPLETE);
            return report.settle(
                Outcome::Executed,
                format!(
                    "re-enable complete: alias {} sends all traffic to version {} (was {before})",
                    plan.alias, plan.version
                ),
            );
        }
        report.settle(Outcome::Executed, next.describe())
    }

    /// The schedule's turn: the next step when due and every watched alarm is OK; an abort
    /// when one is in ALARM; held (not announced) otherwise. `None`: no plan, or not due.
    /// `watched`: the alarms the target's triggers watch, as the schedule just read them;
    /// `failed`: those it could not read (then nothing advances).
    pub(super) async fn reenable_step(
        &self,
        target: &Target,
        watched: &[AlarmStatus],
        failed: &[String],
        now: DateTime<Utc>,
    ) -> Option<Report> {
        let remembered = match self.remember(target).await {
            Ok(r) => r,
            Err(why) => return Some(Report::failed_on(target, why)),
        };
        let plan = remembered.now().reenable?;
        if let Some(why) = failed.first() {
            return Some(Report::failed_on(target, why.clone()));
        }
        let alarms: Vec<(String, AlarmState)> =
            watched.iter().map(|a| (a.name.clone(), a.state)).collect();
        let report = reenable_report(target, STEP, &plan);
        match plan.verdict(now, &alarms) {
            Verdict::Wait => None,
            Verdict::Hold(why) => Some(report.stand_down(format!(
                "re-enable held at step {} of {}: {why}",
                plan.taken + 1,
                plan.steps.len()
            ))),
            Verdict::Abort { alarm } => {
                let key = format!("reenable-abort:{alarm}@{}", now.timestamp_millis());
                Some(
                    self.abort(report, target, &remembered, &plan, &alarm, &key, now)
                        .await,
                )
            }
            Verdict::Advance(i) => {
                let function = target.function.as_str();
                let standing = match self.read_alias(function, &plan.alias).await {
                    Ok(a) => a,
                    Err(why) => return Some(report.settle(Outcome::Failed, why)),
                };
                if standing.same_routing(&plan.routing(i)) {
                    // Another invocation of the schedule took this step.
                    return None;
                }
                if !standing.same_routing(&plan.current()) {
                    let mut report = report;
                    report.action = Some(CANCEL);
                    report.alias_before = Some(plan.current());
                    report.alias_after = Some(standing.clone());
                    let why = match self.write_plan(&remembered, None, None).await {
                        Ok(()) => format!(
                            "re-enable stopped: alias {} was changed outside it (expected {}, found {standing}); left as it is",
                            plan.alias,
                            plan.current()
                        ),
                        Err(why) => why,
                    };
                    return Some(report.settle(Outcome::Failed, why));
                }
                let mut plan = plan;
                plan.next = now + plan.every;
                Some(
                    self.take_step(report, target, &remembered, &plan, &standing, i)
                        .await,
                )
            }
        }
    }

    /// An alarm of the target in ALARM while a re-enable is in progress: all traffic back on
    /// the version that served before it began, the plan cleared, the abort recorded (so a
    /// duplicate delivery aborts once, and the cooldown starts).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn abort(
        &self,
        mut report: Report,
        target: &Target,
        remembered: &Remembered,
        plan: &Reenable,
        alarm: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> Report {
        let function = target.function.as_str();
        report.action = Some(ABORT);
        report.alarm = Some(alarm.to_string());
        let before = match self.read_alias(function, &plan.alias).await {
            Ok(a) => a,
            Err(why) => return report.settle(Outcome::Failed, why),
        };
        let after = AliasState::on(&plan.from);
        report.alias_before = Some(before.clone());
        report.alias_after = Some(after.clone());
        if !before.same_routing(&after) {
            if let Some(done) = self
                .move_alias(&mut report, function, &plan.alias, &before, &after)
                .await
            {
                return done;
            }
        }
        let record = ActionRecord {
            event: fingerprint(key),
            action: ABORT.into(),
            at: now,
            alarm: alarm.to_string(),
            alias: Some(AliasChange {
                alias: plan.alias.clone(),
                before: before.clone(),
                after,
            }),
            flag: None,
            deployment: None,
            automatic: true,
        };
        if let Err(why) = self.write_plan(remembered, None, Some(record)).await {
            report.notes.push(why);
        }
        self.settle_key(key);
        report.settle(
            Outcome::Executed,
            format!(
                "re-enable of version {} aborted at step {} of {} ({before}): alarm {alarm} went into ALARM; alias {} sends all traffic to version {} again",
                plan.version,
                plan.taken + 1,
                plan.steps.len(),
                plan.alias,
                plan.from
            ),
        )
    }

    /// The plan (`None` clearing it) in the target's state, with the record of an abort in
    /// the same write.
    async fn write_plan(
        &self,
        remembered: &Remembered,
        plan: Option<&Reenable>,
        record: Option<ActionRecord>,
    ) -> Result<(), String> {
        self.update(remembered, |s| {
            s.reenable = plan.cloned();
            if let Some(r) = &record {
                s.last = Some(r.clone());
            }
            Edit::Write(())
        })
        .await
        .map_err(|e| format!("the re-enable's plan could not be written ({e})"))
    }
}

/// A report of a re-enable on `target`.
fn reenable_report(target: &Target, action: &'static str, plan: &Reenable) -> Report {
    let mut report = Report::failed_on(target, String::new());
    report.action = Some(action);
    report.function = Some(target.function.clone());
    report.alias = Some(plan.alias.clone());
    report
}
