//! The functions behind `cargo lambda watch`'s Runtime API, called with `cargo lambda invoke`,
//! with the emulators' endpoints in their environment: responses and effects asserted.

use guard_e2e::{Sandbox, ROLLBACK};
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn cargo_lambda() -> PathBuf {
    let bin = root().join(".venv/bin/cargo-lambda");
    assert!(
        bin.exists(),
        "{} is missing: run `make setup`",
        bin.display()
    );
    bin
}

/// A function binary this workspace's `cargo test` built, beside the test's own (the one
/// `target/…/debug/` whatever `CARGO_TARGET_DIR` says).
fn built(binary: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let dir = exe.parent().and_then(Path::parent).expect("target/debug");
    let bin = dir.join(binary);
    assert!(
        bin.exists(),
        "{} is missing: run `cargo test --workspace` (it builds the functions' binaries)",
        bin.display()
    );
    bin
}

/// `cargo lambda watch --only-lambda-apis` serving one function: cargo lambda's Runtime API
/// and invoke endpoint, with the function's binary as `cargo test` built it running against
/// it. (Plain `watch` builds the function itself, with the features of that package alone:
/// a second build of the whole dependency tree, minutes of every fresh `make test`; `make
/// watch` is that way.) Both stopped when dropped, whatever the test's outcome.
struct Watcher {
    watch: Child,
    function: Child,
    port: u16,
}

impl Watcher {
    fn start(binary: &str, policy: &Path, log: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("port");
        let log = std::fs::File::create(log).expect("log");
        let output = || Stdio::from(log.try_clone().expect("log"));
        let watch = Command::new(cargo_lambda())
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                &port.to_string(),
            ])
            .current_dir(root())
            .stdin(Stdio::null())
            .stdout(output())
            .stderr(output())
            .process_group(0)
            .spawn()
            .expect("cargo lambda watch starts");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "cargo lambda watch did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // What `watch` tells a function started by hand; `_` is its one function's name.
        let function = Command::new(built(binary))
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("GUARD_POLICY_FILE", policy)
            .stdin(Stdio::null())
            .stdout(output())
            .stderr(output())
            .spawn()
            .expect("the function starts");
        Self {
            watch,
            function,
            port,
        }
    }

    fn invoke(&self, data_file: &Path) -> Value {
        let out = Command::new(cargo_lambda())
            .args([
                "lambda",
                "invoke",
                "_",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                &self.port.to_string(),
            ])
            .arg("--data-file")
            .arg(data_file)
            .args(["--output-format", "json"])
            .stdin(Stdio::null())
            .current_dir(root())
            .output()
            .expect("cargo lambda invoke runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.function.kill();
        let _ = self.function.wait();
        // `--`: without it procps' kill reads `-<pgid>` as options, and signals process
        // group 2 instead (seen here: it took the caller's session down with it).
        let group = format!("-{}", self.watch.id());
        let _ = Command::new("kill")
            .args(["-s", "TERM", "--", &group])
            .status();
        let _ = self.watch.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_and_invoke_serve_both_functions_against_the_emulators() {
    let s = Sandbox::new(ROLLBACK, 3, "3", &[], "ALARM").await;
    let dir = tempfile::tempdir().expect("tmp");
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, &s.policy_toml).expect("policy");
    let alarm = dir.path().join("alarm.json");
    std::fs::write(
        &alarm,
        guard_e2e::event_text("eventbridge-alarm.json").replace("orders-ai", &s.name),
    )
    .expect("event");

    let guard = Watcher::start("guard-function", &policy, &dir.path().join("guard.log"));
    let report = tokio::task::block_in_place(|| guard.invoke(&alarm));
    assert_eq!(report["outcome"], "executed", "{report}");
    assert_eq!(report["alias_after"]["version"], "2");
    assert_eq!(s.alias().await, "2");
    assert_eq!(s.notifications().await.len(), 1);

    // The same alarm again and an event of another source, through a real queue, as the
    // alarm queue's poller hands them over: the duplicate already done, only the other one
    // reported back.
    let bad = guard_e2e::event_text("bad-wrong-source.json");
    let (batch, bad_id) = queued(&s, &[std::fs::read_to_string(&alarm).expect("alarm"), bad]).await;
    let batch_file = dir.path().join("batch.json");
    std::fs::write(&batch_file, batch.to_string()).expect("batch");
    let answer = tokio::task::block_in_place(|| guard.invoke(&batch_file));
    assert_eq!(
        answer,
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": bad_id}]})
    );
    assert_eq!(s.alias().await, "2", "moved once");

    let sample = root().join("events/insight-sample.json");
    let insight = Watcher::start("ai-insight", &policy, &dir.path().join("insight.log"));
    let answer = tokio::task::block_in_place(|| insight.invoke(&sample));
    assert_eq!(answer["stream_id"], "support-ai");
    assert_eq!(answer["insight"]["source"], "model", "{answer}");
    drop((guard, insight));
}

/// `bodies` sent to a queue of the emulator and received back, as the event Lambda's SQS
/// poller builds from the messages; the id of the last message.
async fn queued(s: &Sandbox, bodies: &[String]) -> (Value, String) {
    let (url, arn) = s
        .emu
        .queue(&guard_e2e::unique("alarm-queue"))
        .await
        .expect("queue");
    for body in bodies {
        s.emu
            .sqs
            .send_message()
            .queue_url(&url)
            .message_body(body)
            .send()
            .await
            .expect("SendMessage");
    }
    let mut records = Vec::new();
    let mut ids = Vec::new();
    while records.len() < bodies.len() {
        let out = s
            .emu
            .sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .expect("ReceiveMessage");
        for m in out.messages() {
            let attributes: serde_json::Map<String, Value> = m
                .attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.as_str().to_string(), Value::from(v.as_str())))
                        .collect()
                })
                .unwrap_or_default();
            ids.push(m.message_id().unwrap_or_default().to_string());
            records.push(serde_json::json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": attributes,
                "messageAttributes": {},
                "md5OfBody": m.md5_of_body(),
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": "us-east-1",
            }));
        }
    }
    // In the order sent (a standard queue does not promise it).
    let order: Vec<usize> = bodies
        .iter()
        .map(|b| {
            records
                .iter()
                .position(|r| r["body"] == b.as_str())
                .expect("every message received")
        })
        .collect();
    let records: Vec<Value> = order.iter().map(|i| records[*i].clone()).collect();
    let last = ids[*order.last().expect("a message")].clone();
    (serde_json::json!({ "Records": records }), last)
}
