//! Retry and self-heal backoff: pure delay computations for `syncPolicy.retry` and for
//! automated self-heal attempts.

use std::time::Duration;

use keelson_model::application::RetryStrategy;

use crate::error::SyncPlanError;

/// Argo CD's default first retry delay.
pub const DEFAULT_RETRY_DURATION: Duration = Duration::from_secs(5);
/// Argo CD's default backoff factor.
pub const DEFAULT_RETRY_FACTOR: i64 = 2;
/// Argo CD's default cap on the retry delay.
pub const DEFAULT_RETRY_MAX_DURATION: Duration = Duration::from_secs(180);

/// The delay before retry number `retry_count` (0 for the first retry) of a failed
/// operation, or `None` when no retry is allowed: `limit` 0 (or absent) allows none, a
/// negative limit allows any number, otherwise at most `limit` retries. The delay is
/// `duration × factor^retry_count`, capped at `maxDuration` (defaults 5s, 2, 3m).
/// Durations are Go durations (`30s`, `1m30s`) or plain seconds (`10`).
pub fn retry_delay(
    strategy: &RetryStrategy,
    retry_count: u32,
) -> Result<Option<Duration>, SyncPlanError> {
    let limit = strategy.limit.unwrap_or(0);
    if limit == 0 || (limit > 0 && i64::from(retry_count) >= limit) {
        return Ok(None);
    }
    let backoff = strategy.backoff.as_ref();
    let duration = match backoff.and_then(|b| b.duration.as_deref()) {
        Some(text) => parse_duration(text)?,
        None => DEFAULT_RETRY_DURATION,
    };
    let max = match backoff.and_then(|b| b.max_duration.as_deref()) {
        Some(text) => parse_duration(text)?,
        None => DEFAULT_RETRY_MAX_DURATION,
    };
    let factor = backoff
        .and_then(|b| b.factor)
        .unwrap_or(DEFAULT_RETRY_FACTOR);
    Ok(Some(exponential(duration, factor, retry_count, max)))
}

/// `base × factor^attempt`, capped at `cap` (a zero cap means no cap).
fn exponential(base: Duration, factor: i64, attempt: u32, cap: Duration) -> Duration {
    let factor = factor.max(0) as f64;
    let seconds = base.as_secs_f64() * factor.powi(attempt.min(i32::MAX as u32) as i32);
    let limit = if cap.is_zero() {
        Duration::MAX.as_secs_f64()
    } else {
        cap.as_secs_f64()
    };
    Duration::try_from_secs_f64(seconds.min(limit)).unwrap_or(Duration::MAX)
}

/// Self-heal backoff (Argo CD's `--self-heal-backoff-*` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelfHealBackoff {
    /// First delay (default 2 s).
    pub duration: Duration,
    /// Factor (default 3).
    pub factor: i64,
    /// Cap (default 5 min).
    pub cap: Duration,
}

impl Default for SelfHealBackoff {
    fn default() -> Self {
        SelfHealBackoff {
            duration: Duration::from_secs(2),
            factor: 3,
            cap: Duration::from_secs(300),
        }
    }
}

impl SelfHealBackoff {
    /// Delay before self-heal attempt `attempt` (0 for the first).
    pub fn delay(&self, attempt: u32) -> Duration {
        exponential(self.duration, self.factor, attempt, self.cap)
    }
}

/// Delay before self-heal attempt `attempt` with the default backoff: 2 s × 3^attempt,
/// capped at 5 minutes.
pub fn self_heal_delay(attempt: u32) -> Duration {
    SelfHealBackoff::default().delay(attempt)
}

/// Parses a Go duration (`300ms`, `1.5s`, `2m`, `1h30m`) or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, SyncPlanError> {
    let bad = || SyncPlanError::BadRetryDuration(text.to_owned());
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    if text.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (number, after) = rest.split_at(number_len);
        let value: f64 = number.parse().map_err(|_| bad())?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += value * scale;
        rest = next;
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use keelson_model::application::Backoff;

    fn strategy(limit: i64, backoff: Option<Backoff>) -> RetryStrategy {
        RetryStrategy {
            limit: Some(limit),
            backoff,
            ..Default::default()
        }
    }

    #[test]
    fn defaults_are_5s_doubling_capped_at_3m() {
        let s = strategy(10, None);
        let delays: Vec<u64> = (0..8)
            .map(|n| retry_delay(&s, n).unwrap().unwrap().as_secs())
            .collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 180, 180]);
    }

    #[test]
    fn limit_zero_none_negative_unlimited() {
        assert_eq!(retry_delay(&strategy(0, None), 0).unwrap(), None);
        assert_eq!(retry_delay(&RetryStrategy::default(), 0).unwrap(), None);
        let two = strategy(2, None);
        assert!(retry_delay(&two, 1).unwrap().is_some());
        assert_eq!(retry_delay(&two, 2).unwrap(), None);
        let unlimited = strategy(-1, None);
        assert_eq!(
            retry_delay(&unlimited, 1000).unwrap(),
            Some(Duration::from_secs(180))
        );
    }

    #[test]
    fn custom_backoff_and_go_durations() {
        let s = strategy(
            5,
            Some(Backoff {
                duration: Some("1m30s".into()),
                factor: Some(3),
                max_duration: Some("10m".into()),
            }),
        );
        assert_eq!(retry_delay(&s, 0).unwrap(), Some(Duration::from_secs(90)));
        assert_eq!(retry_delay(&s, 1).unwrap(), Some(Duration::from_secs(270)));
        assert_eq!(retry_delay(&s, 2).unwrap(), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        let bad = strategy(
            1,
            Some(Backoff {
                duration: Some("soon".into()),
                ..Default::default()
            }),
        );
        assert_eq!(
            retry_delay(&bad, 0).unwrap_err().to_string(),
            "invalid retry backoff duration \"soon\""
        );
        assert!(parse_duration("5").is_ok() && parse_duration("5x").is_err());
        assert!(parse_duration("").is_err() && parse_duration("s").is_err());
    }

    #[test]
    fn self_heal_is_2s_times_3_capped_at_5m() {
        let delays: Vec<u64> = (0..6).map(|n| self_heal_delay(n).as_secs()).collect();
        assert_eq!(delays, [2, 6, 18, 54, 162, 300]);
        assert_eq!(self_heal_delay(u32::MAX), Duration::from_secs(300));
    }
}
