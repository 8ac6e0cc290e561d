//! Event intake: the three transports an alarm transition can arrive on (a module each:
//! [`eventbridge`], [`sns`], [`lambda_action`]) and the guard's custom events ([`custom`]:
//! insights, requests, the alias changes CloudTrail records), validated and reduced to one
//! [`Transition`] or [`Inbound`]. Nothing here trusts its input: every field the guard relies
//! on is checked, and anything that does not hold is an [`IntakeError`], never a default. The
//! one pass over the text that reads every transport's fields is [`read`]; the checks the
//! transports share are here.

use crate::transition::{
    parse_timestamp, AlarmArn, AlarmMetrics, AlarmState, Suppression, SuppressionKind, Transition,
    Transport,
};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;

/// The EventBridge detail-type of schedule events (`source` `aws.events`).
pub const SCHEDULED_EVENT: &str = "Scheduled Event";
/// The EventBridge detail-type of alarm state changes.
pub const ALARM_STATE_CHANGE: &str = "CloudWatch Alarm State Change";
/// The `source` CloudWatch puts on its EventBridge events and Lambda action payloads.
pub const CLOUDWATCH_SOURCE: &str = "aws.cloudwatch";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IntakeError {
    #[error("event is not valid JSON: {0}")]
    NotJson(String),
    #[error("unrecognised event: expected an EventBridge alarm state change, an SNS notification or an alarm's Lambda action payload")]
    Unrecognised,
    #[error("event source `{0}` is not accepted; expected `aws.cloudwatch`")]
    WrongSource(String),
    #[error("detail-type `{0}` is not handled; expected `CloudWatch Alarm State Change`")]
    WrongDetailType(String),
    #[error("malformed {transport} event: {message}")]
    Malformed {
        transport: &'static str,
        message: String,
    },
    #[error("`{field}`: unknown alarm state `{value}`; expected ALARM, OK or INSUFFICIENT_DATA")]
    UnknownState { field: &'static str, value: String },
    #[error("SNS message is not a CloudWatch alarm notification: {0}")]
    NotAnAlarm(String),
    #[error("inconsistent event: {0}")]
    Inconsistent(String),
    /// An SNS event holding several records: each is its own delivery ([`sns_records`]), read
    /// and acted on (or rejected) alone.
    #[error("SNS event with {0} records: each record is its own delivery")]
    SeveralRecords(usize),
}

impl IntakeError {
    fn malformed(transport: Transport, message: impl ToString) -> Self {
        Self::Malformed {
            transport: transport.as_str(),
            message: message.to_string(),
        }
    }
}

/// The EventBridge detail-type of insight alerts (from the ai-insight function or any
/// producer the policy names).
pub const CRITICAL_INSIGHT: &str = "Critical Insight";
/// The EventBridge detail-type of manual requests (`guard request`).
pub const ROLLBACK_REQUESTED: &str = "Rollback Requested";
/// The EventBridge detail-type of the API calls CloudTrail records (an `UpdateAlias`).
pub const CLOUDTRAIL_CALL: &str = "AWS API Call via CloudTrail";
/// Lambda's `source` on them.
pub const LAMBDA_SOURCE: &str = "aws.lambda";

/// Everything the guard function accepts.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// An alarm state transition, from any transport.
    Alarm(Transition),
    /// The every-minute schedule: time to check pending escalations.
    Schedule { account: String, region: String },
    /// A Critical Insight event.
    Insight(InsightAlert),
    /// A manual request for an action on a target.
    Request(ActionRequest),
    /// An alias pointed at a version by someone (CloudTrail's record of the call): when a
    /// release went live.
    AliasChange(AliasChange),
}

impl Inbound {
    /// The account and region the event was caused in: where any action it calls for would
    /// land (see [`crate::home::Home`]).
    pub fn origin(&self) -> (&str, &str) {
        match self {
            Self::Alarm(t) => (&t.account, &t.region),
            Self::Schedule { account, region } => (account, region),
            Self::Insight(a) => (&a.account, &a.region),
            Self::Request(r) => (&r.account, &r.region),
            Self::AliasChange(c) => (&c.account, &c.region),
        }
    }
}

mod custom;
mod eventbridge;
mod lambda_action;
mod read;
mod sns;
mod sqs;

pub use custom::{ActionRequest, AliasChange, InsightAlert};
pub use sqs::{queue_messages, QueueMessage};

use eventbridge::from_eventbridge;
use lambda_action::from_lambda_action;
use read::{Fields, Keys, Text, TopSeed};
use sns::from_sns;

/// Parses raw bytes (a file, a Lambda payload) into a transition.
pub fn parse_bytes(bytes: &[u8]) -> Result<Transition, IntakeError> {
    alarm_only(parse_inbound_bytes(bytes)?)
}

/// Parses raw bytes into whatever the guard accepts, in one pass over the text: the fields the
/// guard relies on are read into typed shapes as they come (borrowed where the text needs no
/// unescaping), and what it does not read is only checked for syntax. JSON is UTF-8
/// throughout, the parts the guard skips too: that is checked first.
pub fn parse_inbound_bytes(bytes: &[u8]) -> Result<Inbound, IntakeError> {
    let text =
        std::str::from_utf8(bytes).map_err(|e| IntakeError::NotJson(format!("not UTF-8: {e}")))?;
    inbound(text)
}

/// An SNS event with several records as one event per record, in order, each holding its
/// record exactly as it came (to be read, checked and acted on alone).
pub fn sns_records(bytes: &[u8]) -> Result<Vec<String>, IntakeError> {
    #[derive(Deserialize)]
    struct Batch<'a> {
        #[serde(rename = "Records", borrow)]
        records: Vec<&'a RawValue>,
    }
    let text =
        std::str::from_utf8(bytes).map_err(|e| IntakeError::NotJson(format!("not UTF-8: {e}")))?;
    let batch: Batch =
        serde_json::from_str(text).map_err(|e| IntakeError::NotJson(e.to_string()))?;
    Ok(batch
        .records
        .iter()
        .map(|record| format!("{{\"Records\":[{}]}}", record.get()))
        .collect())
}

/// Parses an alarm transition; anything else (a schedule event too) is an error.
pub fn parse(event: &Value) -> Result<Transition, IntakeError> {
    alarm_only(parse_inbound(event)?)
}

/// Recognises the transport by its shape and parses it. An already-parsed event is read as
/// its text, through the same single path as raw bytes.
pub fn parse_inbound(event: &Value) -> Result<Inbound, IntakeError> {
    inbound(&event.to_string())
}

fn alarm_only(inbound: Inbound) -> Result<Transition, IntakeError> {
    match inbound {
        Inbound::Alarm(t) => Ok(t),
        Inbound::Schedule { .. } => Err(IntakeError::WrongDetailType(SCHEDULED_EVENT.into())),
        Inbound::Insight(_) => Err(IntakeError::WrongDetailType(CRITICAL_INSIGHT.into())),
        Inbound::Request(_) => Err(IntakeError::WrongDetailType(ROLLBACK_REQUESTED.into())),
        Inbound::AliasChange(_) => Err(IntakeError::WrongDetailType(CLOUDTRAIL_CALL.into())),
    }
}

fn inbound(text: &str) -> Result<Inbound, IntakeError> {
    let mut fields = Fields::default();
    let mut reading = None;
    let mut de = serde_json::Deserializer::from_str(text);
    let top = TopSeed {
        fields: &mut fields,
        reading: &mut reading,
    }
    .deserialize(&mut de)
    .and_then(|object| de.end().map(|()| object));
    match top {
        Ok(true) => {}
        Ok(false) => return Err(IntakeError::Unrecognised),
        Err(e) if e.is_data() => return Err(rejected_field(text, reading, &e)),
        Err(e) => return Err(IntakeError::NotJson(e.to_string())),
    }
    if let Some(records) = fields.records {
        from_sns(records).map(Inbound::Alarm)
    } else if let Some(detail_type) = fields.detail_type {
        from_eventbridge(detail_type.0, fields.envelope)
    } else if fields.action.alarm_data.is_some() || fields.action.alarm_arn.is_some() {
        from_lambda_action(
            fields.envelope.source,
            fields.envelope.region,
            fields.action,
        )
        .map(Inbound::Alarm)
    } else {
        Err(IntakeError::Unrecognised)
    }
}

/// A field that did not hold its shape. Which transport the event is, is told by its top-level
/// keys: reading them is a second pass, but only on the way to a rejection, and it lets a
/// syntax error anywhere in the text take precedence over the shape.
fn rejected_field(text: &str, field: Option<&'static str>, e: &serde_json::Error) -> IntakeError {
    let keys = match serde_json::from_str::<Keys>(text) {
        Ok(keys) => keys,
        Err(e) if e.is_data() => return IntakeError::Unrecognised,
        Err(e) => return IntakeError::NotJson(e.to_string()),
    };
    let transport = if keys.records {
        Transport::Sns
    } else if keys.detail_type {
        Transport::Eventbridge
    } else if keys.alarm_data || keys.alarm_arn {
        Transport::LambdaAction
    } else {
        return IntakeError::Unrecognised;
    };
    match field {
        Some(field) => IntakeError::malformed(transport, format!("`{field}`: {e}")),
        None => IntakeError::malformed(transport, e),
    }
}

fn required<T>(value: Option<T>, field: &str, transport: Transport) -> Result<T, IntakeError> {
    value.ok_or_else(|| IntakeError::malformed(transport, format!("missing field `{field}`")))
}

fn owned(text: Option<Text>) -> Option<String> {
    text.map(|t| t.0.into_owned())
}

fn state(field: &'static str, value: &str) -> Result<AlarmState, IntakeError> {
    AlarmState::parse(value).ok_or_else(|| IntakeError::UnknownState {
        field,
        value: value.into(),
    })
}

fn timestamp(
    transport: Transport,
    field: &str,
    raw: &str,
) -> Result<chrono::DateTime<chrono::Utc>, IntakeError> {
    parse_timestamp(raw).ok_or_else(|| {
        IntakeError::malformed(transport, format!("`{field}`: `{raw}` is not a timestamp"))
    })
}

/// Checks the alarm ARN against the name, account and region the event states beside it, and
/// returns the region (from the ARN).
fn check_identity(
    arn: &str,
    name: &str,
    account: Option<&str>,
    region: Option<&str>,
) -> Result<String, IntakeError> {
    let parsed = AlarmArn::parse(arn).ok_or_else(|| {
        IntakeError::Inconsistent(format!("`{arn}` is not a CloudWatch alarm ARN"))
    })?;
    if parsed.name != name {
        return Err(IntakeError::Inconsistent(format!(
            "alarm name `{name}` does not match the ARN's `{}`",
            parsed.name
        )));
    }
    if let Some(account) = account.filter(|a| *a != parsed.account) {
        return Err(IntakeError::Inconsistent(format!(
            "account `{account}` does not match the alarm ARN's `{}`",
            parsed.account
        )));
    }
    if let Some(region) = region.filter(|r| *r != parsed.region) {
        return Err(IntakeError::Inconsistent(format!(
            "region `{region}` does not match the alarm ARN's `{}`",
            parsed.region
        )));
    }
    Ok(parsed.region.to_string())
}

/// An alarm's `reasonData` as it arrived: a JSON string, kept quoted and escaped as it is;
/// it is read only when the datapoints are wanted ([`Transition::datapoints`]), never on the
/// decision path. Absent or `null` is `None`; anything but a string is a malformed event, on
/// every transport that carries it.
fn reason_data(
    transport: Transport,
    field: &str,
    raw: Option<&RawValue>,
) -> Result<Option<String>, IntakeError> {
    match raw.map(RawValue::get) {
        None => Ok(None),
        Some(text) if text.starts_with('"') => Ok(Some(text.to_string())),
        Some(_) => Err(IntakeError::malformed(
            transport,
            format!("`{field}` is not a string"),
        )),
    }
}
