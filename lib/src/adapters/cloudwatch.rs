//! CloudWatch: alarms as the guard confirms them (up to 100 in one DescribeAlarms), and the
//! alarms a pattern names, with the function alias their metrics watch.

use super::port_error;
use crate::policy::AlarmPattern;
use crate::ports::{AlarmNow, AlarmStates, AlarmStatus, PortError};
use crate::transition::{AlarmArn, AlarmState, Suppression, SuppressionKind};
use crate::watched::{watched, MetricDimensions, Watched};
use async_trait::async_trait;

/// An alarm as DescribeAlarms describes it, as the guard confirms it.
fn alarm_now(
    state: Option<&aws_sdk_cloudwatch::types::StateValue>,
    actions_enabled: Option<bool>,
    suppressed_by: Option<&str>,
    suppressor: Option<&str>,
    watched: Watched,
    since: Option<&aws_smithy_types::DateTime>,
) -> Result<Option<AlarmNow>, PortError> {
    let Some(state) = state else {
        return Ok(None);
    };
    let state = AlarmState::parse(state.as_str())
        .ok_or_else(|| PortError::Other(format!("unknown alarm state `{}`", state.as_str())))?;
    let kind = suppressed_by
        .map(SuppressionKind::parse)
        .transpose()
        .map_err(|why| PortError::Other(format!("ActionsSuppressedBy: {why}")))?
        .flatten();
    Ok(Some(AlarmNow {
        state,
        // The API leaves it out only where it does not apply; actions are on by default.
        actions_enabled: actions_enabled.unwrap_or(true),
        suppressed: kind.map(|kind| Suppression {
            kind,
            suppressor: suppressor.map(str::to_string),
        }),
        watched,
        since: since.and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())),
    }))
}

pub struct CloudWatchAlarmStates {
    client: aws_sdk_cloudwatch::Client,
}

impl CloudWatchAlarmStates {
    pub fn new(client: aws_sdk_cloudwatch::Client) -> Self {
        Self { client }
    }
}

/// What a metric alarm's metrics name: its one metric's dimensions, or each metric of its
/// metric math (expressions have none).
fn metric_alarm_watched(alarm: &aws_sdk_cloudwatch::types::MetricAlarm) -> Watched {
    let pairs = |dims: &[aws_sdk_cloudwatch::types::Dimension]| {
        let pairs: Vec<(String, String)> = dims
            .iter()
            .filter_map(|d| Some((d.name()?.to_string(), d.value()?.to_string())))
            .collect();
        pairs
    };
    let metrics: Vec<Vec<(String, String)>> = if alarm.metrics().is_empty() {
        vec![pairs(alarm.dimensions())]
    } else {
        alarm
            .metrics()
            .iter()
            .filter_map(|q| q.metric_stat()?.metric())
            .map(|m| pairs(m.dimensions()))
            .collect()
    };
    let dims: Vec<MetricDimensions> = metrics
        .iter()
        .map(|m| MetricDimensions::of(m.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
        .collect();
    watched(&dims)
}

#[async_trait]
impl AlarmStates for CloudWatchAlarmStates {
    async fn alarm_state(&self, alarm_arn: &str) -> Result<Option<AlarmNow>, PortError> {
        let mut one = self.alarm_states(&[alarm_arn.to_string()]).await?;
        Ok(one.pop().flatten())
    }

    async fn alarm_states(
        &self,
        alarm_arns: &[String],
    ) -> Result<Vec<Option<AlarmNow>>, PortError> {
        use aws_sdk_cloudwatch::types::AlarmType;
        let mut names = Vec::with_capacity(alarm_arns.len());
        for arn in alarm_arns {
            let name = AlarmArn::parse(arn)
                .ok_or_else(|| PortError::Other(format!("`{arn}` is not an alarm ARN")))?
                .name;
            if !names.contains(&name) {
                names.push(name);
            }
        }
        let mut metric = Vec::new();
        let mut composite = Vec::new();
        // DescribeAlarms takes up to 100 names a call.
        for chunk in names.chunks(100) {
            let mut pages = self
                .client
                .describe_alarms()
                .set_alarm_names(Some(chunk.iter().map(|n| n.to_string()).collect()))
                .alarm_types(AlarmType::MetricAlarm)
                .alarm_types(AlarmType::CompositeAlarm)
                .max_records(100)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(port_error)?;
                metric.extend(page.metric_alarms().iter().cloned());
                composite.extend(page.composite_alarms().iter().cloned());
            }
        }
        // DescribeAlarms answers for the client's account and region: an alarm of the same
        // name there is another alarm, and its ARN says so.
        alarm_arns
            .iter()
            .map(|arn| {
                let metric = metric.iter().find(|a| a.alarm_arn() == Some(arn.as_str()));
                let composite = composite
                    .iter()
                    .find(|a| a.alarm_arn() == Some(arn.as_str()));
                // Only composite alarms have an actions suppressor.
                let (state, actions_enabled, suppressed_by, suppressor, watched, since) =
                    match (metric, composite) {
                        (Some(a), _) => (
                            a.state_value(),
                            a.actions_enabled(),
                            None,
                            None,
                            metric_alarm_watched(a),
                            a.state_transitioned_timestamp()
                                .or(a.state_updated_timestamp()),
                        ),
                        (None, Some(a)) => (
                            a.state_value(),
                            a.actions_enabled(),
                            a.actions_suppressed_by().map(|s| s.as_str()),
                            a.actions_suppressor(),
                            Watched::NoMetrics,
                            a.state_transitioned_timestamp()
                                .or(a.state_updated_timestamp()),
                        ),
                        (None, None) => return Ok(None),
                    };
                alarm_now(
                    state,
                    actions_enabled,
                    suppressed_by,
                    suppressor,
                    watched,
                    since,
                )
            })
            .collect()
    }

    async fn alarms(&self, pattern: &AlarmPattern) -> Result<Vec<AlarmStatus>, PortError> {
        use aws_sdk_cloudwatch::types::AlarmType;
        let request = self
            .client
            .describe_alarms()
            .alarm_types(AlarmType::MetricAlarm)
            .alarm_types(AlarmType::CompositeAlarm);
        let request = match pattern {
            AlarmPattern::Exact(name) => request.alarm_names(name),
            AlarmPattern::Prefix(prefix) => request.alarm_name_prefix(prefix),
        };
        let mut pages = request.into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(port_error)?;
            let metric = page.metric_alarms().iter().map(|a| {
                (
                    a.alarm_name(),
                    a.state_value().map(|s| s.as_str()),
                    a.state_updated_timestamp(),
                    a.actions_enabled(),
                    metric_alarm_watched(a),
                )
            });
            let composite = page.composite_alarms().iter().map(|a| {
                (
                    a.alarm_name(),
                    a.state_value().map(|s| s.as_str()),
                    a.state_updated_timestamp(),
                    a.actions_enabled(),
                    Watched::NoMetrics,
                )
            });
            for (name, state, since, actions_enabled, watched) in metric.chain(composite) {
                let (Some(name), Some(state)) = (name, state.and_then(AlarmState::parse)) else {
                    continue;
                };
                let since = since
                    .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
                    .unwrap_or_default();
                out.push(AlarmStatus {
                    name: name.to_string(),
                    state,
                    since,
                    actions_enabled: actions_enabled.unwrap_or(true),
                    watched,
                });
            }
        }
        Ok(out)
    }
}
