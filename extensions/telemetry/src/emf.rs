//! The lines the extension prints: CloudWatch Embedded Metric Format, one second of one series
//! a line, every metric at 1-second storage resolution so a 10-second alarm can read it. The
//! dimensions are the ones Lambda's own per-alias metrics carry (`FunctionName`, `Resource` =
//! `NAME:QUALIFIER`, `ExecutedVersion`), so the guard's fleet triggers find the alias in a fast
//! alarm exactly as in one on `AWS/Lambda`. Pure.

use crate::tally::{Counts, Series};
use serde_json::{json, Map, Value};

pub const NAMESPACE: &str = "RollbackGuard/Fast";

/// EMF: "a metric value ... can be an array of up to 100 values". More durations in a second
/// go on further lines of the same second, carrying `Duration` only.
pub const MAX_VALUES: usize = 100;

/// The lines of one second of one series.
pub fn lines(second: i64, series: &Series, counts: &Counts) -> Vec<String> {
    let mut chunks = counts.durations_ms.chunks(MAX_VALUES);
    let mut metrics = Vec::new();
    let mut values = Map::new();
    if counts.invocations > 0 {
        for (name, value) in [
            ("Invocations", counts.invocations),
            ("Errors", counts.errors),
            ("Timeouts", counts.timeouts),
        ] {
            metrics.push(metric(name, "Count"));
            values.insert(name.into(), json!(value));
        }
    }
    if counts.init_errors > 0 {
        metrics.push(metric("InitErrors", "Count"));
        values.insert("InitErrors".into(), json!(counts.init_errors));
    }
    if let Some(first) = chunks.next() {
        metrics.push(metric("Duration", "Milliseconds"));
        values.insert("Duration".into(), json!(first));
    }
    let mut out = Vec::new();
    if !metrics.is_empty() {
        out.push(line(second, series, metrics, values));
    }
    for chunk in chunks {
        let mut values = Map::new();
        values.insert("Duration".into(), json!(chunk));
        let metrics = vec![metric("Duration", "Milliseconds")];
        out.push(line(second, series, metrics, values));
    }
    out
}

fn metric(name: &str, unit: &str) -> Value {
    json!({"Name": name, "Unit": unit, "StorageResolution": 1})
}

fn line(
    second: i64,
    series: &Series,
    metrics: Vec<Value>,
    mut values: Map<String, Value>,
) -> String {
    // Lambda's own metrics: per function, per alias (Resource) and per version of an alias.
    let dimensions = match &series.qualifier {
        Some(_) => json!([
            ["FunctionName", "Resource"],
            ["FunctionName", "Resource", "ExecutedVersion"]
        ]),
        None => json!([["FunctionName"], ["FunctionName", "ExecutedVersion"]]),
    };
    values.insert("FunctionName".into(), json!(series.function));
    if let Some(q) = &series.qualifier {
        values.insert("Resource".into(), json!(format!("{}:{q}", series.function)));
    }
    values.insert("ExecutedVersion".into(), json!(series.version));
    values.insert(
        "_aws".into(),
        json!({
            "Timestamp": second.saturating_mul(1000),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": dimensions,
                "Metrics": metrics,
            }],
        }),
    );
    Value::Object(values).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tally::tests::live;

    #[test]
    fn a_second_of_an_alias_is_one_line_in_the_documented_shape() {
        let counts = Counts {
            invocations: 3,
            errors: 2,
            timeouts: 1,
            init_errors: 0,
            durations_ms: vec![12.5, 30.0, 3000.0],
        };
        let got = lines(1_764_700_000, &live(), &counts);
        let golden = r#"{"Duration":[12.5,30.0,3000.0],"Errors":2,"ExecutedVersion":"7","FunctionName":"pay","Invocations":3,"Resource":"pay:live","Timeouts":1,"_aws":{"CloudWatchMetrics":[{"Dimensions":[["FunctionName","Resource"],["FunctionName","Resource","ExecutedVersion"]],"Metrics":[{"Name":"Invocations","StorageResolution":1,"Unit":"Count"},{"Name":"Errors","StorageResolution":1,"Unit":"Count"},{"Name":"Timeouts","StorageResolution":1,"Unit":"Count"},{"Name":"Duration","StorageResolution":1,"Unit":"Milliseconds"}],"Namespace":"RollbackGuard/Fast"}],"Timestamp":1764700000000}}"#;
        assert_eq!(got.len(), 1);
        assert_valid_emf(&got[0]);
        // Compared as JSON: the order of an object's members is the build's (serde_json's
        // preserve_order may be on through another crate of the workspace).
        let got: Value = serde_json::from_str(&got[0]).expect("json");
        let golden: Value = serde_json::from_str(golden).expect("golden");
        assert_eq!(got, golden);
    }

    /// The EMF specification's rules, checked on the line rather than its text: every metric
    /// named in a directive has a value member, every dimension has a string member, at most
    /// 30 dimensions a set and 100 metrics a directive, the timestamp in milliseconds.
    fn assert_valid_emf(line: &str) {
        let v: Value = serde_json::from_str(line).expect("a line is one JSON object");
        let aws = &v["_aws"];
        assert!(aws["Timestamp"]
            .as_i64()
            .is_some_and(|t| t > 1_000_000_000_000));
        let directives = aws["CloudWatchMetrics"].as_array().expect("directives");
        for d in directives {
            assert!(d["Namespace"].as_str().is_some_and(|n| !n.is_empty()));
            for set in d["Dimensions"].as_array().expect("dimension sets") {
                let set = set.as_array().expect("a set");
                assert!(!set.is_empty() && set.len() <= 30);
                for dim in set {
                    let dim = dim.as_str().expect("a dimension name");
                    assert!(v[dim].is_string(), "dimension {dim} has its value");
                }
            }
            let metrics = d["Metrics"].as_array().expect("metrics");
            assert!(!metrics.is_empty() && metrics.len() <= 100);
            for m in metrics {
                let name = m["Name"].as_str().expect("a metric name");
                let value = &v[name];
                assert!(
                    value.is_number()
                        || value
                            .as_array()
                            .is_some_and(|a| a.len() <= 100 && a.iter().all(Value::is_number)),
                    "{name} has a number or up to 100 numbers"
                );
                assert_eq!(m["StorageResolution"], 1);
            }
        }
    }

    #[test]
    fn an_unqualified_second_has_no_resource() {
        let series = Series {
            qualifier: None,
            ..live()
        };
        let counts = Counts {
            invocations: 1,
            ..Counts::default()
        };
        let got = lines(1_764_700_000, &series, &counts);
        assert_eq!(got.len(), 1);
        assert_valid_emf(&got[0]);
        let v: Value = serde_json::from_str(&got[0]).expect("json");
        assert!(v.get("Resource").is_none());
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["FunctionName"], ["FunctionName", "ExecutedVersion"]])
        );
        assert!(
            v.get("Duration").is_none(),
            "no duration known, none printed"
        );
    }

    #[test]
    fn more_durations_than_a_line_holds_go_on_further_lines_of_the_same_second() {
        let counts = Counts {
            invocations: 250,
            durations_ms: (0..250).map(f64::from).collect(),
            ..Counts::default()
        };
        let got = lines(1_764_700_000, &live(), &counts);
        assert_eq!(got.len(), 3);
        let mut durations = 0;
        let mut invocations = 0;
        for line in &got {
            assert_valid_emf(line);
            let v: Value = serde_json::from_str(line).expect("json");
            durations += v["Duration"].as_array().map_or(0, Vec::len);
            invocations += v["Invocations"].as_u64().unwrap_or(0);
            assert_eq!(v["_aws"]["Timestamp"], 1_764_700_000_000_i64);
        }
        assert_eq!((durations, invocations), (250, 250));
    }

    #[test]
    fn an_init_error_alone_is_a_line_of_its_own_metric() {
        let counts = Counts {
            init_errors: 1,
            ..Counts::default()
        };
        let got = lines(1_764_700_000, &live(), &counts);
        assert_eq!(got.len(), 1);
        assert_valid_emf(&got[0]);
        let v: Value = serde_json::from_str(&got[0]).expect("json");
        assert_eq!(v["InitErrors"], 1);
        assert!(v.get("Invocations").is_none());
    }
}
