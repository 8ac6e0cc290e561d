//! Confirming the alarm before acting: it must be in ALARM now, read by its ARN in the account
//! and region it lives in.

use crate::policy::Target;
use crate::ports::AlarmNow;
use crate::report::Outcome;
#[cfg(doc)]
use crate::report::Report;
use crate::transition::{AlarmState, Transition};
use crate::watched::Watched;
use chrono::{DateTime, Utc};

use super::Guard;

impl Guard {
    /// Confirms the transition's alarm ([`Guard::confirm_alarm`]) and that it watches what
    /// the event says it does: the function alias (and version) a fleet trigger acts on, or
    /// the version a named trigger reads, must be what CloudWatch's own copy of the alarm
    /// names. Whoever may send to the guard could otherwise name a real alarm in ALARM with
    /// metrics of their choosing, and have another function rolled back. `Ok`: since when the
    /// alarm is in ALARM, as CloudWatch keeps it (the event's time, if CloudWatch says none).
    pub(super) async fn confirm_transition(
        &self,
        t: &Transition,
        target: &Target,
    ) -> Result<DateTime<Utc>, (Outcome, String)> {
        let now = self.confirm_alarm(&t.alarm_name, &t.alarm_arn).await?;
        let said = t.watched();
        let reads_metrics = target.fleet
            || said
                .alias()
                .is_ok_and(|w| w.version.is_some() && target.alias.as_deref() == Some(&w.alias));
        if reads_metrics && !same_watched(&said, &now.watched) {
            return Err((
                Outcome::Rejected,
                format!(
                    "the event says alarm `{}` watches {said}; CloudWatch's own copy of the alarm: {}. The event is not the alarm's own: not acting",
                    t.alarm_name, now.watched
                ),
            ));
        }
        Ok(now.since.unwrap_or(t.timestamp))
    }

    /// Confirms with CloudWatch that the alarm is in ALARM now: a late or retried delivery of
    /// an alarm that has since recovered must not act. The alarm is the one its ARN names,
    /// never another of the same name elsewhere. An alarm whose actions people have silenced
    /// (suppressed, or disabled while `guard.honour_disabled_actions`) is `Skipped`: the guard
    /// stands down with them ([`Report::settle_unconfirmed`]).
    pub(super) async fn confirm_alarm(
        &self,
        alarm: &str,
        arn: &str,
    ) -> Result<AlarmNow, (Outcome, String)> {
        let state = self
            .retry
            .run("DescribeAlarms", || self.ports.alarms.alarm_state(arn))
            .await;
        match state {
            Ok(Some(now)) if now.state == AlarmState::Alarm => {
                if let Some(suppressed) = &now.suppressed {
                    return Err((
                        Outcome::Skipped,
                        format!("alarm `{alarm}` is in ALARM with its actions {suppressed}: the guard stands down as they do"),
                    ));
                }
                if !now.actions_enabled && self.policy.guard.honour_disabled_actions {
                    return Err((
                        Outcome::Skipped,
                        format!("alarm actions are disabled on {alarm}: the guard stands down as they do (guard.honour_disabled_actions)"),
                    ));
                }
                Ok(now)
            }
            Ok(Some(now)) => Err((
                Outcome::NoAction,
                format!(
                    "alarm `{alarm}` is {} now: the transition has recovered, nothing to do",
                    now.state
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
}

/// Whether two readings of an alarm's metrics name the same function alias and version.
fn same_watched(said: &Watched, kept: &Watched) -> bool {
    match (said.alias(), kept.alias()) {
        (Ok(a), Ok(b)) => {
            crate::codedeploy::function_name(&a.function)
                == crate::codedeploy::function_name(&b.function)
                && a.alias == b.alias
                && a.version == b.version
        }
        _ => false,
    }
}
