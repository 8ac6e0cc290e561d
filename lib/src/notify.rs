//! What the guard tells people (SNS) and machines (EventBridge) about each outcome. Pure:
//! composes messages from a [`Report`]; the ports send them.

use crate::policy::Action;
use crate::report::{Outcome, Report};
use crate::transition::rfc3339_millis;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write;

/// The `source` of the guard's audit events.
pub const AUDIT_SOURCE: &str = "rollback-guard";
/// SNS subjects: at most 100 printable ASCII characters, no line breaks.
const MAX_SUBJECT: usize = 100;

#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub subject: String,
    pub message: String,
    /// String message attributes, for subscription filter policies.
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub source: String,
    pub detail_type: String,
    pub resources: Vec<String>,
    pub detail: Value,
}

/// The audit detail-type for an outcome; `None` for outcomes that are not about an action.
pub fn detail_type(outcome: Outcome, action: Option<&str>) -> Option<&'static str> {
    if let Some(kind) = action.and_then(|a| a.strip_prefix("reenable-")) {
        return match (outcome, kind) {
            (Outcome::Executed, "step") => Some("Re-enable Step"),
            (Outcome::Executed, "complete") => Some("Re-enable Completed"),
            (Outcome::Executed, "abort") => Some("Re-enable Aborted"),
            (Outcome::Executed, "cancel") => Some("Re-enable Cancelled"),
            (Outcome::Failed, _) => Some("Re-enable Failed"),
            (Outcome::Skipped, _) => Some("Re-enable Held"),
            _ => None,
        };
    }
    match outcome {
        Outcome::Executed if action == Some(Action::DisableAi.as_str()) => Some("AI Disabled"),
        Outcome::Executed => Some("Rollback Executed"),
        Outcome::Planned => Some("Rollback Planned"),
        Outcome::AlreadyDone | Outcome::Skipped => Some("Rollback Skipped"),
        Outcome::Failed => Some("Rollback Failed"),
        Outcome::NoAction | Outcome::Ignored | Outcome::Rejected => None,
    }
}

/// The machine-readable account of a report: the audit event's detail and the JSON half of
/// the notification.
pub fn report_json(r: &Report) -> Value {
    let alarm = r.transition.as_ref().map(|t| {
        json!({
            "name": t.alarm_name,
            "arn": t.alarm_arn,
            "account": t.account,
            "region": t.region,
            "state": t.new_state,
            "previous_state": t.old_state,
            "timestamp": rfc3339_millis(&t.timestamp),
            "reason": t.reason,
            "datapoints": t.datapoints(),
            "transport": t.transport,
            "replay_name": t.replay_name,
        })
    });
    json!({
        "outcome": r.outcome,
        "action": r.action,
        "target": r.target,
        "function": r.function,
        "alias": r.alias,
        "account": r.account,
        "reason": r.reason,
        "alarm": alarm,
        "dedupe_key": r.dedupe_key,
        "before": r.alias_before,
        "after": r.alias_after,
        "preserved_variables": r.preserved_variables,
        "escalation": r.escalation,
        "insight": r.insight,
        "insight_fallback": r.insight_fallback,
        "undo": r.undo,
        "codedeploy_deployment": r.deployment,
        "codedeploy": r.codedeploy,
        "notes": r.notes,
    })
}

pub fn audit_event(r: &Report) -> Option<AuditEvent> {
    let detail_type = detail_type(r.outcome, r.action)?;
    let resources = r
        .transition
        .as_ref()
        .map(|t| vec![t.alarm_arn.clone()])
        .unwrap_or_default();
    Some(AuditEvent {
        source: AUDIT_SOURCE.into(),
        detail_type: detail_type.into(),
        resources,
        detail: report_json(r),
    })
}

pub fn notification(r: &Report) -> Notification {
    let target = r.target.as_deref().unwrap_or("?");
    let alias = r.alias.as_deref().unwrap_or("?");
    let alarm = r.alarm.as_deref().unwrap_or("?");
    let disable = r.action == Some(Action::DisableAi.as_str());
    let canary = r
        .alias_before
        .as_ref()
        .is_some_and(|b| !b.weights.is_empty());
    let versions = match (&r.alias_before, &r.alias_after) {
        (Some(b), Some(_)) if canary => format!("{alias} stays on {}", b.version),
        (Some(b), Some(a)) => format!("{alias} {} -> {}", b.version, a.version),
        (Some(b), None) => format!("{alias} on {}", b.version),
        _ => alias.to_string(),
    };
    let routing = match (&r.alias_before, &r.alias_after) {
        (Some(b), Some(a)) => format!("{alias}: {b} -> {a}"),
        _ => alias.to_string(),
    };
    let reenable = r.action.is_some_and(|a| a.starts_with("reenable-"));
    let headline = match (r.outcome, r.action.unwrap_or("")) {
        (Outcome::Executed, "reenable-step") => format!("Re-enable step on {target}: {routing}"),
        (Outcome::Executed, "reenable-complete") => {
            format!("Re-enable complete on {target}: {routing}")
        }
        (Outcome::Executed, "reenable-abort") => {
            format!("Re-enable ABORTED on {target}: {routing}")
        }
        (Outcome::Executed, "reenable-cancel") => {
            format!("Re-enable cancelled on {target}: {routing}")
        }
        (Outcome::Failed, _) if reenable => {
            format!("Re-enable FAILED or stopped on {target} ({alias})")
        }
        (Outcome::Executed, _) if r.deployment.is_some() && !disable => format!(
            "CodeDeploy deployment {} stopped and rolled back on {target}: {versions}",
            r.deployment.as_deref().unwrap_or_default()
        ),
        (Outcome::Executed, _) if disable => format!("AI disabled on {target}: {versions}"),
        (Outcome::Failed, _) if disable => format!("AI disable FAILED for {target}"),
        (Outcome::Planned, _) if disable && r.observe => {
            format!("OBSERVE: would disable the AI on {target}")
        }
        (Outcome::Planned, _) if r.observe && canary => {
            format!("OBSERVE: would abort the canary on {target}: {versions}")
        }
        (Outcome::Planned, _) if r.observe => {
            format!("OBSERVE: would roll back {target}: {versions}")
        }
        (Outcome::Planned, _) if disable => format!("AI disable planned for {target}"),
        (Outcome::Executed, _) if canary => format!("Canary aborted on {target}: {versions}"),
        (Outcome::Executed, _) => format!("Rolled back {target}: {versions}"),
        (Outcome::Failed, _) => format!("Rollback FAILED for {target} ({alias})"),
        (Outcome::Skipped, _) if r.reason.starts_with("not rolled back:") => {
            format!("Rollback NOT made on {target}: a person decides")
        }
        (Outcome::Skipped, _) => format!("Rollback held back for {target} (cooldown)"),
        (Outcome::Planned, _) if canary => format!("Canary abort planned on {target}: {versions}"),
        (Outcome::Planned, _) => format!("Rollback planned for {target}: {versions}"),
        (other, _) => format!("Rollback {} for {target}", other.as_str()),
    };
    let subject = match &r.alarm {
        None if reenable => subject(&headline),
        _ => subject(&format!("{headline} - alarm {alarm}")),
    };

    let mut body = String::new();
    let _ = writeln!(body, "rollback-guard: {headline}.");
    let _ = writeln!(body);
    if let Some(t) = &r.transition {
        let _ = writeln!(
            body,
            "What happened: alarm \"{}\" went from {} to {} at {} (account {}, {}, delivered by {}).",
            t.alarm_name,
            t.old_state,
            t.new_state,
            rfc3339_millis(&t.timestamp),
            t.account,
            t.region,
            t.transport.as_str()
        );
        let _ = writeln!(
            body,
            "Why: {}",
            if t.reason.is_empty() {
                "(no reason given)"
            } else {
                &t.reason
            }
        );
        let datapoints = t.datapoints();
        if !datapoints.is_empty() {
            let points: Vec<String> = datapoints.iter().map(|d| d.to_string()).collect();
            let _ = writeln!(body, "Datapoints: {}", points.join(", "));
        }
    } else if let Some(account) = &r.account {
        // An alarm's line above names its account; an insight's, a request's or a check's
        // account is said here.
        let _ = writeln!(body, "Account: {account}.");
    }
    let _ = writeln!(body, "What was done: {}", r.reason);
    if let Some(before) = &r.alias_before {
        let _ = writeln!(body, "Alias {alias} before: {before}");
    }
    if let Some(after) = &r.alias_after {
        let _ = writeln!(body, "Alias {alias} after: {after}");
    }
    if !r.preserved_variables.is_empty() {
        let _ = writeln!(
            body,
            "Variables kept as they were: {}",
            r.preserved_variables.join(", ")
        );
    }
    if let Some(next) = &r.escalation {
        let _ = writeln!(body, "Next: {next}");
    }
    if let Some(i) = &r.insight {
        let source = match i.source {
            crate::insight::InsightSource::Model => "model",
            crate::insight::InsightSource::Fallback => "rules (fallback)",
        };
        let _ = writeln!(
            body,
            "AI insight ({source}): {}, risk {}/100, confidence {:.2}. {}",
            i.prediction_type, i.risk_score, i.confidence, i.explanation
        );
        if !i.recommendations.is_empty() {
            let _ = writeln!(body, "Recommendations: {}", i.recommendations.join("; "));
        }
        if let Some(why) = &r.insight_fallback {
            let _ = writeln!(body, "Why the rules answered: {why}");
        }
    }
    match &r.undo {
        Some(undo) => {
            let _ = writeln!(body, "How to undo: {undo}");
        }
        None => {
            let _ = writeln!(body, "How to undo: nothing was changed.");
        }
    }
    for line in &r.codedeploy {
        let _ = writeln!(body, "CodeDeploy: {line}");
    }
    for note in &r.notes {
        let _ = writeln!(body, "Note: {note}");
    }
    let _ = writeln!(body);
    let _ = writeln!(body, "--- JSON ---");
    let _ = write!(
        body,
        "{}",
        serde_json::to_string_pretty(&report_json(r)).unwrap_or_default()
    );

    let mut attributes = BTreeMap::new();
    attributes.insert("outcome".to_string(), r.outcome.as_str().to_string());
    attributes.insert("target".to_string(), target.to_string());
    attributes.insert("alarm".to_string(), alarm.to_string());
    if let Some(action) = r.action {
        attributes.insert("action".to_string(), action.to_string());
    }
    // A subscription filter tells a staging function from its production twin by account.
    if let Some(account) = &r.account {
        attributes.insert("account".to_string(), account.clone());
    }
    Notification {
        subject,
        message: body,
        attributes,
    }
}

/// Printable ASCII, at most 100 characters, `...` where it had to be cut.
fn subject(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if clean.len() <= MAX_SUBJECT {
        clean
    } else {
        format!("{}...", &clean[..MAX_SUBJECT - 3])
    }
}

/// Why the guard cannot see a target through one of its alarms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blindness {
    /// The alarm has no data (INSUFFICIENT_DATA).
    NoData,
    /// The alarm's actions are disabled, and the guard stands down with them
    /// (`guard.honour_disabled_actions`).
    ActionsDisabled,
}

/// The warning that the guard is blind to a target: a watched alarm has had no data, or its
/// actions disabled, for too long, so an incident would go unseen or unacted on. Not an action;
/// said once per spell.
pub fn blind_warning(
    target: &str,
    account: Option<&str>,
    alarm: &str,
    why: Blindness,
    since: &str,
    minutes: u32,
) -> (Notification, AuditEvent) {
    let (state, what, todo, short) = match why {
        Blindness::NoData => (
            "INSUFFICIENT_DATA",
            format!("has been in INSUFFICIENT_DATA since {since}, more than {minutes} minutes. While it has no data the guard cannot see an incident on {target}."),
            "check that the function is invoked and that the alarm's metric and dimensions still exist.".to_string(),
            "has no data",
        ),
        Blindness::ActionsDisabled => (
            "ACTIONS_DISABLED",
            format!("has had its actions disabled since {since} (when the guard first saw it), more than {minutes} minutes. The guard stands down with a disabled alarm, so it will not act on an incident on {target}."),
            format!("when the maintenance is over, `aws cloudwatch enable-alarm-actions --alarm-names {alarm}`; for a pause that ends by itself, `guard pause`."),
            "has its actions disabled",
        ),
    };
    let detail = json!({
        "target": target,
        "alarm": alarm,
        "state": state,
        "since": since,
        "blind_after_minutes": minutes,
    });
    let message = format!(
        "rollback-guard is blind to {target}: alarm \"{alarm}\" {what}\n\
What to do: {todo}\n\
Nothing was changed.\n\n--- JSON ---\n{}",
        serde_json::to_string_pretty(&detail).unwrap_or_default()
    );
    let mut attributes = BTreeMap::from([
        ("outcome".to_string(), "blind".to_string()),
        ("target".to_string(), target.to_string()),
        ("alarm".to_string(), alarm.to_string()),
    ]);
    if let Some(account) = account {
        attributes.insert("account".to_string(), account.to_string());
    }
    (
        Notification {
            subject: subject(&format!(
                "Guard is blind to {target}: alarm {alarm} {short}"
            )),
            message,
            attributes,
        },
        AuditEvent {
            source: AUDIT_SOURCE.into(),
            detail_type: "Guard Blind".into(),
            resources: Vec::new(),
            detail,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_is_printable_ascii_and_at_most_100_characters() {
        let s = subject(&format!("Rolled back ünïcode\n{}", "x".repeat(200)));
        assert_eq!(s.len(), 100);
        assert!(s.ends_with("..."));
        assert!(s.chars().all(|c| c.is_ascii_graphic() || c == ' '));
        assert_eq!(subject("short"), "short");
    }

    #[test]
    fn a_report_without_an_alarm_names_its_account_in_the_body_and_the_json() {
        let mut report = Report::rejected("request acted on".into());
        report.outcome = Outcome::Executed;
        report.target = Some("payments".into());
        report.account = Some("222222222222".into());
        let n = notification(&report);
        assert!(
            n.message.contains("Account: 222222222222."),
            "{}",
            n.message
        );
        assert_eq!(report_json(&report)["account"], "222222222222");
        report.account = None;
        assert!(!notification(&report).message.contains("Account:"));
    }
}
