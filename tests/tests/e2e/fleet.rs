//! A fleet on the emulator: one fleet trigger (`target = "from-alarm"`), twelve functions with
//! an alarm each, eight opted in (aliases fully on a version, and canaries), four not (one of
//! them opted in for another alias). The alarms name their function alias in their metrics
//! (a single metric, metric math, ExecutedVersion); their events come over the three
//! transports. Exactly the eight act; the four stay as they were, and nobody hears of them.
//! `guard targets` lists every function opted in (the eight, one no alarm watches, the one
//! opted in for another alias) with the warnings.

use guard_e2e::{event_text, home, unique, Emulator};
use rollback_guard::fleet::PROTECT_TAG;
use rollback_guard::guard::Outcome;
use rollback_guard::ports::SystemClock;
use rollback_guard::retry::RetryPolicy;
use rollback_guard::{Guard, Policy};
use serde_json::{json, Value};

const ARN_PREFIX: &str = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:";

/// One function of the fleet and its alarm.
struct Member {
    function: String,
    alarm: String,
    opted_in: Option<&'static str>,
    canary: bool,
    /// 0: one metric; 1: metric math; 2: one metric with ExecutedVersion.
    kind: usize,
    /// 0: EventBridge; 1: SNS; 2: the alarm's Lambda action.
    transport: usize,
}

impl Member {
    /// The alarm's metrics, each as its dimensions.
    fn metrics(&self) -> Vec<Vec<(String, String)>> {
        let f = &self.function;
        let alias = vec![
            ("FunctionName".to_string(), f.clone()),
            ("Resource".to_string(), format!("{f}:live")),
        ];
        match self.kind {
            0 => vec![alias],
            1 => vec![alias, vec![("FunctionName".to_string(), f.clone())]],
            _ => {
                let mut version = alias;
                version.push(("ExecutedVersion".to_string(), "3".to_string()));
                vec![version]
            }
        }
    }

    /// The alarm's state change in ALARM, as its transport carries it.
    fn event(&self) -> Value {
        let arn = format!("{ARN_PREFIX}{}", self.alarm);
        let eb_metrics: Vec<Value> = self
            .metrics()
            .iter()
            .enumerate()
            .map(|(i, dims)| {
                let dims: serde_json::Map<String, Value> = dims
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                    .collect();
                json!({"id": format!("m{i}"), "metricStat": {"metric": {
                    "namespace": "AWS/Lambda", "name": "Errors", "dimensions": dims},
                    "period": 60, "stat": "Sum"}, "returnData": false})
            })
            .collect();
        match self.transport {
            0 => {
                let mut e = template("eventbridge-fleet-alarm.json", &self.alarm);
                e["resources"] = json!([arn]);
                e["id"] = unique("fleet-event").into();
                e["detail"]["configuration"]["metrics"] = eb_metrics.into();
                e
            }
            2 => {
                let mut e = template("lambda-action-fleet-canary.json", &self.alarm);
                e["alarmArn"] = arn.into();
                e["alarmData"]["configuration"]["metrics"] = eb_metrics.into();
                e
            }
            _ => {
                let mut e = template("sns-fleet-alarm.json", &self.alarm);
                let text = e["Records"][0]["Sns"]["Message"].as_str().unwrap_or("{}");
                let mut message: Value = serde_json::from_str(text).expect("message");
                message["AlarmArn"] = arn.into();
                let pairs = |dims: &Vec<(String, String)>| -> Value {
                    dims.iter()
                        .map(|(k, v)| json!({"name": k, "value": v}))
                        .collect()
                };
                let metrics = self.metrics();
                let trigger = message["Trigger"].as_object_mut().expect("Trigger");
                if let [one] = metrics.as_slice() {
                    trigger.insert("Dimensions".into(), pairs(one));
                } else {
                    trigger.remove("Dimensions");
                    let mut math =
                        vec![json!({"Expression": "m0 + m1", "Id": "e1", "ReturnData": true})];
                    math.extend(metrics.iter().enumerate().map(|(i, dims)| {
                        json!({"Id": format!("m{i}"), "MetricStat": {"Metric": {
                            "Dimensions": pairs(dims), "MetricName": "Errors",
                            "Namespace": "AWS/Lambda"}, "Period": 60, "Stat": "Sum"},
                            "ReturnData": false})
                    }));
                    trigger.insert("Metrics".into(), math.into());
                }
                e["Records"][0]["Sns"]["Message"] = message.to_string().into();
                e
            }
        }
    }
}

/// A catalog fleet event whose alarm is renamed to `alarm`.
fn template(file: &str, alarm: &str) -> Value {
    let text = event_text(file);
    let from = [
        "guarded-payments-error-rate",
        "guarded-billing-canary-errors",
        "guarded-shipping-errors",
    ]
    .into_iter()
    .find(|name| text.contains(name))
    .expect("a fleet alarm");
    serde_json::from_str(&text.replace(from, alarm)).expect("json")
}

#[tokio::test]
async fn exactly_the_opted_in_functions_act_and_targets_lists_them_with_the_warnings() {
    let emu = Emulator::connect().await;
    let prefix = unique("fleet");
    let members: Vec<Member> = (0..12)
        .map(|i| Member {
            function: format!("{prefix}-f{i}"),
            alarm: format!("guarded-{prefix}-f{i}-errors"),
            opted_in: match i {
                0..=7 => Some("live"),
                11 => Some("beta"),
                _ => None,
            },
            canary: i % 2 == 1,
            kind: i % 3,
            transport: (i / 3) % 3,
        })
        .collect();
    for m in &members {
        let weights: &[(&str, f64)] = if m.canary { &[("3", 0.2)] } else { &[] };
        let on = if m.canary { "2" } else { "3" };
        emu.function(&m.function, 3, "live", on, weights)
            .await
            .expect("function");
        if let Some(alias) = m.opted_in {
            emu.opt_in(&m.function, alias).await.expect("opt in");
        }
        let metrics = m.metrics();
        let metrics: Vec<Vec<(&str, &str)>> = metrics
            .iter()
            .map(|dims| dims.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect())
            .collect();
        emu.alarm_on(&m.alarm, "ALARM", &metrics)
            .await
            .expect("alarm");
    }
    // Opted in, but no alarm watches it.
    let quiet = format!("{prefix}-quiet");
    emu.function(&quiet, 1, "live", "1", &[])
        .await
        .expect("function");
    emu.opt_in(&quiet, "live").await.expect("opt in");
    let (topic, inbox) = emu
        .topic_with_queue(&format!("{prefix}-notify"))
        .await
        .expect("topic");
    let audit = emu
        .bus_with_queue(&format!("{prefix}-bus"))
        .await
        .expect("bus");
    let policy = Policy::from_toml(&format!(
        r#"
[guard]
notify_topic_arn = "{topic}"
event_bus = "{prefix}-bus"

[[trigger]]
alarm = "guarded-{prefix}-*"
target = "from-alarm"
action = "rollback-alias"
"#
    ))
    .expect("policy");
    let ports = emu
        .ports_with_state(&format!("{prefix}-state"))
        .await
        .expect("ports");
    let guard = Guard::new(policy.clone(), ports.clone(), home());

    for m in &members {
        let report = guard.handle(&m.event(), false).await;
        let want = if m.opted_in == Some("live") {
            Outcome::Executed
        } else {
            Outcome::Ignored
        };
        assert_eq!(report.outcome, want, "{}: {}", m.function, report.reason);
    }

    for m in &members {
        let alias = emu.alias(&m.function, "live").await.expect("alias");
        let tags = emu.tags(&m.function).await.expect("tags");
        let key =
            rollback_guard::state::StateKey::new(guard_e2e::ACCOUNT, &m.function, Some("live"));
        let state = ports.state.read(&key).await.expect("state").0;
        // The guard writes nothing to the functions' tags.
        assert!(
            tags.keys().all(|k| k == PROTECT_TAG),
            "{}: {tags:?}",
            m.function
        );
        if m.opted_in == Some("live") {
            // Rolled back from 3, or its canary of 3 aborted: 2 serves alone.
            assert_eq!(alias, "2", "{}", m.function);
            assert!(state.last.is_some(), "{state:?}");
        } else {
            let before = if m.canary { "2 + 3=0.2" } else { "3" };
            assert_eq!(alias, before, "{}", m.function);
            assert!(state.is_empty(), "{}: {state:?}", m.function);
        }
    }
    let notified = emu.drain(&inbox).await.expect("inbox");
    assert_eq!(notified.len(), 8, "{notified:#?}");
    let announced = emu.drain(&audit).await.expect("audit");
    assert_eq!(announced.len(), 8);
    for m in members.iter().filter(|m| m.opted_in != Some("live")) {
        let silent = |v: &Value| !v.to_string().contains(&m.alarm);
        assert!(notified.iter().all(silent), "{} was announced", m.function);
        assert!(announced.iter().all(silent), "{} was audited", m.function);
    }

    let seeing = rollback_guard::targets::Seeing {
        ports: &ports.own_account(),
        state: ports.state.as_ref(),
        account: guard_e2e::ACCOUNT,
        clock: &SystemClock,
        retry: &RetryPolicy::default(),
        metrics: None,
    };
    let seen = rollback_guard::targets::targets(&policy, &seeing)
        .await
        .expect("targets");
    let mut listed: Vec<&str> = seen
        .targets
        .iter()
        .filter(|t| t.function.starts_with(&format!("{prefix}-")))
        .map(|t| t.function.as_str())
        .collect();
    listed.sort();
    // The eight, the one no alarm watches, and the one opted in for an alias (`beta`) that
    // no alarm names (and that does not exist).
    let mut want: Vec<&str> = members
        .iter()
        .filter(|m| m.opted_in.is_some())
        .map(|m| m.function.as_str())
        .chain([quiet.as_str()])
        .collect();
    want.sort();
    assert_eq!(listed, want);
    let f0 = seen
        .targets
        .iter()
        .find(|t| t.function == members[0].function)
        .expect("f0");
    assert_eq!(f0.alarms, vec![members[0].alarm.clone()]);
    assert!(f0
        .last_action
        .as_deref()
        .is_some_and(|a| a.starts_with("rollback-alias at")));
    assert_eq!(
        f0.serving.as_ref().map(ToString::to_string).as_deref(),
        Some("version 2")
    );
    let mine: Vec<&String> = seen
        .warnings
        .iter()
        .filter(|w| w.contains(&prefix))
        .collect();
    assert_eq!(mine.len(), 6, "{mine:#?}");
    for m in members.iter().filter(|m| m.opted_in != Some("live")) {
        let warning = format!("names {}:live, which has not opted in", m.function);
        assert!(
            mine.iter().any(|w| w.contains(&warning)),
            "{warning}: {mine:#?}"
        );
    }
    for blind in [
        format!("{quiet}:live"),
        format!("{}:beta", members[11].function),
    ] {
        assert!(mine.contains(&&format!(
            "blind: {blind} is opted in, but no alarm of a fleet trigger names it"
        )));
    }
    let beta = seen
        .targets
        .iter()
        .find(|t| t.function == members[11].function);
    assert_eq!(beta.map(|t| t.serving.is_none()), Some(true));
}

/// The every-minute schedule over the fleet, on the emulator: a fleet trigger's ladder
/// (AI off, then the alias back) climbs for the opted-in function whose alarm is still in
/// ALARM, read from DescribeAlarms' dimensions; a function that did not opt in is passed over.
#[tokio::test]
async fn the_schedule_climbs_a_fleet_ladder_for_an_opted_in_function_only() {
    use chrono::{Duration, Utc};
    use rollback_guard::fakes::FakeClock;
    use std::sync::Arc;

    let emu = Emulator::connect().await;
    let prefix = unique("ladder");
    let (opted, stranger) = (format!("{prefix}-in"), format!("{prefix}-out"));
    for function in [&opted, &stranger] {
        emu.protected(function, &format!("guarded-{function}-errors"))
            .await
            .expect("function");
    }
    // The stranger's tag is gone: it never opted in.
    emu.lambda
        .untag_resource()
        .resource(emu.function_arn(&stranger))
        .tag_keys(PROTECT_TAG)
        .send()
        .await
        .expect("untag");
    let policy = Policy::from_toml(&format!(
        "[[trigger]]\nalarm = \"guarded-{prefix}-*\"\ntarget = \"from-alarm\"\naction = [\"disable-ai\", \"rollback-alias\"]\nescalate_after_minutes = 10\n"
    ))
    .expect("policy");
    let now = Utc::now();
    let shared = emu
        .ports_with_state(&format!("{prefix}-state"))
        .await
        .expect("ports");
    let guard_at = |at| {
        let mut ports = shared.clone();
        ports.clock = Arc::new(FakeClock::at(at));
        Guard::new(policy.clone(), ports, home())
    };
    let event = guard_e2e::forwarded(
        "eventbridge-fleet-alarm.json",
        "guarded-payments-error-rate",
        &opted,
        &format!("guarded-{opted}-errors"),
        guard_e2e::ACCOUNT,
    );
    let first = guard_at(now).handle(&event, false).await;
    assert_eq!(first.outcome, Outcome::Executed, "{}", first.reason);
    assert_eq!(first.action, Some("disable-ai"));
    assert_eq!(emu.alias(&opted, "live").await.expect("alias"), "4");

    let schedule: Value = serde_json::from_str(&event_text("schedule.json")).expect("json");
    let check = guard_at(now + Duration::minutes(11))
        .handle(&schedule, false)
        .await;
    let climbed: Vec<_> = check
        .steps
        .iter()
        .filter(|s| s.outcome == Outcome::Executed)
        .collect();
    assert_eq!(climbed.len(), 1, "{:#?}", check.steps);
    assert_eq!(climbed[0].target.as_deref(), Some(opted.as_str()));
    assert_eq!(climbed[0].action, Some("rollback-alias"));
    assert_eq!(emu.alias(&opted, "live").await.expect("alias"), "2");
    assert_eq!(emu.alias(&stranger, "live").await.expect("alias"), "3");
    assert!(emu.tags(&stranger).await.expect("tags").is_empty());
}
