//! The functions as `cargo lambda watch` serves them and `cargo lambda invoke` calls them,
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

/// `cargo lambda watch`, stopped by its process id (and its group's: the functions it runs)
/// when dropped, whatever the test's outcome.
struct Watcher {
    child: Child,
    port: u16,
}

impl Watcher {
    fn start(policy: &Path, log: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("port");
        let log = std::fs::File::create(log).expect("log");
        let child = Command::new(cargo_lambda())
            .args([
                "lambda",
                "watch",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                &port.to_string(),
            ])
            .current_dir(root())
            .env("GUARD_POLICY_FILE", policy)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .process_group(0)
            .spawn()
            .expect("cargo lambda watch starts");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "cargo lambda watch did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        Self { child, port }
    }

    fn invoke(&self, function: &str, data_file: &Path) -> Value {
        let out = Command::new(cargo_lambda())
            .args([
                "lambda",
                "invoke",
                function,
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
        // `--`: without it procps' kill reads `-<pgid>` as options, and signals process
        // group 2 instead (seen here: it took the caller's session down with it).
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-s", "TERM", "--", &group])
            .status();
        let _ = self.child.wait();
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

    let watcher = Watcher::start(&policy, &dir.path().join("watch.log"));
    let report = tokio::task::block_in_place(|| watcher.invoke("guard-function", &alarm));
    assert_eq!(report["outcome"], "executed", "{report}");
    assert_eq!(report["alias_after"]["version"], "2");
    assert_eq!(s.alias().await, "2");
    assert_eq!(s.notifications().await.len(), 1);

    let sample = root().join("events/insight-sample.json");
    let insight = tokio::task::block_in_place(|| watcher.invoke("ai-insight", &sample));
    assert_eq!(insight["stream_id"], "support-ai");
    assert_eq!(insight["insight"]["source"], "model", "{insight}");
    drop(watcher);
}
