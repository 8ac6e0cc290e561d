//! Confirming the alarm before acting: it must be in ALARM now, read by its ARN in the account
//! and region it lives in.

use crate::report::Outcome;
#[cfg(doc)]
use crate::report::Report;
use crate::transition::AlarmState;

use super::Guard;

impl Guard {
    /// Confirms with CloudWatch that the alarm is in ALARM now: a late or retried delivery of
    /// an alarm that has since recovered must not act. The alarm is the one its ARN names,
    /// never another of the same name elsewhere. An alarm whose actions people have silenced
    /// (suppressed, or disabled while `guard.honour_disabled_actions`) is `Skipped`: the guard
    /// stands down with them ([`Report::settle_unconfirmed`]).
    pub(super) async fn confirm_alarm(
        &self,
        alarm: &str,
        arn: &str,
    ) -> Result<(), (Outcome, String)> {
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
                Ok(())
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
