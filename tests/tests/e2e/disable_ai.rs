//! `disable-ai`, the escalation ladder and undo on the local AWS emulator, and 250 random
//! environments through the merge: nothing but the flag ever changes.

use chrono::{DateTime, Duration, Utc};
use guard_e2e::{Emulator, Sandbox};
use proptest::collection::btree_map;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rollback_guard::fakes::FakeClock;
use rollback_guard::guard::Outcome;
use rollback_guard::operator::OperatorError;
use rollback_guard::{adapters, Guard, Policy};
use std::collections::BTreeMap;
use std::sync::Arc;

const DISABLE: &str = r#"action = "disable-ai""#;
const LADDER: &str = "action = [\"disable-ai\", \"rollback-alias\"]\nescalate_after_minutes = 10";

fn with_flag(mut vars: BTreeMap<String, String>) -> BTreeMap<String, String> {
    vars.insert("AI_ENABLED".into(), "false".into());
    vars
}

#[tokio::test]
async fn disable_ai_serves_the_same_code_with_the_flag_off_and_every_other_variable_intact() {
    let s = Sandbox::new(DISABLE, 3, "3", &[], "ALARM").await;
    let served_env = s.emu.environment(&s.name, Some("3")).await.expect("env");
    let served_code = s.emu.code_sha256(&s.name, Some("3")).await.expect("code");

    let report = s
        .guard()
        .handle(&s.event("eventbridge-alarm.json"), false)
        .await;

    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(s.alias().await, "4");
    assert_eq!(
        s.emu.environment(&s.name, Some("4")).await.expect("env"),
        with_flag(served_env.clone())
    );
    assert_eq!(
        s.emu.code_sha256(&s.name, Some("4")).await.expect("code"),
        served_code
    );
    // The version that misbehaved is untouched: undo can go back to it.
    assert_eq!(
        s.emu.environment(&s.name, Some("3")).await.expect("env"),
        served_env
    );
    let notes = s.notifications().await;
    assert_eq!(notes.len(), 1);
    let body = notes[0]["Message"].as_str().unwrap_or("");
    assert!(
        body.contains("Variables kept as they were: LOG_LEVEL, MODEL_ID, ORDERS_TABLE"),
        "{body}"
    );
    assert!(
        !body.contains("anthropic.claude-3-haiku"),
        "a value leaked:\n{body}"
    );
    let audit = s.audit_events().await;
    assert_eq!(audit[0]["detail-type"], "AI Disabled");
    assert_eq!(
        audit[0]["detail"]["preserved_variables"],
        serde_json::json!(["LOG_LEVEL", "MODEL_ID", "ORDERS_TABLE"])
    );
}

#[tokio::test]
async fn latest_with_other_code_is_refused_and_nothing_is_published() {
    let s = Sandbox::new(DISABLE, 3, "3", &[], "ALARM").await;
    s.emu
        .deploy_code(&s.name, "release 4, not yet published")
        .await
        .expect("deploy");

    let report = s
        .guard()
        .handle(&s.event("eventbridge-alarm.json"), false)
        .await;

    assert_eq!(report.outcome, Outcome::Failed);
    assert!(
        report.reason.starts_with("refusing to publish $LATEST"),
        "{}",
        report.reason
    );
    assert_eq!(
        s.emu.versions(&s.name).await.expect("versions"),
        vec!["1", "2", "3"]
    );
    assert_eq!(s.alias().await, "3");
    assert_eq!(
        s.emu.environment(&s.name, None).await.expect("env")["AI_ENABLED"],
        "true"
    );
    let audit = s.audit_events().await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["detail-type"], "Rollback Failed");
    assert!(audit[0]["detail"]["reason"]
        .as_str()
        .unwrap_or("")
        .contains("code differ"));
    assert_eq!(s.notifications().await.len(), 1);
}

#[tokio::test]
async fn already_off_is_a_no_op_with_at_most_one_notification() {
    let s = Sandbox::new(DISABLE, 3, "3", &[], "ALARM").await;
    assert_eq!(
        s.guard()
            .handle(&s.event("eventbridge-alarm.json"), false)
            .await
            .outcome,
        Outcome::Executed
    );
    // A later transition, past the cooldown (a clock 40 minutes on).
    let later = Arc::new(FakeClock::at(Utc::now() + Duration::minutes(40)));
    let mut again = s.event("eventbridge-alarm.json");
    again["detail"]["state"]["timestamp"] = "2026-11-20T04:00:00.000+0000".into();
    let report = s.guard_at(later).handle(&again, false).await;
    assert_eq!(report.outcome, Outcome::AlreadyDone, "{}", report.reason);
    assert_eq!(s.emu.versions(&s.name).await.expect("versions").len(), 4);
    assert_eq!(s.notifications().await.len(), 1);
}

#[tokio::test]
async fn the_ladder_escalates_while_the_alarm_stays_and_not_once_it_has_recovered() {
    let now = Utc::now();
    let schedule = guard_e2e::event_for("schedule.json", "orders-ai", "unused");
    // Still in ALARM ten minutes on: disable-ai, then the alias rollback.
    let s = Sandbox::new(LADDER, 3, "3", &[], "ALARM").await;
    assert_eq!(
        s.guard_at(Arc::new(FakeClock::at(now)))
            .handle(&s.event("eventbridge-alarm.json"), false)
            .await
            .outcome,
        Outcome::Executed
    );
    assert_eq!(s.alias().await, "4");
    let check = s
        .guard_at(Arc::new(FakeClock::at(now + Duration::minutes(10))))
        .handle(&schedule, false)
        .await;
    assert_eq!(check.outcome, Outcome::Executed, "{:?}", check.steps);
    assert_eq!(s.alias().await, "2");

    // Back in OK by then: no escalation.
    let r = Sandbox::new(LADDER, 3, "3", &[], "ALARM").await;
    assert_eq!(
        r.guard_at(Arc::new(FakeClock::at(now)))
            .handle(&r.event("eventbridge-alarm.json"), false)
            .await
            .outcome,
        Outcome::Executed
    );
    r.emu
        .set_alarm(&format!("{}-error-rate", r.name), "OK")
        .await
        .expect("recover");
    let check = r
        .guard_at(Arc::new(FakeClock::at(now + Duration::minutes(10))))
        .handle(&schedule, false)
        .await;
    assert_eq!(check.outcome, Outcome::NoAction);
    assert!(
        check.steps[0]
            .reason
            .contains("escalation to rollback-alias cancelled"),
        "{}",
        check.steps[0].reason
    );
    assert_eq!(r.alias().await, "4");
}

#[tokio::test]
async fn undo_after_disable_ai_restores_alias_and_flag_and_refuses_after_an_outside_change() {
    let s = Sandbox::new(DISABLE, 3, "3", &[], "ALARM").await;
    let latest_env = s.emu.environment(&s.name, None).await.expect("env");
    assert_eq!(
        s.guard()
            .handle(&s.event("eventbridge-alarm.json"), false)
            .await
            .outcome,
        Outcome::Executed
    );
    let undone = s.undo(&s.ports()).await.expect("undo");
    assert_eq!(
        undone.flag.map(|f| f.before),
        Some(Some("true".to_string()))
    );
    assert_eq!(s.alias().await, "3");
    assert_eq!(
        s.emu.environment(&s.name, None).await.expect("env"),
        latest_env
    );

    let t = Sandbox::new(DISABLE, 3, "3", &[], "ALARM").await;
    assert_eq!(
        t.guard()
            .handle(&t.event("eventbridge-alarm.json"), false)
            .await
            .outcome,
        Outcome::Executed
    );
    // Someone points the alias elsewhere by hand.
    t.emu
        .lambda
        .update_alias()
        .function_name(&t.name)
        .name("live")
        .function_version("2")
        .send()
        .await
        .expect("manual");
    let refused = t.undo(&t.ports()).await;
    assert!(
        matches!(refused, Err(OperatorError::Refused(_))),
        "{refused:?}"
    );
    assert_eq!(t.alias().await, "2");
}

/// Environment maps as Lambda allows them: names from a letter, values any text.
fn environments() -> impl Strategy<Value = BTreeMap<String, String>> {
    let name = "[A-Z][A-Z0-9_]{0,15}".prop_filter("AWS_ is reserved", |n| !n.starts_with("AWS"));
    let value = prop_oneof![
        "\\PC{0,30}",
        Just(String::new()),
        Just("false".to_string()),
        Just("a=b,c=d".to_string()),
        Just("{\"json\": [1, 2]}".to_string()),
    ];
    let flag = prop_oneof![
        Just(None),
        Just(Some("true")),
        Just(Some("false")),
        Just(Some("TRUE")),
        Just(Some(""))
    ];
    (btree_map(name, value, 0..12), flag).prop_map(|(mut vars, flag)| {
        vars.remove("AI_ENABLED");
        if let Some(v) = flag {
            vars.insert("AI_ENABLED".into(), v.to_string());
        }
        vars
    })
}

const CASES: u32 = 250;

#[test]
fn random_environments_keep_exactly_their_variables_plus_the_flag() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (emu, name, guard) = rt.block_on(async {
        let emu = Emulator::connect().await;
        let name = guard_e2e::unique("env-ai");
        // No alias: disable-ai changes $LATEST in place, so each case is one merge.
        emu.function(&name, 1, "live", "1", &[]).await.expect("function");
        emu.alarm(&format!("{name}-error-rate"), "ALARM").await.expect("alarm");
        let policy = Policy::from_toml(&format!(
            "[guard]\ncooldown_minutes = 0\n[[target]]\nname = \"{name}\"\nfunction = \"{name}\"\n[[trigger]]\nalarm = \"{name}-*\"\ntarget = \"{name}\"\naction = \"disable-ai\"\n"
        ))
        .expect("policy");
        let guard = Guard::new(policy, adapters::aws_ports(&emu.config), guard_e2e::home());
        (emu, name, guard)
    });
    let start: DateTime<Utc> = "2026-11-20T00:00:00Z".parse().expect("time");
    let case = std::sync::atomic::AtomicI64::new(0);
    let mut runner = TestRunner::new(Config {
        // Each case is four round trips to the emulator (a tenth of a second): 1,000 cases took
        // 100 s of every `make test`. What the emulator adds to the merge is the variables'
        // wire form, which 250 maps of up to 12 arbitrary Unicode values cover.
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&environments(), |vars| {
        let n = case.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        rt.block_on(async {
            let env = aws_sdk_lambda::types::Environment::builder()
                .set_variables(Some(vars.clone().into_iter().collect()))
                .build();
            emu.lambda
                .update_function_configuration()
                .function_name(&name)
                .environment(env)
                .send()
                .await
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            // Each case is a new transition of the alarm.
            let mut event = guard_e2e::event_for("eventbridge-alarm.json", "orders-ai", &name);
            event["detail"]["state"]["timestamp"] = (start + Duration::seconds(n))
                .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
                .to_string()
                .into();
            let report = guard.handle(&event, false).await;
            let expected = if vars.get("AI_ENABLED").map(String::as_str) == Some("false") {
                Outcome::AlreadyDone
            } else {
                Outcome::Executed
            };
            prop_assert_eq!(report.outcome, expected, "{}", report.reason);
            let after = emu
                .environment(&name, None)
                .await
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(after, with_flag(vars));
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    assert_eq!(
        case.load(std::sync::atomic::Ordering::SeqCst),
        i64::from(CASES)
    );
}
