//! The cache's Prometheus metrics, registered into an injected registry. Labels are bounded:
//! `initiator` is one configured value, `failed` is true/false, `level` is l1/l2 and
//! `result` is hit/miss.
//!
//! Argo CD's repo-server exposes `argocd_redis_request_total{initiator,failed}` and
//! `argocd_redis_request_duration_seconds{initiator}` (buckets 0.1, 0.25, 0.5, 1, 2); the
//! same names, labels and buckets are used here.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

/// Buckets of Argo CD's repo-server `argocd_redis_request_duration_seconds`.
const REDIS_DURATION_BUCKETS: [f64; 5] = [0.1, 0.25, 0.5, 1.0, 2.0];

/// Handles on every metric, with label values resolved once.
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    pub(crate) redis_ok: IntCounter,
    pub(crate) redis_failed: IntCounter,
    pub(crate) redis_duration: Histogram,
    pub(crate) l1_hit: IntCounter,
    pub(crate) l1_miss: IntCounter,
    pub(crate) l2_hit: IntCounter,
    pub(crate) l2_miss: IntCounter,
    pub(crate) l1_bytes: IntGauge,
    pub(crate) l1_entries: IntGauge,
    pub(crate) redis_connected: IntGauge,
}

impl Metrics {
    /// Creates the metrics and registers them into `registry`. Fails if a metric of the same
    /// name is already registered there (one cache per registry).
    pub(crate) fn register(
        registry: &Registry,
        initiator: &str,
    ) -> Result<Metrics, prometheus::Error> {
        let redis_requests = IntCounterVec::new(
            Opts::new(
                "argocd_redis_request_total",
                "Number of redis requests executed by the manifest cache.",
            ),
            &["initiator", "failed"],
        )?;
        let redis_duration = HistogramVec::new(
            HistogramOpts::new(
                "argocd_redis_request_duration_seconds",
                "Redis requests duration seconds.",
            )
            .buckets(REDIS_DURATION_BUCKETS.to_vec()),
            &["initiator"],
        )?;
        let requests = IntCounterVec::new(
            Opts::new(
                "keelson_cache_requests_total",
                "Manifest cache lookups by level and result; a Redis error counts as an l2 miss.",
            ),
            &["level", "result"],
        )?;
        let l1_bytes = IntGauge::new(
            "keelson_cache_l1_bytes",
            "Bytes of keys and values held in the in-process cache.",
        )?;
        let l1_entries = IntGauge::new(
            "keelson_cache_l1_entries",
            "Entries held in the in-process cache.",
        )?;
        let redis_connected = IntGauge::new(
            "keelson_cache_redis_connected",
            "1 while the cache holds a working Redis connection, else 0.",
        )?;
        registry.register(Box::new(redis_requests.clone()))?;
        registry.register(Box::new(redis_duration.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(l1_bytes.clone()))?;
        registry.register(Box::new(l1_entries.clone()))?;
        registry.register(Box::new(redis_connected.clone()))?;
        Ok(Metrics {
            redis_ok: redis_requests.with_label_values(&[initiator, "false"]),
            redis_failed: redis_requests.with_label_values(&[initiator, "true"]),
            redis_duration: redis_duration.with_label_values(&[initiator]),
            l1_hit: requests.with_label_values(&["l1", "hit"]),
            l1_miss: requests.with_label_values(&["l1", "miss"]),
            l2_hit: requests.with_label_values(&["l2", "hit"]),
            l2_miss: requests.with_label_values(&["l2", "miss"]),
            l1_bytes,
            l1_entries,
            redis_connected,
        })
    }

    /// Counts one Redis request and its duration.
    pub(crate) fn observe_redis(&self, failed: bool, seconds: f64) {
        if failed {
            self.redis_failed.inc();
        } else {
            self.redis_ok.inc();
        }
        self.redis_duration.observe(seconds);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use prometheus::Encoder;

    #[test]
    fn exposes_argo_names_and_labels() {
        let registry = Registry::new();
        let metrics = Metrics::register(&registry, "argocd-repo-server").unwrap();
        metrics.observe_redis(true, 0.3);
        metrics.observe_redis(false, 0.01);
        metrics.l2_hit.inc();
        let mut text = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&registry.gather(), &mut text)
            .unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains(
                r#"argocd_redis_request_total{failed="true",initiator="argocd-repo-server"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"argocd_redis_request_duration_seconds_bucket{initiator="argocd-repo-server",le="0.25"} 1"#
        ));
        assert!(text.contains(r#"keelson_cache_requests_total{level="l2",result="hit"} 1"#));
        assert!(text.contains("keelson_cache_l1_bytes 0"));
        assert!(
            Metrics::register(&registry, "x").is_err(),
            "a second cache cannot share the registry"
        );
    }
}
