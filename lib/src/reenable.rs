//! Guarded re-enable, pure: the way back after the guard switched the AI off or rolled an
//! alias back, in steps of the alias's weighted routing, each taken only while every alarm the
//! target's triggers watch is OK. The plan lives in the target's state (`crate::state`), so the
//! every-minute schedule advances it across cold starts.

use crate::rollback::AliasState;
use crate::transition::{rfc3339_millis, AlarmState};
use chrono::{DateTime, TimeDelta, Utc};

/// The steps when none are given.
pub const DEFAULT_STEPS: [u32; 3] = [10, 50, 100];
/// The wait between steps when none is given.
pub const DEFAULT_EVERY: TimeDelta = TimeDelta::minutes(5);

/// A re-enable in progress: `version` brought back on `alias` in `steps` (percent of the
/// traffic), the rest on `from`, the version that served when it began.
#[derive(Debug, Clone, PartialEq)]
pub struct Reenable {
    pub alias: String,
    /// The version being brought back.
    pub version: String,
    /// The version that served before it began: where an abort puts the traffic back.
    pub from: String,
    pub steps: Vec<u32>,
    /// The step taken last (an index into `steps`).
    pub taken: usize,
    pub every: TimeDelta,
    /// When the next step may be taken.
    pub next: DateTime<Utc>,
    pub by: String,
}

/// What the schedule does with a plan now.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Not yet due.
    Wait,
    /// Due, but an alarm is not OK (INSUFFICIENT_DATA, or no alarm watched at all): held where
    /// it stands, the reason given.
    Hold(String),
    /// An alarm the target's triggers watch is in ALARM: back to `from`.
    Abort { alarm: String },
    /// Every watched alarm OK: the next step (its index).
    Advance(usize),
}

impl Reenable {
    /// The alias's routing at step `i`: `steps[i]` % to `version`, the rest to `from`.
    pub fn routing(&self, i: usize) -> AliasState {
        let percent = self.steps.get(i).copied().unwrap_or(100);
        if percent >= 100 {
            return AliasState::on(&self.version);
        }
        let mut state = AliasState::on(&self.from);
        state
            .weights
            .insert(self.version.clone(), f64::from(percent) / 100.0);
        state
    }

    /// The routing of the step taken last.
    pub fn current(&self) -> AliasState {
        self.routing(self.taken)
    }

    /// Whether the last step is taken: all traffic on `version`.
    pub fn complete(&self) -> bool {
        self.taken + 1 >= self.steps.len()
    }

    /// What to do at `now`, the watched alarms being as `alarms` says (name, state).
    pub fn verdict(&self, now: DateTime<Utc>, alarms: &[(String, AlarmState)]) -> Verdict {
        if let Some((name, _)) = alarms.iter().find(|(_, s)| *s == AlarmState::Alarm) {
            return Verdict::Abort {
                alarm: name.clone(),
            };
        }
        if now < self.next {
            return Verdict::Wait;
        }
        if alarms.is_empty() {
            return Verdict::Hold(
                "no alarm watches the target: nothing says the way back is safe".into(),
            );
        }
        if let Some((name, state)) = alarms.iter().find(|(_, s)| *s != AlarmState::Ok) {
            return Verdict::Hold(format!(
                "alarm {name} is {state}, not OK: the step waits until every watched alarm is OK"
            ));
        }
        Verdict::Advance(self.taken + 1)
    }

    /// One line for people: where it stands.
    pub fn describe(&self) -> String {
        let percent = self.steps.get(self.taken).copied().unwrap_or(100);
        let steps: Vec<String> = self.steps.iter().map(|s| format!("{s}%")).collect();
        let mut line = format!(
            "re-enabling version {} on alias {}: step {} of {} ({}), {}% of the traffic on it, the rest on version {}",
            self.version,
            self.alias,
            self.taken + 1,
            self.steps.len(),
            steps.join(" → "),
            percent,
            self.from
        );
        if !self.complete() {
            line.push_str(&format!(
                "; next step not before {}, if every watched alarm is OK",
                rfc3339_millis(&self.next)
            ));
        }
        line.push_str(&format!("; started by {}", self.by));
        line
    }
}

/// `--steps`: percentages, rising, from 1 to 100, the last 100.
pub fn parse_steps(text: &str) -> Result<Vec<u32>, String> {
    let refuse = || {
        format!("--steps `{text}`: expected rising percentages ending at 100, such as 10,50,100")
    };
    let steps = text
        .split(',')
        .map(|s| s.trim().parse::<u32>().ok())
        .collect::<Option<Vec<u32>>>()
        .ok_or_else(refuse)?;
    let rising = steps.windows(2).all(|w| w[0] < w[1]);
    let in_range = steps.iter().all(|s| (1..=100).contains(s));
    if steps.last() != Some(&100) || !rising || !in_range || steps.len() > 10 {
        return Err(refuse());
    }
    Ok(steps)
}

/// `--every`: whole seconds, minutes or hours (`30s`, `5m`, `1h`), at least a minute (the
/// schedule's tick) and at most a day.
pub fn parse_every(text: &str) -> Result<TimeDelta, String> {
    let refuse = || format!("--every `{text}`: expected 1m to 1d, such as 5m or 1h");
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = number.parse().map_err(|_| refuse())?;
    let every = match unit {
        "s" => TimeDelta::try_seconds(n),
        "m" => TimeDelta::try_minutes(n),
        "h" => TimeDelta::try_hours(n),
        "d" => TimeDelta::try_days(n),
        _ => None,
    }
    .ok_or_else(refuse)?;
    if every < TimeDelta::minutes(1) || every > TimeDelta::days(1) {
        return Err(refuse());
    }
    Ok(every)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("a time")
    }

    fn plan() -> Reenable {
        Reenable {
            alias: "live".into(),
            version: "3".into(),
            from: "2".into(),
            steps: vec![10, 50, 100],
            taken: 0,
            every: TimeDelta::minutes(5),
            next: at("2026-11-20T03:18:00Z"),
            by: "alice@example.com".into(),
        }
    }

    #[test]
    fn each_step_sends_its_share_to_the_version_brought_back() {
        let p = plan();
        let first = p.routing(0);
        assert_eq!(first.version, "2");
        assert_eq!(first.weights.get("3"), Some(&0.1));
        assert_eq!(p.routing(1).weights.get("3"), Some(&0.5));
        assert_eq!(p.routing(2), AliasState::on("3"));
    }

    #[test]
    fn a_step_is_taken_only_when_due_and_every_alarm_is_ok() {
        let p = plan();
        let ok = vec![
            ("a".to_string(), AlarmState::Ok),
            ("b".into(), AlarmState::Ok),
        ];
        assert_eq!(p.verdict(at("2026-11-20T03:17:59Z"), &ok), Verdict::Wait);
        assert_eq!(
            p.verdict(at("2026-11-20T03:18:00Z"), &ok),
            Verdict::Advance(1)
        );
        let blind = vec![
            ("a".to_string(), AlarmState::Ok),
            ("b".into(), AlarmState::InsufficientData),
        ];
        match p.verdict(at("2026-11-20T03:19:00Z"), &blind) {
            Verdict::Hold(why) => assert!(why.contains("b is INSUFFICIENT_DATA"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            p.verdict(at("2026-11-20T03:19:00Z"), &[]),
            Verdict::Hold(_)
        ));
        // An ALARM aborts at once, due or not.
        let alarm = vec![
            ("a".to_string(), AlarmState::Ok),
            ("b".into(), AlarmState::Alarm),
        ];
        assert_eq!(
            p.verdict(at("2026-11-20T03:14:00Z"), &alarm),
            Verdict::Abort { alarm: "b".into() }
        );
    }

    #[test]
    fn steps_and_waits_are_read_strictly() {
        assert_eq!(parse_steps("10,50,100"), Ok(vec![10, 50, 100]));
        assert_eq!(parse_steps("100"), Ok(vec![100]));
        for bad in [
            "10,50",
            "50,10,100",
            "0,100",
            "10,10,100",
            "10,x,100",
            "10,50,101",
        ] {
            assert!(parse_steps(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_every("5m"), Ok(TimeDelta::minutes(5)));
        assert_eq!(parse_every("1h"), Ok(TimeDelta::hours(1)));
        for bad in ["30s", "2d", "5", "m", "-5m"] {
            assert!(parse_every(bad).is_err(), "{bad}");
        }
    }
}
