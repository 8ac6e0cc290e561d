//! The extension's binary against the fake Extensions and Telemetry APIs on loopback: what it
//! subscribes to, what it prints for each way an invocation ends, that it asks for the next
//! event only once the invocation's end is counted (and never waits longer than its bound),
//! and that a SHUTDOWN prints what is left.

use rollback_guard_telemetry::fake_api::{
    deadline_in, init_runtime_done, platform_start, runtime_done, FakeLambda,
};
use serde_json::Value;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const LIVE: &str = "arn:aws:lambda:us-east-1:111122223333:function:pay:live";
const SOON: Duration = Duration::from_secs(5);

struct Running {
    fake: FakeLambda,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

async fn start(fake: FakeLambda, wait_ms: &str) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rollback-guard-telemetry"))
        .env("AWS_LAMBDA_RUNTIME_API", fake.runtime_api())
        .env("ROLLBACK_GUARD_TELEMETRY_WAIT_MS", wait_ms)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the extension starts");
    let stdout = child.stdout.take().expect("stdout");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let seen = lines.clone();
    tokio::spawn(async move {
        let mut reader = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            seen.lock().expect("lines").push(line);
        }
    });
    assert!(
        fake.next_call(1, SOON).await.is_some(),
        "the extension asks for its first event"
    );
    Running { fake, child, lines }
}

async fn pay() -> FakeLambda {
    FakeLambda::start("pay", "7").await.expect("the fake")
}

impl Running {
    /// Every line printed so far, parsed.
    fn printed(&self) -> Vec<Value> {
        (self.lines.lock().expect("lines").iter())
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .collect()
    }

    fn total(&self, metric: &str) -> u64 {
        (self.printed().iter())
            .filter_map(|v| v[metric].as_u64())
            .sum()
    }

    /// Shuts the extension down and waits for it to exit.
    async fn shutdown(mut self, reason: &str) -> Self {
        self.fake
            .shutdown(reason, deadline_in(Duration::from_secs(2)));
        let status = tokio::time::timeout(SOON, self.child.wait())
            .await
            .expect("the extension exits after SHUTDOWN")
            .expect("status");
        assert!(status.success(), "exit status {status}");
        // The reader takes the last lines.
        tokio::time::sleep(Duration::from_millis(50)).await;
        self
    }
}

#[tokio::test]
async fn it_subscribes_to_platform_records_only_with_the_smallest_buffering() {
    let run = start(pay().await, "100").await;
    let sub = run.fake.subscription().expect("a subscription");
    assert_eq!(sub["types"], serde_json::json!(["platform"]));
    assert_eq!(sub["buffering"]["timeoutMs"], 25);
    assert_eq!(sub["schemaVersion"], "2022-12-13");
    let uri = sub["destination"]["URI"].as_str().expect("a URI");
    assert!(uri.starts_with("http://sandbox.localdomain:"), "{uri}");
    run.shutdown("spindown").await;
}

#[tokio::test]
async fn an_invocation_is_printed_before_the_next_event_is_asked_for() {
    let run = start(pay().await, "100").await;
    run.fake
        .invoke("r1", LIVE, deadline_in(Duration::from_secs(3)));
    run.fake
        .telemetry(&[platform_start("r1")])
        .await
        .expect("pushed");
    // The invocation runs past the 100 ms bound: its start came, so the extension waits on.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(run.fake.next_calls(), 1, "no next event while r1 runs");
    assert!(run.printed().is_empty());
    let status = run
        .fake
        .telemetry(&[runtime_done("r1", "error", 412.0)])
        .await;
    assert_eq!(status.expect("pushed"), 200);
    assert!(run.fake.next_call(2, SOON).await.is_some());
    let printed = run.printed();
    assert_eq!(printed.len(), 1, "printed before next: {printed:?}");
    let line = &printed[0];
    assert_eq!(line["Resource"], "pay:live");
    assert_eq!(line["FunctionName"], "pay");
    assert_eq!(line["ExecutedVersion"], "7");
    assert_eq!(
        (line["Invocations"].as_u64(), line["Errors"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(line["Duration"], serde_json::json!([412.0]));
    assert_eq!(
        line["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "RollbackGuard/Fast"
    );
    run.shutdown("spindown").await;
}

#[tokio::test]
async fn each_status_counts_and_the_rest_is_printed_at_shutdown() {
    let run = start(pay().await, "100").await;
    for (n, (id, status)) in [
        ("a", "success"),
        ("b", "error"),
        ("c", "failure"),
        ("d", "timeout"),
    ]
    .into_iter()
    .enumerate()
    {
        run.fake
            .invoke(id, LIVE, deadline_in(Duration::from_secs(3)));
        let batch = [platform_start(id), runtime_done(id, status, 5.0)];
        run.fake.telemetry(&batch).await.expect("pushed");
        assert!(run.fake.next_call(n + 2, SOON).await.is_some());
    }
    let run = run.shutdown("spindown").await;
    assert_eq!(run.total("Invocations"), 4);
    assert_eq!(run.total("Errors"), 3, "error, failure and timeout");
    assert_eq!(run.total("Timeouts"), 1);
}

#[tokio::test]
async fn without_any_record_the_wait_ends_at_its_bound() {
    let run = start(pay().await, "100").await;
    let asked = tokio::time::Instant::now();
    run.fake
        .invoke("r1", LIVE, deadline_in(Duration::from_secs(30)));
    let next = run.fake.next_call(2, SOON).await.expect("next asked for");
    let waited = next - asked;
    assert!(
        waited >= Duration::from_millis(90) && waited < Duration::from_millis(1000),
        "waited {waited:?}"
    );
    // It ran; how it ended never came: counted at SHUTDOWN as an invocation, no error.
    let run = run.shutdown("spindown").await;
    assert_eq!((run.total("Invocations"), run.total("Errors")), (1, 0));
}

#[tokio::test]
async fn a_timeout_shutdown_counts_the_invocation_it_cut_short() {
    let run = start(pay().await, "100").await;
    run.fake
        .invoke("r1", LIVE, deadline_in(Duration::from_millis(400)));
    run.fake
        .telemetry(&[platform_start("r1")])
        .await
        .expect("pushed");
    // The extension waits to the deadline, then asks; Lambda answers with the timeout.
    let next = run.fake.next_call(2, SOON).await;
    assert!(next.is_some(), "the wait ends at the deadline");
    let run = run.shutdown("timeout").await;
    let printed = run.printed();
    assert_eq!(printed.len(), 1);
    assert_eq!(printed[0]["Resource"], "pay:live");
    assert_eq!((run.total("Errors"), run.total("Timeouts")), (1, 1));
}

#[tokio::test]
async fn an_init_failure_is_printed() {
    let run = start(pay().await, "100").await;
    let batch = [init_runtime_done("failure")];
    run.fake.telemetry(&batch).await.expect("pushed");
    let run = run.shutdown("failure").await;
    assert_eq!(run.total("InitErrors"), 1);
    assert_eq!(run.total("Invocations"), 0);
}

#[tokio::test]
async fn a_batch_that_is_no_batch_is_refused_and_counts_nothing() {
    let run = start(pay().await, "100").await;
    let bad = [Value::String("not a record".into())];
    assert_eq!(
        run.fake.telemetry(&bad).await.expect("pushed"),
        200,
        "an array"
    );
    let run = run.shutdown("spindown").await;
    assert!(run.printed().is_empty());
}

#[tokio::test]
async fn a_refused_subscription_never_delays_the_function() {
    let fake = FakeLambda::start_with("pay", "7", hyper::StatusCode::INTERNAL_SERVER_ERROR)
        .await
        .expect("the fake");
    let run = start(fake, "100").await;
    let asked = tokio::time::Instant::now();
    run.fake
        .invoke("r1", LIVE, deadline_in(Duration::from_secs(30)));
    let next = run.fake.next_call(2, SOON).await.expect("next asked for");
    assert!(
        next - asked < Duration::from_millis(50),
        "{:?}",
        next - asked
    );
    run.shutdown("spindown").await;
}

#[tokio::test]
async fn a_second_waits_once() {
    let run = start(pay().await, "100").await;
    // Two invocations early in the same second, no record of either: the first waits its
    // 100 ms, the second goes at once.
    let into_second = chrono::Utc::now().timestamp_subsec_millis();
    tokio::time::sleep(Duration::from_millis(u64::from(1010 - into_second))).await;
    let t0 = tokio::time::Instant::now();
    run.fake
        .invoke("a", LIVE, deadline_in(Duration::from_secs(30)));
    let first = run.fake.next_call(2, SOON).await.expect("next");
    run.fake
        .invoke("b", LIVE, deadline_in(Duration::from_secs(30)));
    let second = run.fake.next_call(3, SOON).await.expect("next");
    assert!(first - t0 >= Duration::from_millis(90), "{:?}", first - t0);
    assert!(
        second - first < Duration::from_millis(50),
        "{:?}",
        second - first
    );
    run.shutdown("spindown").await;
}
