//! The guard Lambda function: one handler for every transport an alarm transition arrives on
//! (EventBridge, SNS, the alarm's Lambda action). All logic lives in the `rollback-guard`
//! library; this crate maps its reports onto Lambda's success and error responses.

use lambda_runtime::{Diagnostic, LambdaEvent};
use rollback_guard::{Guard, Outcome, Report};
use serde_json::value::RawValue;
use serde_json::Value;

/// The handler's errors, with stable `errorType`s for alarms and failure destinations.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// Malformed, untrusted or unrecognised input: retrying it cannot help.
    #[error("event rejected: {0}")]
    Rejected(String),
    /// The action failed; the target is as the `Rollback Failed` notification describes.
    #[error("rollback failed: {0}")]
    Failed(String),
    /// The outcome is settled but telling people about it failed.
    #[error("{outcome}, but not announced: {notes}")]
    NotAnnounced {
        outcome: &'static str,
        notes: String,
    },
}

impl From<GuardError> for Diagnostic {
    fn from(e: GuardError) -> Self {
        let error_type = match e {
            GuardError::Rejected(_) => "Guard.Rejected",
            GuardError::Failed(_) => "Guard.RollbackFailed",
            GuardError::NotAnnounced { .. } => "Guard.NotAnnounced",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}

/// Turns a report into the function's response: the report itself, or an error.
pub fn response(report: Report) -> Result<Value, GuardError> {
    match report.outcome {
        Outcome::Rejected => return Err(GuardError::Rejected(report.reason)),
        Outcome::Failed => return Err(GuardError::Failed(report.reason)),
        _ => {}
    }
    if !report.notes.is_empty() {
        return Err(GuardError::NotAnnounced {
            outcome: report.outcome.as_str(),
            notes: report.notes.join("; "),
        });
    }
    serde_json::to_value(&report)
        .map_err(|e| GuardError::Failed(format!("cannot encode report: {e}")))
}

/// The event as Lambda delivered it: the runtime checks that it is JSON and hands over the
/// text, which the guard reads straight into the transport's shape (no JSON tree in between).
pub type Payload = Box<RawValue>;

pub async fn function_handler(
    event: LambdaEvent<Payload>,
    guard: &Guard,
) -> Result<Value, GuardError> {
    let report = guard
        .handle_bytes(event.payload.get().as_bytes(), false)
        .await;
    response(report)
}
