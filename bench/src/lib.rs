//! What the benchmarks share: the catalog's events per transport and its policy.

pub mod figures;
pub mod fleet;
pub mod mttr;

use rollback_guard::evaluate::evaluate;
use rollback_guard::Policy;
use serde_json::Value;
use std::path::PathBuf;

/// One catalog event per transport, the same files `bench/reference.py` decides on.
pub const TRANSPORTS: [(&str, &str); 6] = [
    ("eventbridge", "eventbridge-alarm.json"),
    ("sns", "sns-alarm.json"),
    ("lambda-action", "lambda-action-alarm.json"),
    ("critical-insight", "insight-critical.json"),
    ("rollback-requested", "request-rollback.json"),
    ("schedule", "schedule.json"),
];

pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

pub fn event(file: &str) -> Vec<u8> {
    std::fs::read(events_dir().join(file)).expect("a catalog event")
}

pub fn catalog_policy() -> Policy {
    Policy::from_file(&events_dir().join("policy.toml").to_string_lossy())
        .expect("events/policy.toml is valid")
}

/// Panics unless the verdict on `file` is the one `events/expected.json` records.
pub fn check_verdict(policy: &Policy, file: &str, bytes: &[u8]) {
    let expected: Value = serde_json::from_slice(
        &std::fs::read(events_dir().join("expected.json")).expect("expected.json"),
    )
    .expect("expected.json is JSON");
    let verdict = serde_json::to_value(evaluate(
        policy,
        Some(&rollback_guard::fakes::home()),
        bytes,
        false,
    ))
    .expect("a verdict");
    for key in ["outcome", "action", "target"] {
        assert_eq!(
            verdict[key], expected[file][key],
            "{file}: {key}: {verdict}"
        );
    }
}
