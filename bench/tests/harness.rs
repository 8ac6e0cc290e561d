//! The benchmarks' harness. The Rust side of the same-seconds comparison (`make bench`,
//! `bench/report.py`): a round of `decide-loop` times every transport, and a verdict the
//! catalog does not expect is never timed. (`bench/tests/test_harness.py` tests the Python side
//! and the pairing of rounds.) And the bad-day simulation (`make bench-fleet`) on a small fleet.

use guard_bench::{catalog_policy, check_verdict, event, TRANSPORTS};
use serde_json::Value;
use std::process::Command;

#[test]
fn a_round_of_the_rust_decision_times_every_transport() {
    let out = Command::new(env!("CARGO_BIN_EXE_decide-loop"))
        .output()
        .expect("decide-loop runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let round: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let round = round.as_object().expect("an object");
    assert_eq!(round.len(), TRANSPORTS.len(), "{round:?}");
    for (name, _) in TRANSPORTS {
        // Nanoseconds per event: more than nothing, less than a millisecond (a debug build).
        let ns = round[name]
            .as_f64()
            .unwrap_or_else(|| panic!("{name}: {round:?}"));
        assert!(ns > 0.0 && ns < 1e6, "{name}: {ns} ns");
    }
}

#[test]
#[should_panic(expected = "eventbridge-alarm.json: outcome")]
fn a_verdict_the_catalog_does_not_expect_is_never_timed() {
    check_verdict(
        &catalog_policy(),
        "eventbridge-alarm.json",
        &event("schedule.json"),
    );
}

/// The bad-day simulation on 20 targets in two accounts, every alarm at once: on both paths
/// every alias is restored and none moved twice; the previous release is throttled (the
/// simulation's quotas bite), this one holds to its share and is not; neither beats the
/// quotas' own limit. With deploy pipelines taking more than the share leaves them, this
/// one is throttled, slows down, and still restores every alias with no call failing.
#[test]
fn a_small_bad_day_restores_every_alias_once() {
    use guard_bench::fleet::{run, Path, Scenario};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    let scenario = Scenario {
        name: "20 targets, 2 accounts",
        targets: 20,
        accounts: 2,
        pipeline_per_s: 0.0,
        alarms_per_target: 1,
        cap: 1000,
    };
    let latency = std::time::Duration::from_millis(50);
    let new = runtime.block_on(run(scenario, Path::New, latency, ""));
    let baseline = runtime.block_on(run(scenario, Path::Baseline, latency, ""));
    for r in [&new, &baseline] {
        assert_eq!(r.unrestored, 0, "{r:?}");
        assert_eq!(r.duplicate_mutations, 0, "{r:?}");
        assert_eq!(r.failed_invocations, 0, "{r:?}");
        assert!(
            r.last_restore_s.is_some_and(|s| s >= r.physical_limit_s),
            "{r:?}"
        );
    }
    assert!(baseline.throttled_calls > 0, "{baseline:?}");
    assert_eq!(new.throttled_calls, 0, "{new:?}");
    assert_eq!(new.calls_by_api.get("ListTags"), None, "{new:?}");
    assert_eq!(
        new.calls_by_api.get("ListVersionsByFunction"),
        None,
        "{new:?}"
    );

    let crowded = Scenario {
        name: "20 targets, 1 account, pipelines at 14/s",
        targets: 20,
        accounts: 1,
        pipeline_per_s: 14.0,
        alarms_per_target: 1,
        cap: 1000,
    };
    let r = runtime.block_on(run(crowded, Path::New, latency, ""));
    assert!(r.throttled_calls > 0, "{r:?}");
    assert_eq!(r.unrestored, 0, "{r:?}");
    assert_eq!(r.duplicate_mutations, 0, "{r:?}");
    assert_eq!(r.failed_invocations, 0, "{r:?}");
}

/// The blast-radius cap on a bad day: 30 alarms at once in one account, the cap at 5: five
/// aliases restored, the 25 others held back and left as they were, people paged for the five
/// and once for what was held; no call failed.
#[test]
fn the_cap_holds_a_bad_day_to_its_rollbacks_and_one_page() {
    use guard_bench::fleet::{run, Path, Scenario};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    let scenario = Scenario {
        name: "30 alarms, cap 5",
        targets: 30,
        accounts: 1,
        pipeline_per_s: 0.0,
        alarms_per_target: 1,
        cap: 5,
    };
    let latency = std::time::Duration::from_millis(50);
    let r = runtime.block_on(run(scenario, Path::New, latency, ""));
    assert_eq!(r.unrestored, 25, "{r:?}");
    assert_eq!(r.held_by_cap, 25, "{r:?}");
    assert_eq!(r.pages, 6, "{r:?}");
    assert_eq!(r.duplicate_mutations, 0, "{r:?}");
    assert_eq!(r.failed_invocations, 0, "{r:?}");
}

mod mttr {
    use guard_bench::mttr::{
        breach_probability, false_alarms_per_day, percentile, restore_time, Lane, Release,
    };

    fn fast(ingest_s: f64) -> Lane {
        Lane::fast(ingest_s, 0.5)
    }

    fn one_minute() -> Lane {
        Lane::one_minute(15.0, 1.5)
    }

    #[test]
    fn a_period_breaches_never_without_failures_and_surely_with_only_failures() {
        assert_eq!(breach_probability(&fast(15.0), 100.0, 0.0), 0.0);
        let surely = breach_probability(&fast(15.0), 100.0, 1.0);
        assert!((surely - 1.0).abs() < 1e-9, "{surely}");
    }

    #[test]
    fn the_breach_probability_is_the_count_by_hand() {
        // Mean 1 invocation a period, each failing: a period breaches only with 3 or more
        // invocations (all failed): 1 - P(N <= 2) = 1 - e^-1 (1 + 1 + 1/2).
        let by_hand = 1.0 - (-1.0f64).exp() * 2.5;
        let got = breach_probability(&fast(15.0), 1.0, 1.0);
        assert!((got - by_hand).abs() < 1e-12, "{got} vs {by_hand}");
    }

    #[test]
    fn the_minimum_of_failures_keeps_a_healthy_quiet_function_quiet() {
        let without = Lane {
            min_errors: 1,
            ..fast(15.0)
        };
        let with = false_alarms_per_day(&fast(15.0), 1.0, 1.0);
        let without = false_alarms_per_day(&without, 1.0, 1.0);
        assert!(with < 0.01, "{with}");
        assert!(without > 1.0, "{without}");
    }

    #[test]
    fn a_release_failing_every_call_is_restored_within_the_lanes_bounds() {
        let mut rng = fastrand::Rng::with_seed(1);
        let release = Release {
            rps: 100.0,
            error_pct: 100.0,
        };
        for _ in 0..50 {
            // Fast: at least a period and the delay, at most three periods, the delay, an
            // evaluation's wait and the way to the guard.
            let t = restore_time(&fast(15.0), release, 900.0, &mut rng).expect("restored");
            assert!((16.0..=10.0 * 3.0 + 15.0 + 10.0 + 1.5).contains(&t), "{t}");
            let slow = restore_time(&one_minute(), release, 900.0, &mut rng).expect("restored");
            assert!(
                (60.0..=60.0 * 3.0 + 15.0 + 60.0 + 2.0).contains(&slow),
                "{slow}"
            );
        }
    }

    #[test]
    fn late_data_is_judged_late_not_lost() {
        let mut rng = fastrand::Rng::with_seed(2);
        let release = Release {
            rps: 10.0,
            error_pct: 100.0,
        };
        // A delay longer than the alarm's three periods still fires it.
        let times: Vec<_> = (0..50)
            .map(|_| restore_time(&fast(60.0), release, 900.0, &mut rng))
            .collect();
        assert!(times.iter().all(Option::is_some));
        assert!(percentile(&times, 50.0).is_some_and(|p| p > 60.0));
    }

    #[test]
    fn a_percentile_of_mostly_unrestored_trials_is_none() {
        let times = [Some(10.0), None, None];
        assert_eq!(percentile(&times, 50.0), None);
        assert_eq!(percentile(&times, 30.0), Some(10.0));
    }
}
