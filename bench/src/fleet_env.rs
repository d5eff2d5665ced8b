//! A whole Keelson installation on this machine for load benchmarks: `keelson sim` with
//! one management cluster (`c1`) and C destination clusters, the CRDs and the `argocd`
//! namespace, cluster Secrets, a generated Git repository with one small ConfigMap per
//! app (spread uniformly or Zipf-skewed over the clusters), repo-server and controller
//! processes, commits that change apps, refresh requests, the simulator's request
//! statistics, controllers' `/metrics`, and watching app status.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use keelson_model::{Application, HealthStatusCode, SyncStatusCode};
use keelson_sharding::takeover::UnitProgress;
use keelson_testbed::{
    ControllerProcess, GitRepo, RepoServerProcess, Sim, SimOptions, create_ignoring_conflict,
    prepare_management,
};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Argo CD's refresh request annotation.
pub const REFRESH_ANNOTATION: &str = "argocd.argoproj.io/refresh";

/// How apps are spread over the destination clusters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Distribution {
    /// App `i` goes to cluster `i mod C`.
    Uniform,
    /// Cluster `k` (0-based rank) gets a share proportional to `1 / (k + 1)^s`.
    Zipf {
        /// The exponent.
        s: f64,
    },
}

/// Namespace of the Applications.
pub const NAMESPACE: &str = "argocd";

/// A running installation.
pub struct FleetEnv {
    /// The simulator (`c1` is the management cluster).
    pub sim: Sim,
    /// Client of the management cluster.
    pub mgmt: kube::Client,
    /// The Git repository.
    pub repo: GitRepo,
    /// Repo-server processes.
    pub repo_servers: Vec<RepoServerProcess>,
    /// Controller processes.
    pub controllers: Vec<ControllerProcess>,
    /// Destination clusters.
    pub clusters: usize,
    /// How apps are spread over the clusters.
    pub distribution: Distribution,
    /// Cumulative Zipf weights (empty when uniform).
    zipf_cdf: Vec<f64>,
}

/// Counts of apps by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Applications seen.
    pub total: usize,
    /// Synced and Healthy with no operation running.
    pub done: usize,
}

impl FleetEnv {
    /// Starts the simulator with `clusters` destinations and prepares the management
    /// cluster.
    pub async fn start(clusters: usize) -> anyhow::Result<FleetEnv> {
        let opts = SimOptions {
            clusters: clusters + 1,
            ..SimOptions::default()
        };
        let sim = tokio::task::spawn_blocking(move || Sim::start(opts)).await??;
        let mgmt = sim.client(0)?;
        let destinations = sim.clusters().get(1..=clusters).unwrap_or_default();
        prepare_management(&mgmt, NAMESPACE, destinations, sim.ca_pem())
            .await
            .context("preparing the management cluster")?;
        let repo = tokio::task::spawn_blocking(GitRepo::init).await??;
        Ok(FleetEnv {
            sim,
            mgmt,
            repo,
            repo_servers: Vec::new(),
            controllers: Vec::new(),
            clusters,
            distribution: Distribution::Uniform,
            zipf_cdf: Vec::new(),
        })
    }

    /// Spreads apps created from now on by `distribution`.
    pub fn set_distribution(&mut self, distribution: Distribution) {
        self.distribution = distribution;
        self.zipf_cdf = match distribution {
            Distribution::Uniform => Vec::new(),
            Distribution::Zipf { s } => {
                let weights: Vec<f64> = (0..self.clusters)
                    .map(|k| 1.0 / ((k + 1) as f64).powf(s))
                    .collect();
                let total: f64 = weights.iter().sum();
                let mut acc = 0.0;
                weights
                    .iter()
                    .map(|w| {
                        acc += w / total;
                        acc
                    })
                    .collect()
            }
        };
    }

    /// The 0-based destination cluster of app `i` (the simulator's `c{2 + index}`).
    pub fn cluster_of(&self, i: usize) -> usize {
        if self.zipf_cdf.is_empty() || self.clusters == 0 {
            return i % self.clusters.max(1);
        }
        // A deterministic low-discrepancy point in [0, 1) per app, mapped through the CDF.
        let u = ((i as f64 + 0.5) * 0.618_033_988_749_895).fract();
        self.zipf_cdf
            .partition_point(|c| *c < u)
            .min(self.clusters - 1)
    }

    /// The API server URL of destination cluster `index` (0-based).
    pub fn cluster_server(&self, index: usize) -> anyhow::Result<String> {
        Ok(self.sim.cluster(index + 1)?.server.clone())
    }

    /// Writes one directory per app (`apps/app-NNNNN/cm.yaml`, a small ConfigMap) and
    /// commits.
    pub fn write_apps(&self, apps: usize) -> anyhow::Result<String> {
        for i in 0..apps {
            let text = format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i:05}\ndata:\n  key: value-{i}\n"
            );
            self.repo.write(&format!("apps/app-{i:05}/cm.yaml"), text)?;
        }
        Ok(self.repo.commit("apps")?)
    }

    /// The Application for app `i` (cluster `c{2 + i mod clusters}`).
    pub fn application(&self, i: usize) -> anyhow::Result<Application> {
        let dest = format!("c{}", 2 + self.cluster_of(i));
        Ok(serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": format!("app-{i:05}"), "namespace": NAMESPACE},
            "spec": {
                "project": "default",
                "source": {"repoURL": self.repo.url(), "path": format!("apps/app-{i:05}"), "targetRevision": "HEAD"},
                "destination": {"name": dest, "namespace": "bench"},
                "syncPolicy": {"automated": {"prune": true}, "syncOptions": ["CreateNamespace=true"]}
            }
        }))?)
    }

    /// Rewrites the ConfigMaps of `apps` with a value naming `change` and commits; returns
    /// the new commit.
    pub fn commit_change(
        &self,
        apps: impl Iterator<Item = usize>,
        change: &str,
    ) -> anyhow::Result<String> {
        for i in apps {
            let text = format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i:05}\ndata:\n  key: value-{i}-{change}\n"
            );
            self.repo.write(&format!("apps/app-{i:05}/cm.yaml"), text)?;
        }
        Ok(self.repo.commit(change)?)
    }

    /// Asks for a normal refresh of `apps` (the `argocd.argoproj.io/refresh` annotation,
    /// as Argo CD's webhook handler does).
    pub async fn request_refresh(
        &self,
        apps: impl Iterator<Item = usize>,
        concurrency: usize,
    ) -> anyhow::Result<()> {
        let api: Api<Application> = Api::namespaced(self.mgmt.clone(), NAMESPACE);
        let patch = json!({"metadata": {"annotations": {REFRESH_ANNOTATION: "normal"}}});
        futures::stream::iter(apps)
            .map(|i| {
                let api = api.clone();
                let patch = patch.clone();
                async move {
                    api.patch(
                        &format!("app-{i:05}"),
                        &PatchParams::default(),
                        &Patch::Merge(&patch),
                    )
                    .await
                    .map(|_| ())
                    .with_context(|| format!("requesting a refresh of app-{i:05}"))
                }
            })
            .buffer_unordered(concurrency)
            .try_for_each(|()| async { Ok(()) })
            .await
    }

    /// Application `app-NNNNN`.
    pub async fn get_app(&self, i: usize) -> anyhow::Result<Application> {
        let api: Api<Application> = Api::namespaced(self.mgmt.clone(), NAMESPACE);
        Ok(api.get(&format!("app-{i:05}")).await?)
    }

    /// Every Application (paged).
    pub async fn list_apps(&self) -> anyhow::Result<Vec<Application>> {
        let api: Api<Application> = Api::namespaced(self.mgmt.clone(), NAMESPACE);
        let mut out = Vec::new();
        let mut params = ListParams::default().limit(1000);
        loop {
            let page = api.list(&params).await?;
            out.extend(page.items);
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => return Ok(out),
            }
        }
    }

    /// The simulator's `/sim/stats` (`{"requests": {verb: n}, "clusters", "objects"}`).
    pub async fn sim_stats(&self) -> anyhow::Result<Value> {
        let info = self.sim.info();
        let token = info
            .admin_token
            .as_deref()
            .context("the simulator printed no admin token")?;
        let scheme = if self.sim.ca_pem().is_some() {
            "https"
        } else {
            "http"
        };
        let admin = keelson_testbed::build_client(
            "sim admin",
            &format!("{scheme}://{}", info.listen),
            token,
            self.sim.ca_pem(),
        )?;
        let req = http::Request::get("/sim/stats").body(Vec::new())?;
        Ok(serde_json::from_str(&admin.request_text(req).await?)?)
    }

    /// `/metrics` of controller `index` (HTTP/1.0, so the body is not chunked).
    pub async fn controller_metrics(&self, index: usize) -> anyhow::Result<String> {
        let addr = self
            .controllers
            .get(index)
            .context("no such controller")?
            .metrics_addr();
        scrape(addr).await
    }

    /// Telemetry address of controller `index`.
    pub fn controller_addr(&self, index: usize) -> anyhow::Result<SocketAddr> {
        Ok(self
            .controllers
            .get(index)
            .context("no such controller")?
            .metrics_addr())
    }

    /// Creates Applications `0..apps`.
    pub async fn create_apps(&self, apps: usize, concurrency: usize) -> anyhow::Result<()> {
        let api: Api<Application> = Api::namespaced(self.mgmt.clone(), NAMESPACE);
        let list: Vec<Application> = (0..apps)
            .map(|i| self.application(i))
            .collect::<anyhow::Result<_>>()?;
        futures::stream::iter(list)
            .map(|app| {
                let api = api.clone();
                async move {
                    create_ignoring_conflict(&api, &app, "creating an application")
                        .await
                        .map_err(anyhow::Error::from)
                }
            })
            .buffer_unordered(concurrency)
            .try_for_each(|()| async { Ok(()) })
            .await
    }

    /// Starts `n` repo-server processes.
    pub fn start_repo_servers(&mut self, n: usize) -> anyhow::Result<Vec<SocketAddr>> {
        self.start_repo_servers_with(n, &[])
    }

    /// Starts `n` repo-server processes with `extra` arguments.
    pub fn start_repo_servers_with(
        &mut self,
        n: usize,
        extra: &[&str],
    ) -> anyhow::Result<Vec<SocketAddr>> {
        for _ in 0..n {
            self.repo_servers.push(RepoServerProcess::start(extra)?);
        }
        Ok(self
            .repo_servers
            .iter()
            .map(RepoServerProcess::grpc_addr)
            .collect())
    }

    /// Starts a controller with `extra` arguments.
    pub fn start_controller(&mut self, extra: &[&str]) -> anyhow::Result<u32> {
        let addrs: Vec<SocketAddr> = self
            .repo_servers
            .iter()
            .map(RepoServerProcess::grpc_addr)
            .collect();
        let c = ControllerProcess::start(self.sim.kubeconfig_path(0)?, &addrs, extra)?;
        let pid = c.pid();
        self.controllers.push(c);
        Ok(pid)
    }

    /// Watches the Applications until `want` of them satisfy `pred` or `timeout`
    /// passes; returns the last count. A watch, not a re-list: at 50,000 apps a list
    /// every few seconds costs the simulator more CPU than the controllers it measures.
    pub async fn wait_apps(
        &self,
        pred: impl Fn(&Application) -> bool,
        want: usize,
        timeout: Duration,
    ) -> anyhow::Result<Progress> {
        let api: Api<Application> = Api::namespaced(self.mgmt.clone(), NAMESPACE);
        let stream = watcher(api, watcher::Config::default().page_size(1000)).default_backoff();
        futures::pin_mut!(stream);
        let deadline = tokio::time::Instant::now() + timeout;
        let mut state: HashMap<String, bool> = HashMap::new();
        let mut listed = false;
        loop {
            let done = state.values().filter(|d| **d).count();
            let progress = Progress {
                total: state.len(),
                done,
            };
            if listed && done >= want {
                return Ok(progress);
            }
            let event = match tokio::time::timeout_at(deadline, stream.next()).await {
                Err(_) => return Ok(progress),
                Ok(None) => anyhow::bail!("the application watch ended"),
                Ok(Some(event)) => event,
            };
            match event {
                Ok(watcher::Event::Apply(app) | watcher::Event::InitApply(app)) => {
                    let name = app.metadata.name.clone().unwrap_or_default();
                    state.insert(name, pred(&app));
                }
                Ok(watcher::Event::Delete(app)) => {
                    state.remove(app.metadata.name.as_deref().unwrap_or_default());
                }
                Ok(watcher::Event::InitDone) => listed = true,
                Ok(watcher::Event::Init) => {}
                Err(e) => eprintln!("bench: application watch failed ({e}); retrying"),
            }
        }
    }

    /// Watches until `want` apps are done (see [`is_done`]) or `timeout` passes.
    pub async fn wait_done(&self, want: usize, timeout: Duration) -> anyhow::Result<Progress> {
        self.wait_apps(is_done, want, timeout).await
    }
}

/// The body of `GET http://addr/metrics`, bounded to 10 seconds.
pub async fn scrape(addr: SocketAddr) -> anyhow::Result<String> {
    http10(addr, "GET /metrics").await
}

/// `POST /api/v1/refresh` on a controller's telemetry address: a normal refresh of every
/// app it holds (of those with a source in `repo`, if given); how many it queued.
pub async fn post_refresh(addr: SocketAddr, repo: Option<&str>) -> anyhow::Result<u64> {
    let request = match repo {
        Some(url) => format!("POST /api/v1/refresh?repo={}", urlencoding::encode(url)),
        None => "POST /api/v1/refresh".to_owned(),
    };
    let body = http10(addr, &request).await?;
    let v: serde_json::Value =
        serde_json::from_str(&body).with_context(|| format!("refresh answer {body:?}"))?;
    v.get("queued")
        .and_then(serde_json::Value::as_u64)
        .with_context(|| format!("refresh answer {body:?}"))
}

/// `GET /api/v1/refresh` on a controller's telemetry address: how many requested
/// refreshes have not finished (cheap, unlike a scrape of every per-app metric).
pub async fn refresh_pending(addr: SocketAddr) -> anyhow::Result<u64> {
    let body = http10(addr, "GET /api/v1/refresh").await?;
    let v: serde_json::Value =
        serde_json::from_str(&body).with_context(|| format!("refresh answer {body:?}"))?;
    v.get("pending")
        .and_then(serde_json::Value::as_u64)
        .with_context(|| format!("refresh answer {body:?}"))
}

/// `GET /api/v1/units` on a controller's telemetry address: the takeover progress of
/// every unit it holds.
pub async fn units(addr: SocketAddr) -> anyhow::Result<Vec<UnitProgress>> {
    let body = http10(addr, "GET /api/v1/units").await?;
    #[derive(serde::Deserialize)]
    struct Units {
        units: Vec<UnitProgress>,
    }
    let v: Units = serde_json::from_str(&body).with_context(|| format!("units answer {body:?}"))?;
    Ok(v.units)
}

/// One HTTP/1.0 request (`METHOD /path`) without a body; the response body.
async fn http10(addr: SocketAddr, request: &str) -> anyhow::Result<String> {
    let fetch = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        let head = format!("{request} HTTP/1.0\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n");
        s.write_all(head.as_bytes()).await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        anyhow::Ok(String::from_utf8_lossy(&buf).into_owned())
    };
    let text = tokio::time::timeout(Duration::from_secs(10), fetch)
        .await
        .with_context(|| format!("{request} on {addr} timed out"))??;
    Ok(text
        .split_once("\r\n\r\n")
        .map_or(text.as_str(), |(_, body)| body)
        .to_owned())
}

/// Synced and Healthy with no operation running.
pub fn is_done(app: &Application) -> bool {
    let Some(s) = app.status.as_ref() else {
        return false;
    };
    let running = s
        .operation_state
        .as_ref()
        .and_then(|o| o.phase)
        .is_some_and(|p| !p.is_completed());
    app.operation.is_none()
        && !running
        && s.sync.as_ref().and_then(|x| x.status) == Some(SyncStatusCode::Synced)
        && s.health.as_ref().and_then(|h| h.status) == Some(HealthStatusCode::Healthy)
}

/// Done (see [`is_done`]) and compared at `revision`.
pub fn is_done_at(app: &Application, revision: &str) -> bool {
    is_done(app)
        && app
            .status
            .as_ref()
            .and_then(|s| s.sync.as_ref())
            .and_then(|s| s.revision.as_deref())
            == Some(revision)
}
