//! Provisioning helpers for the end-to-end tests and the demo: they build, on the local AWS
//! emulator (`AWS_ENDPOINT_URL`), what a user of the guard has in their account.

use aws_config::SdkConfig;
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

/// Where a guard on the emulator runs: the emulator's default account, in [`REGION`].
pub fn home() -> rollback_guard::Home {
    rollback_guard::Home::new(ACCOUNT, REGION).expect("a valid home")
}

/// Clients on the emulator, acting in one account and region.
pub struct Emulator {
    pub account: String,
    pub region: String,
    pub config: SdkConfig,
    pub lambda: aws_sdk_lambda::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub events: aws_sdk_eventbridge::Client,
}

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

impl Emulator {
    /// Connects to the emulator. Panics with instructions when none is configured: these
    /// tests need one (`make test` starts it).
    pub async fn connect() -> Self {
        let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
        assert!(
            endpoint.starts_with("http://127.0.0.1") || endpoint.starts_with("http://localhost"),
            "AWS_ENDPOINT_URL must point at the local emulator (got `{endpoint}`): run `make test`, or `scripts/with-emulator.sh cargo test`"
        );
        let config = rollback_guard::adapters::sdk_config().await;
        Self::on(config, ACCOUNT, REGION)
    }

    /// Clients acting in another account of the emulator: it takes the account from the ARN
    /// of the role assumed (the role need not exist), and keeps accounts apart.
    pub async fn connect_as(account: &str) -> Self {
        let base = Self::connect().await;
        let role = format!("arn:aws:iam::{account}:role/rollback-guard-e2e");
        let provider = aws_config::sts::AssumeRoleProvider::builder(role)
            .session_name("e2e")
            .configure(&base.config)
            .build()
            .await;
        let config = base
            .config
            .to_builder()
            .credentials_provider(aws_sdk_lambda::config::SharedCredentialsProvider::new(
                provider,
            ))
            .build();
        Self::on(config, account, REGION)
    }

    /// One request to `service` on the emulator over plain HTTP, unsigned (moto reads no
    /// signature, only the service and region its scope names): for the few services the tests
    /// write to without their SDK (SSM, S3). The answer's status and body.
    pub fn raw(
        &self,
        service: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Res<(u16, String)> {
        self.raw_as("testing", service, method, path, headers, body)
    }

    /// `raw`, signed as the access key `key` (the emulator's account is the key's).
    pub fn raw_as(
        &self,
        key: &str,
        service: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Res<(u16, String)> {
        use std::io::{Read, Write};
        let endpoint = std::env::var("AWS_ENDPOINT_URL")?;
        let host = endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let mut stream = std::net::TcpStream::connect(&host)?;
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\nAuthorization: AWS4-HMAC-SHA256 Credential={key}/20261120/{}/{service}/aws4_request, SignedHeaders=host, Signature=0\r\n", body.len(), self.region);
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream.write_all(request.as_bytes())?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        let status = answer
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = answer
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok((status, body))
    }

    /// Clients acting in another region of the emulator's default account.
    pub async fn connect_in(region: &str) -> Self {
        let base = Self::connect().await;
        let config = base
            .config
            .to_builder()
            .region(aws_config::Region::new(region.to_string()))
            .build();
        Self::on(config, ACCOUNT, region)
    }

    fn on(config: SdkConfig, account: &str, region: &str) -> Self {
        Self {
            account: account.into(),
            region: region.into(),
            lambda: aws_sdk_lambda::Client::new(&config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
            sns: aws_sdk_sns::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
            events: aws_sdk_eventbridge::Client::new(&config),
            config,
        }
    }

    /// The execution role functions are created with (the emulator checks that it exists),
    /// in this account: created over IAM's query API (the SDK's IAM crate, test-only, cost a
    /// minute of every fresh build), signed with this account's access key, which is all the
    /// emulator reads of a signature.
    pub async fn role(&self) -> Res<String> {
        use aws_credential_types::provider::ProvideCredentials;
        let name = "rollback-guard-sample-role";
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        let key = match self.config.credentials_provider() {
            Some(provider) => provider
                .provide_credentials()
                .await?
                .access_key_id()
                .to_string(),
            None => "testing".to_string(),
        };
        let body = format!(
            "Action=CreateRole&Version=2010-05-08&RoleName={name}&AssumeRolePolicyDocument={}",
            rollback_guard::adapters::url_escape(trust)
        );
        let (status, answer) = self.raw_as(
            &key,
            "iam",
            "POST",
            "/",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            &body,
        )?;
        // 409: it exists already (another test made it).
        if status != 200 && !answer.contains("EntityAlreadyExists") {
            return Err(format!("CreateRole answered {status}: {answer}").into());
        }
        Ok(format!("arn:aws:iam::{}:role/{name}", self.account))
    }

    /// A function with `versions` published versions (each with its own description) and an
    /// alias `alias` on `version`, with optional canary weights.
    pub async fn function(
        &self,
        name: &str,
        versions: u32,
        alias: &str,
        version: &str,
        weights: &[(&str, f64)],
    ) -> Res<()> {
        let role = self.role().await?;
        let env = aws_sdk_lambda::types::Environment::builder()
            .variables("AI_ENABLED", "true")
            .variables("MODEL_ID", "anthropic.claude-3-haiku")
            .variables("LOG_LEVEL", "info")
            .variables("ORDERS_TABLE", "orders-prod")
            .build();
        self.lambda
            .create_function()
            .function_name(name)
            .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
            .role(role)
            .handler("bootstrap")
            .environment(env)
            .code(
                aws_sdk_lambda::types::FunctionCode::builder()
                    .zip_file(aws_smithy_types_blob(sample_zip()?))
                    .build(),
            )
            .send()
            .await?;
        for v in 1..=versions {
            self.lambda
                .update_function_configuration()
                .function_name(name)
                .description(format!("release {v}"))
                .send()
                .await?;
            self.lambda
                .publish_version()
                .function_name(name)
                .send()
                .await?;
        }
        let routing = aws_sdk_lambda::types::AliasRoutingConfiguration::builder()
            .set_additional_version_weights(Some(
                weights.iter().map(|(v, w)| (v.to_string(), *w)).collect(),
            ))
            .build();
        self.lambda
            .create_alias()
            .function_name(name)
            .name(alias)
            .function_version(version)
            .routing_config(routing)
            .send()
            .await?;
        Ok(())
    }

    /// Deploys new code to `$LATEST` (unpublished), as a deployment pipeline would.
    pub async fn deploy_code(&self, name: &str, marker: &str) -> Res<()> {
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut zip = zip::ZipWriter::new(&mut buf);
            zip.start_file("bootstrap", zip::write::SimpleFileOptions::default())?;
            zip.write_all(format!("#!/bin/sh\necho {marker}\n").as_bytes())?;
            zip.finish()?;
        }
        self.lambda
            .update_function_code()
            .function_name(name)
            .zip_file(aws_sdk_lambda::primitives::Blob::new(buf.into_inner()))
            .send()
            .await?;
        Ok(())
    }

    /// A version's environment variables (`None`: `$LATEST`).
    pub async fn environment(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Res<std::collections::BTreeMap<String, String>> {
        let out = self
            .lambda
            .get_function_configuration()
            .function_name(name)
            .set_qualifier(version.map(str::to_string))
            .send()
            .await?;
        Ok(out
            .environment()
            .and_then(|e| e.variables())
            .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default())
    }

    /// A version's code hash (`None`: `$LATEST`).
    pub async fn code_sha256(&self, name: &str, version: Option<&str>) -> Res<String> {
        let out = self
            .lambda
            .get_function_configuration()
            .function_name(name)
            .set_qualifier(version.map(str::to_string))
            .send()
            .await?;
        Ok(out.code_sha256().unwrap_or_default().to_string())
    }

    /// Published version numbers.
    pub async fn versions(&self, name: &str) -> Res<Vec<String>> {
        let out = self
            .lambda
            .list_versions_by_function()
            .function_name(name)
            .send()
            .await?;
        Ok(out
            .versions()
            .iter()
            .filter_map(|v| v.version().filter(|v| *v != "$LATEST").map(str::to_string))
            .collect())
    }

    /// The alias's version and canary weights, as `version` or `version + v=w`.
    pub async fn alias(&self, function: &str, alias: &str) -> Res<String> {
        let out = self
            .lambda
            .get_alias()
            .function_name(function)
            .name(alias)
            .send()
            .await?;
        let mut s = out.function_version().unwrap_or("?").to_string();
        let mut weights: Vec<(String, f64)> = out
            .routing_config()
            .and_then(|r| r.additional_version_weights())
            .map(|w| w.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default();
        weights.sort_by(|a, b| a.0.cmp(&b.0));
        for (v, w) in weights {
            s.push_str(&format!(" + {v}={w}"));
        }
        Ok(s)
    }

    pub async fn tags(&self, function: &str) -> Res<std::collections::BTreeMap<String, String>> {
        let out = self
            .lambda
            .list_tags()
            .resource(self.function_arn(function))
            .send()
            .await?;
        Ok(out
            .tags()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect())
    }

    /// Opts `function` in to a fleet guard: the tag `rollback-guard:protect` = `alias`.
    pub async fn opt_in(&self, function: &str, alias: &str) -> Res<()> {
        self.tag(function, rollback_guard::fleet::PROTECT_TAG, alias)
            .await
    }

    /// Tags `function` with `key` = `value`, as its owners would.
    pub async fn tag(&self, function: &str, key: &str, value: &str) -> Res<()> {
        self.lambda
            .tag_resource()
            .resource(self.function_arn(function))
            .tags(key, value)
            .send()
            .await?;
        Ok(())
    }

    /// A fleet member here: `function` (live on 3 of 3) opted in, and its alarm `alarm` in
    /// ALARM on its alias's metrics.
    pub async fn protected(&self, function: &str, alarm: &str) -> Res<()> {
        self.function(function, 3, "live", "3", &[]).await?;
        self.opt_in(function, "live").await?;
        let resource = format!("{function}:live");
        self.alarm_on(
            alarm,
            "ALARM",
            &[vec![
                ("FunctionName", function),
                ("Resource", resource.as_str()),
            ]],
        )
        .await
    }

    pub fn function_arn(&self, function: &str) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{function}",
            self.region, self.account
        )
    }

    /// A metric alarm in `state` (the emulator never evaluates alarms: the state is set).
    pub async fn alarm(&self, name: &str, state: &str) -> Res<()> {
        self.cloudwatch
            .put_metric_alarm()
            .alarm_name(name)
            .namespace("AWS/Lambda")
            .metric_name("Errors")
            .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
            .period(60)
            .evaluation_periods(2)
            .threshold(10.0)
            .comparison_operator(
                aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold,
            )
            .send()
            .await?;
        self.set_alarm(name, state).await
    }

    /// A fleet function on a bad day: versions 1 to 3, `live` on 3, opted in, each of `alarms`
    /// in ALARM on its alias; the alarms' state changes (the catalog's fleet event, renamed).
    pub async fn guarded_function(&self, function: &str, alarms: &[String]) -> Res<Vec<Value>> {
        self.function(function, 3, "live", "3", &[]).await?;
        self.opt_in(function, "live").await?;
        let resource = format!("{function}:live");
        let dims = vec![("FunctionName", function), ("Resource", resource.as_str())];
        let mut events = Vec::with_capacity(alarms.len());
        for alarm in alarms {
            self.alarm_on(alarm, "ALARM", std::slice::from_ref(&dims))
                .await?;
            let event = event_text("eventbridge-fleet-alarm.json")
                .replace("guarded-payments-error-rate", alarm)
                .replace("payments", function);
            events.push(serde_json::from_str(&event)?);
        }
        Ok(events)
    }

    /// The guard's state table on the emulator, `name`, made as the template makes its
    /// `StateTable` (key `target`) if it is not there yet.
    pub async fn state_table(&self, name: &str) -> Res<rollback_guard::adapters::DynamoState> {
        let client = aws_sdk_dynamodb::Client::new(&self.config);
        if client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .is_err()
        {
            self.create_state_table(name).await?;
        }
        Ok(rollback_guard::adapters::DynamoState::new(client, name))
    }

    /// Ports on the emulator whose state is kept in table `table` (created if need be).
    pub async fn ports_with_state(&self, table: &str) -> Res<rollback_guard::Ports> {
        let mut ports = rollback_guard::adapters::aws_ports(&self.config);
        ports.state = std::sync::Arc::new(self.state_table(table).await?);
        Ok(ports)
    }

    async fn create_state_table(&self, name: &str) -> Res<()> {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        };
        aws_sdk_dynamodb::Client::new(&self.config)
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("target")
                    .attribute_type(ScalarAttributeType::S)
                    .build()?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("target")
                    .key_type(KeyType::Hash)
                    .build()?,
            )
            .send()
            .await?;
        Ok(())
    }

    /// A metric alarm in `state` on the metrics `metrics` names, each a list of dimensions:
    /// one list is a single metric's; several are metric math's metrics, with an expression
    /// adding them up.
    pub async fn alarm_on(
        &self,
        name: &str,
        state: &str,
        metrics: &[Vec<(&str, &str)>],
    ) -> Res<()> {
        use aws_sdk_cloudwatch::types::{
            ComparisonOperator, Dimension, Metric, MetricDataQuery, MetricStat, Statistic,
        };
        let dimensions = |dims: &[(&str, &str)]| {
            dims.iter()
                .map(|(k, v)| Dimension::builder().name(*k).value(*v).build())
                .collect::<Vec<_>>()
        };
        let request = self
            .cloudwatch
            .put_metric_alarm()
            .alarm_name(name)
            .evaluation_periods(2)
            .threshold(10.0)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold);
        let request = match metrics {
            [one] => request
                .namespace("AWS/Lambda")
                .metric_name("Errors")
                .statistic(Statistic::Sum)
                .period(60)
                .set_dimensions(Some(dimensions(one))),
            several => {
                let mut request = request.metrics(
                    MetricDataQuery::builder()
                        .id("e1")
                        .expression(
                            (0..several.len())
                                .map(|i| format!("m{i}"))
                                .collect::<Vec<_>>()
                                .join(" + "),
                        )
                        .return_data(true)
                        .build(),
                );
                for (i, dims) in several.iter().enumerate() {
                    let metric = Metric::builder()
                        .namespace("AWS/Lambda")
                        .metric_name("Errors")
                        .set_dimensions(Some(dimensions(dims)))
                        .build();
                    request = request.metrics(
                        MetricDataQuery::builder()
                            .id(format!("m{i}"))
                            .metric_stat(
                                MetricStat::builder()
                                    .metric(metric)
                                    .period(60)
                                    .stat("Sum")
                                    .build(),
                            )
                            .return_data(false)
                            .build(),
                    );
                }
                request
            }
        };
        request.send().await?;
        self.set_alarm(name, state).await
    }

    pub async fn set_alarm(&self, name: &str, state: &str) -> Res<()> {
        self.cloudwatch
            .set_alarm_state()
            .alarm_name(name)
            .state_value(aws_sdk_cloudwatch::types::StateValue::from(state))
            .state_reason("set by the test")
            .send()
            .await?;
        Ok(())
    }

    /// An SQS queue, returning (url, arn).
    pub async fn queue(&self, name: &str) -> Res<(String, String)> {
        let url = self
            .sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await?
            .queue_url()
            .unwrap_or_default()
            .to_string();
        let attrs = self
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await?;
        let arn = attrs
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .cloned()
            .unwrap_or_default();
        Ok((url, arn))
    }

    /// An SNS topic with an SQS queue subscribed, returning (topic ARN, queue URL).
    pub async fn topic_with_queue(&self, name: &str) -> Res<(String, String)> {
        let topic = self
            .sns
            .create_topic()
            .name(name)
            .send()
            .await?
            .topic_arn()
            .unwrap_or_default()
            .to_string();
        let (url, arn) = self.queue(&format!("{name}-inbox")).await?;
        self.sns
            .subscribe()
            .topic_arn(&topic)
            .protocol("sqs")
            .endpoint(arn)
            .send()
            .await?;
        Ok((topic, url))
    }

    /// An event bus whose `rollback-guard` events land in an SQS queue (the emulator cannot
    /// deliver to SNS or Lambda targets), returning the queue URL.
    pub async fn bus_with_queue(&self, bus: &str) -> Res<String> {
        self.bus_with_queue_for(bus, r#"{"source":["rollback-guard"]}"#)
            .await
    }

    /// An event bus whose events matching `pattern` land in an SQS queue.
    pub async fn bus_with_queue_for(&self, bus: &str, pattern: &str) -> Res<String> {
        self.events.create_event_bus().name(bus).send().await?;
        let (url, arn) = self.queue(&format!("{bus}-audit")).await?;
        let rule = format!("{bus}-audit");
        self.events
            .put_rule()
            .name(&rule)
            .event_bus_name(bus)
            .event_pattern(pattern)
            .send()
            .await?;
        self.events
            .put_targets()
            .rule(&rule)
            .event_bus_name(bus)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("audit-queue")
                    .arn(arn)
                    .build()?,
            )
            .send()
            .await?;
        Ok(url)
    }

    /// Everything in the queue now, as JSON (SNS envelopes or EventBridge events).
    pub async fn drain(&self, queue_url: &str) -> Res<Vec<Value>> {
        let mut all = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .send()
                .await?;
            let messages = out.messages();
            if messages.is_empty() {
                return Ok(all);
            }
            for m in messages {
                all.push(serde_json::from_str(m.body().unwrap_or("null"))?);
                if let Some(handle) = m.receipt_handle() {
                    self.sqs
                        .delete_message()
                        .queue_url(queue_url)
                        .receipt_handle(handle)
                        .send()
                        .await?;
                }
            }
        }
    }
}

fn aws_smithy_types_blob(bytes: Vec<u8>) -> aws_sdk_lambda::primitives::Blob {
    aws_sdk_lambda::primitives::Blob::new(bytes)
}

/// A deployment package; the emulator stores it and never runs it.
fn sample_zip() -> Res<Vec<u8>> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        zip.start_file("bootstrap", zip::write::SimpleFileOptions::default())?;
        zip.write_all(b"#!/bin/sh\necho sample\n")?;
        zip.finish()?;
    }
    Ok(buf.into_inner())
}

/// A name no other test in this run uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        nanos % 100_000
    )
}

/// The repository's `events/` folder.
pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// A catalog event as text.
pub fn event_text(name: &str) -> String {
    let path = events_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// A catalog event with its names swapped for this test's (`orders-ai` → `orders-ai-123-…`),
/// so tests can run side by side on one emulator.
pub fn event_for(name: &str, from: &str, to: &str) -> Value {
    let text = event_text(name).replace(from, to);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
}

/// The catalog's fleet alarm event `file` (whose alarm is `from`) for `function` and `alarm`,
/// as forwarded from `account`: EventBridge keeps a member's account on a forwarded event, the
/// emulator does not, so tests build the envelopes.
pub fn forwarded(file: &str, from: &str, function: &str, alarm: &str, account: &str) -> Value {
    // The alarm's name holds the catalog function's: it is swapped first, whole.
    let text = event_text(file)
        .replace(from, "\u{1}")
        .replace("payments", function)
        .replace("billing", function)
        .replace("shipping", function)
        .replace('\u{1}', alarm)
        .replace(ACCOUNT, account);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file} is not JSON: {e}"))
}

/// The trigger line of a plain alias rollback, for [`Sandbox::new`].
pub const ROLLBACK: &str = r#"action = "rollback-alias""#;

/// One test's own corner of the emulator: a function `orders-ai-<unique>` with published
/// versions and a `live` alias, its alarm `<name>-error-rate`, an SNS topic and an event bus
/// read back through SQS, and a policy whose one trigger (`<name>-*`) runs `trigger`.
pub struct Sandbox {
    pub emu: Emulator,
    /// The target's name, which is also the function's and the alarms' prefix.
    pub name: String,
    /// The guard's state table, this sandbox's own.
    pub table: String,
    pub topic: String,
    pub inbox: String,
    pub audit: String,
    pub policy: rollback_guard::Policy,
    /// The policy as written, for tools that read a file.
    pub policy_toml: String,
}

impl Sandbox {
    pub async fn new(
        trigger: &str,
        versions: u32,
        version: &str,
        weights: &[(&str, f64)],
        alarm_state: &str,
    ) -> Self {
        let emu = Emulator::connect().await;
        let name = unique("orders-ai");
        emu.function(&name, versions, "live", version, weights)
            .await
            .expect("function");
        emu.alarm(&format!("{name}-error-rate"), alarm_state)
            .await
            .expect("alarm");
        let (topic, inbox) = emu
            .topic_with_queue(&format!("{name}-notify"))
            .await
            .expect("topic");
        let audit = emu
            .bus_with_queue(&format!("{name}-bus"))
            .await
            .expect("bus");
        let policy_toml = format!(
            r#"
            [guard]
            accounts = ["123456789012"]
            notify_topic_arn = "{topic}"
            event_bus = "{name}-bus"
            cooldown_minutes = 30

            [[target]]
            name = "{name}"
            function = "{name}"
            alias = "live"

            [[trigger]]
            alarm = "{name}-*"
            target = "{name}"
            {trigger}
            "#
        );
        let policy = rollback_guard::Policy::from_toml(&policy_toml).expect("policy");
        let table = format!("{name}-state");
        emu.state_table(&table).await.expect("state table");
        Self {
            emu,
            name,
            table,
            topic,
            inbox,
            audit,
            policy,
            policy_toml,
        }
    }

    /// A fresh guard, as a new Lambda instance would be: nothing remembered in memory, its
    /// state in the sandbox's table.
    pub fn guard(&self) -> rollback_guard::Guard {
        rollback_guard::Guard::new(self.policy.clone(), self.ports(), home())
    }

    /// A fresh guard whose clock is `clock` (escalations, cooldowns).
    pub fn guard_at(
        &self,
        clock: std::sync::Arc<dyn rollback_guard::ports::Clock>,
    ) -> rollback_guard::Guard {
        let mut ports = self.ports();
        ports.clock = clock;
        rollback_guard::Guard::new(self.policy.clone(), ports, home())
    }

    /// The emulator's ports, with the sandbox's state table.
    pub fn ports(&self) -> rollback_guard::Ports {
        let mut ports = rollback_guard::adapters::aws_ports(&self.emu.config);
        ports.state = std::sync::Arc::new(self.state_store());
        ports
    }

    /// The sandbox's state table.
    pub fn state_store(&self) -> rollback_guard::adapters::DynamoState {
        rollback_guard::adapters::DynamoState::new(
            aws_sdk_dynamodb::Client::new(&self.emu.config),
            &self.table,
        )
    }

    /// `guard undo --target` this sandbox's target, as an operator would, with `ports`.
    pub async fn undo(
        &self,
        ports: &rollback_guard::Ports,
    ) -> Result<rollback_guard::operator::Undone, rollback_guard::operator::OperatorError> {
        rollback_guard::operator::undo(&self.policy, &operating(ports), &self.name).await
    }

    /// What the guard remembers of the sandbox's function alias `live`.
    pub async fn state(&self) -> rollback_guard::state::TargetState {
        use rollback_guard::ports::StateStore;
        let key = rollback_guard::state::StateKey::new(ACCOUNT, &self.name, Some("live"));
        self.state_store().read(&key).await.expect("state").0
    }

    /// A catalog event, renamed to this sandbox's function and alarms.
    pub fn event(&self, file: &str) -> Value {
        event_for(file, "orders-ai", &self.name)
    }

    pub async fn alias(&self) -> String {
        self.emu.alias(&self.name, "live").await.expect("alias")
    }

    pub async fn notifications(&self) -> Vec<Value> {
        self.emu.drain(&self.inbox).await.expect("inbox")
    }

    pub async fn audit_events(&self) -> Vec<Value> {
        self.emu.drain(&self.audit).await.expect("audit queue")
    }

    /// The alias still on `version`, nothing remembered or tagged, nothing published.
    pub async fn assert_untouched(&self, version: &str) {
        assert_eq!(self.alias().await, version);
        assert!(self.emu.tags(&self.name).await.expect("tags").is_empty());
        assert!(self.state().await.is_empty());
        assert!(self.notifications().await.is_empty());
        assert!(self.audit_events().await.is_empty());
    }
}

/// What the guard remembers of `key`, in the emulator's state table `table`.
pub async fn read_state(
    table: &str,
    key: &rollback_guard::state::StateKey,
) -> rollback_guard::state::TargetState {
    use rollback_guard::ports::StateStore;
    let emu = Emulator::connect().await;
    emu.state_table(table)
        .await
        .expect("state table")
        .read(key)
        .await
        .expect("state")
        .0
}

/// An operator's commands with `ports`, in the emulator's account.
pub fn operating(ports: &rollback_guard::Ports) -> rollback_guard::operator::Operating<'_> {
    rollback_guard::operator::Operating {
        aliases: ports.aliases.as_ref(),
        functions: ports.functions.as_ref(),
        state: ports.state.as_ref(),
        clock: ports.clock.as_ref(),
        retry: rollback_guard::retry::RetryPolicy::default(),
        account: ACCOUNT,
        by: "e2e",
    }
}

/// The sample account's state table (`GUARD_STATE_TABLE` for the demo's and tests' `guard`).
pub const SAMPLE_STATE_TABLE: &str = "rollback-guard-state";

/// The sample account's SNS inbox (the `rollback-guard` topic's SQS subscription).
pub const SAMPLE_INBOX: &str = "rollback-guard-inbox";
/// The sample account's audit queue (the default bus's `rollback-guard` events).
pub const SAMPLE_AUDIT_QUEUE: &str = "default-audit";

/// The sample account that `events/policy.toml` guards: `orders-ai` fully shifted to a bad
/// version 3 (version 2 recorded as stable), `checkout-ai` mid-canary (version 2 + 10 % on 3),
/// `support-ai` on version 3 with its AI on; every alarm the catalog names, in ALARM; the
/// `rollback-guard` topic and the default bus's audit events read through SQS.
pub async fn provision_sample(emu: &Emulator) -> Res<()> {
    emu.function("orders-ai", 3, "live", "2", &[]).await?;
    let ports = emu.ports_with_state(SAMPLE_STATE_TABLE).await?;
    rollback_guard::operator::mark_stable(&operating(&ports), "orders-ai", "live", None).await?;
    emu.lambda
        .update_alias()
        .function_name("orders-ai")
        .name("live")
        .function_version("3")
        .send()
        .await?;
    emu.function("checkout-ai", 3, "live", "2", &[("3", 0.1)])
        .await?;
    emu.function("support-ai", 3, "live", "3", &[]).await?;
    // The fleet (trigger `guarded-*`, target read from the alarm): payments and billing opted
    // in, shipping not.
    emu.function("payments", 3, "live", "3", &[]).await?;
    emu.opt_in("payments", "live").await?;
    emu.function("billing", 4, "live", "3", &[("4", 0.1)])
        .await?;
    emu.opt_in("billing", "live").await?;
    emu.function("shipping", 3, "live", "3", &[]).await?;
    // Judgement: search-ai's release went live weeks ago (the catalog's CloudTrail record
    // says so when it is replayed first); ledger-ai's owners set a floor at its version 3;
    // reports-ai's trigger only observes.
    for function in ["search-ai", "ledger-ai", "reports-ai"] {
        emu.function(function, 3, "live", "3", &[]).await?;
    }
    emu.tag("ledger-ai", rollback_guard::guard::FLOOR_TAG, "3")
        .await?;
    // The fleet's alarms on what their events name (the guard checks an event's metrics
    // against CloudWatch's own copy of the alarm).
    for (alarm, function, version) in [
        ("guarded-payments-error-rate", "payments", None),
        ("guarded-fast-payments-error-rate", "payments", None),
        ("guarded-billing-canary-errors", "billing", Some("4")),
        ("guarded-shipping-errors", "shipping", None),
    ] {
        let resource = format!("{function}:live");
        let mut dims = vec![("FunctionName", function), ("Resource", resource.as_str())];
        if let Some(v) = version {
            dims.push(("ExecutedVersion", v));
        }
        emu.alarm_on(alarm, "ALARM", &[dims]).await?;
    }
    for alarm in [
        "orders-ai-error-rate",
        "orders-ai-latency-anomaly",
        "orders-ai-composite",
        "orders-ai-fallback-rate",
        "checkout-ai-error-rate",
        "support-ai-fallback-rate",
        "payments-latency-p95",
        "search-ai-error-rate",
        "ledger-ai-error-rate",
        "reports-ai-error-rate",
    ] {
        emu.alarm(alarm, "ALARM").await?;
    }
    emu.topic_with_queue("rollback-guard").await?;
    let (_, audit_arn) = emu.queue(SAMPLE_AUDIT_QUEUE).await?;
    emu.events
        .put_rule()
        .name("rollback-guard-audit")
        .event_pattern(r#"{"source":["rollback-guard"]}"#)
        .send()
        .await?;
    emu.events
        .put_targets()
        .rule("rollback-guard-audit")
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("audit")
                .arn(audit_arn)
                .build()?,
        )
        .send()
        .await?;
    Ok(())
}

/// One catalog event replayed through the guard.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayRow {
    pub file: String,
    pub expected: String,
    pub got: String,
    pub reason: String,
}

/// Replays every event in `events/` (in name order) through one guard over the sample
/// account, against `events/policy.toml`, and sets each outcome beside the `replay`
/// expectation in `events/expected.json`.
pub async fn replay_catalog(emu: &Emulator) -> Res<Vec<ReplayRow>> {
    let dir = events_dir();
    let policy = rollback_guard::Policy::from_file(&dir.join("policy.toml").to_string_lossy())?;
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json"))?)?;
    let guard = rollback_guard::Guard::new(
        policy,
        emu.ports_with_state(SAMPLE_STATE_TABLE).await?,
        home(),
    );
    let mut files: Vec<String> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|f| f.ends_with(".json") && f != "expected.json")
        .collect();
    files.sort();
    let mut rows = Vec::new();
    for file in files {
        let report = guard
            .handle_bytes(&std::fs::read(dir.join(&file))?, false)
            .await;
        rows.push(ReplayRow {
            expected: expected[&file]["replay"]
                .as_str()
                .unwrap_or("(none recorded)")
                .to_string(),
            got: report.outcome.as_str().to_string(),
            reason: report.reason,
            file,
        });
    }
    Ok(rows)
}
