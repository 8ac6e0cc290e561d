//! What the fast lane's extension costs a function (make bench; BENCHMARKS.md): its release
//! binary against the fake Extensions/Telemetry API on loopback, beside a no-extension
//! baseline in the same run. Without the extension an invocation ends when the runtime is
//! done (added 0) and init ends with the runtime's; with it, init ends when the extension
//! first asks for an event, and an invocation when it asks for the next one. The fake delivers
//! each invocation's records as Lambda does, after the Telemetry API's buffering (25 ms at
//! least); the extension's own part is measured from the records' delivery.
//!
//! `extension-cost PATH_TO_BINARY` prints target/bench/extension.json's object.

use rollback_guard_telemetry::fake_api::{deadline_in, platform_start, runtime_done, FakeLambda};
use serde_json::json;
use std::io::Write;
use std::time::Duration;
use tokio::process::Command;
use tokio::time::Instant;

const LIVE: &str = "arn:aws:lambda:us-east-1:111122223333:function:pay:live";
/// The Telemetry API's smallest buffering (timeoutMs 25, "minimum 25").
const BUFFERING: Duration = Duration::from_millis(25);
/// What the simulated handler takes.
const WORK: Duration = Duration::from_millis(2);
const INIT_ROUNDS: usize = 15;
/// Invocations a second apart: each is the first of its second, so each waits.
const QUIET_INVOCATIONS: usize = 30;
/// Invocations at 100 a second in one environment: one a second waits.
const BUSY_INVOCATIONS: usize = 1000;

type Error = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let binary = std::env::args()
        .nth(1)
        .ok_or("usage: extension-cost PATH_TO_EXTENSION_BINARY")?;
    let mut init = Vec::new();
    let mut spawn_floor = Vec::new();
    for _ in 0..INIT_ROUNDS {
        init.push(ms(init_time(&binary).await?));
        let t = Instant::now();
        Command::new("true").status().await?;
        spawn_floor.push(ms(t.elapsed()));
    }
    let quiet = invocations(&binary, QUIET_INVOCATIONS, Duration::from_millis(1010)).await?;
    let busy = invocations(&binary, BUSY_INVOCATIONS, Duration::from_millis(10)).await?;
    let zip = layer_zip_bytes(&binary)?;
    let out = json!({
        "init_added_ms": median(&init),
        "baseline_process_start_ms": median(&spawn_floor),
        "per_invoke_added_ms_p99": percentile(&quiet.added, 99.0),
        "per_invoke_added_ms_p50": percentile(&quiet.added, 50.0),
        "own_ms_p99": percentile(&quiet.own, 99.0),
        "busy_per_invoke_added_ms_p99": percentile(&busy.added, 99.0),
        "busy_per_invoke_added_ms_mean": mean(&busy.added),
        "baseline_per_invoke_added_ms": 0.0,
        "telemetry_buffering_ms": ms(BUFFERING),
        "rss_mb": busy.rss_mb.max(quiet.rss_mb),
        "layer_zip_bytes": zip,
    });
    println!("{out}");
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn start(binary: &str, fake: &FakeLambda) -> Result<tokio::process::Child, Error> {
    Ok(Command::new(binary)
        .env("AWS_LAMBDA_RUNTIME_API", fake.runtime_api())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?)
}

/// From the process's start to its first `next`: what it adds to a cold start at most (Lambda
/// starts extensions beside the runtime).
async fn init_time(binary: &str) -> Result<Duration, Error> {
    let fake = FakeLambda::start("pay", "7").await?;
    let t = Instant::now();
    let mut child = start(binary, &fake).await?;
    let first = (fake.next_call(1, Duration::from_secs(5)).await).ok_or("no first next")?;
    child.kill().await?;
    Ok(first - t)
}

struct Invocations {
    /// The runtime done → the extension's next, each invocation.
    added: Vec<f64>,
    /// The records delivered → the extension's next, for those that waited.
    own: Vec<f64>,
    rss_mb: f64,
}

async fn invocations(binary: &str, n: usize, every: Duration) -> Result<Invocations, Error> {
    let fake = FakeLambda::start("pay", "7").await?;
    let mut child = start(binary, &fake).await?;
    fake.next_call(1, Duration::from_secs(5))
        .await
        .ok_or("no first next")?;
    let mut added = Vec::new();
    let mut own = Vec::new();
    let mut next_at = Instant::now();
    for i in 0..n {
        tokio::time::sleep_until(next_at).await;
        next_at += every;
        let id = format!("r{i}");
        fake.invoke(&id, LIVE, deadline_in(Duration::from_secs(30)));
        tokio::time::sleep(WORK).await;
        let done = Instant::now();
        let fake2 = fake.clone();
        let id2 = id.clone();
        let delivery = tokio::spawn(async move {
            tokio::time::sleep(BUFFERING).await;
            let batch = [platform_start(&id2), runtime_done(&id2, "success", 2.0)];
            fake2.telemetry(&batch).await.map(|_| Instant::now())
        });
        let next = (fake.next_call(i + 2, Duration::from_secs(5)).await).ok_or("no next")?;
        added.push(ms(next.saturating_duration_since(done)));
        let delivered = delivery.await??;
        if next >= delivered {
            own.push(ms(next - delivered));
        }
    }
    let rss_mb = child.id().map_or(0.0, peak_rss_mb);
    fake.shutdown("spindown", deadline_in(Duration::from_secs(2)));
    child.wait().await?;
    Ok(Invocations { added, own, rss_mb })
}

/// VmHWM of a process, in MB.
fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    (status.lines())
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The layer as Lambda takes it: the binary at extensions/rollback-guard-telemetry.
fn layer_zip_bytes(binary: &str) -> Result<u64, Error> {
    let bytes = std::fs::read(binary)?;
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(9))
            .unix_permissions(0o755);
        zip.start_file("extensions/rollback-guard-telemetry", options)?;
        zip.write_all(&bytes)?;
        zip.finish()?;
    }
    Ok(buf.into_inner().len() as u64)
}

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn median(values: &[f64]) -> f64 {
    percentile(values, 50.0)
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}
