//! A whole Keelson installation on this machine for load benchmarks: `keelson sim` with
//! one management cluster (`c1`) and C destination clusters, the CRDs and the `argocd`
//! namespace, cluster Secrets, a generated Git repository with one small ConfigMap per
//! app, repo-server and controller processes, and status polling.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use keelson_model::{Application, HealthStatusCode, SyncStatusCode};
use keelson_testbed::{ControllerProcess, GitRepo, RepoServerProcess, Sim, SimOptions};
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use serde_json::json;

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
}

async fn create<K>(api: &Api<K>, obj: &K) -> anyhow::Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    match api.create(&PostParams::default(), obj).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Counts of apps by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Applications listed.
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
        let crds: Api<CustomResourceDefinition> = Api::all(mgmt.clone());
        for crd in keelson_model::crds::all() {
            create(&crds, &crd).await.context("installing CRDs")?;
        }
        let ns: Api<Namespace> = Api::all(mgmt.clone());
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(NAMESPACE.to_owned()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        create(&ns, &namespace).await?;
        let secrets: Api<Secret> = Api::namespaced(mgmt.clone(), NAMESPACE);
        let ca = sim
            .ca_pem()
            .map(|pem| base64::engine::general_purpose::STANDARD.encode(pem));
        for i in 1..=clusters {
            let c = sim.cluster(i)?;
            let config = json!({"bearerToken": c.token, "tlsClientConfig": {"caData": ca, "insecure": ca.is_none()}});
            let secret = Secret {
                metadata: ObjectMeta {
                    name: Some(format!("cluster-{}", c.name)),
                    namespace: Some(NAMESPACE.to_owned()),
                    labels: Some(BTreeMap::from([(
                        "argocd.argoproj.io/secret-type".to_owned(),
                        "cluster".to_owned(),
                    )])),
                    ..ObjectMeta::default()
                },
                string_data: Some(BTreeMap::from([
                    ("name".to_owned(), c.name.clone()),
                    ("server".to_owned(), c.server.clone()),
                    ("config".to_owned(), config.to_string()),
                ])),
                ..Secret::default()
            };
            create(&secrets, &secret).await?;
        }
        let repo = tokio::task::spawn_blocking(GitRepo::init).await??;
        Ok(FleetEnv {
            sim,
            mgmt,
            repo,
            repo_servers: Vec::new(),
            controllers: Vec::new(),
            clusters,
        })
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
        let dest = format!("c{}", 2 + i % self.clusters);
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

    /// Creates Applications `0..apps`.
    pub async fn create_apps(&self, apps: usize, concurrency: usize) -> anyhow::Result<()> {
        let api: Api<Application> = Api::namespaced(self.mgmt.clone(), NAMESPACE);
        let list: Vec<Application> = (0..apps).map(|i| self.application(i)).collect::<anyhow::Result<_>>()?;
        futures::stream::iter(list)
            .map(|app| {
                let api = api.clone();
                async move { create(&api, &app).await }
            })
            .buffer_unordered(concurrency)
            .try_for_each(|()| async { Ok(()) })
            .await
    }

    /// Starts `n` repo-server processes.
    pub fn start_repo_servers(&mut self, n: usize) -> anyhow::Result<Vec<SocketAddr>> {
        for _ in 0..n {
            self.repo_servers.push(RepoServerProcess::start(&[])?);
        }
        Ok(self.repo_servers.iter().map(RepoServerProcess::grpc_addr).collect())
    }

    /// Starts a controller with `extra` arguments.
    pub fn start_controller(&mut self, extra: &[&str]) -> anyhow::Result<u32> {
        let addrs: Vec<SocketAddr> = self.repo_servers.iter().map(RepoServerProcess::grpc_addr).collect();
        let c = ControllerProcess::start(self.sim.kubeconfig_path(0)?, &addrs, extra)?;
        let pid = c.pid();
        self.controllers.push(c);
        Ok(pid)
    }

    /// Counts Applications and how many are Synced and Healthy with nothing running.
    pub async fn progress(&self) -> anyhow::Result<Progress> {
        let api: Api<Application> = Api::namespaced(self.mgmt.clone(), NAMESPACE);
        let mut p = Progress::default();
        let mut params = ListParams::default().limit(1000);
        loop {
            let page = api.list(&params).await?;
            for app in &page.items {
                p.total += 1;
                if is_done(app) {
                    p.done += 1;
                }
            }
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break,
            }
        }
        Ok(p)
    }

    /// Polls until `want` apps are done or `timeout` passes; returns the last progress.
    pub async fn wait_done(&self, want: usize, timeout: Duration, poll: Duration) -> anyhow::Result<Progress> {
        let started = std::time::Instant::now();
        loop {
            let p = self.progress().await?;
            if p.done >= want || started.elapsed() > timeout {
                return Ok(p);
            }
            tokio::time::sleep(poll).await;
        }
    }
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
