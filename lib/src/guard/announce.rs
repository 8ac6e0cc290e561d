//! Telling people and machines: the insight added to a report people read, the audit event
//! and the notification. A failure here is recorded on the report, never swallowed.

use crate::insight::{incident_request, rules_for_incident};
use crate::notify;
use crate::report::Report;
use tracing::warn;

use super::Guard;

impl Guard {
    /// Adds the insight to a report people will read. Runs after the action, never before:
    /// the insight explains, it does not decide, and its budget bounds only the notification.
    async fn explain(&self, report: &mut Report) {
        if !report.pages() || report.insight.is_some() {
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

    /// Sends the notification and the audit event the outcome calls for. A failure here is
    /// recorded on the report (and makes the handler fail), never swallowed.
    pub(super) async fn announce(&self, report: &mut Report) {
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
        if !report.pages() {
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
}
