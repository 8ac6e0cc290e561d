//! Mitigation latency on the local emulator (`make bench`): an alarm event into a warm guard →
//! the alias rolled back, the action recorded and announced; p50 and p99 over RUNS runs, beside
//! the same API calls made alone through the same adapters (DescribeAlarms, GetFunction for the
//! record, GetAlias, GetFunction for the version before, UpdateAlias, TagResource, PutEvents,
//! Publish). The
//! difference is what the guard adds. Needs the emulator: scripts/with-emulator.sh.

use guard_e2e::{Sandbox, ROLLBACK};
use rollback_guard::adapters::aws_ports;
use rollback_guard::notify::{AuditEvent, Notification};
use rollback_guard::rollback::AliasState;
use rollback_guard::{Guard, Outcome, Policy};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(200);
    // Alias `live` on version 3 of 3, its alarm in ALARM; no cooldown, so every run acts.
    let sandbox = Sandbox::new(ROLLBACK, 3, "3", &[], "ALARM").await;
    let policy = Policy::from_toml(
        &sandbox
            .policy_toml
            .replace("cooldown_minutes = 30", "cooldown_minutes = 0"),
    )
    .expect("policy");
    let config = &sandbox.emu.config;
    let guard = Guard::new(policy, aws_ports(config), guard_e2e::home());
    let function = sandbox.name.clone();
    let alarm = format!("{function}-error-rate");
    let template = sandbox.event("eventbridge-alarm.json");
    let reset = || async {
        sandbox
            .emu
            .lambda
            .update_alias()
            .function_name(&function)
            .name("live")
            .function_version("3")
            .send()
            .await
            .expect("reset alias");
    };

    // The same calls alone, through the same adapters.
    let ports = aws_ports(config);
    let tags: BTreeMap<String, String> = (0..8)
        .map(|i| (format!("rollback-guard:tag{i}"), "x".repeat(40)))
        .collect();
    let notification = Notification {
        subject: "Rollback executed".into(),
        message: "m".repeat(2000),
        attributes: BTreeMap::new(),
    };
    let audit = AuditEvent {
        source: "rollback-guard".into(),
        detail_type: "Rollback Executed".into(),
        resources: vec![],
        detail: json!({ "reason": "r".repeat(1000) }),
    };
    let bus = format!("{function}-bus");

    // Interleaved, so that the emulator's drift (its queues and records grow) weighs on both
    // sides alike.
    let mut guarded = Vec::with_capacity(runs);
    let mut alone = Vec::with_capacity(runs);
    for run in 0..runs {
        reset().await;
        // A new transition each run (its own state timestamp, so its own dedupe key).
        let mut event = template.clone();
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-20T03:12:45.123Z").expect("time")
            + chrono::Duration::seconds(run as i64);
        let stamp = at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string();
        event["detail"]["state"]["timestamp"] = json!(stamp);
        let bytes = serde_json::to_vec(&event).expect("event");
        let start = Instant::now();
        let report = guard.handle_bytes(&bytes, false).await;
        guarded.push(start.elapsed());
        assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
        assert_eq!(
            report.alias_after.map(|a| a.version).as_deref(),
            Some("2"),
            "the alias moved back"
        );

        reset().await;
        let start = Instant::now();
        ports
            .alarms
            .alarm_state(&alarm)
            .await
            .expect("DescribeAlarms");
        ports.aliases.tags(&function).await.expect("GetFunction");
        let before = ports
            .aliases
            .get_alias(&function, "live")
            .await
            .expect("GetAlias");
        ports
            .aliases
            .is_published(&function, "2")
            .await
            .expect("GetFunction");
        ports
            .aliases
            .update_alias(
                &function,
                "live",
                &AliasState::on("2"),
                before.revision_id.as_deref(),
            )
            .await
            .expect("UpdateAlias");
        ports
            .aliases
            .tag(&function, &tags)
            .await
            .expect("TagResource");
        ports.audit.put(&bus, &audit).await.expect("PutEvents");
        ports
            .notifier
            .publish(&sandbox.topic, &notification)
            .await
            .expect("Publish");
        alone.push(start.elapsed());
    }

    // What the guard adds, run by run (each guard run beside the calls-alone run after it).
    let mut added: Vec<f64> = guarded
        .iter()
        .zip(&alone)
        .map(|(g, a)| (g.as_secs_f64() - a.as_secs_f64()) * 1000.0)
        .collect();
    added.sort_by(f64::total_cmp);
    guarded.sort();
    alone.sort();
    let result = json!({
        "runs": runs,
        "guard_p50_ms": percentile(&guarded, 0.5),
        "guard_p99_ms": percentile(&guarded, 0.99),
        "calls_alone_p50_ms": percentile(&alone, 0.5),
        "calls_alone_p99_ms": percentile(&alone, 0.99),
        "added_p50_ms": percentile(&guarded, 0.5) - percentile(&alone, 0.5),
        "added_paired_median_ms": added[added.len() / 2],
    });
    println!("{result}");
}
