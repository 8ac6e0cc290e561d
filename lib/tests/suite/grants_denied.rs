//! What the guard does when AWS answers AccessDenied to a call its templates grant (moto
//! enforces no IAM, so these run over aws-smithy-mocks): a grant that does not match (a
//! condition, a resource, an SCP) is a failure people hear of, and changes nothing it was not
//! meant to.

use crate::support::{event, policy};
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use rollback_guard::adapters::{DynamoState, EventBridgeAuditBus, SqsAlarmQueue};
use rollback_guard::fakes::{fast_retry, home, FakeBackends, FakeLambda};
use rollback_guard::ports::{AlarmQueue, PortError, StateStore};
use rollback_guard::rollback::AliasState;
use rollback_guard::state::StateKey;
use rollback_guard::{Guard, Outcome};
use std::sync::Arc;

const DENIED_DYNAMO: &str = r#"{"__type":"com.amazon.coral.service#AccessDeniedException","Message":"User: arn:aws:sts::123456789012:assumed-role/rg-guard/x is not authorized to perform: dynamodb:PutItem on resource: arn:aws:dynamodb:us-east-1:123456789012:table/rg-state"}"#;
const DENIED_EVENTS: &str = r#"{"__type":"AccessDeniedException","message":"User: arn:aws:sts::123456789012:assumed-role/rg-guard/x is not authorized to perform: events:PutEvents on resource: arn:aws:events:us-east-1:123456789012:event-bus/rg-audit because no identity-based policy allows the events:PutEvents action"}"#;

fn backends() -> FakeBackends {
    let lambda = FakeLambda::default().with_function("orders-ai", 3, "live", AliasState::on("3"));
    FakeBackends::new(
        lambda,
        "orders-ai-error-rate",
        "2026-11-20T03:13:00Z".parse().expect("t"),
    )
}

/// A guard over `b` whose state table is DynamoDB answering as `rules` say.
fn guard_with_table(b: &FakeBackends, rules: &[&aws_smithy_mocks::Rule]) -> Guard {
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, rules, |c| c
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled()));
    let mut ports = b.ports();
    ports.state = Arc::new(DynamoState::new(client, "rg-state"));
    Guard::new(policy(), ports, home()).with_retry(fast_retry())
}

#[tokio::test]
async fn a_state_table_the_guard_may_not_read_is_a_failure_with_no_move() {
    let b = backends();
    let read = mock!(aws_sdk_dynamodb::Client::get_item)
        .sequence()
        .http_status(400, Some(DENIED_DYNAMO.into()))
        .times(10)
        .build();
    let report = guard_with_table(&b, &[&read])
        .handle(&event("eventbridge-alarm.json"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.reason);
    assert!(report.reason.contains("access denied"), "{}", report.reason);
    assert_eq!(b.lambda.alias_updates(), 0);
    assert_eq!(b.notifier.sent().len(), 1, "people hear of it");
}

#[tokio::test]
async fn a_state_table_the_guard_may_not_write_is_a_failure_with_no_move() {
    let b = backends();
    let read =
        mock!(aws_sdk_dynamodb::Client::get_item).then_output(|| GetItemOutput::builder().build());
    let write = mock!(aws_sdk_dynamodb::Client::put_item)
        .sequence()
        .http_status(400, Some(DENIED_DYNAMO.into()))
        .times(10)
        .build();
    let report = guard_with_table(&b, &[&read, &write])
        .handle(&event("eventbridge-alarm.json"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.reason);
    assert!(report.reason.contains("access denied"), "{}", report.reason);
    assert_eq!(b.lambda.alias_updates(), 0);
    // The adapter sorts the answer as a refusal, not as something to retry.
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, &[&write]);
    let key = StateKey::new("123456789012", "orders-ai", Some("live"));
    let denied = DynamoState::new(client, "rg-state")
        .write(&key, &Default::default(), 0)
        .await;
    assert!(matches!(denied, Err(PortError::Denied(_))), "{denied:?}");
}

/// The guard's PutEvents grant holds only for its own source (`events:source`): an audit event
/// it may not put is a note on the report, and the handler fails so that it is seen.
#[tokio::test]
async fn an_audit_event_the_bus_refuses_is_reported_not_swallowed() {
    let b = backends();
    let put = mock!(aws_sdk_eventbridge::Client::put_events)
        .sequence()
        .http_status(400, Some(DENIED_EVENTS.into()))
        .times(10)
        .build();
    let client = mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, &[&put], |c| c
        .retry_config(aws_sdk_eventbridge::config::retry::RetryConfig::disabled()));
    let mut ports = b.ports();
    ports.audit = Arc::new(EventBridgeAuditBus::new(client));
    let report = Guard::new(policy(), ports, home())
        .with_retry(fast_retry())
        .handle(&event("eventbridge-alarm.json"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert!(report.is_error());
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("audit event not delivered") && n.contains("access denied")),
        "{:?}",
        report.notes
    );
}

/// The alarm queue's ChangeMessageVisibility refused: an error (the function logs it; the
/// message then comes back after the queue's own timeout).
#[tokio::test]
async fn a_queue_that_refuses_the_early_retry_says_so() {
    const DENIED_SQS: &str = r#"{"__type":"com.amazonaws.sqs#AccessDenied","message":"Access to the resource https://sqs.us-east-1.amazonaws.com/123456789012/rg-alarms is denied."}"#;
    let url = mock!(aws_sdk_sqs::Client::get_queue_url)
        .sequence()
        .http_status(403, Some(DENIED_SQS.into()))
        .times(2)
        .build();
    let client = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, &[&url]);
    let denied = SqsAlarmQueue::new(client)
        .retry_after(
            "arn:aws:sqs:us-east-1:123456789012:rg-alarms",
            &["r".into()],
            std::time::Duration::from_secs(60),
        )
        .await;
    assert!(matches!(denied, Err(PortError::Denied(_))), "{denied:?}");
}

/// `CountRollbacks` grants UpdateItem on the counts' keys only (dynamodb:LeadingKeys): a count
/// AWS refuses is a failure people hear of, with no move and no plan left behind.
#[tokio::test]
async fn a_rollback_count_the_table_refuses_is_a_failure_with_no_move() {
    let b = backends();
    let read =
        mock!(aws_sdk_dynamodb::Client::get_item).then_output(|| GetItemOutput::builder().build());
    let write = mock!(aws_sdk_dynamodb::Client::put_item)
        .then_output(|| aws_sdk_dynamodb::operation::put_item::PutItemOutput::builder().build());
    let count = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.key()
                .and_then(|k| k.get("target"))
                .and_then(|v| v.as_s().ok())
                .is_some_and(|k| k.starts_with("#rollbacks#123456789012#"))
        })
        .sequence()
        .http_status(400, Some(DENIED_DYNAMO.replace("PutItem", "UpdateItem")))
        .times(10)
        .build();
    let report = guard_with_table(&b, &[&read, &write, &count])
        .handle(&event("eventbridge-alarm.json"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.reason);
    assert!(
        report
            .reason
            .contains("cannot count the account's rollbacks this hour")
            && report.reason.contains("access denied"),
        "{}",
        report.reason
    );
    assert_eq!(b.lambda.alias_updates(), 0);
    assert_eq!(b.notifier.sent().len(), 1, "people hear of it");
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, &[&count]);
    let hour = "2026-11-20T03:00:00Z".parse().expect("t");
    let denied = DynamoState::new(client, "rg-state")
        .count_rollback("123456789012", hour, 20)
        .await;
    assert!(matches!(denied, Err(PortError::Denied(_))), "{denied:?}");
}

/// `FindShiftingDeployments` grants BatchGetDeployments on deployment groups: refused, the
/// judgement has the version's publish time alone, says so, and holds back (never acts on
/// evidence it could not read).
#[tokio::test]
async fn deployments_the_guard_may_not_read_leave_the_publish_time_and_say_so() {
    use aws_sdk_codedeploy::operation::list_deployments::ListDeploymentsOutput;
    use aws_sdk_codedeploy::types::DeploymentStatus;
    let b = backends();
    b.lambda
        .set_published_at("orders-ai", "3", "2026-11-10T03:00:00Z".parse().expect("t"));
    b.lambda.set_tag(
        "orders-ai",
        rollback_guard::codedeploy::APPLICATION_TAG,
        "orders",
    );
    b.lambda.set_tag(
        "orders-ai",
        rollback_guard::codedeploy::GROUP_TAG,
        "orders-live",
    );
    let none_shifting = mock!(aws_sdk_codedeploy::Client::list_deployments)
        .match_requests(|r| {
            !r.include_only_statuses()
                .contains(&DeploymentStatus::Succeeded)
        })
        .then_output(|| ListDeploymentsOutput::builder().build());
    let succeeded = mock!(aws_sdk_codedeploy::Client::list_deployments)
        .match_requests(|r| {
            r.include_only_statuses()
                .contains(&DeploymentStatus::Succeeded)
        })
        .then_output(|| {
            ListDeploymentsOutput::builder()
                .deployments("d-RELEASE003")
                .build()
        });
    const DENIED_CODEDEPLOY: &str = r#"{"__type":"AccessDeniedException","message":"User: arn:aws:sts::123456789012:assumed-role/rg-guard/x is not authorized to perform: codedeploy:BatchGetDeployments on resource: arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:orders/orders-live"}"#;
    let batch = mock!(aws_sdk_codedeploy::Client::batch_get_deployments)
        .sequence()
        .http_status(400, Some(DENIED_CODEDEPLOY.into()))
        .times(10)
        .build();
    let client = mock_client!(
        aws_sdk_codedeploy,
        RuleMode::MatchAny,
        &[&none_shifting, &succeeded, &batch],
        |c| c.retry_config(aws_sdk_codedeploy::config::retry::RetryConfig::disabled())
    );
    let mut ports = b.ports();
    ports.deployments = Arc::new(rollback_guard::adapters::CodeDeployDeployments::new(client));
    let report = Guard::new(policy(), ports, home())
        .with_retry(fast_retry())
        .handle(&event("eventbridge-alarm.json"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Skipped, "{}", report.reason);
    assert!(
        report
            .reason
            .contains("CodeDeploy could not be asked: access denied"),
        "{}",
        report.reason
    );
    assert_eq!(b.lambda.alias_updates(), 0);
    assert_eq!(b.notifier.sent().len(), 1, "people are paged");
}
