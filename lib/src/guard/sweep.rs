//! The every-minute check: due escalations, and the blindness warning for watched alarms
//! without data, or with their actions disabled, for too long.

use crate::notify::{self, Blindness};
use crate::policy::Target;
use crate::ports::AlarmStatus;
use crate::report::{Outcome, Report};
use crate::state::{fingerprint, Muted, MAX_BLIND};
use crate::transition::{rfc3339_millis, AlarmState};
use chrono::{DateTime, Utc};
use std::collections::HashSet;

use super::state::{Edit, Remembered};
use super::Guard;

/// An alarm not seen disabled for this long was enabled in between: its next disabling is a
/// new spell. The sweep runs every minute; this allows for a few missed runs.
pub(super) const MUTED_GAP: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

impl Guard {
    /// The every-minute check: runs the escalations that are due, and warns once about each
    /// watched alarm that has been without data too long.
    pub(super) async fn sweep(&self) -> Report {
        let now = self.ports.clock.now();
        let mut steps = self.sweep_steps(now).await;
        steps.extend(self.sweep_members(now).await);
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

    /// The check in this guard's own account: its targets' blindness, the fleet's, and the
    /// escalations due.
    pub(super) async fn sweep_steps(&self, now: DateTime<Utc>) -> Vec<Report> {
        let mut steps = Vec::new();
        let here = |t: &&Target| t.account.as_deref() == Some(self.home.account.as_str());
        // Each target's watched alarms read once: for its blindness, then for its re-enable.
        let mut watched = Vec::new();
        for target in self.policy.targets.iter().filter(here) {
            let (alarms, failed) = self.watched_alarms(target).await;
            steps.extend(self.blindness(target, &alarms, &failed, now).await);
            watched.push((target, alarms, failed));
        }
        for (target, alarms, failed) in watched {
            if let Some(mut r) = self.reenable_step(target, &alarms, &failed, now).await {
                // Steps, completions, aborts and stops are announced; a hold or a failed read
                // is the check's (its error alarm), not a page every minute.
                let moved = r.action.is_some_and(|a| a.starts_with("reenable-"));
                if moved && r.outcome != Outcome::Skipped {
                    self.announce(&mut r).await;
                }
                steps.push(r);
            }
        }
        steps.extend(self.sweep_fleet(now).await);
        let mut seen = HashSet::new();
        for trigger in self.policy.triggers.iter().filter(|t| t.actions.len() > 1) {
            if !seen.insert(trigger.target.as_str()) {
                continue;
            }
            if let Some(target) = self.policy.target(&trigger.target).filter(here) {
                if let Some(mut r) = self.escalate(target, now).await {
                    self.announce(&mut r).await;
                    steps.push(r);
                }
            }
        }
        steps
    }

    /// The alarms `target`'s triggers watch, read now; and what could not be read.
    async fn watched_alarms(&self, target: &Target) -> (Vec<AlarmStatus>, Vec<String>) {
        let mut watched = Vec::new();
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
                Ok(alarms) => watched.extend(alarms),
                Err(e) => failed.push(format!("cannot check the alarms of {}: {e}", target.name)),
            }
        }
        (watched, failed)
    }

    /// Watched alarms of `target` in INSUFFICIENT_DATA, or with their actions disabled (while
    /// the guard honours that), for longer than `blind_after_minutes`: each warned about once
    /// per spell (recorded in the target's state). How long actions have been disabled is what
    /// the sweep itself saw, minute by minute: CloudWatch does not say when they were.
    async fn blindness(
        &self,
        target: &Target,
        watched: &[AlarmStatus],
        failed: &[String],
        now: DateTime<Utc>,
    ) -> Vec<Report> {
        let mut reports: Vec<Report> = failed
            .iter()
            .map(|why| Report::failed_on(target, why.clone()))
            .collect();
        if !self.may_be_blind(watched, now) {
            return reports;
        }
        let remembered = match self.remember(target).await {
            Ok(r) => r,
            Err(why) => {
                reports.push(Report::failed_on(target, why));
                return reports;
            }
        };
        reports.extend(self.warn_blind(target, watched, &remembered, now).await);
        reports
    }

    /// Whether any of these alarms is blind, or has its actions disabled: only then are the
    /// target's state read.
    pub(super) fn may_be_blind(&self, watched: &[AlarmStatus], now: DateTime<Utc>) -> bool {
        watched
            .iter()
            .any(|a| self.without_data_too_long(a, now) || self.silenced(a))
    }

    /// In INSUFFICIENT_DATA for longer than `blind_after_minutes`.
    fn without_data_too_long(&self, alarm: &AlarmStatus, now: DateTime<Utc>) -> bool {
        let limit = chrono::Duration::minutes(i64::from(self.policy.guard.blind_after_minutes));
        alarm.state == AlarmState::InsufficientData && now >= alarm.since + limit
    }

    /// Its actions disabled, while the guard honours that.
    fn silenced(&self, alarm: &AlarmStatus) -> bool {
        !alarm.actions_enabled && self.policy.guard.honour_disabled_actions
    }

    /// The blindness warnings `watched` calls for on `target`, whose state is `remembered`.
    pub(super) async fn warn_blind(
        &self,
        target: &Target,
        watched: &[AlarmStatus],
        remembered: &Remembered,
        now: DateTime<Utc>,
    ) -> Vec<Report> {
        let minutes = self.policy.guard.blind_after_minutes;
        let limit = chrono::Duration::minutes(i64::from(minutes));
        let mut reports = Vec::new();
        let mut blind: Vec<(String, Blindness, DateTime<Utc>)> = watched
            .iter()
            .filter(|a| self.without_data_too_long(a, now))
            .map(|a| (a.name.clone(), Blindness::NoData, a.since))
            .collect();
        let disabled: Vec<&str> = watched
            .iter()
            .filter(|a| self.silenced(a))
            .map(|a| a.name.as_str())
            .collect();
        let recorded = remembered.now().muted;
        let mut seen = recorded.clone();
        seen.retain(|fp, _| disabled.iter().any(|name| fingerprint(name) == *fp));
        for name in disabled {
            let m = seen.entry(fingerprint(name)).or_insert(Muted {
                first: now,
                last: now,
            });
            // Not seen disabled in the last sweeps: enabled meanwhile, a new spell.
            if now - m.last > MUTED_GAP {
                m.first = now;
            }
            m.last = now;
            if now >= m.first + limit {
                blind.push((name.to_string(), Blindness::ActionsDisabled, m.first));
            }
        }
        // Written only when it changed: a target blind for want of data alone, with no alarm
        // disabled, costs no write a minute.
        if seen != recorded {
            let written = self
                .update(remembered, |s| {
                    s.muted = seen.clone();
                    Edit::Write(())
                })
                .await;
            if let Err(e) = written {
                reports.push(Report::failed_on(
                    target,
                    format!("cannot record the alarms seen with their actions disabled: {e}"),
                ));
            }
        }
        if blind.is_empty() {
            return reports;
        }
        let mut warned = remembered.now().blind;
        for (alarm, why, since) in blind {
            let since = rfc3339_millis(&since);
            let spell = match why {
                Blindness::NoData => fingerprint(&format!("{alarm}@{since}")),
                Blindness::ActionsDisabled => fingerprint(&format!("{alarm}@disabled@{since}")),
            };
            if warned.contains(&spell) {
                continue;
            }
            let what = match why {
                Blindness::NoData => "has been INSUFFICIENT_DATA",
                Blindness::ActionsDisabled => "has had its actions disabled",
            };
            let mut report = Report::rejected(format!(
                "blind: alarm `{alarm}` {what} since {since}, more than {minutes} min: the guard cannot see {}",
                target.name
            ));
            report.outcome = Outcome::NoAction;
            report.target = Some(target.name.clone());
            report.account = target.account.clone();
            report.alarm = Some(alarm.clone());
            if why == Blindness::NoData {
                report.state = Some(AlarmState::InsufficientData);
            }
            let (notification, event) = notify::blind_warning(
                &target.name,
                Some(self.account_of(target)),
                &alarm,
                why,
                &since,
                minutes,
            );
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
        let keep = warned.len().saturating_sub(MAX_BLIND);
        let warned = warned.split_off(keep);
        let written = self
            .update(remembered, |s| {
                if s.blind == warned {
                    return Edit::Keep(());
                }
                s.blind = warned.clone();
                Edit::Write(())
            })
            .await;
        if let Err(e) = written {
            if let Some(last) = reports.last_mut() {
                last.notes.push(format!(
                    "the warning could not be recorded ({e}): it may be repeated"
                ));
            }
        }
        reports
    }
}
