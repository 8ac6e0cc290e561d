//! SQS: the alarm queue's messages the guard could not settle, made visible again soon
//! (`ChangeMessageVisibilityBatch`, ten at a time), so that they are retried in a minute rather
//! than after the queue's visibility timeout.

use super::port_error;
use crate::ports::{AlarmQueue, PortError};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;

pub struct SqsAlarmQueue {
    client: aws_sdk_sqs::Client,
    /// Queue ARN → URL, resolved once per instance.
    urls: Mutex<HashMap<String, String>>,
}

impl SqsAlarmQueue {
    pub fn new(client: aws_sdk_sqs::Client) -> Self {
        Self {
            client,
            urls: Mutex::new(HashMap::new()),
        }
    }

    async fn url(&self, queue_arn: &str) -> Result<String, PortError> {
        if let Some(url) = self
            .urls
            .lock()
            .ok()
            .and_then(|u| u.get(queue_arn).cloned())
        {
            return Ok(url);
        }
        // arn:aws:sqs:REGION:ACCOUNT:NAME
        let parts: Vec<&str> = queue_arn.splitn(6, ':').collect();
        let [_, _, "sqs", _, account, name] = parts.as_slice() else {
            return Err(PortError::Other(format!(
                "`{queue_arn}` is not a queue ARN"
            )));
        };
        let url = self
            .client
            .get_queue_url()
            .queue_name(*name)
            .queue_owner_aws_account_id(*account)
            .send()
            .await
            .map_err(port_error)?
            .queue_url()
            .map(str::to_string)
            .ok_or_else(|| PortError::Other(format!("no URL for queue {queue_arn}")))?;
        if let Ok(mut urls) = self.urls.lock() {
            urls.insert(queue_arn.to_string(), url.clone());
        }
        Ok(url)
    }
}

#[async_trait]
impl AlarmQueue for SqsAlarmQueue {
    async fn retry_after(
        &self,
        queue_arn: &str,
        receipts: &[String],
        delay: std::time::Duration,
    ) -> Result<(), PortError> {
        use aws_sdk_sqs::types::ChangeMessageVisibilityBatchRequestEntry as Entry;
        let url = self.url(queue_arn).await?;
        // SQS takes up to ten entries a call.
        for chunk in receipts.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, receipt)| {
                    Entry::builder()
                        .id(i.to_string())
                        .receipt_handle(receipt)
                        .visibility_timeout(delay.as_secs().min(43_200) as i32)
                        .build()
                        .map_err(|e| PortError::Other(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .change_message_visibility_batch()
                .queue_url(&url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(port_error)?;
            if let Some(failed) = out.failed().first() {
                return Err(PortError::Other(format!(
                    "{} of the messages kept their visibility timeout: {}: {}",
                    out.failed().len(),
                    failed.code(),
                    failed.message().unwrap_or_default()
                )));
            }
        }
        Ok(())
    }
}
