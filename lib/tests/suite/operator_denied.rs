//! What the operator's commands answer when AWS refuses a call `infra/member.yaml`'s
//! `OperatorRole` grants (moto enforces no IAM: the real SDK clients over aws-smithy-mocks):
//! each a failure that says so, and nothing half-done left unsaid.

use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput;
use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
use aws_sdk_cloudwatch::operation::list_tags_for_resource::ListTagsForResourceOutput;
use aws_sdk_cloudwatch::types::{MetricAlarm, Tag};
use aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use rollback_guard::adapters::{CloudWatchAlarmSetup, LambdaAliasManager};
use rollback_guard::fakes::{fast_retry, FakeAlarmSetup, FakeBackends, FakeLambda};
use rollback_guard::operator::{protect, unprotect, OperatorError, Protect, Protecting};
use rollback_guard::ports::{AliasManager, PortError};
use rollback_guard::rollback::AliasState;
use rollback_guard::Policy;

const DENIED_CW: &str = r#"<ErrorResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:sts::222222222222:assumed-role/rollback-guard-operator/x is not authorized to perform: cloudwatch:OPERATION on resource: arn:aws:cloudwatch:us-east-1:222222222222:alarm:other-alarm</Message></Error><RequestId>1</RequestId></ErrorResponse>"#;
const DENIED_LAMBDA: &str = r#"{"Type":"User","message":"User: arn:aws:sts::222222222222:assumed-role/rollback-guard-operator/x is not authorized to perform: lambda:TagResource on resource: arn:aws:lambda:us-east-1:222222222222:function:payments because no identity-based policy allows the lambda:TagResource action"}"#;

fn fleet_policy() -> Policy {
    Policy::from_toml(
        "[[trigger]]\nalarm = \"guarded-*\"\ntarget = \"from-alarm\"\naction = \"rollback-alias\"\n",
    )
    .expect("policy")
}

fn backends() -> FakeBackends {
    let lambda = FakeLambda::default().with_function("payments", 3, "live", AliasState::on("3"));
    FakeBackends::new(lambda, "unused", "2026-11-20T03:13:00Z".parse().expect("t"))
}

fn cloudwatch(rules: &[&Rule]) -> CloudWatchAlarmSetup {
    CloudWatchAlarmSetup::new(mock_client!(
        aws_sdk_cloudwatch,
        RuleMode::MatchAny,
        rules,
        |c| c.retry_config(aws_sdk_cloudwatch::config::retry::RetryConfig::disabled())
    ))
}

fn denied_cw(operation: &str) -> String {
    DENIED_CW.replace("OPERATION", operation)
}

fn metrics_ok() -> Rule {
    mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .then_output(|| GetMetricDataOutput::builder().build())
}

fn request() -> Protect<'static> {
    Protect {
        function: "payments",
        alias: "live",
        p95_ms: Some(1500.0),
        dry_run: false,
    }
}

fn protecting<'a>(
    aliases: &'a dyn AliasManager,
    alarms: &'a dyn rollback_guard::ports::AlarmSetup,
    b: &'a FakeBackends,
) -> Protecting<'a> {
    Protecting {
        aliases,
        alarms,
        clock: b.clock.as_ref(),
        retry: fast_retry(),
        account_flag: " --account 222222222222".into(),
    }
}

/// `GuardedAlarms` grants PutMetricAlarm under the prefix only: refused, protect fails saying
/// so, and the function is not opted in.
#[tokio::test]
async fn an_alarm_the_operator_may_not_put_fails_protect_before_the_opt_in() {
    let b = backends();
    let put = mock!(aws_sdk_cloudwatch::Client::put_metric_alarm)
        .sequence()
        .http_status(403, Some(denied_cw("PutMetricAlarm")))
        .times(10)
        .build();
    let metrics = metrics_ok();
    let alarms = cloudwatch(&[&put, &metrics]);
    let failed = protect(
        &fleet_policy(),
        &protecting(b.lambda.as_ref(), &alarms, &b),
        &request(),
    )
    .await;
    match failed {
        Err(OperatorError::Backend(PortError::Denied(why))) => {
            assert!(why.contains("PutMetricAlarm"), "{why}")
        }
        other => panic!("expected access denied, got {other:?}"),
    }
    assert!(!b
        .lambda
        .tags_of("payments")
        .contains_key("rollback-guard:protect"));
}

/// `OptInTagOnly` grants TagResource for the opt-in key only: refused, protect says the alarms
/// exist and the function is not tagged, with the command that removes them.
#[tokio::test]
async fn a_tag_the_operator_may_not_write_is_said_with_the_alarms_left_behind() {
    let b = backends();
    let config = mock!(aws_sdk_lambda::Client::get_function_configuration).then_output(|| {
        GetFunctionConfigurationOutput::builder()
            .function_arn("arn:aws:lambda:us-east-1:222222222222:function:payments")
            .build()
    });
    let tag = mock!(aws_sdk_lambda::Client::tag_resource)
        .sequence()
        .http_status(403, Some(DENIED_LAMBDA.into()))
        .times(10)
        .build();
    let lambda = LambdaAliasManager::new(mock_client!(
        aws_sdk_lambda,
        RuleMode::MatchAny,
        &[&config, &tag],
        |c| c.retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
    ));
    // Reads through the fake, the tag through the refusing client.
    struct Split<'a>(&'a FakeLambda, &'a LambdaAliasManager);
    #[async_trait::async_trait]
    impl AliasManager for Split<'_> {
        async fn get_alias(&self, f: &str, a: &str) -> Result<AliasState, PortError> {
            self.0.get_alias(f, a).await
        }
        async fn list_versions(&self, f: &str) -> Result<Vec<String>, PortError> {
            self.0.list_versions(f).await
        }
        async fn update_alias(
            &self,
            f: &str,
            a: &str,
            to: &AliasState,
            r: Option<&str>,
        ) -> Result<AliasState, PortError> {
            self.0.update_alias(f, a, to, r).await
        }
        async fn tags(
            &self,
            f: &str,
        ) -> Result<std::collections::BTreeMap<String, String>, PortError> {
            self.0.tags(f).await
        }
        async fn is_published(&self, f: &str, v: &str) -> Result<bool, PortError> {
            self.0.is_published(f, v).await
        }
        async fn published_at(
            &self,
            f: &str,
            v: &str,
        ) -> Result<Option<chrono::DateTime<chrono::Utc>>, PortError> {
            self.0.published_at(f, v).await
        }
        async fn list_functions(&self) -> Result<Vec<String>, PortError> {
            self.0.list_functions().await
        }
        async fn tag(
            &self,
            f: &str,
            t: &std::collections::BTreeMap<String, String>,
        ) -> Result<(), PortError> {
            self.1.tag(f, t).await
        }
        async fn untag(&self, f: &str, k: &[String]) -> Result<(), PortError> {
            self.1.untag(f, k).await
        }
    }
    let split = Split(b.lambda.as_ref(), &lambda);
    let alarms = FakeAlarmSetup::default();
    let failed = protect(
        &fleet_policy(),
        &protecting(&split, &alarms, &b),
        &request(),
    )
    .await;
    let why = match failed {
        Err(OperatorError::Backend(e)) => e.to_string(),
        other => panic!("expected a failure, got {other:?}"),
    };
    assert!(
        why.contains("the alarms were created but payments could not be tagged"),
        "{why}"
    );
    assert!(why.contains("access denied"), "{why}");
    assert!(
        why.contains("guard unprotect --function payments --alias live --account 222222222222"),
        "{why}"
    );
    assert_eq!(alarms.alarms().len(), 2);
}

/// `GuardedAlarms` grants DeleteAlarms under the prefix only: refused, unprotect fails and
/// removes nothing else (the opt-in tag stays).
#[tokio::test]
async fn alarms_the_operator_may_not_delete_fail_unprotect_and_keep_the_tag() {
    let b = backends();
    b.lambda
        .set_tag("payments", "rollback-guard:protect", "live");
    let described = mock!(aws_sdk_cloudwatch::Client::describe_alarms).then_compute_output(|req| {
        let name = req.alarm_names().first().cloned().unwrap_or_default();
        DescribeAlarmsOutput::builder()
            .metric_alarms(
                MetricAlarm::builder()
                    .alarm_name(&name)
                    .alarm_arn(format!(
                        "arn:aws:cloudwatch:us-east-1:222222222222:alarm:{name}"
                    ))
                    .build(),
            )
            .build()
    });
    let tags = mock!(aws_sdk_cloudwatch::Client::list_tags_for_resource).then_output(|| {
        let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
        ListTagsForResourceOutput::builder()
            .tags(tag("rollback-guard:created-by", "guard protect"))
            .tags(tag("rollback-guard:target", "payments:live"))
            .tags(tag("rollback-guard:tagged-by-protect", "true"))
            .build()
    });
    let delete = mock!(aws_sdk_cloudwatch::Client::delete_alarms)
        .sequence()
        .http_status(403, Some(denied_cw("DeleteAlarms")))
        .times(10)
        .build();
    let alarms = cloudwatch(&[&described, &tags, &delete]);
    let failed = unprotect(
        &fleet_policy(),
        &protecting(b.lambda.as_ref(), &alarms, &b),
        &request(),
    )
    .await;
    assert!(
        matches!(failed, Err(OperatorError::Backend(PortError::Denied(_)))),
        "{failed:?}"
    );
    assert_eq!(
        b.lambda.tags_of("payments")["rollback-guard:protect"],
        "live"
    );
}

/// `ReadMetrics` grants GetMetricData: refused, `guard targets` says it cannot tell whether a
/// watched alias has traffic, and shows the rest.
#[tokio::test]
async fn metrics_the_operator_may_not_read_are_a_warning_in_targets() {
    let b = backends();
    b.lambda
        .set_tag("payments", "rollback-guard:protect", "live");
    let alarm = "guarded-payments-live-error-rate";
    b.alarms
        .set(alarm, rollback_guard::transition::AlarmState::Ok);
    b.alarms.set_watched(
        alarm,
        rollback_guard::watched::Watched::Alias(rollback_guard::watched::WatchedAlias {
            function: "payments".into(),
            alias: "live".into(),
            version: None,
        }),
    );
    let read = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .sequence()
        .http_status(403, Some(denied_cw("GetMetricData")))
        .times(10)
        .build();
    let metrics = cloudwatch(&[&read]);
    let seen = b
        .targets_with(&fleet_policy(), Some(&metrics))
        .await
        .expect("targets");
    assert_eq!(seen.targets.len(), 1);
    assert!(
        seen.warnings.iter().any(|w| w
            .starts_with("cannot tell whether payments:live has traffic")
            && w.contains("access denied")),
        "{:?}",
        seen.warnings
    );
}
