//! Claims in a DynamoDB table (`crate::claims`): one item a function, `target` its key,
//! written only if there is none, or it ended, or it is the same cause's (a conditional
//! write: of two instances claiming at once, one wins). `until` (epoch seconds) is the table's
//! time to live, so ended claims also go away by themselves.

use super::port_error;
use crate::claims::{Claim, Claims};
use crate::ports::PortError;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

/// The environment variable naming the claim table (the template's `ClaimTable`).
pub const ENV_CLAIM_TABLE: &str = "GUARD_CLAIM_TABLE";

pub struct DynamoClaims {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoClaims {
    pub fn new(client: aws_sdk_dynamodb::Client, table: &str) -> Self {
        Self {
            client,
            table: table.to_string(),
        }
    }

    /// Who holds `function`'s claim, read consistently.
    async fn holder(&self, function: &str) -> Result<Option<Claim>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("target", AttributeValue::S(function.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(port_error)?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
        let (Some(cause), Some(at)) = (text("cause"), text("at")) else {
            return Err(PortError::Other(format!(
                "the claim on {function} in {} is not one the guard wrote",
                self.table
            )));
        };
        let at = at.parse().map_err(|e| {
            PortError::Other(format!("the claim on {function}: `at` is not a time: {e}"))
        })?;
        Ok(Some(Claim { cause, at }))
    }
}

#[async_trait]
impl Claims for DynamoClaims {
    async fn claim(
        &self,
        function: &str,
        cause: &str,
        at: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<Claim>, PortError> {
        let written = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("target", AttributeValue::S(function.into()))
            .item("cause", AttributeValue::S(cause.into()))
            .item("at", AttributeValue::S(at.to_rfc3339()))
            .item("until", AttributeValue::N(until.timestamp().to_string()))
            .condition_expression(
                "attribute_not_exists(#target) OR #until <= :now OR #cause = :cause",
            )
            .expression_attribute_names("#target", "target")
            .expression_attribute_names("#until", "until")
            .expression_attribute_names("#cause", "cause")
            .expression_attribute_values(":now", AttributeValue::N(at.timestamp().to_string()))
            .expression_attribute_values(":cause", AttributeValue::S(cause.into()))
            .send()
            .await;
        match written {
            Ok(_) => Ok(None),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                // Held by another cause; should it have ended between the two calls, the
                // answer is still "held" (by whom, when): the cooldown says the same.
                match self.holder(function).await? {
                    Some(holder) => Ok(Some(holder)),
                    None => Err(PortError::Transient(format!(
                        "the claim on {function} was taken and is gone: try again"
                    ))),
                }
            }
            Err(e) => Err(port_error(e)),
        }
    }

    async fn release(&self, function: &str, cause: &str) -> Result<(), PortError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("target", AttributeValue::S(function.into()))
            .condition_expression("#cause = :cause")
            .expression_attribute_names("#cause", "cause")
            .expression_attribute_values(":cause", AttributeValue::S(cause.into()))
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            // Another cause's (or none): nothing of ours to give back.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(port_error(e)),
        }
    }
}
