//! Telling people (SNS) and machines (EventBridge) what the guard did.

use super::port_error;
use crate::notify::{AuditEvent, Notification};
use crate::ports::{AuditBus, Notifier, PortError};
use async_trait::async_trait;

pub struct SnsNotifier {
    client: aws_sdk_sns::Client,
}

impl SnsNotifier {
    pub fn new(client: aws_sdk_sns::Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl Notifier for SnsNotifier {
    async fn publish(&self, topic_arn: &str, n: &Notification) -> Result<(), PortError> {
        let mut request = self
            .client
            .publish()
            .topic_arn(topic_arn)
            .subject(&n.subject)
            .message(&n.message);
        for (k, v) in &n.attributes {
            let value = aws_sdk_sns::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .map_err(|e| PortError::Other(e.to_string()))?;
            request = request.message_attributes(k, value);
        }
        request.send().await.map_err(port_error)?;
        Ok(())
    }
}

pub struct EventBridgeAuditBus {
    client: aws_sdk_eventbridge::Client,
}

impl EventBridgeAuditBus {
    pub fn new(client: aws_sdk_eventbridge::Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl AuditBus for EventBridgeAuditBus {
    async fn put(&self, bus: &str, e: &AuditEvent) -> Result<(), PortError> {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .source(&e.source)
            .detail_type(&e.detail_type)
            .detail(e.detail.to_string())
            .event_bus_name(bus)
            .set_resources(Some(e.resources.clone()))
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(port_error)?;
        if out.failed_entry_count() > 0 {
            let failed = out.entries().iter().find(|x| x.error_code().is_some());
            let code = failed.and_then(|x| x.error_code()).unwrap_or("unknown");
            let message = failed.and_then(|x| x.error_message()).unwrap_or("");
            let text = format!("PutEvents entry failed: {code}: {message}");
            return Err(if code.contains("Throttl") {
                PortError::Throttled(text)
            } else {
                PortError::Other(text)
            });
        }
        Ok(())
    }
}
