//! One guard for many accounts, over fakes: a listed member account's events act there, through
//! its member role, and nowhere else; an unlisted account is rejected before any role is
//! assumed; a role that cannot be assumed is `Rollback Failed` naming the account and the role,
//! and holds no other account back; a target named in one account is not moved by another's
//! alarm; the schedule checks every member account.

use crate::fleet::served;
use chrono::Duration;
use rollback_guard::fakes::{FakeBackends, FakeLambda, FakeMembers};
use rollback_guard::fleet::PROTECT_TAG;
use rollback_guard::rollback::AliasState;
use rollback_guard::transition::AlarmState;
use rollback_guard::watched::{Watched, WatchedAlias};
use rollback_guard::{Guard, Outcome, Policy};
use serde_json::Value;
use std::sync::Arc;

const CENTRAL: &str = "123456789012";
const A: &str = "222222222222";
const B: &str = "333333333333";
const ROLE: &str = "arn:aws:iam::{account}:role/rollback-guard-member";

fn policy() -> Policy {
    Policy::from_toml(&format!(
        r#"
[guard]
accounts = ["{CENTRAL}", "{A}", "{B}"]
member_role = "{ROLE}"
notify_topic_arn = "arn:aws:sns:us-east-1:{CENTRAL}:rollback-guard"

[[target]]
name = "ledger"
function = "ledger"
alias = "live"
account = "{B}"

[[trigger]]
alarm = "ledger-*"
target = "ledger"
action = "rollback-alias"

[[trigger]]
alarm = "guarded-*"
target = "from-alarm"
action = "rollback-alias"
"#
    ))
    .expect("policy")
}

/// `payments` (opted in, live on 3 of 3) in the central account and in A and B; `ledger`
/// (live on 3) in B; every fleet alarm in ALARM in each.
struct World {
    central: FakeBackends,
    members: Arc<FakeMembers>,
    lambda: [Arc<FakeLambda>; 2],
    guard: Guard,
}

fn payments() -> FakeLambda {
    let lambda = FakeLambda::default().with_function("payments", 3, "live", AliasState::on("3"));
    lambda.set_tag("payments", PROTECT_TAG, "live");
    lambda
}

fn world() -> World {
    let central = FakeBackends::new(
        payments(),
        "guarded-payments-error-rate",
        "2026-11-20T03:13:00Z".parse().expect("time"),
    );
    let members = Arc::new(FakeMembers::default());
    let a = Arc::new(payments());
    let b = Arc::new(payments().with_function("ledger", 3, "live", AliasState::on("3")));
    for (account, lambda) in [(A, &a), (B, &b)] {
        let alarms = members.add(account, lambda.clone());
        for alarm in [
            "guarded-payments-error-rate",
            "guarded-payments-canary-errors",
            "guarded-payments-errors",
            "ledger-error-rate",
        ] {
            alarms.set(alarm, AlarmState::Alarm);
        }
        alarms.set_watched("guarded-payments-error-rate", payments_live(None));
        alarms.set_watched("guarded-payments-errors", payments_live(None));
        alarms.set_watched("guarded-payments-canary-errors", payments_live(Some("4")));
    }
    central
        .alarms
        .set_watched("guarded-payments-error-rate", payments_live(None));
    let guard = central.guard(policy()).with_members(members.clone());
    World {
        central,
        members,
        lambda: [a, b],
        guard,
    }
}

/// What the fleet alarms on `payments:live` watch (a canary's: one version of it).
fn payments_live(version: Option<&str>) -> Watched {
    Watched::Alias(WatchedAlias {
        function: "payments".into(),
        alias: "live".into(),
        version: version.map(str::to_string),
    })
}

/// A catalog event, as forwarded from `account` (envelope and alarm ARN).
fn from(account: &str, file: &str) -> Value {
    let text = std::fs::read_to_string(format!("{}/../events/{file}", env!("CARGO_MANIFEST_DIR")))
        .expect("event");
    serde_json::from_str(&text.replace(CENTRAL, account)).expect("json")
}

#[tokio::test]
async fn each_member_accounts_alias_moves_in_that_account_only() {
    let w = world();
    let report = w
        .guard
        .handle(&from(A, "eventbridge-fleet-alarm.json"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(report.account.as_deref(), Some(A));
    assert_eq!(served(&w.lambda[0], "payments"), "version 2");
    assert_eq!(served(&w.lambda[1], "payments"), "version 3");
    assert_eq!(served(&w.central.lambda, "payments"), "version 3");
    // The record is the central guard's, under the member's account; the announcement is
    // central and names it.
    let key = rollback_guard::state::StateKey::new(A, "payments", Some("live"));
    assert!(w.central.state.get(&key).last.is_some());
    assert!(w.lambda[0]
        .tags_of("payments")
        .keys()
        .all(|k| k == PROTECT_TAG));
    let own = rollback_guard::state::StateKey::new(CENTRAL, "payments", Some("live"));
    assert!(w.central.state.get(&own).is_empty());
    let sent = w.central.notifier.sent();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0]
            .1
            .message
            .contains(&format!("account {A}, us-east-1")),
        "{}",
        sent[0].1.message
    );

    let report = w
        .guard
        .handle(
            &from(B, "lambda-action-fleet-canary.json")
                .to_string()
                .replace("billing", "payments")
                .parse::<Value>()
                .expect("json"),
            false,
        )
        .await;
    // B's payments serves 3 alone: the canary the alarm watches (version 4) is not served.
    assert_eq!(report.outcome, Outcome::AlreadyDone, "{}", report.reason);
    // One role assumed per account, however many events.
    let again = w
        .guard
        .handle(
            &from(A, "sns-fleet-alarm.json")
                .to_string()
                .replace("shipping", "payments")
                .parse::<Value>()
                .expect("json"),
            false,
        )
        .await;
    assert_eq!(
        again.outcome,
        Outcome::Skipped,
        "cooldown: {}",
        again.reason
    );
    let asked: Vec<String> = w.members.asked().into_iter().map(|(a, _)| a).collect();
    assert_eq!(asked, vec![A.to_string(), B.to_string()]);
    assert_eq!(
        w.members.asked()[0].1,
        format!("arn:aws:iam::{A}:role/rollback-guard-member")
    );
}

#[tokio::test]
async fn an_unlisted_account_or_a_mismatched_envelope_is_rejected_before_any_role() {
    let w = world();
    let unlisted = w
        .guard
        .handle(&from("444444444444", "eventbridge-fleet-alarm.json"), false)
        .await;
    assert_eq!(unlisted.outcome, Outcome::Rejected);
    assert!(
        unlisted
            .reason
            .contains("444444444444 is not in guard.accounts"),
        "{}",
        unlisted.reason
    );
    // An envelope saying A around an alarm of B.
    let mut forged = from(B, "eventbridge-fleet-alarm.json");
    forged["account"] = A.into();
    let forged = w.guard.handle(&forged, false).await;
    assert_eq!(forged.outcome, Outcome::Rejected);
    assert!(
        forged.reason.contains("does not match the alarm ARN"),
        "{}",
        forged.reason
    );
    assert!(w.members.asked().is_empty());
    assert!(w.lambda.iter().all(|l| l.calls().is_empty()));
}

#[tokio::test]
async fn a_role_that_cannot_be_assumed_fails_naming_it_and_holds_no_other_account_back() {
    let w = world();
    w.members.refuse(A);
    let failed = w
        .guard
        .handle(&from(A, "eventbridge-fleet-alarm.json"), false)
        .await;
    assert_eq!(failed.outcome, Outcome::Failed);
    assert!(failed.reason.contains(A), "{}", failed.reason);
    assert!(
        failed
            .reason
            .contains(&format!("arn:aws:iam::{A}:role/rollback-guard-member")),
        "{}",
        failed.reason
    );
    assert_eq!(w.central.audit.detail_types(), vec!["Rollback Failed"]);
    assert_eq!(w.central.notifier.sent().len(), 1);
    let acted = w
        .guard
        .handle(&from(B, "eventbridge-fleet-alarm.json"), false)
        .await;
    assert_eq!(acted.outcome, Outcome::Executed, "{}", acted.reason);
    assert_eq!(served(&w.lambda[1], "payments"), "version 2");
    assert_eq!(served(&w.lambda[0], "payments"), "version 3");
}

#[tokio::test]
async fn a_target_named_in_one_account_is_moved_by_that_accounts_alarms_only() {
    let w = world();
    let ledger = |account: &str| {
        let text = from(account, "eventbridge-alarm.json")
            .to_string()
            .replace("orders-ai", "ledger");
        serde_json::from_str::<Value>(&text).expect("json")
    };
    // A's alarm of the same name is not the named trigger's (its target is in B): no trigger
    // of the policy is about it, and nothing moves anywhere.
    let elsewhere = w.guard.handle(&ledger(A), false).await;
    assert_eq!(elsewhere.outcome, Outcome::Ignored, "{}", elsewhere.reason);
    assert_eq!(served(&w.lambda[1], "ledger"), "version 3");
    let acted = w.guard.handle(&ledger(B), false).await;
    assert_eq!(acted.outcome, Outcome::Executed, "{}", acted.reason);
    assert_eq!(served(&w.lambda[1], "ledger"), "version 2");
}

#[tokio::test]
async fn the_schedule_checks_every_member_account_and_names_the_one_it_cannot() {
    let w = world();
    w.members.refuse(A);
    // B's payments has been blind for hours.
    let b_alarms = w.members.add(B, w.lambda[1].clone());
    b_alarms.set_since(
        "guarded-payments-error-rate",
        AlarmState::InsufficientData,
        "2026-11-20T01:00:00Z".parse().expect("time"),
    );
    b_alarms.set_watched(
        "guarded-payments-error-rate",
        Watched::Alias(WatchedAlias {
            function: "payments".into(),
            alias: "live".into(),
            version: None,
        }),
    );
    w.central.clock.advance(Duration::minutes(1));
    let check = w.guard.handle(&from(CENTRAL, "schedule.json"), false).await;
    let failed: Vec<_> = check
        .steps
        .iter()
        .filter(|s| s.outcome == Outcome::Failed)
        .collect();
    assert_eq!(failed.len(), 1, "{:#?}", check.steps);
    assert_eq!(failed[0].account.as_deref(), Some(A));
    let blind: Vec<_> = check
        .steps
        .iter()
        .filter(|s| s.reason.starts_with("blind:"))
        .collect();
    assert_eq!(blind.len(), 1, "{:#?}", check.steps);
    assert_eq!(blind[0].account.as_deref(), Some(B));
    // The check fails (the handler's error); B's warning is the one notification.
    assert_eq!(check.outcome, Outcome::Failed);
    assert_eq!(w.central.notifier.sent().len(), 1);
}

/// A person's request names the member account its target is in: the guard acts there,
/// through the member role, and nowhere else; an unlisted account is rejected, and a request
/// naming no account acts in the sender's.
#[tokio::test]
async fn a_request_naming_a_member_account_acts_there() {
    let w = world();
    let request = |account: Option<&str>, target: &str| {
        let mut e: Value =
            serde_json::from_str(&crate::support::text("request-rollback.json")).expect("json");
        e["detail"]["target"] = target.into();
        e["id"] = format!("req-{}-{target}", account.unwrap_or("none")).into();
        if let Some(a) = account {
            e["detail"]["account"] = a.into();
        }
        e
    };
    let mut policy = policy();
    policy.guard.request_sources = vec!["rollback-guard.cli".into()];
    let guard = w.central.guard(policy).with_members(w.members.clone());
    let report = guard.handle(&request(Some(A), "payments"), false).await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(served(&w.lambda[0], "payments"), "version 2");
    assert_eq!(served(&w.lambda[1], "payments"), "version 3");
    assert_eq!(served(&w.central.lambda, "payments"), "version 3");
    assert!(
        report
            .alarm
            .as_deref()
            .is_some_and(|l| l.contains(&format!("from account {CENTRAL} for account {A}"))),
        "{:?}",
        report.alarm
    );
    // A named target in B, asked for in B.
    let ledger = guard.handle(&request(Some(B), "ledger"), false).await;
    assert_eq!(ledger.outcome, Outcome::Executed, "{}", ledger.reason);
    assert_eq!(served(&w.lambda[1], "ledger"), "version 2");
    // An account not listed: rejected, nothing moved.
    let unlisted = guard
        .handle(&request(Some("444444444444"), "payments"), false)
        .await;
    assert_eq!(unlisted.outcome, Outcome::Rejected, "{}", unlisted.reason);
    assert!(
        unlisted.reason.contains("444444444444"),
        "{}",
        unlisted.reason
    );
    // Not an account id: refused at intake.
    let bad = guard
        .handle(&request(Some("ledger"), "payments"), false)
        .await;
    assert_eq!(bad.outcome, Outcome::Rejected, "{}", bad.reason);
    assert!(
        bad.reason.contains("is not an account id"),
        "{}",
        bad.reason
    );
    // No account: the sender's own.
    let own = guard.handle(&request(None, "payments"), false).await;
    assert_eq!(own.outcome, Outcome::Executed, "{}", own.reason);
    assert_eq!(served(&w.central.lambda, "payments"), "version 2");
}
