//! The one way a target's state is written and read: JSON with a version (`"v": 1`), checked
//! field by field on the way back in. A value the guard would not have written (another
//! version, an alias other than the key's, a version that is not a published number, a pause
//! of more than a week, steps that do not rise to 100) is refused with the reason, never
//! trusted: the item is refused whole, and the guard does not act on that target until people
//! have looked.

use super::{
    ActionRecord, AliasChange, Claim, Escalation, FlagChange, Live, LiveBy, Muted, Pause, Planned,
    RolledBack, StateKey, TargetState, MAX_PAUSE,
};
use crate::reenable::Reenable;
use crate::rollback::AliasState;
use crate::transition::rfc3339_millis;
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::BTreeMap;

mod raw;

use raw::{
    RawAlias, RawChange, RawClaim, RawEscalation, RawFlag, RawLive, RawMuted, RawPause, RawPlan,
    RawRecord, RawReenable, RawRolledBack, RawState,
};

/// The state format this guard writes and reads.
pub const VERSION: u32 = 1;

/// The actions a record may name.
const ACTIONS: [&str; 4] = ["rollback-alias", "disable-ai", "reenable-abort", "undo"];

/// The item's text.
pub fn encode(state: &TargetState) -> String {
    let raw = RawState {
        v: VERSION,
        claim: state.claim.as_ref().map(|c| RawClaim {
            cause: c.cause.clone(),
            at: time(&c.at),
            until: time(&c.until),
        }),
        plan: state.plan.as_ref().map(raw_plan),
        last: state.last.as_ref().map(raw_record),
        escalation: state.escalation.as_ref().map(|e| RawEscalation {
            step: e.step,
            due: time(&e.due),
            alarm: e.alarm.clone(),
        }),
        reenable: state.reenable.as_ref().map(|r| RawReenable {
            version: r.version.clone(),
            from: r.from.clone(),
            steps: r.steps.clone(),
            taken: r.taken,
            every_s: r.every.num_seconds(),
            next: time(&r.next),
            by: r.by.clone(),
        }),
        pause: state.pause.as_ref().map(|p| RawPause {
            until: time(&p.until),
            at: time(&p.at),
            by: p.by.clone(),
            reason: p.reason.clone(),
        }),
        stable: state.stable.clone(),
        muted: state
            .muted
            .iter()
            .map(|(fp, m)| {
                (
                    fp.clone(),
                    RawMuted {
                        first: time(&m.first),
                        last: time(&m.last),
                    },
                )
            })
            .collect(),
        blind: state.blind.clone(),
        live: state.live.as_ref().map(|l| RawLive {
            version: l.version.clone(),
            since: time(&l.since),
            by: match &l.by {
                LiveBy::Guard => "guard".into(),
                LiveBy::Person(who) => format!("person:{who}"),
                LiveBy::CloudTrail(who) => format!("cloudtrail:{who}"),
            },
        }),
        rolled_back: state.rolled_back.as_ref().map(|r| RawRolledBack {
            from: r.from.clone(),
            to: r.to.clone(),
            at: time(&r.at),
        }),
        bad: state.bad.clone(),
        observed: state.observed.clone(),
    };
    // Plain data: serialising it cannot fail.
    serde_json::to_string(&raw).unwrap_or_default()
}

/// The state in `text`, the item of `key`; `Err` says what the guard would not have written.
pub fn decode(key: &StateKey, text: &str) -> Result<TargetState, String> {
    let raw: RawState =
        serde_json::from_str(text).map_err(|e| format!("not the guard's state format: {e}"))?;
    if raw.v != VERSION {
        return Err(format!(
            "state format v{} (this guard reads v{VERSION}): written by another version of the guard",
            raw.v
        ));
    }
    let claim = match raw.claim {
        None => None,
        Some(c) => {
            let (at, until) = (
                parse_time("claim.at", &c.at)?,
                parse_time("claim.until", &c.until)?,
            );
            if c.cause.is_empty() || until < at {
                return Err("claim: no cause, or it ends before it began".into());
            }
            Some(Claim {
                cause: c.cause,
                at,
                until,
            })
        }
    };
    let plan = raw.plan.map(plan).transpose()?;
    let last = raw.last.map(|r| record(key, r)).transpose()?;
    let escalation = match raw.escalation {
        None => None,
        Some(e) => {
            if e.alarm.is_empty() || !(1..10).contains(&e.step) {
                return Err(format!(
                    "escalation: step {} of alarm `{}` is not a later rung of a ladder",
                    e.step, e.alarm
                ));
            }
            Some(Escalation {
                step: e.step,
                due: parse_time("escalation.due", &e.due)?,
                alarm: e.alarm,
            })
        }
    };
    let reenable = raw.reenable.map(|r| reenable(key, r)).transpose()?;
    let pause = match raw.pause {
        None => None,
        Some(p) => {
            let (until, at) = (
                parse_time("pause.until", &p.until)?,
                parse_time("pause.at", &p.at)?,
            );
            if until <= at || until - at > MAX_PAUSE {
                return Err(format!(
                    "pause: from {} until {} is not a pause of more than nothing and at most 7 days",
                    p.at, p.until
                ));
            }
            Some(Pause {
                until,
                at,
                by: p.by,
                reason: p.reason,
            })
        }
    };
    if let Some(stable) = raw.stable.as_deref().filter(|s| !is_number(s)) {
        return Err(format!(
            "stable: `{stable}` is not a published version number"
        ));
    }
    let mut muted = BTreeMap::new();
    for (fp, m) in raw.muted {
        let first = parse_time("muted.first", &m.first)?;
        let last = parse_time("muted.last", &m.last)?;
        muted.insert(fp, Muted { first, last });
    }
    let live = match raw.live {
        None => None,
        Some(l) => {
            let by = match l.by.split_once(':') {
                None if l.by == "guard" => LiveBy::Guard,
                Some(("person", who)) => LiveBy::Person(who.into()),
                Some(("cloudtrail", who)) => LiveBy::CloudTrail(who.into()),
                _ => {
                    return Err(format!(
                        "live.by: `{}` is not who puts a version live",
                        l.by
                    ))
                }
            };
            if !is_number(&l.version) {
                return Err(format!(
                    "live: `{}` is not a published version number",
                    l.version
                ));
            }
            Some(Live {
                version: l.version,
                since: parse_time("live.since", &l.since)?,
                by,
            })
        }
    };
    let rolled_back = match raw.rolled_back {
        None => None,
        Some(r) if is_number(&r.from) && is_number(&r.to) => Some(RolledBack {
            at: parse_time("rolled_back.at", &r.at)?,
            from: r.from,
            to: r.to,
        }),
        Some(r) => {
            return Err(format!(
                "rolled_back: from `{}` to `{}` is not between published versions",
                r.from, r.to
            ))
        }
    };
    if let Some(bad) = raw.bad.iter().find(|v| !is_number(v)) {
        return Err(format!("bad: `{bad}` is not a published version number"));
    }
    Ok(TargetState {
        claim,
        plan,
        last,
        escalation,
        reenable,
        pause,
        stable: raw.stable,
        muted,
        blind: raw.blind,
        live,
        rolled_back,
        bad: raw.bad,
        observed: raw.observed,
    })
}

fn time(t: &DateTime<Utc>) -> String {
    rfc3339_millis(t)
}

fn parse_time(field: &str, s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{field}: `{s}` is not a time ({e})"))
}

/// A published version number.
fn is_number(v: &str) -> bool {
    !v.is_empty() && v.len() <= 20 && v.bytes().all(|b| b.is_ascii_digit()) && v != "0"
}

fn raw_alias(a: &AliasState) -> RawAlias {
    RawAlias {
        version: a.version.clone(),
        weights: a.weights.clone(),
    }
}

/// An alias's routing: its version a published number (or `$LATEST` where `latest` allows:
/// an alias may have served it before the guard moved it), each weight's version a published
/// number with a weight strictly between 0 and 1.
fn alias(field: &str, raw: RawAlias, latest: bool) -> Result<AliasState, String> {
    let version_ok = is_number(&raw.version) || (latest && raw.version == "$LATEST");
    let weights_ok = raw
        .weights
        .iter()
        .all(|(v, w)| is_number(v) && *w > 0.0 && *w < 1.0 && *v != raw.version)
        && raw.weights.values().sum::<f64>() < 1.0;
    if !version_ok || !weights_ok {
        return Err(format!(
            "{field}: `{}` with weights {:?} is not an alias's routing",
            raw.version, raw.weights
        ));
    }
    Ok(AliasState {
        version: raw.version,
        weights: raw.weights,
        revision_id: None,
    })
}

fn raw_plan(p: &Planned) -> RawPlan {
    match p {
        Planned::Move {
            cause,
            delivery,
            at,
            before,
            after,
        } => RawPlan {
            kind: "move".into(),
            cause: cause.clone(),
            delivery: delivery.clone(),
            at: time(at),
            before: raw_alias(before),
            after: Some(raw_alias(after)),
            deployment: None,
            back_to: None,
        },
        Planned::Stop {
            cause,
            delivery,
            at,
            deployment,
            before,
            back_to,
        } => RawPlan {
            kind: "stop".into(),
            cause: cause.clone(),
            delivery: delivery.clone(),
            at: time(at),
            before: raw_alias(before),
            after: None,
            deployment: Some(deployment.clone()),
            back_to: Some(back_to.clone()),
        },
    }
}

fn plan(p: RawPlan) -> Result<Planned, String> {
    let at = parse_time("plan.at", &p.at)?;
    if p.cause.is_empty() {
        return Err("plan: no cause".into());
    }
    let before = alias("plan.before", p.before, true)?;
    match (p.kind.as_str(), p.after, p.deployment, p.back_to) {
        ("move", Some(after), None, None) => Ok(Planned::Move {
            cause: p.cause,
            delivery: p.delivery,
            at,
            before,
            // The guard never moves an alias onto $LATEST.
            after: alias("plan.after", after, false)?,
        }),
        ("stop", None, Some(deployment), Some(back_to))
            if deployment.starts_with("d-") && is_number(&back_to) =>
        {
            Ok(Planned::Stop {
                cause: p.cause,
                delivery: p.delivery,
                at,
                deployment,
                before,
                back_to,
            })
        }
        (kind, ..) => Err(format!("plan: `{kind}` is not a plan the guard writes")),
    }
}

fn raw_record(r: &ActionRecord) -> RawRecord {
    RawRecord {
        event: r.event.clone(),
        action: r.action.clone(),
        at: time(&r.at),
        alarm: r.alarm.clone(),
        alias: r.alias.as_ref().map(|c| RawChange {
            alias: c.alias.clone(),
            before: raw_alias(&c.before),
            after: raw_alias(&c.after),
        }),
        flag: r.flag.as_ref().map(|f| RawFlag {
            name: f.name.clone(),
            before: f.before.clone(),
        }),
        deployment: r.deployment.clone(),
        automatic: r.automatic,
    }
}

fn record(key: &StateKey, r: RawRecord) -> Result<ActionRecord, String> {
    if !ACTIONS.contains(&r.action.as_str()) {
        return Err(format!(
            "last: `{}` is not an action the guard records",
            r.action
        ));
    }
    let alias = match r.alias {
        None => None,
        Some(c) if c.alias == key.alias => Some(AliasChange {
            before: alias("last.alias.before", c.before, true)?,
            after: alias("last.alias.after", c.after, true)?,
            alias: c.alias,
        }),
        Some(c) => {
            return Err(format!(
                "last: a change of alias `{}` kept under alias `{}`",
                c.alias, key.alias
            ))
        }
    };
    let flag = match r.flag {
        Some(f) if !crate::policy::is_variable_name(&f.name) => {
            return Err(format!("last.flag: `{}` is not a variable name", f.name))
        }
        other => other.map(|f| FlagChange {
            name: f.name,
            before: f.before,
        }),
    };
    Ok(ActionRecord {
        event: r.event,
        action: r.action,
        at: parse_time("last.at", &r.at)?,
        alarm: r.alarm,
        alias,
        flag,
        deployment: r.deployment,
        automatic: r.automatic,
    })
}

fn reenable(key: &StateKey, r: RawReenable) -> Result<Reenable, String> {
    let rising = r.steps.windows(2).all(|w| w[0] < w[1]);
    let in_range = r.steps.iter().all(|s| (1..=100).contains(s));
    let steps_ok = rising && in_range && r.steps.last() == Some(&100) && r.steps.len() <= 10;
    let every = TimeDelta::try_seconds(r.every_s)
        .filter(|e| *e >= TimeDelta::minutes(1) && *e <= TimeDelta::days(1));
    let versions_ok = is_number(&r.version) && is_number(&r.from) && r.version != r.from;
    match every {
        Some(every) if steps_ok && versions_ok && r.taken < r.steps.len() => Ok(Reenable {
            alias: key.alias.clone(),
            version: r.version,
            from: r.from,
            steps: r.steps,
            taken: r.taken,
            every,
            next: parse_time("reenable.next", &r.next)?,
            by: r.by,
        }),
        _ => Err(format!(
            "reenable: version {} from {} in steps {:?} (taken {}) every {} s is not a re-enable the guard plans",
            r.version, r.from, r.steps, r.taken, r.every_s
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("a time")
    }

    fn key() -> StateKey {
        StateKey::new("123456789012", "orders", Some("live"))
    }

    fn full() -> TargetState {
        let t = at("2026-11-20T03:13:00Z");
        let mut canary = AliasState::on("2");
        canary.weights.insert("3".into(), 0.25);
        TargetState {
            claim: Some(Claim {
                cause: "arn:…@t".into(),
                at: t,
                until: t + TimeDelta::minutes(30),
            }),
            plan: Some(Planned::Move {
                cause: "arn:…@t".into(),
                delivery: "d1".into(),
                at: t,
                before: canary.clone(),
                after: AliasState::on("2"),
            }),
            last: Some(ActionRecord {
                event: super::super::fingerprint("arn:…@t"),
                action: "rollback-alias".into(),
                at: t,
                alarm: "orders (p95) ≥ 3 s".into(),
                alias: Some(AliasChange {
                    alias: "live".into(),
                    before: canary,
                    after: AliasState::on("2"),
                }),
                flag: Some(FlagChange {
                    name: "AI_ENABLED".into(),
                    before: Some("a value longer than any tag would hold ".repeat(10)),
                }),
                deployment: Some("d-A1B2C3D4E".into()),
                automatic: true,
            }),
            escalation: Some(Escalation {
                step: 1,
                due: t,
                alarm: "ünï-alarm ".repeat(30),
            }),
            reenable: Some(Reenable {
                alias: "live".into(),
                version: "3".into(),
                from: "2".into(),
                steps: vec![10, 50, 100],
                taken: 1,
                every: TimeDelta::minutes(5),
                next: t,
                by: "alice@example.com".into(),
            }),
            pause: Some(Pause {
                until: t + TimeDelta::hours(2),
                at: t,
                by: "bob".into(),
                reason: "migration".into(),
            }),
            stable: Some("2".into()),
            muted: BTreeMap::from([("abc".to_string(), Muted { first: t, last: t })]),
            blind: vec!["def".into()],
            live: Some(Live {
                version: "2".into(),
                since: t,
                by: LiveBy::CloudTrail("arn:aws:iam::123456789012:role/deployer".into()),
            }),
            rolled_back: Some(RolledBack {
                from: "3".into(),
                to: "2".into(),
                at: t,
            }),
            bad: vec!["3".into()],
            observed: vec!["0123456789abcdef".into()],
        }
    }

    #[test]
    fn every_part_of_the_state_round_trips_whatever_its_length() {
        let state = full();
        let text = encode(&state);
        assert!(text.starts_with(r#"{"v":1,"#), "{text}");
        assert_eq!(decode(&key(), &text), Ok(state));
        assert_eq!(
            decode(&key(), &encode(&TargetState::default())),
            Ok(TargetState::default())
        );
    }

    /// Edits the encoded state as JSON and decodes it again.
    fn edited(edit: impl FnOnce(&mut serde_json::Value)) -> Result<TargetState, String> {
        let mut value: serde_json::Value = serde_json::from_str(&encode(&full())).expect("json");
        edit(&mut value);
        decode(&key(), &value.to_string())
    }

    #[test]
    fn what_the_guard_would_not_have_written_is_refused_with_the_reason() {
        let refused = |edit: fn(&mut serde_json::Value), says: &str| {
            let why = edited(edit).expect_err("refused");
            assert!(why.contains(says), "{why}");
        };
        refused(|v| v["v"] = 2.into(), "v2");
        refused(
            |v| v["last"]["alias"]["alias"] = "beta".into(),
            "alias `beta` kept under alias `live`",
        );
        refused(
            |v| v["last"]["alias"]["before"]["weights"]["$LATEST"] = 0.1.into(),
            "routing",
        );
        refused(
            |v| v["plan"]["after"]["version"] = "$LATEST".into(),
            "plan.after",
        );
        refused(
            |v| v["pause"]["until"] = "2099-01-01T00:00:00.000Z".into(),
            "at most 7 days",
        );
        refused(
            |v| v["reenable"]["steps"] = serde_json::json!([10, 1, 100]),
            "reenable",
        );
        refused(|v| v["reenable"]["version"] = "$LATEST".into(), "reenable");
        refused(
            |v| v["stable"] = "$LATEST".into(),
            "not a published version number",
        );
        refused(
            |v| v["last"]["action"] = "delete-function".into(),
            "not an action",
        );
        refused(|v| v["escalation"]["step"] = 0.into(), "later rung");
        refused(|v| v["extra"] = 1.into(), "unknown field");
        assert!(decode(&key(), "not json").is_err());
        // Within the rules, an edit is the state.
        assert!(edited(|v| v["stable"] = "7".into()).is_ok());
    }
}
