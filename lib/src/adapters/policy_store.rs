//! Where the policy is kept once it outgrows an environment variable (4 KB for all of a
//! function's variables): an SSM parameter (`GetParameter`) or an S3 object (`GetObject`), read
//! once at cold start. Two reads, made as SigV4-signed HTTPS requests with the SDK's
//! credentials, region and endpoint: the SDK crates for SSM and S3 would cost every build about
//! five CPU-minutes for them.

use super::SdkConfig;
use crate::policy::PolicySource;
use crate::ports::PortError;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings,
};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::time::{Duration, SystemTime};

/// How long a read may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The policy's text from where `source` says (a file's or the variable's as they are).
pub async fn policy_text(config: &SdkConfig, source: &PolicySource) -> Result<String, PortError> {
    match source {
        PolicySource::Text(text) => Ok(text.clone()),
        PolicySource::File(path) => std::fs::read_to_string(path)
            .map_err(|e| PortError::Other(format!("cannot read `{path}`: {e}"))),
        PolicySource::Ssm(name) => ssm_parameter(config, name).await,
        PolicySource::S3 { bucket, key } => s3_object(config, bucket, key).await,
    }
}

/// The policy the environment names (`PolicySource::from_env`), read and validated with the
/// deployment's topic and bus; an error names where it came from.
pub async fn load_policy(config: &SdkConfig) -> Result<crate::Policy, String> {
    let source = PolicySource::from_env().map_err(|e| e.to_string())?;
    let text = policy_text(config, &source)
        .await
        .map_err(|e| format!("cannot read the policy from {source}: {e}"))?;
    crate::Policy::from_toml_deployed(&text, &crate::policy::Deployment::from_env())
        .map_err(|e| format!("the policy from {source} is refused: {e}"))
}

/// The service's endpoint: `AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL` (the
/// emulator), else AWS's in the region.
fn endpoint(config: &SdkConfig, service_env: &str, default: String) -> (String, bool) {
    let custom = std::env::var(format!("AWS_ENDPOINT_URL_{service_env}"))
        .ok()
        .filter(|e| !e.is_empty())
        .or_else(|| config.endpoint_url().map(str::to_string));
    match custom {
        Some(e) => (e.trim_end_matches('/').to_string(), true),
        None => (default, false),
    }
}

fn region(config: &SdkConfig) -> Result<String, PortError> {
    config
        .region()
        .map(|r| r.to_string())
        .ok_or_else(|| PortError::Other("no region configured (AWS_REGION)".into()))
}

/// `GetParameter` with decryption (a `SecureString` too).
async fn ssm_parameter(config: &SdkConfig, name: &str) -> Result<String, PortError> {
    let region = region(config)?;
    let (url, _) = endpoint(config, "SSM", format!("https://ssm.{region}.amazonaws.com"));
    let body = serde_json::json!({ "Name": name, "WithDecryption": true }).to_string();
    let headers = [
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", "AmazonSSM.GetParameter"),
    ];
    let answer = signed(config, "ssm", "POST", &format!("{url}/"), &headers, body).await?;
    let value: serde_json::Value = serde_json::from_slice(&answer).map_err(|e| {
        PortError::Other(format!(
            "SSM parameter {name}: not a GetParameter answer: {e}"
        ))
    })?;
    value["Parameter"]["Value"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| PortError::Other(format!("SSM parameter {name}: no value in the answer")))
}

/// `GetObject`, path-style on a custom endpoint (the emulator), virtual-hosted on AWS.
async fn s3_object(config: &SdkConfig, bucket: &str, key: &str) -> Result<String, PortError> {
    let region = region(config)?;
    let escaped: String = key.split('/').map(url_escape).collect::<Vec<_>>().join("/");
    let (base, custom) = endpoint(
        config,
        "S3",
        format!("https://{bucket}.s3.{region}.amazonaws.com"),
    );
    let url = if custom {
        format!("{base}/{bucket}/{escaped}")
    } else {
        format!("{base}/{escaped}")
    };
    let body = signed(config, "s3", "GET", &url, &[], String::new()).await?;
    String::from_utf8(body.to_vec())
        .map_err(|_| PortError::Other(format!("s3://{bucket}/{key} is not UTF-8 text")))
}

/// RFC 3986 unreserved characters as they are, everything else percent-encoded (a URL's
/// path segment, or a form's value).
pub fn url_escape(part: &str) -> String {
    part.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One request, signed with the configuration's credentials; the answer's body, or the error
/// AWS gave, sorted as the SDK adapters sort theirs.
async fn signed(
    config: &SdkConfig,
    service: &str,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: String,
) -> Result<Bytes, PortError> {
    let provider = config
        .credentials_provider()
        .ok_or_else(|| PortError::Other("no credentials configured".into()))?;
    let credentials = provider
        .provide_credentials()
        .await
        .map_err(|e| PortError::Other(format!("no credentials: {e}")))?;
    let identity = credentials.into();
    let region = region(config)?;
    let mut settings = SigningSettings::default();
    if service == "s3" {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name(service)
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .map_err(|e| PortError::Other(format!("cannot sign: {e}")))?
        .into();
    let signable = SignableRequest::new(
        method,
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .map_err(|e| PortError::Other(format!("cannot sign {url}: {e}")))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| PortError::Other(format!("cannot sign {url}: {e}")))?
        .into_parts();
    let mut request = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut request = request
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| PortError::Other(format!("{url}: {e}")))?;
    instructions.apply_to_request_http1x(&mut request);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
        .map_err(|e| PortError::Other(format!("no TLS roots: {e}")))?
        .https_or_http()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(https);
    let response = tokio::time::timeout(TIMEOUT, client.request(request))
        .await
        .map_err(|_| PortError::Transient(format!("{url}: no answer in {TIMEOUT:?}")))?
        .map_err(|e| PortError::Transient(format!("{url}: {e}")))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| PortError::Transient(format!("{url}: {e}")))?
        .to_bytes();
    if status.is_success() {
        return Ok(body);
    }
    let text = String::from_utf8_lossy(&body).to_string();
    let what = format!("{method} {url}: {status}: {text}");
    Err(match status.as_u16() {
        403 => PortError::Denied(what),
        404 => PortError::NotFound(what),
        400 if text.contains("ParameterNotFound") => PortError::NotFound(what),
        400 if text.contains("AccessDenied") => PortError::Denied(what),
        429 | 500..=599 => PortError::Transient(what),
        _ => PortError::Other(what),
    })
}

#[cfg(test)]
mod tests {
    use super::url_escape;

    #[test]
    fn a_key_is_escaped_as_s3_signs_it() {
        assert_eq!(
            url_escape("guard policy+v2.toml"),
            "guard%20policy%2Bv2.toml"
        );
        assert_eq!(url_escape("a-b_c~d.e"), "a-b_c~d.e");
    }
}
