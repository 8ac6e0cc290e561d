//! The escalation ladder: the next rung recorded after an action, run by the schedule if the
//! alarm is still in ALARM when it is due, cancelled if not.

use crate::decision::Mode;
use crate::policy::{Action, Target, Trigger};
use crate::report::{Outcome, Report};
use crate::state::Escalation;
use crate::transition::rfc3339_millis;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

use super::state::{Edit, Remembered};
use super::{Ctx, Guard};

impl Guard {
    /// Records the ladder's next rung after `done`, due `escalate_after_minutes` from now, or
    /// clears the pending one when the ladder has ended.
    pub(super) async fn schedule_next(
        &self,
        report: &mut Report,
        remembered: &Remembered,
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
        let result = self.record_escalation(remembered, pending.as_ref()).await;
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

    /// The target's pending escalation, if it is due: the next rung if the alarm is still in
    /// ALARM, cancelled if it is not.
    pub(super) async fn escalate(&self, target: &Target, now: DateTime<Utc>) -> Option<Report> {
        let remembered = match self.remember(target).await {
            Ok(r) => r,
            Err(why) => return Some(Report::failed_on(target, why)),
        };
        let pending = remembered.now().escalation.filter(|e| e.due <= now)?;
        match self.read_tags_of(&target.function).await {
            Ok(tags) => {
                self.escalate_with(target, &tags, &remembered, pending, now)
                    .await
            }
            Err(why) => Some(Report::failed_on(target, why)),
        }
    }

    /// Runs (or cancels) the `pending` escalation of `target`, whose tags and state are read.
    /// It is taken from the state first: of two schedule runs that find it due at once (one
    /// still waiting on CodeDeploy when the next begins), one runs it.
    pub(super) async fn escalate_with(
        &self,
        target: &Target,
        tags: &BTreeMap<String, String>,
        remembered: &Remembered,
        pending: Escalation,
        now: DateTime<Utc>,
    ) -> Option<Report> {
        let function = target.function.as_str();
        let mut report = Report::rejected(String::new());
        report.target = Some(target.name.clone());
        report.function = Some(function.to_string());
        report.alias = target.alias.clone();
        report.account = target.account.clone();
        report.alarm = Some(pending.alarm.clone());
        let taken = self
            .update(remembered, |s| {
                if s.escalation.as_ref() != Some(&pending) {
                    return Edit::Keep(false);
                }
                s.escalation = None;
                Edit::Write(true)
            })
            .await;
        match taken {
            Ok(true) => {}
            // Another run took it (or it changed): that run reports it.
            Ok(false) => return None,
            Err(why) => return Some(report.settle(Outcome::Failed, why)),
        }
        let rung = self
            .policy
            .trigger_for(&pending.alarm, self.account_of(target))
            .filter(|t| t.moves(target))
            .and_then(|t| Some((t, *t.actions.get(pending.step)?)));
        let Some((trigger, action)) = rung else {
            return Some(report.settle(
                Outcome::NoAction,
                format!(
                    "the pending escalation for alarm `{}` no longer matches the policy: cancelled",
                    pending.alarm
                ),
            ));
        };
        let report = report.on_target(target, action);
        if let Some(pause) = remembered.now().pause_at(now) {
            return Some(report.stand_down(format!(
                "{} is {pause}; escalation to {action} cancelled",
                target.name
            )));
        }
        let arn = self.home.alarm_arn(&pending.alarm);
        if let Err((outcome, why)) = self.confirm_alarm(&pending.alarm, &arn).await {
            // Recovered, gone, unreadable or silenced by people: the escalation ends here, and
            // says so.
            return Some(
                report.settle_unconfirmed(
                    outcome,
                    format!("{why}; escalation to {action} cancelled"),
                ),
            );
        }
        let ctx = Ctx {
            key: format!(
                "{}@escalation-{}@{}",
                pending.alarm,
                pending.step,
                rfc3339_millis(&pending.due)
            ),
            delivery: super::delivery_id(),
            alarm: &pending.alarm,
            mode: Mode::Execute,
            now,
            watched_version: None,
            state: remembered,
            automatic: true,
            window: trigger.blame_window(&self.policy.guard),
            alarm_since: None,
        };
        let mut report = self.run_action(report, target, action, tags, &ctx).await;
        report.reason = format!(
            "escalation: alarm `{}` still in ALARM at {} (due {}); {}",
            pending.alarm,
            rfc3339_millis(&now),
            rfc3339_millis(&pending.due),
            report.reason
        );
        if report.ladder_continues {
            self.schedule_next(
                &mut report,
                remembered,
                trigger,
                action,
                &pending.alarm,
                now,
            )
            .await;
        }
        Some(report)
    }

    /// Writes the pending escalation to the target's state (`None` clears it).
    async fn record_escalation(
        &self,
        remembered: &Remembered,
        pending: Option<&Escalation>,
    ) -> Result<(), String> {
        self.update(remembered, |s| {
            if s.escalation.as_ref() == pending {
                return Edit::Keep(());
            }
            s.escalation = pending.cloned();
            Edit::Write(())
        })
        .await
    }
}
