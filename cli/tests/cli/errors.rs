//! Each command once with a wrong value, and the answer a person gets: the flag named, the
//! form expected, exit code 2, before any AWS call (no emulator here: a command that reached
//! AWS would fail otherwise). And every command's help has an example.

use std::process::Command;

/// `guard ARGS` with nothing to reach: a flag's value is refused before any AWS call.
fn refused(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_guard"))
        .args(args)
        .env("GUARD_STATE_TABLE", "unused")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_REGION", "us-east-1")
        .output()
        .expect("guard runs");
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// (arguments, what the answer says)
const ANSWERS: [(&[&str], &str); 16] = [
    (
        &["evaluate", "--account", "12", "--region", "us-east-1", "x.json"],
        "invalid value '12' for '--account <ACCOUNT>': expected an account id: 12 digits",
    ),
    (
        &["evaluate", "--account", "123456789012", "--region", "mars", "x.json"],
        "invalid value 'mars' for '--region <REGION>': expected a region's name, such as us-east-1",
    ),
    (
        &["evaluate", "--policy", "../events/policy.toml", "no-such-event.json"],
        "cannot read no-such-event.json",
    ),
    (&["validate", "no-such-policy.toml"], "policy: no-such-policy.toml: cannot read the policy file"),
    (
        &["mark-stable", "--function", "orders-ai", "--alias", "live", "--version", "latest"],
        "invalid value 'latest' for '--version <VERSION>': expected a published version's number",
    ),
    (
        &["request", "--target", "orders-ai", "--action", "delete"],
        "invalid value 'delete' for '--action <ACTION>'",
    ),
    (
        &["backtest", "--archive", "a", "--from", "yesterday", "--to", "2026-11-20T00:00:00Z", "--rule", "r"],
        "--from: `yesterday` is not an RFC 3339 time",
    ),
    (
        &["undo", "--since", "soon"],
        "invalid value 'soon' for '--since <SINCE>': expected a duration such as 30m, 2h or 1d, at most 30d",
    ),
    (
        &["undo", "--target", "orders-ai", "--since", "30m"],
        "the argument '--target <TARGET>' cannot be used with '--since <SINCE>'",
    ),
    (
        &["pause", "--target", "orders-ai", "--for", "3x", "--reason", "r"],
        "invalid value '3x' for '--for <DURATION>': expected a duration such as 30m, 2h or 1d, at most 7d",
    ),
    (
        &["reenable", "--target", "orders-ai", "--steps", "50,10"],
        "invalid value '50,10' for '--steps <STEPS>'",
    ),
    (
        &["reenable", "--target", "orders-ai", "--every", "5s"],
        "invalid value '5s' for '--every <EVERY>'",
    ),
    (&["resume", "--target", "orders-ai", "--account", "x"], "invalid value 'x' for '--account <ACCOUNT>'"),
    (&["targets", "--account", "12"], "invalid value '12' for '--account <ACCOUNT>'"),
    (
        &["protect", "--function", "payments", "--alias", "live", "--p95-ms=-5"],
        "invalid value '-5' for '--p95-ms <P95_MS>': expected a positive number of milliseconds",
    ),
    (
        &["unprotect", "--function", "payments", "--alias", "3"],
        "invalid value '3' for '--alias <ALIAS>': expected an alias's name, such as live",
    ),
];

#[test]
fn a_wrong_value_names_the_flag_and_the_form_it_expects() {
    for (args, answer) in ANSWERS {
        let said = refused(args);
        assert!(said.contains(answer), "guard {}: {said}", args.join(" "));
    }
}

#[test]
fn every_command_has_an_example_in_its_help() {
    for command in [
        "evaluate",
        "replay",
        "validate",
        "mark-stable",
        "request",
        "backtest",
        "undo",
        "pause",
        "reenable",
        "resume",
        "targets",
        "protect",
        "unprotect",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_guard"))
            .args([command, "--help"])
            .output()
            .expect("guard runs");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("Example"), "guard {command} --help: {help}");
        assert!(
            help.contains(&format!("guard {command} ")),
            "guard {command} --help: {help}"
        );
    }
}
