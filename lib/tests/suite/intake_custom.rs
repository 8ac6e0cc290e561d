//! Intake beyond an alarm's own transports: over EventBridge the schedule, Critical Insight,
//! Rollback Requested and CloudTrail's record of an alias change, each checked as strictly as
//! an alarm, each mistake named; and the alarm queue's SQS envelope, a message's body an event.

use crate::intake::{event, json, Edit};
use rollback_guard::intake::{parse_inbound, parse_inbound_bytes, Inbound, IntakeError};

/// Only EventBridge's own schedule (`source` `aws.events`) is a scheduled check.
#[test]
fn a_scheduled_event_from_another_source_is_rejected() {
    let mut e = json("schedule.json");
    e["source"] = "my.app".into();
    assert_eq!(
        parse_inbound(&e),
        Err(IntakeError::WrongSource("my.app".into()))
    );
    assert!(parse_inbound(&json("schedule.json")).is_ok());
}

/// Critical Insight, Rollback Requested and schedule events: their envelope and detail are
/// checked as strictly as an alarm's, each mistake named.
#[test]
fn eventbridge_events_that_are_not_alarms_are_checked_too() {
    let cases: [(&str, Edit, &str); 12] = [
        (
            "insight-critical.json",
            |e| e["detail"]["risk_score"] = 85.5.into(),
            "detail.risk_score: 85.5 is not an integer in 0..=100",
        ),
        (
            "insight-critical.json",
            |e| e["detail"]["risk_score"] = (-1).into(),
            "detail.risk_score: -1 is not an integer in 0..=100",
        ),
        (
            "insight-critical.json",
            |e| e["detail"]["risk_score"] = "85".into(),
            "`detail`: invalid type: string \"85\", expected f64",
        ),
        (
            "insight-critical.json",
            |e| e["detail"]["alert_id"] = " ".into(),
            "detail.alert_id and detail.stream_id must not be empty",
        ),
        (
            "insight-critical.json",
            |e| e["detail"]["stream_id"] = "".into(),
            "detail.alert_id and detail.stream_id must not be empty",
        ),
        (
            "insight-critical.json",
            |e| e["account"] = "12345".into(),
            "`account` `12345` is not an account id",
        ),
        (
            "insight-critical.json",
            |e| e["source"] = " ".into(),
            "`source` is empty",
        ),
        (
            "request-rollback.json",
            |e| e["id"] = "".into(),
            "a request needs its event `id`",
        ),
        (
            "request-rollback.json",
            |e| e["detail"]["force"] = true.into(),
            "`detail`: unknown field `force`",
        ),
        (
            "request-rollback.json",
            |e| e["detail"]["action"] = 1.into(),
            "`detail`: invalid type: integer `1`, expected a string",
        ),
        (
            "request-rollback.json",
            |e| e["account"] = "account".into(),
            "`account` `account` is not an account id",
        ),
        (
            "schedule.json",
            |e| e["account"] = "1234567890123".into(),
            "`account` `1234567890123` is not an account id",
        ),
    ];
    for (file, edit, expected) in cases {
        assert!(parse_inbound(&json(file)).is_ok(), "{file} as it is");
        let mut e = json(file);
        edit(&mut e);
        match parse_inbound(&e) {
            Err(IntakeError::Malformed {
                transport: "eventbridge",
                message,
            }) => assert!(message.contains(expected), "{file}: {message}"),
            other => panic!("{file}: expected `{expected}`, got {other:?}"),
        }
    }
}

/// CloudTrail's record of an alias change: read into when a version went live and who put it
/// there; a failed call, another call, a function named by ARN, a version that is not a number.
#[test]
fn an_alias_change_is_read_from_cloudtrails_record_and_a_bad_one_refused() {
    let text = String::from_utf8(event("cloudtrail-update-alias.json")).expect("utf-8");
    let Ok(Inbound::AliasChange(c)) = parse_inbound_bytes(text.as_bytes()) else {
        panic!("not an alias change");
    };
    assert_eq!(
        (c.function.as_str(), c.alias.as_str(), c.version.as_str()),
        ("search-ai", "live", "3")
    );
    assert_eq!(
        c.at,
        "2026-11-06T09:00:00Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .expect("t")
    );
    assert_eq!(
        c.by,
        "arn:aws:sts::123456789012:assumed-role/deployer/pipeline"
    );
    assert_eq!(c.account, "123456789012");
    let by_arn = text.replace(
        "\"functionName\": \"search-ai\"",
        "\"functionName\": \"arn:aws:lambda:us-east-1:123456789012:function:search-ai\"",
    );
    let Ok(Inbound::AliasChange(c)) = parse_inbound_bytes(by_arn.as_bytes()) else {
        panic!("not an alias change");
    };
    assert_eq!(c.function, "search-ai");
    for (bad, why) in [
        (
            text.replace("UpdateAlias20150331", "PublishVersion20150331"),
            "only UpdateAlias and CreateAlias",
        ),
        (
            text.replace(
                "\"functionVersion\": \"3\"",
                "\"functionVersion\": \"$LATEST\"",
            ),
            "not a function, an alias and a published version",
        ),
        (
            text.replace(
                "\"eventTime\": \"2026-11-06T09:00:00Z\"",
                "\"eventTime\": \"last week\"",
            ),
            "detail.eventTime",
        ),
    ] {
        let err = parse_inbound_bytes(bad.as_bytes()).expect_err(why);
        assert!(err.to_string().contains(why), "{why}: {err}");
    }
    let failed = parse_inbound_bytes(&event("bad-cloudtrail-failed-call.json"))
        .expect_err("a failed call changed nothing");
    assert!(
        failed
            .to_string()
            .contains("failed (ResourceConflictException)"),
        "{failed}"
    );
}

/// The alarm queue's envelope (what the template's main path delivers): each message's body is
/// an event, read alone; a batch whose message has no id or body is refused whole; another
/// transport's event is not taken for one.
#[test]
fn the_alarm_queues_envelope_holds_one_event_a_message() {
    use rollback_guard::intake::queue_messages;
    let text = String::from_utf8(event("sqs-alarm.json")).expect("utf-8");
    let messages = queue_messages(&text)
        .expect("an SQS batch")
        .expect("well formed");
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0].message_id,
        "2e1424d4-f796-459a-8184-9c92662be6da"
    );
    assert_eq!(
        messages[0].queue_arn.as_deref(),
        Some("arn:aws:sqs:us-east-1:123456789012:rollback-guard-alarms")
    );
    let Ok(Inbound::Alarm(t)) = parse_inbound_bytes(messages[0].body.as_bytes()) else {
        panic!("the body is the alarm's EventBridge event");
    };
    assert_eq!(t.alarm_name, "orders-ai-error-rate");
    // The envelope itself is not an event of any transport.
    assert!(parse_inbound_bytes(text.as_bytes()).is_err());
    let no_body = text.replacen("\"body\"", "\"bodyless\"", 1);
    let refused = queue_messages(&no_body)
        .expect("an SQS batch")
        .expect_err("no body");
    assert!(
        refused.to_string().contains("no messageId or no body"),
        "{refused}"
    );
    for other in [
        "sns-alarm.json",
        "eventbridge-alarm.json",
        "lambda-action-alarm.json",
    ] {
        let text = String::from_utf8(event(other)).expect("utf-8");
        assert!(queue_messages(&text).is_none(), "{other}");
    }
}

/// `guard evaluate` and `guard replay` read the envelope as the function does: a body that is
/// not an event is rejected saying which message; the guard acts on a body that is.
#[tokio::test]
async fn evaluate_and_the_guard_take_the_envelope_apart() {
    use rollback_guard::evaluate::{evaluate, evaluate_each};
    let policy = crate::support::policy();
    let home = rollback_guard::fakes::home();
    let bad = evaluate(&policy, Some(&home), &event("bad-sqs-body.json"), false);
    assert_eq!(bad.outcome, "rejected");
    assert!(
        bad.reason.starts_with(
            "SQS message 059f36b4-87a3-44ab-83d2-661975830a7d: event is not valid JSON"
        ),
        "{}",
        bad.reason
    );
    // Two messages: a verdict each.
    let mut batch: serde_json::Value = json("sqs-alarm.json");
    let second = batch["Records"][0].clone();
    batch["Records"]
        .as_array_mut()
        .expect("records")
        .push(second);
    let bytes = batch.to_string().into_bytes();
    assert_eq!(evaluate_each(&policy, Some(&home), &bytes, false).len(), 2);
    assert_eq!(
        evaluate(&policy, Some(&home), &bytes, false).outcome,
        "rejected"
    );

    let lambda = rollback_guard::fakes::FakeLambda::default().with_function(
        "orders-ai",
        3,
        "live",
        rollback_guard::rollback::AliasState::on("3"),
    );
    let b = rollback_guard::fakes::FakeBackends::new(
        lambda,
        "orders-ai-error-rate",
        "2026-11-20T03:13:00Z".parse().expect("t"),
    );
    let report = b
        .guard(policy.clone())
        .handle_bytes(&event("sqs-alarm.json"), false)
        .await;
    assert_eq!(
        report.outcome,
        rollback_guard::Outcome::Executed,
        "{}",
        report.reason
    );
    // The same batch twice over: one delivery acted, the other a duplicate, a step each.
    let twice = b.guard(policy).handle_bytes(&bytes, false).await;
    assert_eq!(twice.steps.len(), 2);
    assert!(twice
        .steps
        .iter()
        .all(|s| s.outcome == rollback_guard::Outcome::AlreadyDone));
}
