//! What the guard remembers about a target, one item per function alias in the guard's state
//! table: the claim a cause holds on it, the move a cause planned before making it, the last
//! action (duplicates, the cooldown, undo), a pending escalation, a re-enable in progress, a
//! pause and the stable version people set, and the blindness warnings already given.
//!
//! The function's tags are its owners' declarations (opt-in, the flag's name, a deployment
//! group): anyone with `lambda:TagResource` on the function may write them, so the guard keeps
//! nothing of its own there. The table only the guard's and its operators' roles may write;
//! every item is read back through one versioned codec ([`codec`]) that refuses what it did not
//! write (another version, an alias that is not the key's, a version that is not a published
//! number, a pause longer than a week, steps that do not rise to 100).

pub mod codec;

use crate::reenable::Reenable;
use crate::rollback::AliasState;
use crate::transition::rfc3339_millis;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::fmt;

/// The longest pause (`guard pause --for`): a pause ends by itself, so it cannot silently
/// become "off for good".
pub const MAX_PAUSE: chrono::TimeDelta = chrono::TimeDelta::days(7);
/// Blind spells remembered per target (the newest): one warning each.
pub const MAX_BLIND: usize = 50;
/// The alias part of the key of a target without an alias (its `$LATEST` is what changes).
pub const NO_ALIAS: &str = "$LATEST";

/// Which target an item is about: a function alias of an account. Two aliases of one function
/// are two targets, each with its own claim, record and cooldown.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StateKey {
    pub account: String,
    /// The function's name (never its ARN: one function, one key).
    pub function: String,
    /// The alias, or [`NO_ALIAS`].
    pub alias: String,
}

impl StateKey {
    /// The key of `function` (a name or an ARN) and `alias` in `account`.
    pub fn new(account: &str, function: &str, alias: Option<&str>) -> Self {
        Self {
            account: account.to_string(),
            function: crate::codedeploy::function_name(function).to_string(),
            alias: alias.unwrap_or(NO_ALIAS).to_string(),
        }
    }

    /// `ACCOUNT:FUNCTION:ALIAS`, the table's partition key.
    pub fn id(&self) -> String {
        format!("{}:{}:{}", self.account, self.function, self.alias)
    }

    /// The key an item's partition key names; `None` for anything else.
    pub fn parse(id: &str) -> Option<Self> {
        let mut parts = id.splitn(3, ':');
        let (account, function, alias) = (parts.next()?, parts.next()?, parts.next()?);
        let ok = crate::transition::is_account_id(account)
            && crate::policy::is_function_name(function)
            && (alias == NO_ALIAS || crate::watched::is_alias_name(alias));
        ok.then(|| Self {
            account: account.into(),
            function: function.into(),
            alias: alias.into(),
        })
    }
}

impl fmt::Display for StateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{} (account {})",
            self.function, self.alias, self.account
        )
    }
}

/// Everything the guard remembers about one target.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetState {
    /// The automatic cause acting on the target, until its cooldown ends.
    pub claim: Option<Claim>,
    /// What a cause set out to do, written before it does it.
    pub plan: Option<Planned>,
    /// The guard's last action (or an operator's undo of it).
    pub last: Option<ActionRecord>,
    pub escalation: Option<Escalation>,
    pub reenable: Option<Reenable>,
    pub pause: Option<Pause>,
    /// The alias's stable version (`guard mark-stable`).
    pub stable: Option<String>,
    /// Watched alarms seen with their actions disabled, by the fingerprint of their name.
    pub muted: BTreeMap<String, Muted>,
    /// Fingerprints of the blind spells already warned about, oldest first.
    pub blind: Vec<String>,
    /// When the alias's version went live, where the guard learned it otherwise than from the
    /// version's publish time (its own moves, people's, CloudTrail's record of an `UpdateAlias`).
    pub live: Option<Live>,
    /// The guard's last automatic rollback of the alias: the release it blamed. Until a newer
    /// release goes live or a person acts, no further automatic rollback of the alias.
    pub rolled_back: Option<RolledBack>,
    /// Versions rolled back away from, newest last (at most [`MAX_BAD`]): never gone back to.
    pub bad: Vec<String>,
    /// Fingerprints of the causes observed (observe mode), newest last (at most
    /// [`MAX_OBSERVED`]): a second delivery of one is not announced again.
    pub observed: Vec<String>,
}

/// Observed causes remembered per target.
pub const MAX_OBSERVED: usize = 20;

/// Versions remembered as rolled back away from.
pub const MAX_BAD: usize = 20;

/// When a version went live on the alias, and who put it there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    pub version: String,
    pub since: DateTime<Utc>,
    pub by: LiveBy,
}

/// Who put a version live: a release is what people ship, not what the guard does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveBy {
    /// The guard's own move (a rollback, a re-enable step, an AI-off version): never a release.
    Guard,
    /// A person through the guard (`guard undo`, `guard request`): a fresh start.
    Person(String),
    /// An `UpdateAlias` or `CreateAlias` CloudTrail recorded, by this principal.
    CloudTrail(String),
}

impl LiveBy {
    pub fn is_release(&self) -> bool {
        !matches!(self, Self::Guard)
    }
}

impl fmt::Display for LiveBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Guard => f.write_str("the guard's own move"),
            Self::Person(who) => write!(f, "{who}, through the guard"),
            Self::CloudTrail(who) => write!(f, "CloudTrail: UpdateAlias by {who}"),
        }
    }
}

/// An automatic rollback the guard made: from the release it blamed, to where, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolledBack {
    pub from: String,
    pub to: String,
    pub at: DateTime<Utc>,
}

impl TargetState {
    /// The claim another cause than `cause` holds at `now`, if one does.
    pub fn claimed_by_other(&self, cause: &str, now: DateTime<Utc>) -> Option<&Claim> {
        self.claim
            .as_ref()
            .filter(|c| c.cause != cause && c.until > now)
    }

    /// What `cause` planned, if it planned anything.
    pub fn plan_of(&self, cause: &str) -> Option<&Planned> {
        self.plan.as_ref().filter(|p| p.cause() == cause)
    }

    /// The pause in force at `now`.
    pub fn pause_at(&self, now: DateTime<Utc>) -> Option<&Pause> {
        self.pause.as_ref().filter(|p| p.holds(now))
    }

    /// Keeps `record` as the last action, and what it says of the alias's releases: a version
    /// rolled back away from is never gone back to; an automatic rollback is the release's one
    /// (until a newer release or a person); what serves after it is the guard's doing, not a
    /// release, unless a person asked for it.
    pub fn record(&mut self, record: ActionRecord, by: &str) {
        if let Some(change) = &record.alias {
            let after = &change.after;
            // What a rollback (or an aborted re-enable) took traffic away from; an AI-off
            // version is the same release as the one it was made from.
            let mut away: Vec<&String> = change.before.weights.keys().collect();
            away.push(&change.before.version);
            let rolling_back =
                matches!(record.action.as_str(), "rollback-alias" | "reenable-abort");
            for v in away.into_iter().filter(|_| rolling_back) {
                let rolled_away = !after.serves(v) && v.parse::<u64>().is_ok();
                if rolled_away && !self.bad.contains(v) {
                    self.bad.push(v.clone());
                }
            }
            // A person who puts a version back says it is not to blame.
            if !record.automatic {
                self.bad.retain(|v| !after.serves(v));
            }
            let keep = self.bad.len().saturating_sub(MAX_BAD);
            self.bad.drain(..keep);
            let moved = change.before.version != after.version;
            let rollback = record.action == "rollback-alias" && moved;
            if rollback && record.automatic && after.version.parse::<u64>().is_ok() {
                self.rolled_back = Some(RolledBack {
                    from: change.before.version.clone(),
                    to: after.version.clone(),
                    at: record.at,
                });
            } else if !record.automatic {
                self.rolled_back = None;
            }
            if moved && after.version.parse::<u64>().is_ok() {
                self.live = Some(Live {
                    version: after.version.clone(),
                    since: record.at,
                    by: if record.automatic {
                        LiveBy::Guard
                    } else {
                        LiveBy::Person(by.to_string())
                    },
                });
            }
        }
        self.last = Some(record);
    }

    /// Whether the item holds nothing (no need to keep it).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Who holds a target's claim, from when until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The cause's dedupe key.
    pub cause: String,
    pub at: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// What a cause set out to do, kept before it does it: a second delivery of the same cause
/// (another instance, a retry after a lost record) finds it, and never plans again from the
/// state the first one produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Planned {
    /// Move the alias from `before` to `after`.
    Move {
        cause: String,
        /// Which delivery of the cause planned it (one handling of one event).
        delivery: String,
        at: DateTime<Utc>,
        before: AliasState,
        after: AliasState,
    },
    /// Stop the CodeDeploy deployment shifting the alias (from `before`), with its rollback
    /// to `back_to`.
    Stop {
        cause: String,
        delivery: String,
        at: DateTime<Utc>,
        deployment: String,
        before: AliasState,
        back_to: String,
    },
}

impl Planned {
    pub fn cause(&self) -> &str {
        match self {
            Self::Move { cause, .. } | Self::Stop { cause, .. } => cause,
        }
    }

    pub fn delivery(&self) -> &str {
        match self {
            Self::Move { delivery, .. } | Self::Stop { delivery, .. } => delivery,
        }
    }

    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Self::Move { at, .. } | Self::Stop { at, .. } => *at,
        }
    }
}

/// An alias the action moved.
#[derive(Debug, Clone, PartialEq)]
pub struct AliasChange {
    pub alias: String,
    pub before: AliasState,
    pub after: AliasState,
}

/// The AI flag the action turned off, and its value before (`None`: it was not set).
#[derive(Debug, Clone, PartialEq)]
pub struct FlagChange {
    pub name: String,
    pub before: Option<String>,
}

/// The guard's last action on a target.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRecord {
    /// Fingerprint of the cause's dedupe key.
    pub event: String,
    pub action: String,
    pub at: DateTime<Utc>,
    /// What caused it, for people: the alarm's name, the insight, the request.
    pub alarm: String,
    pub alias: Option<AliasChange>,
    pub flag: Option<FlagChange>,
    /// The CodeDeploy deployment the action stopped (its rollback moved the alias).
    pub deployment: Option<String>,
    /// An automatic cause's (an alarm, an insight, an escalation), not a person's.
    pub automatic: bool,
}

/// A later rung of an escalation ladder, due at `due` if the alarm is still in ALARM.
#[derive(Debug, Clone, PartialEq)]
pub struct Escalation {
    /// Index into the trigger's ladder.
    pub step: usize,
    pub due: DateTime<Utc>,
    pub alarm: String,
}

/// A target's automatic actions held back by people (`guard pause`) until `until`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pause {
    pub until: DateTime<Utc>,
    pub at: DateTime<Utc>,
    pub by: String,
    pub reason: String,
}

impl Pause {
    /// In force at `now`: a pause ends by itself.
    pub fn holds(&self, now: DateTime<Utc>) -> bool {
        now < self.until
    }
}

impl fmt::Display for Pause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "paused by {} until {}: {}",
            self.by,
            rfc3339_millis(&self.until),
            self.reason
        )
    }
}

/// A watched alarm the sweep has seen with its actions disabled: first and last seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Muted {
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
}

/// FNV-1a, 64 bit: stable across builds and platforms, unlike std's hasher.
pub fn fingerprint(key: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_names_one_alias_of_one_function_by_its_name() {
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:orders";
        let key = StateKey::new("123456789012", arn, Some("live"));
        assert_eq!(key.id(), "123456789012:orders:live");
        assert_eq!(StateKey::parse(&key.id()), Some(key));
        let latest = StateKey::new("123456789012", "orders", None);
        assert_eq!(latest.id(), "123456789012:orders:$LATEST");
        assert_eq!(StateKey::parse(&latest.id()), Some(latest));
        for bad in [
            "orders:live",
            "12345:orders:live",
            "123456789012:or ders:live",
            "123456789012:orders:li ve",
        ] {
            assert_eq!(StateKey::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_claim_holds_only_other_causes_and_only_until_it_ends() {
        let at: DateTime<Utc> = "2026-11-20T03:13:00Z".parse().expect("time");
        let state = TargetState {
            claim: Some(Claim {
                cause: "a".into(),
                at,
                until: at + chrono::TimeDelta::minutes(30),
            }),
            ..TargetState::default()
        };
        assert!(state.claimed_by_other("a", at).is_none());
        assert!(state.claimed_by_other("b", at).is_some());
        let later = at + chrono::TimeDelta::minutes(30);
        assert!(state.claimed_by_other("b", later).is_none());
    }

    fn rollback(before: &str, after: &str, automatic: bool) -> ActionRecord {
        ActionRecord {
            event: "e".into(),
            action: "rollback-alias".into(),
            at: "2026-11-20T03:13:00Z".parse().expect("time"),
            alarm: "a".into(),
            alias: Some(AliasChange {
                alias: "live".into(),
                before: AliasState::on(before),
                after: AliasState::on(after),
            }),
            flag: None,
            deployment: None,
            automatic,
        }
    }

    #[test]
    fn an_automatic_rollback_is_the_releases_one_and_a_persons_starts_afresh() {
        let mut state = TargetState::default();
        state.record(rollback("5", "4", true), "alarm");
        assert_eq!(
            state.rolled_back.as_ref().map(|r| r.from.as_str()),
            Some("5")
        );
        assert_eq!(state.bad, vec!["5".to_string()]);
        assert_eq!(state.live.as_ref().map(|l| &l.by), Some(&LiveBy::Guard));
        state.record(rollback("4", "3", false), "oncall");
        assert_eq!(state.rolled_back, None);
        assert_eq!(state.bad, vec!["5".to_string(), "4".to_string()]);
        assert_eq!(
            state.live.map(|l| l.by),
            Some(LiveBy::Person("oncall".into()))
        );
        // An aborted canary's version is one rolled away from, without a release to blame.
        let mut canary = AliasState::on("2");
        canary.weights.insert("3".into(), 0.1);
        let mut state = TargetState::default();
        let mut abort = rollback("2", "2", true);
        if let Some(c) = abort.alias.as_mut() {
            c.before = canary;
        }
        state.record(abort, "alarm");
        assert_eq!(state.bad, vec!["3".to_string()]);
        assert_eq!(state.rolled_back, None);
    }

    #[test]
    fn fingerprint_is_stable() {
        assert_eq!(fingerprint(""), "cbf29ce484222325");
        assert_ne!(fingerprint("a@1"), fingerprint("a@2"));
    }
}
