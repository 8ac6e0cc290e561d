//! The offline verdict on an event (`guard evaluate`, `guard replay`'s plan, the catalog, the
//! benchmarks): intake and the pure decision, no AWS calls; what the guard would then ask
//! before an alias rollback, said.

use crate::decision::{
    decide, decide_insight, decide_request, origin_refused, untrusted_account, Decision, Mode,
};
use crate::home::Home;
use crate::intake::{self, Inbound, IntakeError};
use crate::policy::{Action, Policy, Target, Trigger};
use crate::transition::{AlarmState, Transition};
use crate::watched::WatchedAlias;
use serde::Serialize;
use serde_json::Value;
use std::borrow::Cow;

/// The offline verdict on one event (`guard evaluate`): intake and decision, no AWS calls.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation<'p> {
    /// `act`, `dry-run`, `skipped`, `no-action`, `ignored` or `rejected`.
    pub outcome: &'static str,
    pub action: Option<&'static str>,
    /// The policy's name for the target (a fleet target's: its function's).
    pub target: Option<Cow<'p, str>>,
    /// The function, alias and version the alarm's metrics name, when a fleet trigger read
    /// them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watched: Option<WatchedAlias>,
    pub alarm: Option<String>,
    pub state: Option<AlarmState>,
    pub transport: Option<&'static str>,
    pub dedupe_key: Option<String>,
    pub reason: Cow<'static, str>,
    /// What the guard judges when it acts, before an automatic alias rollback
    /// ([`judgement_to_come`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub judgement: Option<String>,
}

/// What a guard acting on this decision judges before an automatic alias rollback, read from
/// AWS when it acts (`guard evaluate` is offline): the evidence of when the release went live,
/// the window, once per release, the floor and the cap. `None` when nothing is judged: no
/// rollback in the trigger's ladder, a person's request, a plan.
pub fn judgement_to_come(
    policy: &Policy,
    trigger: &Trigger,
    mode: Mode,
    automatic: bool,
) -> Option<String> {
    let rolls_back = trigger.actions.contains(&Action::RollbackAlias);
    if !(rolls_back && automatic && mode.live()) {
        return None;
    }
    let window = trigger.blame_window(&policy.guard).num_minutes();
    let from = if trigger.blame_window_minutes.is_some() {
        "the trigger's blame_window_minutes"
    } else {
        "guard.blame_window_minutes"
    };
    let observe = if mode == Mode::Observe {
        " Observe mode: it announces what it would do and changes nothing."
    } else {
        ""
    };
    Some(format!(
        "before rolling the alias back the guard reads when the version it serves went live: CloudTrail's UpdateAlias record it kept (or a person's move through it), else the version's publish time (LastModified), else the CodeDeploy deployment that shifted the alias. It rolls back only if that was within the last {window} minutes ({from}) and before the alarm went into ALARM (CloudWatch's time); once per release; never below a floor ([[target]] floor, tag rollback-guard:floor); at most {} automatic rollbacks an hour in the account (guard.max_rollbacks_per_hour). Otherwise it pages people with the command that would roll back. A canary's abort is not judged.{observe}",
        policy.guard.max_rollbacks_per_hour
    ))
}

/// Evaluates raw event bytes against the policy, as a guard running in `home` would (`None`:
/// wherever the event comes from, as a guard of that account and region would).
pub fn evaluate<'p>(
    policy: &'p Policy,
    home: Option<&Home>,
    bytes: &[u8],
    force_plan: bool,
) -> Evaluation<'p> {
    // The alarm queue's envelope: its one message's body is the event.
    if let Some(messages) = std::str::from_utf8(bytes)
        .ok()
        .and_then(intake::queue_messages)
    {
        return match messages.as_deref() {
            Ok([one]) => in_message(one, evaluate(policy, home, one.body.as_bytes(), force_plan)),
            Ok(several) => verdict(
                "rejected",
                format!(
                    "an SQS batch of {} messages: each message's body is its own event (evaluate each)",
                    several.len()
                )
                .into(),
            ),
            Err(e) => verdict("rejected", e.to_string().into()),
        };
    }
    evaluate_inbound(policy, home, intake::parse_inbound_bytes(bytes), force_plan)
}

/// `verdict` on the body of queue message `m`, saying which message it was.
fn in_message<'p>(m: &intake::QueueMessage, verdict: Evaluation<'p>) -> Evaluation<'p> {
    Evaluation {
        reason: format!("SQS message {}: {}", m.message_id, verdict.reason).into(),
        ..verdict
    }
}

/// Evaluates raw event bytes as the guard handles them: an SNS event with several records, or
/// an SQS batch (the alarm queue's), as one verdict per record or message, in order (each its
/// own delivery); any other event as one.
pub fn evaluate_each<'p>(
    policy: &'p Policy,
    home: Option<&Home>,
    bytes: &[u8],
    force_plan: bool,
) -> Vec<Evaluation<'p>> {
    if let Some(messages) = std::str::from_utf8(bytes)
        .ok()
        .and_then(intake::queue_messages)
    {
        return match messages {
            Ok(messages) => messages
                .iter()
                .map(|m| in_message(m, evaluate(policy, home, m.body.as_bytes(), force_plan)))
                .collect(),
            Err(e) => vec![verdict("rejected", e.to_string().into())],
        };
    }
    match intake::parse_inbound_bytes(bytes) {
        Err(IntakeError::SeveralRecords(_)) => match intake::sns_records(bytes) {
            Ok(records) => records
                .iter()
                .map(|r| evaluate(policy, home, r.as_bytes(), force_plan))
                .collect(),
            Err(e) => vec![verdict("rejected", e.to_string().into())],
        },
        inbound => vec![evaluate_inbound(policy, home, inbound, force_plan)],
    }
}

/// Evaluates an already-parsed event against the policy (see [`evaluate`]).
pub fn evaluate_value<'p>(
    policy: &'p Policy,
    home: Option<&Home>,
    event: &Value,
    force_plan: bool,
) -> Evaluation<'p> {
    evaluate_inbound(policy, home, intake::parse_inbound(event), force_plan)
}

fn evaluate_inbound<'p>(
    policy: &'p Policy,
    home: Option<&Home>,
    inbound: Result<Inbound, IntakeError>,
    force_plan: bool,
) -> Evaluation<'p> {
    if let (Some(home), Ok(inbound)) = (home, &inbound) {
        if let Some(why) = origin_refused(policy, home, inbound) {
            return match inbound {
                Inbound::Alarm(t) => Evaluation {
                    alarm: Some(t.alarm_name.clone()),
                    state: Some(t.new_state),
                    transport: Some(t.transport.as_str()),
                    dedupe_key: Some(t.dedupe_key()),
                    ..verdict("rejected", why.into())
                },
                _ => verdict("rejected", why.into()),
            };
        }
    }
    match inbound {
        Ok(Inbound::Alarm(t)) => evaluate_transition(policy, &t, force_plan),
        Ok(Inbound::Schedule { account, .. }) => match untrusted_account(policy, &account) {
            Some(Decision::Rejected(reason)) => verdict("rejected", reason.into()),
            _ => verdict(
                "no-action",
                "scheduled check: pending escalations are read from the targets, so only `guard replay` can tell".into(),
            ),
        },
        Ok(Inbound::Insight(a)) => verdict_of(policy, decide_insight(policy, &a, force_plan), "Critical Insight accepted", true),
        Ok(Inbound::AliasChange(c)) => match untrusted_account(policy, &c.account) {
            Some(Decision::Rejected(reason)) => verdict("rejected", reason.into()),
            _ => verdict(
                "no-action",
                format!(
                    "records that version {} went live on {}:{} at {}, for the judgement before a rollback",
                    c.version,
                    c.function,
                    c.alias,
                    crate::transition::rfc3339_millis(&c.at)
                )
                .into(),
            ),
        },
        Ok(Inbound::Request(r)) => verdict_of(policy, decide_request(policy, &r, force_plan), "Rollback Requested accepted", false),
        Err(e) => verdict("rejected", e.to_string().into()),
    }
}

fn verdict_of<'p>(
    policy: &Policy,
    decision: Decision<'p>,
    accepted: &'static str,
    automatic: bool,
) -> Evaluation<'p> {
    match decision {
        Decision::Act {
            target,
            trigger,
            mode,
        } => Evaluation {
            action: Some(trigger.first_action().as_str()),
            target: Some(name_of(target)),
            judgement: judgement_to_come(policy, &trigger, mode, automatic),
            ..verdict(outcome_of(mode), accepted.into())
        },
        Decision::StandDown {
            target,
            action,
            reason,
        } => Evaluation {
            action: Some(action.as_str()),
            target: Some(name_of(target)),
            ..verdict("skipped", reason.into())
        },
        Decision::NoAction(r) => verdict("no-action", r.into()),
        Decision::Ignored(r) => verdict("ignored", r.into()),
        Decision::Rejected(r) => verdict("rejected", r.into()),
    }
}

/// An acting decision's outcome offline: `act`, `observe` or `dry-run`.
fn outcome_of(mode: Mode) -> &'static str {
    match mode {
        Mode::Execute => "act",
        Mode::Observe => "observe",
        Mode::Plan => "dry-run",
    }
}

fn verdict(outcome: &'static str, reason: Cow<'static, str>) -> Evaluation<'static> {
    Evaluation {
        outcome,
        action: None,
        target: None,
        watched: None,
        alarm: None,
        state: None,
        transport: None,
        dedupe_key: None,
        reason,
        judgement: None,
    }
}

/// A target's name, borrowed from the policy where the target is the policy's.
fn name_of(target: Cow<'_, Target>) -> Cow<'_, str> {
    match target {
        Cow::Borrowed(t) => Cow::Borrowed(t.name.as_str()),
        Cow::Owned(t) => Cow::Owned(t.name),
    }
}

fn evaluate_transition<'p>(policy: &'p Policy, t: &Transition, force_plan: bool) -> Evaluation<'p> {
    let decision = decide(policy, t, force_plan);
    let mut judgement = None;
    let (outcome, action, target, reason) = match decision {
        Decision::Act {
            target,
            trigger,
            mode,
        } => {
            let outcome = outcome_of(mode);
            let reason = format!(
                "alarm `{}` is in ALARM since {} (the event's time)",
                t.alarm_name,
                crate::transition::rfc3339_millis(&t.timestamp)
            );
            judgement = judgement_to_come(policy, &trigger, mode, true);
            (
                outcome,
                Some(trigger.first_action().as_str()),
                Some(name_of(target)),
                reason.into(),
            )
        }
        Decision::StandDown {
            target,
            action,
            reason,
        } => (
            "skipped",
            Some(action.as_str()),
            Some(name_of(target)),
            reason.into(),
        ),
        Decision::NoAction(r) => ("no-action", None, None, r.into()),
        Decision::Ignored(r) => ("ignored", None, None, r.into()),
        Decision::Rejected(r) => ("rejected", None, None, r.into()),
    };
    let watched = policy
        .trigger_for(&t.alarm_name, &t.account)
        .filter(|trigger| trigger.from_alarm())
        .and_then(|_| t.watched().alias().ok().cloned());
    Evaluation {
        outcome,
        action,
        target,
        watched,
        alarm: Some(t.alarm_name.clone()),
        state: Some(t.new_state),
        transport: Some(t.transport.as_str()),
        dedupe_key: Some(t.dedupe_key()),
        reason,
        judgement,
    }
}
