//! Living beside CodeDeploy, over fakes: a rollback that fails or never ends, AI-disable
//! during a deployment, the deployment group from the function's tags, the stack note,
//! `guard undo` after a stopped deployment, plans that ask nothing.

use crate::support::{event, policy};
use chrono::{DateTime, Utc};
use rollback_guard::codedeploy::{APPLICATION_TAG, GROUP_TAG, STACK_TAG};
use rollback_guard::fakes::{FakeBackends, FakeLambda, Rollback};
use rollback_guard::fleet::PROTECT_TAG;
use rollback_guard::operator::{self, OperatorError};
use rollback_guard::policy::DeploymentGroup;
use rollback_guard::ports::{PortError, Shift};
use rollback_guard::rollback::AliasState;
use rollback_guard::{Outcome, Policy, Report};

/// `function` with versions 1..=4, `live` on 3; its alarm in ALARM.
fn backends(function: &str, alarm: &str) -> FakeBackends {
    let lambda = FakeLambda::default().with_function(function, 4, "live", AliasState::on("3"));
    let start: DateTime<Utc> = "2026-11-20T03:13:00Z".parse().expect("time");
    FakeBackends::new(lambda, alarm, start)
}

fn shift(function: &str) -> Shift {
    Shift {
        deployment: "d-SHIFT0001".into(),
        function: function.into(),
        alias: "live".into(),
        current_version: "3".into(),
        target_version: "4".into(),
    }
}

/// A new guard instance on `b` handles the catalog event `name`.
async fn act(b: &FakeBackends, name: &str) -> Report {
    b.guard(policy()).handle(&event(name), false).await
}

fn alias(b: &FakeBackends, function: &str) -> AliasState {
    let mut a = b.lambda.alias(function, "live").expect("alias");
    a.revision_id = None;
    a
}

fn group() -> DeploymentGroup {
    DeploymentGroup {
        application: "orders-app".into(),
        group: "orders-ai-group".into(),
    }
}

#[tokio::test(start_paused = true)]
async fn a_rollback_that_fails_or_never_ends_leaves_the_alias_unsplit_all_the_same() {
    for (how, said) in [
        (Rollback::Fails, "did not succeed"),
        (Rollback::Hangs, "had not finished after 120 s"),
    ] {
        let b = backends("orders-ai", "orders-ai-error-rate");
        b.deployments.shifting(None, shift("orders-ai"), 0.1);
        b.deployments.rollback(how);
        let started = tokio::time::Instant::now();

        let report = act(&b, "eventbridge-alarm.json").await;

        assert_eq!(
            report.outcome,
            Outcome::Executed,
            "{how:?}: {}",
            report.reason
        );
        assert_eq!(
            b.deployments.status("d-SHIFT0001").as_deref(),
            Some("Stopped")
        );
        // Not split, and on the version the deployment began from: the guard moved it.
        assert_eq!(alias(&b, "orders-ai"), AliasState::on("3"), "{how:?}");
        assert_eq!(b.lambda.alias_updates(), 1, "{how:?}");
        let lines = report.codedeploy.join(" | ");
        assert!(lines.contains(said), "{how:?}: {lines}");
        assert!(
            lines.contains("the guard put alias live on version 3 itself"),
            "{lines}"
        );
        let waited = started.elapsed().as_secs();
        match how {
            Rollback::Hangs => assert!((115..=125).contains(&waited), "waited {waited} s"),
            _ => assert!(waited < 10, "waited {waited} s"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn ai_disable_during_a_deployment_stops_it_first_then_switches_the_ai_off() {
    let b = backends("support-ai", "support-ai-fallback-rate");
    // $LATEST holds version 3's code (the deployment's version 4 was published from other
    // code, and $LATEST put back since).
    b.lambda
        .edit_latest("support-ai", |c| c.code_sha256 = "code-3".into());
    b.deployments.shifting(None, shift("support-ai"), 0.1);

    let report = act(&b, "eventbridge-fallback-rate.json").await;

    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(report.action, Some("disable-ai"));
    assert_eq!(report.deployment.as_deref(), Some("d-SHIFT0001"));
    let calls = b.deployments.calls();
    assert!(
        calls.contains(&"StopDeployment d-SHIFT0001".to_string()),
        "{calls:?}"
    );
    // The AI off on the version CodeDeploy went back to: a new version, published from 3.
    let now = alias(&b, "support-ai");
    assert_eq!(now.version, "5");
    assert!(now.weights.is_empty());
    let served = b.lambda.config("support-ai", Some("5")).expect("version 5");
    assert_eq!(served.code_sha256, "code-3");
    assert!(served.ai_disabled("AI_ENABLED"));
    // The guard's own change can be undone: back to 3, unsplit.
    let undo = report.undo.expect("undo");
    assert_eq!(undo, "guard undo --target support-ai");
}

#[tokio::test(start_paused = true)]
async fn ai_disable_refused_after_the_stop_is_the_codedeploy_rollback_and_goes_no_further() {
    let b = backends("support-ai", "support-ai-fallback-rate");
    // $LATEST holds the deployed version 4's code: nothing to publish the AI off from.
    b.deployments.shifting(None, shift("support-ai"), 0.1);

    let report = act(&b, "eventbridge-fallback-rate.json").await;

    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(report.action, Some("rollback-alias"));
    assert!(
        report.reason.contains("disable-ai was refused"),
        "{}",
        report.reason
    );
    // Where CodeDeploy's rollback left it: the ladder's rollback does not go further back.
    assert_eq!(alias(&b, "support-ai"), AliasState::on("3"));
    assert_eq!(b.lambda.alias_updates(), 0);
    assert_eq!(b.lambda.count_calls("PublishVersion"), 0);
    let record = b.state_of("support-ai", "live").last.expect("a record");
    assert_eq!(record.deployment.as_deref(), Some("d-SHIFT0001"));
    assert_eq!(b.notifier.sent().len(), 1);
}

/// Issue 26, finding 5: a group the function's tags name narrows the question; anyone who may
/// tag the function could name another team's group, so its deployments that have not started
/// (whose targets are unknown) are left alone. The policy's group is trusted to stop them.
#[tokio::test(start_paused = true)]
async fn unstarted_deployments_are_stopped_only_for_the_group_the_policy_names() {
    let b = backends("orders-ai", "orders-ai-error-rate");
    b.lambda.set_tag("orders-ai", APPLICATION_TAG, "orders-app");
    b.lambda.set_tag("orders-ai", GROUP_TAG, "orders-ai-group");
    b.deployments.not_started("d-QUEUED001", Some(group()));
    b.deployments.not_started("d-ELSEWHERE", None);

    let report = act(&b, "eventbridge-alarm.json").await;

    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    let calls = b.deployments.calls();
    assert_eq!(calls[0], "ListDeployments orders-app/orders-ai-group");
    assert!(
        !calls.iter().any(|c| c.starts_with("StopDeployment")),
        "{calls:?}"
    );
    // The guard's own rollback: 3 -> 2.
    assert_eq!(alias(&b, "orders-ai"), AliasState::on("2"));

    // The policy names the group: its unstarted deployment is stopped, another's is not.
    let b = backends("orders-ai", "orders-ai-error-rate");
    b.deployments.not_started("d-QUEUED001", Some(group()));
    b.deployments.not_started("d-ELSEWHERE", None);
    let toml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/policy.toml"
    ))
    .expect("policy")
    .replacen(
        "name = \"orders-ai\"\nfunction = \"orders-ai\"\nalias = \"live\"",
        "name = \"orders-ai\"\nfunction = \"orders-ai\"\nalias = \"live\"\ncodedeploy_application = \"orders-app\"\ncodedeploy_group = \"orders-ai-group\"",
        1,
    );
    let policy = Policy::from_toml(&toml).expect("policy");
    assert!(policy
        .target("orders-ai")
        .is_some_and(|t| t.codedeploy.is_some()));
    let report = b
        .guard(policy)
        .handle(&event("eventbridge-alarm.json"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    let calls = b.deployments.calls();
    assert!(
        calls.contains(&"StopDeployment d-QUEUED001".to_string()),
        "{calls:?}"
    );
    assert!(
        !calls.iter().any(|c| c.contains("d-ELSEWHERE")),
        "{calls:?}"
    );
    let lines = report.codedeploy.join(" | ");
    assert!(
        lines.contains("d-QUEUED001 of orders-app/orders-ai-group had not started"),
        "{lines}"
    );
}

#[tokio::test(start_paused = true)]
async fn outside_a_deployment_a_stack_member_hears_what_its_next_deploy_meets() {
    let b = backends("orders-ai", "orders-ai-error-rate");
    b.lambda.set_tag("orders-ai", STACK_TAG, "orders-prod");

    let report = act(&b, "eventbridge-alarm.json").await;

    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    let body = &b.notifier.sent()[0].1.message;
    assert!(
        body.contains("CodeDeploy: the function belongs to CloudFormation stack orders-prod"),
        "{body}"
    );
    assert!(
        body.contains("not settled by AWS's documentation"),
        "{body}"
    );
    assert!(body.contains("`guard undo --target orders-ai`"), "{body}");
    // Without the tag, nothing is said.
    let plain = backends("orders-ai", "orders-ai-error-rate");
    let report = act(&plain, "eventbridge-alarm.json").await;
    assert!(report.codedeploy.is_empty(), "{:?}", report.codedeploy);
}

#[tokio::test(start_paused = true)]
async fn undo_after_a_stopped_deployment_is_refused_rather_than_splitting_the_alias() {
    let b = backends("orders-ai", "orders-ai-error-rate");
    b.deployments.shifting(None, shift("orders-ai"), 0.1);
    let report = act(&b, "eventbridge-alarm.json").await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);

    let undone = operator::undo(&policy(), &b.operating(), "orders-ai").await;

    match undone {
        Err(OperatorError::Refused(why)) => {
            assert!(why.contains("split the alias"), "{why}");
            assert!(why.contains("d-SHIFT0001"), "{why}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(alias(&b, "orders-ai"), AliasState::on("3"));
}

#[tokio::test(start_paused = true)]
async fn guard_targets_shows_a_deployment_in_progress() {
    let b = backends("orders-ai", "orders-ai-error-rate");
    b.deployments.shifting(None, shift("orders-ai"), 0.1);
    let mut other = shift("checkout-ai");
    other.deployment = "d-OTHER0001".into();
    other.alias = "beta".into();
    b.deployments.shifting(None, other, 0.5);

    let seen = b.targets(&policy()).await.expect("targets");

    let orders = seen
        .targets
        .iter()
        .find(|t| t.name == "orders-ai")
        .expect("orders-ai");
    assert_eq!(
        orders.deployment.as_deref(),
        Some(
            "CodeDeploy deployment d-SHIFT0001 shifting orders-ai:live from version 3 to version 4"
        )
    );
    // A deployment of another alias of checkout-ai is not its target's (alias live).
    let checkout = seen
        .targets
        .iter()
        .find(|t| t.name == "checkout-ai")
        .expect("checkout-ai");
    assert_eq!(checkout.deployment, None);
    assert!(seen
        .targets
        .iter()
        .all(|t| t.name == "orders-ai" || t.deployment.is_none()));
}

#[tokio::test(start_paused = true)]
async fn plans_ask_codedeploy_nothing() {
    let b = backends("orders-ai", "orders-ai-error-rate");
    b.deployments.shifting(None, shift("orders-ai"), 0.1);
    let report = b
        .guard(policy())
        .handle(&event("eventbridge-alarm.json"), true)
        .await;
    assert_eq!(report.outcome, Outcome::Planned, "{}", report.reason);
    assert!(b.deployments.calls().is_empty());
}

#[test]
fn the_policy_names_a_deployment_group_whole_and_bounds_the_wait() {
    let base = "[guard]\nnotify_topic_arn = \"arn:aws:sns:us-east-1:123456789012:t\"\n";
    let target = "[[target]]\nname = \"a\"\nfunction = \"a\"\nalias = \"live\"\n";
    let trigger = "[[trigger]]\nalarm = \"a-*\"\ntarget = \"a\"\naction = \"rollback-alias\"\n";
    let ok = Policy::from_toml(&format!(
        "{base}codedeploy_wait_seconds = 60\n{target}codedeploy_application = \"app\"\ncodedeploy_group = \"grp\"\n{trigger}"
    ))
    .expect("policy");
    assert_eq!(ok.guard.codedeploy_wait_seconds, 60);
    assert_eq!(
        ok.targets[0].codedeploy,
        Some(DeploymentGroup {
            application: "app".into(),
            group: "grp".into()
        })
    );
    let half = Policy::from_toml(&format!(
        "{base}{target}codedeploy_application = \"app\"\n{trigger}"
    ))
    .expect_err("half a group");
    assert_eq!(half.field, "target[0].codedeploy_group");
    let long = Policy::from_toml(&format!(
        "{base}codedeploy_wait_seconds = 600\n{target}{trigger}"
    ))
    .expect_err("too long a wait");
    assert_eq!(long.field, "guard.codedeploy_wait_seconds");
}

#[tokio::test(start_paused = true)]
async fn a_deployment_that_cannot_be_stopped_leaves_the_guard_on_its_own_with_the_command() {
    let b = backends("orders-ai", "orders-ai-error-rate");
    b.deployments.shifting(None, shift("orders-ai"), 0.1);
    b.deployments.fail(
        "StopDeployment",
        [PortError::Other(
            "AccessDeniedException: not authorized".into(),
        )],
    );

    let report = act(&b, "eventbridge-alarm.json").await;

    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(report.deployment, None);
    // The guard aborted the canary itself; the deployment goes on as CodeDeploy runs it.
    assert_eq!(alias(&b, "orders-ai"), AliasState::on("3"));
    assert_eq!(b.lambda.alias_updates(), 1);
    assert_eq!(
        b.deployments.status("d-SHIFT0001").as_deref(),
        Some("InProgress")
    );
    let lines = report.codedeploy.join(" | ");
    assert!(
        lines.contains(
            "aws deploy stop-deployment --deployment-id d-SHIFT0001 --auto-rollback-enabled"
        ),
        "{lines}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stop_sent_again_that_finds_its_own_stop_still_waits_for_the_rollback() {
    let b = backends("orders-ai", "orders-ai-error-rate");
    b.deployments.shifting(None, shift("orders-ai"), 0.1);
    // The first stop lands but its answer is lost; the retry is told the deployment is done.
    b.deployments.lose_next_stop_answer();

    let report = act(&b, "eventbridge-alarm.json").await;

    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(report.deployment.as_deref(), Some("d-SHIFT0001"));
    // CodeDeploy's rollback, not the guard, put the alias back.
    assert_eq!(alias(&b, "orders-ai"), AliasState::on("3"));
    assert_eq!(b.lambda.alias_updates(), 0);
    let lines = report.codedeploy.join(" | ");
    assert!(!lines.contains("completed before"), "{lines}");
}

#[tokio::test(start_paused = true)]
async fn an_alarm_on_the_version_codedeploy_went_back_to_goes_on_with_the_guards_rollback() {
    // billing:live's version 3 alarms (ExecutedVersion 3) while a deployment shifts it to 4.
    let lambda = FakeLambda::default().with_function("billing", 4, "live", AliasState::on("3"));
    lambda.set_tag("billing", PROTECT_TAG, "live");
    let start: DateTime<Utc> = "2026-11-20T03:13:00Z".parse().expect("time");
    let b = FakeBackends::new(lambda, "guarded-billing-canary-errors", start);
    b.alarms.set_watched(
        "guarded-billing-canary-errors",
        rollback_guard::watched::Watched::Alias(rollback_guard::watched::WatchedAlias {
            function: "billing".into(),
            alias: "live".into(),
            version: Some("3".into()),
        }),
    );
    b.deployments.shifting(None, shift("billing"), 0.1);
    let text = std::fs::read_to_string(format!(
        "{}/../events/lambda-action-fleet-canary.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("event")
    .replace("\"ExecutedVersion\": \"4\"", "\"ExecutedVersion\": \"3\"");
    let on_three: serde_json::Value = serde_json::from_str(&text).expect("json");

    let report = b.guard(policy()).handle(&on_three, false).await;

    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(report.deployment.as_deref(), Some("d-SHIFT0001"));
    // CodeDeploy went back to 3, which the alarm watches: the guard goes on to 2.
    assert_eq!(alias(&b, "billing"), AliasState::on("2"));
    assert_eq!(b.lambda.alias_updates(), 1);
    // Its own move from 3 can be undone (back to 3, unsplit).
    assert_eq!(report.undo.as_deref(), Some("guard undo --target billing"));
}
