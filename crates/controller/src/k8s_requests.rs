//! A [`ClusterOps`] decorator that counts every request a sync makes to a destination
//! cluster in `argocd_app_k8s_request_total`, labelled with the app it was made for.

use std::sync::Arc;

use keelson_sync::{
    ClusterOps, ExecutorError, KubeOps, PropagationPolicy, SyncTask, WriteOutcome,
    with_written_version,
};
use serde_json::Value;

use crate::apply_log::{ApplyLog, LoggedWrite, now_ns};
use crate::metrics::{AppLabels, ControllerMetrics, K8sRequest};

/// Owned identity labels of the app a sync runs for.
#[derive(Debug, Clone)]
pub struct OwnedLabels {
    /// Application namespace.
    pub namespace: String,
    /// Application name.
    pub name: String,
    /// Project.
    pub project: String,
    /// Destination server.
    pub dest_server: String,
}

/// Counts requests (and logs writes when an apply log is open), then delegates to the
/// cluster's [`KubeOps`].
pub struct CountingOps {
    inner: Arc<KubeOps>,
    metrics: Arc<ControllerMetrics>,
    labels: OwnedLabels,
    log: Option<(Arc<ApplyLog>, String)>,
}

impl CountingOps {
    /// Wraps `inner` for one app.
    pub fn new(inner: Arc<KubeOps>, metrics: Arc<ControllerMetrics>, labels: OwnedLabels) -> Self {
        CountingOps {
            inner,
            metrics,
            labels,
            log: None,
        }
    }

    /// Also records every write in `log` under shard unit `unit`.
    pub fn with_log(mut self, log: Option<Arc<ApplyLog>>, unit: String) -> Self {
        self.log = log.map(|l| (l, unit));
        self
    }

    fn log_write(&self, task: &SyncTask, verb: &str, start_ns: u128, version: Option<u64>) {
        if let Some((log, unit)) = &self.log {
            let app = format!("{}/{}", self.labels.namespace, self.labels.name);
            log.record(&LoggedWrite {
                unit,
                app: &app,
                verb,
                resource: &task.key.to_string(),
                start_ns,
                end_ns: now_ns(),
                resource_version: version,
            });
        }
    }

    fn count(&self, task: &SyncTask, verb: &str, ok: bool, dry_run: bool) {
        let app = AppLabels {
            namespace: &self.labels.namespace,
            name: &self.labels.name,
            project: &self.labels.project,
            dest_server: &self.labels.dest_server,
        };
        self.metrics.k8s_request(
            &app,
            &K8sRequest {
                response_code: if ok { "200" } else { "500" },
                verb,
                kind: &task.key.kind,
                namespace: &task.key.namespace,
                dry_run,
            },
        );
    }
}

fn apply_verb(task: &SyncTask) -> &'static str {
    match &task.operation {
        keelson_sync::TaskOperation::Apply { method, .. } => match method {
            keelson_sync::ApplyMethod::ServerSide { .. } => "Apply",
            keelson_sync::ApplyMethod::ClientSide { .. } => "Patch",
            keelson_sync::ApplyMethod::Replace { .. } | keelson_sync::ApplyMethod::Update => {
                "Update"
            }
            keelson_sync::ApplyMethod::Create => "Create",
        },
        _ => "Delete",
    }
}

impl ClusterOps for CountingOps {
    async fn dry_run(&self, task: &SyncTask) -> WriteOutcome {
        let out = self.inner.dry_run(task).await;
        self.count(task, apply_verb(task), !out.is_failed(), true);
        out
    }

    async fn apply(&self, task: &SyncTask) -> WriteOutcome {
        let start = now_ns();
        let (out, version) = with_written_version(self.inner.apply(task)).await;
        self.log_write(task, apply_verb(task), start, version);
        self.count(task, apply_verb(task), !out.is_failed(), false);
        out
    }

    async fn delete(&self, task: &SyncTask, propagation: PropagationPolicy) -> WriteOutcome {
        let start = now_ns();
        let out = self.inner.delete(task, propagation).await;
        self.log_write(task, "Delete", start, None);
        self.count(task, "Delete", !out.is_failed(), false);
        out
    }

    async fn get(&self, task: &SyncTask) -> Result<Option<Value>, ExecutorError> {
        let out = self.inner.get(task).await;
        self.count(task, "Get", out.is_ok(), false);
        out
    }
}
