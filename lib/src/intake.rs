//! Event intake: the three transports an alarm transition can arrive on, validated and reduced
//! to one [`Transition`]. Nothing here trusts its input: every field the guard relies on is
//! checked, and anything that does not hold is an [`IntakeError`], never a default.

use crate::transition::{parse_timestamp, AlarmArn, AlarmState, Transition, Transport};
use aws_lambda_events::cloudwatch_alarms::CloudWatchAlarm;
use aws_lambda_events::sns::SnsEvent;
use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

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

/// Everything the guard function accepts.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// An alarm state transition, from any transport.
    Alarm(Transition),
    /// The every-minute schedule: time to check pending escalations.
    Schedule { account: String },
    /// A Critical Insight event.
    Insight(InsightAlert),
    /// A manual request for an action on a target.
    Request(ActionRequest),
}

/// A `Critical Insight` event: an insight with a high risk about a stream.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct InsightAlert {
    pub source: String,
    pub account: String,
    pub alert_id: String,
    pub risk_score: u8,
    pub stream_id: String,
    pub explanation: String,
    pub replay_name: Option<String>,
}

/// A `Rollback Requested` event: a person asking for an action on a target.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ActionRequest {
    /// The EventBridge event id: one request, one action, however often it is delivered.
    pub id: String,
    pub source: String,
    pub account: String,
    pub target: String,
    pub action: String,
    pub reason: String,
    pub requested_by: Option<String>,
    pub replay_name: Option<String>,
}

// Producers may add fields; the ones the guard relies on must be there.
#[derive(Deserialize)]
struct InsightDetail {
    alert_id: String,
    risk_score: f64,
    stream_id: String,
    explanation: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestDetail {
    target: String,
    action: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    requested_by: Option<String>,
}

/// Parses raw bytes (a file, a Lambda payload) into a transition.
pub fn parse_bytes(bytes: &[u8]) -> Result<Transition, IntakeError> {
    alarm_only(parse_inbound_bytes(bytes)?)
}

/// Parses raw bytes into whatever the guard accepts. No JSON tree is built: each transport is
/// read straight into its shape, and what the guard does not read is only checked for syntax.
/// JSON is UTF-8 throughout, the parts the guard skips too: that is checked first.
pub fn parse_inbound_bytes(bytes: &[u8]) -> Result<Inbound, IntakeError> {
    let text =
        std::str::from_utf8(bytes).map_err(|e| IntakeError::NotJson(format!("not UTF-8: {e}")))?;
    inbound(text)
}

/// Parses an alarm transition; anything else (a schedule event too) is an error.
pub fn parse(event: &Value) -> Result<Transition, IntakeError> {
    alarm_only(parse_inbound(event)?)
}

/// Recognises the transport by its shape and parses it.
pub fn parse_inbound(event: &Value) -> Result<Inbound, IntakeError> {
    inbound(event)
}

fn alarm_only(inbound: Inbound) -> Result<Transition, IntakeError> {
    match inbound {
        Inbound::Alarm(t) => Ok(t),
        Inbound::Schedule { .. } => Err(IntakeError::WrongDetailType(SCHEDULED_EVENT.into())),
        Inbound::Insight(_) => Err(IntakeError::WrongDetailType(CRITICAL_INSIGHT.into())),
        Inbound::Request(_) => Err(IntakeError::WrongDetailType(ROLLBACK_REQUESTED.into())),
    }
}

/// An event as it arrives: its text (from raw bytes checked to be UTF-8), or a JSON value
/// already parsed. Both are read through the same typed shapes.
trait Source {
    fn read<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error>;

    /// Which top-level keys the event has; an error when it is not a JSON object.
    fn keys(&self) -> Result<Keys, IntakeError> {
        self.read::<Keys>().map_err(|e| {
            if e.is_data() {
                IntakeError::Unrecognised
            } else {
                IntakeError::NotJson(e.to_string())
            }
        })
    }
}

impl Source for str {
    fn read<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self)
    }
}

impl Source for Value {
    fn read<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(self)
    }
}

/// The top-level keys that tell the transports apart. Only a JSON object has them; reading it
/// checks the whole event's syntax without keeping any of it.
#[derive(Default)]
struct Keys {
    records: bool,
    detail_type: bool,
    alarm_data: bool,
    alarm_arn: bool,
}

impl<'de> Deserialize<'de> for Keys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeysVisitor;
        impl<'de> Visitor<'de> for KeysVisitor {
            type Value = Keys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
                let mut keys = Keys::default();
                while let Some(key) = map.next_key::<Key>()? {
                    map.next_value::<IgnoredAny>()?;
                    match key {
                        Key::Records => keys.records = true,
                        Key::DetailType => keys.detail_type = true,
                        Key::AlarmData => keys.alarm_data = true,
                        Key::AlarmArn => keys.alarm_arn = true,
                        Key::Other => {}
                    }
                }
                Ok(keys)
            }
        }
        d.deserialize_map(KeysVisitor)
    }
}

enum Key {
    Records,
    DetailType,
    AlarmData,
    AlarmArn,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(match key {
                    "Records" => Key::Records,
                    "detail-type" => Key::DetailType,
                    "alarmData" => Key::AlarmData,
                    "alarmArn" => Key::AlarmArn,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

fn inbound<S: Source + ?Sized>(event: &S) -> Result<Inbound, IntakeError> {
    let keys = event.keys()?;
    if keys.records {
        from_sns(event).map(Inbound::Alarm)
    } else if keys.detail_type {
        from_eventbridge(event)
    } else if keys.alarm_data || keys.alarm_arn {
        from_lambda_action(event).map(Inbound::Alarm)
    } else {
        Err(IntakeError::Unrecognised)
    }
}

// aws_lambda_events' EventBridge type drops the top-level `replay-name` of archived events and
// its alarm types reject metric-math and composite alarms, so this shape is our own.
#[derive(Deserialize)]
struct EventBridgeEnvelope {
    #[serde(default)]
    id: String,
    #[serde(rename = "detail-type")]
    detail_type: String,
    source: String,
    account: String,
    region: String,
    resources: Vec<String>,
    // Required, but read by its detail-type's shape (`detail()`), not here.
    #[serde(rename = "detail")]
    _detail: Unread,
    #[serde(rename = "replay-name", default)]
    replay_name: Option<String>,
}

/// An EventBridge event's `detail` as the shape `D`.
#[derive(Deserialize)]
struct Detail<D> {
    detail: D,
}

fn detail<D: DeserializeOwned, S: Source + ?Sized>(event: &S) -> Result<D, IntakeError> {
    event
        .read::<Detail<D>>()
        .map(|d| d.detail)
        .map_err(|e| IntakeError::malformed(Transport::Eventbridge, format!("detail: {e}")))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlarmDetail {
    alarm_name: String,
    state: StateBlock,
    previous_state: StateBlock,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StateBlock {
    value: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    reason_data: Option<String>,
    timestamp: String,
}

fn from_eventbridge<S: Source + ?Sized>(event: &S) -> Result<Inbound, IntakeError> {
    let transport = Transport::Eventbridge;
    let env: EventBridgeEnvelope = event
        .read()
        .map_err(|e| IntakeError::malformed(transport, e))?;
    if env.source == "aws.events" && env.detail_type == SCHEDULED_EVENT {
        if !crate::transition::is_account_id(&env.account) {
            return Err(IntakeError::malformed(
                transport,
                format!("`account` `{}` is not an account id", env.account),
            ));
        }
        return Ok(Inbound::Schedule {
            account: env.account,
        });
    }
    if env.detail_type == CRITICAL_INSIGHT || env.detail_type == ROLLBACK_REQUESTED {
        return custom_event(env, event);
    }
    if env.source != CLOUDWATCH_SOURCE {
        return Err(IntakeError::WrongSource(env.source));
    }
    if env.detail_type != ALARM_STATE_CHANGE {
        return Err(IntakeError::WrongDetailType(env.detail_type));
    }
    let detail: AlarmDetail = detail(event)?;
    let arn = match env.resources.as_slice() {
        [arn] => arn.clone(),
        other => {
            return Err(IntakeError::malformed(
                transport,
                format!(
                    "expected the alarm ARN as the one entry of `resources`, found {} entries",
                    other.len()
                ),
            ))
        }
    };
    check_identity(
        &arn,
        &detail.alarm_name,
        Some(&env.account),
        Some(&env.region),
    )?;
    Ok(Inbound::Alarm(Transition {
        new_state: state("detail.state.value", &detail.state.value)?,
        old_state: state("detail.previousState.value", &detail.previous_state.value)?,
        timestamp: timestamp(transport, "detail.state.timestamp", &detail.state.timestamp)?,
        datapoints: datapoints(detail.state.reason_data.as_deref()),
        reason: detail.state.reason,
        alarm_name: detail.alarm_name,
        alarm_arn: arn,
        account: env.account,
        region: env.region,
        transport,
        replay_name: env.replay_name,
    }))
}

/// Critical Insight and Rollback Requested events. Their `source` is checked against the
/// policy by the decision, not here: any producer may be named there.
fn custom_event<S: Source + ?Sized>(
    env: EventBridgeEnvelope,
    event: &S,
) -> Result<Inbound, IntakeError> {
    let transport = Transport::Eventbridge;
    if !crate::transition::is_account_id(&env.account) {
        return Err(IntakeError::malformed(
            transport,
            format!("`account` `{}` is not an account id", env.account),
        ));
    }
    if env.source.trim().is_empty() {
        return Err(IntakeError::malformed(transport, "`source` is empty"));
    }
    if env.detail_type == CRITICAL_INSIGHT {
        let d: InsightDetail = detail(event)?;
        if !(0.0..=100.0).contains(&d.risk_score) || d.risk_score.fract() != 0.0 {
            return Err(IntakeError::malformed(
                transport,
                format!(
                    "detail.risk_score: {} is not an integer in 0..=100",
                    d.risk_score
                ),
            ));
        }
        if d.alert_id.trim().is_empty() || d.stream_id.trim().is_empty() {
            return Err(IntakeError::malformed(
                transport,
                "detail.alert_id and detail.stream_id must not be empty",
            ));
        }
        return Ok(Inbound::Insight(InsightAlert {
            source: env.source,
            account: env.account,
            alert_id: d.alert_id,
            risk_score: d.risk_score as u8,
            stream_id: d.stream_id,
            explanation: d.explanation,
            replay_name: env.replay_name,
        }));
    }
    let d: RequestDetail = detail(event)?;
    if env.id.trim().is_empty() {
        return Err(IntakeError::malformed(
            transport,
            "a request needs its event `id`",
        ));
    }
    Ok(Inbound::Request(ActionRequest {
        id: env.id,
        source: env.source,
        account: env.account,
        target: d.target,
        action: d.action,
        reason: d.reason.unwrap_or_default(),
        requested_by: d.requested_by,
        replay_name: env.replay_name,
    }))
}

/// The alarm notification inside `Records[].Sns.Message`. Only the fields the guard needs are
/// declared: the rest (`OKActions` as a string, `InsufficientDataActions` as `""`,
/// `AlarmDescription: null`, `Trigger` with or without `Metrics[]`, composite `AlarmRule` and
/// `TriggeringChildren`) varies between alarm kinds and is left alone. `Region` is a display
/// name ("EU (Ireland)"), so the region comes from `AlarmArn`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsAlarmMessage {
    alarm_name: String,
    alarm_arn: String,
    #[serde(rename = "AWSAccountId")]
    aws_account_id: String,
    new_state_value: String,
    old_state_value: String,
    #[serde(default)]
    new_state_reason: String,
    state_change_time: String,
}

/// Whether an SNS message names an alarm at all.
#[derive(Deserialize)]
struct MessageKeys {
    #[serde(rename = "AlarmArn")]
    alarm_arn: Option<Unread>,
}

fn from_sns<S: Source + ?Sized>(event: &S) -> Result<Transition, IntakeError> {
    let transport = Transport::Sns;
    let sns: SnsEvent = event
        .read()
        .map_err(|e| IntakeError::malformed(transport, e))?;
    // Lambda delivers SNS notifications one record per invocation.
    let record = match sns.records.as_slice() {
        [record] => record,
        other => {
            return Err(IntakeError::malformed(
                transport,
                format!("expected exactly one record, found {}", other.len()),
            ))
        }
    };
    if record.event_source != "aws:sns" {
        return Err(IntakeError::malformed(
            transport,
            format!("EventSource `{}` is not `aws:sns`", record.event_source),
        ));
    }
    if record.sns.sns_message_type != "Notification" {
        return Err(IntakeError::NotAnAlarm(format!(
            "message type is `{}`",
            record.sns.sns_message_type
        )));
    }
    // The alarm name is taken from the message, never from `Subject`: subjects are truncated
    // and free text.
    let message = record.sns.message.as_str();
    let keys: MessageKeys = serde_json::from_str(message)
        .map_err(|e| IntakeError::NotAnAlarm(format!("message is not a JSON object: {e}")))?;
    if keys.alarm_arn.is_none() {
        return Err(IntakeError::NotAnAlarm("message has no `AlarmArn`".into()));
    }
    let msg: SnsAlarmMessage = serde_json::from_str(message)
        .map_err(|e| IntakeError::malformed(transport, format!("Message: {e}")))?;
    let region = check_identity(
        &msg.alarm_arn,
        &msg.alarm_name,
        Some(&msg.aws_account_id),
        None,
    )?;
    Ok(Transition {
        new_state: state("Message.NewStateValue", &msg.new_state_value)?,
        old_state: state("Message.OldStateValue", &msg.old_state_value)?,
        timestamp: timestamp(transport, "Message.StateChangeTime", &msg.state_change_time)?,
        datapoints: Vec::new(),
        reason: msg.new_state_reason,
        alarm_name: msg.alarm_name,
        alarm_arn: msg.alarm_arn,
        account: msg.aws_account_id,
        region,
        transport,
        replay_name: None,
    })
}

/// What the library's Lambda-action type would default when missing (a missing state value
/// reads as OK there), read first to check that it is there.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ActionShape {
    source: Option<Value>,
    alarm_data: Option<ActionShapeData>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ActionShapeData {
    state: Option<ActionShapeState>,
    previous_state: Option<ActionShapeState>,
}

#[derive(Deserialize)]
struct ActionShapeState {
    value: Option<Value>,
    timestamp: Option<Value>,
}

fn from_lambda_action<S: Source + ?Sized>(event: &S) -> Result<Transition, IntakeError> {
    let transport = Transport::LambdaAction;
    let shape: ActionShape = event
        .read()
        .map_err(|e| IntakeError::malformed(transport, e))?;
    let source = shape.source.as_ref().and_then(Value::as_str);
    match source {
        Some(CLOUDWATCH_SOURCE) => {}
        Some(other) => return Err(IntakeError::WrongSource(other.into())),
        None => return Err(IntakeError::malformed(transport, "missing field `source`")),
    }
    // The library type defaults a missing state value to OK and a missing alarmData to empty:
    // check that they are there before handing the payload to it.
    let data = shape.alarm_data.as_ref();
    let now = data.and_then(|d| d.state.as_ref());
    let before = data.and_then(|d| d.previous_state.as_ref());
    let new_state = required_str(
        now.and_then(|s| s.value.as_ref()),
        "alarmData.state.value",
        transport,
    )?;
    let new_state = state("alarmData.state.value", new_state)?;
    let old_state = required_str(
        before.and_then(|s| s.value.as_ref()),
        "alarmData.previousState.value",
        transport,
    )?;
    let old_state = state("alarmData.previousState.value", old_state)?;
    let raw_time = required_str(
        now.and_then(|s| s.timestamp.as_ref()),
        "alarmData.state.timestamp",
        transport,
    )?;
    let payload: CloudWatchAlarm<Unread, Value> = event
        .read()
        .map_err(|e| IntakeError::malformed(transport, e))?;
    let (Some(arn), Some(account), Some(region)) =
        (payload.alarm_arn, payload.account_id, payload.region)
    else {
        return Err(IntakeError::malformed(
            transport,
            "`alarmArn`, `accountId` and `region` are all required",
        ));
    };
    let data = payload.alarm_data;
    let state_block = data
        .state
        .ok_or_else(|| IntakeError::malformed(transport, "missing field `alarmData.state`"))?;
    check_identity(&arn, &data.alarm_name, Some(&account), Some(&region))?;
    let reason_data = state_block.reason_data.as_ref().and_then(Value::as_str);
    Ok(Transition {
        new_state,
        old_state,
        timestamp: timestamp(transport, "alarmData.state.timestamp", raw_time)?,
        datapoints: datapoints(reason_data),
        reason: state_block.reason,
        alarm_name: data.alarm_name,
        alarm_arn: arn,
        account,
        region,
        transport,
        replay_name: None,
    })
}

fn required_str<'a>(
    value: Option<&'a Value>,
    field: &str,
    transport: Transport,
) -> Result<&'a str, IntakeError> {
    value
        .and_then(Value::as_str)
        .ok_or_else(|| IntakeError::malformed(transport, format!("missing string field `{field}`")))
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

/// An alarm's `configuration` in the Lambda-action payload: the guard does not read it, so it
/// is skipped over rather than copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Unread;

impl<'de> Deserialize<'de> for Unread {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| Unread)
    }
}

impl serde::Serialize for Unread {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

#[derive(Deserialize)]
struct ReasonData {
    #[serde(rename = "recentDatapoints")]
    recent_datapoints: Option<Vec<Value>>,
}

/// `recentDatapoints` from an alarm's reason data (a JSON string). Informational only: reason
/// data that does not parse yields no datapoints rather than a rejection.
fn datapoints(reason_data: Option<&str>) -> Vec<f64> {
    reason_data
        .and_then(|s| serde_json::from_str::<ReasonData>(s).ok())
        .and_then(|r| r.recent_datapoints)
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default()
}
