//! What moves the guard to act (an alarm's transition, a Critical Insight, a person's
//! request): its key, its alarm, what it watches, whether it is automatic, how it is named.

use crate::intake::{ActionRequest, InsightAlert};
use crate::policy::Target;
use crate::report::{Outcome, Report};
use crate::transition::{Transition, Transport};
use chrono::{DateTime, Utc};

/// What moves the guard to act.
pub(super) enum Cause {
    Alarm(Transition),
    Insight(InsightAlert),
    Request(ActionRequest),
}

impl Cause {
    /// One cause, one action, however often and by whichever transport it arrives.
    pub(super) fn key(&self) -> String {
        match self {
            Self::Alarm(t) => t.dedupe_key(),
            Self::Insight(a) => format!("insight:{}:{}", a.source, a.alert_id),
            Self::Request(r) => format!("request:{}:{}", r.source, r.id),
        }
    }

    /// The alarm to confirm before acting and to escalate on: its name and ARN.
    pub(super) fn alarm(&self) -> Option<(&str, &str)> {
        match self {
            Self::Alarm(t) => Some((&t.alarm_name, &t.alarm_arn)),
            _ => None,
        }
    }

    /// The version of `target`'s alias traffic the alarm watches (`ExecutedVersion`), when its
    /// metrics name that alias of that function: the same rule for a named trigger as for a
    /// fleet trigger (whose target its metrics name).
    pub(super) fn watched_version(&self, target: &Target) -> Option<String> {
        let Self::Alarm(t) = self else {
            return None;
        };
        let watched = t.watched();
        let w = watched.alias().ok()?;
        let same = crate::codedeploy::function_name(&w.function)
            == crate::codedeploy::function_name(&target.function)
            && target.alias.as_deref() == Some(w.alias.as_str());
        same.then(|| w.version.clone()).flatten()
    }

    /// When the alarm went into ALARM, for an alarm cause.
    pub(super) fn since(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::Alarm(t) => Some(t.timestamp),
            _ => None,
        }
    }

    /// Automatic causes are held back by the cooldown; a person's request is not.
    pub(super) fn automatic(&self) -> bool {
        !matches!(self, Self::Request(_))
    }

    pub(super) fn label(&self) -> String {
        match self {
            Self::Alarm(t) => t.alarm_name.clone(),
            Self::Insight(a) => format!(
                "Critical Insight {} on {} (risk {})",
                a.alert_id, a.stream_id, a.risk_score
            ),
            Self::Request(r) => format!(
                "request {} by {}{}{}{}",
                r.id,
                r.requested_by.as_deref().unwrap_or(&r.source),
                r.sender
                    .as_deref()
                    .map(|s| format!(" (sent as {s})"))
                    .unwrap_or_default(),
                if r.sent_from == r.account {
                    String::new()
                } else {
                    format!(" from account {} for account {}", r.sent_from, r.account)
                },
                if r.reason.is_empty() {
                    String::new()
                } else {
                    format!(": {}", r.reason)
                }
            ),
        }
    }

    pub(super) fn report(&self, outcome: Outcome, reason: String) -> Report {
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
