//! Robustness of the intake and the pipeline: arbitrary bytes and mutated real events never
//! panic and are either valid transitions or rejected with an error; an alarm storm (1,000
//! deliveries, 50 alarms, every transport, shuffled) moves each target once.
//! `make fuzz` runs the fuzzing for FUZZ_SECONDS; `make test` runs a short pass.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rollback_guard::fakes::Storm;
use rollback_guard::intake::{parse_inbound, parse_inbound_bytes, Inbound};
use rollback_guard::rollback::AliasState;
use rollback_guard::transition::AlarmArn;
use rollback_guard::Outcome;
use serde_json::Value;
use std::time::{Duration, Instant};

fn catalog() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../events");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("events/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json") && !p.ends_with("expected.json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read(p).expect("event"))
        .collect()
}

/// What a parsed transition must satisfy, however strange the input was; the two entry points
/// (raw bytes; a parsed JSON value, as the Lambda runtime hands it over) must agree, and so
/// must the same event with its `detail` moved first (the intake reads a detail in the same
/// pass when `detail-type` and `source` come before it, as AWS writes them, and from its kept
/// text after the pass otherwise).
fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    let from_bytes = parse_inbound_bytes(bytes);
    if let Ok(value) = serde_json::from_slice::<Value>(bytes) {
        match (&from_bytes, parse_inbound(&value)) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, &b),
            (Err(_), Err(_)) => {}
            (a, b) => prop_assert!(false, "bytes: {:?}, value: {:?}", a, b),
        }
        if let Some(detail_first) = detail_first(&value) {
            match (&from_bytes, parse_inbound_bytes(detail_first.as_bytes())) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, &b),
                (Err(_), Err(_)) => {}
                (a, b) => prop_assert!(false, "as sent: {:?}, detail first: {:?}", a, b),
            }
        }
    } else {
        prop_assert!(from_bytes.is_err(), "accepted bytes that are not JSON");
    }
    if let Ok(Inbound::Alarm(t)) = from_bytes {
        let arn = AlarmArn::parse(&t.alarm_arn)
            .ok_or_else(|| TestCaseError::fail("accepted an invalid alarm ARN"))?;
        prop_assert_eq!(arn.name, t.alarm_name.as_str());
        prop_assert_eq!(arn.account, t.account.as_str());
        prop_assert_eq!(arn.region, t.region.as_str());
        prop_assert!(t.dedupe_key().starts_with(&t.alarm_arn));
    }
    Ok(())
}

/// The event's text with its `detail` moved to the front, when it has one.
fn detail_first(value: &Value) -> Option<String> {
    let map = value.as_object()?;
    let detail = map.get("detail")?;
    let rest = map
        .iter()
        .filter(|(key, _)| *key != "detail")
        .map(|(key, v)| format!(",{}:{v}", Value::from(key.as_str())));
    Some(format!(
        "{{\"detail\":{detail}{}}}",
        rest.collect::<String>()
    ))
}

/// Replaces, removes or retypes one value somewhere in the event.
fn mutate(v: &mut Value, path: &[usize], replacement: &Value, remove: bool) {
    let Some((&step, rest)) = path.split_first() else {
        *v = replacement.clone();
        return;
    };
    match v {
        Value::Object(map) if !map.is_empty() => {
            let key = map
                .keys()
                .nth(step % map.len())
                .cloned()
                .unwrap_or_default();
            if !rest.is_empty() {
                if let Some(child) = map.get_mut(&key) {
                    mutate(child, rest, replacement, remove);
                }
            } else if remove {
                map.remove(&key);
            } else {
                map.insert(key, replacement.clone());
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let i = step % items.len();
            if !rest.is_empty() {
                mutate(&mut items[i], rest, replacement, remove);
            } else if remove {
                items.remove(i);
            } else {
                items[i] = replacement.clone();
            }
        }
        _ => *v = replacement.clone(),
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::from),
        Just(Value::from("ALARM")),
        Just(Value::from("2026-11-20T03:12:45.123+0000")),
        Just(Value::from(
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:x"
        )),
        Just(serde_json::json!({})),
        Just(serde_json::json!([])),
    ]
}

/// Runs `cases` per batch, batch after batch until FUZZ_SECONDS have passed (one batch when
/// it is not set).
fn fuzz<S: Strategy>(
    strategy: S,
    cases: u32,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let budget = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs);
    let started = Instant::now();
    loop {
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        if let Err(e) = runner.run(&strategy, &test) {
            panic!("{e}");
        }
        if budget.is_none_or(|b| started.elapsed() >= b) {
            return;
        }
    }
}

#[test]
fn arbitrary_bytes_never_panic_and_never_make_an_invalid_transition() {
    fuzz(
        proptest::collection::vec(any::<u8>(), 0..2048),
        2000,
        |bytes| check(&bytes),
    );
}

#[test]
fn mutated_real_events_are_valid_or_rejected() {
    let events: Vec<Value> = catalog()
        .iter()
        .filter_map(|b| serde_json::from_slice(b).ok())
        .collect();
    assert!(events.len() >= 25);
    let strategy = (
        0..events.len(),
        proptest::collection::vec(0usize..64, 1..6),
        json_value(),
        any::<bool>(),
        proptest::option::of(0usize..4096),
    );
    fuzz(strategy, 2000, |(i, path, replacement, remove, cut)| {
        let mut event = events[i].clone();
        mutate(&mut event, &path, &replacement, remove);
        let mut bytes = serde_json::to_vec(&event).expect("json");
        if let Some(cut) = cut {
            bytes.truncate(cut % (bytes.len() + 1));
        }
        check(&bytes)
    });
}

#[tokio::test]
async fn an_alarm_storm_moves_each_target_once() {
    const TARGETS: usize = 10;
    let storm = Storm::new(TARGETS, 5);
    assert_eq!(storm.deliveries.len(), 1000);
    let backends = &storm.backends;
    let guard = storm.guard();
    let deliveries = &storm.deliveries;
    let mut outcomes = std::collections::BTreeMap::new();
    for d in deliveries {
        let r = guard.handle_bytes(d.as_bytes(), false).await;
        *outcomes.entry(r.outcome.as_str()).or_insert(0) += 1;
    }
    assert_eq!(backends.lambda.alias_updates(), TARGETS, "{outcomes:?}");
    for t in 0..TARGETS {
        let mut a = backends
            .lambda
            .alias(&format!("svc{t}"), "live")
            .expect("alias");
        a.revision_id = None;
        assert_eq!(a, AliasState::on("2"), "svc{t}");
    }
    assert_eq!(
        outcomes.get(Outcome::Executed.as_str()),
        Some(&TARGETS),
        "{outcomes:?}"
    );
}
