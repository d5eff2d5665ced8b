//! Per-item retry backoff for `add_rate_limited`: exponential per key, optionally combined
//! with an overall token bucket (client-go's `MaxOf(ItemExponentialFailureRateLimiter,
//! BucketRateLimiter)`).

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use tokio::time::Instant;

/// How long a key waits before it is re-queued after its n-th failure.
///
/// The per-item delay is `base * factor^failures`, capped at `max`; with a bucket configured
/// the delay is the larger of that and the wait for a token from a bucket shared by all keys.
/// The default is client-go's default controller limiter's item part: 5 ms doubling up to
/// 1000 s, no bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimiter {
    base: Duration,
    factor: f64,
    max: Duration,
    bucket: Option<Bucket>,
}

/// The overall token bucket: `qps` tokens a second, at most `burst` saved.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bucket {
    qps: f64,
    burst: u32,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::exponential(Duration::from_millis(5), Duration::from_secs(1000))
    }
}

impl RateLimiter {
    /// Exponential per-item backoff doubling from `base` up to `max`.
    pub fn exponential(base: Duration, max: Duration) -> Self {
        Self {
            base,
            factor: 2.0,
            max,
            bucket: None,
        }
    }

    /// Uses `factor` instead of 2 as the growth per failure (Argo CD's `--wq-backoff-factor`);
    /// values below 1 are treated as 1.
    #[must_use]
    pub fn with_backoff_factor(mut self, factor: f64) -> Self {
        self.factor = if factor.is_finite() && factor >= 1.0 {
            factor
        } else {
            1.0
        };
        self
    }

    /// Adds an overall token bucket of `qps` tokens per second and `burst` capacity
    /// (Argo CD's `--wq-bucket-qps` / `--wq-bucket-size`); a non-positive or infinite `qps`
    /// disables it.
    #[must_use]
    pub fn with_bucket(mut self, qps: f64, burst: u32) -> Self {
        self.bucket = (qps.is_finite() && qps > 0.0).then_some(Bucket {
            qps,
            burst: burst.max(1),
        });
        self
    }

    /// The per-item delay after `failures` earlier failures: `base * factor^failures`,
    /// capped at `max`.
    pub fn item_delay(&self, failures: u32) -> Duration {
        let exp = i32::try_from(failures).unwrap_or(i32::MAX);
        let secs = self.base.as_secs_f64() * self.factor.powi(exp);
        if !secs.is_finite() || secs >= self.max.as_secs_f64() {
            return self.max;
        }
        Duration::from_secs_f64(secs)
    }
}

/// The mutable side of a [`RateLimiter`]: failure counts per key and the bucket's tokens.
#[derive(Debug)]
pub(crate) struct LimiterState<K> {
    failures: HashMap<K, u32>,
    tokens: f64,
    refilled: Instant,
}

impl<K: Eq + Hash> LimiterState<K> {
    pub(crate) fn new(limiter: &RateLimiter) -> Self {
        Self {
            failures: HashMap::new(),
            tokens: limiter.bucket.map_or(0.0, |b| f64::from(b.burst)),
            refilled: Instant::now(),
        }
    }

    /// Records one more failure of `key` and returns how long it should wait.
    pub(crate) fn when(&mut self, limiter: &RateLimiter, key: K, now: Instant) -> Duration {
        let failures = self.failures.entry(key).or_insert(0);
        let item = limiter.item_delay(*failures);
        *failures = failures.saturating_add(1);
        let Some(bucket) = limiter.bucket else {
            return item;
        };
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens = (self.tokens + elapsed * bucket.qps).min(f64::from(bucket.burst));
        self.tokens -= 1.0;
        let wait = if self.tokens < 0.0 {
            Duration::from_secs_f64(-self.tokens / bucket.qps)
        } else {
            Duration::ZERO
        };
        item.max(wait)
    }

    pub(crate) fn forget(&mut self, key: &K) {
        self.failures.remove(key);
    }

    pub(crate) fn failures(&self, key: &K) -> u32 {
        self.failures.get(key).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_doubles_from_five_ms_and_caps() {
        let l = RateLimiter::default();
        assert_eq!(l.item_delay(0), Duration::from_millis(5));
        assert_eq!(l.item_delay(1), Duration::from_millis(10));
        assert_eq!(l.item_delay(4), Duration::from_millis(80));
        assert_eq!(l.item_delay(30), Duration::from_secs(1000));
        assert_eq!(l.item_delay(u32::MAX), Duration::from_secs(1000));
    }

    #[test]
    fn factor_below_one_is_clamped() {
        let l = RateLimiter::exponential(Duration::from_secs(1), Duration::from_secs(10))
            .with_backoff_factor(0.5);
        assert_eq!(l.item_delay(5), Duration::from_secs(1));
        let l = l.with_backoff_factor(1.5);
        assert_eq!(l.item_delay(2), Duration::from_secs_f64(2.25));
    }

    #[test]
    fn bucket_delays_beyond_burst() {
        let l = RateLimiter::exponential(Duration::ZERO, Duration::ZERO).with_bucket(10.0, 2);
        let mut s = LimiterState::new(&l);
        let now = s.refilled;
        assert_eq!(s.when(&l, 1, now), Duration::ZERO);
        assert_eq!(s.when(&l, 2, now), Duration::ZERO);
        let third = s.when(&l, 3, now);
        assert!((third.as_secs_f64() - 0.1).abs() < 1e-9, "{third:?}");
        assert_eq!(s.failures(&1), 1);
        s.forget(&1);
        assert_eq!(s.failures(&1), 0);
    }
}
