//! The event catalog: every file in `events/` has a recorded expectation in
//! `events/expected.json` — `outcome`, `action`, `target` of the offline evaluation (checked
//! here) and `replay`, the real pipeline's outcome on the sample account (checked on the
//! emulator by tests/tests/e2e/catalog_replay.rs).

use rollback_guard::evaluate::evaluate;
use rollback_guard::Policy;
use serde_json::Value;
use std::path::PathBuf;

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

#[test]
fn every_catalog_event_evaluates_as_recorded() {
    let dir = events_dir();
    let policy = Policy::from_file(&dir.join("policy.toml").to_string_lossy()).expect("policy");
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("expected.json")).expect("expected.json"),
    )
    .expect("json");
    let expected = expected.as_object().expect("object");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("events/")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|f| f.ends_with(".json") && f != "expected.json")
        .collect();
    files.sort();
    assert!(files.len() >= 20, "{files:?}");
    // The guard that would receive them runs where the catalog's sample account is.
    let home = rollback_guard::fakes::home();
    let mut mismatches = Vec::new();
    for file in &files {
        let want = expected
            .get(file)
            .unwrap_or_else(|| panic!("{file} has no expectation in expected.json"));
        let got = evaluate(
            &policy,
            Some(&home),
            &std::fs::read(dir.join(file)).expect("read"),
            false,
        );
        let got = serde_json::json!({ "outcome": got.outcome, "action": got.action, "target": got.target });
        // `replay` is the real pipeline's outcome, checked against the emulator by
        // tests/tests/e2e/catalog_replay.rs.
        let want = serde_json::json!({ "outcome": want["outcome"], "action": want["action"], "target": want["target"] });
        if got != want {
            mismatches.push(format!("{file}: expected {want}, got {got}"));
        }
    }
    for file in expected.keys() {
        assert!(
            files.contains(file),
            "expected.json names {file}, which is not in events/"
        );
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
