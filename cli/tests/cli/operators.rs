//! The operator's commands against the emulator: pause, resume and targets; undo after a storm
//! (`--since`); a fleet function and a member account reached by name and `--account`;
//! re-enable.

use crate::{function_with_files, guard, lines, ok, state_table, Files};
use guard_e2e::Emulator;
use serde_json::Value;
use std::process::Command;

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

/// After a storm: `guard undo --since` lists every automatic action of the window and, with
/// `--yes`, undoes each whose alias is still where the guard left it; one a person moved since
/// is left as it is.
#[tokio::test]
async fn undo_since_lists_a_storms_actions_and_undoes_those_still_where_left() {
    let emu = Emulator::connect().await;
    // A table of its own: the other tests' actions are not this storm's.
    let table = guard_e2e::unique("guard-cli-storm");
    emu.state_table(&table).await.expect("state table");
    let storm = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_guard"))
            .args(args)
            .env("GUARD_STATE_TABLE", &table)
            .output()
            .expect("guard runs")
    };
    let mut names = Vec::new();
    let mut trigger = String::new();
    for _ in 0..2 {
        let name = guard_e2e::unique("storm");
        let alarm = format!("guarded-{name}-error-rate");
        emu.protected(&name, &alarm).await.expect("function");
        trigger = "[[trigger]]\nalarm = \"guarded-storm-*\"\ntarget = \"from-alarm\"\naction = \"rollback-alias\"\n".to_string();
        let files = Files::new(
            &trigger,
            &guard_e2e::event_text("eventbridge-fleet-alarm.json").replace("payments", &name),
        );
        let (policy, event) = files.files();
        let acted = lines(&storm(&["replay", "--policy", policy, event]))[0].clone();
        assert_eq!(acted["outcome"], "executed", "{acted}");
        assert_eq!(emu.alias(&name, "live").await.expect("alias"), "2");
        names.push(name);
    }
    let files = Files::new(&trigger, "{}");
    let (policy, _) = files.files();

    // Without --yes: listed, nothing changed.
    let listed = ok(&storm(&["undo", "--policy", policy, "--since", "30m"]));
    for name in &names {
        assert!(
            listed.contains(&format!("{name}: rollback-alias")),
            "{listed}"
        );
    }
    assert!(listed.contains("2 automatic action(s)"), "{listed}");
    assert!(listed.contains("--yes"), "{listed}");
    for name in &names {
        assert_eq!(emu.alias(name, "live").await.expect("alias"), "2");
    }

    // A person moves the second alias meanwhile: it is left as they left it.
    emu.lambda
        .update_alias()
        .function_name(&names[1])
        .name("live")
        .function_version("1")
        .send()
        .await
        .expect("a person's move");
    let undone = ok(&storm(&[
        "undo", "--policy", policy, "--since", "30m", "--yes",
    ]));
    assert!(undone.contains("1 undone, 1 left as they are"), "{undone}");
    assert_eq!(emu.alias(&names[0], "live").await.expect("alias"), "3");
    assert_eq!(emu.alias(&names[1], "live").await.expect("alias"), "1");
    // The undo is a person's: it is not listed again.
    let again = ok(&storm(&["undo", "--policy", policy, "--since", "30m"]));
    assert!(!again.contains(&names[0]), "{again}");

    let bad = storm(&["undo", "--policy", policy, "--since", "soon"]);
    assert_eq!(bad.status.code(), Some(2));
    let said = String::from_utf8_lossy(&bad.stderr);
    assert!(
        said.contains("invalid value 'soon' for '--since <SINCE>'"),
        "{said}"
    );
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

/// `guard protect` on the emulator puts a function alias under the fleet trigger: its alarms
/// (metric math on the alias's metrics, tagged with what made them) and the opt-in tag; an
/// alarm of those in ALARM is then acted on through the fleet trigger; `guard unprotect`
/// takes exactly that away again.
#[tokio::test]
async fn protect_puts_a_function_under_the_fleet_trigger_and_unprotect_takes_it_away() {
    let emu = Emulator::connect().await;
    state_table(&emu).await;
    let name = guard_e2e::unique("shop");
    emu.function(&name, 3, "live", "3", &[])
        .await
        .expect("function");
    let files = Files::new(
        "[[trigger]]\nalarm = \"guarded-*\"\ntarget = \"from-alarm\"\naction = \"rollback-alias\"\n",
        "{}",
    );
    let (policy, _) = files.files();

    let dry = ok(&guard(&[
        "protect",
        "--policy",
        policy,
        "--function",
        &name,
        "--alias",
        "live",
        "--dry-run",
    ]));
    assert!(dry.contains("dry run: nothing changed"), "{dry}");
    assert!(emu.tags(&name).await.expect("tags").is_empty());

    let done = ok(&guard(&[
        "protect",
        "--policy",
        policy,
        "--function",
        &name,
        "--alias",
        "live",
    ]));
    let rate = format!("guarded-{name}-live-error-rate");
    assert!(done.contains(&format!("created alarm {rate}")), "{done}");
    assert!(
        done.contains(&format!(
            "To undo: guard unprotect --function {name} --alias live"
        )),
        "{done}"
    );
    // A function without traffic on the emulator: said.
    assert!(
        done.contains("had no invocations in the last day"),
        "{done}"
    );
    assert_eq!(
        emu.tags(&name)
            .await
            .expect("tags")
            .get("rollback-guard:protect"),
        Some(&"live".to_string())
    );
    let described = emu
        .cloudwatch
        .describe_alarms()
        .alarm_name_prefix(format!("guarded-{name}-"))
        .send()
        .await
        .expect("alarms");
    assert_eq!(described.metric_alarms().len(), 2);

    // The alarm fires: the guard acts on the function alias its metrics name.
    emu.set_alarm(&rate, "ALARM").await.expect("alarm");
    let event = guard_e2e::event_text("eventbridge-fleet-alarm.json")
        .replace("guarded-payments-error-rate", &rate)
        .replace("payments", &name);
    let event_file = Files::new("", &event);
    let (_, event_path) = event_file.files();
    let acted = lines(&guard(&["replay", "--policy", policy, event_path]))[0].clone();
    assert_eq!(acted["outcome"], "executed", "{acted}");
    assert_eq!(emu.alias(&name, "live").await.expect("alias"), "2");

    let undone = ok(&guard(&[
        "unprotect",
        "--policy",
        policy,
        "--function",
        &name,
        "--alias",
        "live",
    ]));
    assert!(
        undone.contains(&format!("deleted alarm {rate}")),
        "{undone}"
    );
    assert!(!emu
        .tags(&name)
        .await
        .expect("tags")
        .contains_key("rollback-guard:protect"));
    let left = emu
        .cloudwatch
        .describe_alarms()
        .alarm_name_prefix(format!("guarded-{name}-"))
        .send()
        .await
        .expect("alarms");
    assert!(left.metric_alarms().is_empty());

    let missing = guard(&[
        "protect",
        "--policy",
        policy,
        "--function",
        "no-such-function",
        "--alias",
        "live",
    ]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&missing.stderr)
            .contains("function no-such-function does not exist"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
}
