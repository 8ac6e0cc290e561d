//! One central guard acting in member accounts, on the emulator, with the real clients: the
//! member role assumed through STS (the emulator takes the account from the role ARN and keeps
//! accounts apart; it does not enforce trust policies, so who may assume what is checked on the
//! templates, and a role that cannot be assumed is tested over fakes). EventBridge keeps a
//! member's `account` on a forwarded event; the emulator does not, so the forwarded envelopes
//! are built here.

use guard_e2e::{event_text, forwarded, home, unique, Emulator, ACCOUNT};
use rollback_guard::adapters::{self, AssumeRoleMembers};
use rollback_guard::guard::Outcome;
use rollback_guard::{Guard, Policy};
use serde_json::Value;
use std::sync::Arc;

const A: &str = "222222222222";
const B: &str = "333333333333";

fn policy(prefix: &str, accounts: &[&str]) -> Policy {
    let listed: Vec<String> = accounts.iter().map(|a| format!("\"{a}\"")).collect();
    Policy::from_toml(&format!(
        r#"
[guard]
accounts = [{}]
member_role = "arn:aws:iam::{{account}}:role/rollback-guard-member"

[[trigger]]
alarm = "{prefix}*"
target = "from-alarm"
action = "rollback-alias"
"#,
        listed.join(", ")
    ))
    .expect("policy")
}

#[tokio::test]
async fn each_members_alias_moves_in_its_own_account_and_strangers_are_refused() {
    let central = Emulator::connect().await;
    let (a, b) = (Emulator::connect_as(A).await, Emulator::connect_as(B).await);
    let function = unique("payments");
    let prefix = format!("guarded-{function}-");
    let alarm = format!("{prefix}errors");
    for emu in [&central, &a, &b] {
        emu.protected(&function, &alarm).await.expect("function");
    }
    let members = Arc::new(AssumeRoleMembers::new(&central.config, &home()));
    let central_state = format!("{function}-state");
    let guard = Guard::new(
        policy(&prefix, &[ACCOUNT, A, B]),
        central
            .ports_with_state(&central_state)
            .await
            .expect("ports"),
        home(),
    )
    .with_members(members.clone());

    let from_a = forwarded(
        "eventbridge-fleet-alarm.json",
        "guarded-payments-error-rate",
        &function,
        &alarm,
        A,
    );
    let report = guard.handle(&from_a, false).await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(a.alias(&function, "live").await.expect("alias"), "2");
    assert_eq!(b.alias(&function, "live").await.expect("alias"), "3");
    assert_eq!(central.alias(&function, "live").await.expect("alias"), "3");
    // The record is the central guard's, kept under the member account; the member's
    // function carries only its opt-in.
    let key = rollback_guard::state::StateKey::new(A, &function, Some("live"));
    let state = guard_e2e::read_state(&central_state, &key).await;
    assert!(state.last.is_some(), "{state:?}");
    assert_eq!(a.tags(&function).await.expect("tags").len(), 1);

    let from_b = forwarded(
        "sns-fleet-alarm.json",
        "guarded-shipping-errors",
        &function,
        &alarm,
        B,
    );
    let report = guard.handle(&from_b, false).await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(b.alias(&function, "live").await.expect("alias"), "2");
    assert_eq!(central.alias(&function, "live").await.expect("alias"), "3");
    assert_eq!(members.assume_role_calls(), 2);

    // An envelope saying A around an alarm of B, and an account the policy does not list:
    // rejected, no role assumed.
    let mut forged = forwarded(
        "eventbridge-fleet-alarm.json",
        "guarded-payments-error-rate",
        &function,
        &alarm,
        B,
    );
    forged["account"] = A.into();
    let stranger = forwarded(
        "eventbridge-fleet-alarm.json",
        "guarded-payments-error-rate",
        &function,
        &alarm,
        "444444444444",
    );
    for event in [forged, stranger] {
        let report = guard.handle(&event, false).await;
        assert_eq!(report.outcome, Outcome::Rejected, "{}", report.reason);
    }
    assert_eq!(members.assume_role_calls(), 2);
    assert_eq!(central.alias(&function, "live").await.expect("alias"), "3");
}

/// A hundred member accounts: the schedule checks each (one DescribeAlarms there) twice; each
/// role is assumed once, while its credentials last.
#[tokio::test]
async fn a_hundred_accounts_assume_each_role_once() {
    let central = Emulator::connect().await;
    let accounts: Vec<String> = (0..100)
        .map(|i| format!("{}", 500_000_000_000u64 + i))
        .collect();
    let mut listed: Vec<&str> = accounts.iter().map(String::as_str).collect();
    listed.push(ACCOUNT);
    let prefix = format!("guarded-{}-", unique("hundred"));
    let members = Arc::new(AssumeRoleMembers::new(&central.config, &home()));
    let guard = Guard::new(
        policy(&prefix, &listed),
        adapters::aws_ports(&central.config),
        home(),
    )
    .with_members(members.clone());
    let schedule: Value = serde_json::from_str(&event_text("schedule.json")).expect("json");
    for _ in 0..2 {
        let check = guard.handle(&schedule, false).await;
        assert_ne!(check.outcome, Outcome::Failed, "{:#?}", check.steps);
    }
    assert_eq!(members.assume_role_calls(), 100);
}
