//! Fault injection for one simulated cluster: added latency, a share of requests that
//! fail with 500, and the cluster becoming unreachable (connections refused) and back.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// Fault settings, changed at run time through the admin API or in process.
#[derive(Debug, Default)]
pub struct Faults {
    latency_ms: AtomicU64,
    /// Error rate in parts per million.
    error_ppm: AtomicU32,
    unreachable: AtomicBool,
    /// Bumped each time the cluster becomes unreachable, so open watches end.
    epoch: AtomicU64,
}

/// A snapshot of fault settings, as JSON for the admin API.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FaultSettings {
    /// Added latency per request, in milliseconds.
    #[serde(default)]
    pub latency_ms: u64,
    /// Share of requests answered with 500, from 0.0 to 1.0.
    #[serde(default)]
    pub error_rate: f64,
    /// Whether connections to the cluster are refused.
    #[serde(default)]
    pub unreachable: bool,
}

impl Faults {
    /// Replaces the settings.
    pub fn set(&self, s: FaultSettings) {
        self.latency_ms.store(s.latency_ms, Ordering::Relaxed);
        let ppm = (s.error_rate.clamp(0.0, 1.0) * 1_000_000.0) as u32;
        self.error_ppm.store(ppm, Ordering::Relaxed);
        let was = self.unreachable.swap(s.unreachable, Ordering::SeqCst);
        if s.unreachable && !was {
            self.epoch.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// The current settings.
    pub fn get(&self) -> FaultSettings {
        FaultSettings {
            latency_ms: self.latency_ms.load(Ordering::Relaxed),
            error_rate: f64::from(self.error_ppm.load(Ordering::Relaxed)) / 1_000_000.0,
            unreachable: self.unreachable.load(Ordering::Relaxed),
        }
    }

    /// Latency to add to a request.
    pub fn latency(&self) -> Option<Duration> {
        let ms = self.latency_ms.load(Ordering::Relaxed);
        (ms > 0).then(|| Duration::from_millis(ms))
    }

    /// Whether this request should fail with an injected error.
    pub fn should_fail(&self) -> bool {
        let ppm = self.error_ppm.load(Ordering::Relaxed);
        ppm > 0 && rand::random_range(0..1_000_000) < ppm
    }

    /// Whether the cluster is unreachable.
    pub fn unreachable(&self) -> bool {
        self.unreachable.load(Ordering::Relaxed)
    }

    /// Counter that changes whenever the cluster goes unreachable.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_and_epoch_moves() {
        let f = Faults::default();
        assert!(!f.should_fail());
        f.set(FaultSettings {
            latency_ms: 5,
            error_rate: 1.0,
            unreachable: true,
        });
        assert!(f.should_fail());
        assert_eq!(f.latency(), Some(Duration::from_millis(5)));
        assert_eq!(f.epoch(), 1);
        f.set(FaultSettings {
            unreachable: true,
            ..Default::default()
        });
        assert_eq!(f.epoch(), 1, "staying unreachable does not bump the epoch");
        assert!(f.get().unreachable);
    }
}
