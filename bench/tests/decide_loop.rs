//! The Rust side of the same-seconds comparison (`make bench`, `bench/report.py`): a round of
//! `decide-loop` times every transport, and a verdict the catalog does not expect is never
//! timed. (`bench/tests/test_harness.py` tests the Python side and the pairing of rounds.)

use guard_bench::{catalog_policy, check_verdict, event, TRANSPORTS};
use serde_json::Value;
use std::process::Command;

#[test]
fn a_round_of_the_rust_decision_times_every_transport() {
    let out = Command::new(env!("CARGO_BIN_EXE_decide-loop"))
        .output()
        .expect("decide-loop runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let round: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let round = round.as_object().expect("an object");
    assert_eq!(round.len(), TRANSPORTS.len(), "{round:?}");
    for (name, _) in TRANSPORTS {
        // Nanoseconds per event: more than nothing, less than a millisecond (a debug build).
        let ns = round[name]
            .as_f64()
            .unwrap_or_else(|| panic!("{name}: {round:?}"));
        assert!(ns > 0.0 && ns < 1e6, "{name}: {ns} ns");
    }
}

#[test]
#[should_panic(expected = "eventbridge-alarm.json: outcome")]
fn a_verdict_the_catalog_does_not_expect_is_never_timed() {
    check_verdict(
        &catalog_policy(),
        "eventbridge-alarm.json",
        &event("schedule.json"),
    );
}
