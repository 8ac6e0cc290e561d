//! A bad day on the emulator: the claim table (a DynamoDB conditional write) as the guard's
//! instances share it, and a batch of alarm events — two alarms on each function, split
//! between two instances as the queue's pollers split them — moving each alias once, the
//! instances held to their share of the quotas.

use guard_e2e::{home, unique, Emulator};
use rollback_guard::adapters::{self, DynamoClaims};
use rollback_guard::claims::{Claim, Claims};
use rollback_guard::quota::Share;
use rollback_guard::{Guard, Outcome, Policy};
use serde_json::Value;
use std::sync::Arc;

fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    s.parse().expect("a time")
}

#[tokio::test]
async fn a_claim_is_taken_once_held_against_others_and_given_back() {
    let emu = Emulator::connect().await;
    let table = unique("claims");
    emu.claim_table(&table).await.expect("table");
    let claims = DynamoClaims::new(aws_sdk_dynamodb::Client::new(&emu.config), &table);
    let (t0, end) = (at("2026-11-20T03:13:00Z"), at("2026-11-20T03:43:00Z"));
    assert_eq!(claims.claim("acct:f", "a", t0, end).await, Ok(None));
    // The same cause again: its own.
    assert_eq!(claims.claim("acct:f", "a", t0, end).await, Ok(None));
    let t1 = at("2026-11-20T03:14:00Z");
    assert_eq!(
        claims.claim("acct:f", "b", t1, end).await,
        Ok(Some(Claim {
            cause: "a".into(),
            at: t0
        }))
    );
    // Another's release leaves it; its holder's frees it.
    claims.release("acct:f", "b").await.expect("release");
    assert!(claims
        .claim("acct:f", "b", t1, end)
        .await
        .expect("claim")
        .is_some());
    claims.release("acct:f", "a").await.expect("release");
    assert_eq!(claims.claim("acct:f", "b", t1, end).await, Ok(None));
    // Once it has ended, anyone.
    let later = at("2026-11-20T03:44:00Z");
    assert_eq!(claims.claim("acct:f", "c", later, later).await, Ok(None));
}

#[tokio::test]
async fn two_alarms_on_each_function_split_between_instances_move_each_alias_once() {
    let emu = Emulator::connect().await;
    let prefix = unique("badday");
    let table = format!("{prefix}-claims");
    emu.claim_table(&table).await.expect("table");
    let functions = 8;
    let mut batches: [Vec<Value>; 2] = [Vec::new(), Vec::new()];
    for i in 0..functions {
        let function = format!("{prefix}-f{i}");
        let alarms: Vec<String> = (0..2)
            .map(|k| format!("guarded-{prefix}-f{i}-alarm{k}"))
            .collect();
        let events = emu
            .guarded_function(&function, &alarms)
            .await
            .expect("a guarded function");
        // The pollers split them: each function's two alarms in two instances.
        for (batch, event) in batches.iter_mut().zip(events) {
            batch.push(event);
        }
    }
    let policy = Policy::from_toml(&format!(
        "[[trigger]]\nalarm = \"guarded-{prefix}-*\"\ntarget = \"from-alarm\"\naction = \"rollback-alias\"\n"
    ))
    .expect("policy");
    let claims: Arc<dyn Claims> = Arc::new(DynamoClaims::new(
        aws_sdk_dynamodb::Client::new(&emu.config),
        &table,
    ));
    let instance = || {
        Guard::new(policy.clone(), adapters::aws_ports(&emu.config), home())
            .with_quota_share(Share::per_instance(&policy.guard, 2))
            .with_claims(claims.clone())
    };
    let (one, two) = (instance(), instance());
    let texts: Vec<Vec<String>> = batches
        .iter()
        .map(|b| b.iter().map(Value::to_string).collect())
        .collect();
    let bodies: Vec<Vec<&[u8]>> = texts
        .iter()
        .map(|b| b.iter().map(|t| t.as_bytes()).collect())
        .collect();
    let (first, second) = tokio::join!(one.handle_batch(&bodies[0]), two.handle_batch(&bodies[1]));

    let executed = first
        .iter()
        .chain(&second)
        .filter(|r| r.outcome == Outcome::Executed)
        .count();
    assert_eq!(executed, functions, "one action a function");
    for r in first.iter().chain(&second) {
        assert!(
            matches!(
                r.outcome,
                Outcome::Executed | Outcome::Skipped | Outcome::AlreadyDone
            ),
            "{:?}: {}",
            r.outcome,
            r.reason
        );
    }
    for i in 0..functions {
        let function = format!("{prefix}-f{i}");
        assert_eq!(
            emu.alias(&function, "live").await.expect("alias"),
            "2",
            "{function} moved once, to the version before"
        );
    }
}
