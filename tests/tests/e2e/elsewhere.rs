//! Events caused in another account or region than the guard's own, on the emulator: the same
//! function name, alias and alarm exist in both places, so a guard that acted would change its
//! own account's function and confirm the alarm by a name that exists there too. Each is
//! rejected before any AWS call, the reason naming both places; neither alias moves and
//! nobody is told of an action. (Regression: issue "an alarm of another account or region
//! rolled back the guard's own function".)

use guard_e2e::{home, Emulator, Sandbox as World, ACCOUNT, ROLLBACK};
use rollback_guard::guard::Outcome;
use rollback_guard::transition::AlarmState;
use rollback_guard::{adapters, Guard, Policy};

const MEMBER: &str = "222222222222";

/// The sandbox's function (alias `live` on version 3 of 3) and its alarm in ALARM, and a guard
/// of the sandbox's account whose policy accepts events of `MEMBER` too.
async fn world() -> (World, Guard) {
    let w = World::new(ROLLBACK, 3, "3", &[], "ALARM").await;
    let accepted = format!(r#"accounts = ["{ACCOUNT}", "{MEMBER}"]"#);
    let toml = w
        .policy_toml
        .replace(&format!(r#"accounts = ["{ACCOUNT}"]"#), &accepted);
    assert!(toml.contains(&accepted), "{toml}");
    let policy = Policy::from_toml(&toml).expect("policy");
    let guard = Guard::new(policy, adapters::aws_ports(&w.emu.config), home());
    (w, guard)
}

/// The same function, alias on version 3, and alarm in ALARM, where `emu` acts.
async fn twin(emu: &Emulator, w: &World) {
    emu.function(&w.name, 3, "live", "3", &[])
        .await
        .expect("function");
    emu.alarm(&format!("{}-error-rate", w.name), "ALARM")
        .await
        .expect("alarm");
}

fn assert_rejected_naming(report: &rollback_guard::Report, places: &[&str]) {
    assert_eq!(report.outcome, Outcome::Rejected, "{}", report.reason);
    for place in places {
        assert!(report.reason.contains(place), "{place}: {}", report.reason);
    }
}

#[tokio::test]
async fn an_alarm_of_a_listed_member_account_moves_neither_alias() {
    let (w, guard) = world().await;
    let member = Emulator::connect_as(MEMBER).await;
    twin(&member, &w).await;
    let event = w.event("eventbridge-alarm.json").to_string();
    let event: serde_json::Value =
        serde_json::from_str(&event.replace(ACCOUNT, MEMBER)).expect("json");
    assert_eq!(event["account"], MEMBER);

    let report = guard.handle(&event, false).await;

    assert_rejected_naming(&report, &[MEMBER, ACCOUNT]);
    w.assert_untouched("3").await;
    assert_eq!(member.alias(&w.name, "live").await.expect("alias"), "3");
    assert!(member.tags(&w.name).await.expect("tags").is_empty());
}

#[tokio::test]
async fn an_alarm_of_another_region_moves_neither_alias() {
    let (w, guard) = world().await;
    let west = Emulator::connect_in("us-west-2").await;
    twin(&west, &w).await;
    let event = w.event("eventbridge-alarm.json").to_string();
    let event: serde_json::Value =
        serde_json::from_str(&event.replace("us-east-1", "us-west-2")).expect("json");
    assert_eq!(event["region"], "us-west-2");

    let report = guard.handle(&event, false).await;

    assert_rejected_naming(&report, &["us-west-2", "us-east-1"]);
    w.assert_untouched("3").await;
    assert_eq!(west.alias(&w.name, "live").await.expect("alias"), "3");
}

#[tokio::test]
async fn an_insight_or_a_request_of_a_member_account_changes_nothing() {
    let (w, guard) = world().await;
    for file in ["insight-critical.json", "request-rollback.json"] {
        let event = w.event(file).to_string();
        let event: serde_json::Value =
            serde_json::from_str(&event.replace(ACCOUNT, MEMBER)).expect("json");
        let report = guard.handle(&event, false).await;
        assert_rejected_naming(&report, &[MEMBER, ACCOUNT]);
    }
    w.assert_untouched("3").await;
}

#[tokio::test]
async fn the_guards_own_alarm_is_confirmed_by_its_arn_not_by_a_name_found_elsewhere() {
    // The alarm exists, in ALARM, only in the member account: asked for the guard's own
    // account's alarm of that ARN, CloudWatch there has none.
    let w = World::new(ROLLBACK, 3, "3", &[], "ALARM").await;
    let ports = adapters::aws_ports(&w.emu.config);
    let own = home().alarm_arn(&format!("{}-error-rate", w.name));
    let member_arn = own.replace(ACCOUNT, MEMBER);
    assert_eq!(
        ports
            .alarms
            .alarm_state(&own)
            .await
            .expect("read")
            .map(|a| a.state),
        Some(AlarmState::Alarm)
    );
    assert_eq!(
        ports.alarms.alarm_state(&member_arn).await.expect("read"),
        None
    );
}
