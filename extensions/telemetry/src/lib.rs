//! `rollback-guard-telemetry`: a Lambda extension (a layer) that gives the guard's fast lane its
//! metrics. Lambda publishes its own at 1-minute resolution, so an alarm on them fires 2–3
//! minutes after a bad release's first errors; this extension counts, from the Telemetry
//! API's `platform.runtimeDone` records, each second's invocations, errors, timeouts and
//! durations per alias and version, and prints them as high-resolution EMF lines to the
//! function's log group, where a 10-second alarm reads them (docs/onboarding.md, "The fast
//! lane").
//!
//! It never touches the invocation: the caller has its response when the runtime posts it.
//! What it adds is billed time after the response, while it waits for the invocation's record
//! (the Telemetry API buffers 25 ms at least) so a warm environment's counts are printed
//! before it is frozen; it waits so once a second at most, and never longer than
//! `ROLLBACK_GUARD_TELEMETRY_WAIT_MS` when no record of the invocation comes at all.
//!
//! `tally` counts and `emf` writes the lines (both pure); `records` reads the Telemetry
//! API's batches; `api` speaks to Lambda; `fake_api` stands in for Lambda on loopback in the
//! tests and the bench.

pub mod api;
pub mod emf;
pub mod fake_api;
pub mod records;
pub mod tally;

use api::{Error, Event, ExtensionsApi};
use records::Record;
use std::collections::HashSet;
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tally::{Drain, Outcome, Tally};
use tokio::sync::Notify;
use tokio::time::Instant;

pub const ENV_PORT: &str = "ROLLBACK_GUARD_TELEMETRY_PORT";
pub const ENV_WAIT_MS: &str = "ROLLBACK_GUARD_TELEMETRY_WAIT_MS";
/// How long an invocation's first record may take before the extension stops waiting for it:
/// four times the Telemetry API's smallest buffering (25 ms).
pub const DEFAULT_WAIT_MS: u64 = 100;
/// At SHUTDOWN, how long the last records may take. Lambda gives external extensions 2 s in
/// all (500 ms when an internal one is registered too); this leaves the printing its time.
const SHUTDOWN_WAIT: Duration = Duration::from_millis(300);

/// The extension's settings, from the function's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The listener's port; 0 lets the system choose.
    pub port: u16,
    /// The longest wait for an invocation's first record; 0: never wait (counts of a warm
    /// environment then wait for its next invocation).
    pub wait: Duration,
}

impl Config {
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let port = match var(ENV_PORT).filter(|v| !v.is_empty()) {
            None => 0,
            Some(v) => (v.parse::<u16>())
                .map_err(|_| format!("{ENV_PORT} is {v:?}: expected a port, 0 to 65535"))?,
        };
        let wait = match var(ENV_WAIT_MS).filter(|v| !v.is_empty()) {
            None => DEFAULT_WAIT_MS,
            Some(v) => (v.parse::<u64>().ok().filter(|ms| *ms <= 10_000)).ok_or_else(|| {
                format!("{ENV_WAIT_MS} is {v:?}: expected milliseconds, 0 to 10000")
            })?,
        };
        Ok(Self {
            port,
            wait: Duration::from_millis(wait),
        })
    }
}

/// What the listener and the run loop share.
struct Shared {
    state: Mutex<State>,
    news: Notify,
}

struct State {
    tally: Tally,
    /// Invocations whose `platform.start` arrived: telemetry reaches this environment, so the
    /// wait for their end may last to their deadline.
    started: HashSet<String>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves counts that are still counts.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn apply(&self, records: Vec<Record>) {
        let mut state = self.lock();
        for record in records {
            match record {
                Record::Start { request_id } => {
                    if state.started.len() >= 1024 {
                        state.started.clear();
                    }
                    state.started.insert(request_id);
                }
                Record::RuntimeDone {
                    request_id,
                    outcome,
                    duration_ms,
                    second,
                } => {
                    state.started.remove(&request_id);
                    let second = second.unwrap_or_else(now_second);
                    state
                        .tally
                        .finished(&request_id, outcome, duration_ms, second);
                }
                Record::InitFailed { second } => {
                    state.tally.init_failed(second.unwrap_or_else(now_second));
                }
            }
        }
        drop(state);
        self.news.notify_waiters();
    }
}

fn now_second() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The instant of a deadline given in Unix milliseconds.
fn instant_of(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

/// Registers, subscribes, and counts until SHUTDOWN.
pub async fn run(config: Config) -> Result<(), Error> {
    let client = lambda_runtime_api_client::Client::builder().build()?;
    let (api, registration) = ExtensionsApi::register(client).await?;
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            tally: Tally::new(registration.function_name, registration.function_version),
            started: HashSet::new(),
        }),
        news: Notify::new(),
    });
    let listening = {
        let shared = shared.clone();
        api::listen(config.port, move |records| shared.apply(records)).await
    };
    // Without telemetry the extension counts nothing, and must not slow the function either.
    let subscribed = match listening {
        Ok(port) => api.subscribe(port).await,
        Err(e) => Err(e),
    };
    let wait = match subscribed {
        Ok(()) => config.wait,
        Err(e) => {
            eprintln!("{}: counting nothing: {e}", api::EXTENSION_NAME);
            Duration::ZERO
        }
    };
    let mut waited_in: Option<i64> = None;
    loop {
        match api.next().await? {
            Event::Invoke {
                request_id,
                invoked_function_arn,
                deadline_ms,
            } => {
                let received = Instant::now();
                shared
                    .lock()
                    .tally
                    .invoked(&request_id, &invoked_function_arn);
                let second = now_second();
                // Once a second: the first invocation of a second waits for its end and
                // prints everything; the others of that second go at once, their counts
                // printed by the next second's first (or at SHUTDOWN).
                let drain = if wait > Duration::ZERO && waited_in != Some(second) {
                    waited_in = Some(second);
                    let deadline = instant_of(deadline_ms);
                    wait_for_end(&shared, &request_id, received + wait, deadline).await;
                    Drain::All
                } else {
                    Drain::Before(second)
                };
                print(&shared, drain);
            }
            Event::Shutdown {
                reason,
                deadline_ms,
            } => {
                let until = (Instant::now() + SHUTDOWN_WAIT)
                    .min(instant_of(deadline_ms).max(Instant::now()));
                if wait > Duration::ZERO {
                    wait_for_all(&shared, until).await;
                }
                let outcome = match reason.as_str() {
                    "timeout" => Outcome::Timeout,
                    "failure" => Outcome::Error,
                    _ => Outcome::Unknown,
                };
                shared.lock().tally.abandon(outcome, now_second());
                print(&shared, Drain::All);
                return Ok(());
            }
        }
    }
}

/// Until the invocation's end is counted; until `give_up` if no record of it came, else until
/// its deadline (a timeout's record comes then).
async fn wait_for_end(shared: &Shared, request_id: &str, give_up: Instant, deadline: Instant) {
    loop {
        let news = shared.news.notified();
        tokio::pin!(news);
        news.as_mut().enable();
        let until = {
            let state = shared.lock();
            if !state.tally.is_running(request_id) {
                return;
            }
            if state.started.contains(request_id) {
                deadline.max(give_up)
            } else {
                give_up
            }
        };
        tokio::select! {
            _ = news => {}
            _ = tokio::time::sleep_until(until) => return,
        }
    }
}

/// Until nothing runs, or `until`.
async fn wait_for_all(shared: &Shared, until: Instant) {
    loop {
        let news = shared.news.notified();
        tokio::pin!(news);
        news.as_mut().enable();
        if shared.lock().tally.running() == 0 {
            return;
        }
        tokio::select! {
            _ = news => {}
            _ = tokio::time::sleep_until(until) => return,
        }
    }
}

fn print(shared: &Shared, drain: Drain) {
    let drained = shared.lock().tally.drain(drain);
    if drained.is_empty() {
        return;
    }
    let mut out = std::io::stdout().lock();
    for (second, series, counts) in drained {
        for line in emf::lines(second, &series, &counts) {
            // stdout is the function's log group; if it is gone, so is the environment.
            let _ = writeln!(out, "{line}");
        }
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            (pairs.iter())
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn settings_default_to_a_chosen_port_and_a_100_ms_wait() {
        assert_eq!(
            Config::from_env(env(&[])),
            Ok(Config {
                port: 0,
                wait: Duration::from_millis(100)
            })
        );
        assert_eq!(
            Config::from_env(env(&[(ENV_PORT, "4243"), (ENV_WAIT_MS, "0")])),
            Ok(Config {
                port: 4243,
                wait: Duration::ZERO
            })
        );
    }

    #[test]
    fn a_bad_setting_is_refused_by_its_name() {
        let e = Config::from_env(env(&[(ENV_WAIT_MS, "soon")])).expect_err("refused");
        assert!(
            e.starts_with("ROLLBACK_GUARD_TELEMETRY_WAIT_MS is \"soon\""),
            "{e}"
        );
        let e = Config::from_env(env(&[(ENV_PORT, "70000")])).expect_err("refused");
        assert!(e.starts_with("ROLLBACK_GUARD_TELEMETRY_PORT"), "{e}");
        assert!(Config::from_env(env(&[(ENV_WAIT_MS, "20000")])).is_err());
    }
}
