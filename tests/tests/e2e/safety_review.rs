//! Issue 26's findings that the emulator can show: a named trigger reading `ExecutedVersion`
//! (3), two named targets on one function (6), an event whose metrics are not its alarm's (8).

use guard_e2e::{event_text, forwarded, home, unique, Emulator, ACCOUNT};
use rollback_guard::{Guard, Outcome, Policy};
use serde_json::Value;

/// A policy of named targets `(name, function, alias, alarm prefix)`, its state in `table`.
fn named(targets: &[(&str, &str, &str, &str)]) -> Policy {
    let mut toml = String::from("[guard]\ncooldown_minutes = 30\n");
    for (name, function, alias, prefix) in targets {
        toml.push_str(&format!(
            "[[target]]\nname = \"{name}\"\nfunction = \"{function}\"\nalias = \"{alias}\"\n[[trigger]]\nalarm = \"{prefix}*\"\ntarget = \"{name}\"\naction = \"rollback-alias\"\n"
        ));
    }
    Policy::from_toml(&toml).expect("policy")
}

/// The catalog's EventBridge alarm (orders-ai:live) as an alarm `alarm` on `function:alias`.
fn alarm_event(function: &str, alias: &str, alarm: &str) -> Value {
    let text = event_text("eventbridge-alarm.json")
        .replace("orders-ai-error-rate", alarm)
        .replace("orders-ai:live", &format!("{function}:{alias}"))
        .replace("\"orders-ai\"", &format!("\"{function}\""));
    serde_json::from_str(&text).expect("json")
}

#[tokio::test]
async fn a_named_trigger_alarm_on_the_primary_version_moves_the_alias_with_its_canary() {
    let emu = Emulator::connect().await;
    let function = unique("checkout");
    emu.function(&function, 3, "live", "2", &[("3", 0.1)])
        .await
        .expect("function");
    let alarm = format!("{function}-v2-errors");
    let resource = format!("{function}:live");
    emu.alarm_on(
        &alarm,
        "ALARM",
        &[vec![
            ("FunctionName", function.as_str()),
            ("Resource", resource.as_str()),
            ("ExecutedVersion", "2"),
        ]],
    )
    .await
    .expect("alarm");
    let event = forwarded(
        "lambda-action-fleet-canary.json",
        "guarded-billing-canary-errors",
        &function,
        &alarm,
        ACCOUNT,
    )
    .to_string()
    .replace("\"ExecutedVersion\":\"4\"", "\"ExecutedVersion\":\"2\"");
    let event: Value = serde_json::from_str(&event).expect("json");
    let policy = named(&[(&function, &function, "live", &format!("{function}-"))]);
    let ports = emu
        .ports_with_state(&format!("{function}-state"))
        .await
        .expect("ports");
    let report = Guard::new(policy, ports, home())
        .handle(&event, false)
        .await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    // Not the canary aborted (all on the failing 2): the alias off 2, canary and all.
    assert_eq!(emu.alias(&function, "live").await.expect("alias"), "1");
}

#[tokio::test]
async fn two_named_targets_on_one_function_each_keep_their_own_record() {
    let emu = Emulator::connect().await;
    let function = unique("orders");
    emu.function(&function, 3, "live", "3", &[])
        .await
        .expect("function");
    emu.lambda
        .create_alias()
        .function_name(&function)
        .name("beta")
        .function_version("3")
        .send()
        .await
        .expect("beta");
    let (live_alarm, beta_alarm) = (
        format!("{function}-live-errors"),
        format!("{function}-beta-errors"),
    );
    emu.alarm(&live_alarm, "ALARM").await.expect("alarm");
    emu.alarm(&beta_alarm, "ALARM").await.expect("alarm");
    let (live, beta) = (format!("{function}-live"), format!("{function}-beta"));
    let policy = named(&[
        (&live, &function, "live", &format!("{function}-live-")),
        (&beta, &function, "beta", &format!("{function}-beta-")),
    ]);
    let ports = emu
        .ports_with_state(&format!("{function}-state"))
        .await
        .expect("ports");
    let guard = || Guard::new(policy.clone(), ports.clone(), home());
    let first = guard()
        .handle(&alarm_event(&function, "live", &live_alarm), false)
        .await;
    assert_eq!(first.outcome, Outcome::Executed, "{}", first.reason);
    // Beta's alarm is not held by live's cooldown: another target.
    let second = guard()
        .handle(&alarm_event(&function, "beta", &beta_alarm), false)
        .await;
    assert_eq!(second.outcome, Outcome::Executed, "{}", second.reason);
    assert_eq!(emu.alias(&function, "live").await.expect("alias"), "2");
    assert_eq!(emu.alias(&function, "beta").await.expect("alias"), "2");
    // Undoing beta restores beta, not live.
    let undone = rollback_guard::operator::undo(&policy, &guard_e2e::operating(&ports), &beta)
        .await
        .expect("undo");
    assert_eq!(undone.alias.map(|a| a.alias).as_deref(), Some("beta"));
    assert_eq!(emu.alias(&function, "beta").await.expect("alias"), "3");
    assert_eq!(emu.alias(&function, "live").await.expect("alias"), "2");
}

#[tokio::test]
async fn an_event_naming_another_functions_metrics_than_its_alarms_moves_nothing() {
    let emu = Emulator::connect().await;
    let (payments, victim) = (unique("payments"), unique("victim"));
    let alarm = format!("guarded-{payments}-errors");
    emu.protected(&payments, &alarm).await.expect("payments");
    emu.function(&victim, 3, "live", "3", &[])
        .await
        .expect("victim");
    emu.opt_in(&victim, "live").await.expect("opt in");
    let policy = Policy::from_toml(&format!(
        "[[trigger]]\nalarm = \"guarded-{payments}-*\"\ntarget = \"from-alarm\"\naction = \"rollback-alias\"\n"
    ))
    .expect("policy");
    // The real alarm (in ALARM, on payments), the event saying it watches the victim.
    let forged = forwarded(
        "eventbridge-fleet-alarm.json",
        "guarded-payments-error-rate",
        &victim,
        &alarm,
        ACCOUNT,
    );
    let ports = emu
        .ports_with_state(&format!("{payments}-state"))
        .await
        .expect("ports");
    let report = Guard::new(policy, ports, home())
        .handle(&forged, false)
        .await;
    assert_eq!(report.outcome, Outcome::Rejected, "{}", report.reason);
    assert!(
        report.reason.contains("not the alarm's own"),
        "{}",
        report.reason
    );
    assert_eq!(emu.alias(&victim, "live").await.expect("alias"), "3");
    assert_eq!(emu.alias(&payments, "live").await.expect("alias"), "3");
}
