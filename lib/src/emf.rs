//! CloudWatch Embedded Metric Format: one JSON line on a function's stdout that its log group
//! turns into metrics (the guard's own health, the insight function's counts).

use serde_json::{json, Map, Value};

/// One metric of a line: its name, unit and value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric<'a> {
    pub name: &'a str,
    pub unit: &'a str,
    pub value: f64,
}

/// The line for `metrics` in `namespace`, with `dimensions` (names and values), at
/// `timestamp_ms`; every dimension set is the one set of all of them.
pub fn line(
    namespace: &str,
    dimensions: &[(&str, &str)],
    metrics: &[Metric<'_>],
    timestamp_ms: i64,
) -> Value {
    let mut line = Map::new();
    line.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [dimensions.iter().map(|(name, _)| *name).collect::<Vec<_>>()],
                "Metrics": metrics
                    .iter()
                    .map(|m| json!({ "Name": m.name, "Unit": m.unit }))
                    .collect::<Vec<_>>(),
            }]
        }),
    );
    for (name, value) in dimensions {
        line.insert((*name).into(), json!(value));
    }
    for m in metrics {
        line.insert(m.name.into(), json!(m.value));
    }
    Value::Object(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape AWS documents ("Embedded metric format specification"): `_aws` with a
    /// timestamp in milliseconds and one directive naming the namespace, the dimension sets
    /// and each metric with its unit; the dimensions' and metrics' values at the top level.
    #[test]
    fn a_line_follows_the_documented_schema() {
        let got = line(
            "RollbackGuard/Guard",
            &[("FunctionName", "rg-guard")],
            &[
                Metric {
                    name: "Messages",
                    unit: "Count",
                    value: 3.0,
                },
                Metric {
                    name: "FailedMessages",
                    unit: "Count",
                    value: 1.0,
                },
            ],
            1_763_608_380_000,
        );
        assert_eq!(
            got,
            json!({
                "_aws": {
                    "Timestamp": 1_763_608_380_000_i64,
                    "CloudWatchMetrics": [{
                        "Namespace": "RollbackGuard/Guard",
                        "Dimensions": [["FunctionName"]],
                        "Metrics": [
                            {"Name": "Messages", "Unit": "Count"},
                            {"Name": "FailedMessages", "Unit": "Count"}
                        ]
                    }]
                },
                "FunctionName": "rg-guard",
                "Messages": 3.0,
                "FailedMessages": 1.0
            })
        );
    }
}
