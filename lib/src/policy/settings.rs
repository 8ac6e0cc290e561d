//! The policy's `[guard]` table as written, and its validation into [`Settings`]: accounts,
//! where announcements go, the cooldown, the judgement (blame window, cap, mode), the guard's
//! share of the quotas, the member role. Every error names the field.

use super::{
    GuardMode, PolicyError, ReplayMode, Settings, DEFAULT_ALARM_READS_PER_SECOND,
    DEFAULT_BLAME_WINDOW_MINUTES, DEFAULT_CODEDEPLOY_WAIT_SECONDS, DEFAULT_LAMBDA_CALLS_PER_SECOND,
    DEFAULT_MAX_ROLLBACKS_PER_HOUR, DESCRIBE_ALARMS_PER_SECOND, LAMBDA_CONTROL_PLANE_PER_SECOND,
    MAX_BLAME_WINDOW_MINUTES, MAX_CODEDEPLOY_WAIT_SECONDS, MAX_ROLLBACKS_PER_HOUR, MEMBER_ACCOUNT,
};
use crate::transition::is_account_id;
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSettings {
    accounts: Option<Vec<String>>,
    pub(super) notify_topic_arn: Option<String>,
    pub(super) event_bus: Option<String>,
    cooldown_minutes: Option<i64>,
    on_replay: Option<String>,
    #[serde(default)]
    request_sources: Vec<String>,
    blind_after_minutes: Option<i64>,
    honour_disabled_actions: Option<bool>,
    member_role: Option<String>,
    operator_role: Option<String>,
    lambda_calls_per_second: Option<i64>,
    alarm_reads_per_second: Option<i64>,
    codedeploy_wait_seconds: Option<i64>,
    blame_window_minutes: Option<i64>,
    max_rollbacks_per_hour: Option<i64>,
    mode: Option<String>,
}

pub(super) fn settings(raw: RawSettings) -> Result<Settings, PolicyError> {
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
        Some(role) => Some(role_arn(
            "guard.member_role",
            &role,
            raw.accounts.is_some(),
        )?),
    };
    let operator_role = match raw.operator_role {
        None => None,
        Some(role) => Some(role_arn(
            "guard.operator_role",
            &role,
            raw.accounts.is_some(),
        )?),
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
    let blame_window_minutes =
        blame_window("guard.blame_window_minutes", raw.blame_window_minutes)?
            .unwrap_or(DEFAULT_BLAME_WINDOW_MINUTES);
    let max_rollbacks_per_hour = match raw.max_rollbacks_per_hour {
        None => DEFAULT_MAX_ROLLBACKS_PER_HOUR,
        Some(n) => u32::try_from(n)
            .ok()
            .filter(|n| (1..=MAX_ROLLBACKS_PER_HOUR).contains(n))
            .ok_or_else(|| {
                PolicyError::new(
                    "guard.max_rollbacks_per_hour",
                    format!("expected 1 to {MAX_ROLLBACKS_PER_HOUR} automatic alias rollbacks an hour in an account, got {n}"),
                )
            })?,
    };
    let mode = guard_mode("guard.mode", raw.mode.as_deref())?.unwrap_or_default();
    Ok(Settings {
        blame_window_minutes,
        max_rollbacks_per_hour,
        mode,
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
        operator_role,
    })
}

/// A blame window: whole minutes, at least one, at most 30 days.
pub(super) fn blame_window(field: &str, raw: Option<i64>) -> Result<Option<u32>, PolicyError> {
    raw.map(|m| {
        u32::try_from(m)
            .ok()
            .filter(|m| (1..=MAX_BLAME_WINDOW_MINUTES).contains(m))
            .ok_or_else(|| {
                PolicyError::new(
                    field,
                    format!("expected 1 to {MAX_BLAME_WINDOW_MINUTES} minutes (30 days): how recently a version must have gone live for an alarm to roll it back, got {m}"),
                )
            })
    })
    .transpose()
}

/// `act` (default) or `observe`.
pub(super) fn guard_mode(field: &str, raw: Option<&str>) -> Result<Option<GuardMode>, PolicyError> {
    match raw {
        None => Ok(None),
        Some("act") => Ok(Some(GuardMode::Act)),
        Some("observe") => Ok(Some(GuardMode::Observe)),
        Some(other) => Err(PolicyError::new(
            field,
            format!("unknown mode `{other}`; expected \"act\" or \"observe\" (decide and announce, change nothing)"),
        )),
    }
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

/// `arn:<partition>:iam::{account}:role/<path and name>`: a role assumed in a member account
/// (the guard's, or operators'), `{account}` replaced by it. Needs `guard.accounts`: who may be acted in is
/// always an explicit list.
fn role_arn(field: &str, role: &str, accounts_listed: bool) -> Result<String, PolicyError> {
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
