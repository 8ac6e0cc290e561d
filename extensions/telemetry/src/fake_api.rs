//! A stand-in for Lambda's Extensions and Telemetry APIs on loopback, for the extension's
//! tests and its cost bench (AWS's Runtime Interface Emulator has no Telemetry API). It hands
//! out the events a test queues, notes when each `next` was asked for, keeps the
//! subscription, and pushes telemetry batches to the subscriber's port on 127.0.0.1 (Lambda
//! pushes to `sandbox.localdomain`).

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Default)]
struct Inner {
    events: VecDeque<String>,
    next_calls: Vec<Instant>,
    registered: Option<Instant>,
    subscription: Option<Value>,
}

/// The fake. Dropping it leaves its server running until the test's runtime ends.
#[derive(Clone)]
pub struct FakeLambda {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    news: Arc<Notify>,
    telemetry_status: StatusCode,
}

impl FakeLambda {
    /// Serves on 127.0.0.1, a port of the system's choosing, for function `name` version
    /// `version`.
    pub async fn start(name: &str, version: &str) -> std::io::Result<Self> {
        Self::start_with(name, version, StatusCode::OK).await
    }

    /// As `start`, answering the telemetry subscription with `telemetry_status`.
    pub async fn start_with(
        name: &str,
        version: &str,
        telemetry_status: StatusCode,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let fake = Self {
            addr: listener.local_addr()?,
            inner: Arc::default(),
            news: Arc::default(),
            telemetry_status,
        };
        let registration =
            json!({"functionName": name, "functionVersion": version, "handler": "bootstrap"})
                .to_string();
        let server = fake.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let server = server.clone();
                let registration = registration.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let server = server.clone();
                        let registration = registration.clone();
                        async move { Ok::<_, hyper::Error>(server.answer(req, &registration).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        Ok(fake)
    }

    /// `AWS_LAMBDA_RUNTIME_API` for the extension.
    pub fn runtime_api(&self) -> String {
        self.addr.to_string()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn answer(&self, req: Request<Incoming>, registration: &str) -> Response<Full<Bytes>> {
        let (method, path) = (req.method().clone(), req.uri().path().to_string());
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        match (method, path.as_str()) {
            (Method::POST, "/2020-01-01/extension/register") => {
                self.lock().registered = Some(Instant::now());
                self.news.notify_waiters();
                let mut res = reply(StatusCode::OK, registration.to_string());
                res.headers_mut().insert(
                    "Lambda-Extension-Identifier",
                    hyper::header::HeaderValue::from_static("fake-extension-id"),
                );
                res
            }
            (Method::PUT, "/2022-07-01/telemetry") => {
                self.lock().subscription = serde_json::from_slice(&body).ok();
                self.news.notify_waiters();
                reply(self.telemetry_status, "OK".into())
            }
            (Method::GET, "/2020-01-01/extension/event/next") => {
                self.lock().next_calls.push(Instant::now());
                self.news.notify_waiters();
                loop {
                    let news = self.news.notified();
                    tokio::pin!(news);
                    news.as_mut().enable();
                    if let Some(event) = self.lock().events.pop_front() {
                        return reply(StatusCode::OK, event);
                    }
                    news.await;
                }
            }
            _ => reply(StatusCode::NOT_FOUND, String::new()),
        }
    }

    /// Queues an INVOKE of `invoked_arn` with `deadline_ms` (Unix milliseconds).
    pub fn invoke(&self, request_id: &str, invoked_arn: &str, deadline_ms: u64) {
        let event = json!({
            "eventType": "INVOKE", "deadlineMs": deadline_ms, "requestId": request_id,
            "invokedFunctionArn": invoked_arn,
            "tracing": {"type": "X-Amzn-Trace-Id", "value": "Root=1-0-0"},
        });
        self.queue(event);
    }

    /// Queues a SHUTDOWN (`spindown`, `timeout`, `failure`).
    pub fn shutdown(&self, reason: &str, deadline_ms: u64) {
        let event =
            json!({"eventType": "SHUTDOWN", "shutdownReason": reason, "deadlineMs": deadline_ms});
        self.queue(event);
    }

    fn queue(&self, event: Value) {
        self.lock().events.push_back(event.to_string());
        self.news.notify_waiters();
    }

    /// When the `n`th `next` (1-based) was asked for, waiting up to `timeout` for it.
    pub async fn next_call(&self, n: usize, timeout: Duration) -> Option<Instant> {
        let until = Instant::now() + timeout;
        loop {
            let news = self.news.notified();
            tokio::pin!(news);
            news.as_mut().enable();
            if let Some(at) = self.lock().next_calls.get(n - 1) {
                return Some(*at);
            }
            tokio::select! {
                _ = news => {}
                _ = tokio::time::sleep_until(until) => return None,
            }
        }
    }

    /// How many `next` calls came so far.
    pub fn next_calls(&self) -> usize {
        self.lock().next_calls.len()
    }

    /// When the extension registered.
    pub fn registered(&self) -> Option<Instant> {
        self.lock().registered
    }

    /// The subscription's body, once it came.
    pub fn subscription(&self) -> Option<Value> {
        self.lock().subscription.clone()
    }

    /// Pushes a batch of records to the subscriber (the port of its destination URI, on
    /// 127.0.0.1); the status it answered.
    pub async fn telemetry(&self, records: &[Value]) -> std::io::Result<u16> {
        let port = (self.subscription())
            .and_then(|s| {
                let uri = s.pointer("/destination/URI")?.as_str()?.to_string();
                uri.rsplit(':').next()?.parse::<u16>().ok()
            })
            .ok_or_else(|| std::io::Error::other("no subscription with a port"))?;
        post(port, &Value::from(records.to_vec()).to_string()).await
    }
}

fn reply(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    res
}

/// One HTTP/1.1 POST on a connection of its own; the status line's code.
async fn post(port: u16, body: &str) -> std::io::Result<u16> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let request = format!(
        "POST / HTTP/1.1\r\nHost: sandbox.localdomain:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await?;
    let answer = String::from_utf8_lossy(&answer);
    (answer.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {answer:?}")))
}

/// Unix milliseconds, `after` from now.
pub fn deadline_in(after: Duration) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (now + after).as_millis() as u64
}

/// A `platform.start` record, now.
pub fn platform_start(request_id: &str) -> Value {
    json!({"time": now(), "type": "platform.start", "record": {"requestId": request_id, "version": "$LATEST"}})
}

/// A `platform.runtimeDone` record, now.
pub fn runtime_done(request_id: &str, status: &str, duration_ms: f64) -> Value {
    json!({
        "time": now(), "type": "platform.runtimeDone",
        "record": {"requestId": request_id, "status": status,
                   "metrics": {"durationMs": duration_ms, "producedBytes": 0}, "spans": []},
    })
}

/// A `platform.initRuntimeDone` record, now.
pub fn init_runtime_done(status: &str) -> Value {
    json!({"time": now(), "type": "platform.initRuntimeDone",
           "record": {"initializationType": "on-demand", "phase": "init", "status": status}})
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
