//! A bad day on the emulator: the state table (DynamoDB conditional writes) as the guard's
//! instances share it, and a batch of alarm events — two alarms on each function, split
//! between two instances as the queue's pollers split them — moving each alias once, the
//! instances held to their share of the quotas.

use guard_e2e::{home, unique, Emulator, ACCOUNT};
use rollback_guard::ports::{PortError, StateStore};
use rollback_guard::quota::Share;
use rollback_guard::state::{Claim, StateKey, TargetState};
use rollback_guard::{Guard, Outcome, Policy};
use serde_json::Value;
use std::sync::Arc;

#[tokio::test]
async fn a_state_item_is_written_only_over_the_revision_its_writer_read() {
    let emu = Emulator::connect().await;
    let table = emu.state_table(&unique("state")).await.expect("table");
    let key = StateKey::new(ACCOUNT, "f", Some("live"));
    assert_eq!(table.read(&key).await, Ok((TargetState::default(), 0)));
    let at = "2026-11-20T03:13:00Z".parse().expect("time");
    let claimed = TargetState {
        claim: Some(Claim {
            cause: "a".into(),
            at,
            until: at + chrono::TimeDelta::minutes(30),
        }),
        ..TargetState::default()
    };
    assert_eq!(table.write(&key, &claimed, 0).await, Ok(1));
    // A second writer that read nothing (or an older revision) loses.
    let other = TargetState {
        stable: Some("2".into()),
        ..TargetState::default()
    };
    assert!(matches!(
        table.write(&key, &other, 0).await,
        Err(PortError::RevisionChanged(_))
    ));
    assert_eq!(table.read(&key).await, Ok((claimed.clone(), 1)));
    assert_eq!(table.write(&key, &other, 1).await, Ok(2));
    let all = table.all().await.expect("all");
    assert_eq!(all, vec![(key, other)]);
}

#[tokio::test]
async fn two_alarms_on_each_function_split_between_instances_move_each_alias_once() {
    let emu = Emulator::connect().await;
    let prefix = unique("badday");
    let table = format!("{prefix}-state");
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
    let ports = emu.ports_with_state(&table).await.expect("ports");
    let instance = || {
        Guard::new(policy.clone(), ports.clone(), home())
            .with_quota_share(Share::per_instance(&policy.guard, 2))
    };
    let (one, two) = (Arc::new(instance()), Arc::new(instance()));
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

/// A message of a batch the guard could not settle is made visible again at once (here: no
/// delay), as the function asks after each batch, instead of after the queue's timeout.
#[tokio::test]
async fn a_failed_message_comes_back_when_the_guard_says() {
    use rollback_guard::ports::AlarmQueue;
    let emu = Emulator::connect().await;
    let (url, arn) = emu.queue(&unique("alarms")).await.expect("queue");
    emu.sqs
        .set_queue_attributes()
        .queue_url(&url)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "1800",
        )
        .send()
        .await
        .expect("timeout");
    emu.sqs
        .send_message()
        .queue_url(&url)
        .message_body("{}")
        .send()
        .await
        .expect("send");
    let receive = || emu.sqs.receive_message().queue_url(&url).send();
    let first = receive().await.expect("receive");
    let receipt = first.messages()[0]
        .receipt_handle()
        .expect("receipt")
        .to_string();
    assert!(
        receive().await.expect("receive").messages().is_empty(),
        "hidden"
    );
    let queue = rollback_guard::adapters::SqsAlarmQueue::new(emu.sqs.clone());
    queue
        .retry_after(&arn, &[receipt], std::time::Duration::ZERO)
        .await
        .expect("visible again");
    assert_eq!(receive().await.expect("receive").messages().len(), 1);
}
