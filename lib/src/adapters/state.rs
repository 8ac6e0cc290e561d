//! The guard's state table in DynamoDB (`crate::state`): one item a function alias, `target`
//! its key (`ACCOUNT:FUNCTION:ALIAS`), `state` the codec's text, `rev` its revision. A write
//! is conditional on the revision the writer read (none: on there being no item), so of two
//! instances writing at once one wins and the other reads again.

use super::port_error;
use crate::ports::{rollbacks_key, Counted, PortError, StateStore};
use crate::state::{codec, StateKey, TargetState};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// The environment variable naming the state table (the template's `StateTable`).
pub const ENV_STATE_TABLE: &str = "GUARD_STATE_TABLE";

const KEY: &str = "target";
const STATE: &str = "state";
const REV: &str = "rev";

pub struct DynamoState {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoState {
    pub fn new(client: aws_sdk_dynamodb::Client, table: &str) -> Self {
        Self {
            client,
            table: table.to_string(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// An item's state and revision; an item the guard did not write is refused, naming why.
    fn decode(
        &self,
        key: &StateKey,
        item: &HashMap<String, AttributeValue>,
    ) -> Result<(TargetState, u64), PortError> {
        let refused = |why: String| {
            PortError::Other(format!(
                "the state of {key} in table {} is refused: {why}",
                self.table
            ))
        };
        let text = item
            .get(STATE)
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| refused("no `state` text".into()))?;
        let revision = item
            .get(REV)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| refused("no `rev` number".into()))?;
        let state = codec::decode(key, text).map_err(refused)?;
        Ok((state, revision))
    }
}

#[async_trait]
impl StateStore for DynamoState {
    async fn read(&self, key: &StateKey) -> Result<(TargetState, u64), PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY, AttributeValue::S(key.id()))
            .consistent_read(true)
            .send()
            .await
            .map_err(port_error)?;
        match out.item() {
            None => Ok((TargetState::default(), 0)),
            Some(item) => self.decode(key, item),
        }
    }

    async fn write(
        &self,
        key: &StateKey,
        state: &TargetState,
        revision: u64,
    ) -> Result<u64, PortError> {
        let next = revision + 1;
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(KEY, AttributeValue::S(key.id()))
            .item(STATE, AttributeValue::S(codec::encode(state)))
            .item(REV, AttributeValue::N(next.to_string()));
        let request = if revision == 0 {
            request
                .condition_expression("attribute_not_exists(#key)")
                .expression_attribute_names("#key", KEY)
        } else {
            request
                .condition_expression("#rev = :rev")
                .expression_attribute_names("#rev", REV)
                .expression_attribute_values(":rev", AttributeValue::N(revision.to_string()))
        };
        match request.send().await {
            Ok(_) => Ok(next),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(PortError::RevisionChanged(format!(
                    "the state of {key} was written by another since revision {revision}"
                )))
            }
            Err(e) => Err(port_error(e)),
        }
    }

    async fn count_rollback(
        &self,
        account: &str,
        hour: chrono::DateTime<chrono::Utc>,
        cap: u32,
    ) -> Result<Counted, PortError> {
        let key = AttributeValue::S(rollbacks_key(account, hour));
        // Counts go away by themselves a day after their hour (the table's time to live).
        let expires =
            AttributeValue::N((hour + chrono::TimeDelta::days(1)).timestamp().to_string());
        let number = |item: Option<&HashMap<String, AttributeValue>>, name: &str| {
            item.and_then(|i| i.get(name))
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<u32>().ok())
                .unwrap_or(0)
        };
        let made = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY, key.clone())
            .update_expression("ADD #made :one SET #until = :until")
            .condition_expression("attribute_not_exists(#made) OR #made < :cap")
            .expression_attribute_names("#made", "made")
            .expression_attribute_names("#until", "until")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":cap", AttributeValue::N(cap.to_string()))
            .expression_attribute_values(":until", expires.clone())
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match made {
            Ok(out) => Ok(Counted {
                allowed: true,
                made: number(out.attributes(), "made"),
                held: number(out.attributes(), "held"),
            }),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                let out = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .key(KEY, key)
                    .update_expression("ADD #held :one SET #until = :until")
                    .expression_attribute_names("#held", "held")
                    .expression_attribute_names("#until", "until")
                    .expression_attribute_values(":one", AttributeValue::N("1".into()))
                    .expression_attribute_values(":until", expires)
                    .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
                    .send()
                    .await
                    .map_err(port_error)?;
                Ok(Counted {
                    allowed: false,
                    made: number(out.attributes(), "made"),
                    held: number(out.attributes(), "held"),
                })
            }
            Err(e) => Err(port_error(e)),
        }
    }

    async fn all(&self) -> Result<Vec<(StateKey, TargetState)>, PortError> {
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        let mut out = Vec::new();
        while let Some(item) = pages.next().await {
            let item = item.map_err(port_error)?;
            // Items of other kinds (the hourly counts) have keys of another shape.
            let Some(key) = item
                .get(KEY)
                .and_then(|v| v.as_s().ok())
                .and_then(|id| StateKey::parse(id))
            else {
                continue;
            };
            let (state, _) = self.decode(&key, &item)?;
            out.push((key, state));
        }
        Ok(out)
    }
}
