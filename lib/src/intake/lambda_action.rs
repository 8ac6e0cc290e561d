//! The payload of an alarm's direct Lambda action.

use super::eventbridge::{suppression, AlarmConfig};
use super::read::{ActionFields, Text};
use super::*;

/// An alarm's Lambda-action `alarmData`. Everything is optional here and checked after
/// reading, in the order the guard relies on it: aws_lambda_events' type would default a
/// missing state value to OK and a missing `alarmData` to empty, and rejects metric-math
/// alarms' configurations. The configuration is not read, only required.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ActionData<'a> {
    #[serde(borrow, default)]
    pub(super) alarm_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) state: Option<ActionState<'a>>,
    #[serde(borrow, default)]
    pub(super) previous_state: Option<ActionState<'a>>,
    #[serde(borrow, default)]
    pub(super) configuration: Option<AlarmConfig<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ActionState<'a> {
    #[serde(borrow, default)]
    pub(super) value: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) reason: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) reason_data: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(super) timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) actions_suppressed_by: Option<Cow<'a, str>>,
}

pub(super) fn from_lambda_action(
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
