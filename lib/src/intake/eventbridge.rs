//! EventBridge: `CloudWatch Alarm State Change` events, and the envelope the custom events
//! share.

use super::custom::CustomEvent;
use super::read::Envelope;
use super::*;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AlarmDetail<'a> {
    #[serde(borrow)]
    pub(super) alarm_name: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) state: StateBlock<'a>,
    #[serde(borrow)]
    pub(super) previous_state: StateBlock<'a>,
    #[serde(borrow, default)]
    pub(super) configuration: Option<AlarmConfig<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StateBlock<'a> {
    #[serde(borrow)]
    pub(super) value: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(super) reason: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(super) reason_data: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(super) timestamp: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(super) actions_suppressed_by: Option<Cow<'a, str>>,
}

/// The parts of an alarm's `configuration` the guard reads: its actions suppressor (composite
/// alarms), and its metrics, kept as they came (read only for a fleet trigger, see
/// [`Transition::watched`]).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AlarmConfig<'a> {
    #[serde(borrow, default)]
    pub(super) actions_suppressor: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) metrics: Option<&'a RawValue>,
}

impl AlarmConfig<'_> {
    pub(super) fn metrics(configuration: Option<&Self>) -> Option<AlarmMetrics> {
        configuration
            .and_then(|c| c.metrics)
            .map(|m| AlarmMetrics::Configuration(m.get().to_string()))
    }
}

// Producers may add fields; the ones the guard relies on must be there.
pub(super) fn from_eventbridge(
    detail_type: Cow<str>,
    env: Envelope,
) -> Result<Inbound, IntakeError> {
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
    let alias_change = detail_type == CLOUDTRAIL_CALL && source == LAMBDA_SOURCE;
    if detail_type == CRITICAL_INSIGHT || detail_type == ROLLBACK_REQUESTED || alias_change {
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
        } else if alias_change {
            custom.alias_change(detail.alias_change()?)
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
pub(super) fn suppression(
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
