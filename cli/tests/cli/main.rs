//! The `guard` binary as an operator runs it: offline evaluation of the catalog, policy
//! validation, and replay, mark-stable and undo against the local emulator.

mod bus;
mod errors;
mod operators;

use guard_e2e::{events_dir, Emulator};
use serde_json::Value;
use std::process::{Command, Output};

/// The state table the tests' `guard` commands share (`GUARD_STATE_TABLE`), on the emulator.
pub(crate) const STATE_TABLE: &str = "guard-cli-tests-state";

/// `guard ARGS`, with the tests' state table.
pub(crate) fn guard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_guard"))
        .args(args)
        .env("GUARD_STATE_TABLE", STATE_TABLE)
        .output()
        .expect("guard runs")
}

/// The tests' state table, made if need be.
pub(crate) async fn state_table(emu: &Emulator) -> rollback_guard::adapters::DynamoState {
    emu.state_table(STATE_TABLE).await.expect("state table")
}

/// The command's standard output, once it succeeded.
pub(crate) fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

pub(crate) fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

/// A policy file guarding one function and the catalog's EventBridge alarm event for it.
pub(crate) struct Files {
    _dir: tempfile::TempDir,
    policy: String,
    event: String,
}

impl Files {
    /// The policy and the event, written to a directory of their own.
    pub(crate) fn new(policy: &str, event: &str) -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let policy_path = dir.path().join("policy.toml");
        std::fs::write(&policy_path, policy).expect("policy");
        let event_path = dir.path().join("alarm.json");
        std::fs::write(&event_path, event).expect("event");
        Self {
            policy: policy_path.to_string_lossy().into_owned(),
            event: event_path.to_string_lossy().into_owned(),
            _dir: dir,
        }
    }

    pub(crate) fn files(&self) -> (&str, &str) {
        (&self.policy, &self.event)
    }
}

/// A function `orders-ai-<unique>` with 3 versions and `live` on `version`, its error-rate
/// alarm in ALARM, and the files the CLI reads for it.
pub(crate) async fn function_with_files(version: &str) -> (Emulator, String, Files) {
    let emu = Emulator::connect().await;
    state_table(&emu).await;
    let name = guard_e2e::unique("orders-ai");
    emu.function(&name, 3, "live", version, &[])
        .await
        .expect("function");
    emu.alarm(&format!("{name}-error-rate"), "ALARM")
        .await
        .expect("alarm");
    let policy = format!("[[target]]\nname = \"{name}\"\nfunction = \"{name}\"\nalias = \"live\"\n\n[[trigger]]\nalarm = \"{name}-*\"\ntarget = \"{name}\"\naction = \"rollback-alias\"\n");
    let event = guard_e2e::event_text("eventbridge-alarm.json").replace("orders-ai", &name);
    let files = Files::new(&policy, &event);
    (emu, name, files)
}

#[test]
fn evaluate_prints_one_json_line_per_event_matching_the_catalog() {
    let dir = events_dir();
    let policy = dir.join("policy.toml");
    let files = [
        "eventbridge-alarm.json",
        "sns-metric-math.json",
        "eventbridge-ok.json",
        "eventbridge-unmatched-alarm.json",
        "bad-truncated.json",
        "eventbridge-replayed.json",
    ];
    let paths: Vec<String> = files
        .iter()
        .map(|f| dir.join(f).to_string_lossy().into_owned())
        .collect();
    let mut args = vec!["evaluate", "--policy", policy.to_str().expect("path")];
    args.extend(paths.iter().map(String::as_str));
    let out = guard(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<String> = lines(&out)
        .iter()
        .map(|l| l["outcome"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        got,
        ["act", "act", "no-action", "ignored", "rejected", "dry-run"]
    );
    let first = &lines(&out)[0];
    for field in [
        "file",
        "outcome",
        "action",
        "target",
        "alarm",
        "state",
        "transport",
        "dedupe_key",
        "reason",
    ] {
        assert!(first.get(field).is_some(), "missing {field} in {first}");
    }
    assert_eq!(first["dedupe_key"], "arn:aws:cloudwatch:us-east-1:123456789012:alarm:orders-ai-error-rate@2026-11-20T03:12:45.123Z");
}

#[test]
fn validate_names_the_bad_field_and_fails() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, "[guard]\ncooldown_minutes = -1\n[[target]]\nname='a'\nfunction='a'\nalias='live'\n[[trigger]]\nalarm='a'\ntarget='a'\naction='rollback-alias'\n")
        .expect("write");
    let out = guard(&["validate", path.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("guard.cooldown_minutes"), "{err}");
    let ok = guard(&[
        "validate",
        events_dir().join("policy.toml").to_str().expect("path"),
    ]);
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout)
        .starts_with("policy OK: 6 target(s), 8 trigger(s) (1 fleet: target read from the alarm; 1 observing, changing nothing), cooldown 30 min, blame window 1440 min, at most 20 automatic rollbacks an hour an account"));
}

/// Commands that read or write what the guard remembers refuse to run without its state
/// table: a memory of their own would be one the deployed guard never sees.
#[test]
fn commands_that_remember_need_the_state_table() {
    let policy = events_dir().join("policy.toml");
    let policy = policy.to_str().expect("path");
    for args in [
        vec!["undo", "--policy", policy, "--target", "orders-ai"],
        vec![
            "pause",
            "--policy",
            policy,
            "--target",
            "orders-ai",
            "--for",
            "1h",
            "--reason",
            "x",
        ],
        vec!["resume", "--policy", policy, "--target", "orders-ai"],
        vec!["mark-stable", "--function", "orders-ai", "--alias", "live"],
        vec!["targets", "--policy", policy],
        vec!["reenable", "--policy", policy, "--target", "orders-ai"],
        vec![
            "replay",
            "--policy",
            policy,
            "events/eventbridge-alarm.json",
        ],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_guard"))
            .args(&args)
            .env_remove("GUARD_STATE_TABLE")
            .output()
            .expect("guard runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("set GUARD_STATE_TABLE to the guard's state table"),
            "{args:?}: {err}"
        );
    }
}

#[tokio::test]
async fn replay_mark_stable_and_undo_work_against_the_emulator() {
    let (emu, name, dir) = function_with_files("2").await;
    let (policy, event) = dir.files();

    // Record 2 as stable, then a deployment moves the alias to 3.
    let marked = guard(&["mark-stable", "--function", &name, "--alias", "live"]);
    assert!(
        marked.status.success(),
        "{}",
        String::from_utf8_lossy(&marked.stderr)
    );
    emu.lambda
        .update_alias()
        .function_name(&name)
        .name("live")
        .function_version("3")
        .send()
        .await
        .expect("deploy");

    let dry = guard(&["replay", "--policy", policy, "--dry-run", event]);
    assert_eq!(lines(&dry)[0]["outcome"], "planned");
    assert_eq!(emu.alias(&name, "live").await.expect("alias"), "3");

    let out = guard(&["replay", "--policy", policy, event]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = &lines(&out)[0];
    assert_eq!(line["outcome"], "executed", "{line}");
    assert_eq!(line["alias_before"]["version"], "3");
    assert_eq!(line["alias_after"]["version"], "2");
    assert_eq!(emu.alias(&name, "live").await.expect("alias"), "2");

    let again = guard(&["replay", "--policy", policy, event]);
    assert_eq!(lines(&again)[0]["outcome"], "already-done");

    let undo = guard(&["undo", "--policy", policy, "--target", &name]);
    assert!(
        undo.status.success(),
        "{}",
        String::from_utf8_lossy(&undo.stderr)
    );
    assert_eq!(emu.alias(&name, "live").await.expect("alias"), "3");
    let refused = guard(&["undo", "--policy", policy, "--target", &name]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("undo refused"));
}
