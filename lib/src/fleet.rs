//! Fleets: functions protected because they opted in with a tag, not because the policy names
//! them. A fleet trigger (`target = "from-alarm"`) reads the function alias from its alarm
//! ([`crate::watched`]); the guard acts on it only while the function carries
//! `rollback-guard:protect` = that alias. The guard never writes these tags: people opt a
//! function in or out, and the guard's IAM refuses their keys.

use crate::policy::{is_variable_name, AlarmPattern, Policy, Target, DEFAULT_AI_FLAG};
use crate::ports::{AlarmStates, AlarmStatus};
use crate::retry::RetryPolicy;
use crate::watched::WatchedAlias;
use std::collections::BTreeMap;

/// The opt-in tag: its value is the alias the guard may move.
pub const PROTECT_TAG: &str = "rollback-guard:protect";
/// Optional: the function's AI flag (default `AI_ENABLED`).
pub const AI_FLAG_TAG: &str = "rollback-guard:ai-flag";

/// The target an alarm names, before its tags say whether it opted in. Its name is the
/// function's: what `guard pause --target` and the notifications call it.
pub fn target_of(watched: &WatchedAlias) -> Target {
    Target {
        name: watched.function.clone(),
        function: watched.function.clone(),
        alias: Some(watched.alias.clone()),
        ai_flag: DEFAULT_AI_FLAG.into(),
        fleet: true,
        account: None,
        codedeploy: None,
        floor: None,
    }
}

/// The fleet target a person's request names by its function: the alias is the one its
/// opt-in tag names, read when the guard acts ([`protected`]).
pub fn requested(function: &str) -> Target {
    Target {
        name: function.into(),
        function: function.into(),
        alias: None,
        ai_flag: DEFAULT_AI_FLAG.into(),
        fleet: true,
        account: None,
        codedeploy: None,
        floor: None,
    }
}

/// Why a fleet target is not acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotProtected {
    /// No opt-in tag, or one naming another alias: ignored, silently.
    NotOptedIn(String),
    /// Opted in, with a flag tag that names no environment variable: people must hear of it.
    BadFlag(String),
}

/// The fleet target as its tags make it: opted in for this alias (for a request, which names
/// none: the alias its tag names), with its flag.
pub fn protected(target: &Target, tags: &BTreeMap<String, String>) -> Result<Target, NotProtected> {
    let tagged = tags.get(PROTECT_TAG).map(String::as_str);
    let alias = target.alias.as_deref().or(tagged).unwrap_or_default();
    match tagged {
        Some(value) if value == alias => {}
        Some(other) => {
            return Err(NotProtected::NotOptedIn(format!(
                "not opted in: {} protects alias `{other}` ({PROTECT_TAG}), not `{alias}`",
                target.function
            )))
        }
        None => {
            return Err(NotProtected::NotOptedIn(format!(
                "not opted in: {} has no {PROTECT_TAG} tag",
                target.function
            )))
        }
    }
    let mut target = target.clone();
    target.alias = Some(alias.to_string());
    if let Some(flag) = tags.get(AI_FLAG_TAG) {
        if !is_variable_name(flag) {
            return Err(NotProtected::BadFlag(format!(
                "{}: tag {AI_FLAG_TAG} `{flag}` is not an environment variable name",
                target.function
            )));
        }
        target.ai_flag = flag.clone();
    }
    Ok(target)
}

/// A function's opt-in, read from its tags: the alias it protects, if any.
pub fn protected_alias(tags: &BTreeMap<String, String>) -> Option<&str> {
    tags.get(PROTECT_TAG).map(String::as_str)
}

/// The alarms of `account` fleet triggers act through, with what their metrics name (each
/// pattern read once), and what could not be read. An alarm two patterns match is one alarm, and belongs to
/// the fleet only if the trigger it acts through (the first that matches) is a fleet trigger.
pub async fn read_alarms(
    policy: &Policy,
    account: &str,
    alarms: &dyn AlarmStates,
    retry: &RetryPolicy,
) -> (Vec<AlarmStatus>, Vec<String>) {
    let mut patterns: Vec<&AlarmPattern> = Vec::new();
    for p in policy
        .triggers
        .iter()
        .filter(|t| t.from_alarm())
        .filter_map(|t| t.alarm.as_ref())
    {
        if !patterns.contains(&p) {
            patterns.push(p);
        }
    }
    let mut found: Vec<AlarmStatus> = Vec::new();
    let mut failures = Vec::new();
    for pattern in patterns {
        match retry.run("DescribeAlarms", || alarms.alarms(pattern)).await {
            Ok(these) => found.extend(these),
            Err(e) => failures.push(format!("cannot read the fleet's alarms: {e}")),
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found.dedup_by(|a, b| a.name == b.name);
    found.retain(|a| {
        policy
            .trigger_for(&a.name, account)
            .is_some_and(|t| t.from_alarm())
    });
    (found, failures)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(alias: &str) -> Target {
        target_of(&WatchedAlias {
            function: "pay".into(),
            alias: alias.into(),
            version: None,
        })
    }

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_function_is_protected_only_for_the_alias_its_tag_names() {
        let t = protected(&target("live"), &tags(&[(PROTECT_TAG, "live")])).expect("opted in");
        assert_eq!(t.ai_flag, "AI_ENABLED");
        assert!(t.fleet);
        let other = protected(&target("beta"), &tags(&[(PROTECT_TAG, "live")]));
        assert!(matches!(other, Err(NotProtected::NotOptedIn(r)) if r.contains("`live`")));
        let none = protected(&target("live"), &tags(&[("team", "payments")]));
        assert!(matches!(none, Err(NotProtected::NotOptedIn(r)) if r.starts_with("not opted in")));
    }

    #[test]
    fn a_request_takes_the_alias_its_tag_names() {
        let t = protected(&requested("pay"), &tags(&[(PROTECT_TAG, "prod")])).expect("opted in");
        assert_eq!(t.alias.as_deref(), Some("prod"));
        let none = protected(&requested("pay"), &tags(&[]));
        assert!(matches!(none, Err(NotProtected::NotOptedIn(_))));
    }

    #[test]
    fn the_flag_tag_names_the_flag_and_a_bad_one_is_refused() {
        let t = protected(
            &target("live"),
            &tags(&[(PROTECT_TAG, "live"), (AI_FLAG_TAG, "USE_LLM")]),
        )
        .expect("opted in");
        assert_eq!(t.ai_flag, "USE_LLM");
        let bad = protected(
            &target("live"),
            &tags(&[(PROTECT_TAG, "live"), (AI_FLAG_TAG, "use llm")]),
        );
        assert!(matches!(bad, Err(NotProtected::BadFlag(_))));
    }
}
