//! The alarm queue's envelope (Lambda's SQS event source): a batch of messages, each message's
//! body one event as EventBridge put it on the queue. The envelope is only a carrier: each body
//! is read, checked and acted on alone, as the function does (`ReportBatchItemFailures`), and
//! as `guard evaluate` and `guard replay` do with a file holding such a batch.

use super::IntakeError;
use serde::Deserialize;

/// One message of a batch: its id, the event its body holds, and what the queue needs to make
/// it visible again early (its receipt handle and the queue's ARN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    pub message_id: String,
    pub body: String,
    pub receipt_handle: Option<String>,
    pub queue_arn: Option<String>,
}

#[derive(Deserialize)]
struct Batch {
    #[serde(rename = "Records")]
    records: Vec<Record>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    event_source: Option<String>,
    message_id: Option<String>,
    body: Option<String>,
    receipt_handle: Option<String>,
    #[serde(rename = "eventSourceARN")]
    event_source_arn: Option<String>,
}

/// The batch's messages when `text` is an SQS event (every record from `aws:sqs`); `None` when
/// it is another transport's event. A batch whose message lacks an id or a body is refused
/// whole: no failure of that message could be reported alone.
pub fn queue_messages(text: &str) -> Option<Result<Vec<QueueMessage>, IntakeError>> {
    if !text.contains("\"aws:sqs\"") {
        return None;
    }
    let batch: Batch = serde_json::from_str(text).ok()?;
    let all_sqs = !batch.records.is_empty()
        && batch
            .records
            .iter()
            .all(|r| r.event_source.as_deref() == Some("aws:sqs"));
    if !all_sqs {
        return None;
    }
    Some(
        batch
            .records
            .into_iter()
            .enumerate()
            .map(|(i, r)| match (r.message_id, r.body) {
                (Some(message_id), Some(body)) if !message_id.is_empty() => Ok(QueueMessage {
                    message_id,
                    body,
                    receipt_handle: r.receipt_handle,
                    queue_arn: r.event_source_arn,
                }),
                _ => Err(IntakeError::Malformed {
                    transport: "sqs",
                    message: format!(
                        "message {i} has no messageId or no body: no failure of it could be reported alone"
                    ),
                }),
            })
            .collect(),
    )
}
