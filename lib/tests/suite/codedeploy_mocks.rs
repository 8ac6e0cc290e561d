//! The real CodeDeploy SDK client (aws-smithy-mocks) beside a faked Lambda: a deployment
//! shifting the alias is stopped with its rollback, never fought. The emulator has no
//! StopDeployment and no deployment targets, so these cases are proven here.

use crate::support::policy;
use aws_sdk_codedeploy::operation::get_deployment::GetDeploymentOutput;
use aws_sdk_codedeploy::operation::get_deployment_target::GetDeploymentTargetOutput;
use aws_sdk_codedeploy::operation::list_deployment_targets::ListDeploymentTargetsOutput;
use aws_sdk_codedeploy::operation::list_deployments::ListDeploymentsOutput;
use aws_sdk_codedeploy::operation::stop_deployment::StopDeploymentOutput;
use aws_sdk_codedeploy::types::{
    DeploymentInfo, DeploymentStatus, DeploymentTarget, DeploymentTargetType, LambdaFunctionInfo,
    LambdaTarget, RollbackInfo, StopStatus,
};
use aws_sdk_codedeploy::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use rollback_guard::adapters::CodeDeployDeployments;
use rollback_guard::fakes::{fast_retry, home, FakeBackends, FakeLambda};
use rollback_guard::rollback::AliasState;
use rollback_guard::{Guard, Outcome, Report};
use std::sync::{Arc, Mutex};

const SHIFTING: &str = "d-SHIFT0001";
const ROLLBACK: &str = "d-ROLLB0001";
const THROTTLED: &str = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
const DENIED: &str = r#"{"__type":"AccessDeniedException","message":"User: arn:aws:sts::123456789012:assumed-role/rollback-guard/guard is not authorized to perform: codedeploy:ListDeployments"}"#;
const COMPLETED: &str = r#"{"__type":"DeploymentAlreadyCompletedException","message":"The deployment is already complete."}"#;

fn alarm_event() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/eventbridge-alarm.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("event")).expect("json")
}

/// `orders-ai` with versions 1..=4 and `live` mid-deployment: 3, with 10 % on 4.
fn backends() -> FakeBackends {
    let mut split = AliasState::on("3");
    split.weights.insert("4".into(), 0.1);
    let lambda = FakeLambda::default().with_function("orders-ai", 4, "live", split);
    FakeBackends::new(
        lambda,
        "orders-ai-error-rate",
        "2026-11-20T03:13:00Z".parse().expect("time"),
    )
}

/// A guard on `backends`, its CodeDeploy the real client answering from `rules`.
fn guard(backends: &FakeBackends, rules: &[&[Rule]]) -> Guard {
    let refs: Vec<&Rule> = rules.iter().flat_map(|r| r.iter()).collect();
    let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, &refs, |c| c
        .retry_config(aws_sdk_codedeploy::config::retry::RetryConfig::disabled()));
    let mut ports = backends.ports();
    ports.deployments = Arc::new(CodeDeployDeployments::new(client));
    Guard::new(policy(), ports, home()).with_retry(fast_retry())
}

/// The deployment in progress, its one target.
fn found() -> Vec<Rule> {
    vec![
        mock!(Client::list_deployments).then_output(|| {
            ListDeploymentsOutput::builder()
                .deployments(SHIFTING)
                .build()
        }),
        mock!(Client::list_deployment_targets).then_output(|| {
            ListDeploymentTargetsOutput::builder()
                .target_ids("orders-ai:live")
                .build()
        }),
    ]
}

/// Its target: `alias` of orders-ai, from 3 to 4.
fn target_of(alias: &'static str) -> Rule {
    mock!(Client::get_deployment_target).then_output(move || target_output(alias))
}

fn target_output(alias: &str) -> GetDeploymentTargetOutput {
    let info = LambdaFunctionInfo::builder()
        .function_name("orders-ai")
        .function_alias(alias)
        .current_version("3")
        .target_version("4")
        .target_version_weight(0.1)
        .build();
    let target = LambdaTarget::builder()
        .deployment_id(SHIFTING)
        .target_id("orders-ai:live")
        .lambda_function_info(info)
        .build();
    GetDeploymentTargetOutput::builder()
        .deployment_target(
            DeploymentTarget::builder()
                .deployment_target_type(DeploymentTargetType::LambdaTarget)
                .lambda_target(target)
                .build(),
        )
        .build()
}

/// What StopDeployment was asked: (deployment, autoRollbackEnabled).
type Stops = Arc<Mutex<Vec<(String, Option<bool>)>>>;

fn stop(stops: &Stops) -> Rule {
    let stops = stops.clone();
    mock!(Client::stop_deployment).then_compute_output(move |req| {
        if let Ok(mut s) = stops.lock() {
            s.push((
                req.deployment_id().unwrap_or_default().to_string(),
                req.auto_rollback_enabled(),
            ));
        }
        StopDeploymentOutput::builder()
            .status(StopStatus::Pending)
            .build()
    })
}

fn deployment(status: DeploymentStatus, rollback: Option<&str>) -> GetDeploymentOutput {
    let mut info = DeploymentInfo::builder().status(status);
    if let Some(r) = rollback {
        info = info.rollback_info(RollbackInfo::builder().rollback_deployment_id(r).build());
    }
    GetDeploymentOutput::builder()
        .deployment_info(info.build())
        .build()
}

/// The stopped deployment names its rollback; the rollback is in progress once, then has put
/// the alias back on 3 and succeeded.
fn rollback_succeeds(lambda: &Arc<FakeLambda>) -> Vec<Rule> {
    let lambda = lambda.clone();
    vec![
        mock!(Client::get_deployment)
            .match_requests(|r| r.deployment_id() == Some(SHIFTING))
            .then_output(|| deployment(DeploymentStatus::Stopped, Some(ROLLBACK))),
        mock!(Client::get_deployment)
            .match_requests(|r| r.deployment_id() == Some(ROLLBACK))
            .sequence()
            .output(|| deployment(DeploymentStatus::InProgress, None))
            .output(move || {
                lambda.set_alias("orders-ai", "live", AliasState::on("3"));
                deployment(DeploymentStatus::Succeeded, None)
            })
            .build(),
    ]
}

fn alias(backends: &FakeBackends) -> AliasState {
    let mut a = backends.lambda.alias("orders-ai", "live").expect("alias");
    a.revision_id = None;
    a
}

fn codedeploy_lines(report: &Report) -> String {
    report.codedeploy.join(" | ")
}

#[tokio::test(start_paused = true)]
async fn a_deployment_shifting_the_alias_is_stopped_with_its_rollback_and_the_alias_verified() {
    let backends = backends();
    let stops = Stops::default();
    let guard = guard(
        &backends,
        &[
            &found(),
            &[target_of("live"), stop(&stops)],
            &rollback_succeeds(&backends.lambda),
        ],
    );

    let report = guard.handle(&alarm_event(), false).await;

    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(
        stops.lock().expect("stops").clone(),
        vec![(SHIFTING.to_string(), Some(true))]
    );
    // CodeDeploy moved the alias; the guard never did.
    assert_eq!(alias(&backends), AliasState::on("3"));
    assert_eq!(backends.lambda.alias_updates(), 0);
    assert_eq!(report.deployment.as_deref(), Some(SHIFTING));
    let record = backends
        .state_of("orders-ai", "live")
        .last
        .expect("a record");
    assert_eq!(record.deployment.as_deref(), Some(SHIFTING));
    assert_eq!(record.alias.expect("the alias").after, AliasState::on("3"));
    let sent = backends.notifier.sent();
    assert_eq!(sent.len(), 1);
    let n = &sent[0].1;
    assert!(
        n.subject
            .contains("CodeDeploy deployment d-SHIFT0001 stopped and rolled back"),
        "{}",
        n.subject
    );
    assert!(n.message.contains("To resume the release"), "{}", n.message);
    assert!(n.message.contains("CodeDeploy's rollback succeeded"));
    assert!(report
        .undo
        .as_deref()
        .is_some_and(|u| u.starts_with("deploy again")));
}

#[tokio::test(start_paused = true)]
async fn a_deployment_that_completes_before_the_stop_gets_the_guards_own_rollback() {
    let backends = backends();
    let lambda = backends.lambda.clone();
    // It completes between being found and being stopped: all traffic on 4.
    let completing = mock!(Client::get_deployment_target).then_output(move || {
        lambda.set_alias("orders-ai", "live", AliasState::on("4"));
        target_output("live")
    });
    let refused = mock!(Client::stop_deployment)
        .sequence()
        .http_status(400, Some(COMPLETED.into()))
        .build();
    let succeeded =
        mock!(Client::get_deployment).then_output(|| deployment(DeploymentStatus::Succeeded, None));
    let guard = guard(&backends, &[&found(), &[completing, refused, succeeded]]);

    let report = guard.handle(&alarm_event(), false).await;

    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    // The guard's own rollback, from where the deployment left the alias.
    assert_eq!(alias(&backends), AliasState::on("3"));
    assert_eq!(backends.lambda.alias_updates(), 1);
    assert_eq!(report.deployment, None);
    assert!(
        codedeploy_lines(&report).contains("completed before the guard could stop it"),
        "{}",
        codedeploy_lines(&report)
    );
}

#[tokio::test(start_paused = true)]
async fn a_deployment_of_another_alias_of_the_function_is_not_touched() {
    let backends = backends();
    let stops = Stops::default();
    let guard = guard(&backends, &[&found(), &[target_of("beta"), stop(&stops)]]);

    let report = guard.handle(&alarm_event(), false).await;

    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert!(stops.lock().expect("stops").is_empty());
    // The guard aborted the canary on its own.
    assert_eq!(alias(&backends), AliasState::on("3"));
    assert_eq!(backends.lambda.alias_updates(), 1);
    assert!(
        report.codedeploy.is_empty(),
        "{}",
        codedeploy_lines(&report)
    );
}

#[tokio::test(start_paused = true)]
async fn no_codedeploy_permission_is_the_guards_own_path_with_a_note() {
    let backends = backends();
    let denied = mock!(Client::list_deployments)
        .sequence()
        .http_status(400, Some(DENIED.into()))
        .build();
    let guard = guard(&backends, &[&[denied]]);

    let report = guard.handle(&alarm_event(), false).await;

    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(alias(&backends), AliasState::on("3"));
    let sent = backends.notifier.sent();
    assert_eq!(sent.len(), 1);
    let body = &sent[0].1.message;
    assert!(
        body.contains("CodeDeploy: the guard could not ask CodeDeploy"),
        "{body}"
    );
    assert!(body.contains("AccessDenied"), "{body}");
}

#[tokio::test(start_paused = true)]
async fn throttled_codedeploy_is_retried() {
    let backends = backends();
    let stops = Stops::default();
    let throttled = mock!(Client::list_deployments)
        .sequence()
        .http_status(400, Some(THROTTLED.into()))
        .times(2)
        .build();
    let guard = guard(
        &backends,
        &[
            &[throttled],
            &found(),
            &[target_of("live"), stop(&stops)],
            &rollback_succeeds(&backends.lambda),
        ],
    );

    let report = guard.handle(&alarm_event(), false).await;

    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(report.deployment.as_deref(), Some(SHIFTING));
    assert_eq!(stops.lock().expect("stops").len(), 1);
    assert_eq!(backends.lambda.alias_updates(), 0);
}

#[tokio::test(start_paused = true)]
async fn codedeploy_throttled_past_the_retries_is_the_guards_own_path_with_a_note() {
    let backends = backends();
    let throttled = mock!(Client::list_deployments)
        .sequence()
        .http_status(400, Some(THROTTLED.into()))
        .times(10)
        .build();
    let guard = guard(&backends, &[&[throttled]]);

    let report = guard.handle(&alarm_event(), false).await;

    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(alias(&backends), AliasState::on("3"));
    assert!(
        codedeploy_lines(&report).contains("throttled"),
        "{}",
        codedeploy_lines(&report)
    );
}
