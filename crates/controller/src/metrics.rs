//! The controller's Prometheus metrics, with Argo CD's names and labels so existing
//! dashboards work: `argocd_app_info`, `argocd_app_reconcile`, `argocd_app_sync_total`,
//! `argocd_app_sync_duration_seconds_total`, `argocd_app_k8s_request_total`,
//! `argocd_app_condition`, `argocd_app_orphaned_resources_count`. The `workqueue_*`
//! series come from `keelson-workqueue`.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;
use prometheus::{
    CounterVec, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntGauge, Opts, Registry,
};

/// Labels of `argocd_app_info`, in order.
const INFO_LABELS: &[&str] = &[
    "namespace",
    "name",
    "project",
    "autosync_enabled",
    "repo",
    "dest_server",
    "dest_namespace",
    "sync_status",
    "health_status",
    "operation",
];

/// Per-application values of `argocd_app_info`, one per label of [`INFO_LABELS`] after
/// namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppInfo {
    /// Project.
    pub project: String,
    /// `"true"` when automated sync is on.
    pub autosync_enabled: bool,
    /// First source's repo URL.
    pub repo: String,
    /// Destination server.
    pub dest_server: String,
    /// Destination namespace.
    pub dest_namespace: String,
    /// Sync status.
    pub sync_status: String,
    /// Health status.
    pub health_status: String,
    /// Operation in progress (`sync`, or empty).
    pub operation: String,
}

/// What was last exported for one app, so stale series can be removed.
#[derive(Debug, Default)]
struct Exported {
    info: Option<Vec<String>>,
    project: String,
    conditions: BTreeSet<String>,
}

/// The controller's metrics.
pub struct ControllerMetrics {
    app_info: GaugeVec,
    reconcile: HistogramVec,
    sync_total: CounterVec,
    sync_duration: CounterVec,
    k8s_requests: CounterVec,
    conditions: GaugeVec,
    orphaned: GaugeVec,
    refresh_pending: IntGauge,
    unit_takeover: Histogram,
    units_reconciling: IntGauge,
    exported: Mutex<HashMap<(String, String), Exported>>,
}

impl std::fmt::Debug for ControllerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerMetrics").finish_non_exhaustive()
    }
}

impl ControllerMetrics {
    /// Creates the metrics and registers them into `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Arc<ControllerMetrics>> {
        let app_info = GaugeVec::new(
            Opts::new("argocd_app_info", "Information about application."),
            INFO_LABELS,
        )?;
        let reconcile = HistogramVec::new(
            HistogramOpts::new(
                "argocd_app_reconcile",
                "Application reconciliation performance in seconds.",
            )
            .buckets(vec![0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0]),
            &["namespace", "dest_server"],
        )?;
        let sync_total = CounterVec::new(
            Opts::new("argocd_app_sync_total", "Number of application syncs."),
            &["namespace", "name", "project", "dest_server", "phase"],
        )?;
        let sync_duration = CounterVec::new(
            Opts::new(
                "argocd_app_sync_duration_seconds_total",
                "Application sync performance in seconds total.",
            ),
            &["namespace", "name", "project", "dest_server"],
        )?;
        let k8s_requests = CounterVec::new(
            Opts::new(
                "argocd_app_k8s_request_total",
                "Number of kubernetes requests executed during application reconciliation.",
            ),
            &[
                "namespace",
                "name",
                "project",
                "server",
                "response_code",
                "verb",
                "resource_kind",
                "resource_namespace",
                "dry_run",
            ],
        )?;
        let conditions = GaugeVec::new(
            Opts::new("argocd_app_condition", "Report application conditions."),
            &["namespace", "name", "project", "condition"],
        )?;
        let orphaned = GaugeVec::new(
            Opts::new(
                "argocd_app_orphaned_resources_count",
                "Number of orphaned resources per application.",
            ),
            &["namespace", "name", "project"],
        )?;
        let refresh_pending = IntGauge::new(
            "keelson_app_refresh_requests_pending",
            "Apps whose refresh was requested through the refresh endpoint and not finished yet.",
        )?;
        let unit_takeover = Histogram::with_opts(
            HistogramOpts::new(
                "keelson_unit_takeover_seconds",
                "Time from claiming a unit to every app of it compared by this replica.",
            )
            .buckets(vec![0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]),
        )?;
        let units_reconciling = IntGauge::new(
            "keelson_units_reconciling",
            "Units this replica claimed whose apps it has not all compared yet.",
        )?;
        registry.register(Box::new(unit_takeover.clone()))?;
        registry.register(Box::new(units_reconciling.clone()))?;
        registry.register(Box::new(refresh_pending.clone()))?;
        registry.register(Box::new(app_info.clone()))?;
        registry.register(Box::new(reconcile.clone()))?;
        registry.register(Box::new(sync_total.clone()))?;
        registry.register(Box::new(sync_duration.clone()))?;
        registry.register(Box::new(k8s_requests.clone()))?;
        registry.register(Box::new(conditions.clone()))?;
        registry.register(Box::new(orphaned.clone()))?;
        Ok(Arc::new(ControllerMetrics {
            app_info,
            reconcile,
            sync_total,
            sync_duration,
            k8s_requests,
            conditions,
            orphaned,
            refresh_pending,
            unit_takeover,
            units_reconciling,
            exported: Mutex::new(HashMap::new()),
        }))
    }

    /// A gained unit took `seconds` from its claim to its last app compared;
    /// `reconciling` units are still to be.
    pub fn unit_taken_over(&self, seconds: f64, reconciling: usize) {
        self.unit_takeover.observe(seconds);
        self.set_units_reconciling(reconciling);
    }

    /// Sets how many gained units still have apps to compare.
    pub fn set_units_reconciling(&self, reconciling: usize) {
        self.units_reconciling
            .set(i64::try_from(reconciling).unwrap_or(i64::MAX));
    }

    /// Sets how many requested refreshes are not done yet.
    pub fn set_refresh_pending(&self, pending: usize) {
        self.refresh_pending
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
    }

    /// Records one reconcile's duration.
    pub fn observe_reconcile(&self, namespace: &str, dest_server: &str, seconds: f64) {
        self.reconcile
            .with_label_values(&[namespace, dest_server])
            .observe(seconds);
    }

    /// Sets the app's info, condition and orphan series, removing the ones it no longer
    /// has.
    pub fn set_app(
        &self,
        namespace: &str,
        name: &str,
        info: &AppInfo,
        conditions: &[String],
        orphaned: Option<usize>,
    ) {
        let values = vec![
            namespace.to_owned(),
            name.to_owned(),
            info.project.clone(),
            info.autosync_enabled.to_string(),
            info.repo.clone(),
            info.dest_server.clone(),
            info.dest_namespace.clone(),
            info.sync_status.clone(),
            info.health_status.clone(),
            info.operation.clone(),
        ];
        let mut exported = self.exported.lock();
        let entry = exported
            .entry((namespace.to_owned(), name.to_owned()))
            .or_default();
        if entry.info.as_ref() != Some(&values) {
            if let Some(old) = entry.info.take() {
                let old: Vec<&str> = old.iter().map(String::as_str).collect();
                let _ = self.app_info.remove_label_values(&old);
            }
            let refs: Vec<&str> = values.iter().map(String::as_str).collect();
            self.app_info.with_label_values(&refs).set(1.0);
            entry.info = Some(values);
        }
        let now: BTreeSet<String> = conditions.iter().cloned().collect();
        if entry.project != info.project {
            self.remove_conditions(namespace, name, entry);
            let _ = self
                .orphaned
                .remove_label_values(&[namespace, name, &entry.project]);
            entry.project = info.project.clone();
        }
        for gone in entry.conditions.difference(&now) {
            let _ = self
                .conditions
                .remove_label_values(&[namespace, name, &entry.project, gone]);
        }
        for c in &now {
            self.conditions
                .with_label_values(&[namespace, name, &info.project, c])
                .set(1.0);
        }
        entry.conditions = now;
        match orphaned {
            Some(n) => self
                .orphaned
                .with_label_values(&[namespace, name, &info.project])
                .set(n as f64),
            None => {
                let _ = self
                    .orphaned
                    .remove_label_values(&[namespace, name, &info.project]);
            }
        }
    }

    fn remove_conditions(&self, namespace: &str, name: &str, entry: &mut Exported) {
        for c in std::mem::take(&mut entry.conditions) {
            let _ = self
                .conditions
                .remove_label_values(&[namespace, name, &entry.project, &c]);
        }
    }

    /// Removes every series of a deleted app.
    pub fn remove_app(&self, namespace: &str, name: &str) {
        let mut exported = self.exported.lock();
        if let Some(mut entry) = exported.remove(&(namespace.to_owned(), name.to_owned())) {
            if let Some(old) = entry.info.take() {
                let old: Vec<&str> = old.iter().map(String::as_str).collect();
                let _ = self.app_info.remove_label_values(&old);
            }
            self.remove_conditions(namespace, name, &mut entry);
            let _ = self
                .orphaned
                .remove_label_values(&[namespace, name, &entry.project]);
        }
    }

    /// Counts a finished sync and adds its duration.
    pub fn sync_finished(&self, app: &AppLabels<'_>, phase: &str, seconds: f64) {
        self.sync_total
            .with_label_values(&[app.namespace, app.name, app.project, app.dest_server, phase])
            .inc();
        self.sync_duration
            .with_label_values(&[app.namespace, app.name, app.project, app.dest_server])
            .inc_by(seconds.max(0.0));
    }

    /// Counts one request made to a destination cluster on behalf of an app.
    pub fn k8s_request(&self, app: &AppLabels<'_>, request: &K8sRequest<'_>) {
        let dry_run = if request.dry_run { "true" } else { "false" };
        self.k8s_requests
            .with_label_values(&[
                app.namespace,
                app.name,
                app.project,
                app.dest_server,
                request.response_code,
                request.verb,
                request.kind,
                request.namespace,
                dry_run,
            ])
            .inc();
    }
}

/// Identity labels of an app.
#[derive(Debug, Clone, Copy)]
pub struct AppLabels<'a> {
    /// Application namespace.
    pub namespace: &'a str,
    /// Application name.
    pub name: &'a str,
    /// Project.
    pub project: &'a str,
    /// Destination server.
    pub dest_server: &'a str,
}

/// One Kubernetes request.
#[derive(Debug, Clone, Copy)]
pub struct K8sRequest<'a> {
    /// HTTP-like code (`200`, `500`, …).
    pub response_code: &'a str,
    /// Verb (`Apply`, `Create`, `Update`, `Delete`, `Get`, …).
    pub verb: &'a str,
    /// Resource kind.
    pub kind: &'a str,
    /// Resource namespace.
    pub namespace: &'a str,
    /// Whether it was a dry run.
    pub dry_run: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_info_series_follow_label_changes() -> Result<(), prometheus::Error> {
        let registry = Registry::new();
        let m = ControllerMetrics::register(&registry)?;
        let mut info = AppInfo {
            project: "default".into(),
            sync_status: "OutOfSync".into(),
            health_status: "Missing".into(),
            ..AppInfo::default()
        };
        m.set_app("argocd", "a", &info, &["SyncError".into()], Some(2));
        info.sync_status = "Synced".into();
        m.set_app("argocd", "a", &info, &[], None);
        let families = registry.gather();
        let count = |name: &str| {
            families
                .iter()
                .find(|f| f.name() == name)
                .map_or(0, |f| f.get_metric().len())
        };
        assert_eq!(count("argocd_app_info"), 1);
        assert_eq!(count("argocd_app_condition"), 0);
        assert_eq!(count("argocd_app_orphaned_resources_count"), 0);
        m.remove_app("argocd", "a");
        let families = registry.gather();
        assert!(
            families
                .iter()
                .all(|f| f.name() != "argocd_app_info" || f.get_metric().is_empty())
        );
        Ok(())
    }
}
