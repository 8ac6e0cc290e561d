//! Time to restore, simulated (`make bench-mttr`): from a bad release's first failing
//! invocation to the alias moved, on today's one-minute path (Lambda's own metrics, the seed
//! alarm: error rate over 60 s, 2 of 2) and on the fast lane (the extension's 1-second EMF
//! metrics, the fast twin: 10 s, 2 of 3, a minimum of failures). Each second's invocations are
//! drawn (Poisson) and each fails with the release's error rate; the alarm is evaluated as
//! CloudWatch evaluates it, on the datapoints that have arrived by then; then the alarm's
//! action reaches the guard and the guard acts (its own code, timed by the fleet simulation).
//! What AWS documents no figure for is a parameter, shown with its sensitivity.

use serde::Serialize;

/// One way from errors to the guard.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Lane {
    pub path: &'static str,
    /// The alarm's period; its datapoints are evaluated every period.
    pub period_s: f64,
    /// N and M of "M out of N".
    pub evaluation_periods: usize,
    pub datapoints_to_alarm: usize,
    /// A period breaches when its error rate is above this (percent)...
    pub threshold_pct: f64,
    /// ... and it had at least this many failed invocations (the minimum-volume term).
    pub min_errors: u64,
    /// From the end of the second (fast lane) or the minute (Lambda's own) a count belongs to,
    /// to its datapoint in CloudWatch: log or metric delivery and extraction.
    pub ingest_s: f64,
    /// From the alarm's state change to the guard's invocation.
    pub delivery_s: f64,
    /// The guard's own handling, to the alias moved.
    pub guard_s: f64,
}

/// The template's ErrorRateThresholdPercent, for both alarms.
pub const THRESHOLD_PCT: f64 = 10.0;
/// The fast twin's minimum-volume term (FastMinErrors): a 10-second period breaches with 3
/// failures at least.
pub const FAST_MIN_ERRORS: u64 = 3;
/// The alarm's Lambda action to the guard's invocation: AWS documents no figure; 1 s assumed.
pub const LAMBDA_ACTION_S: f64 = 1.0;
/// The alarm's state-change event through EventBridge to the alarm queue: 0.5 s assumed (the
/// queue's batching window and the guard's handling are in the guard's part).
pub const EVENTBRIDGE_S: f64 = 0.5;

impl Lane {
    /// Today's path: the seed `ErrorRateAlarm` (60 s, 2 of 2) on Lambda's own metrics, through
    /// EventBridge and the alarm queue; `guard_s` the guard's handling through the queue.
    pub fn one_minute(ingest_s: f64, guard_s: f64) -> Self {
        Self {
            path: "one-minute",
            period_s: 60.0,
            evaluation_periods: 2,
            datapoints_to_alarm: 2,
            threshold_pct: THRESHOLD_PCT,
            min_errors: 0,
            ingest_s,
            delivery_s: EVENTBRIDGE_S,
            guard_s,
        }
    }

    /// The fast lane: `FastErrorRateAlarm` (10 s, 2 of 3, the minimum of failures) on the
    /// extension's metrics, its Lambda action invoking the guard; `guard_s` the guard's
    /// handling invoked directly.
    pub fn fast(ingest_s: f64, guard_s: f64) -> Self {
        Self {
            path: "fast-lane",
            period_s: 10.0,
            evaluation_periods: 3,
            datapoints_to_alarm: 2,
            threshold_pct: THRESHOLD_PCT,
            min_errors: FAST_MIN_ERRORS,
            ingest_s,
            delivery_s: LAMBDA_ACTION_S,
            guard_s,
        }
    }
}

/// A release: traffic and the share of it that fails.
#[derive(Debug, Clone, Copy)]
pub struct Release {
    pub rps: f64,
    pub error_pct: f64,
}

/// Seconds from the first failing invocation to the alias moved; None when the alarm does
/// not fire within `horizon_s`.
pub fn restore_time(
    lane: &Lane,
    release: Release,
    horizon_s: f64,
    rng: &mut fastrand::Rng,
) -> Option<f64> {
    // Where the first failure falls in the alarm's period grid and its evaluations.
    let t0 = rng.f64() * lane.period_s;
    let seconds = (t0 + horizon_s).ceil() as usize;
    // Each second's invocations and failures, from t0 on (before it the release is healthy
    // and background errors are ignored: they are what the false-alarm count is about).
    let mut invocations = vec![0u64; seconds];
    let mut errors = vec![0u64; seconds];
    let first = t0.floor() as usize;
    for s in first..seconds {
        let share = if s == first { 1.0 - t0.fract() } else { 1.0 };
        let n = poisson(rng, release.rps * share);
        let e = binomial(rng, n, release.error_pct / 100.0);
        invocations[s] = n;
        errors[s] = e;
    }
    // The first failing invocation itself.
    invocations[first] += 1;
    errors[first] += 1;
    // Healthy traffic before t0 within the alarm's window.
    let window = (lane.period_s * lane.evaluation_periods as f64) as usize;
    for n in &mut invocations[first.saturating_sub(window)..first] {
        *n = poisson(rng, release.rps);
    }
    let period = lane.period_s as usize;
    // CloudWatch evaluates each alarm on its own schedule within the period.
    let phase = rng.f64() * lane.period_s;
    // CloudWatch reads more periods than it evaluates (the "evaluation range") and judges the
    // N most recent that have a datapoint; when fewer than N have one, the missing count as
    // not breaching. So late data is judged late, not lost.
    let range = lane.evaluation_periods + (lane.ingest_s / lane.period_s).ceil() as usize + 2;
    let mut evaluation = period;
    while (evaluation as f64) < t0 + horizon_s {
        let at = evaluation as f64 + phase;
        let mut judged = 0;
        let mut breaching = 0;
        for k in 1..=range {
            if judged == lane.evaluation_periods {
                break;
            }
            let Some(start) = evaluation.checked_sub(k * period) else {
                break;
            };
            let (mut n, mut e) = (0u64, 0u64);
            for s in start..(start + period).min(seconds) {
                // A second's counts reach CloudWatch when the second (or, for Lambda's own
                // metrics, its minute) is over, plus the ingestion delay.
                let published = if lane.period_s >= 60.0 {
                    (start + period) as f64
                } else {
                    s as f64 + 1.0
                };
                if published + lane.ingest_s <= at {
                    n += invocations[s];
                    e += errors[s];
                }
            }
            if n == 0 {
                continue;
            }
            judged += 1;
            if breaches(lane, n, e) {
                breaching += 1;
            }
        }
        if breaching >= lane.datapoints_to_alarm {
            return Some(at + lane.delivery_s + lane.guard_s - t0);
        }
        evaluation += period;
    }
    None
}

fn breaches(lane: &Lane, invocations: u64, errors: u64) -> bool {
    invocations > 0
        && errors >= lane.min_errors
        && 100.0 * errors as f64 / invocations as f64 > lane.threshold_pct
}

/// False alarms a day of a healthy function: `rps`, `background_pct` of its invocations
/// failing, independent periods. Exact: the chance a period breaches, then the chance an
/// evaluation finds M of its N periods breaching where the one before did not, times the
/// evaluations a day.
pub fn false_alarms_per_day(lane: &Lane, rps: f64, background_pct: f64) -> f64 {
    let q = breach_probability(lane, rps * lane.period_s, background_pct / 100.0);
    let n = lane.evaluation_periods;
    let m = lane.datapoints_to_alarm;
    // Patterns of N + 1 consecutive periods, oldest first.
    let mut p_transition = 0.0;
    for pattern in 0u32..(1 << (n + 1)) {
        let bit = |i: usize| (pattern >> i) & 1 == 1;
        let before = (0..n).filter(|&i| bit(i)).count();
        let now = (1..=n).filter(|&i| bit(i)).count();
        if now >= m && before < m {
            let k = pattern.count_ones() as i32;
            p_transition += q.powi(k) * (1.0 - q).powi(n as i32 + 1 - k);
        }
    }
    p_transition * 86_400.0 / lane.period_s
}

/// P(a period breaches): invocations ~ Poisson(mean), failures ~ Binomial(invocations, p).
pub fn breach_probability(lane: &Lane, mean: f64, p: f64) -> f64 {
    let top = (mean + 12.0 * mean.sqrt() + 20.0).ceil() as u64;
    let mut total = 0.0;
    let mut pn = (-mean).exp(); // P(N = 0)
    for n in 0..=top {
        if n > 0 {
            pn *= mean / n as f64;
        }
        if pn == 0.0 && n as f64 > mean {
            break;
        }
        // The fewest failures that breach among n invocations.
        let by_rate = (lane.threshold_pct / 100.0 * n as f64).floor() as u64 + 1;
        let need = by_rate.max(lane.min_errors).max(1);
        if need <= n {
            total += pn * binomial_tail(n, p, need);
        }
    }
    total.min(1.0)
}

/// P(X ≥ k), X ~ Binomial(n, p).
fn binomial_tail(n: u64, p: f64, k: u64) -> f64 {
    if p <= 0.0 {
        return if k == 0 { 1.0 } else { 0.0 };
    }
    // Summed in logs: n reaches thousands.
    let ln_p = p.ln();
    let ln_q = (1.0 - p).ln();
    let mut ln_choose = 0.0; // ln C(n, 0)
    let mut below = 0.0;
    for i in 0..k.min(n + 1) {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        below += (ln_choose + i as f64 * ln_p + (n - i) as f64 * ln_q).exp();
    }
    (1.0 - below).max(0.0)
}

/// Knuth's method for small means, a rounded normal for large ones.
fn poisson(rng: &mut fastrand::Rng, mean: f64) -> u64 {
    if mean <= 0.0 {
        return 0;
    }
    if mean > 30.0 {
        return (mean + mean.sqrt() * normal(rng)).round().max(0.0) as u64;
    }
    let limit = (-mean).exp();
    let mut k = 0;
    let mut product = rng.f64();
    while product > limit {
        k += 1;
        product *= rng.f64();
    }
    k
}

fn binomial(rng: &mut fastrand::Rng, n: u64, p: f64) -> u64 {
    if n > 50 && n as f64 * p * (1.0 - p) > 9.0 {
        let mean = n as f64 * p;
        let sd = (mean * (1.0 - p)).sqrt();
        return ((mean + sd * normal(rng)).round().max(0.0) as u64).min(n);
    }
    (0..n).filter(|_| rng.f64() < p).count() as u64
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut fastrand::Rng) -> f64 {
    let u = rng.f64().max(f64::MIN_POSITIVE);
    let v = rng.f64();
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// The p-th percentile of the restore times, None when more than that share never restored.
pub fn percentile(times: &[Option<f64>], p: f64) -> Option<f64> {
    let mut v: Vec<f64> = times.iter().map(|t| t.unwrap_or(f64::INFINITY)).collect();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    let value = *v.get(rank.clamp(1, v.len().max(1)) - 1)?;
    value.is_finite().then_some(value)
}
