//! The Telemetry API's platform records the extension reads (schema 2022-12-13), read
//! leniently: a batch is an array of records; a record of a type not read here, or one that
//! lacks a field, is passed over without losing the rest of its batch. Pure.

use crate::tally::Outcome;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// `platform.start`: the invocation began (telemetry reaches this environment).
    Start { request_id: String },
    /// `platform.runtimeDone`: the runtime finished the invocation.
    RuntimeDone {
        request_id: String,
        outcome: Outcome,
        duration_ms: Option<f64>,
        second: Option<i64>,
    },
    /// `platform.initRuntimeDone` with a status other than success.
    InitFailed { second: Option<i64> },
}

/// The records of one batch the extension acts on, in order. Err when the body is no JSON
/// array (the listener answers 400 and counts nothing of it).
pub fn parse_batch(body: &[u8]) -> Result<Vec<Record>, serde_json::Error> {
    let batch: Vec<Value> = serde_json::from_slice(body)?;
    Ok(batch.iter().filter_map(record).collect())
}

fn record(v: &Value) -> Option<Record> {
    let kind = v.get("type")?.as_str()?;
    let body = v.get("record")?;
    let second = v.get("time").and_then(Value::as_str).and_then(second_of);
    let request_id = || Some(body.get("requestId")?.as_str()?.to_string());
    match kind {
        "platform.start" => Some(Record::Start {
            request_id: request_id()?,
        }),
        "platform.runtimeDone" => Some(Record::RuntimeDone {
            request_id: request_id()?,
            outcome: Outcome::from_status(body.get("status")?.as_str()?),
            duration_ms: body.pointer("/metrics/durationMs").and_then(Value::as_f64),
            second,
        }),
        "platform.initRuntimeDone" => {
            let status = body.get("status")?.as_str()?;
            (status != "success").then_some(Record::InitFailed { second })
        }
        _ => None,
    }
}

/// The Unix second of an RFC 3339 time.
pub fn second_of(time: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(time)
        .ok()
        .map(|t| t.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_as_the_telemetry_api_sends_it() {
        let body = br#"[
          {"time":"2026-12-02T10:00:01.064Z","type":"platform.start","record":{"requestId":"r1","version":"7"}},
          {"time":"2026-12-02T10:00:01.500Z","type":"platform.runtimeDone","record":{"requestId":"r1","status":"error","errorType":"Runtime.Unknown","metrics":{"durationMs":431.5,"producedBytes":0},"spans":[]}},
          {"time":"2026-12-02T10:00:01.510Z","type":"platform.report","record":{"requestId":"r1","status":"error","metrics":{"durationMs":440.0,"billedDurationMs":441,"memorySizeMB":128,"maxMemoryUsedMB":30}}},
          {"time":"2026-12-02T10:00:00.000Z","type":"platform.initRuntimeDone","record":{"initializationType":"on-demand","phase":"init","status":"failure"}},
          {"time":"2026-12-02T10:00:00.000Z","type":"platform.initRuntimeDone","record":{"initializationType":"on-demand","phase":"init","status":"success"}},
          {"time":"2026-12-02T10:00:02.000Z","type":"platform.runtimeDone","record":{"status":"success"}},
          {"type":"platform.somethingNew","record":{}},
          "not a record"
        ]"#;
        let second = second_of("2026-12-02T10:00:01Z");
        assert_eq!(
            parse_batch(body).expect("a batch"),
            vec![
                Record::Start {
                    request_id: "r1".into()
                },
                Record::RuntimeDone {
                    request_id: "r1".into(),
                    outcome: Outcome::Error,
                    duration_ms: Some(431.5),
                    second,
                },
                Record::InitFailed {
                    second: second.map(|s| s - 1)
                },
            ]
        );
    }

    #[test]
    fn a_body_that_is_no_array_is_refused() {
        assert!(parse_batch(b"{\"type\":\"platform.start\"}").is_err());
        assert!(parse_batch(b"[{\"type\":\"platform.runti").is_err());
    }

    #[test]
    fn a_runtime_done_without_metrics_or_time_is_still_an_end() {
        let body =
            br#"[{"type":"platform.runtimeDone","record":{"requestId":"r2","status":"timeout"}}]"#;
        assert_eq!(
            parse_batch(body).expect("a batch"),
            vec![Record::RuntimeDone {
                request_id: "r2".into(),
                outcome: Outcome::Timeout,
                duration_ms: None,
                second: None,
            }]
        );
    }
}
