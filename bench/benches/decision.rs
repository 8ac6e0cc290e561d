//! The decision path — intake, policy match, decision; no I/O — per transport, on the
//! catalog's events and policy; and an alarm storm of 1,000 deliveries into one warm guard
//! over in-memory fakes. `make bench` runs it and reports it beside the Python reference.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use guard_bench::{catalog_policy, TRANSPORTS};
use rollback_guard::evaluate::evaluate;
use rollback_guard::fakes::Storm;
use std::hint::black_box;
use std::time::{Duration, Instant};

fn decision(c: &mut Criterion) {
    let policy = catalog_policy();
    let home = rollback_guard::fakes::home();
    let mut group = c.benchmark_group("decision");
    for (transport, file) in TRANSPORTS {
        let bytes = guard_bench::event(file);
        // The same verdict as the catalog records, or the benchmark measures something else.
        guard_bench::check_verdict(&policy, file, &bytes);
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(
            BenchmarkId::from_parameter(transport),
            &bytes,
            |b, bytes| {
                b.iter(|| evaluate(black_box(&policy), Some(&home), black_box(bytes), false))
            },
        );
    }
    group.finish();
    // Its parts, for reading the above: JSON alone, then the intake (JSON and the transport's
    // checks) without the policy.
    let mut group = c.benchmark_group("parts");
    for (transport, file) in TRANSPORTS.iter().take(3) {
        let bytes = guard_bench::event(file);
        group.bench_with_input(BenchmarkId::new("json", transport), &bytes, |b, bytes| {
            b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(bytes)))
        });
        group.bench_with_input(BenchmarkId::new("intake", transport), &bytes, |b, bytes| {
            b.iter(|| rollback_guard::intake::parse_inbound_bytes(black_box(bytes)))
        });
    }
    group.finish();
}

fn storm(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut group = c.benchmark_group("storm");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("1000-deliveries-50-alarms", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                // A fresh account and a fresh warm guard each time: every target moves once.
                let storm = Storm::new(10, 5);
                let guard = storm.guard();
                let start = Instant::now();
                runtime.block_on(async {
                    for d in &storm.deliveries {
                        guard.handle_bytes(d.as_bytes(), false).await;
                    }
                });
                total += start.elapsed();
                assert_eq!(storm.backends.lambda.alias_updates(), 10);
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, decision, storm);
criterion_main!(benches);
