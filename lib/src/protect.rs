//! What `guard protect` puts in place for a function alias, pure: the opt-in tag, and the
//! standard alarms under the prefix the policy's fleet trigger watches — the alias's error rate
//! above 5 % for 2 minutes, and its p95 duration above a threshold given or derived from last
//! week's — with the dimensions a fleet trigger reads (`FunctionName`, `Resource` =
//! `FUNCTION:ALIAS`). Each alarm is tagged with what created it, so that `guard unprotect`
//! removes exactly that.

use crate::policy::{AlarmPattern, Policy};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// The error rate, in percent, above which (for 2 minutes) the alias's alarm fires.
pub const ERROR_RATE_PERCENT: f64 = 5.0;
/// The p95 threshold when last week has no data: the template's seed alarm's default.
pub const DEFAULT_P95_MS: f64 = 3000.0;
/// Last week's p95 times this is the threshold derived from it.
pub const P95_HEADROOM: f64 = 2.0;

/// On each alarm `guard protect` created: by what (`guard protect`).
pub const CREATED_BY_TAG: &str = "rollback-guard:created-by";
pub const CREATED_BY: &str = "guard protect";
/// On each alarm: the function alias it was created for.
pub const TARGET_TAG: &str = "rollback-guard:target";
/// On each alarm: whether `guard protect` added the function's opt-in tag (`true`) or found it
/// there (`false`); `guard unprotect` removes the tag only in the first case.
pub const TAGGED_TAG: &str = "rollback-guard:tagged-by-protect";

/// What an alarm watches, and its threshold.
#[derive(Debug, Clone, PartialEq)]
pub enum AlarmKind {
    /// `100 * Errors / Invocations` (metric math), above `percent` for 2 one-minute periods.
    ErrorRate { percent: f64 },
    /// `Duration` p95, above `ms` for 3 one-minute periods.
    P95Duration { ms: f64 },
}

/// One alarm `guard protect` creates.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmSpec {
    pub name: String,
    pub description: String,
    pub function: String,
    pub alias: String,
    pub kind: AlarmKind,
    pub tags: BTreeMap<String, String>,
}

/// A Lambda metric of a function alias, read one value a `period_s` over `[since, until)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaMetric {
    pub function: String,
    pub alias: String,
    /// `Invocations`, `Errors`, `Duration`.
    pub name: String,
    /// `Sum`, `p95`.
    pub stat: String,
    pub period_s: i32,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// The alarm prefix `guard protect` names its alarms under: the first fleet trigger's (its
/// alarms are the ones read for the function alias their metrics name).
pub fn fleet_prefix(policy: &Policy) -> Result<String, String> {
    let fleet: Vec<_> = policy.triggers.iter().filter(|t| t.from_alarm()).collect();
    let Some(first) = fleet.first() else {
        return Err(
            "the policy has no fleet trigger (`target = \"from-alarm\"`): no alarm it watches would act on the function; add one, e.g. alarm = \"guarded-*\"".into(),
        );
    };
    match &first.alarm {
        Some(AlarmPattern::Prefix(p)) => Ok(p.clone()),
        Some(AlarmPattern::Exact(name)) => Err(format!(
            "the policy's fleet trigger watches the alarm `{name}` alone: `guard protect` needs a prefix (alarm = \"PREFIX*\") to name its alarms under"
        )),
        None => Err("the policy's fleet trigger watches no alarm".into()),
    }
}

/// The p95 threshold: `given`, else twice last week's p95 rounded up to 100 ms, else the
/// seed's default; and how it was chosen, for people.
pub fn p95_threshold(given: Option<f64>, last_week: Option<f64>) -> (f64, String) {
    if let Some(ms) = given {
        return (ms, format!("{ms} ms (--p95-ms)"));
    }
    match last_week.filter(|p| *p > 0.0) {
        Some(p95) => {
            let ms = ((p95 * P95_HEADROOM) / 100.0).ceil() * 100.0;
            (
                ms,
                format!("{ms} ms ({P95_HEADROOM}× last week's p95 of {p95:.0} ms)"),
            )
        }
        None => (
            DEFAULT_P95_MS,
            format!("{DEFAULT_P95_MS} ms (no duration data last week: the seed alarm's default; pass --p95-ms)"),
        ),
    }
}

/// The alarms for `function:alias` under `prefix`, tagged with what created them.
pub fn alarms(
    prefix: &str,
    function: &str,
    alias: &str,
    p95_ms: f64,
    tagged_by_protect: bool,
) -> Vec<AlarmSpec> {
    let tags = BTreeMap::from([
        (CREATED_BY_TAG.to_string(), CREATED_BY.to_string()),
        (TARGET_TAG.to_string(), format!("{function}:{alias}")),
        (TAGGED_TAG.to_string(), tagged_by_protect.to_string()),
    ]);
    let alarm = |suffix: &str, description: String, kind: AlarmKind| AlarmSpec {
        name: format!("{prefix}{function}-{alias}-{suffix}"),
        description,
        function: function.to_string(),
        alias: alias.to_string(),
        kind,
        tags: tags.clone(),
    };
    vec![
        alarm(
            "error-rate",
            format!("Error rate of {function}:{alias} above {ERROR_RATE_PERCENT} % for 2 minutes (guard protect)"),
            AlarmKind::ErrorRate {
                percent: ERROR_RATE_PERCENT,
            },
        ),
        alarm(
            "p95-duration",
            format!("p95 duration of {function}:{alias} above {p95_ms} ms for 3 minutes (guard protect)"),
            AlarmKind::P95Duration { ms: p95_ms },
        ),
    ]
}

/// The names `guard protect` gives its alarms for `function:alias` under `prefix`.
pub fn alarm_names(prefix: &str, function: &str, alias: &str) -> Vec<String> {
    alarms(prefix, function, alias, DEFAULT_P95_MS, false)
        .into_iter()
        .map(|a| a.name)
        .collect()
}

/// Whether an alarm's tags say `guard protect` created it for `function:alias`.
pub fn created_for(tags: &BTreeMap<String, String>, function: &str, alias: &str) -> bool {
    tags.get(CREATED_BY_TAG).map(String::as_str) == Some(CREATED_BY)
        && tags.get(TARGET_TAG) == Some(&format!("{function}:{alias}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_is_given_or_twice_last_weeks_or_the_seeds() {
        assert_eq!(p95_threshold(Some(750.0), Some(100.0)).0, 750.0);
        assert_eq!(p95_threshold(None, Some(420.0)).0, 900.0);
        assert_eq!(p95_threshold(None, Some(0.0)).0, DEFAULT_P95_MS);
        let (ms, how) = p95_threshold(None, None);
        assert_eq!(ms, DEFAULT_P95_MS);
        assert!(how.contains("no duration data"), "{how}");
    }

    #[test]
    fn the_alarms_are_named_under_the_prefix_and_tagged_with_their_creator() {
        let specs = alarms("guarded-", "payments", "live", 900.0, true);
        let names: Vec<&str> = specs.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "guarded-payments-live-error-rate",
                "guarded-payments-live-p95-duration"
            ]
        );
        assert_eq!(names, alarm_names("guarded-", "payments", "live"));
        assert!(specs
            .iter()
            .all(|a| created_for(&a.tags, "payments", "live")));
        assert!(!created_for(&specs[0].tags, "payments", "beta"));
        assert_eq!(specs[0].tags[TAGGED_TAG], "true");
    }

    #[test]
    fn the_prefix_is_the_first_fleet_triggers() {
        let policy = |trigger: &str| {
            Policy::from_toml(&format!(
                "[[trigger]]\n{trigger}\ntarget = \"from-alarm\"\naction = \"rollback-alias\"\n"
            ))
            .expect("policy")
        };
        assert_eq!(
            fleet_prefix(&policy("alarm = \"guarded-*\"")),
            Ok("guarded-".into())
        );
        assert!(fleet_prefix(&policy("alarm = \"guarded-one\""))
            .is_err_and(|e| e.contains("needs a prefix")));
        let named = Policy::from_toml(
            "[[target]]\nname = \"a\"\nfunction = \"a\"\nalias = \"live\"\n[[trigger]]\nalarm = \"a-*\"\ntarget = \"a\"\naction = \"rollback-alias\"\n",
        )
        .expect("policy");
        assert!(fleet_prefix(&named).is_err_and(|e| e.contains("no fleet trigger")));
    }
}
