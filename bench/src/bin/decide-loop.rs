//! One round of the same-seconds comparison (`bench/report.py`): the median time of one
//! decision per transport, on the catalog's events and policy, as JSON on stdout. Each round
//! runs beside a round of the Python reference, so both see the same moment of a noisy
//! machine; criterion (`benches/decision.rs`) stays the measure of the decision alone.

use guard_bench::{catalog_policy, TRANSPORTS};
use rollback_guard::evaluate::evaluate;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Batches per transport, and how long one batch runs.
const BATCHES: usize = 15;
const BATCH: Duration = Duration::from_millis(10);

fn main() {
    let policy = catalog_policy();
    let home = rollback_guard::fakes::home();
    let mut result = serde_json::Map::new();
    for (transport, file) in TRANSPORTS {
        let bytes = guard_bench::event(file);
        guard_bench::check_verdict(&policy, file, &bytes);
        // How many decisions fill a batch, from a short warm-up.
        let start = Instant::now();
        let mut warm = 0u32;
        while start.elapsed() < BATCH {
            black_box(evaluate(
                black_box(&policy),
                Some(&home),
                black_box(&bytes),
                false,
            ));
            warm += 1;
        }
        let mut per_event: Vec<f64> = (0..BATCHES)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..warm {
                    black_box(evaluate(
                        black_box(&policy),
                        Some(&home),
                        black_box(&bytes),
                        false,
                    ));
                }
                start.elapsed().as_nanos() as f64 / f64::from(warm)
            })
            .collect();
        per_event.sort_by(f64::total_cmp);
        result.insert(transport.into(), per_event[BATCHES / 2].into());
    }
    println!("{}", serde_json::Value::Object(result));
}
