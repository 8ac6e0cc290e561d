//! EventBridge archive replays (`guard backtest`).

use super::port_error;
use crate::ports::PortError;

/// EventBridge archive replays, for `guard backtest`: last week's incidents through the
/// policy again, as shadow runs (replayed events carry `replay-name`).
pub struct EventBridgeReplays {
    client: aws_sdk_eventbridge::Client,
}

impl EventBridgeReplays {
    pub fn new(client: aws_sdk_eventbridge::Client) -> Self {
        Self { client }
    }

    /// Starts replaying `archive`'s events from `from` to `to` onto the bus they were
    /// archived from, to `rules` of that bus only (names or ARNs): every other consumer of the
    /// bus (paging, ticketing, analytics) would otherwise receive last week's events again.
    /// Returns the replay's state.
    pub async fn start(
        &self,
        archive: &str,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
        name: &str,
        rules: &[String],
    ) -> Result<String, PortError> {
        if rules.is_empty() {
            return Err(PortError::Other(
                "a replay goes to the guard's own rules only: name at least one".into(),
            ));
        }
        let described = self
            .client
            .describe_archive()
            .archive_name(archive)
            .send()
            .await
            .map_err(port_error)?;
        let (Some(archive_arn), Some(bus_arn)) =
            (described.archive_arn(), described.event_source_arn())
        else {
            return Err(PortError::Other(format!(
                "archive {archive} has no ARN or source bus"
            )));
        };
        let mut filter = Vec::with_capacity(rules.len());
        for rule in rules {
            filter.push(self.rule_arn(rule, bus_arn).await?);
        }
        let out = self
            .client
            .start_replay()
            .replay_name(name)
            .event_source_arn(archive_arn)
            .event_start_time(aws_smithy_types::DateTime::from_secs(from.timestamp()))
            .event_end_time(aws_smithy_types::DateTime::from_secs(to.timestamp()))
            .destination(
                aws_sdk_eventbridge::types::ReplayDestination::builder()
                    .arn(bus_arn)
                    .set_filter_arns(Some(filter))
                    .build()
                    .map_err(|e| PortError::Other(e.to_string()))?,
            )
            .send()
            .await
            .map_err(port_error)?;
        Ok(out
            .state()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default())
    }

    /// The ARN of `rule` (a name or an ARN) on the bus `bus_arn`.
    async fn rule_arn(&self, rule: &str, bus_arn: &str) -> Result<String, PortError> {
        if rule.starts_with("arn:") {
            return Ok(rule.to_string());
        }
        let out = self
            .client
            .describe_rule()
            .name(rule)
            .event_bus_name(bus_arn)
            .send()
            .await
            .map_err(port_error)?;
        out.arn()
            .map(str::to_string)
            .ok_or_else(|| PortError::Other(format!("rule {rule} has no ARN")))
    }

    /// The replay's state and, when it failed, why.
    pub async fn state(&self, name: &str) -> Result<(String, Option<String>), PortError> {
        let out = self
            .client
            .describe_replay()
            .replay_name(name)
            .send()
            .await
            .map_err(port_error)?;
        Ok((
            out.state()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            out.state_reason().map(str::to_string),
        ))
    }
}
