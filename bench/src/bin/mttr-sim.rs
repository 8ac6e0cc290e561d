//! `make bench-mttr`: time to restore on the one-minute path and on the fast lane
//! (`guard_bench::mttr`), for 1, 10 and 100 requests/s and 10, 50 and 100 % of invocations
//! failing; false alarms a day of a healthy function with 1 % background errors; the
//! sensitivity to the EMF delay AWS documents no figure for. Writes target/bench/mttr.json
//! and figures/restore-time.svg.

use guard_bench::figures::{Chart, Series};
use guard_bench::fleet::{run, Path, Scenario, QUEUE_WINDOW};
use guard_bench::mttr::{
    false_alarms_per_day, percentile, restore_time, Lane, Release, FAST_MIN_ERRORS,
};
use serde::Serialize;
use std::time::Duration;

/// From the end of a second (or minute) to its datapoint: AWS documents no figure. AWS asks
/// for logs flushed every 5 s or less for high-resolution EMF alarms and notes that Lambda's
/// flush cannot be set; Lambda's log delivery is seconds. 15 s is three times that flush
/// interval: conservative, not measured. The same value is used for Lambda's own metrics.
const INGEST_S: f64 = 15.0;
const INGEST_SENSITIVITY: [f64; 4] = [5.0, 15.0, 30.0, 60.0];
const TRIALS: usize = 400;
const HORIZON_S: f64 = 900.0;
const RPS: [f64; 3] = [1.0, 10.0, 100.0];
const ERROR_PCT: [f64; 3] = [10.0, 50.0, 100.0];
const BACKGROUND_PCT: f64 = 1.0;

#[derive(Serialize)]
struct Row {
    path: &'static str,
    rps: f64,
    error_pct: f64,
    p50_s: Option<f64>,
    p95_s: Option<f64>,
    false_alarms_per_day: f64,
    /// The EMF (or Lambda metric) delay this row assumed.
    ingest_s: f64,
    /// Trials in which the alarm fired within the horizon (15 minutes).
    restored_pct: f64,
}

fn main() {
    let (queued, direct) = guard_times();
    let one_minute = |ingest_s| Lane::one_minute(ingest_s, queued);
    let fast = |ingest_s| Lane::fast(ingest_s, direct);
    let mut rng = fastrand::Rng::with_seed(29);
    let mut rows = Vec::new();
    for ingest in INGEST_SENSITIVITY {
        for lane in [one_minute(ingest), fast(ingest)] {
            for rps in RPS {
                let false_alarms = false_alarms_per_day(&lane, rps, BACKGROUND_PCT);
                for error_pct in ERROR_PCT {
                    let release = Release { rps, error_pct };
                    let times: Vec<_> = (0..TRIALS)
                        .map(|_| restore_time(&lane, release, HORIZON_S, &mut rng))
                        .collect();
                    let restored = times.iter().filter(|t| t.is_some()).count();
                    rows.push(Row {
                        path: lane.path,
                        rps,
                        error_pct,
                        p50_s: percentile(&times, 50.0).map(round),
                        p95_s: percentile(&times, 95.0).map(round),
                        false_alarms_per_day: false_alarms,
                        ingest_s: ingest,
                        restored_pct: round(100.0 * restored as f64 / TRIALS as f64),
                    });
                }
            }
        }
    }
    let json = serde_json::to_string_pretty(&rows).expect("JSON");
    std::fs::create_dir_all("target/bench").expect("target/bench");
    std::fs::write("target/bench/mttr.json", &json).expect("mttr.json");
    std::fs::create_dir_all("figures").expect("figures");
    std::fs::write("figures/restore-time.svg", figure(&rows)).expect("the figure");
    // What the minimum-volume term is for: the same alarm counting any failure.
    for rps in RPS {
        let without = Lane {
            min_errors: 1,
            ..fast(INGEST_S)
        };
        eprintln!(
            "fast lane at {rps} requests/s, 1 % background errors: {:.3e} false alarms a day with {FAST_MIN_ERRORS} failures a period at least, {:.3e} with any failure",
            false_alarms_per_day(&fast(INGEST_S), rps, BACKGROUND_PCT),
            false_alarms_per_day(&without, rps, BACKGROUND_PCT)
        );
    }
    eprintln!("guard's own handling (fleet simulation, 1 alias, 50 ms a call): through the alarm queue {queued:.2} s, invoked directly {direct:.2} s");
    println!("{json}");
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The guard's own handling of one alarm, from the fleet simulation (its real code over fakes,
/// each AWS call 50 ms): through the alarm queue (the one-minute path's EventBridge rule), and
/// invoked directly by the alarm's Lambda action (no queue window).
fn guard_times() -> (f64, f64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    let one = Scenario {
        name: "one alias",
        targets: 1,
        accounts: 1,
        pipeline_per_s: 0.0,
        alarms_per_target: 1,
        cap: 20,
    };
    let result = runtime.block_on(run(one, Path::New, Duration::from_millis(50), ""));
    let queued = result.last_restore_s.expect("the one alias restored");
    (queued, (queued - QUEUE_WINDOW.as_secs_f64()).max(0.0))
}

fn figure(rows: &[Row]) -> String {
    let at = |path: &str, ingest: f64, error_pct: f64| -> Vec<(f64, Option<f64>)> {
        (rows.iter())
            .filter(|r| r.path == path && r.ingest_s == ingest && r.error_pct == error_pct)
            .map(|r| (r.rps, r.p50_s))
            .collect()
    };
    let mut series = vec![
        Series {
            label: "one-minute path".into(),
            colour: "#7f7f7f",
            points: at("one-minute", INGEST_S, 50.0),
            dashed: false,
        },
        Series {
            label: format!("fast lane, EMF {INGEST_S} s"),
            colour: "#1f77b4",
            points: at("fast-lane", INGEST_S, 50.0),
            dashed: false,
        },
    ];
    for (ingest, colour) in [(5.0, "#2ca02c"), (30.0, "#ff7f0e"), (60.0, "#d62728")] {
        series.push(Series {
            label: format!("fast lane, EMF {ingest} s"),
            colour,
            points: at("fast-lane", ingest, 50.0),
            dashed: true,
        });
    }
    Chart {
        title: "Time to restore (p50), 50 % of invocations failing".into(),
        x_label: "traffic, requests per second (log)".into(),
        y_label: "seconds from the first failure to the alias moved".into(),
        x_log: true,
        x_ticks: RPS.to_vec(),
        y_max: 240.0,
        y_step: 40.0,
        marks: vec![(40.0, "target 40 s".into())],
        series,
    }
    .svg()
}
