//! A bad day on the emulator, on the real clock (`make bench-storm`, BENCHMARKS.md): FUNCTIONS
//! (50) opted-in functions, each alias on its newest version and its alarm in ALARM, rolled
//! back by their alarm events through one process, as one batch of the alarm queue
//! (`Guard::handle_batch`). Reported beside it: the same 50 UpdateAlias calls made alone, one
//! after the other and all at once; and the batch once more, the guard not held to a share
//! of the quotas (the emulator has none), which is what the guard itself adds. One JSON object.

use guard_e2e::{home, unique, Emulator};
use rollback_guard::quota::Share;
use rollback_guard::{adapters, Guard, Outcome, Policy};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `count` functions of `prefix`, each alias `live` on version 3 of 3, opted in, its alarm in
/// ALARM naming it; their alarm events.
async fn fleet(emu: &Emulator, prefix: &str, count: usize) -> Vec<(String, Value)> {
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let function = format!("{prefix}-f{i}");
        let alarm = format!("guarded-{prefix}-f{i}-errors");
        let mut events = emu
            .guarded_function(&function, &[alarm])
            .await
            .expect("a guarded function");
        out.push((function, events.remove(0)));
    }
    out
}

/// Handles `events` as one batch; the wall time. Every one must be executed.
async fn batch(guard: &Guard, events: &[(String, Value)]) -> Duration {
    let texts: Vec<String> = events.iter().map(|(_, e)| e.to_string()).collect();
    let bodies: Vec<&[u8]> = texts.iter().map(|t| t.as_bytes()).collect();
    let start = Instant::now();
    let reports = guard.handle_batch(&bodies).await;
    let wall = start.elapsed();
    for ((function, _), report) in events.iter().zip(&reports) {
        assert_eq!(
            report.outcome,
            Outcome::Executed,
            "{function}: {}",
            report.reason
        );
    }
    wall
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 10.0).round() / 10.0
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let count = env_usize("FUNCTIONS", 50);
    let emu = Emulator::connect().await;
    let prefix = unique("storm");
    let policy = Policy::from_toml(&format!(
        "[[trigger]]\nalarm = \"guarded-{prefix}-*\"\ntarget = \"from-alarm\"\naction = \"rollback-alias\"\n"
    ))
    .expect("policy");
    let share = Share::per_instance(&policy.guard, 1);

    // The guard as one instance of the function runs it: the whole of the policy's share.
    let held = fleet(&emu, &format!("{prefix}-a"), count).await;
    let guard = Guard::new(policy.clone(), adapters::aws_ports(&emu.config), home())
        .with_quota_share(share);
    let held_wall = batch(&guard, &held).await;

    // Not held to a share: what the guard's own work costs on top of its calls.
    let free = fleet(&emu, &format!("{prefix}-b"), count).await;
    let guard = Guard::new(policy.clone(), adapters::aws_ports(&emu.config), home());
    let free_wall = batch(&guard, &free).await;

    // The same moves alone: UpdateAlias to version 2 for each, in turn, then all at once.
    let alone = fleet(&emu, &format!("{prefix}-c"), count).await;
    let update = |function: String| {
        let lambda = emu.lambda.clone();
        async move {
            lambda
                .update_alias()
                .function_name(function)
                .name("live")
                .function_version("2")
                .send()
                .await
                .expect("UpdateAlias");
        }
    };
    let start = Instant::now();
    for (function, _) in &alone {
        update(function.clone()).await;
    }
    let in_turn = start.elapsed();
    let again = fleet(&emu, &format!("{prefix}-d"), count).await;
    let start = Instant::now();
    futures_util::future::join_all(again.iter().map(|(f, _)| update(f.clone()))).await;
    let at_once = start.elapsed();

    let out = json!({
        "functions": count,
        "guard_ms": ms(held_wall),
        "guard_share_per_s": share.lambda_per_s,
        // Three control-plane calls a rollback at the share, its first second's burst aside.
        "guard_share_floor_ms": ms(Duration::from_secs_f64(
            (3.0 * count as f64 - share.lambda_per_s) / share.lambda_per_s
        )),
        "guard_unheld_ms": ms(free_wall),
        "update_alias_in_turn_ms": ms(in_turn),
        "update_alias_at_once_ms": ms(at_once),
    });
    println!("{}", serde_json::to_string_pretty(&out).expect("JSON"));
}
