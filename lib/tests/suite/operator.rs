//! `guard mark-stable` over fakes: it records a version only when it is one the alias can be
//! rolled back to, and refuses everything else without writing a tag.

use rollback_guard::fakes::FakeLambda;
use rollback_guard::operator::{mark_stable, OperatorError};
use rollback_guard::record::stable_tag;
use rollback_guard::retry::RetryPolicy;
use rollback_guard::rollback::AliasState;

fn canary() -> FakeLambda {
    let mut on = AliasState::on("2");
    on.weights.insert("3".into(), 0.1);
    FakeLambda::default().with_function("orders-ai", 3, "live", on)
}

async fn mark(lambda: &FakeLambda, version: Option<&str>) -> Result<String, OperatorError> {
    mark_stable(
        lambda,
        &RetryPolicy::default(),
        "orders-ai",
        "live",
        version,
    )
    .await
}

#[tokio::test]
async fn mark_stable_refuses_what_is_not_a_stable_version_and_writes_nothing() {
    let lambda = canary();
    for (version, why) in [
        (None, "mid-canary"),
        (Some("$LATEST"), "$LATEST is mutable"),
        (
            Some("9"),
            "version 9 of orders-ai does not exist (published: 1, 2, 3)",
        ),
    ] {
        match mark(&lambda, version).await {
            Err(OperatorError::Refused(refusal)) => assert!(refusal.contains(why), "{refusal}"),
            other => panic!("{version:?}: expected a refusal, got {other:?}"),
        }
    }
    assert!(lambda.tags_of("orders-ai").is_empty());
    assert_eq!(lambda.count_calls("TagResource"), 0);
}

#[tokio::test]
async fn mark_stable_records_the_named_version_or_the_one_the_alias_serves() {
    let lambda = canary();
    assert_eq!(mark(&lambda, Some("2")).await, Ok("2".into()));
    assert_eq!(
        lambda.tags_of("orders-ai").get(&stable_tag("live")),
        Some(&"2".to_string())
    );
    let lambda = FakeLambda::default().with_function("orders-ai", 3, "live", AliasState::on("3"));
    assert_eq!(mark(&lambda, None).await, Ok("3".into()));
    assert_eq!(
        lambda.tags_of("orders-ai").get(&stable_tag("live")),
        Some(&"3".to_string())
    );
}
