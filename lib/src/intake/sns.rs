//! SNS notifications published by an alarm action.

use super::*;

/// One record of an SNS event, with what aws_lambda_events' `SnsRecord` requires (read here
/// without copying it).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct SnsRecord<'a> {
    #[serde(borrow)]
    pub(super) event_source: Cow<'a, str>,
    #[serde(borrow, rename = "EventVersion")]
    pub(super) _event_version: Cow<'a, str>,
    #[serde(borrow, rename = "EventSubscriptionArn")]
    pub(super) _event_subscription_arn: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) sns: SnsMessage<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct SnsMessage<'a> {
    #[serde(borrow, rename = "Type")]
    pub(super) message_type: Cow<'a, str>,
    #[serde(borrow, rename = "MessageId")]
    pub(super) _message_id: Cow<'a, str>,
    #[serde(borrow, rename = "TopicArn")]
    pub(super) _topic_arn: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) timestamp: Cow<'a, str>,
    #[serde(borrow, rename = "SignatureVersion")]
    pub(super) _signature_version: Cow<'a, str>,
    #[serde(borrow, rename = "Signature")]
    pub(super) _signature: Cow<'a, str>,
    #[serde(borrow, rename = "SigningCertUrl", alias = "SigningCertURL")]
    pub(super) _signing_cert_url: Cow<'a, str>,
    #[serde(borrow, rename = "UnsubscribeUrl", alias = "UnsubscribeURL")]
    pub(super) _unsubscribe_url: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) message: Cow<'a, str>,
}

/// The alarm notification inside `Records[].Sns.Message`. Only the fields the guard needs are
/// declared: the rest (`OKActions` as a string, `InsufficientDataActions` as `""`,
/// `AlarmDescription: null`, `Trigger` with or without `Metrics[]`, composite `AlarmRule` and
/// `TriggeringChildren`) varies between alarm kinds and is left alone. `Region` is a display
/// name ("EU (Ireland)"), so the region comes from `AlarmArn`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct SnsAlarmMessage<'a> {
    #[serde(borrow)]
    pub(super) alarm_name: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) alarm_arn: Cow<'a, str>,
    #[serde(borrow, rename = "AWSAccountId")]
    pub(super) aws_account_id: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) new_state_value: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) old_state_value: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(super) new_state_reason: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) state_change_time: Cow<'a, str>,
    /// One metric's `Dimensions`, or metric math's `Metrics` (composite alarms have none):
    /// kept as it came, read only for a fleet trigger.
    #[serde(borrow, default)]
    pub(super) trigger: Option<&'a RawValue>,
}

/// Whether an SNS message names an alarm at all.
#[derive(Deserialize)]
pub(super) struct MessageKeys {
    #[serde(rename = "AlarmArn")]
    pub(super) alarm_arn: Option<IgnoredAny>,
}

pub(super) fn from_sns(records: Vec<SnsRecord>) -> Result<Transition, IntakeError> {
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
