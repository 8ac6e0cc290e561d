//! The guard's custom events, over EventBridge: `Critical Insight`, `Rollback Requested`.

use super::*;

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

/// An alias pointed at a version, as CloudTrail recorded the call (`UpdateAlias` or
/// `CreateAlias`, through EventBridge's "AWS API Call via CloudTrail"): when that version went
/// live on the alias, and who put it there.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AliasChange {
    pub account: String,
    pub region: String,
    /// The function's name (the call may name it by ARN).
    pub function: String,
    pub alias: String,
    pub version: String,
    pub at: chrono::DateTime<chrono::Utc>,
    /// The principal that made the call.
    pub by: String,
    pub replay_name: Option<String>,
}

/// A `Rollback Requested` event: a person asking for an action on a target.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ActionRequest {
    /// The EventBridge event id: one request, one action, however often it is delivered.
    pub id: String,
    pub source: String,
    /// The account the target is in: the request's `account` (a member's), else the account
    /// that sent it.
    pub account: String,
    pub region: String,
    /// The account that put the request on the bus.
    pub sent_from: String,
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

#[derive(Deserialize)]
pub(super) struct InsightDetail<'a> {
    #[serde(borrow)]
    pub(super) alert_id: Cow<'a, str>,
    pub(super) risk_score: f64,
    #[serde(borrow)]
    pub(super) stream_id: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) explanation: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RequestDetail<'a> {
    #[serde(borrow)]
    pub(super) target: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) action: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(super) reason: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) requested_by: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) sender: Option<Cow<'a, str>>,
    /// The target's account, when it is a member account's (else the sender's).
    #[serde(borrow, default)]
    pub(super) account: Option<Cow<'a, str>>,
}

/// The envelope of a Critical Insight or Rollback Requested event. Their `source` is checked
/// against the policy by the decision, not here: any producer may be named there.
pub(super) struct CustomEvent {
    pub(super) id: String,
    pub(super) source: String,
    pub(super) account: String,
    pub(super) region: String,
    pub(super) replay_name: Option<String>,
}

/// CloudTrail's record of a Lambda API call, as far as an alias change goes.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AliasChangeDetail<'a> {
    #[serde(borrow)]
    pub(super) event_name: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) event_time: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(super) error_code: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) user_identity: Option<UserIdentity<'a>>,
    #[serde(borrow, default)]
    pub(super) request_parameters: Option<AliasParameters<'a>>,
}

#[derive(Deserialize)]
pub(super) struct UserIdentity<'a> {
    #[serde(borrow, default)]
    pub(super) arn: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AliasParameters<'a> {
    #[serde(borrow)]
    pub(super) function_name: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) name: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) function_version: Cow<'a, str>,
}

impl CustomEvent {
    pub(super) fn check(&self) -> Result<(), IntakeError> {
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

    pub(super) fn insight(self, d: InsightDetail) -> Result<Inbound, IntakeError> {
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

    pub(super) fn alias_change(self, d: AliasChangeDetail) -> Result<Inbound, IntakeError> {
        let transport = Transport::Eventbridge;
        let call = &*d.event_name;
        if !(call.starts_with("UpdateAlias") || call.starts_with("CreateAlias")) {
            return Err(IntakeError::WrongDetailType(format!(
                "{CLOUDTRAIL_CALL} of {call} (only UpdateAlias and CreateAlias are read)"
            )));
        }
        if let Some(code) = d.error_code {
            return Err(IntakeError::malformed(
                transport,
                format!("{call} failed ({code}): no alias changed"),
            ));
        }
        let Some(p) = d.request_parameters else {
            return Err(IntakeError::malformed(
                transport,
                "missing field `detail.requestParameters`",
            ));
        };
        let function = crate::codedeploy::function_name(&p.function_name).to_string();
        let valid = crate::policy::is_function_name(&function)
            && crate::watched::is_alias_name(&p.name)
            && !p.function_version.is_empty()
            && p.function_version.bytes().all(|b| b.is_ascii_digit());
        if !valid {
            return Err(IntakeError::malformed(
                transport,
                format!(
                    "{call} of `{}` alias `{}` to `{}`: not a function, an alias and a published version",
                    p.function_name, p.name, p.function_version
                ),
            ));
        }
        Ok(Inbound::AliasChange(AliasChange {
            at: timestamp(transport, "detail.eventTime", &d.event_time)?,
            by: d
                .user_identity
                .and_then(|u| u.arn)
                .map_or_else(|| "an unnamed principal".to_string(), Cow::into_owned),
            function,
            alias: p.name.into_owned(),
            version: p.function_version.into_owned(),
            account: self.account,
            region: self.region,
            replay_name: self.replay_name,
        }))
    }

    pub(super) fn request(self, d: RequestDetail) -> Result<Inbound, IntakeError> {
        if self.id.trim().is_empty() {
            return Err(IntakeError::malformed(
                Transport::Eventbridge,
                "a request needs its event `id`",
            ));
        }
        let account = match d.account {
            Some(a) if crate::transition::is_account_id(&a) => a.into_owned(),
            Some(a) => {
                return Err(IntakeError::malformed(
                    Transport::Eventbridge,
                    format!("`detail.account` `{a}` is not an account id (12 digits)"),
                ))
            }
            None => self.account.clone(),
        };
        Ok(Inbound::Request(ActionRequest {
            id: self.id,
            source: self.source,
            account,
            sent_from: self.account,
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
