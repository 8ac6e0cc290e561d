//! What the guard did, kept in the target function's tags: it survives cold starts and lives
//! with the target, so duplicate detection, cooldown and undo need no database.
//!
//! Lambda tag values allow only letters, digits, spaces and `_ . : / = + - @` (256 at most),
//! so values are written in a small space-separated form.

use crate::rollback::AliasState;
use crate::transition::rfc3339_millis;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

pub const TAG_PREFIX: &str = "rollback-guard:";
const LAST_EVENT: &str = "rollback-guard:last-event";
const LAST_ACTION: &str = "rollback-guard:last-action";
const LAST_AT: &str = "rollback-guard:last-at";
const LAST_ALIAS: &str = "rollback-guard:last-alias";
const LAST_BEFORE: &str = "rollback-guard:last-before";
const LAST_AFTER: &str = "rollback-guard:last-after";
const LAST_ALARM: &str = "rollback-guard:last-alarm";
const MAX_TAG_VALUE: usize = 256;

/// The tag that holds the stable version recorded for an alias with `guard mark-stable`.
pub fn stable_tag(alias: &str) -> String {
    format!("{TAG_PREFIX}stable:{alias}")
}

/// The guard's last action on a target.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRecord {
    /// Fingerprint of the transition's dedupe key (the key itself may hold characters tags
    /// do not allow).
    pub event: String,
    pub action: String,
    pub at: DateTime<Utc>,
    pub alias: String,
    pub before: AliasState,
    pub after: AliasState,
    pub alarm: String,
}

impl ActionRecord {
    pub fn to_tags(&self) -> BTreeMap<String, String> {
        [
            (LAST_EVENT, self.event.clone()),
            (LAST_ACTION, self.action.clone()),
            (LAST_AT, rfc3339_millis(&self.at)),
            (LAST_ALIAS, self.alias.clone()),
            (LAST_BEFORE, encode_alias(&self.before)),
            (LAST_AFTER, encode_alias(&self.after)),
            (LAST_ALARM, tag_safe(&self.alarm)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The record in `tags`, if a complete one is there. A partial or garbled record counts as
    /// none: tags can be edited by hand.
    pub fn from_tags(tags: &BTreeMap<String, String>) -> Option<Self> {
        let get = |k: &str| tags.get(k).cloned();
        Some(Self {
            event: get(LAST_EVENT)?,
            action: get(LAST_ACTION)?,
            at: DateTime::parse_from_rfc3339(&get(LAST_AT)?)
                .ok()?
                .with_timezone(&Utc),
            alias: get(LAST_ALIAS)?,
            before: decode_alias(&get(LAST_BEFORE)?)?,
            after: decode_alias(&get(LAST_AFTER)?)?,
            alarm: get(LAST_ALARM).unwrap_or_default(),
        })
    }
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

// `$` is not allowed in tag values.
const LATEST_IN_TAG: &str = "LATEST";

fn encode_version(v: &str) -> &str {
    if v == "$LATEST" {
        LATEST_IN_TAG
    } else {
        v
    }
}

fn decode_version(v: &str) -> String {
    if v == LATEST_IN_TAG {
        "$LATEST".into()
    } else {
        v.into()
    }
}

/// `2` or `2 3=0.1`: the primary version, then each additional version with its weight.
pub fn encode_alias(a: &AliasState) -> String {
    let mut s = encode_version(&a.version).to_string();
    for (v, w) in &a.weights {
        s.push_str(&format!(" {}={w}", encode_version(v)));
    }
    s
}

pub fn decode_alias(s: &str) -> Option<AliasState> {
    let mut parts = s.split(' ');
    let mut alias = AliasState::on(&decode_version(parts.next().filter(|p| !p.is_empty())?));
    for p in parts {
        let (v, w) = p.split_once('=')?;
        alias.weights.insert(decode_version(v), w.parse().ok()?);
    }
    Some(alias)
}

/// Replaces what tag values do not allow and truncates to the limit.
fn tag_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(MAX_TAG_VALUE)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_through_tags() {
        let mut before = AliasState::on("2");
        before.weights.insert("3".into(), 0.25);
        let record = ActionRecord {
            event: fingerprint(
                "arn:aws:cloudwatch:us-east-1:123456789012:alarm:a@2026-11-20T03:12:45.123Z",
            ),
            action: "rollback-alias".into(),
            at: DateTime::parse_from_rfc3339("2026-11-20T03:13:00.000Z")
                .expect("time")
                .with_timezone(&Utc),
            alias: "live".into(),
            before,
            after: AliasState::on("$LATEST"),
            alarm: "orders (p95)".into(),
        };
        let tags = record.to_tags();
        assert_eq!(tags["rollback-guard:last-before"], "2 3=0.25");
        assert_eq!(tags["rollback-guard:last-after"], "LATEST");
        assert_eq!(tags["rollback-guard:last-alarm"], "orders _p95_");
        let back = ActionRecord::from_tags(&tags).expect("complete record");
        assert_eq!(back.before, record.before);
        assert_eq!(back.after, record.after);
        assert_eq!(back.event, record.event);
        assert_eq!(back.at, record.at);
    }

    #[test]
    fn partial_record_counts_as_none() {
        let mut tags = BTreeMap::new();
        tags.insert(LAST_EVENT.to_string(), "abc".to_string());
        assert_eq!(ActionRecord::from_tags(&tags), None);
    }

    #[test]
    fn fingerprint_is_stable() {
        assert_eq!(fingerprint(""), "cbf29ce484222325");
        assert_ne!(fingerprint("a@1"), fingerprint("a@2"));
    }
}
