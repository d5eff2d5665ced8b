//! Shared harness of the controller end-to-end tests: a real kube-apiserver as the
//! management cluster (and the in-cluster destination), `keelson sim` clusters in workload
//! mode registered with cluster Secrets, real repo-server processes, Git fixture repos and
//! one `keelson controller` process; plus helpers to create and patch Applications, wait
//! (bounded) for their status, and read live objects on destinations.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod first_seen;

pub use keelson_testbed::application_fields::*;

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::Namespace;
use keelson_testbed::{
    ControllerProcess, GitRepo, KubeApiServer, RepoServerProcess, Sim, SimOptions,
    application_resource, create_ignoring_conflict, prepare_management,
};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ObjectMeta, Patch,
    PatchParams, PostParams,
};
use serde_json::{Value, json};

/// Namespace of Applications, AppProjects and cluster Secrets.
pub const NS: &str = "argocd";
/// The in-cluster destination (the management cluster itself).
pub const IN_CLUSTER: &str = "https://kubernetes.default.svc";
/// Poll interval of the wait loops.
const POLL: Duration = Duration::from_millis(400);

/// What an environment starts.
#[derive(Debug, Clone)]
pub struct EnvOptions {
    /// Simulated destination clusters (`c1` … `cN`), registered as `cluster-cN` Secrets.
    pub sim_clusters: usize,
    /// Repo-server processes.
    pub repo_servers: usize,
    /// Flags of every repo-server.
    pub repo_server_args: Vec<String>,
    /// Extra controller flags.
    pub controller_args: Vec<String>,
    /// Ready delay of the simulator's workload mode.
    pub workload_delay_ms: u64,
    /// Name of the controller log copies kept in `$KEELSON_E2E_LOG_DIR` (if set).
    pub label: &'static str,
}

impl Default for EnvOptions {
    fn default() -> Self {
        EnvOptions {
            sim_clusters: 1,
            repo_servers: 1,
            repo_server_args: ["--revision-cache-ttl", "1s"].map(String::from).to_vec(),
            controller_args: ["--app-resync", "5s", "--app-resync-jitter", "1s"]
                .map(String::from)
                .to_vec(),
            workload_delay_ms: 300,
            label: "controller",
        }
    }
}

/// One running environment; fields drop in order (controller first).
pub struct Env {
    pub controller: ControllerProcess,
    pub repos: Vec<RepoServerProcess>,
    pub sim: Sim,
    pub api: KubeApiServer,
    pub mgmt: kube::Client,
    pub started: Instant,
    pub label: &'static str,
}

impl Drop for Env {
    /// Keeps copies of the controller logs when `KEELSON_E2E_LOG_DIR` is set.
    fn drop(&mut self) {
        let Some(dir) = std::env::var_os("KEELSON_E2E_LOG_DIR") else {
            return;
        };
        let dir = std::path::PathBuf::from(dir);
        let _ = std::fs::create_dir_all(&dir);
        for (i, path) in self.controller.stderr_logs().iter().enumerate() {
            let _ = std::fs::copy(
                path,
                dir.join(format!("{}-controller-{}.log", self.label, i + 1)),
            );
        }
    }
}

/// A destination of an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    /// The management cluster (`https://kubernetes.default.svc`).
    InCluster,
    /// Simulated cluster `i` (0-based).
    Sim(usize),
}

fn project_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("argoproj.io", "v1alpha1", "AppProject"),
        "appprojects",
    )
}

impl Env {
    /// Starts everything and the controller, then returns.
    pub async fn start(options: EnvOptions) -> anyhow::Result<Env> {
        keelson_testbed::install_crypto_provider();
        let t0 = Instant::now();
        let o = options.clone();
        let api = tokio::task::spawn_blocking(KubeApiServer::start);
        let sim = tokio::task::spawn_blocking(move || {
            Sim::start(SimOptions {
                clusters: o.sim_clusters,
                tls: true,
                workload: true,
                extra_args: vec![
                    "--workload-delay-ms".to_string(),
                    o.workload_delay_ms.to_string(),
                ],
            })
        });
        let n = options.repo_servers.max(1);
        let repo_args = options.repo_server_args.clone();
        let repos = tokio::task::spawn_blocking(move || {
            let repo_args: Vec<&str> = repo_args.iter().map(String::as_str).collect();
            (0..n)
                .map(|_| RepoServerProcess::start(&repo_args))
                .collect::<Result<Vec<_>, _>>()
        });
        let api = api.await?.context("starting kube-apiserver")?;
        let sim = sim.await?.context("starting keelson sim")?;
        let repos = repos.await?.context("starting repo-servers")?;
        let mgmt = api.client()?;
        prepare_management(&mgmt, NS, sim.clusters(), sim.ca_pem()).await?;
        let kubeconfig = api.kubeconfig_path().to_path_buf();
        let addrs: Vec<_> = repos.iter().map(RepoServerProcess::grpc_addr).collect();
        let args = options.controller_args.clone();
        let controller = tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            ControllerProcess::start(&kubeconfig, &addrs, &args)
        })
        .await?
        .context("starting keelson controller")?;
        eprintln!(
            "environment ready after {:.1}s (controller logs in {})",
            t0.elapsed().as_secs_f64(),
            controller.log_dir().display()
        );
        Ok(Env {
            controller,
            repos,
            sim,
            api,
            mgmt,
            started: Instant::now(),
            label: options.label,
        })
    }

    /// Applications in the `argocd` namespace, as raw JSON objects.
    pub fn apps(&self) -> Api<DynamicObject> {
        Api::namespaced_with(self.mgmt.clone(), NS, &application_resource())
    }

    /// AppProjects in the `argocd` namespace.
    pub fn projects(&self) -> Api<DynamicObject> {
        Api::namespaced_with(self.mgmt.clone(), NS, &project_resource())
    }

    /// The server URL of a destination.
    pub fn server(&self, dest: Dest) -> String {
        match dest {
            Dest::InCluster => IN_CLUSTER.to_string(),
            Dest::Sim(i) => self.sim.clusters()[i].server.clone(),
        }
    }

    /// A client for a destination.
    pub fn client(&self, dest: Dest) -> anyhow::Result<kube::Client> {
        Ok(match dest {
            Dest::InCluster => self.mgmt.clone(),
            Dest::Sim(i) => self.sim.client(i)?,
        })
    }

    /// Creates a namespace on a destination (409 ignored).
    pub async fn namespace(&self, dest: Dest, name: &str) -> anyhow::Result<()> {
        let api: Api<Namespace> = Api::all(self.client(dest)?);
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Ok(create_ignoring_conflict(&api, &ns, "creating a namespace").await?)
    }

    /// Creates an Application from raw JSON.
    pub async fn create_app(&self, app: Value) -> anyhow::Result<()> {
        let obj: DynamicObject = serde_json::from_value(app)?;
        self.apps()
            .create(&PostParams::default(), &obj)
            .await
            .context("creating an application")?;
        Ok(())
    }

    /// Creates an AppProject from raw JSON.
    pub async fn create_project(&self, project: Value) -> anyhow::Result<()> {
        let obj: DynamicObject = serde_json::from_value(project)?;
        self.projects()
            .create(&PostParams::default(), &obj)
            .await
            .context("creating an appproject")?;
        Ok(())
    }

    /// Merge-patches an Application.
    pub async fn patch_app(&self, name: &str, patch: Value) -> anyhow::Result<()> {
        self.apps()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .with_context(|| format!("patching application {name}"))?;
        Ok(())
    }

    /// Requests a sync of `revision` through the Application's `operation` field.
    pub async fn sync_to(&self, name: &str, revision: &str) -> anyhow::Result<()> {
        self.patch_app(
            name,
            json!({"operation": {
                "initiatedBy": {"username": "e2e"},
                "sync": {"revision": revision}
            }}),
        )
        .await
    }

    /// Deletes an Application (foreground of the API object itself is irrelevant).
    pub async fn delete_app(&self, name: &str) -> anyhow::Result<()> {
        self.apps()
            .delete(name, &DeleteParams::default())
            .await
            .with_context(|| format!("deleting application {name}"))?;
        Ok(())
    }

    /// The Application as JSON, or None when it does not exist.
    pub async fn app(&self, name: &str) -> anyhow::Result<Option<Value>> {
        let obj = self.apps().get_opt(name).await?;
        Ok(obj.map(|o| serde_json::to_value(o).unwrap_or(Value::Null)))
    }

    /// Waits (bounded) until the Application satisfies `pred`; the error quotes its last
    /// status and the controller's last log lines.
    pub async fn wait_app(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let start = Instant::now();
        let mut last = Value::Null;
        while start.elapsed() < timeout {
            if let Some(app) = self.app(name).await? {
                if pred(&app) {
                    return Ok(app);
                }
                last = app;
            }
            tokio::time::sleep(POLL).await;
        }
        bail!(
            "application {name}: {what} not reached after {timeout:?}; last seen:\n{}",
            brief(&last)
        )
    }

    /// A live object on a destination as JSON (None when absent).
    pub async fn live(
        &self,
        dest: Dest,
        api_version: &str,
        kind: &str,
        ns: &str,
        name: &str,
    ) -> anyhow::Result<Option<Value>> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let plural = format!("{}s", kind.to_lowercase());
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(group, version, kind),
            &plural,
        );
        let api: Api<DynamicObject> = Api::namespaced_with(self.client(dest)?, ns, &ar);
        let obj = api.get_opt(name).await?;
        Ok(obj.map(|o| serde_json::to_value(o).unwrap_or(Value::Null)))
    }

    /// A ConfigMap on a destination (None when absent).
    pub async fn config_map(
        &self,
        dest: Dest,
        ns: &str,
        name: &str,
    ) -> anyhow::Result<Option<Value>> {
        self.live(dest, "v1", "ConfigMap", ns, name).await
    }

    /// Sets fault injection of simulated cluster `i` (`{"unreachable": true}` …).
    pub async fn sim_faults(&self, i: usize, settings: Value) -> anyhow::Result<()> {
        Ok(self.sim.set_faults(i, &settings).await?)
    }

    /// The controller's last log lines.
    pub fn controller_log(&self, n: usize) -> String {
        self.controller.log_tail(n)
    }

    /// Controller log lines (of every run) that contain `needle`, at most `max`.
    pub fn controller_log_grep(&self, needle: &str, max: usize) -> Vec<String> {
        let mut out = Vec::new();
        for path in self.controller.stderr_logs() {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            out.extend(
                text.lines()
                    .filter(|l| l.contains(needle))
                    .map(|l| l.chars().take(600).collect::<String>()),
            );
        }
        let skip = out.len().saturating_sub(max);
        out.split_off(skip)
    }
}

/// Polls `probe` until it yields `Some`, bounded by `timeout`.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    Ok(keelson_testbed::wait_until(what, timeout, POLL, probe).await?)
}

/// A compact view of an Application's status for error messages.
pub fn brief(app: &Value) -> String {
    let status = &app["status"];
    let resources: Vec<Value> = status["resources"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| {
                    json!([
                        r["kind"],
                        r["name"],
                        r["status"],
                        r["health"]["status"],
                        r["requiresPruning"],
                        r["hook"]
                    ])
                })
                .collect()
        })
        .unwrap_or_default();
    let view = json!({
        "operation": app["operation"],
        "finalizers": app["metadata"]["finalizers"],
        "deletionTimestamp": app["metadata"]["deletionTimestamp"],
        "sync": {"status": status["sync"]["status"], "revision": status["sync"]["revision"]},
        "health": status["health"],
        "conditions": status["conditions"],
        "resources": resources,
        "operationState": {
            "phase": status["operationState"]["phase"],
            "message": status["operationState"]["message"],
            "revision": status["operationState"]["syncResult"]["revision"],
            "resources": status["operationState"]["syncResult"]["resources"],
        },
        "history": status["history"],
    });
    let text = serde_json::to_string_pretty(&view).unwrap_or_default();
    text.chars().take(6000).collect()
}

/// Whether a condition of this type is present.
pub fn has_condition(app: &Value, type_: &str) -> bool {
    conditions(app).iter().any(|c| c["type"] == type_)
}

/// The operation requested for `revision` finished: no pending `operation`, a terminal
/// phase, and `operationState.operation.sync.revision` is that revision.
pub fn operation_done_at(app: &Value, revision: &str) -> bool {
    app["operation"].is_null()
        && matches!(op_phase(app), "Succeeded" | "Failed" | "Error")
        && app["status"]["operationState"]["operation"]["sync"]["revision"] == revision
}

/// `status.operationState.syncResult.revision`.
pub fn result_revision(app: &Value) -> &str {
    app["status"]["operationState"]["syncResult"]["revision"]
        .as_str()
        .unwrap_or("")
}

/// `status.resources` entry of a kind/name.
pub fn resource_status<'a>(app: &'a Value, kind: &str, name: &str) -> Option<&'a Value> {
    app["status"]["resources"]
        .as_array()?
        .iter()
        .find(|r| r["kind"] == kind && r["name"] == name)
}

/// An Application manifest.
pub fn app_manifest(
    name: &str,
    repo_url: &str,
    path: &str,
    server: &str,
    namespace: &str,
    sync_policy: Value,
) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "project": "default",
            "source": {"repoURL": repo_url, "path": path, "targetRevision": "HEAD"},
            "destination": {"server": server, "namespace": namespace},
            "syncPolicy": sync_policy,
        }
    })
}

/// A ConfigMap manifest (YAML) with one `key` and optional annotations.
pub fn cm_yaml(name: &str, value: &str, annotations: &[(&str, &str)]) -> String {
    let mut s = format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n");
    if !annotations.is_empty() {
        s.push_str("  annotations:\n");
        for (k, v) in annotations {
            s.push_str(&format!("    {k}: \"{v}\"\n"));
        }
    }
    s.push_str(&format!("data:\n  key: \"{value}\"\n"));
    s
}

/// A Job manifest (YAML) with annotations (hooks, simulator behaviour).
pub fn job_yaml(name: &str, annotations: &[(&str, &str)]) -> String {
    let mut s = format!("apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\n");
    if !annotations.is_empty() {
        s.push_str("  annotations:\n");
        for (k, v) in annotations {
            s.push_str(&format!("    {k}: \"{v}\"\n"));
        }
    }
    s.push_str(
        "spec:\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n      \
         containers:\n      - name: main\n        image: busybox:1.36\n        \
         command: [\"true\"]\n",
    );
    s
}

/// A Deployment manifest (YAML).
pub fn deployment_yaml(name: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  \
         replicas: 2\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    \
         metadata:\n      labels:\n        app: {name}\n    spec:\n      containers:\n      \
         - name: web\n        image: nginx:1.27\n        ports:\n        - containerPort: 80\n"
    )
}

/// A Git fixture repository with files written and committed in one call.
pub struct Fixture {
    pub repo: GitRepo,
}

impl Fixture {
    /// A fresh repository.
    pub fn new() -> anyhow::Result<Fixture> {
        Ok(Fixture {
            repo: GitRepo::init()?,
        })
    }

    /// The file:// URL.
    pub fn url(&self) -> String {
        self.repo.url()
    }

    /// Writes `files`, removes `removed`, commits and returns the new SHA.
    pub fn commit(
        &self,
        files: &[(&str, String)],
        removed: &[&str],
        msg: &str,
    ) -> anyhow::Result<String> {
        for (path, text) in files {
            self.repo.write(path, text)?;
        }
        for path in removed {
            self.repo.remove(path)?;
        }
        Ok(self.repo.commit(msg)?)
    }
}

/// A named scenario future borrowing the environment.
pub type Scenario<'a> = (
    &'static str,
    std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + 'a>>,
);

/// Runs named scenarios concurrently and fails with every failure (each printed).
pub async fn run_scenarios(env: &Env, scenarios: Vec<Scenario<'_>>) {
    let names: Vec<&str> = scenarios.iter().map(|(n, _)| *n).collect();
    let started = Instant::now();
    let results = futures::future::join_all(scenarios.into_iter().map(|(name, fut)| async move {
        let t = Instant::now();
        let r = fut.await;
        eprintln!(
            "scenario {name}: {} after {:.1}s",
            if r.is_ok() { "ok" } else { "FAILED" },
            t.elapsed().as_secs_f64()
        );
        r
    }))
    .await;
    let failures: Vec<String> = names
        .iter()
        .zip(results)
        .filter_map(|(n, r)| r.err().map(|e| format!("--- {n}: {e:#}")))
        .collect();
    eprintln!(
        "scenarios done after {:.1}s",
        started.elapsed().as_secs_f64()
    );
    if !failures.is_empty() {
        panic!(
            "{} scenario(s) failed:\n{}\n--- controller log tail:\n{}",
            failures.len(),
            failures.join("\n"),
            env.controller_log(40)
        );
    }
}
