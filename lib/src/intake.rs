//! Event intake: the three transports an alarm transition can arrive on, validated and reduced
//! to one [`Transition`]. Nothing here trusts its input: every field the guard relies on is
//! checked, and anything that does not hold is an [`IntakeError`], never a default.

use crate::transition::{parse_timestamp, AlarmArn, AlarmState, Transition, Transport};
use aws_lambda_events::cloudwatch_alarms::CloudWatchAlarm;
use aws_lambda_events::sns::SnsEvent;
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
    parse(&json(bytes)?)
}

/// Parses raw bytes into whatever the guard accepts.
pub fn parse_inbound_bytes(bytes: &[u8]) -> Result<Inbound, IntakeError> {
    parse_inbound(&json(bytes)?)
}

fn json(bytes: &[u8]) -> Result<Value, IntakeError> {
    serde_json::from_slice(bytes).map_err(|e| IntakeError::NotJson(e.to_string()))
}

/// Parses an alarm transition; anything else (a schedule event too) is an error.
pub fn parse(event: &Value) -> Result<Transition, IntakeError> {
    match parse_inbound(event)? {
        Inbound::Alarm(t) => Ok(t),
        Inbound::Schedule { .. } => Err(IntakeError::WrongDetailType(SCHEDULED_EVENT.into())),
        Inbound::Insight(_) => Err(IntakeError::WrongDetailType(CRITICAL_INSIGHT.into())),
        Inbound::Request(_) => Err(IntakeError::WrongDetailType(ROLLBACK_REQUESTED.into())),
    }
}

/// Recognises the transport by its shape and parses it.
pub fn parse_inbound(event: &Value) -> Result<Inbound, IntakeError> {
    let obj = event.as_object().ok_or(IntakeError::Unrecognised)?;
    if obj.contains_key("Records") {
        from_sns(event).map(Inbound::Alarm)
    } else if obj.contains_key("detail-type") {
        from_eventbridge(event)
    } else if obj.contains_key("alarmData") || obj.contains_key("alarmArn") {
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
    detail: Value,
    #[serde(rename = "replay-name", default)]
    replay_name: Option<String>,
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

fn from_eventbridge(event: &Value) -> Result<Inbound, IntakeError> {
    let transport = Transport::Eventbridge;
    let env = EventBridgeEnvelope::deserialize(event)
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
        return custom_event(env);
    }
    if env.source != CLOUDWATCH_SOURCE {
        return Err(IntakeError::WrongSource(env.source));
    }
    if env.detail_type != ALARM_STATE_CHANGE {
        return Err(IntakeError::WrongDetailType(env.detail_type));
    }
    let detail = AlarmDetail::deserialize(&env.detail)
        .map_err(|e| IntakeError::malformed(transport, format!("detail: {e}")))?;
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
fn custom_event(env: EventBridgeEnvelope) -> Result<Inbound, IntakeError> {
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
        let d = InsightDetail::deserialize(&env.detail)
            .map_err(|e| IntakeError::malformed(transport, format!("detail: {e}")))?;
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
    let d = RequestDetail::deserialize(&env.detail)
        .map_err(|e| IntakeError::malformed(transport, format!("detail: {e}")))?;
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

fn from_sns(event: &Value) -> Result<Transition, IntakeError> {
    let transport = Transport::Sns;
    let sns = SnsEvent::deserialize(event).map_err(|e| IntakeError::malformed(transport, e))?;
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
    let message: Value = serde_json::from_str(&record.sns.message)
        .map_err(|e| IntakeError::NotAnAlarm(format!("message is not JSON: {e}")))?;
    if message.get("AlarmArn").is_none() {
        return Err(IntakeError::NotAnAlarm("message has no `AlarmArn`".into()));
    }
    let msg = SnsAlarmMessage::deserialize(&message)
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

fn from_lambda_action(event: &Value) -> Result<Transition, IntakeError> {
    let transport = Transport::LambdaAction;
    let source = event.get("source").and_then(Value::as_str);
    match source {
        Some(CLOUDWATCH_SOURCE) => {}
        Some(other) => return Err(IntakeError::WrongSource(other.into())),
        None => return Err(IntakeError::malformed(transport, "missing field `source`")),
    }
    // The library type defaults a missing state value to OK and a missing alarmData to empty:
    // check that they are there before handing the payload to it.
    let new_state = required_str(event, "/alarmData/state/value", transport)?;
    let new_state = state("alarmData.state.value", new_state)?;
    let old_state = required_str(event, "/alarmData/previousState/value", transport)?;
    let old_state = state("alarmData.previousState.value", old_state)?;
    let raw_time = required_str(event, "/alarmData/state/timestamp", transport)?;
    let payload = CloudWatchAlarm::<Value, Value>::deserialize(event)
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
    event: &'a Value,
    pointer: &str,
    transport: Transport,
) -> Result<&'a str, IntakeError> {
    event
        .pointer(pointer)
        .and_then(Value::as_str)
        .ok_or_else(|| {
            IntakeError::malformed(
                transport,
                format!(
                    "missing string field `{}`",
                    pointer.trim_start_matches('/').replace('/', ".")
                ),
            )
        })
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

/// `recentDatapoints` from an alarm's reason data (a JSON string). Informational only: reason
/// data that does not parse yields no datapoints rather than a rejection.
fn datapoints(reason_data: Option<&str>) -> Vec<f64> {
    reason_data
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .and_then(|v| {
            v.get("recentDatapoints")?
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
        })
        .unwrap_or_default()
}
