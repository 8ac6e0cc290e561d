//! The pure decision core: a validated transition and the policy in, a [`Decision`] out.
//! No I/O, no SDK types; the part of the guard with the most tests.

use crate::intake::{self, Inbound, IntakeError};
use crate::policy::{Policy, ReplayMode, Target, Trigger};
use crate::transition::{AlarmState, Transition};
use serde::Serialize;
use serde_json::Value;

/// Whether an action is carried out or only planned (dry-run, shadow backtest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Execute,
    Plan,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Run the first action of the trigger's ladder on the target.
    Act {
        target: Target,
        trigger: Trigger,
        mode: Mode,
    },
    /// A matched alarm whose state calls for nothing (OK, INSUFFICIENT_DATA).
    NoAction(String),
    /// Nothing in the policy is about this alarm, or replays are ignored.
    Ignored(String),
    /// The event is valid but not trusted (an account outside `guard.accounts`).
    Rejected(String),
}

/// Decides what a transition calls for. `force_plan` turns every action into a plan
/// (`guard replay --dry-run`).
pub fn decide(policy: &Policy, t: &Transition, force_plan: bool) -> Decision {
    if let Some(accounts) = &policy.guard.accounts {
        if !accounts.contains(&t.account) {
            return Decision::Rejected(format!("account {} is not in guard.accounts", t.account));
        }
    }
    let Some(trigger) = policy.trigger_for(&t.alarm_name) else {
        return Decision::Ignored(format!("no trigger matches alarm `{}`", t.alarm_name));
    };
    if t.new_state != AlarmState::Alarm {
        return Decision::NoAction(format!(
            "alarm `{}` went to {}; only ALARM acts",
            t.alarm_name, t.new_state
        ));
    }
    let mode = match (&t.replay_name, policy.guard.on_replay) {
        (Some(replay), ReplayMode::Ignore) => {
            return Decision::Ignored(format!(
                "event replayed from archive (replay `{replay}`) and guard.on_replay = \"ignore\""
            ))
        }
        (Some(_), ReplayMode::DryRun) => Mode::Plan,
        _ if force_plan => Mode::Plan,
        _ => Mode::Execute,
    };
    // Validation guarantees every trigger names an existing target.
    match policy.target(&trigger.target) {
        Some(target) => Decision::Act {
            target: target.clone(),
            trigger: trigger.clone(),
            mode,
        },
        None => Decision::Rejected(format!("trigger names unknown target `{}`", trigger.target)),
    }
}

/// Events from accounts outside `guard.accounts` are not trusted.
pub fn untrusted_account(policy: &Policy, account: &str) -> Option<Decision> {
    let accounts = policy.guard.accounts.as_ref()?;
    (!accounts.iter().any(|a| a == account))
        .then(|| Decision::Rejected(format!("account {account} is not in guard.accounts")))
}

/// The offline verdict on one event (`guard evaluate`): intake and decision, no AWS calls.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// `act`, `dry-run`, `no-action`, `ignored` or `rejected`.
    pub outcome: &'static str,
    pub action: Option<&'static str>,
    pub target: Option<String>,
    pub alarm: Option<String>,
    pub state: Option<AlarmState>,
    pub transport: Option<&'static str>,
    pub dedupe_key: Option<String>,
    pub reason: String,
}

/// Evaluates raw event bytes against the policy.
pub fn evaluate(policy: &Policy, bytes: &[u8], force_plan: bool) -> Evaluation {
    evaluate_inbound(policy, intake::parse_inbound_bytes(bytes), force_plan)
}

/// Evaluates an already-parsed event against the policy.
pub fn evaluate_value(policy: &Policy, event: &Value, force_plan: bool) -> Evaluation {
    evaluate_inbound(policy, intake::parse_inbound(event), force_plan)
}

fn evaluate_inbound(
    policy: &Policy,
    inbound: Result<Inbound, IntakeError>,
    force_plan: bool,
) -> Evaluation {
    match inbound {
        Ok(Inbound::Alarm(t)) => evaluate_transition(policy, &t, force_plan),
        Ok(Inbound::Schedule { account }) => match untrusted_account(policy, &account) {
            Some(Decision::Rejected(reason)) => verdict("rejected", reason),
            _ => verdict(
                "no-action",
                "scheduled check: pending escalations are read from the targets, so only `guard replay` can tell".into(),
            ),
        },
        Err(e) => verdict("rejected", e.to_string()),
    }
}

fn verdict(outcome: &'static str, reason: String) -> Evaluation {
    Evaluation {
        outcome,
        action: None,
        target: None,
        alarm: None,
        state: None,
        transport: None,
        dedupe_key: None,
        reason,
    }
}

fn evaluate_transition(policy: &Policy, t: &Transition, force_plan: bool) -> Evaluation {
    let decision = decide(policy, t, force_plan);
    let (outcome, action, target, reason) = match decision {
        Decision::Act {
            target,
            trigger,
            mode,
        } => {
            let outcome = if mode == Mode::Plan { "dry-run" } else { "act" };
            let reason = format!("alarm `{}` is in ALARM", t.alarm_name);
            (
                outcome,
                Some(trigger.first_action().as_str()),
                Some(target.name),
                reason,
            )
        }
        Decision::NoAction(r) => ("no-action", None, None, r),
        Decision::Ignored(r) => ("ignored", None, None, r),
        Decision::Rejected(r) => ("rejected", None, None, r),
    };
    Evaluation {
        outcome,
        action,
        target,
        alarm: Some(t.alarm_name.clone()),
        state: Some(t.new_state),
        transport: Some(t.transport.as_str()),
        dedupe_key: Some(t.dedupe_key()),
        reason,
    }
}
