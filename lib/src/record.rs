//! What the guard did, kept in the target function's tags: it survives cold starts and lives
//! with the target, so duplicate detection, cooldown, escalation and undo need no database.
//!
//! Lambda tag values allow only letters, digits, spaces and `_ . : / = + - @` (256 at most),
//! so values are written in a small space-separated form, other characters as `=XX` (UTF-8
//! bytes in hex). Every key is written on every record, `=none` where a part does not apply,
//! so a record never mixes with the one before it.

use crate::rollback::AliasState;
use crate::transition::rfc3339_millis;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

pub const TAG_PREFIX: &str = "rollback-guard:";
const LAST_EVENT: &str = "rollback-guard:last-event";
const LAST_ACTION: &str = "rollback-guard:last-action";
const LAST_AT: &str = "rollback-guard:last-at";
const LAST_ALARM: &str = "rollback-guard:last-alarm";
const LAST_ALIAS: &str = "rollback-guard:last-alias";
const LAST_BEFORE: &str = "rollback-guard:last-before";
const LAST_AFTER: &str = "rollback-guard:last-after";
const LAST_FLAG: &str = "rollback-guard:last-flag";
const LAST_FLAG_BEFORE: &str = "rollback-guard:last-flag-before";
const LAST_DEPLOYMENT: &str = "rollback-guard:last-deployment";
const ESCALATION: &str = "rollback-guard:escalation";
const PAUSED_UNTIL: &str = "rollback-guard:paused-until";
const PAUSED_AT: &str = "rollback-guard:paused-at";
const PAUSED_BY: &str = "rollback-guard:paused-by";
const PAUSED_REASON: &str = "rollback-guard:paused-reason";
/// The longest pause (`guard pause --for`): a pause ends by itself, so it cannot silently
/// become "off for good".
pub const MAX_PAUSE: chrono::TimeDelta = chrono::TimeDelta::days(7);
/// Fingerprints of the blind spells (alarm and since when) already warned about.
pub const BLIND: &str = "rollback-guard:blind";
/// Watched alarms seen with their actions disabled: since when and when last seen.
const MUTED: &str = "rollback-guard:muted";
/// Fingerprints kept in [`BLIND`]: 17 characters each within the 256 a tag value holds.
const MAX_BLIND: usize = 15;
const MAX_TAG_VALUE: usize = 256;
/// Neither an alias name nor a version can contain `=`, so this never collides with one.
const NONE: &str = "=none";

/// The tag that holds the stable version recorded for an alias with `guard mark-stable`.
pub fn stable_tag(alias: &str) -> String {
    format!("{TAG_PREFIX}stable:{alias}")
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
    /// Fingerprint of the transition's dedupe key (the key itself may hold characters tags
    /// do not allow).
    pub event: String,
    pub action: String,
    pub at: DateTime<Utc>,
    pub alarm: String,
    pub alias: Option<AliasChange>,
    pub flag: Option<FlagChange>,
    /// The CodeDeploy deployment the action stopped (its rollback moved the alias).
    pub deployment: Option<String>,
}

/// A later rung of an escalation ladder, due at `due` if the alarm is still in ALARM.
#[derive(Debug, Clone, PartialEq)]
pub struct Escalation {
    /// Index into the trigger's ladder.
    pub step: usize,
    pub due: DateTime<Utc>,
    pub alarm: String,
}

impl ActionRecord {
    pub fn to_tags(&self) -> BTreeMap<String, String> {
        let (alias, before, after) = match &self.alias {
            Some(c) => (
                c.alias.clone(),
                encode_alias(&c.before),
                encode_alias(&c.after),
            ),
            None => (NONE.into(), NONE.into(), NONE.into()),
        };
        let (flag, flag_before) = match &self.flag {
            Some(f) => (
                f.name.clone(),
                match &f.before {
                    Some(v) => format!("set:{}", encode(v)),
                    None => "unset".into(),
                },
            ),
            None => (NONE.into(), NONE.into()),
        };
        let mut alarm = encode(&self.alarm);
        alarm.truncate(MAX_TAG_VALUE);
        [
            (LAST_EVENT, self.event.clone()),
            (LAST_ACTION, self.action.clone()),
            (LAST_AT, rfc3339_millis(&self.at)),
            (LAST_ALARM, alarm),
            (LAST_ALIAS, alias),
            (LAST_BEFORE, before),
            (LAST_AFTER, after),
            (LAST_FLAG, flag),
            (LAST_FLAG_BEFORE, flag_before),
            (
                LAST_DEPLOYMENT,
                self.deployment.clone().unwrap_or_else(|| NONE.into()),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The record in `tags`, if a complete one is there. A partial or garbled record counts as
    /// none: tags can be edited by hand.
    pub fn from_tags(tags: &BTreeMap<String, String>) -> Option<Self> {
        let get = |k: &str| tags.get(k).map(String::as_str);
        let alias = match get(LAST_ALIAS) {
            None | Some(NONE) => None,
            Some(alias) => Some(AliasChange {
                alias: alias.to_string(),
                before: decode_alias(get(LAST_BEFORE)?)?,
                after: decode_alias(get(LAST_AFTER)?)?,
            }),
        };
        let flag = match get(LAST_FLAG) {
            None | Some(NONE) => None,
            Some(name) => Some(FlagChange {
                name: name.to_string(),
                before: match get(LAST_FLAG_BEFORE)? {
                    "unset" => None,
                    v => Some(decode(v.strip_prefix("set:")?)?),
                },
            }),
        };
        Some(Self {
            event: get(LAST_EVENT)?.to_string(),
            action: get(LAST_ACTION)?.to_string(),
            at: DateTime::parse_from_rfc3339(get(LAST_AT)?)
                .ok()?
                .with_timezone(&Utc),
            alarm: get(LAST_ALARM).and_then(decode).unwrap_or_default(),
            alias,
            flag,
            deployment: get(LAST_DEPLOYMENT)
                .filter(|d| *d != NONE)
                .map(str::to_string),
        })
    }
}

impl Escalation {
    /// The tag that holds the pending escalation, `None` clearing it.
    pub fn to_tags(pending: Option<&Escalation>) -> Result<BTreeMap<String, String>, String> {
        let value = match pending {
            None => NONE.to_string(),
            Some(e) => format!("{} {} {}", e.step, rfc3339_millis(&e.due), encode(&e.alarm)),
        };
        if value.len() > MAX_TAG_VALUE {
            return Err(format!(
                "the escalation for alarm `{}` does not fit in a tag ({} of at most {MAX_TAG_VALUE} characters)",
                pending.map(|e| e.alarm.as_str()).unwrap_or(""),
                value.len()
            ));
        }
        Ok(BTreeMap::from([(ESCALATION.to_string(), value)]))
    }

    pub fn from_tags(tags: &BTreeMap<String, String>) -> Option<Self> {
        let mut parts = tags.get(ESCALATION)?.splitn(3, ' ');
        let step = parts.next()?.parse().ok()?;
        let due = DateTime::parse_from_rfc3339(parts.next()?)
            .ok()?
            .with_timezone(&Utc);
        let alarm = decode(parts.next()?)?;
        Some(Self { step, due, alarm })
    }
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
    /// The tags that hold the pause, `None` clearing it (`guard resume`).
    pub fn to_tags(pause: Option<&Pause>) -> BTreeMap<String, String> {
        let values = match pause {
            None => [NONE.to_string(), NONE.to_string(), NONE.into(), NONE.into()],
            Some(p) => [
                rfc3339_millis(&p.until),
                rfc3339_millis(&p.at),
                encode_within(&p.by),
                encode_within(&p.reason),
            ],
        };
        [PAUSED_UNTIL, PAUSED_AT, PAUSED_BY, PAUSED_REASON]
            .into_iter()
            .map(String::from)
            .zip(values)
            .collect()
    }

    /// The pause in `tags`, if one was recorded and not cleared (it may have ended).
    pub fn from_tags(tags: &BTreeMap<String, String>) -> Option<Self> {
        let time = |k: &str| {
            DateTime::parse_from_rfc3339(tags.get(k)?)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        };
        Some(Self {
            until: time(PAUSED_UNTIL)?,
            at: time(PAUSED_AT)?,
            by: tags
                .get(PAUSED_BY)
                .and_then(|v| decode(v))
                .unwrap_or_default(),
            reason: tags
                .get(PAUSED_REASON)
                .and_then(|v| decode(v))
                .unwrap_or_default(),
        })
    }

    /// In force at `now`: a pause ends by itself.
    pub fn holds(&self, now: DateTime<Utc>) -> bool {
        now < self.until
    }
}

impl std::fmt::Display for Pause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "paused by {} until {}: {}",
            self.by,
            rfc3339_millis(&self.until),
            self.reason
        )
    }
}

/// `s` encoded for a tag, cut (at a character) to fit one.
fn encode_within(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let piece = encode(c.encode_utf8(&mut [0u8; 4]));
        if out.len() + piece.len() > MAX_TAG_VALUE {
            break;
        }
        out.push_str(&piece);
    }
    out
}

/// A watched alarm the sweep has seen with its actions disabled: first and last seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Muted {
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
}

/// The alarms seen with their actions disabled, by the fingerprint of their name.
pub fn muted(tags: &BTreeMap<String, String>) -> BTreeMap<String, Muted> {
    let minute = |s: &str| DateTime::from_timestamp(s.parse::<i64>().ok()?.checked_mul(60)?, 0);
    tags.get(MUTED)
        .map(|v| {
            v.split(' ')
                .filter_map(|entry| {
                    let mut parts = entry.split(':');
                    let fp = parts.next()?.to_string();
                    let first = minute(parts.next()?)?;
                    let last = minute(parts.next()?)?;
                    Some((fp, Muted { first, last }))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The tag recording `muted`, to the minute; the most recently seen kept where not all fit.
pub fn muted_tags(muted: &BTreeMap<String, Muted>) -> BTreeMap<String, String> {
    let mut entries: Vec<(&String, &Muted)> = muted.iter().collect();
    entries.sort_by_key(|(_, m)| std::cmp::Reverse(m.last));
    let mut value = String::new();
    for (fp, m) in entries {
        let entry = format!(
            "{fp}:{}:{}",
            m.first.timestamp() / 60,
            m.last.timestamp() / 60
        );
        if value.len() + entry.len() + 1 > MAX_TAG_VALUE {
            break;
        }
        if !value.is_empty() {
            value.push(' ');
        }
        value.push_str(&entry);
    }
    BTreeMap::from([(MUTED.to_string(), value)])
}

/// The blind spells already warned about.
pub fn warned_blind(tags: &BTreeMap<String, String>) -> Vec<String> {
    tags.get(BLIND)
        .map(|v| {
            v.split(' ')
                .filter(|f| !f.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// The tag recording `warned` (newest last), trimmed to what fits.
pub fn blind_tags(warned: &[String]) -> BTreeMap<String, String> {
    let keep = &warned[warned.len().saturating_sub(MAX_BLIND)..];
    BTreeMap::from([(BLIND.to_string(), keep.join(" "))])
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

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || " _.:/+-@".contains(c)
}

/// Tag-safe and reversible: what tags do not allow (and `=` itself) as `=XX` per byte.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if allowed(c) {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("={b:02X}"));
            }
        }
    }
    out
}

pub fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-20T03:13:00.000Z")
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn an_alias_record_round_trips_through_tags() {
        let mut before = AliasState::on("2");
        before.weights.insert("3".into(), 0.25);
        let record = ActionRecord {
            event: fingerprint(
                "arn:aws:cloudwatch:us-east-1:123456789012:alarm:a@2026-11-20T03:12:45.123Z",
            ),
            action: "rollback-alias".into(),
            at: at(),
            alarm: "orders (p95)".into(),
            alias: Some(AliasChange {
                alias: "live".into(),
                before,
                after: AliasState::on("$LATEST"),
            }),
            flag: None,
            deployment: Some("d-A1B2C3D4E".into()),
        };
        let tags = record.to_tags();
        assert_eq!(tags["rollback-guard:last-before"], "2 3=0.25");
        assert_eq!(tags["rollback-guard:last-deployment"], "d-A1B2C3D4E");
        assert_eq!(tags["rollback-guard:last-after"], "LATEST");
        assert_eq!(tags["rollback-guard:last-alarm"], "orders =28p95=29");
        assert_eq!(tags["rollback-guard:last-flag"], "=none");
        assert_eq!(ActionRecord::from_tags(&tags), Some(record));
    }

    #[test]
    fn a_flag_record_round_trips_and_clears_the_alias_part() {
        let record = ActionRecord {
            event: "e".into(),
            action: "disable-ai".into(),
            at: at(),
            alarm: "orders-ai-fallback-rate".into(),
            alias: None,
            flag: Some(FlagChange {
                name: "AI_ENABLED".into(),
                before: Some("yes, on=1".into()),
            }),
            deployment: None,
        };
        let tags = record.to_tags();
        assert_eq!(tags["rollback-guard:last-alias"], "=none");
        // A later record without a deployment clears an earlier one's.
        assert_eq!(tags["rollback-guard:last-deployment"], "=none");
        assert_eq!(ActionRecord::from_tags(&tags), Some(record.clone()));
        let unset = ActionRecord {
            flag: Some(FlagChange {
                name: "F".into(),
                before: None,
            }),
            ..record
        };
        assert_eq!(ActionRecord::from_tags(&unset.to_tags()), Some(unset));
    }

    #[test]
    fn partial_record_counts_as_none() {
        let tags = BTreeMap::from([(LAST_EVENT.to_string(), "abc".to_string())]);
        assert_eq!(ActionRecord::from_tags(&tags), None);
    }

    #[test]
    fn escalations_round_trip_and_clear() {
        let e = Escalation {
            step: 1,
            due: at(),
            alarm: "orders-ai (errors) ≥ 10%".into(),
        };
        let tags = Escalation::to_tags(Some(&e)).expect("fits");
        assert!(tags[ESCALATION].chars().all(|c| allowed(c) || c == '='));
        assert_eq!(Escalation::from_tags(&tags), Some(e));
        assert_eq!(
            Escalation::from_tags(&Escalation::to_tags(None).expect("fits")),
            None
        );
    }

    #[test]
    fn encoding_is_reversible_and_tag_safe() {
        for s in ["", "plain-name_1.2:3/4+5@6", "a=b", "ünï (x) {y} $z", "=41"] {
            let e = encode(s);
            assert!(e.chars().all(|c| allowed(c) || c == '='), "{e}");
            assert_eq!(decode(&e).as_deref(), Some(s));
        }
    }

    #[test]
    fn fingerprint_is_stable() {
        assert_eq!(fingerprint(""), "cbf29ce484222325");
        assert_ne!(fingerprint("a@1"), fingerprint("a@2"));
    }
}
