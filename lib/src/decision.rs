//! The pure decision core: a validated transition and the policy in, a [`Decision`] out.
//! No I/O, no SDK types; the part of the guard with the most tests.

use crate::fleet;
use crate::home::Home;
use crate::intake::{ActionRequest, Inbound, InsightAlert};
use crate::policy::{Action, GuardMode, Policy, ReplayMode, Target, Trigger};
use crate::transition::{AlarmState, Transition};
use serde::Serialize;
use std::borrow::Cow;

/// Whether an action is carried out, observed or only planned (dry-run, shadow backtest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Execute,
    /// `guard.mode = "observe"`: decided and confirmed as when executed, announced (paged) as
    /// what the guard would have done, nothing changed and nothing remembered but that it
    /// observed it (no claim, record or cooldown).
    Observe,
    Plan,
}

impl Mode {
    /// Whether the alarm is confirmed and the case judged, as for real.
    pub fn live(self) -> bool {
        self != Self::Plan
    }
}

// One decision per event, moved once: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Decision<'p> {
    /// Run the first action of the trigger's ladder on the target. Both are the policy's own
    /// (a request's one-action ladder is made for it), except a fleet trigger's target, read
    /// from the alarm (and acted on only if the function opted in).
    Act {
        target: Cow<'p, Target>,
        trigger: Cow<'p, Trigger>,
        mode: Mode,
    },
    /// A matched alarm in ALARM whose own actions people have silenced (an actions
    /// suppressor): the guard stands down with them, and says so to machines only.
    StandDown {
        target: Cow<'p, Target>,
        action: Action,
        reason: String,
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
pub fn decide<'p>(policy: &'p Policy, t: &Transition, force_plan: bool) -> Decision<'p> {
    if let Some(accounts) = &policy.guard.accounts {
        if !accounts.contains(&t.account) {
            return Decision::Rejected(format!("account {} is not in guard.accounts", t.account));
        }
    }
    let Some(trigger) = policy.trigger_for(&t.alarm_name, &t.account) else {
        return Decision::Ignored(format!("no trigger matches alarm `{}`", t.alarm_name));
    };
    let target = match target_of(policy, trigger, t) {
        Ok(target) => target,
        Err(why) => return Decision::Rejected(why),
    };
    if let Some(why) = elsewhere(&target, &t.account) {
        return Decision::Rejected(why);
    }
    if t.new_state != AlarmState::Alarm {
        return Decision::NoAction(format!(
            "alarm `{}` went to {}; only ALARM acts",
            t.alarm_name, t.new_state
        ));
    }
    if let Some(suppressed) = &t.suppressed {
        return Decision::StandDown {
            target,
            action: trigger.first_action(),
            reason: format!(
                "alarm `{}` is in ALARM with its actions {suppressed}: the guard stands down as they do",
                t.alarm_name
            ),
        };
    }
    act_through(
        policy,
        trigger,
        target,
        t.replay_name.as_deref(),
        force_plan,
    )
}

/// The target a matched alarm trigger moves: the policy's, or for a fleet trigger the function
/// alias the alarm's metrics name. `Err`: why the event is rejected (they name none, or two).
fn target_of<'p>(
    policy: &'p Policy,
    trigger: &Trigger,
    t: &Transition,
) -> Result<Cow<'p, Target>, String> {
    if trigger.from_alarm() {
        if let Some(other) = t.foreign_metric_accounts().first() {
            return Err(format!(
                "alarm `{}` matches a fleet trigger, but its metrics are account {other}'s: the guard acts on functions of the alarm's own account ({}) only",
                t.alarm_name, t.account
            ));
        }
        return match t.watched().alias() {
            Ok(watched) => {
                let mut target = fleet::target_of(watched);
                // A fleet function is in its alarm's account.
                target.account = Some(t.account.clone());
                Ok(Cow::Owned(target))
            }
            Err(why) => Err(format!(
                "alarm `{}` matches a fleet trigger (target = \"{}\"), but {why}",
                t.alarm_name,
                crate::policy::FROM_ALARM
            )),
        };
    }
    named_target(policy, trigger)
}

/// Why `target` may not be acted on for an event of `account`, if it may not: a target lives
/// in one account (a named target's, filled in by the guard when the policy leaves it out), and
/// only an event of that account acts on it.
fn elsewhere(target: &Target, account: &str) -> Option<String> {
    let home = target.account.as_deref()?;
    (home != account).then(|| {
        format!(
            "target `{}` is in account {home}; the event comes from account {account}, and acts only on functions of its own account",
            target.name
        )
    })
}

/// A named trigger's target. Validation guarantees every such trigger names an existing one.
fn named_target<'p>(policy: &'p Policy, trigger: &Trigger) -> Result<Cow<'p, Target>, String> {
    policy
        .target(&trigger.target)
        .map(Cow::Borrowed)
        .ok_or_else(|| format!("trigger names unknown target `{}`", trigger.target))
}

/// Acting through a matched trigger: on its target, in the mode replays and dry runs call for.
fn act_through<'p>(
    policy: &'p Policy,
    trigger: &'p Trigger,
    target: Cow<'p, Target>,
    replay: Option<&str>,
    force_plan: bool,
) -> Decision<'p> {
    match replay_mode(policy, replay, force_plan) {
        Ok(mode) => Decision::Act {
            target,
            trigger: Cow::Borrowed(trigger),
            mode: observed(policy, trigger, mode),
        },
        Err(why) => Decision::Ignored(why),
    }
}

/// `mode`, as the trigger's (or the policy's) observe mode makes it.
fn observed(policy: &Policy, trigger: &Trigger, mode: Mode) -> Mode {
    match (mode, trigger.mode(&policy.guard)) {
        (Mode::Execute, GuardMode::Observe) => Mode::Observe,
        _ => mode,
    }
}

/// Replays whose name starts so are backtests (`guard backtest` names them so): only ever
/// planned, whatever `on_replay` says, so that a backtest changes nothing.
pub const BACKTEST_PREFIX: &str = "backtest-";

/// How an event is acted on: replayed events as `on_replay` says (a backtest's always as a
/// plan), `force_plan` as a plan. `Err` holds why the event is ignored.
fn replay_mode(policy: &Policy, replay: Option<&str>, force_plan: bool) -> Result<Mode, String> {
    if replay.is_some_and(|r| r.starts_with(BACKTEST_PREFIX)) {
        return Ok(Mode::Plan);
    }
    match (replay, policy.guard.on_replay) {
        (Some(replay), ReplayMode::Ignore) => Err(format!(
            "event replayed from archive (replay `{replay}`) and guard.on_replay = \"ignore\""
        )),
        (Some(_), ReplayMode::DryRun) => Ok(Mode::Plan),
        _ if force_plan => Ok(Mode::Plan),
        _ => Ok(Mode::Execute),
    }
}

/// A Critical Insight acts through the first insight trigger for its source and stream, when
/// its risk reaches the trigger's `min_risk`. Sources no trigger names are not trusted.
pub fn decide_insight<'p>(policy: &'p Policy, a: &InsightAlert, force_plan: bool) -> Decision<'p> {
    if let Some(rejection) = untrusted_account(policy, &a.account) {
        return rejection;
    }
    if !policy.accepts_insights_from(&a.source) {
        return Decision::Rejected(format!(
            "insight source `{}` is not named by any trigger's insight_source",
            a.source
        ));
    }
    let Some(trigger) = policy.insight_trigger_for(&a.source, &a.stream_id) else {
        return Decision::Ignored(format!("no insight trigger for stream `{}`", a.stream_id));
    };
    let min_risk = trigger.insight.as_ref().map_or(0, |m| m.min_risk);
    if a.risk_score < min_risk {
        return Decision::NoAction(format!(
            "risk {} is below the trigger's min_risk {min_risk}",
            a.risk_score
        ));
    }
    let target = match named_target(policy, trigger) {
        Ok(target) => target,
        Err(why) => return Decision::Rejected(why),
    };
    match elsewhere(&target, &a.account) {
        Some(why) => Decision::Rejected(why),
        None => act_through(
            policy,
            trigger,
            target,
            a.replay_name.as_deref(),
            force_plan,
        ),
    }
}

/// A manual request acts when its source is in `guard.request_sources` and it names a target
/// and an action the policy allows.
pub fn decide_request<'p>(policy: &'p Policy, r: &ActionRequest, force_plan: bool) -> Decision<'p> {
    if let Some(rejection) = untrusted_account(policy, &r.account) {
        return rejection;
    }
    if !policy.guard.request_sources.contains(&r.source) {
        return Decision::Rejected(format!(
            "requests from source `{}` are not accepted (guard.request_sources)",
            r.source
        ));
    }
    // A name the policy does not know may be a fleet function's: the guard reads its opt-in
    // tag before acting, and refuses the request if there is none.
    let target = match policy.target(&r.target) {
        Some(t) => Cow::Borrowed(t),
        None if policy.triggers.iter().any(Trigger::from_alarm)
            && crate::policy::is_function_name(&r.target) =>
        {
            let mut target = fleet::requested(&r.target);
            target.account = Some(r.account.clone());
            Cow::Owned(target)
        }
        None => return Decision::Rejected(format!("unknown target `{}`", r.target)),
    };
    if let Some(why) = elsewhere(&target, &r.account) {
        return Decision::Rejected(why);
    }
    let Some(action) = Action::parse(&r.action) else {
        return Decision::Rejected(format!(
            "unknown action `{}`; expected rollback-alias or disable-ai",
            r.action
        ));
    };
    if action == Action::RollbackAlias && !target.fleet && target.alias.is_none() {
        return Decision::Rejected(format!(
            "target `{}` has no alias to roll back",
            target.name
        ));
    }
    let mode = match replay_mode(policy, r.replay_name.as_deref(), force_plan) {
        Ok(mode) => mode,
        Err(why) => return Decision::Ignored(why),
    };
    let trigger = Trigger {
        alarm: None,
        insight: None,
        target: target.name.clone(),
        actions: vec![action],
        escalate_after_minutes: None,
        blame_window_minutes: None,
        // A person's decision acts even while the guard observes (as during a pause).
        mode: Some(GuardMode::Act),
    };
    Decision::Act {
        target,
        trigger: Cow::Owned(trigger),
        mode,
    }
}

/// Events from accounts outside `guard.accounts` are not trusted.
pub fn untrusted_account(policy: &Policy, account: &str) -> Option<Decision<'static>> {
    let accounts = policy.guard.accounts.as_ref()?;
    (!accounts.iter().any(|a| a == account))
        .then(|| Decision::Rejected(format!("account {account} is not in guard.accounts")))
}

/// Why an accepted event may not be acted on here, if it may not: its account is not in
/// `guard.accounts`, or it was caused in another account or region than the guard's own
/// (`home`), where the guard must not change anything.
pub fn origin_refused(policy: &Policy, home: &Home, inbound: &Inbound) -> Option<String> {
    let (account, region) = inbound.origin();
    if let Some(Decision::Rejected(why)) = untrusted_account(policy, account) {
        return Some(why);
    }
    // A listed member account, acted in through its role (`guard.member_role`); regions stay
    // one guard each.
    let member = account != home.account
        && region == home.region
        && policy.guard.member_role_in(account).is_some();
    if member {
        return None;
    }
    home.rejects(inbound)
}
