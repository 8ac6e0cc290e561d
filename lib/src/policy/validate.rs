//! The policy file as written, and its validation into a [`Policy`]: every error names the
//! field (`trigger[1].alarm`) and what was expected.

use super::settings::{blame_window, guard_mode, settings, RawSettings};
use super::{
    Action, AlarmPattern, Deployment, DeploymentGroup, InsightMatch, Policy, PolicyError, Target,
    Trigger, DEFAULT_AI_FLAG, ENV_EVENT_BUS, ENV_NOTIFY_TOPIC_ARN, FROM_ALARM, POLICY_VERSION,
};
use crate::transition::is_account_id;
use crate::watched::is_alias_name;
use serde::Deserialize;
use std::collections::HashSet;

// The file as written; `Policy` is what it means once validated.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    /// The policy format's version (default 1): a guard meeting a newer one says so.
    #[serde(default)]
    #[allow(dead_code)]
    version: Option<i64>,
    #[serde(default)]
    guard: RawSettings,
    #[serde(default)]
    target: Vec<RawTarget>,
    #[serde(default)]
    trigger: Vec<RawTrigger>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    name: String,
    function: String,
    alias: Option<String>,
    ai_flag: Option<String>,
    account: Option<String>,
    codedeploy_application: Option<String>,
    codedeploy_group: Option<String>,
    floor: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrigger {
    alarm: Option<String>,
    insight_source: Option<String>,
    stream_id: Option<String>,
    min_risk: Option<i64>,
    target: String,
    action: OneOrMany,
    escalate_after_minutes: Option<i64>,
    blame_window_minutes: Option<i64>,
    mode: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// Parses and validates policy TOML for a deployment that fixes the topic and the bus.
pub(super) fn policy(text: &str, deployment: &Deployment) -> Result<Policy, PolicyError> {
    // The version first: a newer policy's keys are not this guard's to guess at.
    #[derive(Deserialize)]
    struct Versioned {
        version: Option<toml::Value>,
    }
    let versioned: Versioned = toml::from_str(text)
        .map_err(|e| PolicyError::new("toml", e.to_string().trim_end().replace('\n', " ")))?;
    match versioned.version {
        None => {}
        Some(toml::Value::Integer(v)) if v == i64::from(POLICY_VERSION) => {}
        Some(toml::Value::Integer(v)) if v > i64::from(POLICY_VERSION) => {
            return Err(PolicyError::new(
                "version",
                format!("this policy is version {v}; this guard understands version {POLICY_VERSION}: upgrade the guard (and the guard CLI) before the policy"),
            ))
        }
        Some(other) => {
            return Err(PolicyError::new(
                "version",
                format!("expected {POLICY_VERSION}, got {other}"),
            ))
        }
    }
    let raw: RawPolicy = toml::from_str(text)
        .map_err(|e| PolicyError::new("toml", e.to_string().trim_end().replace('\n', " ")))?;
    let mut raw_settings = raw.guard;
    raw_settings.notify_topic_arn = deployed(
        "guard.notify_topic_arn",
        ENV_NOTIFY_TOPIC_ARN,
        raw_settings.notify_topic_arn,
        deployment.notify_topic_arn.as_ref(),
    )?;
    raw_settings.event_bus = deployed(
        "guard.event_bus",
        ENV_EVENT_BUS,
        raw_settings.event_bus,
        deployment.event_bus.as_ref(),
    )?;
    let guard = settings(raw_settings)?;
    let targets = raw
        .target
        .into_iter()
        .enumerate()
        .map(|(i, t)| target(i, t))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some((i, t)) = targets.iter().enumerate().find(|(_, t)| {
        t.account.as_ref().is_some_and(|a| {
            guard
                .accounts
                .as_ref()
                .is_none_or(|listed| !listed.contains(a))
        })
    }) {
        return Err(PolicyError::new(
            format!("target[{i}].account"),
            format!(
                "account {} is not in guard.accounts",
                t.account.as_deref().unwrap_or_default()
            ),
        ));
    }
    let mut names = HashSet::new();
    for (i, t) in targets.iter().enumerate() {
        if !names.insert(t.name.as_str()) {
            return Err(PolicyError::new(
                format!("target[{i}].name"),
                format!("duplicate target name `{}`", t.name),
            ));
        }
    }
    let triggers = raw
        .trigger
        .into_iter()
        .enumerate()
        .map(|(i, t)| trigger(i, t, &targets))
        .collect::<Result<Vec<_>, _>>()?;
    if triggers.is_empty() {
        return Err(PolicyError::new(
            "trigger",
            "expected at least one [[trigger]]",
        ));
    }
    Ok(Policy {
        guard,
        targets,
        triggers,
    })
}

/// The policy's value, else the deployment's; both given must agree.
fn deployed(
    field: &str,
    env: &str,
    policy: Option<String>,
    deployment: Option<&String>,
) -> Result<Option<String>, PolicyError> {
    match (policy, deployment) {
        (Some(p), Some(d)) if &p != d => Err(PolicyError::new(
            field,
            format!(
                "`{p}` differs from the deployment's `{d}` ({env}); leave the field out or name the same one"
            ),
        )),
        (Some(p), _) => Ok(Some(p)),
        (None, d) => Ok(d.cloned()),
    }
}

fn target(i: usize, raw: RawTarget) -> Result<Target, PolicyError> {
    let field = |f: &str| format!("target[{i}].{f}");
    if raw.name.trim().is_empty() {
        return Err(PolicyError::new(field("name"), "expected a non-empty name"));
    }
    if raw.name == FROM_ALARM {
        return Err(PolicyError::new(
            field("name"),
            format!(
                "`{FROM_ALARM}` is reserved for fleet triggers (the target read from the alarm)"
            ),
        ));
    }
    if !valid_function_ref(&raw.function) {
        return Err(PolicyError::new(
            field("function"),
            format!(
                "`{}` is not a function name or unqualified function ARN",
                raw.function
            ),
        ));
    }
    if let Some(alias) = &raw.alias {
        if !is_alias_name(alias) {
            return Err(PolicyError::new(
                field("alias"),
                format!("`{alias}` is not a Lambda alias name"),
            ));
        }
    }
    if let Some(account) = raw.account.as_deref().filter(|a| !is_account_id(a)) {
        return Err(PolicyError::new(
            field("account"),
            format!("`{account}` is not a 12-digit account id"),
        ));
    }
    let ai_flag = raw.ai_flag.unwrap_or_else(|| DEFAULT_AI_FLAG.into());
    if !is_variable_name(&ai_flag) {
        return Err(PolicyError::new(
            field("ai_flag"),
            format!("`{ai_flag}` is not an environment variable name"),
        ));
    }
    let codedeploy = match (raw.codedeploy_application, raw.codedeploy_group) {
        (None, None) => None,
        (Some(application), Some(group)) => Some(DeploymentGroup {
            application: codedeploy_name(&field("codedeploy_application"), application)?,
            group: codedeploy_name(&field("codedeploy_group"), group)?,
        }),
        (Some(_), None) | (None, Some(_)) => {
            return Err(PolicyError::new(
                field("codedeploy_group"),
                "codedeploy_application and codedeploy_group go together (a deployment group is named within its application)",
            ))
        }
    };
    let floor = match raw.floor {
        None => None,
        Some(v) => Some(u64::try_from(v).ok().filter(|v| *v >= 1).ok_or_else(|| {
            PolicyError::new(
                field("floor"),
                format!("expected a published version number (1 or more), got {v}"),
            )
        })?),
    };
    Ok(Target {
        floor,
        name: raw.name,
        function: raw.function,
        alias: raw.alias,
        ai_flag,
        fleet: false,
        account: raw.account,
        codedeploy,
    })
}

/// A CodeDeploy application or deployment group name: 1 to 100 characters.
pub fn codedeploy_name(field: &str, name: String) -> Result<String, PolicyError> {
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err(PolicyError::new(
            field,
            format!("`{name}` is not a CodeDeploy name (1 to 100 characters)"),
        ));
    }
    Ok(name)
}

/// An environment variable name, as the guard accepts for a flag: [A-Za-z0-9_]+.
pub fn is_variable_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `name` or `prefix*`: exact names, or prefixes; `*` only once, at the end.
fn alarm_pattern(field: &str, alarm: String) -> Result<AlarmPattern, PolicyError> {
    match alarm.split_once('*') {
        _ if alarm.is_empty() => Err(PolicyError::new(
            field,
            "expected an alarm name or a prefix ending in `*`",
        )),
        None => Ok(AlarmPattern::Exact(alarm)),
        Some((prefix, "")) if !prefix.is_empty() => Ok(AlarmPattern::Prefix(prefix.into())),
        Some(_) => Err(PolicyError::new(
            field,
            format!("`{alarm}`: `*` is allowed only once, at the end, after a non-empty prefix"),
        )),
    }
}

/// A Lambda function name: 1-64 of [a-zA-Z0-9-_].
pub fn is_function_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A function name or `arn:aws:lambda:REGION:ACCOUNT:function:NAME`.
fn valid_function_ref(s: &str) -> bool {
    let name_ok = is_function_name;
    if s.starts_with("arn:") {
        let parts: Vec<&str> = s.split(':').collect();
        parts.len() == 7
            && parts[2] == "lambda"
            && is_account_id(parts[4])
            && parts[5] == "function"
            && name_ok(parts[6])
    } else {
        name_ok(s)
    }
}

fn trigger(i: usize, raw: RawTrigger, targets: &[Target]) -> Result<Trigger, PolicyError> {
    let field = |f: &str| format!("trigger[{i}].{f}");
    let fleet = raw.target == FROM_ALARM;
    let target = targets.iter().find(|t| t.name == raw.target);
    if target.is_none() && !fleet {
        return Err(PolicyError::new(
            field("target"),
            format!(
                "unknown target `{}`; expected one of the [[target]] names or \"{FROM_ALARM}\"",
                raw.target
            ),
        ));
    }
    let (alarm, insight) = match (raw.alarm, raw.insight_source) {
        (Some(alarm), None) => {
            if raw.stream_id.is_some() || raw.min_risk.is_some() {
                return Err(PolicyError::new(
                    field("stream_id"),
                    "`stream_id` and `min_risk` belong to insight triggers (with `insight_source`)",
                ));
            }
            (Some(alarm_pattern(&field("alarm"), alarm)?), None)
        }
        (None, Some(source)) if !source.trim().is_empty() => {
            let min_risk = match raw.min_risk {
                None => 80,
                Some(r) => u8::try_from(r).ok().filter(|r| *r <= 100).ok_or_else(|| {
                    PolicyError::new(field("min_risk"), format!("expected a risk score in 0..=100, got {r}"))
                })?,
            };
            let Some(target) = target else {
                return Err(PolicyError::new(
                    field("target"),
                    format!("`{FROM_ALARM}` reads the target from an alarm: an insight trigger names a [[target]]"),
                ));
            };
            let stream_id = raw.stream_id.unwrap_or_else(|| target.name.clone());
            (None, Some(InsightMatch { source, stream_id, min_risk }))
        }
        (None, Some(_)) => {
            return Err(PolicyError::new(field("insight_source"), "expected an event source, got an empty string"))
        }
        (Some(_), Some(_)) => {
            return Err(PolicyError::new(field("alarm"), "a trigger has either `alarm` or `insight_source`, not both"))
        }
        (None, None) => {
            return Err(PolicyError::new(
                field("alarm"),
                "expected `alarm` (an alarm name or prefix*) or `insight_source` (Critical Insight events)",
            ))
        }
    };
    let names = match raw.action {
        OneOrMany::One(a) => vec![a],
        OneOrMany::Many(list) => list,
    };
    if names.is_empty() {
        return Err(PolicyError::new(
            field("action"),
            "expected an action or a non-empty list of actions",
        ));
    }
    let mut actions = Vec::new();
    for name in &names {
        let action = Action::parse(name).ok_or_else(|| {
            PolicyError::new(
                field("action"),
                format!("unknown action `{name}`; expected \"rollback-alias\" or \"disable-ai\""),
            )
        })?;
        if actions.contains(&action) {
            return Err(PolicyError::new(
                field("action"),
                format!("`{name}` appears twice in the ladder"),
            ));
        }
        // A fleet target's alias is the one its alarm and its opt-in tag name.
        if let Some(t) = target.filter(|t| action == Action::RollbackAlias && t.alias.is_none()) {
            return Err(PolicyError::new(
                field("action"),
                format!(
                    "rollback-alias needs an alias, and target `{}` has none",
                    t.name
                ),
            ));
        }
        actions.push(action);
    }
    let escalate_after_minutes = match (raw.escalate_after_minutes, actions.len()) {
        (None, 1) => None,
        (None, _) => return Err(PolicyError::new(
            field("escalate_after_minutes"),
            "required with a ladder of more than one action: minutes to wait before the next one",
        )),
        (Some(_), 1) => {
            return Err(PolicyError::new(
                field("escalate_after_minutes"),
                "only meaningful with a ladder: give `action` a list of actions",
            ))
        }
        (Some(m), _) if m >= 1 => u32::try_from(m).ok(),
        (Some(m), _) => {
            return Err(PolicyError::new(
                field("escalate_after_minutes"),
                format!("expected a positive number of minutes, got {m}"),
            ))
        }
    };
    let blame_window_minutes =
        blame_window(&field("blame_window_minutes"), raw.blame_window_minutes)?;
    let mode = guard_mode(&field("mode"), raw.mode.as_deref())?;
    if insight.is_some() && actions.len() > 1 {
        return Err(PolicyError::new(
            field("action"),
            "an escalation ladder needs an alarm to watch: insight triggers take one action",
        ));
    }
    Ok(Trigger {
        blame_window_minutes,
        mode,
        alarm,
        insight,
        target: raw.target,
        actions,
        escalate_after_minutes,
    })
}
