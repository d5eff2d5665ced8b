//! Controller settings: the knobs of `keelson controller`, with Argo CD's defaults, and
//! how `argocd-cmd-params-cm` / `argocd-cm` keys override them.

use std::collections::BTreeMap;
use std::time::Duration;

use keelson_model::tracking::TrackingMethod;

/// Everything the controller's behaviour depends on (the binary fills it from flags).
#[derive(Debug, Clone)]
pub struct ControllerSettings {
    /// Namespace holding Applications, AppProjects and cluster/repo Secrets.
    pub namespace: String,
    /// This replica's id (recorded as the holder of the operations it runs).
    pub replica_id: String,
    /// Refresh (status) workers.
    pub status_processors: usize,
    /// Operation (sync) workers.
    pub operation_processors: usize,
    /// Period of the full resync of every app.
    pub app_resync: Duration,
    /// Up to this much random jitter is added to each app's resync.
    pub app_resync_jitter: Duration,
    /// When set, a resync this old bypasses the manifest cache.
    pub app_hard_resync: Option<Duration>,
    /// Concurrent writes of one sync step (`--kubectl-parallelism-limit`).
    pub kubectl_parallelism_limit: usize,
    /// Field manager for server-side apply.
    pub field_manager: String,
    /// How objects are marked as belonging to an app.
    pub tracking: TrackingMethod,
    /// Label key used by label tracking.
    pub label_key: String,
    /// How soon an app whose destination cache is still syncing is looked at again.
    pub cluster_sync_wait: Duration,
    /// Delay between polls of a running operation that waits on health.
    pub operation_poll: Duration,
    /// Time budget of one repo-server call.
    pub repo_timeout: Duration,
    /// How long one sync step's write may take.
    pub write_timeout: Duration,
    /// Kubernetes version reported to renderers.
    pub kube_version: String,
    /// Append every write to destination clusters to this file (JSON lines).
    pub apply_log: Option<std::path::PathBuf>,
    /// Shard assignment algorithm name (`controller.sharding.algorithm`).
    pub sharding_algorithm: String,
}

impl Default for ControllerSettings {
    fn default() -> Self {
        ControllerSettings {
            namespace: "argocd".to_owned(),
            replica_id: "keelson-controller".to_owned(),
            status_processors: 20,
            operation_processors: 10,
            app_resync: Duration::from_secs(120),
            app_resync_jitter: Duration::from_secs(60),
            app_hard_resync: None,
            kubectl_parallelism_limit: 20,
            field_manager: keelson_sync::DEFAULT_FIELD_MANAGER.to_owned(),
            tracking: TrackingMethod::default(),
            label_key: keelson_model::annotations::APP_INSTANCE_LABEL.to_owned(),
            cluster_sync_wait: Duration::from_millis(200),
            operation_poll: Duration::from_secs(1),
            repo_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            kube_version: "1.35.0".to_owned(),
            apply_log: None,
            sharding_algorithm: "consistent-hashing".to_owned(),
        }
    }
}

/// A key that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredKey {
    /// Config map key.
    pub key: String,
    /// Its value.
    pub value: String,
}

impl ControllerSettings {
    /// Applies `argocd-cmd-params-cm` keys that Argo CD's controller reads. Keys with
    /// values that do not parse are returned (and left at their current setting).
    pub fn apply_cmd_params(&mut self, data: &BTreeMap<String, String>) -> Vec<IgnoredKey> {
        self.apply_keys(data, |s, key, v| match key {
            "controller.status.processors" => set_usize(&mut s.status_processors, v),
            "controller.operation.processors" => set_usize(&mut s.operation_processors, v),
            "controller.kubectl.parallelism.limit" => {
                set_usize(&mut s.kubectl_parallelism_limit, v)
            }
            "controller.repo.server.timeout.seconds" => set_secs(&mut s.repo_timeout, v),
            "controller.sharding.algorithm" if !v.is_empty() => {
                s.sharding_algorithm = v.to_owned();
                true
            }
            "controller.app.resync" | "timeout.reconciliation" => set_secs(&mut s.app_resync, v),
            "controller.app.resync.jitter" | "timeout.reconciliation.jitter" => {
                set_secs(&mut s.app_resync_jitter, v)
            }
            "controller.app.hard.resync" | "timeout.hard.reconciliation" => s.set_hard_resync(v),
            _ => true,
        })
    }

    /// Applies `argocd-cm` keys: `timeout.reconciliation`, `timeout.hard.reconciliation`,
    /// `application.resourceTrackingMethod`, `application.instanceLabelKey`.
    pub fn apply_argocd_cm(&mut self, data: &BTreeMap<String, String>) -> Vec<IgnoredKey> {
        self.apply_keys(data, |s, key, v| match key {
            "timeout.reconciliation" => set_secs(&mut s.app_resync, v),
            "timeout.reconciliation.jitter" => set_secs(&mut s.app_resync_jitter, v),
            "timeout.hard.reconciliation" => s.set_hard_resync(v),
            "application.resourceTrackingMethod" => match TrackingMethod::parse(v) {
                Some(m) => {
                    s.tracking = m;
                    true
                }
                None => false,
            },
            "application.instanceLabelKey" if !v.is_empty() => {
                s.label_key = v.to_owned();
                true
            }
            _ => true,
        })
    }

    /// Runs `apply` on every trimmed value; returns the keys it refused.
    fn apply_keys(
        &mut self,
        data: &BTreeMap<String, String>,
        apply: impl Fn(&mut Self, &str, &str) -> bool,
    ) -> Vec<IgnoredKey> {
        data.iter()
            .filter(|(key, value)| !apply(self, key, value.trim()))
            .map(|(key, value)| IgnoredKey {
                key: key.clone(),
                value: value.clone(),
            })
            .collect()
    }

    /// A hard resync period; `0` turns it off.
    fn set_hard_resync(&mut self, v: &str) -> bool {
        let mut d = Duration::ZERO;
        let ok = set_secs(&mut d, v);
        if ok {
            self.app_hard_resync = (!d.is_zero()).then_some(d);
        }
        ok
    }
}

fn set_usize(slot: &mut usize, v: &str) -> bool {
    match v.parse::<usize>() {
        Ok(n) if n > 0 => {
            *slot = n;
            true
        }
        _ => false,
    }
}

/// Seconds (`180`) or a Go duration (`3m`, `1m30s`), as Argo CD accepts both.
fn set_secs(slot: &mut Duration, v: &str) -> bool {
    if let Ok(n) = v.parse::<u64>() {
        *slot = Duration::from_secs(n);
        return true;
    }
    match keelson_sync::parse_duration(v) {
        Ok(d) => {
            *slot = d;
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn cmd_params_override_defaults() {
        let mut s = ControllerSettings::default();
        let ignored = s.apply_cmd_params(&map(&[
            ("controller.status.processors", "50"),
            ("controller.operation.processors", "25"),
            ("controller.kubectl.parallelism.limit", "x"),
            ("timeout.reconciliation", "3m"),
            ("controller.app.hard.resync", "0"),
        ]));
        assert_eq!(s.status_processors, 50);
        assert_eq!(s.operation_processors, 25);
        assert_eq!(s.kubectl_parallelism_limit, 20);
        assert_eq!(s.app_resync, Duration::from_secs(180));
        assert_eq!(s.app_hard_resync, None);
        assert_eq!(ignored.len(), 1);
        assert_eq!(ignored[0].key, "controller.kubectl.parallelism.limit");
    }

    #[test]
    fn argocd_cm_sets_tracking() {
        let mut s = ControllerSettings::default();
        let ignored = s.apply_argocd_cm(&map(&[
            ("application.resourceTrackingMethod", "annotation"),
            ("timeout.reconciliation", "300s"),
        ]));
        assert!(ignored.is_empty());
        assert_eq!(s.tracking, TrackingMethod::Annotation);
        assert_eq!(s.app_resync, Duration::from_secs(300));
    }
}
