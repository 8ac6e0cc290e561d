//! The one normalised shape every alarm transport is reduced to.

use crate::watched::{self, Watched};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A CloudWatch alarm state. Anything else in an event is rejected, never defaulted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmState {
    Ok,
    Alarm,
    InsufficientData,
}

impl AlarmState {
    /// Parses the exact spelling CloudWatch uses.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "OK" => Some(Self::Ok),
            "ALARM" => Some(Self::Alarm),
            "INSUFFICIENT_DATA" => Some(Self::InsufficientData),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Alarm => "ALARM",
            Self::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

impl fmt::Display for AlarmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the transition reached the guard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// EventBridge "CloudWatch Alarm State Change".
    Eventbridge,
    /// An SNS notification published by an alarm action.
    Sns,
    /// The payload of an alarm's direct Lambda action.
    LambdaAction,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eventbridge => "eventbridge",
            Self::Sns => "sns",
            Self::LambdaAction => "lambda-action",
        }
    }
}

/// One alarm state transition, whatever transport carried it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Transition {
    pub alarm_arn: String,
    pub alarm_name: String,
    pub account: String,
    pub region: String,
    pub new_state: AlarmState,
    pub old_state: AlarmState,
    pub timestamp: DateTime<Utc>,
    pub reason: String,
    /// The alarm's reason data, when the transport carries it: the JSON string as it arrived,
    /// quotes and escapes included (see [`Transition::datapoints`]).
    pub reason_data: Option<String>,
    pub transport: Transport,
    /// Set on events replayed from an EventBridge archive.
    pub replay_name: Option<String>,
    /// The alarm's actions were suppressed at this transition (composite alarms with an
    /// actions suppressor): its own actions stay quiet, and so does the guard.
    pub suppressed: Option<Suppression>,
    /// The alarm's metrics, as the transport carried them (none: a composite alarm). Read
    /// only for fleet triggers: [`Transition::watched`].
    pub metrics: Option<AlarmMetrics>,
}

/// An alarm's metrics as an event carries them, kept as JSON text: most events are acted on
/// through named targets and never need them read.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum AlarmMetrics {
    /// `configuration.metrics` of EventBridge and Lambda-action payloads (a JSON array).
    Configuration(String),
    /// The SNS message's `Trigger` (a JSON object).
    SnsTrigger(String),
}

/// Why a composite alarm's actions are suppressed, as CloudWatch says
/// (`actionsSuppressedBy`): the suppressor alarm is in ALARM, or its wait or extension period
/// is running.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum SuppressionKind {
    Alarm,
    WaitPeriod,
    ExtensionPeriod,
}

impl SuppressionKind {
    /// CloudWatch's value; `Ok(None)` for `None` (not suppressed), an error naming anything
    /// else.
    pub fn parse(value: &str) -> Result<Option<Self>, String> {
        match value {
            "Alarm" => Ok(Some(Self::Alarm)),
            "WaitPeriod" => Ok(Some(Self::WaitPeriod)),
            "ExtensionPeriod" => Ok(Some(Self::ExtensionPeriod)),
            "None" => Ok(None),
            other => Err(format!(
                "`{other}` is none of Alarm, WaitPeriod, ExtensionPeriod, None"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alarm => "Alarm",
            Self::WaitPeriod => "WaitPeriod",
            Self::ExtensionPeriod => "ExtensionPeriod",
        }
    }
}

/// A suppression and, where the alarm names it, the suppressor alarm.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Suppression {
    pub kind: SuppressionKind,
    pub suppressor: Option<String>,
}

impl fmt::Display for Suppression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let by = match &self.suppressor {
            Some(alarm) => format!("alarm `{alarm}`"),
            None => "its actions suppressor".to_string(),
        };
        match self.kind {
            SuppressionKind::Alarm => {
                write!(f, "suppressed by {by} (Alarm: the suppressor is in ALARM)")
            }
            SuppressionKind::WaitPeriod => {
                write!(
                    f,
                    "suppressed by {by} (WaitPeriod: waiting for the suppressor)"
                )
            }
            SuppressionKind::ExtensionPeriod => write!(
                f,
                "suppressed by {by} (ExtensionPeriod: the suppressor has just recovered)"
            ),
        }
    }
}

impl Transition {
    /// The function alias (and version) the alarm's metrics name: what a fleet trigger
    /// (`target = "from-alarm"`) acts on.
    pub fn watched(&self) -> Watched {
        match &self.metrics {
            None => Watched::NoMetrics,
            Some(AlarmMetrics::Configuration(text)) => watched::from_configuration(text),
            Some(AlarmMetrics::SnsTrigger(text)) => watched::from_sns_trigger(text),
        }
    }

    /// The accounts other than the alarm's own that its metrics name (a cross-account alarm).
    pub fn foreign_metric_accounts(&self) -> Vec<String> {
        let text = match &self.metrics {
            None => return Vec::new(),
            Some(AlarmMetrics::Configuration(text) | AlarmMetrics::SnsTrigger(text)) => text,
        };
        let mut accounts = watched::metric_accounts(text);
        accounts.retain(|a| *a != self.account);
        accounts
    }

    /// `recentDatapoints` from the alarm's reason data. Informational only, and read only when
    /// an incident is explained or announced: reason data that does not parse yields none,
    /// never a rejection.
    pub fn datapoints(&self) -> Vec<f64> {
        #[derive(Deserialize)]
        struct ReasonData {
            #[serde(rename = "recentDatapoints")]
            recent_datapoints: Option<Vec<serde_json::Value>>,
        }
        self.reason_data
            .as_deref()
            .and_then(|quoted| serde_json::from_str::<String>(quoted).ok())
            .and_then(|text| serde_json::from_str::<ReasonData>(&text).ok())
            .and_then(|r| r.recent_datapoints)
            .map(|points| {
                points
                    .iter()
                    .filter_map(serde_json::Value::as_f64)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `<alarm ARN>@<state timestamp, RFC 3339 UTC with milliseconds>`: the same transition has
    /// the same key whichever transport delivered it.
    pub fn dedupe_key(&self) -> String {
        format!("{}@{}", self.alarm_arn, rfc3339_millis(&self.timestamp))
    }
}

/// RFC 3339, UTC, milliseconds, `Z`: the one timestamp spelling the guard writes.
pub fn rfc3339_millis(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses the timestamps alarm payloads carry: `2024-05-01T10:00:00.123+0000` (no colon in the
/// offset), as well as RFC 3339 proper.
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    utc_timestamp(s).or_else(|| any_timestamp(s))
}

/// Every spelling [`parse_timestamp`] accepts, through chrono's format parser.
fn any_timestamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(s))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The spellings AWS writes, `2024-05-01T10:00:00.123+0000` and `2024-05-01T10:00:00.123Z`
/// (with or without the fraction), read without chrono's format machinery. `None` for
/// anything else, which [`any_timestamp`] then reads: this is only a shortcut, never a
/// different answer.
fn utc_timestamp(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    let number = |digits: &[u8]| {
        digits.iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let field = |at: usize, len: usize| number(b.get(at..at + len)?);
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if separators.iter().any(|&(at, c)| b.get(at) != Some(&c)) {
        return None;
    }
    let mut rest = b.get(19..)?;
    let mut nanos = 0;
    if let [b'.', fraction @ ..] = rest {
        let len = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=9).contains(&len) {
            return None;
        }
        nanos = number(&fraction[..len])? * 10u32.pow(9 - len as u32);
        rest = &fraction[len..];
    }
    if !matches!(rest, b"Z" | b"+0000" | b"+00:00") {
        return None;
    }
    let year = i32::try_from(field(0, 4)?).ok()?;
    chrono::NaiveDate::from_ymd_opt(year, field(5, 2)?, field(8, 2)?)?
        .and_hms_nano_opt(field(11, 2)?, field(14, 2)?, field(17, 2)?, nanos)
        .map(|t| t.and_utc())
}

/// The parts of a CloudWatch alarm ARN: `arn:<partition>:cloudwatch:<region>:<account>:alarm:<name>`.
#[derive(Debug, PartialEq, Eq)]
pub struct AlarmArn<'a> {
    pub region: &'a str,
    pub account: &'a str,
    pub name: &'a str,
}

impl<'a> AlarmArn<'a> {
    pub fn parse(arn: &'a str) -> Option<Self> {
        // The alarm name may itself contain ':', so split only the fixed prefix.
        let mut parts = arn.splitn(7, ':');
        let (arn_lit, partition, service, region, account, kind, name) = (
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
        );
        let valid = arn_lit == "arn"
            && partition.starts_with("aws")
            && service == "cloudwatch"
            && !region.is_empty()
            && is_account_id(account)
            && kind == "alarm"
            && !name.is_empty();
        valid.then_some(Self {
            region,
            account,
            name,
        })
    }
}

/// Twelve ASCII digits.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The shortcut gives chrono's answer wherever it answers at all.
        #[test]
        fn the_utc_shortcut_agrees_with_chrono(
            date in (0u32..10_000, 0u32..14, 0u32..33, 0u32..25, 0u32..61, 0u32..62),
            fraction in proptest::option::of("[0-9]{0,10}"),
            zone in prop_oneof![
                Just("Z"), Just("+0000"), Just("+00:00"), Just("z"), Just("+0100"), Just("")
            ],
        ) {
            let (y, mo, d, h, mi, se) = date;
            let fraction = fraction.map(|f| format!(".{f}")).unwrap_or_default();
            let s = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{se:02}{fraction}{zone}");
            if let Some(fast) = utc_timestamp(&s) {
                prop_assert_eq!(Some(fast), any_timestamp(&s), "{}", s);
            }
            prop_assert_eq!(parse_timestamp(&s), any_timestamp(&s), "{}", s);
        }
    }

    #[test]
    fn the_utc_shortcut_reads_what_aws_writes() {
        for s in [
            "2026-11-20T03:12:45.123+0000",
            "2026-11-20T03:12:45.123Z",
            "2026-11-20T03:12:45Z",
            "2026-11-20T03:12:45.123456789+00:00",
        ] {
            assert_eq!(utc_timestamp(s), any_timestamp(s), "{s}");
            assert!(utc_timestamp(s).is_some(), "{s}");
        }
    }

    #[test]
    fn timestamps_without_offset_colon_normalise_to_utc_millis() {
        let t = parse_timestamp("2026-11-20T03:12:45.5+0100").expect("parses");
        assert_eq!(rfc3339_millis(&t), "2026-11-20T02:12:45.500Z");
        let t = parse_timestamp("2026-11-20T03:12:45.123+0000").expect("parses");
        assert_eq!(rfc3339_millis(&t), "2026-11-20T03:12:45.123Z");
        let t = parse_timestamp("2026-11-20T03:12:45Z").expect("parses");
        assert_eq!(rfc3339_millis(&t), "2026-11-20T03:12:45.000Z");
        assert!(parse_timestamp("2026-11-20 03:12").is_none());
        assert!(parse_timestamp("").is_none());
    }

    #[test]
    fn alarm_arn_keeps_colons_in_the_name() {
        let a = AlarmArn::parse("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:a:b").expect("ok");
        assert_eq!(a.region, "eu-west-1");
        assert_eq!(a.account, "123456789012");
        assert_eq!(a.name, "a:b");
        assert!(AlarmArn::parse("arn:aws:sns:eu-west-1:123456789012:alarm:x").is_none());
        assert!(AlarmArn::parse("arn:aws:cloudwatch:eu-west-1:12345:alarm:x").is_none());
        assert!(AlarmArn::parse("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:").is_none());
    }

    #[test]
    fn state_values_are_exact() {
        assert_eq!(AlarmState::parse("ALARM"), Some(AlarmState::Alarm));
        assert_eq!(AlarmState::parse("alarm"), None);
        assert_eq!(
            AlarmState::parse("INSUFFICIENT_DATA"),
            Some(AlarmState::InsufficientData)
        );
    }
}
