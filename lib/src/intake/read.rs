//! The one pass over an event's text: every transport's top-level fields read into their
//! shapes as they come, the `detail` of an EventBridge event into its detail-type's.

use super::custom::{AliasChangeDetail, InsightDetail, RequestDetail};
use super::eventbridge::AlarmDetail;
use super::lambda_action::ActionData;
use super::sns::SnsRecord;
use super::*;

/// Text from the event, borrowed from it unless it had to be unescaped.
#[derive(Deserialize)]
pub(super) struct Text<'a>(#[serde(borrow)] pub(super) Cow<'a, str>);

/// Every top-level field the guard reads, of whichever transport: the transports share some
/// (`source`, `region`), and which one the event is, is known only once all keys are read.
#[derive(Default)]
pub(super) struct Fields<'a> {
    pub(super) records: Option<Vec<SnsRecord<'a>>>,
    pub(super) detail_type: Option<Text<'a>>,
    pub(super) envelope: Envelope<'a>,
    pub(super) action: ActionFields<'a>,
}

/// An EventBridge event's envelope. aws_lambda_events' EventBridge type drops the top-level
/// `replay-name` of archived events and its alarm types reject metric-math and composite
/// alarms, so these shapes are our own.
#[derive(Default)]
pub(super) struct Envelope<'a> {
    pub(super) id: Option<Text<'a>>,
    pub(super) source: Option<Text<'a>>,
    pub(super) account: Option<Text<'a>>,
    pub(super) region: Option<Text<'a>>,
    pub(super) resources: Option<Vec<Text<'a>>>,
    pub(super) detail: Option<DetailSlot<'a>>,
    pub(super) replay_name: Option<Text<'a>>,
}

/// The top-level fields of an alarm's Lambda-action payload (beside `source` and `region`).
#[derive(Default)]
pub(super) struct ActionFields<'a> {
    pub(super) alarm_arn: Option<Text<'a>>,
    pub(super) account_id: Option<Text<'a>>,
    pub(super) time: Option<Text<'a>>,
    pub(super) alarm_data: Option<ActionData<'a>>,
}

/// Reads the top level into `fields`, noting in `reading` which field it is in, for the
/// error. Its value tells whether the top level is a JSON object (any transport) at all.
pub(super) struct TopSeed<'s, 'de> {
    pub(super) fields: &'s mut Fields<'de>,
    pub(super) reading: &'s mut Option<&'static str>,
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
pub(super) fn put<T, E: serde::de::Error>(
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
pub(super) struct Keys {
    pub(super) records: bool,
    pub(super) detail_type: bool,
    pub(super) alarm_data: bool,
    pub(super) alarm_arn: bool,
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
pub(super) enum Key {
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
    pub(super) fn parse(key: &str) -> Self {
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

    pub(super) fn name(self) -> Option<&'static str> {
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
pub(super) enum DetailKind {
    Alarm,
    Insight,
    Request,
    AliasChange,
    /// An event the guard rejects or does not read the detail of.
    Unread,
    Unknown,
}

impl DetailKind {
    pub(super) fn of(detail_type: Option<&str>, source: Option<&str>) -> Self {
        match (detail_type, source) {
            (Some(CRITICAL_INSIGHT), _) => Self::Insight,
            (Some(ROLLBACK_REQUESTED), _) => Self::Request,
            (Some(ALARM_STATE_CHANGE), Some(CLOUDWATCH_SOURCE)) => Self::Alarm,
            (Some(CLOUDTRAIL_CALL), Some(LAMBDA_SOURCE)) => Self::AliasChange,
            (Some(CLOUDTRAIL_CALL), None) => Self::Unknown,
            (Some(ALARM_STATE_CHANGE), None) | (None, _) => Self::Unknown,
            (Some(_), _) => Self::Unread,
        }
    }
}

/// An EventBridge `detail`, read into the shape its kind needs, or kept as text.
pub(super) enum DetailSlot<'a> {
    Alarm(AlarmDetail<'a>),
    Insight(InsightDetail<'a>),
    Request(RequestDetail<'a>),
    AliasChange(AliasChangeDetail<'a>),
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
            Self::AliasChange => DetailSlot::AliasChange(Deserialize::deserialize(d)?),
            Self::Unread => {
                IgnoredAny::deserialize(d)?;
                DetailSlot::Unread
            }
            Self::Unknown => DetailSlot::Text(Deserialize::deserialize(d)?),
        })
    }
}

impl<'a> DetailSlot<'a> {
    pub(super) fn alarm(self) -> Result<AlarmDetail<'a>, IntakeError> {
        match self {
            Self::Alarm(d) => Ok(d),
            other => other.read_text(),
        }
    }

    pub(super) fn insight(self) -> Result<InsightDetail<'a>, IntakeError> {
        match self {
            Self::Insight(d) => Ok(d),
            other => other.read_text(),
        }
    }

    pub(super) fn request(self) -> Result<RequestDetail<'a>, IntakeError> {
        match self {
            Self::Request(d) => Ok(d),
            other => other.read_text(),
        }
    }

    pub(super) fn alias_change(self) -> Result<AliasChangeDetail<'a>, IntakeError> {
        match self {
            Self::AliasChange(d) => Ok(d),
            other => other.read_text(),
        }
    }

    /// A detail that came before what tells its shape, read now that the shape is known.
    pub(super) fn read_text<T: Deserialize<'a>>(self) -> Result<T, IntakeError> {
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
