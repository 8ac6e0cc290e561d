//! Confirming the alarm before acting: it must be in ALARM now, read by its ARN in the account
//! and region it lives in.

use crate::report::Outcome;
use crate::transition::AlarmState;

use super::Guard;

impl Guard {
    /// Confirms with CloudWatch that the alarm is in ALARM now: a late or retried delivery of
    /// an alarm that has since recovered must not act. The alarm is the one its ARN names,
    /// never another of the same name elsewhere.
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
}
