//! The `guard` binary as an operator runs it: offline evaluation of the catalog, policy
//! validation, and replay, mark-stable and undo against the local emulator.

use guard_e2e::{events_dir, Emulator};
use serde_json::Value;
use std::process::{Command, Output};

/// The state table the tests' `guard` commands share (`GUARD_STATE_TABLE`), on the emulator.
const STATE_TABLE: &str = "guard-cli-tests-state";

/// `guard ARGS`, with the tests' state table.
fn guard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_guard"))
        .args(args)
        .env("GUARD_STATE_TABLE", STATE_TABLE)
        .output()
        .expect("guard runs")
}

/// The tests' state table, made if need be.
async fn state_table(emu: &Emulator) -> rollback_guard::adapters::DynamoState {
    emu.state_table(STATE_TABLE).await.expect("state table")
}

/// The command's standard output, once it succeeded.
fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

/// A policy file guarding one function and the catalog's EventBridge alarm event for it.
struct Files {
    _dir: tempfile::TempDir,
    policy: String,
    event: String,
}

impl Files {
    /// The policy and the event, written to a directory of their own.
    fn new(policy: &str, event: &str) -> Self {
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

    fn files(&self) -> (&str, &str) {
        (&self.policy, &self.event)
    }
}

/// A function `orders-ai-<unique>` with 3 versions and `live` on `version`, its error-rate
/// alarm in ALARM, and the files the CLI reads for it.
async fn function_with_files(version: &str) -> (Emulator, String, Files) {
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
        .starts_with("policy OK: 3 target(s), 5 trigger(s) (1 fleet: target read from the alarm)"));
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

#[tokio::test]
async fn request_puts_an_event_on_the_bus_that_the_guard_acts_on() {
    let emu = Emulator::connect().await;
    state_table(&emu).await;
    let name = guard_e2e::unique("checkout-ai");
    emu.function(&name, 3, "live", "3", &[])
        .await
        .expect("function");
    // Requests go to a bus of their own (the template's RequestBus), not the audit bus.
    let bus = format!("{name}-bus");
    let requests = format!("{name}-requests");
    let queue = emu
        .bus_with_queue_for(&requests, r#"{"detail-type":["Rollback Requested"]}"#)
        .await
        .expect("bus");
    let dir = tempfile::tempdir().expect("tmp");
    let policy_path = dir.path().join("policy.toml");
    let policy_text = format!(
        "[guard]\nevent_bus = \"{bus}\"\nrequest_sources = [\"rollback-guard.cli\"]\n\n[[target]]\nname = \"{name}\"\nfunction = \"{name}\"\nalias = \"live\"\n\n[[trigger]]\nalarm = \"{name}-*\"\ntarget = \"{name}\"\naction = \"rollback-alias\"\n"
    );
    std::fs::write(&policy_path, &policy_text).expect("policy");
    let policy = policy_path.to_str().expect("path");

    let unknown = guard(&[
        "request",
        "--policy",
        policy,
        "--target",
        "nope",
        "--action",
        "rollback-alias",
    ]);
    assert_eq!(unknown.status.code(), Some(2));
    let out = guard(&[
        "request",
        "--policy",
        policy,
        "--target",
        &name,
        "--action",
        "rollback-alias",
        "--reason",
        "p95 doubled",
        "--requested-by",
        "oncall",
        "--bus",
        &requests,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // What the rule delivered is exactly what the guard function would be invoked with: who
    // asks, and the identity that sent it (EventBridge names none on a custom event).
    let delivered = emu.drain(&queue).await.expect("queue");
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0]["detail"]["requested_by"], "oncall");
    let sender = delivered[0]["detail"]["sender"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(sender.starts_with("arn:aws:"), "{}", delivered[0]);
    let policy = rollback_guard::Policy::from_toml(&policy_text).expect("policy");
    let g = rollback_guard::Guard::new(
        policy,
        rollback_guard::adapters::aws_ports(&emu.config),
        guard_e2e::home(),
    );
    // The emulator leaves `account` out of delivered events; EventBridge always sets it, and
    // the guard rightly refuses events without one.
    let mut event = delivered[0].clone();
    assert!(
        event.get("account").is_none(),
        "the emulator now sets `account`: drop this patch"
    );
    event["account"] = "123456789012".into();
    let report = g.handle(&event, false).await;
    assert_eq!(
        report.outcome,
        rollback_guard::Outcome::Executed,
        "{}",
        report.reason
    );
    assert!(
        report.alarm.as_deref().is_some_and(|a| a.contains(&sender)),
        "{:?}",
        report.alarm
    );
    assert_eq!(emu.alias(&name, "live").await.expect("alias"), "2");
}

#[tokio::test]
async fn backtest_replays_an_archive_and_the_guard_only_plans() {
    let s = guard_e2e::Sandbox::new(guard_e2e::ROLLBACK, 3, "3", &[], "ALARM").await;
    let emu = &s.emu;
    let bus = format!("{}-bus", s.name);
    let bus_arn = format!("arn:aws:events:us-east-1:123456789012:event-bus/{bus}");
    let archive = format!("{}-archive", s.name);
    emu.events
        .create_archive()
        .archive_name(&archive)
        .event_source_arn(&bus_arn)
        .send()
        .await
        .expect("archive");
    // What the guard function would receive: alarm events on the bus, read through SQS here.
    let (queue, queue_arn) = emu
        .queue(&format!("{}-alarms", s.name))
        .await
        .expect("queue");
    emu.events
        .put_rule()
        .name(format!("{}-alarms", s.name))
        .event_bus_name(&bus)
        .event_pattern(r#"{"source":["aws.cloudwatch"]}"#)
        .send()
        .await
        .expect("rule");
    emu.events
        .put_targets()
        .rule(format!("{}-alarms", s.name))
        .event_bus_name(&bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("q")
                .arn(queue_arn)
                .build()
                .expect("target"),
        )
        .send()
        .await
        .expect("target");
    let alarm = s.event("eventbridge-alarm.json");
    let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .source("aws.cloudwatch")
        .detail_type("CloudWatch Alarm State Change")
        .detail(alarm["detail"].to_string())
        .resources(alarm["resources"][0].as_str().unwrap_or_default())
        .event_bus_name(&bus)
        .build();
    emu.events
        .put_events()
        .entries(entry)
        .send()
        .await
        .expect("put");
    let live = emu.drain(&queue).await.expect("live");
    assert_eq!(live.len(), 1);
    assert!(live[0].get("replay-name").is_none());

    let from = (chrono::Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
    let to = (chrono::Utc::now() + chrono::Duration::minutes(5)).to_rfc3339();
    // A replay named otherwise could be acted on: refused.
    let unnamed = guard(&[
        "backtest",
        "--archive",
        &archive,
        "--from",
        &from,
        "--to",
        &to,
        "--rule",
        &format!("{}-alarms", s.name),
        "--name",
        "last-week",
    ]);
    assert_eq!(unnamed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unnamed.stderr).contains("named backtest-"));
    let replay_name = format!("backtest-{}", s.name);
    let out = guard(&[
        "backtest",
        "--archive",
        &archive,
        "--from",
        &from,
        "--to",
        &to,
        "--rule",
        &format!("{}-alarms", s.name),
        "--name",
        &replay_name,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("COMPLETED"));

    let replayed = emu.drain(&queue).await.expect("replayed");
    assert_eq!(replayed.len(), 1, "{replayed:?}");
    assert_eq!(replayed[0]["replay-name"], replay_name.as_str());
    let mut event = replayed[0].clone();
    if event.get("account").is_none() {
        // See request_puts_an_event_on_the_bus_that_the_guard_acts_on.
        event["account"] = "123456789012".into();
    }
    let report = s.guard().handle(&event, false).await;
    assert_eq!(
        report.outcome,
        rollback_guard::Outcome::Planned,
        "{}",
        report.reason
    );
    // A backtest is planned even by a guard that acts on replays.
    let acting = rollback_guard::Policy::from_toml(&s.policy_toml.replace(
        "cooldown_minutes = 30",
        "cooldown_minutes = 30\non_replay = \"act\"",
    ))
    .expect("policy");
    assert_eq!(
        acting.guard.on_replay,
        rollback_guard::policy::ReplayMode::Act
    );
    let report = rollback_guard::Guard::new(acting, s.ports(), guard_e2e::home())
        .handle(&event, false)
        .await;
    assert_eq!(
        report.outcome,
        rollback_guard::Outcome::Planned,
        "{}",
        report.reason
    );
    assert_eq!(s.alias().await, "3");

    let bad = guard(&[
        "backtest",
        "--archive",
        &archive,
        "--from",
        &to,
        "--to",
        &from,
    ]);
    assert_eq!(bad.status.code(), Some(2));
}

#[tokio::test]
async fn pause_targets_and_resume_hold_the_guard_back_and_let_it_act_again() {
    let (emu, name, dir) = function_with_files("3").await;
    let (policy, event) = dir.files();

    let too_long = guard(&[
        "pause", "--policy", policy, "--target", &name, "--for", "8d", "--reason", "x",
    ]);
    assert_eq!(too_long.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&too_long.stderr).contains("at most 7d"));

    let paused = ok(&guard(&[
        "pause",
        "--policy",
        policy,
        "--target",
        &name,
        "--for",
        "2h",
        "--reason",
        "schema migration",
        "--by",
        "oncall",
    ]));
    assert!(paused.contains("paused by oncall until"), "{paused}");
    let listed = ok(&guard(&["targets", "--policy", policy]));
    assert!(
        listed.contains(&format!("{name}\t{name}:live\tpaused by oncall until"))
            && listed.contains("schema migration"),
        "{listed}"
    );

    let held = lines(&guard(&["replay", "--policy", policy, event]))[0].clone();
    assert_eq!(held["outcome"], "skipped", "{held}");
    assert!(held["reason"]
        .as_str()
        .unwrap_or("")
        .contains("schema migration"));
    assert_eq!(emu.alias(&name, "live").await.expect("alias"), "3");

    let resumed = ok(&guard(&["resume", "--policy", policy, "--target", &name]));
    assert!(resumed.contains("resumed"), "{resumed}");
    let listed = ok(&guard(&["targets", "--policy", policy]));
    assert!(
        listed.contains(&format!("{name}\t{name}:live\tguarded")),
        "{listed}"
    );
    let acted = lines(&guard(&["replay", "--policy", policy, event]))[0].clone();
    assert_eq!(acted["outcome"], "executed", "{acted}");
    assert_eq!(emu.alias(&name, "live").await.expect("alias"), "2");
}

/// A fleet target through the CLI: found by its tag, not in the policy. The alarm's event acts
/// on the function its metrics name; `targets` lists it with its alarm and the last action;
/// `undo` and `pause` find it by the function's name.
#[tokio::test]
async fn targets_undo_and_pause_reach_a_function_that_opted_in() {
    let emu = Emulator::connect().await;
    state_table(&emu).await;
    let name = guard_e2e::unique("payments");
    let alarm = format!("guarded-{name}-error-rate");
    emu.protected(&name, &alarm).await.expect("function");
    let files = Files::new(
        &format!("[[trigger]]\nalarm = \"guarded-{name}-*\"\ntarget = \"from-alarm\"\naction = \"rollback-alias\"\n"),
        &guard_e2e::event_text("eventbridge-fleet-alarm.json").replace("payments", &name),
    );
    let (policy, event) = files.files();

    let acted = lines(&guard(&["replay", "--policy", policy, event]))[0].clone();
    assert_eq!(acted["outcome"], "executed", "{acted}");
    assert_eq!(emu.alias(&name, "live").await.expect("alias"), "2");

    let listed = ok(&guard(&["targets", "--policy", policy]));
    let line = listed
        .lines()
        .find(|l| l.starts_with(&format!("{name}\t")))
        .unwrap_or_else(|| panic!("{name} not listed: {listed}"));
    assert!(
        line.starts_with(&format!(
            "{name}\t{name}:live\tguarded\tfleet serving version 2\tstable none\talarms {alarm}\tlast rollback-alias at"
        )),
        "{line}"
    );
    let json: Value = serde_json::from_str(&ok(&guard(&["targets", "--policy", policy, "--json"])))
        .expect("json");
    let entry = json["targets"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["function"] == name.as_str()))
        .expect("listed");
    assert_eq!(entry["source"], "fleet");
    assert_eq!(entry["serving"]["version"], "2");

    ok(&guard(&["undo", "--policy", policy, "--target", &name]));
    assert_eq!(emu.alias(&name, "live").await.expect("alias"), "3");
    let paused = ok(&guard(&[
        "pause", "--policy", policy, "--target", &name, "--for", "1h", "--reason", "drill",
    ]));
    assert!(paused.contains("paused"), "{paused}");
    let unknown = guard(&[
        "pause",
        "--policy",
        policy,
        "--target",
        "no-such-fn",
        "--for",
        "1h",
        "--reason",
        "x",
    ]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("there is no function of that name"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );
}

/// A member account of an organisation through the CLI: replay acts there through the member
/// role; `mark-stable`, `targets` and `undo` reach it with `--account`.
#[tokio::test]
async fn account_reaches_a_member_account_through_the_member_role() {
    const MEMBER: &str = "222222222222";
    let member = Emulator::connect_as(MEMBER).await;
    state_table(&Emulator::connect().await).await;
    let name = guard_e2e::unique("payments");
    let alarm = format!("guarded-{name}-error-rate");
    member.protected(&name, &alarm).await.expect("function");
    let files = Files::new(
        &format!(
            "[guard]\naccounts = [\"123456789012\", \"{MEMBER}\"]\nmember_role = \"arn:aws:iam::{{account}}:role/rollback-guard-member\"\n\n[[trigger]]\nalarm = \"guarded-{name}-*\"\ntarget = \"from-alarm\"\naction = \"rollback-alias\"\n"
        ),
        &guard_e2e::event_text("eventbridge-fleet-alarm.json")
            .replace("payments", &name)
            .replace("123456789012", MEMBER),
    );
    let (policy, event) = files.files();

    let marked = ok(&guard(&[
        "mark-stable",
        "--function",
        &name,
        "--alias",
        "live",
        "--version",
        "1",
        "--policy",
        policy,
        "--account",
        MEMBER,
    ]));
    assert!(marked.contains("stable version is now 1"), "{marked}");
    let acted = lines(&guard(&["replay", "--policy", policy, event]))[0].clone();
    assert_eq!(acted["outcome"], "executed", "{acted}");
    assert_eq!(acted["account"], MEMBER, "{acted}");
    assert_eq!(member.alias(&name, "live").await.expect("alias"), "1");

    let listed: Value = serde_json::from_str(&ok(&guard(&[
        "targets",
        "--policy",
        policy,
        "--account",
        MEMBER,
        "--json",
    ])))
    .expect("json");
    let entry = listed["targets"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["function"] == name.as_str()))
        .unwrap_or_else(|| panic!("not listed: {listed}"));
    assert_eq!(entry["stable"], "1");
    assert_eq!(entry["alarms"][0], alarm.as_str());

    ok(&guard(&[
        "undo",
        "--policy",
        policy,
        "--target",
        &name,
        "--account",
        MEMBER,
    ]));
    assert_eq!(member.alias(&name, "live").await.expect("alias"), "3");
    ok(&guard(&[
        "pause",
        "--policy",
        policy,
        "--target",
        &name,
        "--account",
        MEMBER,
        "--for",
        "1h",
        "--reason",
        "drill",
    ]));
    // What the guard remembers of the member's function is the central guard's, in its table.
    let key = rollback_guard::state::StateKey::new(MEMBER, &name, Some("live"));
    let state = rollback_guard::ports::StateStore::read(
        &state_table(&Emulator::connect().await).await,
        &key,
    )
    .await
    .expect("state")
    .0;
    assert_eq!(state.pause.map(|p| p.reason).as_deref(), Some("drill"));
    assert_eq!(member.tags(&name).await.expect("tags").len(), 1);
    let unlisted = guard(&["targets", "--policy", policy, "--account", "444444444444"]);
    assert_eq!(unlisted.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&unlisted.stderr).contains("may not act in account 444444444444")
    );
}

/// `guard reenable` after the guard rolled an alias back: the first step at once, its status,
/// a second start refused, cancel leaving the alias where it stands.
#[tokio::test]
async fn reenable_starts_reports_and_cancels_against_the_emulator() {
    let (emu, name, dir) = function_with_files("3").await;
    let (policy, event) = dir.files();
    // No cooldown, so the way back may start at once.
    let with_no_cooldown = format!(
        "[guard]\ncooldown_minutes = 0\n\n{}",
        std::fs::read_to_string(policy).expect("policy")
    );
    std::fs::write(policy, with_no_cooldown).expect("policy");
    ok(&guard(&["replay", "--policy", policy, event]));
    assert_eq!(emu.alias(&name, "live").await.expect("alias"), "2");

    let started = ok(&guard(&[
        "reenable", "--policy", policy, "--target", &name, "--every", "2m", "--by", "oncall",
    ]));
    assert!(
        started.contains("executed: re-enabling version 3"),
        "{started}"
    );
    assert_eq!(emu.alias(&name, "live").await.expect("alias"), "2 + 3=0.1");
    let status = ok(&guard(&[
        "reenable", "--policy", policy, "--target", &name, "--status",
    ]));
    assert!(status.contains("step 1 of 3"), "{status}");
    let listed = ok(&guard(&["targets", "--policy", policy]));
    assert!(
        listed.contains("re-enabling version 3 on alias live"),
        "{listed}"
    );
    let twice = guard(&["reenable", "--policy", policy, "--target", &name]);
    assert_eq!(twice.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&twice.stderr).contains("already in progress"),
        "{}",
        String::from_utf8_lossy(&twice.stderr)
    );
    let cancelled = ok(&guard(&[
        "reenable", "--policy", policy, "--target", &name, "--cancel", "--by", "oncall",
    ]));
    assert!(cancelled.contains("cancelled by oncall"), "{cancelled}");
    assert_eq!(emu.alias(&name, "live").await.expect("alias"), "2 + 3=0.1");
    let none = ok(&guard(&[
        "reenable", "--policy", policy, "--target", &name, "--status",
    ]));
    assert!(none.contains("no re-enable in progress"), "{none}");
}
