//! Judgement before an automatic alias rollback, pure: the guard rolls back only what the
//! evidence blames, once. An alarm blames a release only when the version the rollback would
//! take traffic from went live recently (`blame_window_minutes`) and before the alarm went
//! into ALARM (an alarm already in ALARM when a release went out does not blame it); once the
//! guard rolled an alias back from a release, a later alarm does not walk it further back
//! until a newer release goes live or a person acts; and no rollback goes below the floor.
//! On a weak case the guard does not act: it pages a person, with the command that would.
//!
//! Not judged (they stay as they were): aborting a canary (the new version is the suspect by
//! definition), switching the AI off (a switch, not older code), stopping a CodeDeploy
//! deployment, and a person's request.

use crate::state::RolledBack;
use crate::transition::rfc3339_millis;
use chrono::{DateTime, TimeDelta, Utc};
use std::fmt;

/// Where the guard learned when a version went live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The version's publish time (`LastModified`): a floor, exact for SAM's
    /// `AutoPublishAlias` (which publishes and points the alias in one deploy).
    Published,
    /// The publish time, all there was: the deployments that might have said more could not
    /// be read (why).
    PublishedOnly(String),
    /// The CodeDeploy deployment that shifted the alias to it, when it ended.
    CodeDeploy(String),
    /// CloudTrail's record of the `UpdateAlias` or `CreateAlias`, by this principal.
    CloudTrail(String),
    /// A person put it live through the guard: `guard undo by …`, `request … by …`.
    Person(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Published => f.write_str("its publish time, LastModified"),
            Self::PublishedOnly(why) => write!(
                f,
                "its publish time, LastModified; CodeDeploy could not be asked: {why}"
            ),
            Self::CodeDeploy(d) => write!(f, "CodeDeploy deployment {d}"),
            Self::CloudTrail(who) => write!(f, "CloudTrail: UpdateAlias by {who}"),
            Self::Person(who) => f.write_str(who),
        }
    }
}

/// When a version went live on the alias, and how the guard knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WentLive {
    pub version: String,
    pub at: DateTime<Utc>,
    pub source: Source,
}

/// The floor no rollback goes below, and who set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Floor {
    pub version: u64,
    /// `[[target]] floor`, or the function's tag `rollback-guard:floor`.
    pub from: &'static str,
}

/// What an automatic rollback is about to do, and what the guard knows of it.
#[derive(Debug, Clone)]
pub struct Case<'a> {
    pub now: DateTime<Utc>,
    pub window: TimeDelta,
    /// When the alarm went into ALARM (none: an insight, an escalation's later rung).
    pub alarm_since: Option<DateTime<Utc>>,
    /// The release the rollback takes traffic from, and when it went live.
    pub release: &'a WentLive,
    /// The version it goes back to.
    pub to: &'a str,
    /// The guard's last automatic rollback of the alias, if one stands.
    pub rolled_back: Option<&'a RolledBack>,
    pub floor: Option<&'a Floor>,
}

/// Whether the evidence blames the release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// Roll back; why the release is to blame (which evidence, which window).
    Blame(String),
    /// Do not: why not. A person is paged.
    Hold(String),
}

fn number(v: &str) -> Option<u64> {
    v.parse().ok()
}

/// The judgement on `case`, the rules in the order a person would ask them.
pub fn judge(case: &Case<'_>) -> Judgement {
    let release = case.release;
    let from = release.version.as_str();
    if let Some(r) = case.rolled_back {
        // A newer release than the one blamed starts afresh.
        let newer =
            matches!((number(from), number(&r.from)), (Some(now), Some(then)) if now > then);
        if !newer {
            return Judgement::Hold(format!(
                "the guard already rolled this alias back from version {} to version {} at {}; a person decides the next step (guard undo, guard mark-stable or guard request); a newer release starts afresh",
                r.from,
                r.to,
                rfc3339_millis(&r.at)
            ));
        }
    }
    if let Some(floor) = case.floor {
        if number(case.to).is_none_or(|to| to < floor.version) {
            return Judgement::Hold(format!(
                "rolling back to version {} would go below the floor, version {} ({}): a one-way change such as a data migration lies between",
                case.to, floor.version, floor.from
            ));
        }
    }
    let live = rfc3339_millis(&release.at);
    let by = &release.source;
    if let Some(since) = case.alarm_since.filter(|since| *since < release.at) {
        return Judgement::Hold(format!(
            "the alarm went into ALARM at {}, before version {from} went live at {live} ({by}): a release that went out into an alarm is not what set it off",
            rfc3339_millis(&since)
        ));
    }
    let minutes = case.window.num_minutes();
    if case.now - release.at > case.window {
        return Judgement::Hold(format!(
            "version {from} went live at {live} ({by}), more than {minutes} minutes ago (the blame window): the guard blames a recent release, not the weather"
        ));
    }
    Judgement::Blame(format!(
        "version {from} went live at {live} ({by}), within the {minutes}-minute blame window"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("a time")
    }

    fn release(version: &str, live: &str) -> WentLive {
        WentLive {
            version: version.into(),
            at: at(live),
            source: Source::Published,
        }
    }

    fn case<'a>(release: &'a WentLive, to: &'a str) -> Case<'a> {
        Case {
            now: at("2026-11-20T03:13:00Z"),
            window: TimeDelta::minutes(1440),
            alarm_since: Some(at("2026-11-20T03:12:45Z")),
            release,
            to,
            rolled_back: None,
            floor: None,
        }
    }

    fn held(j: Judgement, says: &str) {
        match j {
            Judgement::Hold(why) => assert!(why.contains(says), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_release_of_the_last_day_is_blamed_and_says_how_the_guard_knows() {
        let fresh = release("5", "2026-11-20T01:00:00Z");
        match judge(&case(&fresh, "4")) {
            Judgement::Blame(why) => {
                assert!(why.contains("2026-11-20T01:00:00.000Z"), "{why}");
                assert!(why.contains("publish time"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_release_older_than_the_window_is_not_blamed() {
        let old = release("5", "2026-11-18T01:00:00Z");
        held(judge(&case(&old, "4")), "more than 1440 minutes ago");
        // A trigger's own window.
        let mut wide = case(&old, "4");
        wide.window = TimeDelta::days(7);
        assert!(matches!(judge(&wide), Judgement::Blame(_)));
    }

    #[test]
    fn an_alarm_already_in_alarm_when_the_release_went_out_does_not_blame_it() {
        let later = release("5", "2026-11-20T03:12:50Z");
        held(judge(&case(&later, "4")), "before version 5 went live");
        // An insight or a later rung has no state change to compare.
        let mut insight = case(&later, "4");
        insight.alarm_since = None;
        assert!(matches!(judge(&insight), Judgement::Blame(_)));
    }

    #[test]
    fn one_rollback_per_release_until_a_newer_one() {
        let rolled = RolledBack {
            from: "5".into(),
            to: "4".into(),
            at: at("2026-11-20T02:00:00Z"),
        };
        // Now on 4, which the guard put live: not walked further back.
        let four = release("4", "2026-11-19T00:00:00Z");
        let mut again = case(&four, "3");
        again.rolled_back = Some(&rolled);
        held(
            judge(&again),
            "already rolled this alias back from version 5 to version 4",
        );
        // A newer release (6) went live since: judged afresh.
        let six = release("6", "2026-11-20T03:00:00Z");
        let mut newer = case(&six, "4");
        newer.rolled_back = Some(&rolled);
        assert!(matches!(judge(&newer), Judgement::Blame(_)));
    }

    #[test]
    fn never_below_the_floor() {
        let fresh = release("5", "2026-11-20T01:00:00Z");
        let floor = Floor {
            version: 4,
            from: "tag rollback-guard:floor",
        };
        let mut below = case(&fresh, "3");
        below.floor = Some(&floor);
        held(
            judge(&below),
            "below the floor, version 4 (tag rollback-guard:floor)",
        );
        let mut at_floor = case(&fresh, "4");
        at_floor.floor = Some(&floor);
        assert!(matches!(judge(&at_floor), Judgement::Blame(_)));
    }
}
