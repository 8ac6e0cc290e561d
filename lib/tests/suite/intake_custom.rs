//! Intake of the events that are not alarms, over EventBridge: the schedule, Critical
//! Insight, Rollback Requested and CloudTrail's record of an alias change; each checked as
//! strictly as an alarm, each mistake named.

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
