//! The escalation ladder: the next rung recorded after an action, run by the schedule if the
//! alarm is still in ALARM when it is due, cancelled if not.

use crate::decision::Mode;
use crate::policy::{Action, Target, Trigger};
use crate::record::{Escalation, Pause};
use crate::report::{Outcome, Report};
use crate::transition::rfc3339_millis;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

use super::{Ctx, Guard};

impl Guard {
    /// Records the ladder's next rung after `done`, due `escalate_after_minutes` from now, or
    /// clears the pending one when the ladder has ended.
    pub(super) async fn schedule_next(
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
        let result = self
            .record_escalation(target.function.as_str(), pending.as_ref())
            .await;
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
        match self.read_record(&target.function).await {
            Ok(tags) => self.escalate_with(target, &tags, now).await,
            Err(why) => Some(Report::failed_on(target, why)),
        }
    }

    /// [`Self::escalate`] on a target whose tags are read.
    pub(super) async fn escalate_with(
        &self,
        target: &Target,
        tags: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Option<Report> {
        let function = target.function.as_str();
        let mut report = Report::rejected(String::new());
        report.target = Some(target.name.clone());
        report.function = Some(function.to_string());
        report.alias = target.alias.clone();
        report.account = target.account.clone();
        let pending = Escalation::from_tags(tags)?;
        if pending.due > now {
            return None;
        }
        report.alarm = Some(pending.alarm.clone());
        let rung = self
            .policy
            .trigger_for(&pending.alarm)
            .filter(|t| t.moves(target))
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
        if let Some(pause) = Pause::from_tags(tags).filter(|p| p.holds(now)) {
            self.clear_escalation(&mut report, function).await;
            return Some(report.stand_down(format!(
                "{} is {pause}; escalation to {action} cancelled",
                target.name
            )));
        }
        let arn = self.home.alarm_arn(&pending.alarm);
        if let Err((outcome, why)) = self.confirm_alarm(&pending.alarm, &arn).await {
            // Recovered, gone, unreadable or silenced by people: the escalation ends here, and
            // says so.
            self.clear_escalation(&mut report, function).await;
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
            alarm: &pending.alarm,
            mode: Mode::Execute,
            now,
            watched_version: None,
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
            self.schedule_next(&mut report, target, trigger, action, &pending.alarm, now)
                .await;
        } else {
            self.clear_escalation(&mut report, function).await;
        }
        Some(report)
    }

    async fn clear_escalation(&self, report: &mut Report, function: &str) {
        if let Err(e) = self.record_escalation(function, None).await {
            report
                .notes
                .push(format!("the pending escalation could not be cleared: {e}"));
        }
    }

    /// Writes the pending escalation to the target's tags (`None` clears it).
    async fn record_escalation(
        &self,
        function: &str,
        pending: Option<&Escalation>,
    ) -> Result<(), String> {
        let tags = Escalation::to_tags(pending)?;
        self.retry
            .run("TagResource", || self.ports.aliases.tag(function, &tags))
            .await
            .map_err(|e| e.to_string())
    }
}
