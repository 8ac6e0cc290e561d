//! Lambda's loopback APIs as the extension uses them: the Extensions API (register, next
//! event) and the Telemetry API (subscribe to platform records; a listener they are pushed
//! to). The Runtime API's own client (`lambda_runtime_api_client`, which reads
//! `AWS_LAMBDA_RUNTIME_API`) carries the calls.

use crate::records::{parse_batch, Record};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use lambda_runtime_api_client::{body::Body, build_request, Client};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The name Lambda knows the extension by: the file's name under /opt/extensions.
pub const EXTENSION_NAME: &str = "rollback-guard-telemetry";
const ID_HEADER: &str = "Lambda-Extension-Identifier";

/// What registration tells of the function.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    pub function_name: String,
    pub function_version: String,
}

/// An event of the Extensions API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Invoke {
        request_id: String,
        invoked_function_arn: String,
        deadline_ms: u64,
    },
    Shutdown {
        /// `spindown`, `timeout` or `failure`, lowercased.
        reason: String,
        deadline_ms: u64,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEvent {
    event_type: String,
    #[serde(default)]
    deadline_ms: u64,
    #[serde(default)]
    request_id: String,
    #[serde(default)]
    invoked_function_arn: String,
    #[serde(default)]
    shutdown_reason: String,
}

/// A registered extension.
pub struct ExtensionsApi {
    client: Client,
    id: String,
}

impl ExtensionsApi {
    /// Registers for INVOKE and SHUTDOWN.
    pub async fn register(client: Client) -> Result<(Self, Registration), Error> {
        let req = build_request()
            .method("POST")
            .uri("/2020-01-01/extension/register")
            .header("Lambda-Extension-Name", EXTENSION_NAME)
            .header("Content-Type", "application/json")
            .body(Body::from(r#"{"events":["INVOKE","SHUTDOWN"]}"#))?;
        let res = client.call(req).await?;
        let status = res.status();
        let id = (res.headers().get(ID_HEADER))
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = res.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            return Err(format!("registration refused: {status}").into());
        }
        let id = id.ok_or("registration answered without an extension identifier")?;
        let registration: Registration = serde_json::from_slice(&body)
            .map_err(|e| format!("registration's answer unreadable: {e}"))?;
        Ok((Self { client, id }, registration))
    }

    /// Subscribes the listener on `port` to platform records only: never `function` or
    /// `extension` records, which would carry this extension's own lines back to it. Lambda's
    /// smallest buffering (25 ms, 1,000 records, 256 KiB) gets each record here soonest.
    pub async fn subscribe(&self, port: u16) -> Result<(), Error> {
        let body = serde_json::json!({
            "schemaVersion": "2022-12-13",
            "types": ["platform"],
            "buffering": {"maxItems": 1000, "maxBytes": 262_144, "timeoutMs": 25},
            "destination": {"protocol": "HTTP", "URI": format!("http://sandbox.localdomain:{port}")},
        });
        let req = build_request()
            .method("PUT")
            .uri("/2022-07-01/telemetry")
            .header(ID_HEADER, &self.id)
            .header("Content-Type", "application/json")
            .body(Body::from(body.to_string()))?;
        let res = self.client.call(req).await?;
        let status = res.status();
        let text = res.into_body().collect().await?.to_bytes();
        if status.is_success() {
            Ok(())
        } else {
            let text = String::from_utf8_lossy(&text);
            Err(format!("telemetry subscription refused: {status} {text}").into())
        }
    }

    /// Waits for the next event. Asking for it also tells Lambda this extension is done with
    /// the current invocation.
    pub async fn next(&self) -> Result<Event, Error> {
        let req = build_request()
            .method("GET")
            .uri("/2020-01-01/extension/event/next")
            .header(ID_HEADER, &self.id)
            .body(Body::empty())?;
        let res = self.client.call(req).await?;
        let status = res.status();
        let body = res.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            return Err(format!("next event refused: {status}").into());
        }
        let raw: RawEvent =
            serde_json::from_slice(&body).map_err(|e| format!("next event unreadable: {e}"))?;
        match raw.event_type.as_str() {
            "INVOKE" => Ok(Event::Invoke {
                request_id: raw.request_id,
                invoked_function_arn: raw.invoked_function_arn,
                deadline_ms: raw.deadline_ms,
            }),
            "SHUTDOWN" => Ok(Event::Shutdown {
                reason: raw.shutdown_reason.to_ascii_lowercase(),
                deadline_ms: raw.deadline_ms,
            }),
            other => Err(format!("next event of an unknown type {other:?}").into()),
        }
    }
}

/// Listens on `port` of every interface (Lambda pushes to `sandbox.localdomain`; 0 lets the
/// system choose) and hands each batch's records to `on_batch`. Returns the port bound.
pub async fn listen<F>(port: u16, on_batch: F) -> Result<u16, Error>
where
    F: Fn(Vec<Record>) + Send + Sync + 'static,
{
    let listener = TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port))).await?;
    let bound = listener.local_addr()?.port();
    let on_batch = Arc::new(on_batch);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                // Out of descriptors, say: try again shortly rather than spin.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            };
            let on_batch = on_batch.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let on_batch = on_batch.clone();
                    async move { Ok::<_, hyper::Error>(receive(req, &*on_batch).await) }
                });
                // A connection that breaks loses only its own batch; Lambda opens another.
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    Ok(bound)
}

async fn receive<F>(req: Request<Incoming>, on_batch: &F) -> Response<Full<Bytes>>
where
    F: Fn(Vec<Record>),
{
    let status = match req.into_body().collect().await {
        Ok(body) => match parse_batch(&body.to_bytes()) {
            Ok(records) => {
                on_batch(records);
                StatusCode::OK
            }
            Err(e) => {
                eprintln!("{EXTENSION_NAME}: a telemetry batch unreadable: {e}");
                StatusCode::BAD_REQUEST
            }
        },
        Err(_) => StatusCode::BAD_REQUEST,
    };
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = status;
    res
}
