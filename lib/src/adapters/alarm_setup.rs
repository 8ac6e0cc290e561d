//! CloudWatch as `guard protect` / `unprotect` change it and `guard targets` reads its
//! metrics: `PutMetricAlarm` (with its tags), `DescribeAlarms` + `ListTagsForResource`,
//! `DeleteAlarms`, `GetMetricData`. The operator's credentials; never the guard's role.

use super::port_error;
use crate::ports::{AlarmSetup, PortError};
use crate::protect::{AlarmKind, AlarmSpec, LambdaMetric};
use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, Metric, MetricDataQuery, MetricStat, StandardUnit, Tag,
};
use std::collections::BTreeMap;

pub struct CloudWatchAlarmSetup {
    client: aws_sdk_cloudwatch::Client,
}

impl CloudWatchAlarmSetup {
    pub fn new(client: aws_sdk_cloudwatch::Client) -> Self {
        Self { client }
    }
}

fn dimensions(function: &str, alias: &str) -> Vec<Dimension> {
    vec![
        Dimension::builder()
            .name("FunctionName")
            .value(function)
            .build(),
        Dimension::builder()
            .name("Resource")
            .value(format!("{function}:{alias}"))
            .build(),
    ]
}

/// One Lambda metric of `function:alias` in a query; `returned`: its values are the answer.
fn lambda_stat(id: &str, m: &LambdaMetric, returned: bool) -> MetricDataQuery {
    let (name, stat, function, alias, period) =
        (&m.name, &m.stat, &m.function, &m.alias, m.period_s);
    let metric = Metric::builder()
        .namespace("AWS/Lambda")
        .metric_name(name)
        .set_dimensions(Some(dimensions(function, alias)))
        .build();
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(
            MetricStat::builder()
                .metric(metric)
                .period(period)
                .stat(stat)
                .build(),
        )
        .return_data(returned)
        .build()
}

/// A sum a minute of the spec's function alias's metric `name` (the times do not matter to
/// an alarm).
fn per_minute(spec: &AlarmSpec, name: &str) -> LambdaMetric {
    LambdaMetric {
        function: spec.function.clone(),
        alias: spec.alias.clone(),
        name: name.into(),
        stat: "Sum".into(),
        period_s: 60,
        since: chrono::DateTime::UNIX_EPOCH,
        until: chrono::DateTime::UNIX_EPOCH,
    }
}

fn to_smithy(t: chrono::DateTime<chrono::Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs(t.timestamp())
}

#[async_trait]
impl AlarmSetup for CloudWatchAlarmSetup {
    async fn put_alarm(&self, spec: &AlarmSpec) -> Result<(), PortError> {
        let tags: Vec<Tag> = spec
            .tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        let request = self
            .client
            .put_metric_alarm()
            .alarm_name(&spec.name)
            .alarm_description(&spec.description)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .treat_missing_data("notBreaching")
            .set_tags(Some(tags));
        let request = match spec.kind {
            AlarmKind::ErrorRate { percent } => request
                .threshold(percent)
                .evaluation_periods(2)
                .datapoints_to_alarm(2)
                .metrics(
                    MetricDataQuery::builder()
                        .id("rate")
                        .label("Error rate (%)")
                        .expression("IF(invocations > 0, 100 * errors / invocations, 0)")
                        .return_data(true)
                        .build(),
                )
                .metrics(lambda_stat("errors", &per_minute(spec, "Errors"), false))
                .metrics(lambda_stat(
                    "invocations",
                    &per_minute(spec, "Invocations"),
                    false,
                )),
            AlarmKind::P95Duration { ms } => request
                .namespace("AWS/Lambda")
                .metric_name("Duration")
                .set_dimensions(Some(dimensions(&spec.function, &spec.alias)))
                .extended_statistic("p95")
                .unit(StandardUnit::Milliseconds)
                .period(60)
                .evaluation_periods(3)
                .datapoints_to_alarm(3)
                .threshold(ms),
        };
        request.send().await.map_err(port_error)?;
        Ok(())
    }

    async fn alarm_tags(&self, name: &str) -> Result<Option<BTreeMap<String, String>>, PortError> {
        let found = self
            .client
            .describe_alarms()
            .alarm_names(name)
            .send()
            .await
            .map_err(port_error)?;
        let arn = found
            .metric_alarms()
            .iter()
            .find(|a| a.alarm_name() == Some(name))
            .and_then(|a| a.alarm_arn())
            .map(str::to_string);
        let Some(arn) = arn else {
            return Ok(None);
        };
        let tags = self
            .client
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(port_error)?;
        Ok(Some(
            tags.tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
                .collect(),
        ))
    }

    async fn delete_alarms(&self, names: &[String]) -> Result<(), PortError> {
        if names.is_empty() {
            return Ok(());
        }
        self.client
            .delete_alarms()
            .set_alarm_names(Some(names.to_vec()))
            .send()
            .await
            .map_err(port_error)?;
        Ok(())
    }

    async fn lambda_metric(&self, m: &LambdaMetric) -> Result<Vec<f64>, PortError> {
        let query = lambda_stat("m", m, true);
        let mut pages = self
            .client
            .get_metric_data()
            .metric_data_queries(query)
            .start_time(to_smithy(m.since))
            .end_time(to_smithy(m.until))
            .into_paginator()
            .send();
        let mut values = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(port_error)?;
            for result in page.metric_data_results() {
                values.extend_from_slice(result.values());
            }
        }
        Ok(values)
    }
}
