//! `guard request`: a `Rollback Requested` event the guard will accept, with who asks and the
//! identity that sends it, or why it would not.

use crate::acting::{ports_in, who};
use rollback_guard::adapters::{self, EventBridgeAuditBus, EventBridgeClient};
use rollback_guard::intake::ROLLBACK_REQUESTED;
use rollback_guard::notify::AuditEvent;
use rollback_guard::operator;
use rollback_guard::policy::Action;
use rollback_guard::ports::AuditBus;
use rollback_guard::retry::RetryPolicy;
use rollback_guard::Policy;
use serde_json::json;

/// What `guard request` asks for, and where it sends it.
pub(crate) struct Asked<'a> {
    pub(crate) target: &'a str,
    pub(crate) action: &'a str,
    pub(crate) reason: &'a str,
    pub(crate) source: &'a str,
    pub(crate) bus: &'a str,
    /// The member account the target is in (else the credentials' own).
    pub(crate) account: Option<&'a str>,
}

/// Sends a request the guard will accept, or says why it would not.
pub(crate) async fn request(
    policy: &Policy,
    asked: &Asked<'_>,
    requested_by: Option<String>,
) -> Result<(), String> {
    let Asked {
        target,
        action,
        reason,
        source,
        bus: bus_name,
        account,
    } = *asked;
    let config = adapters::sdk_config().await;
    if let Some(a) = account {
        if policy.guard.member_role_in(a).is_none() {
            return Err(format!(
                "--account {a}: the guard may not act there (guard.accounts and guard.member_role)"
            ));
        }
    }
    // The target's account's Lambda: a member's through the operator's role.
    let aliases = ports_in(Some(policy), account).await?.ports.aliases;
    // The policy's target, or a function opted in to a fleet trigger (read from its tag).
    let t = operator::known_target(policy, aliases.as_ref(), &RetryPolicy::default(), target)
        .await
        .map_err(|e| format!("request refused: {e}"))?;
    let a = Action::parse(action).ok_or_else(|| {
        format!("unknown action `{action}`; expected rollback-alias or disable-ai")
    })?;
    if a == Action::RollbackAlias && t.alias.is_none() {
        return Err(format!("target `{target}` has no alias to roll back"));
    }
    if !policy.guard.request_sources.iter().any(|s| s == source) {
        return Err(format!("source `{source}` is not in the policy's guard.request_sources: the guard would reject the request"));
    }
    let requested_by = who(requested_by);
    // EventBridge names no principal on a custom event: the identity that sends it goes in.
    let sender = adapters::caller_arn(&config).await?;
    let event = AuditEvent {
        source: source.into(),
        detail_type: ROLLBACK_REQUESTED.into(),
        resources: Vec::new(),
        detail: match account {
            Some(a) => {
                json!({ "target": target, "action": action, "reason": reason, "requested_by": requested_by, "sender": sender, "account": a })
            }
            None => {
                json!({ "target": target, "action": action, "reason": reason, "requested_by": requested_by, "sender": sender })
            }
        },
    };
    let bus = EventBridgeAuditBus::new(EventBridgeClient::new(&config));
    RetryPolicy::default()
        .run("PutEvents", || bus.put(bus_name, &event))
        .await
        .map_err(|e| format!("request not sent: {e}"))?;
    let in_account = account
        .map(|a| format!(" in account {a}"))
        .unwrap_or_default();
    println!("requested {action} on {target}{in_account} (bus {bus_name}, source {source}, by {requested_by} as {sender})");
    Ok(())
}
