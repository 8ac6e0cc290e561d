//! `guard request` and `guard backtest` against the emulator: what the CLI puts on EventBridge,
//! and what the guard does with it.

use crate::{guard, state_table};
use guard_e2e::Emulator;

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
