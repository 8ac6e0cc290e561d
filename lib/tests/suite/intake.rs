//! Intake: every transport and variant in `events/`, and what makes an event unacceptable.

use rollback_guard::intake::{parse, parse_bytes, parse_inbound_bytes, Inbound, IntakeError};
use rollback_guard::transition::{AlarmState, Transport};
use serde_json::Value;
use std::path::PathBuf;

pub(crate) fn event(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../events")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub(crate) fn json(name: &str) -> Value {
    serde_json::from_slice(&event(name)).expect("catalog event is JSON")
}

/// A change to a catalog event, for the tables of rejected variants.
pub(crate) type Edit = fn(&mut Value);

const ARN: &str = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:orders-ai-error-rate";

#[test]
fn one_transition_over_three_transports_has_one_dedupe_key() {
    let eb = parse_bytes(&event("eventbridge-alarm.json")).expect("eventbridge");
    let sns = parse_bytes(&event("sns-alarm.json")).expect("sns");
    let action = parse_bytes(&event("lambda-action-alarm.json")).expect("lambda action");
    let key = format!("{ARN}@2026-11-20T03:12:45.123Z");
    assert_eq!(eb.dedupe_key(), key);
    assert_eq!(sns.dedupe_key(), key);
    assert_eq!(action.dedupe_key(), key);
    assert_eq!(
        [eb.transport, sns.transport, action.transport],
        [
            Transport::Eventbridge,
            Transport::Sns,
            Transport::LambdaAction
        ]
    );
    for t in [&eb, &sns, &action] {
        assert_eq!(t.alarm_name, "orders-ai-error-rate");
        assert_eq!(t.account, "123456789012");
        assert_eq!(t.region, "us-east-1");
        assert_eq!(t.new_state, AlarmState::Alarm);
        assert_eq!(t.old_state, AlarmState::Ok);
        assert!(t.reason.starts_with("Threshold Crossed"));
    }
    assert_eq!(eb.datapoints(), vec![12.5, 14.2]);
    assert_eq!(action.datapoints(), vec![12.5, 14.2]);
}

#[test]
fn sns_region_comes_from_the_alarm_arn_not_the_display_name() {
    let t = parse_bytes(&event("sns-alarm.json")).expect("sns");
    assert_eq!(t.region, "us-east-1");
}

#[test]
fn sns_alarm_name_comes_from_the_message_never_the_subject() {
    let mut e = json("sns-alarm.json");
    e["Records"][0]["Sns"]["Subject"] = "ALARM: \"something-else\" in US East".into();
    assert_eq!(parse(&e).expect("sns").alarm_name, "orders-ai-error-rate");
}

#[test]
fn sns_metric_math_with_string_actions_and_null_description_parses() {
    let t = parse_bytes(&event("sns-metric-math.json")).expect("lenient sns");
    assert_eq!(t.alarm_name, "orders-ai-fallback-rate");
    assert_eq!(t.timestamp.to_rfc3339(), "2026-11-20T03:40:00+00:00");
}

#[test]
fn composite_alarms_parse_on_both_transports_even_without_triggering_children() {
    let eb = parse_bytes(&event("eventbridge-composite.json")).expect("eventbridge composite");
    let sns = parse_bytes(&event("sns-composite.json")).expect("sns composite");
    assert_eq!(eb.dedupe_key(), sns.dedupe_key());
    assert_eq!(eb.alarm_name, "orders-ai-composite");
}

#[test]
fn anomaly_detection_and_metric_math_alarms_parse() {
    let t = parse_bytes(&event("eventbridge-anomaly-detection.json")).expect("anomaly");
    assert_eq!(t.alarm_name, "orders-ai-latency-anomaly");
    assert_eq!(t.datapoints(), vec![2450.3]);
}

#[test]
fn replay_name_of_archived_events_is_kept() {
    let t = parse_bytes(&event("eventbridge-replayed.json")).expect("replayed");
    assert_eq!(t.replay_name.as_deref(), Some("incidents-2026-11"));
    assert_eq!(
        parse_bytes(&event("eventbridge-alarm.json"))
            .expect("live")
            .replay_name,
        None
    );
}

#[test]
fn ok_and_insufficient_data_states_parse() {
    assert_eq!(
        parse_bytes(&event("eventbridge-ok.json"))
            .expect("ok")
            .new_state,
        AlarmState::Ok
    );
    assert_eq!(
        parse_bytes(&event("eventbridge-insufficient-data.json"))
            .expect("insufficient")
            .new_state,
        AlarmState::InsufficientData
    );
}

fn rejection(name: &str) -> IntakeError {
    parse_bytes(&event(name)).expect_err("must be rejected")
}

#[test]
fn bad_inputs_are_rejected_with_a_clear_reason() {
    assert_eq!(
        rejection("bad-wrong-source.json"),
        IntakeError::WrongSource("my.app".into())
    );
    assert!(matches!(
        rejection("bad-truncated.json"),
        IntakeError::NotJson(_)
    ));
    assert_eq!(
        rejection("bad-unknown-state.json"),
        IntakeError::UnknownState {
            field: "detail.state.value",
            value: "ALARMING".into()
        }
    );
    assert!(matches!(
        rejection("bad-sns-not-alarm.json"),
        IntakeError::NotAnAlarm(_)
    ));
    assert!(matches!(
        rejection("bad-arn-mismatch.json"),
        IntakeError::Inconsistent(_)
    ));
    assert!(rejection("bad-missing-timestamp.json")
        .to_string()
        .contains("missing field `timestamp`"));
    assert!(rejection("bad-lambda-action-missing-state.json")
        .to_string()
        .contains("alarmData.state.value"));
}

#[test]
fn every_prefix_of_a_real_event_is_rejected_not_misread() {
    // Truncated deliveries: no prefix of a valid event may parse as a transition.
    for name in [
        "eventbridge-alarm.json",
        "sns-alarm.json",
        "lambda-action-alarm.json",
    ] {
        let bytes = event(name);
        let end = bytes
            .iter()
            .rposition(|b| *b == b'}')
            .expect("closing brace");
        for cut in 0..end {
            assert!(
                parse_bytes(&bytes[..cut]).is_err(),
                "{name} cut at {cut} parsed"
            );
        }
    }
}

#[test]
fn bytes_that_are_not_utf8_are_not_json_even_where_the_guard_does_not_look() {
    let mut bytes = event("eventbridge-alarm.json");
    // Inside the value of `detail.configuration.description`, which no shape reads.
    let at = bytes
        .windows(10)
        .position(|w| w == b"Error rate")
        .expect("a value the intake skips");
    bytes[at] = 0xff;
    assert!(matches!(
        parse_inbound_bytes(&bytes),
        Err(IntakeError::NotJson(m)) if m.contains("UTF-8")
    ));
}

#[test]
fn unrecognised_shapes_are_rejected() {
    for raw in ["[]", "42", "null", "{}", r#"{"hello":"world"}"#] {
        assert_eq!(
            parse_bytes(raw.as_bytes()),
            Err(IntakeError::Unrecognised),
            "{raw}"
        );
    }
}

#[test]
fn other_eventbridge_detail_types_are_rejected() {
    let mut e = json("eventbridge-alarm.json");
    e["detail-type"] = "EC2 Instance State-change Notification".into();
    assert_eq!(
        parse(&e),
        Err(IntakeError::WrongDetailType(
            "EC2 Instance State-change Notification".into()
        ))
    );
}

#[test]
fn account_or_region_disagreeing_with_the_arn_is_rejected() {
    let mut e = json("eventbridge-alarm.json");
    e["account"] = "210987654321".into();
    assert!(matches!(parse(&e), Err(IntakeError::Inconsistent(m)) if m.contains("account")));
    let mut e = json("lambda-action-alarm.json");
    e["region"] = "eu-west-1".into();
    assert!(matches!(parse(&e), Err(IntakeError::Inconsistent(m)) if m.contains("region")));
    let mut e = json("sns-alarm.json");
    let raw = e["Records"][0]["Sns"]["Message"]
        .as_str()
        .expect("message")
        .to_string();
    let mut msg: Value = serde_json::from_str(&raw).expect("json");
    msg["AWSAccountId"] = "210987654321".into();
    e["Records"][0]["Sns"]["Message"] = msg.to_string().into();
    assert!(matches!(parse(&e), Err(IntakeError::Inconsistent(_))));
}

#[test]
fn sns_subscription_confirmations_and_events_without_records_are_rejected() {
    let mut e = json("sns-alarm.json");
    e["Records"][0]["Sns"]["Type"] = "SubscriptionConfirmation".into();
    assert!(matches!(parse(&e), Err(IntakeError::NotAnAlarm(_))));
    let mut e = json("sns-alarm.json");
    e["Records"] = Value::Array(Vec::new());
    assert!(parse(&e)
        .expect_err("no record")
        .to_string()
        .contains("no record in `Records`"));
}

#[test]
fn an_sns_event_with_several_records_splits_into_one_delivery_per_record() {
    let mut e = json("sns-alarm.json");
    let first = e["Records"][0].clone();
    let mut second = first.clone();
    let message = second["Sns"]["Message"].as_str().expect("message").replace(
        "2026-11-20T03:12:45.123+0000",
        "2026-11-20T04:12:45.123+0000",
    );
    second["Sns"]["Message"] = message.into();
    e["Records"] = Value::Array(vec![first, second]);
    assert!(matches!(parse(&e), Err(IntakeError::SeveralRecords(2))));
    let records = rollback_guard::intake::sns_records(e.to_string().as_bytes()).expect("split");
    let keys: Vec<String> = records
        .iter()
        .map(|r| {
            let t = rollback_guard::intake::parse_bytes(r.as_bytes()).expect("one record");
            t.dedupe_key()
        })
        .collect();
    assert_eq!(
        keys,
        vec![
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:orders-ai-error-rate@2026-11-20T03:12:45.123Z",
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:orders-ai-error-rate@2026-11-20T04:12:45.123Z",
        ]
    );
}

/// `reasonData` is a JSON document inside a string on both transports that carry it. It is
/// read only to explain an incident, but an event whose `reasonData` is anything else does not
/// have the shape AWS sends: rejected, whichever transport it came by.
#[test]
fn a_reason_data_that_is_not_a_string_is_rejected_on_both_transports() {
    let paths: [(&str, &str, &'static str); 2] = [
        (
            "eventbridge-alarm.json",
            "/detail/state/reasonData",
            "eventbridge",
        ),
        (
            "lambda-action-alarm.json",
            "/alarmData/state/reasonData",
            "lambda-action",
        ),
    ];
    for (name, pointer, transport) in paths {
        let original = json(name);
        let text = original
            .pointer(pointer)
            .and_then(Value::as_str)
            .expect("the catalog event has a reasonData string")
            .to_string();
        let as_object: Value = serde_json::from_str(&text).expect("reasonData holds JSON");
        for wrong in [
            as_object,
            Value::from(42),
            Value::from(true),
            Value::Array(vec![]),
        ] {
            let mut e = original.clone();
            *e.pointer_mut(pointer).expect("reasonData") = wrong.clone();
            let err = parse(&e).expect_err("a reasonData that is not a string");
            let field = pointer.trim_start_matches('/').replace('/', ".");
            assert_eq!(
                err,
                IntakeError::Malformed {
                    transport,
                    message: format!("`{field}` is not a string"),
                },
                "{name} with reasonData {wrong}"
            );
        }
        // Absent or null, there is nothing to explain the incident with; the event stands.
        let mut null = original.clone();
        *null.pointer_mut(pointer).expect("reasonData") = Value::Null;
        let mut absent = original.clone();
        let (state, key) = pointer.rsplit_once('/').expect("a nested field");
        absent
            .pointer_mut(state)
            .and_then(Value::as_object_mut)
            .and_then(|s| s.remove(key))
            .expect("reasonData removed");
        for e in [null, absent] {
            let t = parse(&e).expect("no reasonData to read");
            assert!(
                t.reason_data.is_none() && t.datapoints().is_empty(),
                "{name}"
            );
        }
        let t = parse(&original).expect("the catalog event");
        assert_eq!(
            t.reason_data.as_deref(),
            Some(&*serde_json::to_string(&text).expect("a string"))
        );
    }
}

#[test]
fn lambda_action_from_another_source_is_rejected() {
    let mut e = json("lambda-action-alarm.json");
    e["source"] = "aws.events".into();
    assert_eq!(
        parse(&e),
        Err(IntakeError::WrongSource("aws.events".into()))
    );
}

/// AWS writes `detail-type` and `source` before `detail`, and the intake then reads the
/// detail into its shape in the same pass; in any other order it keeps the detail's text and
/// reads it once the shape is known — to the same result.
#[test]
fn the_detail_may_come_before_what_tells_its_shape() {
    // The metrics are kept as text, spaced as the event was: what they name is compared.
    fn same_metrics_text(inbound: Inbound) -> Inbound {
        match inbound {
            Inbound::Alarm(mut t) => {
                let named = format!("{:?}", t.watched());
                t.metrics = Some(rollback_guard::transition::AlarmMetrics::Configuration(
                    named,
                ));
                Inbound::Alarm(t)
            }
            other => other,
        }
    }
    for name in [
        "eventbridge-alarm.json",
        "eventbridge-replayed.json",
        "insight-critical.json",
        "request-rollback.json",
        "schedule.json",
        "bad-missing-timestamp.json",
        "bad-wrong-source.json",
    ] {
        let value = json(name);
        let map = value.as_object().expect("an object");
        let rest: Vec<String> = map
            .iter()
            .filter(|(key, _)| *key != "detail")
            .map(|(key, v)| format!("{}:{v}", Value::from(key.as_str())))
            .collect();
        let detail_first = format!("{{\"detail\":{},{}}}", map["detail"], rest.join(","));
        let as_written = parse_inbound_bytes(&event(name)).map(same_metrics_text);
        let reordered = parse_inbound_bytes(detail_first.as_bytes()).map(same_metrics_text);
        match (&as_written, &reordered) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{name}"),
            // Rejected either way; where the detail fails its shape, both say so.
            (Err(a), Err(b)) => assert_eq!(
                a.to_string().contains("`detail`"),
                b.to_string().contains("`detail`"),
                "{name}: {a} / {b}"
            ),
            _ => panic!("{name}: {as_written:?} / {reordered:?}"),
        }
    }
}

#[test]
fn a_repeated_key_is_rejected_never_read_twice() {
    let text = String::from_utf8(event("eventbridge-alarm.json")).expect("UTF-8");
    for (once, twice) in [
        (
            r#""source": "aws.cloudwatch","#,
            r#""source": "aws.cloudwatch", "source": "aws.cloudwatch","#,
        ),
        (
            r#""alarmName": "orders-ai-error-rate","#,
            r#""alarmName": "orders-ai-error-rate", "alarmName": "orders-ai-error-rate","#,
        ),
    ] {
        let repeated = text.replacen(once, twice, 1);
        assert_ne!(repeated, text, "{once}");
        let error = parse_inbound_bytes(repeated.as_bytes()).expect_err("a repeated key");
        assert!(
            matches!(&error, IntakeError::Malformed { transport: "eventbridge", message } if message.contains("duplicate field")),
            "{error}"
        );
    }
}

/// Every path to a value inside `value`, objects only (arrays by their first element).
fn object_paths(value: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    if let Some(map) = value.as_object() {
        for (key, child) in map {
            at.push(key.clone());
            out.push(at.clone());
            object_paths(child, at, out);
            at.pop();
        }
    } else if let Some(first) = value.as_array().and_then(|a| a.first()) {
        at.push("0".into());
        object_paths(first, at, out);
        at.pop();
    }
}

fn without(value: &Value, path: &[String]) -> Value {
    let mut copy = value.clone();
    let (last, parents) = path.split_last().expect("a path");
    let mut node = &mut copy;
    for step in parents {
        node = match step.parse::<usize>() {
            Ok(i) if node.is_array() => &mut node[i],
            _ => &mut node[step.as_str()],
        };
    }
    node.as_object_mut().expect("an object").remove(last);
    copy
}

/// The SNS and Lambda-action shapes are the intake's own (read without copying), but they
/// require at least what aws_lambda_events' types require: a field the library cannot do
/// without, the guard rejects an event without.
#[test]
fn what_the_event_library_requires_the_intake_requires_too() {
    use aws_lambda_events::cloudwatch_alarms::CloudWatchAlarm;
    use aws_lambda_events::sns::SnsEvent;
    let mut checked = 0;
    for (name, library_accepts) in [
        (
            "sns-alarm.json",
            (|v: &Value| serde_json::from_value::<SnsEvent>(v.clone()).is_ok())
                as fn(&Value) -> bool,
        ),
        ("lambda-action-alarm.json", |v: &Value| {
            serde_json::from_value::<CloudWatchAlarm<Value, Value>>(v.clone()).is_ok()
        }),
    ] {
        let event = json(name);
        assert!(library_accepts(&event) && parse(&event).is_ok(), "{name}");
        let mut paths = Vec::new();
        object_paths(&event, &mut Vec::new(), &mut paths);
        for path in paths {
            let cut = without(&event, &path);
            if !library_accepts(&cut) {
                checked += 1;
                assert!(parse(&cut).is_err(), "{name} without {path:?} was accepted");
            }
        }
    }
    assert!(checked >= 15, "only {checked} required fields found");
}

/// An alarm's EventBridge event names the alarm in `resources`, and only the alarm: none, or
/// a second resource beside it, is not an event the guard acts on.
#[test]
fn an_alarm_event_names_its_alarm_as_its_one_resource() {
    let original = json("eventbridge-alarm.json");
    let arn = original["resources"][0].clone();
    for (resources, found) in [(vec![], 0), (vec![arn.clone(), arn.clone()], 2)] {
        let mut e = original.clone();
        e["resources"] = Value::Array(resources);
        assert_eq!(
            parse(&e),
            Err(IntakeError::Malformed {
                transport: "eventbridge",
                message: format!(
                    "expected the alarm ARN as the one entry of `resources`, found {found} entries"
                ),
            })
        );
    }
    assert!(parse(&original).is_ok());
}

/// Every timestamp of a Lambda-action payload is checked, not only the one the guard keys on.
#[test]
fn every_timestamp_of_a_lambda_action_payload_is_checked() {
    for (pointer, field) in [
        ("/alarmData/state/timestamp", "alarmData.state.timestamp"),
        (
            "/alarmData/previousState/timestamp",
            "alarmData.previousState.timestamp",
        ),
        ("/time", "time"),
    ] {
        let mut e = json("lambda-action-alarm.json");
        *e.pointer_mut(pointer).expect(pointer) = "soon".into();
        assert_eq!(
            parse(&e),
            Err(IntakeError::Malformed {
                transport: "lambda-action",
                message: format!("`{field}`: `soon` is not a timestamp"),
            })
        );
    }
    assert!(parse(&json("lambda-action-alarm.json")).is_ok());
}

/// What a fleet trigger reads from each transport: the function, alias and version the
/// alarm's metrics name.
#[test]
fn every_transport_carries_the_function_alias_the_alarm_watches() {
    use rollback_guard::watched::{Watched, WatchedAlias};
    let alias = |function: &str, version: Option<&str>| {
        Watched::Alias(WatchedAlias {
            function: function.into(),
            alias: "live".into(),
            version: version.map(str::to_string),
        })
    };
    // EventBridge, metric math: an expression and two metrics of payments:live.
    let eb = parse_bytes(&event("eventbridge-fleet-alarm.json")).expect("eventbridge");
    assert_eq!(eb.watched(), alias("payments", None));
    // SNS with `Trigger.Dimensions` only (one metric).
    let sns = parse_bytes(&event("sns-fleet-alarm.json")).expect("sns");
    assert_eq!(sns.watched(), alias("shipping", None));
    // The Lambda action's payload, with ExecutedVersion.
    let action = parse_bytes(&event("lambda-action-fleet-canary.json")).expect("lambda action");
    assert_eq!(action.watched(), alias("billing", Some("4")));
    // SNS metric math (`Trigger.Metrics[].MetricStat.Metric.Dimensions`), dimensionless.
    let math = parse_bytes(&event("sns-metric-math.json")).expect("sns metric math");
    assert_eq!(math.watched(), Watched::NoFunction);
    // Composite alarms have no metrics, on either transport.
    for file in ["sns-composite.json", "eventbridge-composite.json"] {
        let composite = parse_bytes(&event(file)).expect("composite");
        assert_eq!(composite.watched(), Watched::NoMetrics, "{file}");
    }
    let two = parse_bytes(&event("bad-fleet-two-functions.json")).expect("parses");
    assert!(matches!(
        two.watched(),
        Watched::Two {
            what: "function",
            ..
        }
    ));
}

#[test]
fn sns_metric_math_naming_a_function_alias_is_read() {
    let mut sns = json("sns-metric-math.json");
    let message = sns["Records"][0]["Sns"]["Message"]
        .as_str()
        .expect("message");
    let mut message: Value = serde_json::from_str(message).expect("json");
    message["Trigger"]["Metrics"][1]["MetricStat"]["Metric"]["Dimensions"] = serde_json::json!([
        {"value": "pay", "name": "FunctionName"},
        {"value": "pay:live", "name": "Resource"}
    ]);
    sns["Records"][0]["Sns"]["Message"] = message.to_string().into();
    let watched = parse(&sns).expect("parses").watched();
    assert_eq!(
        watched
            .alias()
            .map(|w| (w.function.as_str(), w.alias.as_str())),
        Ok(("pay", "live"))
    );
}

/// An SNS record is checked before its message is read, and a message that is not an alarm
/// notification is told from one that does not hold its shape.
#[test]
fn sns_records_and_messages_that_are_not_cloudwatch_alarms_are_rejected() {
    let cases: [(Edit, &str); 5] = [
        (
            |e| e["Records"][0]["EventSource"] = "aws:sqs".into(),
            "malformed sns event: EventSource `aws:sqs` is not `aws:sns`",
        ),
        (
            |e| e["Records"][0]["Sns"]["Timestamp"] = "yesterday".into(),
            "malformed sns event: `Records[0].Sns.Timestamp`: `yesterday` is not a timestamp",
        ),
        (
            |e| e["Records"][0]["Sns"]["Message"] = "checkout is down".into(),
            "SNS message is not a CloudWatch alarm notification: message is not a JSON object",
        ),
        (
            |e| {
                e["Records"][0]["Sns"]["Message"] = r#"{"AlarmName":"orders-ai-error-rate"}"#.into()
            },
            "SNS message is not a CloudWatch alarm notification: message has no `AlarmArn`",
        ),
        (
            |e| {
                let message = e["Records"][0]["Sns"]["Message"]
                    .as_str()
                    .expect("a message");
                let mut message: Value = serde_json::from_str(message).expect("JSON");
                message["NewStateValue"] = 5.into();
                e["Records"][0]["Sns"]["Message"] = message.to_string().into();
            },
            "malformed sns event: Message: invalid type: integer `5`, expected a string",
        ),
    ];
    for (edit, expected) in cases {
        let mut e = json("sns-alarm.json");
        edit(&mut e);
        let error = parse(&e).expect_err(expected).to_string();
        assert!(error.starts_with(expected), "{error}");
    }
    assert!(parse(&json("sns-alarm.json")).is_ok());
}
