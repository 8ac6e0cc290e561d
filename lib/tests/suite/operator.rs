//! `guard mark-stable` over fakes: it records a version only when it is one the alias can be
//! rolled back to, and refuses everything else without writing anything.

use rollback_guard::fakes::{FakeBackends, FakeLambda};
use rollback_guard::operator::{mark_stable, OperatorError};
use rollback_guard::rollback::AliasState;

fn backends(on: AliasState) -> FakeBackends {
    let lambda = FakeLambda::default().with_function("orders-ai", 3, "live", on);
    FakeBackends::new(
        lambda,
        "unused",
        "2026-11-20T03:13:00Z".parse().expect("time"),
    )
}

fn canary() -> FakeBackends {
    let mut on = AliasState::on("2");
    on.weights.insert("3".into(), 0.1);
    backends(on)
}

async fn mark(b: &FakeBackends, version: Option<&str>) -> Result<String, OperatorError> {
    mark_stable(&b.operating(), "orders-ai", "live", version).await
}

#[tokio::test]
async fn mark_stable_refuses_what_is_not_a_stable_version_and_writes_nothing() {
    let b = canary();
    for (version, why) in [
        (None, "mid-canary"),
        (Some("$LATEST"), "$LATEST is mutable"),
        (
            Some("9"),
            "version 9 of orders-ai does not exist (published: 1, 2, 3)",
        ),
    ] {
        match mark(&b, version).await {
            Err(OperatorError::Refused(refusal)) => assert!(refusal.contains(why), "{refusal}"),
            other => panic!("{version:?}: expected a refusal, got {other:?}"),
        }
    }
    assert!(b.state.writes().is_empty());
    assert!(b.lambda.tags_of("orders-ai").is_empty());
}

#[tokio::test]
async fn mark_stable_records_the_named_version_or_the_one_the_alias_serves() {
    let b = canary();
    assert_eq!(mark(&b, Some("2")).await, Ok("2".into()));
    assert_eq!(b.state_of("orders-ai", "live").stable.as_deref(), Some("2"));
    let b = backends(AliasState::on("3"));
    assert_eq!(mark(&b, None).await, Ok("3".into()));
    assert_eq!(b.state_of("orders-ai", "live").stable.as_deref(), Some("3"));
    // Nothing of the guard's goes to the function's tags.
    assert!(b.lambda.tags_of("orders-ai").is_empty());
}
