//! `guard protect` / `guard unprotect` over fakes: the standard alarms under the fleet
//! trigger's prefix and the opt-in tag, the threshold derived from last week, the refusals,
//! exactly what protect created taken away again; `guard targets` warning of a watched alias
//! with no traffic.

use rollback_guard::fakes::{FakeAlarmSetup, FakeBackends, FakeLambda};
use rollback_guard::fleet::PROTECT_TAG;
use rollback_guard::operator::{protect, unprotect, OperatorError, Protect};
use rollback_guard::protect::{AlarmKind, CREATED_BY_TAG, TAGGED_TAG, TARGET_TAG};
use rollback_guard::rollback::AliasState;
use rollback_guard::Policy;
use std::collections::BTreeMap;

fn fleet_policy() -> Policy {
    Policy::from_toml(
        "[[trigger]]\nalarm = \"guarded-*\"\ntarget = \"from-alarm\"\naction = \"rollback-alias\"\n",
    )
    .expect("policy")
}

/// `payments` live on 3 of 3, not opted in; traffic last day.
fn backends() -> (FakeBackends, FakeAlarmSetup) {
    let lambda = FakeLambda::default().with_function("payments", 3, "live", AliasState::on("3"));
    let b = FakeBackends::new(lambda, "unused", "2026-11-20T03:13:00Z".parse().expect("t"));
    let alarms = FakeAlarmSetup::default();
    alarms.set_data("payments", "live", "Invocations", "Sum", &[120.0, 80.0]);
    (b, alarms)
}

fn request<'a>(function: &'a str, alias: &'a str) -> Protect<'a> {
    Protect {
        function,
        alias,
        p95_ms: None,
        dry_run: false,
    }
}

fn refusal(result: Result<impl std::fmt::Debug, OperatorError>) -> String {
    match result {
        Err(OperatorError::Refused(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn protect_creates_the_standard_alarms_under_the_prefix_then_the_opt_in_tag() {
    let (b, alarms) = backends();
    alarms.set_data(
        "payments",
        "live",
        "Duration",
        "p95",
        &[380.0, 420.0, 400.0],
    );
    let done = protect(
        &fleet_policy(),
        &b.protecting(&alarms),
        &request("payments", "live"),
    )
    .await
    .expect("protected");
    let made = alarms.alarms();
    let names: Vec<&str> = made.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "guarded-payments-live-error-rate",
            "guarded-payments-live-p95-duration"
        ]
    );
    let rate = &made["guarded-payments-live-error-rate"];
    assert_eq!(rate.kind, AlarmKind::ErrorRate { percent: 5.0 });
    assert_eq!(
        (rate.function.as_str(), rate.alias.as_str()),
        ("payments", "live")
    );
    // Twice last week's worst daily p95, rounded up to 100 ms.
    let p95 = &made["guarded-payments-live-p95-duration"];
    assert_eq!(p95.kind, AlarmKind::P95Duration { ms: 900.0 });
    for alarm in made.values() {
        assert_eq!(alarm.tags[CREATED_BY_TAG], "guard protect");
        assert_eq!(alarm.tags[TARGET_TAG], "payments:live");
        assert_eq!(alarm.tags[TAGGED_TAG], "true");
    }
    assert_eq!(b.lambda.tags_of("payments")[PROTECT_TAG], "live");
    // The alarms before the tag: an alarm of a function not opted in acts on nothing.
    assert_eq!(
        b.lambda.calls().last().map(String::as_str),
        Some("TagResource payments")
    );
    let said = done.to_string();
    assert!(
        said.contains("created alarm guarded-payments-live-error-rate"),
        "{said}"
    );
    assert!(
        said.contains("To undo: guard unprotect --function payments --alias live"),
        "{said}"
    );
    assert!(done.warnings.is_empty(), "{:?}", done.warnings);
}

#[tokio::test]
async fn a_dry_run_says_what_it_would_do_and_changes_nothing() {
    let (b, alarms) = backends();
    let dry = Protect {
        dry_run: true,
        p95_ms: Some(1500.0),
        ..request("payments", "live")
    };
    let done = protect(&fleet_policy(), &b.protecting(&alarms), &dry)
        .await
        .expect("planned");
    assert!(alarms.alarms().is_empty());
    assert!(!b.lambda.tags_of("payments").contains_key(PROTECT_TAG));
    let said = done.to_string();
    assert!(
        said.contains("would create alarm guarded-payments-live-p95-duration"),
        "{said}"
    );
    assert!(said.contains("p95 threshold: 1500 ms (--p95-ms)"), "{said}");
    assert!(said.contains("dry run: nothing changed"), "{said}");
}

#[tokio::test]
async fn protect_refuses_what_it_cannot_protect_each_with_its_reason() {
    let (b, alarms) = backends();
    let op = b.protecting(&alarms);
    let missing = refusal(protect(&fleet_policy(), &op, &request("nobody", "live")).await);
    assert!(
        missing.contains("function nobody does not exist"),
        "{missing}"
    );
    let no_alias = refusal(protect(&fleet_policy(), &op, &request("payments", "beta")).await);
    assert!(no_alias.contains("has no alias `beta`"), "{no_alias}");
    let version = refusal(protect(&fleet_policy(), &op, &request("payments", "3")).await);
    assert!(version.contains("--alias `3`"), "{version}");
    let named_only = Policy::from_toml(
        "[[target]]\nname = \"a\"\nfunction = \"a\"\nalias = \"live\"\n[[trigger]]\nalarm = \"a-*\"\ntarget = \"a\"\naction = \"rollback-alias\"\n",
    )
    .expect("policy");
    let no_fleet = refusal(protect(&named_only, &op, &request("payments", "live")).await);
    assert!(no_fleet.contains("no fleet trigger"), "{no_fleet}");
    let bad_ms = Protect {
        p95_ms: Some(-5.0),
        ..request("payments", "live")
    };
    let negative = refusal(protect(&fleet_policy(), &op, &bad_ms).await);
    assert!(negative.contains("--p95-ms `-5`"), "{negative}");
    b.lambda.set_tag("payments", PROTECT_TAG, "blue");
    let other = refusal(protect(&fleet_policy(), &op, &request("payments", "live")).await);
    assert!(other.contains("opted in for alias `blue`"), "{other}");
    assert!(alarms.alarms().is_empty(), "nothing was created");
}

#[tokio::test]
async fn an_alias_without_traffic_is_a_warning_its_alarms_cannot_fire() {
    let (b, alarms) = backends();
    alarms.set_data("payments", "live", "Invocations", "Sum", &[]);
    let done = protect(
        &fleet_policy(),
        &b.protecting(&alarms),
        &request("payments", "live"),
    )
    .await
    .expect("protected");
    assert_eq!(done.warnings.len(), 1);
    assert!(done.warnings[0].contains("payments:live had no invocations in the last day"));
    assert!(
        done.p95.contains("no duration data last week"),
        "{}",
        done.p95
    );
    // `guard targets` says so of every watched alias without traffic (CloudWatch's copy of
    // the alarm protect created, as the guard reads it).
    let alarm = "guarded-payments-live-error-rate";
    b.alarms
        .set(alarm, rollback_guard::transition::AlarmState::Ok);
    b.alarms.set_watched(
        alarm,
        rollback_guard::watched::Watched::Alias(rollback_guard::watched::WatchedAlias {
            function: "payments".into(),
            alias: "live".into(),
            version: None,
        }),
    );
    let seen = b
        .targets_with(&fleet_policy(), Some(&alarms))
        .await
        .expect("targets");
    assert!(
        seen.warnings
            .iter()
            .any(|w| w.starts_with("silent: payments:live")),
        "{:?}",
        seen.warnings
    );
    alarms.set_data("payments", "live", "Invocations", "Sum", &[3.0]);
    let seen = b
        .targets_with(&fleet_policy(), Some(&alarms))
        .await
        .expect("targets");
    assert!(
        !seen.warnings.iter().any(|w| w.starts_with("silent:")),
        "{:?}",
        seen.warnings
    );
}

#[tokio::test]
async fn unprotect_takes_away_exactly_what_protect_created() {
    let (b, alarms) = backends();
    let policy = fleet_policy();
    protect(
        &policy,
        &b.protecting(&alarms),
        &request("payments", "live"),
    )
    .await
    .expect("protected");
    // Someone else's alarm of the same name is not protect's to delete.
    alarms.set_other(
        "guarded-payments-live-p95-duration",
        BTreeMap::from([("team".to_string(), "payments".to_string())]),
    );
    let dry = Protect {
        dry_run: true,
        ..request("payments", "live")
    };
    let planned = unprotect(&policy, &b.protecting(&alarms), &dry)
        .await
        .expect("planned");
    assert_eq!(planned.deleted, ["guarded-payments-live-error-rate"]);
    assert!(b.lambda.tags_of("payments").contains_key(PROTECT_TAG));
    let done = unprotect(
        &policy,
        &b.protecting(&alarms),
        &request("payments", "live"),
    )
    .await
    .expect("unprotected");
    assert_eq!(done.deleted, ["guarded-payments-live-error-rate"]);
    assert!(done.untagged);
    assert!(
        done.left[0].contains("guarded-payments-live-p95-duration: not created by guard protect")
    );
    assert!(!b.lambda.tags_of("payments").contains_key(PROTECT_TAG));
    assert!(alarms.alarms().is_empty());
    // Nothing left of protect's: said, not pretended.
    let again = refusal(
        unprotect(
            &policy,
            &b.protecting(&alarms),
            &request("payments", "live"),
        )
        .await,
    );
    assert!(
        again.contains("guard protect created nothing for payments:live"),
        "{again}"
    );
}

#[tokio::test]
async fn a_tag_that_was_there_before_protect_stays_after_unprotect() {
    let (b, alarms) = backends();
    b.lambda.set_tag("payments", PROTECT_TAG, "live");
    let policy = fleet_policy();
    let done = protect(
        &policy,
        &b.protecting(&alarms),
        &request("payments", "live"),
    )
    .await
    .expect("protected");
    assert!(done.already_opted_in);
    assert!(alarms
        .alarms()
        .values()
        .all(|a| a.tags[TAGGED_TAG] == "false"));
    let undone = unprotect(
        &policy,
        &b.protecting(&alarms),
        &request("payments", "live"),
    )
    .await
    .expect("unprotected");
    assert_eq!(undone.deleted.len(), 2);
    assert!(!undone.untagged);
    assert_eq!(b.lambda.tags_of("payments")[PROTECT_TAG], "live");
    assert!(undone.left[0].contains("it was there before guard protect"));
}
