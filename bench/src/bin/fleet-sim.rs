//! `make bench-fleet`: the bad-day simulation (`guard_bench::fleet`) for 200 targets in one
//! account and 500 across 10, every alarm firing at once (the blast-radius cap raised), and the
//! cap holding 200 alarms to 20 rollbacks; `target/bench/fleet.json` holds one
//! object per scenario and path. LATENCY_MS sets each call's latency (default 50).

use guard_bench::figures::{Chart, Series};
use guard_bench::fleet::{run, Path, Run, Scenario};
use std::time::Duration;

/// The cap raised out of the way where a scenario measures how fast a bad day is restored
/// (`guard.max_rollbacks_per_hour`, default 20).
const RAISED: u32 = 1000;

fn main() {
    let latency = std::env::var("LATENCY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    // The retries' jitter, the same each run.
    fastrand::seed(18);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    let scenarios = [
        Scenario {
            name: "200 targets, 1 account",
            targets: 200,
            accounts: 1,
            pipeline_per_s: 0.0,
            alarms_per_target: 1,
            cap: RAISED,
        },
        Scenario {
            name: "500 targets, 10 accounts",
            targets: 500,
            accounts: 10,
            pipeline_per_s: 0.0,
            alarms_per_target: 1,
            cap: RAISED,
        },
        // Deploy pipelines taking 5 of the 15/s meanwhile: more than the 3 the guard leaves
        // them, so its calls are throttled and it slows down.
        Scenario {
            name: "200 targets, 1 account, pipelines at 5/s",
            targets: 200,
            accounts: 1,
            pipeline_per_s: 5.0,
            alarms_per_target: 1,
            cap: RAISED,
        },
        // Two alarms on each function (its errors, its latency), both firing at once: each
        // alias is to move once, the second alarm finding the first's record (the cooldown).
        Scenario {
            name: "200 targets, 1 account, 2 alarms each",
            targets: 200,
            accounts: 1,
            pipeline_per_s: 0.0,
            alarms_per_target: 2,
            cap: RAISED,
        },
        // The blast-radius cap at its default: 200 alarms at once is a shared cause, not 200
        // bad releases. 20 restored, 180 held back, people paged once for them.
        Scenario {
            name: "200 alarms, 1 account, cap 20",
            targets: 200,
            accounts: 1,
            pipeline_per_s: 0.0,
            alarms_per_target: 1,
            cap: 20,
        },
    ];
    let latency = Duration::from_millis(latency);
    // GUARD_SETTINGS: `[guard]` lines to try other shares (default: the policy's defaults).
    let settings = std::env::var("GUARD_SETTINGS").unwrap_or_default();
    let runs: Vec<_> = scenarios
        .into_iter()
        .flat_map(|s| {
            [Path::New, Path::Baseline].map(|p| runtime.block_on(run(s, p, latency, &settings)))
        })
        .collect();
    let json = serde_json::to_string_pretty(&runs).expect("JSON");
    std::fs::create_dir_all("target/bench").expect("target/bench");
    std::fs::write("target/bench/fleet.json", &json).expect("fleet.json");
    std::fs::create_dir_all("figures").expect("figures");
    std::fs::write("figures/fleet-restores.svg", figure(&runs)).expect("the figure");
    println!("{json}");
}

/// Aliases restored over time, each scenario on today's path: the bad day for people who would
/// rather look than read.
fn figure(runs: &[Run]) -> String {
    const COLOURS: [&str; 5] = ["#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#d62728"];
    let news: Vec<&Run> = runs
        .iter()
        .filter(|r| r.path == Path::New.as_str())
        .collect();
    let end = (news.iter())
        .filter_map(|r| r.last_restore_s)
        .fold(0.0_f64, f64::max);
    let step = if end > 60.0 { 20.0 } else { 10.0 };
    let x_max = (end / step).ceil().max(1.0) * step;
    let series = (news.iter().zip(COLOURS))
        .map(|(r, colour)| {
            let mut points = vec![(0.0, Some(0.0))];
            points
                .extend((r.restores_s.iter().enumerate()).map(|(i, t)| (*t, Some((i + 1) as f64))));
            Series {
                label: r.scenario.to_string(),
                colour,
                points,
                dashed: false,
            }
        })
        .collect();
    Chart {
        title: "A bad day: aliases restored over time (simulated, AWS quotas)".into(),
        x_label: "seconds after every alarm fired".into(),
        y_label: "aliases restored".into(),
        x_log: false,
        x_ticks: (0..=(x_max / step) as usize)
            .map(|i| i as f64 * step)
            .collect(),
        y_max: 500.0,
        y_step: 100.0,
        marks: Vec::new(),
        series,
    }
    .svg()
}
