//! Bounded exponential backoff for the guard's own calls. The SDK clients the guard builds
//! have their own retries switched off, so this is the one schedule in force.

use crate::ports::PortError;
use std::future::Future;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, the first included.
    pub attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Pauses drawn between half the delay and all of it ([`RetryPolicy::pause`]).
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // Five attempts over about three seconds: inside an alarm's one-minute period, well
        // inside the guard function's timeout.
        Self {
            attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// The pause after failed attempt `n` (1-based): base, 2×base, 4×base… capped.
    pub fn delay(&self, n: u32) -> Duration {
        let factor = 2u32.saturating_pow(n.saturating_sub(1));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// The pause actually taken after failed attempt `n`: [`RetryPolicy::delay`] with "equal
    /// jitter", half of it fixed and half drawn at random, so that instances throttled
    /// together do not all come back together.
    pub fn pause(&self, n: u32) -> Duration {
        let delay = self.delay(n);
        if !self.jitter {
            return delay;
        }
        let half = delay / 2;
        half + half.mul_f64(fastrand::f64())
    }

    /// Runs `op` until it succeeds, fails for good, or the attempts run out.
    pub async fn run<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T, PortError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, PortError>>,
    {
        let mut attempt = 1;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if e.retryable() && attempt < self.attempts => {
                    let delay = self.pause(attempt);
                    tracing::warn!(call = what, attempt, error = %e, delay_ms = delay.as_millis() as u64, "retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn delays_double_and_are_capped() {
        let p = RetryPolicy {
            attempts: 6,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
            jitter: false,
        };
        let d: Vec<u128> = (1..=4).map(|n| p.delay(n).as_millis()).collect();
        assert_eq!(d, vec![100, 200, 350, 350]);
    }

    #[test]
    fn pauses_are_jittered_between_half_the_delay_and_all_of_it() {
        let p = RetryPolicy::default();
        let pauses: Vec<Duration> = (0..200).map(|_| p.pause(3)).collect();
        let delay = p.delay(3);
        assert!(pauses.iter().all(|d| *d >= delay / 2 && *d <= delay));
        let distinct: std::collections::HashSet<_> = pauses.iter().collect();
        assert!(distinct.len() > 100, "{} distinct pauses", distinct.len());
    }

    #[tokio::test(start_paused = true)]
    async fn retryable_errors_are_retried_until_attempts_run_out() {
        let p = RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(1),
            jitter: false,
        };
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = p
            .run("op", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(PortError::Throttled("slow down".into()))
            })
            .await;
        assert_eq!(r, Err(PortError::Throttled("slow down".into())));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_not_retried() {
        let p = RetryPolicy::default();
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = p
            .run("op", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(PortError::NotFound("alias".into()))
            })
            .await;
        assert!(matches!(r, Err(PortError::NotFound(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
