//! The real Lambda SDK client under deterministic faults (aws-smithy-mocks): throttling,
//! resource conflicts and stale revisions on `UpdateAlias`, as the wire returns them. The
//! emulator ignores revisions, so these cases are proven here.

use crate::support::policy;
use aws_sdk_lambda::operation::get_alias::GetAliasOutput;
use aws_sdk_lambda::operation::get_function::GetFunctionOutput;
use aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput;
use aws_sdk_lambda::operation::list_versions_by_function::ListVersionsByFunctionOutput;
use aws_sdk_lambda::operation::tag_resource::TagResourceOutput;
use aws_sdk_lambda::operation::update_alias::UpdateAliasOutput;
use aws_sdk_lambda::types::FunctionConfiguration;
use aws_sdk_lambda::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use rollback_guard::adapters::{LambdaAliasManager, LambdaFunctionSettings};
use rollback_guard::fakes::{FakeAlarmStates, FakeAuditBus, FakeClock, FakeNotifier};
use rollback_guard::retry::RetryPolicy;
use rollback_guard::transition::AlarmState;
use rollback_guard::{Guard, Outcome, Policy, Ports};
use std::sync::{Arc, Mutex};

const THROTTLED: &str =
    r#"{"__type":"TooManyRequestsException","message":"Rate exceeded","Type":"User"}"#;
const CONFLICT: &str = r#"{"__type":"ResourceConflictException","message":"The operation cannot be performed at this time."}"#;
const STALE: &str = r#"{"__type":"PreconditionFailedException","message":"The RevisionId provided does not match the latest RevisionId."}"#;

/// What `UpdateAlias` was asked: (version, weights, revision id).
type Seen = Arc<Mutex<Vec<(Option<String>, Option<usize>, Option<String>)>>>;

fn reads(alias_version: &'static str, alias_revision: &'static str) -> Vec<Rule> {
    vec![
        mock!(Client::get_function_configuration).then_output(|| {
            GetFunctionConfigurationOutput::builder()
                .function_arn("arn:aws:lambda:us-east-1:123456789012:function:orders-ai")
                .build()
        }),
        get_function(),
        mock!(Client::get_alias).then_output(move || {
            GetAliasOutput::builder()
                .name("live")
                .function_version(alias_version)
                .revision_id(alias_revision)
                .build()
        }),
        mock!(Client::list_versions_by_function).then_output(|| {
            let v = |n: &str| FunctionConfiguration::builder().version(n).build();
            ListVersionsByFunctionOutput::builder()
                .versions(v("$LATEST"))
                .versions(v("1"))
                .versions(v("2"))
                .versions(v("3"))
                .build()
        }),
        mock!(Client::tag_resource).then_output(|| TagResourceOutput::builder().build()),
    ]
}

/// GetFunction: the function (no tags) or, with a qualifier, that version (any exists).
fn get_function() -> Rule {
    mock!(Client::get_function).then_compute_output(|req| {
        let config = FunctionConfiguration::builder()
            .function_arn("arn:aws:lambda:us-east-1:123456789012:function:orders-ai")
            .set_version(req.qualifier().map(str::to_string))
            .last_modified("2026-11-20T03:00:00.000+0000")
            .build();
        GetFunctionOutput::builder().configuration(config).build()
    })
}

fn update_ok(
    seen: &Seen,
) -> impl Fn(&aws_sdk_lambda::operation::update_alias::UpdateAliasInput) -> UpdateAliasOutput {
    let seen = seen.clone();
    move |req| {
        let weights = req
            .routing_config()
            .and_then(|r| r.additional_version_weights())
            .map(|w| w.len());
        if let Ok(mut s) = seen.lock() {
            s.push((
                req.function_version().map(str::to_string),
                weights,
                req.revision_id().map(str::to_string),
            ));
        }
        UpdateAliasOutput::builder()
            .function_version(req.function_version().unwrap_or_default())
            .revision_id("rev-after")
            .build()
    }
}

/// Calls answered by a set of rules.
fn calls(rules: &[Rule]) -> usize {
    rules.iter().map(Rule::num_calls).sum()
}

/// A guard whose Lambda client answers from `rules` (first match wins), the rest faked.
fn guard(rules: &[&[Rule]]) -> (Guard, Arc<FakeNotifier>) {
    guard_with(policy(), rules)
}

fn guard_with(policy: Policy, rules: &[&[Rule]]) -> (Guard, Arc<FakeNotifier>) {
    let refs: Vec<&Rule> = rules.iter().flat_map(|r| r.iter()).collect();
    // SDK retries off, as in production: the guard's RetryPolicy is the one schedule.
    let client = mock_client!(aws_sdk_lambda, RuleMode::MatchAny, &refs, |c| c
        .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled()));
    let alarms = FakeAlarmStates::default();
    alarms.set("orders-ai-error-rate", AlarmState::Alarm);
    let notifier = Arc::new(FakeNotifier::default());
    let ports = Ports {
        aliases: Arc::new(LambdaAliasManager::new(client.clone())),
        functions: Arc::new(LambdaFunctionSettings::new(client)),
        alarms: Arc::new(alarms),
        deployments: Arc::new(rollback_guard::fakes::FakeDeployments::default()),
        notifier: notifier.clone(),
        audit: Arc::new(FakeAuditBus::default()),
        state: Arc::new(rollback_guard::fakes::FakeState::default()),
        clock: Arc::new(FakeClock::at("2026-11-20T03:13:00Z".parse().expect("time"))),
    };
    let retry = RetryPolicy {
        attempts: 4,
        base_delay: std::time::Duration::from_millis(1),
        max_delay: std::time::Duration::from_millis(4),
        jitter: false,
    };
    (
        Guard::new(policy, ports, rollback_guard::fakes::home()).with_retry(retry),
        notifier,
    )
}

fn alarm_event() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/eventbridge-alarm.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("event")).expect("json")
}

#[tokio::test]
async fn throttled_update_alias_is_retried_with_the_same_revision_until_it_lands() {
    let seen = Seen::default();
    let updates = [
        mock!(Client::update_alias)
            .sequence()
            .http_status(429, Some(THROTTLED.into()))
            .times(2)
            .build(),
        mock!(Client::update_alias).then_compute_output(update_ok(&seen)),
    ];
    let (guard, notifier) = guard(&[&updates, &reads("3", "rev-1")]);

    let report = guard.handle(&alarm_event(), false).await;

    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(
        report.alias_after.as_ref().map(|a| a.version.as_str()),
        Some("2")
    );
    assert_eq!(calls(&updates), 3);
    // Only the successful call reaches the compute function: version 2, no weights, rev-1.
    let seen = seen.lock().expect("seen").clone();
    assert_eq!(
        seen,
        vec![(Some("2".to_string()), Some(0), Some("rev-1".to_string()))]
    );
    assert_eq!(notifier.sent().len(), 1);
}

#[tokio::test]
async fn resource_conflict_on_update_alias_is_retried() {
    let seen = Seen::default();
    let updates = [
        mock!(Client::update_alias)
            .sequence()
            .http_status(409, Some(CONFLICT.into()))
            .build(),
        mock!(Client::update_alias).then_compute_output(update_ok(&seen)),
    ];
    let (guard, _) = guard(&[&updates, &reads("3", "rev-1")]);
    let report = guard.handle(&alarm_event(), false).await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(calls(&updates), 2);
    assert_eq!(seen.lock().expect("seen").len(), 1);
}

#[tokio::test]
async fn stale_revision_where_another_delivery_won_is_already_done_without_a_second_update() {
    // The alias reads on 3 first; after the 412 it reads on 2: another delivery moved it.
    let get_alias = mock!(Client::get_alias)
        .sequence()
        .output(|| {
            GetAliasOutput::builder()
                .function_version("3")
                .revision_id("rev-1")
                .build()
        })
        .output(|| {
            GetAliasOutput::builder()
                .function_version("2")
                .revision_id("rev-2")
                .build()
        })
        .build();
    let updates = [mock!(Client::update_alias)
        .sequence()
        .http_status(412, Some(STALE.into()))
        .build()];
    // The sequenced GetAlias comes first, so it answers before the default one in `reads`.
    let (guard, notifier) = guard(&[&[get_alias], &updates, &reads("unused", "unused")]);

    let report = guard.handle(&alarm_event(), false).await;

    assert_eq!(report.outcome, Outcome::AlreadyDone, "{}", report.reason);
    assert_eq!(calls(&updates), 1);
    assert!(notifier.sent().is_empty());
}

#[tokio::test]
async fn persistent_throttling_fails_after_the_bounded_attempts_and_says_so() {
    let updates = [mock!(Client::update_alias)
        .sequence()
        .http_status(429, Some(THROTTLED.into()))
        .repeatedly()
        .build()];
    let (guard, notifier) = guard(&[&updates, &reads("3", "rev-1")]);

    let report = guard.handle(&alarm_event(), false).await;

    assert_eq!(report.outcome, Outcome::Failed);
    assert!(report.reason.contains("throttled"), "{}", report.reason);
    assert_eq!(calls(&updates), 4);
    assert_eq!(notifier.sent().len(), 1);
}

mod disable_ai {
    //! `disable-ai` through the real client: conflicts and throttling on
    //! `UpdateFunctionConfiguration` and `PublishVersion` retried, and the requests carry the
    //! whole merged environment, the revision and the code hash.

    use super::*;
    use aws_sdk_lambda::operation::publish_version::PublishVersionOutput;
    use aws_sdk_lambda::operation::update_function_configuration::UpdateFunctionConfigurationOutput;
    use aws_sdk_lambda::types::{EnvironmentResponse, LastUpdateStatus};
    use std::collections::HashMap;

    /// Requests a mocked operation received.
    type Recorded<T> = Arc<Mutex<Vec<T>>>;

    const POLICY: &str = r#"
        [guard]
        notify_topic_arn = "arn:aws:sns:us-east-1:123456789012:rollback-guard"
        [[target]]
        name = "orders-ai"
        function = "orders-ai"
        alias = "live"
        [[trigger]]
        alarm = "orders-ai-*"
        target = "orders-ai"
        action = "disable-ai"
    "#;

    fn env(ai: &str) -> HashMap<String, String> {
        HashMap::from([
            ("AI_ENABLED".to_string(), ai.to_string()),
            (
                "MODEL_ID".to_string(),
                "anthropic.claude-3-haiku".to_string(),
            ),
            ("DB_URL".to_string(), "postgres://orders".to_string()),
        ])
    }

    fn config(
        version: &str,
        vars: HashMap<String, String>,
        revision: &str,
    ) -> GetFunctionConfigurationOutput {
        GetFunctionConfigurationOutput::builder()
            .function_arn("arn:aws:lambda:us-east-1:123456789012:function:orders-ai")
            .version(version)
            .code_sha256("sha-release-3")
            .revision_id(revision)
            .memory_size(512)
            .environment(
                EnvironmentResponse::builder()
                    .set_variables(Some(vars))
                    .build(),
            )
            .last_update_status(LastUpdateStatus::Successful)
            .build()
    }

    #[tokio::test]
    async fn configuration_and_publish_faults_are_retried_and_the_requests_are_exact() {
        // $LATEST's variables, as the (mocked) service holds them.
        let latest = Arc::new(Mutex::new(env("true")));
        let updates: Recorded<(HashMap<String, String>, Option<String>)> = Arc::default();
        let publishes: Recorded<(Option<String>, Option<String>)> = Arc::default();
        let (l1, l2, u, p) = (
            latest.clone(),
            latest.clone(),
            updates.clone(),
            publishes.clone(),
        );
        let rules = [
            mock!(Client::get_alias).then_output(|| {
                GetAliasOutput::builder()
                    .function_version("3")
                    .revision_id("alias-rev-1")
                    .build()
            }),
            get_function(),
            mock!(Client::tag_resource).then_output(|| TagResourceOutput::builder().build()),
            mock!(Client::get_function_configuration)
                .match_requests(|r| r.qualifier() == Some("3"))
                .then_output(|| config("3", env("true"), "v3")),
            mock!(Client::get_function_configuration)
                .match_requests(|r| r.qualifier() == Some("4"))
                .then_output(|| config("4", env("false"), "v4")),
            mock!(Client::get_function_configuration).then_compute_output(move |_| {
                let vars = l1.lock().map(|v| v.clone()).unwrap_or_default();
                let revision = if vars["AI_ENABLED"] == "false" {
                    "latest-rev-2"
                } else {
                    "latest-rev-1"
                };
                config("$LATEST", vars, revision)
            }),
            mock!(Client::update_function_configuration)
                .sequence()
                .http_status(409, Some(CONFLICT.into()))
                .http_status(429, Some(THROTTLED.into()))
                .build(),
            mock!(Client::update_function_configuration).then_compute_output(move |req| {
                let vars = req
                    .environment()
                    .and_then(|e| e.variables())
                    .cloned()
                    .unwrap_or_default();
                if let (Ok(mut seen), Ok(mut l)) = (u.lock(), l2.lock()) {
                    seen.push((vars.clone(), req.revision_id().map(str::to_string)));
                    *l = vars;
                }
                UpdateFunctionConfigurationOutput::builder().build()
            }),
            mock!(Client::publish_version)
                .sequence()
                .http_status(429, Some(THROTTLED.into()))
                .build(),
            mock!(Client::publish_version).then_compute_output(move |req| {
                if let Ok(mut seen) = p.lock() {
                    seen.push((
                        req.code_sha256().map(str::to_string),
                        req.revision_id().map(str::to_string),
                    ));
                }
                PublishVersionOutput::builder().version("4").build()
            }),
            mock!(Client::update_alias).then_output(|| {
                UpdateAliasOutput::builder()
                    .function_version("4")
                    .revision_id("alias-rev-2")
                    .build()
            }),
        ];
        let (guard, notifier) = guard_with(Policy::from_toml(POLICY).expect("policy"), &[&rules]);

        let report = guard.handle(&alarm_event(), false).await;

        assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
        assert_eq!(
            report.alias_after.as_ref().map(|a| a.version.as_str()),
            Some("4")
        );
        // 409, 429, then the update; 429, then the publish.
        assert_eq!(rules[6].num_calls() + rules[7].num_calls(), 3);
        assert_eq!(rules[8].num_calls() + rules[9].num_calls(), 2);
        let updates = updates.lock().expect("updates").clone();
        assert_eq!(
            updates,
            vec![(env("false"), Some("latest-rev-1".to_string()))]
        );
        let publishes = publishes.lock().expect("publishes").clone();
        assert_eq!(
            publishes,
            vec![(
                Some("sha-release-3".to_string()),
                Some("latest-rev-2".to_string())
            )]
        );
        assert_eq!(notifier.sent().len(), 1);
    }
}

const NOT_FOUND: &str = r#"{"__type":"ResourceNotFoundException","message":"Function not found: arn:aws:lambda:us-east-1:123456789012:function:orders-ai:2","Type":"User"}"#;

#[tokio::test]
async fn the_version_before_is_asked_after_with_get_function_and_listed_only_when_deleted() {
    // Version 2 exists: GetFunction says so, no version list is read.
    let seen = Seen::default();
    let updates = [mock!(Client::update_alias).then_compute_output(update_ok(&seen))];
    let listed = [mock!(Client::list_versions_by_function)
        .then_output(|| ListVersionsByFunctionOutput::builder().build())];
    let (first, _) = guard(&[&updates, &listed, &reads("3", "rev-1")]);
    let report = first.handle(&alarm_event(), false).await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(calls(&listed), 0);
    assert_eq!(seen.lock().expect("seen")[0].0.as_deref(), Some("2"));

    // Version 2 was deleted (GetFunction answers 404): the list says 1 is the one before 3.
    let seen = Seen::default();
    let updates = [mock!(Client::update_alias).then_compute_output(update_ok(&seen))];
    let deleted = [mock!(Client::get_function)
        .match_requests(|r| r.qualifier() == Some("2"))
        .sequence()
        .http_status(404, Some(NOT_FOUND.into()))
        .build()];
    let listed = [mock!(Client::list_versions_by_function).then_output(|| {
        let v = |n: &str| FunctionConfiguration::builder().version(n).build();
        ListVersionsByFunctionOutput::builder()
            .versions(v("$LATEST"))
            .versions(v("1"))
            .versions(v("3"))
            .build()
    })];
    let (second, _) = guard(&[&updates, &deleted, &listed, &reads("3", "rev-1")]);
    let report = second.handle(&alarm_event(), false).await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(calls(&deleted), 1);
    assert_eq!(calls(&listed), 1);
    assert_eq!(seen.lock().expect("seen")[0].0.as_deref(), Some("1"));
}

#[tokio::test]
async fn tags_get_function_could_not_read_fail_the_action_and_change_nothing() {
    let denied = [mock!(Client::get_function)
        .match_requests(|r| r.qualifier().is_none())
        .then_output(|| {
            GetFunctionOutput::builder()
                .tags_error(
                    aws_sdk_lambda::types::TagsError::builder()
                        .error_code("AccessDeniedException")
                        .message("not authorized to perform lambda:ListTags")
                        .build()
                        .expect("a tags error"),
                )
                .build()
        })];
    let updates =
        [mock!(Client::update_alias).then_output(|| UpdateAliasOutput::builder().build())];
    let (guard, _) = guard(&[&denied, &updates, &reads("3", "rev-1")]);
    let report = guard.handle(&alarm_event(), false).await;
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.reason);
    assert!(
        report.reason.contains("lambda:ListTags"),
        "{}",
        report.reason
    );
    assert_eq!(calls(&updates), 0);
}
