//! What holds an automatic rollback back besides the blame window, over fakes (issue 27): one
//! rollback per release (until a newer release or a person), the floor, the blast-radius cap
//! across instances; and observe mode, which decides everything and changes nothing.

use crate::judgement::{act, assert_held, backends, policy, published_ago, served, start, ALARM};
use crate::support::{event, text};
use chrono::Duration;
use rollback_guard::evaluate::evaluate;
use rollback_guard::fakes::{home, FakeBackends, FakeLambda};
use rollback_guard::guard::FLOOR_TAG;
use rollback_guard::rollback::AliasState;
use rollback_guard::transition::AlarmState;
use rollback_guard::{Outcome, Policy, Report};
use serde_json::Value;

/// The alarm went OK and back into ALARM `minutes` after the catalog's transition: that
/// transition's event (CloudWatch's copy of the alarm says since when, too).
fn alarm_again(b: &FakeBackends, minutes: i64) -> Value {
    b.alarms.set_since(
        ALARM,
        AlarmState::Alarm,
        start() + Duration::minutes(minutes),
    );
    later_alarm(minutes)
}

/// A later transition of `ALARM`, `minutes` after the catalog's.
fn later_alarm(minutes: i64) -> Value {
    let at = "2026-11-20T03:12:45.123+0000";
    let then = (start() + Duration::minutes(minutes)).format("%Y-%m-%dT%H:%M:%S%.3f+0000");
    serde_json::from_str(&text("eventbridge-alarm.json").replace(at, &then.to_string()))
        .expect("json")
}

/// `orders-ai` with versions 1..=`versions`, live on 5, rolled back by its alarm to 4 (the
/// cooldown a minute).
async fn rolled_back_from_5(versions: u32) -> FakeBackends {
    let lambda =
        FakeLambda::default().with_function("orders-ai", versions, "live", AliasState::on("5"));
    let b = FakeBackends::new(lambda, ALARM, start());
    let first = act(&b, "cooldown_minutes = 1", "eventbridge-alarm.json").await;
    assert_eq!(first.outcome, Outcome::Executed, "{}", first.reason);
    assert_eq!(served(&b, "orders-ai"), "version 4");
    b
}

#[tokio::test]
async fn one_rollback_per_release_until_a_newer_release() {
    // Version 6 published, not yet live.
    let b = rolled_back_from_5(6).await;
    let guard = || b.guard(policy("cooldown_minutes = 1"));

    // The alarm flaps through a dependency's outage: later ALARMs, past the cooldown, do not
    // walk the alias further back; each is paged.
    for minutes in [2, 3, 4] {
        b.clock.advance(Duration::minutes(2));
        let pages = b.notifier.sent().len();
        let again = guard().handle(&later_alarm(minutes), false).await;
        assert_eq!(again.outcome, Outcome::Skipped, "{}", again.reason);
        assert!(
            again
                .reason
                .contains("already rolled this alias back from version 5 to version 4"),
            "{}",
            again.reason
        );
        assert_eq!(b.notifier.sent().len(), pages + 1, "each is paged");
    }
    assert_eq!(served(&b, "orders-ai"), "version 4");
    assert_eq!(b.lambda.alias_updates(), 1);

    // A newer release (6) goes live and misbehaves: rolled back, and never to 5 (rolled back
    // away from): to 4.
    b.lambda.set_alias("orders-ai", "live", AliasState::on("6"));
    b.clock.advance(Duration::minutes(5));
    let newer = guard().handle(&later_alarm(20), false).await;
    assert_eq!(newer.outcome, Outcome::Executed, "{}", newer.reason);
    assert_eq!(served(&b, "orders-ai"), "version 4");
}

#[tokio::test]
async fn a_person_starts_afresh_with_undo_or_mark_stable() {
    let b = rolled_back_from_5(5).await;
    let guard = || b.guard(policy("cooldown_minutes = 1"));
    // A person undoes it: 5 serves again, put live by them now, not to blame in their eyes.
    rollback_guard::operator::undo(&policy(""), &b.operating(), "orders-ai")
        .await
        .expect("undo");
    assert_eq!(served(&b, "orders-ai"), "version 5");
    let state = b.state_of("orders-ai", "live");
    assert!(
        state.rolled_back.is_none() && state.bad.is_empty(),
        "{state:?}"
    );
    b.clock.advance(Duration::minutes(2));
    let after_undo = guard().handle(&alarm_again(&b, 2), false).await;
    assert_eq!(
        after_undo.outcome,
        Outcome::Executed,
        "{}",
        after_undo.reason
    );
    assert!(
        after_undo.reason.contains("(guard undo by oncall), within"),
        "{}",
        after_undo.reason
    );
    assert_eq!(served(&b, "orders-ai"), "version 4");

    // Held after that rollback; a person marks 4 stable: the next ALARM acts again.
    b.clock.advance(Duration::minutes(2));
    let held = guard().handle(&alarm_again(&b, 4), false).await;
    assert_eq!(held.outcome, Outcome::Skipped, "{}", held.reason);
    rollback_guard::operator::mark_stable(&b.operating(), "orders-ai", "live", Some("3"))
        .await
        .expect("mark stable");
    b.clock.advance(Duration::minutes(2));
    let after_mark = guard().handle(&alarm_again(&b, 6), false).await;
    assert_eq!(
        after_mark.outcome,
        Outcome::Executed,
        "{}",
        after_mark.reason
    );
    assert_eq!(served(&b, "orders-ai"), "version 3");
}

#[tokio::test]
async fn a_persons_request_starts_afresh_and_is_never_held() {
    let b = backends();
    published_ago(&b, "orders-ai", Duration::days(30));
    // A request is a person's decision: neither the window nor the last rollback holds it.
    let request = text("request-rollback.json").replace("checkout-ai", "orders-ai");
    let report = b
        .guard(policy("request_sources = [\"rollback-guard.cli\"]"))
        .handle_bytes(request.as_bytes(), false)
        .await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(served(&b, "orders-ai"), "version 2");
    let state = b.state_of("orders-ai", "live");
    assert!(
        state.rolled_back.is_none(),
        "a person's rollback is not the release's one"
    );
}

#[tokio::test]
async fn never_below_the_floor_of_the_target_or_the_functions_tag() {
    let b = backends();
    b.lambda.set_tag("orders-ai", FLOOR_TAG, "3");
    let report = act(&b, "", "eventbridge-alarm.json").await;
    assert_held(
        &b,
        &report,
        "orders-ai",
        "rolling back to version 2 would go below the floor, version 3 (tag rollback-guard:floor)",
    );

    let b = backends();
    let mut floored = policy("");
    floored.targets[0].floor = Some(3);
    let report = b
        .guard(floored)
        .handle(&event("eventbridge-alarm.json"), false)
        .await;
    assert_held(&b, &report, "orders-ai", "version 3 (the target's floor)");

    // A floor at or below the version gone back to holds nothing back.
    let b = backends();
    b.lambda.set_tag("orders-ai", FLOOR_TAG, "2");
    let report = act(&b, "", "eventbridge-alarm.json").await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);

    // A tag that is not a version is not guessed at: no rollback, and the report says why.
    let b = backends();
    b.lambda.set_tag("orders-ai", FLOOR_TAG, "v3");
    let report = act(&b, "", "eventbridge-alarm.json").await;
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.reason);
    assert!(
        report.reason.contains("is not a version number"),
        "{}",
        report.reason
    );
    assert_eq!(served(&b, "orders-ai"), "version 3");
}

/// `n` functions `svcN` (live on 3 of 3), each with its alarm `svcN-error-rate` in ALARM, and
/// a policy guarding them with the cap at `cap`.
fn fleet_of(n: usize, cap: u32) -> (FakeBackends, Policy, Vec<String>) {
    let mut lambda = FakeLambda::default();
    let mut toml = format!(
        "[guard]\nnotify_topic_arn = \"arn:aws:sns:us-east-1:123456789012:rollback-guard\"\nmax_rollbacks_per_hour = {cap}\n"
    );
    let mut events = Vec::new();
    for i in 0..n {
        let name = format!("svc{i}");
        lambda = lambda.with_function(&name, 3, "live", AliasState::on("3"));
        toml.push_str(&format!(
            "[[target]]\nname = \"{name}\"\nfunction = \"{name}\"\nalias = \"live\"\n[[trigger]]\nalarm = \"{name}-*\"\ntarget = \"{name}\"\naction = \"rollback-alias\"\n"
        ));
        events.push(text("eventbridge-alarm.json").replace("orders-ai", &name));
    }
    let b = FakeBackends::new(lambda, "unused", start());
    for i in 0..n {
        b.alarms
            .set(&format!("svc{i}-error-rate"), AlarmState::Alarm);
    }
    (b, Policy::from_toml(&toml).expect("policy"), events)
}

#[tokio::test]
async fn the_blast_radius_cap_holds_across_instances_and_pages_once_an_hour() {
    let (b, policy, events) = fleet_of(8, 3);
    // Two instances share the state table; the alarms alternate between them, concurrently.
    let (one, two) = (b.guard(policy.clone()), b.guard(policy.clone()));
    let (one, two) = (std::sync::Arc::new(one), std::sync::Arc::new(two));
    let mut tasks = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let guard = if i % 2 == 0 { one.clone() } else { two.clone() };
        let e = e.clone();
        tasks.push(tokio::spawn(async move {
            guard.handle_bytes(e.as_bytes(), false).await
        }));
    }
    let mut reports = Vec::new();
    for t in tasks {
        reports.push(t.await.expect("task"));
    }
    let executed = reports
        .iter()
        .filter(|r| r.outcome == Outcome::Executed)
        .count();
    let held: Vec<&Report> = reports
        .iter()
        .filter(|r| r.outcome == Outcome::Skipped)
        .collect();
    assert_eq!(
        (executed, held.len()),
        (3, 5),
        "{:?}",
        reports.iter().map(|r| &r.reason).collect::<Vec<_>>()
    );
    assert_eq!(b.lambda.alias_updates(), 3);
    for r in &held {
        assert!(
            r.reason.contains(
                "blast-radius cap: 3 automatic alias rollbacks made in account 123456789012"
            ),
            "{}",
            r.reason
        );
    }
    // People hear of the three rollbacks, and once of what was held back.
    let pages: Vec<String> = b
        .notifier
        .sent()
        .iter()
        .map(|(_, n)| n.subject.clone())
        .collect();
    let held_pages = pages
        .iter()
        .filter(|s| s.starts_with("Rollback NOT made"))
        .count();
    assert_eq!((pages.len(), held_pages), (4, 1), "{pages:?}");
    // A held target keeps nothing of it: no claim, no plan, no record.
    for r in &held {
        let state = b.state_of(r.target.as_deref().expect("target"), "live");
        assert!(state.claim.is_none() && state.plan.is_none() && state.last.is_none());
    }
    // The next hour, a held target's next ALARM is rolled back.
    b.clock.advance(Duration::hours(1));
    let name = held[0].target.clone().expect("target");
    let index: usize = name.trim_start_matches("svc").parse().expect("svcN");
    let next = events[index].replace("03:12:45.123", "04:12:45.123");
    let report = two.handle_bytes(next.as_bytes(), false).await;
    assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
    assert_eq!(served(&b, &name), "version 2");
}

#[tokio::test]
async fn observe_mode_decides_confirms_and_announces_and_changes_nothing() {
    let b = backends();
    let observing = policy("mode = \"observe\"");
    let report = b
        .guard(observing.clone())
        .handle(&event("eventbridge-alarm.json"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Planned, "{}", report.reason);
    assert!(
        report
            .reason
            .starts_with("would be done: alias live moved from version 3 to version 2"),
        "{}",
        report.reason
    );
    assert_eq!(served(&b, "orders-ai"), "version 3");
    assert_eq!(b.lambda.alias_updates(), 0);
    let sent = b.notifier.sent();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0]
            .1
            .subject
            .starts_with("OBSERVE: would roll back orders-ai: live 3 -> 2"),
        "{}",
        sent[0].1.subject
    );
    assert_eq!(b.audit.detail_types(), vec!["Rollback Planned"]);
    // No claim, record or cooldown consumed: a person's request acts at once.
    let state = b.state_of("orders-ai", "live");
    assert!(state.claim.is_none() && state.last.is_none() && state.plan.is_none());
    let request = text("request-rollback.json").replace("checkout-ai", "orders-ai");
    let acted = b
        .guard(policy(
            "mode = \"observe\"\nrequest_sources = [\"rollback-guard.cli\"]",
        ))
        .handle_bytes(request.as_bytes(), false)
        .await;
    assert_eq!(acted.outcome, Outcome::Executed, "{}", acted.reason);
    // A duplicate delivery of the observed transition is not announced twice.
    let b = backends();
    b.guard(observing.clone())
        .handle(&event("eventbridge-alarm.json"), false)
        .await;
    let again = b
        .guard(observing)
        .handle(&event("sns-alarm.json"), false)
        .await;
    assert_eq!(again.outcome, Outcome::AlreadyDone, "{}", again.reason);
    assert_eq!(b.notifier.sent().len(), 1);
}

#[tokio::test]
async fn a_triggers_mode_overrides_the_guards_and_evaluate_says_so() {
    let b = backends();
    let mut per_trigger = policy("");
    per_trigger.triggers[0].mode = Some(rollback_guard::policy::GuardMode::Observe);
    let report = b
        .guard(per_trigger.clone())
        .handle(&event("eventbridge-alarm.json"), false)
        .await;
    assert_eq!(report.outcome, Outcome::Planned, "{}", report.reason);
    assert_eq!(served(&b, "orders-ai"), "version 3");
    let offline = evaluate(
        &per_trigger,
        Some(&home()),
        text("eventbridge-alarm.json").as_bytes(),
        false,
    );
    assert_eq!(offline.outcome, "observe");
    let judgement = offline.judgement.expect("a rollback is judged");
    assert!(
        judgement.contains("within the last 1440 minutes (guard.blame_window_minutes)"),
        "{judgement}"
    );
    assert!(judgement.contains("Observe mode"), "{judgement}");
    // `guard targets` shows each target's mode.
    let seen = b.targets(&per_trigger).await.expect("targets");
    let mode = |name: &str| {
        seen.targets
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.mode.clone())
            .expect(name)
    };
    assert_eq!(
        (mode("orders-ai").as_str(), mode("support-ai").as_str()),
        ("observe", "act")
    );
    // The fleet trigger still acts.
    let fleet = b
        .guard(per_trigger)
        .handle(&event("eventbridge-fleet-alarm.json"), false)
        .await;
    assert_eq!(fleet.outcome, Outcome::Executed, "{}", fleet.reason);
}
