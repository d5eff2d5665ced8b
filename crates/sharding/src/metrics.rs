//! The fleet's metrics: `keelson_shard_units{replica}`, `keelson_shard_apps{replica}`,
//! `keelson_shard_moves_total`, `keelson_shard_claim_conflicts_total`,
//! `keelson_member_lease_renew_failures_total`. Per-replica gauges describe the whole
//! fleet as this replica sees it (every replica exports the same picture).

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use prometheus::{IntCounter, IntGaugeVec, Opts, Registry};

/// Fleet metrics of one replica.
#[derive(Debug)]
pub struct ShardMetrics {
    units: IntGaugeVec,
    apps: IntGaugeVec,
    /// Units this replica took over from another holder or released to another.
    pub moves: IntCounter,
    /// Claims lost to a concurrent writer.
    pub conflicts: IntCounter,
    /// Failed renewals of this replica's member lease.
    pub renew_failures: IntCounter,
    exported: Mutex<Vec<String>>,
}

impl ShardMetrics {
    /// Registers the metrics.
    pub fn register(registry: &Registry) -> prometheus::Result<Arc<ShardMetrics>> {
        let units = IntGaugeVec::new(
            Opts::new("keelson_shard_units", "Shard units held, per replica."),
            &["replica"],
        )?;
        let apps = IntGaugeVec::new(
            Opts::new(
                "keelson_shard_apps",
                "Applications in the units held, per replica.",
            ),
            &["replica"],
        )?;
        let moves = IntCounter::new(
            "keelson_shard_moves_total",
            "Shard units this replica took over from another replica or handed over.",
        )?;
        let conflicts = IntCounter::new(
            "keelson_shard_claim_conflicts_total",
            "Claim writes that lost a compare-and-swap race.",
        )?;
        let renew_failures = IntCounter::new(
            "keelson_member_lease_renew_failures_total",
            "Failed renewals of this replica's member lease.",
        )?;
        registry.register(Box::new(units.clone()))?;
        registry.register(Box::new(apps.clone()))?;
        registry.register(Box::new(moves.clone()))?;
        registry.register(Box::new(conflicts.clone()))?;
        registry.register(Box::new(renew_failures.clone()))?;
        Ok(Arc::new(ShardMetrics {
            units,
            apps,
            moves,
            conflicts,
            renew_failures,
            exported: Mutex::new(Vec::new()),
        }))
    }

    /// Sets the per-replica gauges from `(units, apps)` per replica; replicas that
    /// disappeared lose their series.
    pub fn set_fleet(&self, per_replica: &BTreeMap<String, (u64, u64)>) {
        let mut exported = self.exported.lock();
        for old in exported.iter() {
            if !per_replica.contains_key(old) {
                let _ = self.units.remove_label_values(&[old]);
                let _ = self.apps.remove_label_values(&[old]);
            }
        }
        for (replica, (units, apps)) in per_replica {
            self.units
                .with_label_values(&[replica])
                .set(i64::try_from(*units).unwrap_or(i64::MAX));
            self.apps
                .with_label_values(&[replica])
                .set(i64::try_from(*apps).unwrap_or(i64::MAX));
        }
        *exported = per_replica.keys().cloned().collect();
    }
}
