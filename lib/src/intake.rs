//! Event intake: the three transports an alarm transition can arrive on, validated and reduced
//! to one [`Transition`]. Nothing here trusts its input: every field the guard relies on is
//! checked, and anything that does not hold is an [`IntakeError`], never a default.

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
        }
    }
}

/// A `Critical Insight` event: an insight with a high risk about a stream.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct InsightAlert {
    pub source: String,
    pub account: String,
    pub region: String,
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
    pub region: String,
    pub target: String,
    pub action: String,
    pub reason: String,
    pub requested_by: Option<String>,
    /// The IAM identity that sent it, as `guard request` read it from STS. EventBridge names
    /// no principal on a custom event, so this is as trustworthy as the request bus's policy
    /// (only people's roles may put events there).
    pub sender: Option<String>,
    pub replay_name: Option<String>,
}

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

/// Text from the event, borrowed from it unless it had to be unescaped.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// Every top-level field the guard reads, of whichever transport: the transports share some
/// (`source`, `region`), and which one the event is, is known only once all keys are read.
#[derive(Default)]
struct Fields<'a> {
    records: Option<Vec<SnsRecord<'a>>>,
    detail_type: Option<Text<'a>>,
    envelope: Envelope<'a>,
    action: ActionFields<'a>,
}

/// An EventBridge event's envelope. aws_lambda_events' EventBridge type drops the top-level
/// `replay-name` of archived events and its alarm types reject metric-math and composite
/// alarms, so these shapes are our own.
#[derive(Default)]
struct Envelope<'a> {
    id: Option<Text<'a>>,
    source: Option<Text<'a>>,
    account: Option<Text<'a>>,
    region: Option<Text<'a>>,
    resources: Option<Vec<Text<'a>>>,
    detail: Option<DetailSlot<'a>>,
    replay_name: Option<Text<'a>>,
}

/// The top-level fields of an alarm's Lambda-action payload (beside `source` and `region`).
#[derive(Default)]
struct ActionFields<'a> {
    alarm_arn: Option<Text<'a>>,
    account_id: Option<Text<'a>>,
    time: Option<Text<'a>>,
    alarm_data: Option<ActionData<'a>>,
}

/// Reads the top level into `fields`, noting in `reading` which field it is in, for the
/// error. Its value tells whether the top level is a JSON object (any transport) at all.
struct TopSeed<'s, 'de> {
    fields: &'s mut Fields<'de>,
    reading: &'s mut Option<&'static str>,
}

impl<'de> DeserializeSeed<'de> for TopSeed<'_, 'de> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_, 'de> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let f = self.fields;
        while let Some(key) = map.next_key::<Key>()? {
            let Some(name) = key.name() else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            *self.reading = Some(name);
            let e = &mut f.envelope;
            let a = &mut f.action;
            match key {
                Key::Records => put(&mut f.records, map.next_value()?, name)?,
                Key::DetailType => put(&mut f.detail_type, map.next_value()?, name)?,
                Key::Id => put(&mut e.id, map.next_value()?, name)?,
                Key::Source => put(&mut e.source, map.next_value()?, name)?,
                Key::Account => put(&mut e.account, map.next_value()?, name)?,
                Key::Region => put(&mut e.region, map.next_value()?, name)?,
                Key::Resources => put(&mut e.resources, map.next_value()?, name)?,
                Key::ReplayName => put(&mut e.replay_name, map.next_value()?, name)?,
                Key::Detail => {
                    // AWS writes `detail-type` and `source` before `detail`: then the detail is
                    // read into its shape right here; otherwise it is kept as text for later.
                    let kind = DetailKind::of(
                        f.detail_type.as_ref().map(|t| &*t.0),
                        e.source.as_ref().map(|t| &*t.0),
                    );
                    put(&mut e.detail, map.next_value_seed(kind)?, name)?
                }
                Key::AlarmArn => put(&mut a.alarm_arn, map.next_value()?, name)?,
                Key::AccountId => put(&mut a.account_id, map.next_value()?, name)?,
                Key::Time => put(&mut a.time, map.next_value()?, name)?,
                Key::AlarmData => put(&mut a.alarm_data, map.next_value()?, name)?,
                Key::Other => {} // skipped above
            }
            *self.reading = None;
        }
        Ok(true)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }

    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_str<E>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
}

/// A field read once: a second occurrence of a key is an error, never a silent overwrite.
fn put<T, E: serde::de::Error>(
    slot: &mut Option<T>,
    value: T,
    name: &'static str,
) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::duplicate_field(name));
    }
    *slot = Some(value);
    Ok(())
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
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
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
                        _ => {}
                    }
                }
                Ok(keys)
            }
        }
        d.deserialize_map(KeysVisitor)
    }
}

#[derive(Clone, Copy)]
enum Key {
    Records,
    DetailType,
    Id,
    Source,
    Account,
    Region,
    Resources,
    Detail,
    ReplayName,
    AlarmArn,
    AccountId,
    Time,
    AlarmData,
    Other,
}

impl Key {
    fn parse(key: &str) -> Self {
        match key {
            "Records" => Key::Records,
            "detail-type" => Key::DetailType,
            "id" => Key::Id,
            "source" => Key::Source,
            "account" => Key::Account,
            "region" => Key::Region,
            "resources" => Key::Resources,
            "detail" => Key::Detail,
            "replay-name" => Key::ReplayName,
            "alarmArn" => Key::AlarmArn,
            "accountId" => Key::AccountId,
            "time" => Key::Time,
            "alarmData" => Key::AlarmData,
            _ => Key::Other,
        }
    }

    fn name(self) -> Option<&'static str> {
        Some(match self {
            Key::Records => "Records",
            Key::DetailType => "detail-type",
            Key::Id => "id",
            Key::Source => "source",
            Key::Account => "account",
            Key::Region => "region",
            Key::Resources => "resources",
            Key::Detail => "detail",
            Key::ReplayName => "replay-name",
            Key::AlarmArn => "alarmArn",
            Key::AccountId => "accountId",
            Key::Time => "time",
            Key::AlarmData => "alarmData",
            Key::Other => return None,
        })
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(Key::parse(key))
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

/// Which shape an EventBridge `detail` is read into, from the `detail-type` and `source`
/// read before it (`Unknown` when they come after it).
#[derive(Clone, Copy)]
enum DetailKind {
    Alarm,
    Insight,
    Request,
    /// An event the guard rejects or does not read the detail of.
    Unread,
    Unknown,
}

impl DetailKind {
    fn of(detail_type: Option<&str>, source: Option<&str>) -> Self {
        match (detail_type, source) {
            (Some(CRITICAL_INSIGHT), _) => Self::Insight,
            (Some(ROLLBACK_REQUESTED), _) => Self::Request,
            (Some(ALARM_STATE_CHANGE), Some(CLOUDWATCH_SOURCE)) => Self::Alarm,
            (Some(ALARM_STATE_CHANGE), None) | (None, _) => Self::Unknown,
            (Some(_), _) => Self::Unread,
        }
    }
}

/// An EventBridge `detail`, read into the shape its kind needs, or kept as text.
enum DetailSlot<'a> {
    Alarm(AlarmDetail<'a>),
    Insight(InsightDetail<'a>),
    Request(RequestDetail<'a>),
    Unread,
    Text(&'a RawValue),
}

impl<'de> DeserializeSeed<'de> for DetailKind {
    type Value = DetailSlot<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<DetailSlot<'de>, D::Error> {
        Ok(match self {
            Self::Alarm => DetailSlot::Alarm(Deserialize::deserialize(d)?),
            Self::Insight => DetailSlot::Insight(Deserialize::deserialize(d)?),
            Self::Request => DetailSlot::Request(Deserialize::deserialize(d)?),
            Self::Unread => {
                IgnoredAny::deserialize(d)?;
                DetailSlot::Unread
            }
            Self::Unknown => DetailSlot::Text(Deserialize::deserialize(d)?),
        })
    }
}

impl<'a> DetailSlot<'a> {
    fn alarm(self) -> Result<AlarmDetail<'a>, IntakeError> {
        match self {
            Self::Alarm(d) => Ok(d),
            other => other.read_text(),
        }
    }

    fn insight(self) -> Result<InsightDetail<'a>, IntakeError> {
        match self {
            Self::Insight(d) => Ok(d),
            other => other.read_text(),
        }
    }

    fn request(self) -> Result<RequestDetail<'a>, IntakeError> {
        match self {
            Self::Request(d) => Ok(d),
            other => other.read_text(),
        }
    }

    /// A detail that came before what tells its shape, read now that the shape is known.
    fn read_text<T: Deserialize<'a>>(self) -> Result<T, IntakeError> {
        let transport = Transport::Eventbridge;
        match self {
            Self::Text(raw) => serde_json::from_str(raw.get())
                .map_err(|e| IntakeError::malformed(transport, format!("`detail`: {e}"))),
            _ => Err(IntakeError::malformed(
                transport,
                "`detail` was read as another detail-type's",
            )),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlarmDetail<'a> {
    #[serde(borrow)]
    alarm_name: Cow<'a, str>,
    #[serde(borrow)]
    state: StateBlock<'a>,
    #[serde(borrow)]
    previous_state: StateBlock<'a>,
    #[serde(borrow, default)]
    configuration: Option<AlarmConfig<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StateBlock<'a> {
    #[serde(borrow)]
    value: Cow<'a, str>,
    #[serde(borrow, default)]
    reason: Cow<'a, str>,
    #[serde(borrow, default)]
    reason_data: Option<&'a RawValue>,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
    #[serde(borrow, default)]
    actions_suppressed_by: Option<Cow<'a, str>>,
}

/// The parts of an alarm's `configuration` the guard reads: its actions suppressor (composite
/// alarms), and its metrics, kept as they came (read only for a fleet trigger, see
/// [`Transition::watched`]).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlarmConfig<'a> {
    #[serde(borrow, default)]
    actions_suppressor: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    metrics: Option<&'a RawValue>,
}

impl AlarmConfig<'_> {
    fn metrics(configuration: Option<&Self>) -> Option<AlarmMetrics> {
        configuration
            .and_then(|c| c.metrics)
            .map(|m| AlarmMetrics::Configuration(m.get().to_string()))
    }
}

// Producers may add fields; the ones the guard relies on must be there.
#[derive(Deserialize)]
struct InsightDetail<'a> {
    #[serde(borrow)]
    alert_id: Cow<'a, str>,
    risk_score: f64,
    #[serde(borrow)]
    stream_id: Cow<'a, str>,
    #[serde(borrow)]
    explanation: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestDetail<'a> {
    #[serde(borrow)]
    target: Cow<'a, str>,
    #[serde(borrow)]
    action: Cow<'a, str>,
    #[serde(borrow, default)]
    reason: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    requested_by: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    sender: Option<Cow<'a, str>>,
}

fn required<T>(value: Option<T>, field: &str, transport: Transport) -> Result<T, IntakeError> {
    value.ok_or_else(|| IntakeError::malformed(transport, format!("missing field `{field}`")))
}

fn owned(text: Option<Text>) -> Option<String> {
    text.map(|t| t.0.into_owned())
}

fn from_eventbridge(detail_type: Cow<str>, env: Envelope) -> Result<Inbound, IntakeError> {
    let transport = Transport::Eventbridge;
    let source = required(env.source, "source", transport)?.0;
    let account = required(env.account, "account", transport)?.0;
    let region = required(env.region, "region", transport)?.0;
    let resources = required(env.resources, "resources", transport)?;
    let detail = required(env.detail, "detail", transport)?;
    if source == "aws.events" && detail_type == SCHEDULED_EVENT {
        if !crate::transition::is_account_id(&account) {
            return Err(IntakeError::malformed(
                transport,
                format!("`account` `{account}` is not an account id"),
            ));
        }
        return Ok(Inbound::Schedule {
            account: account.into_owned(),
            region: region.into_owned(),
        });
    }
    if detail_type == CRITICAL_INSIGHT || detail_type == ROLLBACK_REQUESTED {
        let custom = CustomEvent {
            id: owned(env.id).unwrap_or_default(),
            source: source.into_owned(),
            account: account.into_owned(),
            region: region.into_owned(),
            replay_name: owned(env.replay_name),
        };
        custom.check()?;
        return if detail_type == CRITICAL_INSIGHT {
            custom.insight(detail.insight()?)
        } else {
            custom.request(detail.request()?)
        };
    }
    if source != CLOUDWATCH_SOURCE {
        return Err(IntakeError::WrongSource(source.into_owned()));
    }
    if detail_type != ALARM_STATE_CHANGE {
        return Err(IntakeError::WrongDetailType(detail_type.into_owned()));
    }
    let detail = detail.alarm()?;
    let arn = match resources.as_slice() {
        [arn] => &arn.0,
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
    check_identity(arn, &detail.alarm_name, Some(&account), Some(&region))?;
    let reason_data = reason_data(
        transport,
        "detail.state.reasonData",
        detail.state.reason_data,
    )?;
    let suppressed = suppression(
        transport,
        "detail.state.actionsSuppressedBy",
        detail.state.actions_suppressed_by.as_deref(),
        detail.configuration.as_ref(),
    )?;
    Ok(Inbound::Alarm(Transition {
        new_state: state("detail.state.value", &detail.state.value)?,
        old_state: state("detail.previousState.value", &detail.previous_state.value)?,
        timestamp: timestamp(transport, "detail.state.timestamp", &detail.state.timestamp)?,
        reason_data,
        reason: detail.state.reason.into_owned(),
        alarm_name: detail.alarm_name.into_owned(),
        alarm_arn: arn.to_string(),
        account: account.into_owned(),
        region: region.into_owned(),
        transport,
        replay_name: owned(env.replay_name),
        suppressed,
        metrics: AlarmConfig::metrics(detail.configuration.as_ref()),
    }))
}

/// `actionsSuppressedBy` and the configuration's `actionsSuppressor`, read together: what
/// CloudWatch says held the alarm's own actions back.
fn suppression(
    transport: Transport,
    field: &str,
    by: Option<&str>,
    configuration: Option<&AlarmConfig>,
) -> Result<Option<Suppression>, IntakeError> {
    let Some(by) = by else {
        return Ok(None);
    };
    let kind = SuppressionKind::parse(by)
        .map_err(|why| IntakeError::malformed(transport, format!("{field}: {why}")))?;
    Ok(kind.map(|kind| Suppression {
        kind,
        suppressor: configuration
            .and_then(|c| c.actions_suppressor.as_deref())
            .map(str::to_string),
    }))
}

/// The envelope of a Critical Insight or Rollback Requested event. Their `source` is checked
/// against the policy by the decision, not here: any producer may be named there.
struct CustomEvent {
    id: String,
    source: String,
    account: String,
    region: String,
    replay_name: Option<String>,
}

impl CustomEvent {
    fn check(&self) -> Result<(), IntakeError> {
        let transport = Transport::Eventbridge;
        if !crate::transition::is_account_id(&self.account) {
            return Err(IntakeError::malformed(
                transport,
                format!("`account` `{}` is not an account id", self.account),
            ));
        }
        if self.source.trim().is_empty() {
            return Err(IntakeError::malformed(transport, "`source` is empty"));
        }
        Ok(())
    }

    fn insight(self, d: InsightDetail) -> Result<Inbound, IntakeError> {
        let transport = Transport::Eventbridge;
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
        Ok(Inbound::Insight(InsightAlert {
            source: self.source,
            account: self.account,
            region: self.region,
            alert_id: d.alert_id.into_owned(),
            risk_score: d.risk_score as u8,
            stream_id: d.stream_id.into_owned(),
            explanation: d.explanation.into_owned(),
            replay_name: self.replay_name,
        }))
    }

    fn request(self, d: RequestDetail) -> Result<Inbound, IntakeError> {
        if self.id.trim().is_empty() {
            return Err(IntakeError::malformed(
                Transport::Eventbridge,
                "a request needs its event `id`",
            ));
        }
        Ok(Inbound::Request(ActionRequest {
            id: self.id,
            source: self.source,
            account: self.account,
            region: self.region,
            target: d.target.into_owned(),
            action: d.action.into_owned(),
            reason: d.reason.map(Cow::into_owned).unwrap_or_default(),
            requested_by: d.requested_by.map(Cow::into_owned),
            sender: d.sender.map(Cow::into_owned),
            replay_name: self.replay_name,
        }))
    }
}

/// One record of an SNS event, with what aws_lambda_events' `SnsRecord` requires (read here
/// without copying it).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsRecord<'a> {
    #[serde(borrow)]
    event_source: Cow<'a, str>,
    #[serde(borrow, rename = "EventVersion")]
    _event_version: Cow<'a, str>,
    #[serde(borrow, rename = "EventSubscriptionArn")]
    _event_subscription_arn: Cow<'a, str>,
    #[serde(borrow)]
    sns: SnsMessage<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsMessage<'a> {
    #[serde(borrow, rename = "Type")]
    message_type: Cow<'a, str>,
    #[serde(borrow, rename = "MessageId")]
    _message_id: Cow<'a, str>,
    #[serde(borrow, rename = "TopicArn")]
    _topic_arn: Cow<'a, str>,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
    #[serde(borrow, rename = "SignatureVersion")]
    _signature_version: Cow<'a, str>,
    #[serde(borrow, rename = "Signature")]
    _signature: Cow<'a, str>,
    #[serde(borrow, rename = "SigningCertUrl", alias = "SigningCertURL")]
    _signing_cert_url: Cow<'a, str>,
    #[serde(borrow, rename = "UnsubscribeUrl", alias = "UnsubscribeURL")]
    _unsubscribe_url: Cow<'a, str>,
    #[serde(borrow)]
    message: Cow<'a, str>,
}

/// The alarm notification inside `Records[].Sns.Message`. Only the fields the guard needs are
/// declared: the rest (`OKActions` as a string, `InsufficientDataActions` as `""`,
/// `AlarmDescription: null`, `Trigger` with or without `Metrics[]`, composite `AlarmRule` and
/// `TriggeringChildren`) varies between alarm kinds and is left alone. `Region` is a display
/// name ("EU (Ireland)"), so the region comes from `AlarmArn`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsAlarmMessage<'a> {
    #[serde(borrow)]
    alarm_name: Cow<'a, str>,
    #[serde(borrow)]
    alarm_arn: Cow<'a, str>,
    #[serde(borrow, rename = "AWSAccountId")]
    aws_account_id: Cow<'a, str>,
    #[serde(borrow)]
    new_state_value: Cow<'a, str>,
    #[serde(borrow)]
    old_state_value: Cow<'a, str>,
    #[serde(borrow, default)]
    new_state_reason: Cow<'a, str>,
    #[serde(borrow)]
    state_change_time: Cow<'a, str>,
    /// One metric's `Dimensions`, or metric math's `Metrics` (composite alarms have none):
    /// kept as it came, read only for a fleet trigger.
    #[serde(borrow, default)]
    trigger: Option<&'a RawValue>,
}

/// Whether an SNS message names an alarm at all.
#[derive(Deserialize)]
struct MessageKeys {
    #[serde(rename = "AlarmArn")]
    alarm_arn: Option<IgnoredAny>,
}

fn from_sns(records: Vec<SnsRecord>) -> Result<Transition, IntakeError> {
    let transport = Transport::Sns;
    // Lambda has delivered SNS notifications one record per invocation, but the event's type
    // allows several and AWS's documentation promises none: several are split by the caller
    // (`sns_records`), each read here on its own.
    let record = match records.as_slice() {
        [record] => record,
        [] => return Err(IntakeError::malformed(transport, "no record in `Records`")),
        several => return Err(IntakeError::SeveralRecords(several.len())),
    };
    if record.event_source != "aws:sns" {
        return Err(IntakeError::malformed(
            transport,
            format!("EventSource `{}` is not `aws:sns`", record.event_source),
        ));
    }
    timestamp(transport, "Records[0].Sns.Timestamp", &record.sns.timestamp)?;
    if record.sns.message_type != "Notification" {
        return Err(IntakeError::NotAnAlarm(format!(
            "message type is `{}`",
            record.sns.message_type
        )));
    }
    // The alarm name is taken from the message, never from `Subject`: subjects are truncated
    // and free text.
    let message = &*record.sns.message;
    let msg: SnsAlarmMessage = serde_json::from_str(message).map_err(|e| {
        // Not an alarm at all, or an alarm notification that does not hold its shape.
        match serde_json::from_str::<MessageKeys>(message) {
            Err(keys) => IntakeError::NotAnAlarm(format!("message is not a JSON object: {keys}")),
            Ok(MessageKeys { alarm_arn: None }) => {
                IntakeError::NotAnAlarm("message has no `AlarmArn`".into())
            }
            Ok(_) => IntakeError::malformed(transport, format!("Message: {e}")),
        }
    })?;
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
        reason_data: None,
        reason: msg.new_state_reason.into_owned(),
        alarm_name: msg.alarm_name.into_owned(),
        alarm_arn: msg.alarm_arn.into_owned(),
        account: msg.aws_account_id.into_owned(),
        region,
        transport,
        replay_name: None,
        // An SNS notification is an alarm action: CloudWatch sends none while the alarm's
        // actions are suppressed, and the message has no field for it. The confirmation reads
        // the suppression (and disabled actions) from DescribeAlarms.
        suppressed: None,
        metrics: msg
            .trigger
            .map(|t| AlarmMetrics::SnsTrigger(t.get().to_string())),
    })
}

/// An alarm's Lambda-action `alarmData`. Everything is optional here and checked after
/// reading, in the order the guard relies on it: aws_lambda_events' type would default a
/// missing state value to OK and a missing `alarmData` to empty, and rejects metric-math
/// alarms' configurations. The configuration is not read, only required.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ActionData<'a> {
    #[serde(borrow, default)]
    alarm_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    state: Option<ActionState<'a>>,
    #[serde(borrow, default)]
    previous_state: Option<ActionState<'a>>,
    #[serde(borrow, default)]
    configuration: Option<AlarmConfig<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ActionState<'a> {
    #[serde(borrow, default)]
    value: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reason: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reason_data: Option<&'a RawValue>,
    #[serde(borrow, default)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    actions_suppressed_by: Option<Cow<'a, str>>,
}

fn from_lambda_action(
    source: Option<Text>,
    region: Option<Text>,
    fields: ActionFields,
) -> Result<Transition, IntakeError> {
    let transport = Transport::LambdaAction;
    match source.as_ref().map(|s| &*s.0) {
        Some(CLOUDWATCH_SOURCE) => {}
        Some(other) => return Err(IntakeError::WrongSource(other.into())),
        None => return Err(IntakeError::malformed(transport, "missing field `source`")),
    }
    let data = fields.alarm_data;
    let now = data.as_ref().and_then(|d| d.state.as_ref());
    let before = data.as_ref().and_then(|d| d.previous_state.as_ref());
    fn field<'v>(value: Option<&'v Cow<str>>, name: &str) -> Result<&'v str, IntakeError> {
        value.map(|v| &**v).ok_or_else(|| {
            IntakeError::malformed(
                Transport::LambdaAction,
                format!("missing string field `{name}`"),
            )
        })
    }
    let new_state = field(now.and_then(|s| s.value.as_ref()), "alarmData.state.value")?;
    let new_state = state("alarmData.state.value", new_state)?;
    let old_state = field(
        before.and_then(|s| s.value.as_ref()),
        "alarmData.previousState.value",
    )?;
    let old_state = state("alarmData.previousState.value", old_state)?;
    let raw_time = field(
        now.and_then(|s| s.timestamp.as_ref()),
        "alarmData.state.timestamp",
    )?;
    let at = timestamp(transport, "alarmData.state.timestamp", raw_time)?;
    let previous_time = field(
        before.and_then(|s| s.timestamp.as_ref()),
        "alarmData.previousState.timestamp",
    )?;
    timestamp(
        transport,
        "alarmData.previousState.timestamp",
        previous_time,
    )?;
    let reason = field(
        now.and_then(|s| s.reason.as_ref()),
        "alarmData.state.reason",
    )?;
    field(
        before.and_then(|s| s.reason.as_ref()),
        "alarmData.previousState.reason",
    )?;
    let data = data.as_ref().expect("a state value was read from it");
    let name = field(data.alarm_name.as_ref(), "alarmData.alarmName")?;
    if data.configuration.is_none() {
        return Err(IntakeError::malformed(
            transport,
            "missing field `alarmData.configuration`",
        ));
    }
    let time = required(fields.time, "time", transport)?;
    timestamp(transport, "time", &time.0)?;
    let (Some(arn), Some(account), Some(region)) = (fields.alarm_arn, fields.account_id, region)
    else {
        return Err(IntakeError::malformed(
            transport,
            "`alarmArn`, `accountId` and `region` are all required",
        ));
    };
    check_identity(&arn.0, name, Some(&account.0), Some(&region.0))?;
    Ok(Transition {
        new_state,
        old_state,
        timestamp: at,
        reason_data: reason_data(
            transport,
            "alarmData.state.reasonData",
            now.and_then(|s| s.reason_data),
        )?,
        suppressed: suppression(
            transport,
            "alarmData.state.actionsSuppressedBy",
            now.and_then(|s| s.actions_suppressed_by.as_deref()),
            data.configuration.as_ref(),
        )?,
        metrics: AlarmConfig::metrics(data.configuration.as_ref()),
        reason: reason.to_string(),
        alarm_name: name.to_string(),
        alarm_arn: arn.0.into_owned(),
        account: account.0.into_owned(),
        region: region.0.into_owned(),
        transport,
        replay_name: None,
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
