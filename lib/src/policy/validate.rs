//! The policy file as written, and its validation into a [`Policy`]: every error names the
//! field (`trigger[1].alarm`) and what was expected.

use super::{
    Action, AlarmPattern, Deployment, DeploymentGroup, InsightMatch, Policy, PolicyError,
    ReplayMode, Settings, Target, Trigger, DEFAULT_AI_FLAG, DEFAULT_ALARM_READS_PER_SECOND,
    DEFAULT_CODEDEPLOY_WAIT_SECONDS, DEFAULT_LAMBDA_CALLS_PER_SECOND, DESCRIBE_ALARMS_PER_SECOND,
    ENV_EVENT_BUS, ENV_NOTIFY_TOPIC_ARN, FROM_ALARM, LAMBDA_CONTROL_PLANE_PER_SECOND,
    MAX_CODEDEPLOY_WAIT_SECONDS, MEMBER_ACCOUNT,
};
use crate::transition::is_account_id;
use crate::watched::is_alias_name;
use serde::Deserialize;
use std::collections::HashSet;

// The file as written; `Policy` is what it means once validated.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    guard: RawSettings,
    #[serde(default)]
    target: Vec<RawTarget>,
    #[serde(default)]
    trigger: Vec<RawTrigger>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    accounts: Option<Vec<String>>,
    notify_topic_arn: Option<String>,
    event_bus: Option<String>,
    cooldown_minutes: Option<i64>,
    on_replay: Option<String>,
    #[serde(default)]
    request_sources: Vec<String>,
    blind_after_minutes: Option<i64>,
    honour_disabled_actions: Option<bool>,
    member_role: Option<String>,
    lambda_calls_per_second: Option<i64>,
    alarm_reads_per_second: Option<i64>,
    codedeploy_wait_seconds: Option<i64>,
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
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// Parses and validates policy TOML for a deployment that fixes the topic and the bus.
pub(super) fn policy(text: &str, deployment: &Deployment) -> Result<Policy, PolicyError> {
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

fn settings(raw: RawSettings) -> Result<Settings, PolicyError> {
    if let Some(accounts) = &raw.accounts {
        if accounts.is_empty() {
            return Err(PolicyError::new(
                "guard.accounts",
                "expected at least one 12-digit account id, or leave the field out",
            ));
        }
        if let Some(bad) = accounts.iter().find(|a| !is_account_id(a)) {
            return Err(PolicyError::new(
                "guard.accounts",
                format!("`{bad}` is not a 12-digit account id"),
            ));
        }
    }
    if let Some(topic) = &raw.notify_topic_arn {
        let parts: Vec<&str> = topic.split(':').collect();
        if parts.len() != 6 || parts[0] != "arn" || parts[2] != "sns" || parts[5].is_empty() {
            return Err(PolicyError::new(
                "guard.notify_topic_arn",
                format!("`{topic}` is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"),
            ));
        }
    }
    let event_bus = raw.event_bus.unwrap_or_else(|| "default".into());
    if event_bus.trim().is_empty() {
        return Err(PolicyError::new(
            "guard.event_bus",
            "expected a bus name or ARN, got an empty string",
        ));
    }
    let cooldown_minutes = match raw.cooldown_minutes {
        None => 30,
        Some(m) => u32::try_from(m).map_err(|_| {
            PolicyError::new(
                "guard.cooldown_minutes",
                format!("expected a non-negative number of minutes, got {m}"),
            )
        })?,
    };
    let on_replay = match raw.on_replay.as_deref() {
        None | Some("dry-run") => ReplayMode::DryRun,
        Some("ignore") => ReplayMode::Ignore,
        Some("act") => ReplayMode::Act,
        Some(other) => {
            return Err(PolicyError::new(
                "guard.on_replay",
                format!("unknown mode `{other}`; expected \"dry-run\", \"ignore\" or \"act\""),
            ))
        }
    };
    if let Some(bad) = raw.request_sources.iter().find(|s| s.trim().is_empty()) {
        return Err(PolicyError::new(
            "guard.request_sources",
            format!("`{bad}` is not an event source"),
        ));
    }
    let member_role = match raw.member_role {
        None => None,
        Some(role) => Some(member_role(&role, raw.accounts.is_some())?),
    };
    let blind_after_minutes = match raw.blind_after_minutes {
        None => 30,
        Some(m) => u32::try_from(m).ok().filter(|m| *m >= 1).ok_or_else(|| {
            PolicyError::new(
                "guard.blind_after_minutes",
                format!("expected a positive number of minutes, got {m}"),
            )
        })?,
    };
    let lambda_calls_per_second = share(
        "guard.lambda_calls_per_second",
        raw.lambda_calls_per_second,
        DEFAULT_LAMBDA_CALLS_PER_SECOND,
        LAMBDA_CONTROL_PLANE_PER_SECOND,
        "Lambda's control-plane quota",
    )?;
    let alarm_reads_per_second = share(
        "guard.alarm_reads_per_second",
        raw.alarm_reads_per_second,
        DEFAULT_ALARM_READS_PER_SECOND,
        DESCRIBE_ALARMS_PER_SECOND,
        "CloudWatch's DescribeAlarms quota",
    )?;
    let codedeploy_wait_seconds = match raw.codedeploy_wait_seconds {
        None => DEFAULT_CODEDEPLOY_WAIT_SECONDS,
        Some(s) => u32::try_from(s)
            .ok()
            .filter(|s| (1..=MAX_CODEDEPLOY_WAIT_SECONDS).contains(s))
            .ok_or_else(|| {
                PolicyError::new(
                    "guard.codedeploy_wait_seconds",
                    format!("expected 1 to {MAX_CODEDEPLOY_WAIT_SECONDS} seconds (the guard function times out after 300), got {s}"),
                )
            })?,
    };
    Ok(Settings {
        codedeploy_wait_seconds,
        lambda_calls_per_second,
        alarm_reads_per_second,
        blind_after_minutes,
        honour_disabled_actions: raw.honour_disabled_actions.unwrap_or(true),
        request_sources: raw.request_sources,
        accounts: raw.accounts,
        notify_topic_arn: raw.notify_topic_arn,
        event_bus,
        cooldown_minutes,
        on_replay,
        member_role,
    })
}

/// A share of an account's quota: at least one request a second, at most the quota itself.
fn share(
    field: &str,
    raw: Option<i64>,
    default: u32,
    quota: u32,
    what: &str,
) -> Result<u32, PolicyError> {
    let Some(n) = raw else {
        return Ok(default);
    };
    u32::try_from(n)
        .ok()
        .filter(|n| (1..=quota).contains(n))
        .ok_or_else(|| {
            PolicyError::new(
                field,
                format!("expected 1 to {quota} requests a second ({what} is {quota}/s per account and region), got {n}"),
            )
        })
}

/// `arn:<partition>:iam::{account}:role/<path and name>`: the role the guard assumes in a
/// member account, `{account}` replaced by it. Needs `guard.accounts`: who may be acted in is
/// always an explicit list.
fn member_role(role: &str, accounts_listed: bool) -> Result<String, PolicyError> {
    let field = "guard.member_role";
    if !accounts_listed {
        return Err(PolicyError::new(
            field,
            "needs guard.accounts: the accounts the guard may act in, listed (no wildcard)",
        ));
    }
    let sample = role.replace(MEMBER_ACCOUNT, "222222222222");
    let parts: Vec<&str> = sample.splitn(6, ':').collect();
    let ok = role.matches(MEMBER_ACCOUNT).count() == 1
        && matches!(parts.as_slice(), ["arn", partition, "iam", "", "222222222222", rest]
            if partition.starts_with("aws") && rest.starts_with("role/") && rest.len() > 5);
    if !ok {
        return Err(PolicyError::new(
            field,
            format!("`{role}` is not a role ARN with {MEMBER_ACCOUNT} as its account (arn:aws:iam::{MEMBER_ACCOUNT}:role/NAME)"),
        ));
    }
    Ok(role.to_string())
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
    Ok(Target {
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
    if insight.is_some() && actions.len() > 1 {
        return Err(PolicyError::new(
            field("action"),
            "an escalation ladder needs an alarm to watch: insight triggers take one action",
        ));
    }
    Ok(Trigger {
        alarm,
        insight,
        target: raw.target,
        actions,
        escalate_after_minutes,
    })
}
