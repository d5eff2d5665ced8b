//! The repo-server's metrics, with Argo CD's names and labels where Argo CD has them:
//! `argocd_git_request_total`, `argocd_git_request_duration_seconds`,
//! `argocd_repo_pending_request_total`, plus Keelson's manifest cache and render counters.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

/// Kinds of Git requests, the `request_type` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitRequestType {
    /// Resolving refs against the remote.
    LsRemote,
    /// Fetching or cloning.
    Fetch,
}

impl GitRequestType {
    fn as_str(self) -> &'static str {
        match self {
            GitRequestType::LsRemote => "ls-remote",
            GitRequestType::Fetch => "fetch",
        }
    }
}

/// Errors registering metrics.
#[derive(Debug, thiserror::Error)]
#[error("registering repo-server metrics failed")]
pub struct MetricsError(#[source] prometheus::Error);

/// The repo-server's metrics.
#[derive(Debug, Clone)]
pub struct RepoMetrics {
    git_requests: IntCounterVec,
    git_duration: HistogramVec,
    /// Requests waiting for a render slot (`--parallelism-limit`).
    pub pending: IntGauge,
    manifest_requests: IntCounterVec,
    render_duration: HistogramVec,
}

impl RepoMetrics {
    /// Creates the metrics and registers them.
    pub fn new(registry: &Registry) -> Result<Self, MetricsError> {
        let git_requests = IntCounterVec::new(
            Opts::new(
                "argocd_git_request_total",
                "Number of git requests performed by repo server",
            ),
            &["repo", "request_type"],
        )
        .map_err(MetricsError)?;
        let git_duration = HistogramVec::new(
            HistogramOpts::new(
                "argocd_git_request_duration_seconds",
                "Git requests duration seconds.",
            )
            .buckets(vec![0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 10.0, 20.0]),
            &["repo", "request_type"],
        )
        .map_err(MetricsError)?;
        let pending = IntGauge::with_opts(Opts::new(
            "argocd_repo_pending_request_total",
            "Number of pending requests requiring repository lock",
        ))
        .map_err(MetricsError)?;
        let manifest_requests = IntCounterVec::new(
            Opts::new(
                "keelson_repo_manifest_requests_total",
                "GenerateManifests requests by how they were answered",
            ),
            &["result"],
        )
        .map_err(MetricsError)?;
        let render_duration = HistogramVec::new(
            HistogramOpts::new(
                "keelson_repo_render_duration_seconds",
                "Time to render manifests on a cache miss",
            )
            .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            &["source_type"],
        )
        .map_err(MetricsError)?;
        for c in [
            Box::new(git_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(git_duration.clone()),
            Box::new(pending.clone()),
            Box::new(manifest_requests.clone()),
            Box::new(render_duration.clone()),
        ] {
            registry.register(c).map_err(MetricsError)?;
        }
        Ok(Self {
            git_requests,
            git_duration,
            pending,
            manifest_requests,
            render_duration,
        })
    }

    /// Records one Git request. The repo label is Argo CD's (one series per repository,
    /// bounded by the repositories the fleet uses).
    pub fn git_request(&self, kind: GitRequestType, repo: &str, seconds: f64) {
        let labels = [repo, kind.as_str()];
        self.git_requests.with_label_values(&labels).inc();
        self.git_duration
            .with_label_values(&labels)
            .observe(seconds);
    }

    /// Counts a GenerateManifests answer: `hit`, `reused` (manifest-generate-paths),
    /// `rendered` or `error`.
    pub fn manifest_request(&self, result: &'static str) {
        self.manifest_requests.with_label_values(&[result]).inc();
    }

    /// Records a render's duration.
    pub fn render(&self, source_type: &str, seconds: f64) {
        self.render_duration
            .with_label_values(&[source_type])
            .observe(seconds);
    }
}
