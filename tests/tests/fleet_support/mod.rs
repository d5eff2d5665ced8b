//! Harness of the sharded-fleet end-to-end tests: a real kube-apiserver (Applications,
//! cluster Secrets and, for the Kubernetes backend, the member and claim Leases), a real
//! etcd for the etcd backend, one `keelson sim` process with many simulated clusters,
//! repo-server processes, a Git fixture with one directory per app, and several
//! `keelson controller` replicas (kill -9, restart, SIGSTOP/SIGCONT, join). Reads the
//! claims straight from the backend, and holds the safety checker over the replicas'
//! apply logs and their claim events.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

mod arrivals;
mod fixture;
mod safety;

pub use arrivals::{AppPredicate, Arrivals};
pub use keelson_testbed::application_fields::*;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use keelson_sharding::unit::{UnitId, unit_of_app};
use keelson_testbed::{
    ControllerProcess, Etcd, KubeApiServer, RepoServerProcess, Sim, SimOptions,
    application_resource, create_ignoring_conflict, prepare_management,
};
use kube::api::{Api, DynamicObject, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

pub use fixture::{Fixture, app_manifest};
pub use safety::{Safety, Write};

/// Namespace of Applications, cluster Secrets and the Kubernetes backend's Leases.
pub const NS: &str = "argocd";
/// Namespace of the apps' ConfigMaps on every simulated cluster.
pub const APP_NS: &str = "fleet";
/// Key prefix of the etcd backend.
pub const ETCD_PREFIX: &str = "/keelson-e2e";
/// Annotation splitting a cluster into buckets.
pub const BUCKETS_ANNOTATION: &str = "keelson.io/shard-buckets";
/// Poll interval of the wait loops.
pub const POLL: Duration = Duration::from_millis(500);

/// Where the fleet coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Leases in the management cluster.
    Kubernetes,
    /// etcd leases and keys.
    Etcd,
}

impl Backend {
    /// The `--coordination` value.
    pub fn flag(self) -> &'static str {
        match self {
            Backend::Kubernetes => "kubernetes",
            Backend::Etcd => "etcd",
        }
    }
}

/// What a fleet environment starts.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// Coordination backend.
    pub backend: Backend,
    /// Simulated clusters.
    pub clusters: usize,
    /// Member lease duration.
    pub lease: Duration,
    /// Resync period of every app.
    pub resync: Duration,
    /// `--max-apps-per-unit`.
    pub max_apps_per_unit: Option<u64>,
    /// Repo-server processes shared by every replica.
    pub repo_servers: usize,
}

/// One controller replica.
pub struct Replica {
    /// `--replica-id`.
    pub id: String,
    /// The process (kept after kill -9 for its logs).
    pub process: ControllerProcess,
    /// Its apply log.
    pub apply_log: PathBuf,
    /// Running (not killed).
    pub running: bool,
    /// Frozen by SIGSTOP.
    pub paused: bool,
}

/// A running fleet environment; fields drop in order (replicas first).
pub struct Fleet {
    pub replicas: Vec<Replica>,
    pub repos: Vec<RepoServerProcess>,
    pub sim: Sim,
    pub etcd: Option<Etcd>,
    pub api: KubeApiServer,
    pub mgmt: kube::Client,
    pub options: FleetOptions,
    /// Apply logs.
    pub dir: tempfile::TempDir,
    /// Server URL of each simulated cluster.
    pub servers: Vec<String>,
    /// Buckets per server (absent: whole cluster) as set by the annotation.
    pub buckets: BTreeMap<String, u32>,
    /// Destination server of every app, as last written by the test.
    pub destinations: BTreeMap<String, String>,
}

impl Drop for Fleet {
    /// Keeps copies of the controller logs and apply logs when `KEELSON_E2E_LOG_DIR` is set.
    fn drop(&mut self) {
        let Some(dir) = std::env::var_os("KEELSON_E2E_LOG_DIR") else {
            return;
        };
        let dir = PathBuf::from(dir).join(format!("fleet-{}", self.options.backend.flag()));
        let _ = std::fs::create_dir_all(&dir);
        for r in &self.replicas {
            for (i, path) in r.process.stderr_logs().iter().enumerate() {
                let _ = std::fs::copy(path, dir.join(format!("{}-{}.log", r.id, i + 1)));
            }
            let _ = std::fs::copy(&r.apply_log, dir.join(format!("{}.apply.jsonl", r.id)));
        }
    }
}

impl Fleet {
    /// Starts the management cluster, the simulator, the repo-servers and (etcd backend)
    /// etcd; registers the clusters. No replica runs yet.
    pub async fn start(options: FleetOptions) -> anyhow::Result<Fleet> {
        keelson_testbed::install_crypto_provider();
        let t0 = Instant::now();
        let api = tokio::task::spawn_blocking(KubeApiServer::start);
        let n = options.clusters;
        let sim = tokio::task::spawn_blocking(move || {
            Sim::start(SimOptions {
                clusters: n,
                tls: true,
                workload: false,
                extra_args: Vec::new(),
            })
        });
        let r = options.repo_servers.max(1);
        let repos = tokio::task::spawn_blocking(move || {
            (0..r)
                .map(|_| RepoServerProcess::start(&["--revision-cache-ttl", "1s"]))
                .collect::<Result<Vec<_>, _>>()
        });
        let etcd = match options.backend {
            Backend::Etcd => Some(
                tokio::task::spawn_blocking(Etcd::start)
                    .await?
                    .context("starting etcd")?,
            ),
            Backend::Kubernetes => None,
        };
        let api = api.await?.context("starting kube-apiserver")?;
        let sim = sim.await?.context("starting keelson sim")?;
        let repos = repos.await?.context("starting repo-servers")?;
        let mgmt = api.client()?;
        prepare_management(&mgmt, NS, sim.clusters(), sim.ca_pem()).await?;
        let servers: Vec<String> = sim
            .clusters()
            .iter()
            .map(|c| c.server.trim_end_matches('/').to_owned())
            .collect();
        for i in 0..servers.len() {
            let ns: Api<Namespace> = Api::all(sim.client(i)?);
            let namespace = Namespace {
                metadata: ObjectMeta {
                    name: Some(APP_NS.to_owned()),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            };
            create_ignoring_conflict(&ns, &namespace, "creating the apps namespace").await?;
        }
        eprintln!(
            "fleet[{}]: environment ready after {:.1}s",
            options.backend.flag(),
            t0.elapsed().as_secs_f64()
        );
        Ok(Fleet {
            replicas: Vec::new(),
            repos,
            sim,
            etcd,
            api,
            mgmt,
            options,
            dir: tempfile::Builder::new()
                .prefix("keelson-fleet-")
                .tempdir()?,
            servers,
            buckets: BTreeMap::new(),
            destinations: BTreeMap::new(),
        })
    }

    fn replica_args(&self, id: &str, apply_log: &std::path::Path) -> Vec<String> {
        let o = &self.options;
        let mut args: Vec<String> = vec![
            "--replica-id".into(),
            id.into(),
            "--coordination".into(),
            o.backend.flag().into(),
            "--lease-duration".into(),
            format!("{}ms", o.lease.as_millis()),
            "--apply-log".into(),
            apply_log.display().to_string(),
            "--app-resync".into(),
            format!("{}ms", o.resync.as_millis()),
            "--app-resync-jitter".into(),
            "1s".into(),
            "--log".into(),
            "info".into(),
        ];
        if let Some(max) = o.max_apps_per_unit {
            args.extend(["--max-apps-per-unit".into(), max.to_string()]);
        }
        if let Some(etcd) = &self.etcd {
            args.extend([
                "--etcd-endpoints".into(),
                etcd.endpoints().join(","),
                "--etcd-prefix".into(),
                ETCD_PREFIX.into(),
            ]);
        }
        args
    }

    /// Starts replicas with these ids concurrently.
    pub async fn add_replicas(&mut self, ids: &[&str]) -> anyhow::Result<()> {
        let kubeconfig = self.api.kubeconfig_path().to_path_buf();
        let addrs: Vec<_> = self
            .repos
            .iter()
            .map(RepoServerProcess::grpc_addr)
            .collect();
        let mut tasks = Vec::new();
        for id in ids {
            let apply_log = self.dir.path().join(format!("{id}.apply.jsonl"));
            let args = self.replica_args(id, &apply_log);
            let (kc, addrs, id) = (kubeconfig.clone(), addrs.clone(), (*id).to_owned());
            tasks.push(tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                ControllerProcess::start(&kc, &addrs, &args).map(|p| (id, p, apply_log))
            }));
        }
        for t in tasks {
            let (id, process, apply_log) = t.await?.context("starting a controller replica")?;
            eprintln!(
                "fleet: replica {id} logs in {}",
                process.log_dir().display()
            );
            self.replicas.push(Replica {
                id,
                process,
                apply_log,
                running: true,
                paused: false,
            });
        }
        Ok(())
    }

    /// The replica with this id.
    pub fn replica(&mut self, id: &str) -> anyhow::Result<&mut Replica> {
        self.replicas
            .iter_mut()
            .find(|r| r.id == id)
            .with_context(|| format!("no replica {id}"))
    }

    /// Kills a replica with SIGKILL.
    pub fn kill9(&mut self, id: &str) -> anyhow::Result<()> {
        let r = self.replica(id)?;
        r.process.kill9()?;
        r.running = false;
        Ok(())
    }

    /// Starts a killed replica again with the same flags (and apply log).
    pub async fn restart(&mut self, id: &str) -> anyhow::Result<()> {
        let idx = self
            .replicas
            .iter()
            .position(|r| r.id == id)
            .with_context(|| format!("no replica {id}"))?;
        let mut r = self.replicas.swap_remove(idx);
        let r = tokio::task::spawn_blocking(move || {
            let out = r.process.restart();
            (r, out)
        })
        .await?;
        let (mut replica, out) = r;
        out.context("restarting a replica")?;
        replica.running = true;
        replica.paused = false;
        self.replicas.push(replica);
        Ok(())
    }

    /// SIGSTOP.
    pub fn pause(&mut self, id: &str) -> anyhow::Result<()> {
        let r = self.replica(id)?;
        r.process.process().pause()?;
        r.paused = true;
        Ok(())
    }

    /// SIGCONT.
    pub fn resume(&mut self, id: &str) -> anyhow::Result<()> {
        let r = self.replica(id)?;
        r.process.process().resume()?;
        r.paused = false;
        Ok(())
    }

    /// Ids of running replicas (paused ones included).
    pub fn running_ids(&self) -> BTreeSet<String> {
        self.replicas
            .iter()
            .filter(|r| r.running)
            .map(|r| r.id.clone())
            .collect()
    }

    /// Ids of running, not paused replicas.
    pub fn live_ids(&self) -> BTreeSet<String> {
        self.replicas
            .iter()
            .filter(|r| r.running && !r.paused)
            .map(|r| r.id.clone())
            .collect()
    }

    /// The claims as stored by the backend: unit name → holder.
    pub async fn claims(&self) -> anyhow::Result<BTreeMap<String, String>> {
        match &self.etcd {
            None => {
                let api: Api<Lease> = Api::namespaced(self.mgmt.clone(), NS);
                let list = api
                    .list(&ListParams::default().labels("keelson.io/role=claim"))
                    .await?;
                let mut out = BTreeMap::new();
                for l in list.items {
                    let unit = l
                        .metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get("keelson.io/unit").cloned())
                        .context("claim lease without keelson.io/unit")?;
                    let holder = l
                        .spec
                        .and_then(|s| s.holder_identity)
                        .context("claim lease without holder")?;
                    out.insert(unit, holder);
                }
                Ok(out)
            }
            Some(etcd) => {
                let mut client = etcd_client::Client::connect(etcd.endpoints(), None).await?;
                let prefix = format!("{ETCD_PREFIX}/claims/");
                let resp = client
                    .get(
                        prefix.as_str(),
                        Some(etcd_client::GetOptions::new().with_prefix()),
                    )
                    .await?;
                let mut out = BTreeMap::new();
                for kv in resp.kvs() {
                    let unit = kv.key_str()?.strip_prefix(&prefix).unwrap_or_default();
                    out.insert(unit.to_owned(), kv.value_str()?.to_owned());
                }
                Ok(out)
            }
        }
    }

    /// Apps per server, from the destinations the test wrote.
    pub fn app_counts(&self) -> BTreeMap<String, u64> {
        let mut out: BTreeMap<String, u64> = BTreeMap::new();
        for s in self.destinations.values() {
            *out.entry(s.clone()).or_default() += 1;
        }
        out
    }

    /// How many units `server` is split into now: the annotation when it is 2 or more,
    /// else `ceil(apps / max)` past `--max-apps-per-unit`, else 1 (as issue 6 specifies).
    pub fn split_of(&self, server: &str) -> u32 {
        if let Some(k) = self.buckets.get(server).copied().filter(|k| *k > 1) {
            return k;
        }
        let apps = self.app_counts().get(server).copied().unwrap_or(0);
        match self.options.max_apps_per_unit {
            Some(max) if max > 0 && apps > max => u32::try_from(apps.div_ceil(max)).unwrap_or(1),
            _ => 1,
        }
    }

    /// The units that should exist now: name → unit.
    pub fn expected_units(&self) -> BTreeMap<String, UnitId> {
        let mut out = BTreeMap::new();
        for s in &self.servers {
            let k = self.split_of(s);
            if k <= 1 {
                let u = UnitId::cluster(s.clone());
                out.insert(u.name(), u);
            } else {
                for i in 0..k {
                    let u = UnitId::bucket(s.clone(), i, k);
                    out.insert(u.name(), u);
                }
            }
        }
        out
    }

    /// Unit names of every split the tests may produce (k in 1..=32), for decoding logs.
    pub fn unit_dictionary(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for s in &self.servers {
            let u = UnitId::cluster(s.clone());
            out.insert(u.name(), u.to_string());
            for k in 2..=32 {
                for i in 0..k {
                    let u = UnitId::bucket(s.clone(), i, k);
                    out.insert(u.name(), u.to_string());
                }
            }
        }
        out
    }

    /// The unit an app is in now (its destination and the current split).
    pub fn unit_of(&self, app: &str) -> Option<UnitId> {
        let server = self.destinations.get(app)?;
        Some(unit_of_app(
            server,
            &format!("{NS}/{app}"),
            self.split_of(server),
        ))
    }

    /// Apps per holder, from `claims` (unit name → holder) and the apps' units.
    pub fn apps_per_holder(&self, claims: &BTreeMap<String, String>) -> BTreeMap<String, u64> {
        let mut out: BTreeMap<String, u64> = BTreeMap::new();
        for app in self.destinations.keys() {
            let holder = self
                .unit_of(app)
                .and_then(|u| claims.get(&u.name()).cloned())
                .unwrap_or_else(|| "<none>".to_owned());
            *out.entry(holder).or_default() += 1;
        }
        out
    }

    /// Apps whose unit is held by `replica` in `claims`.
    pub fn apps_held_by(
        &self,
        claims: &BTreeMap<String, String>,
        replica: &str,
    ) -> BTreeSet<String> {
        self.destinations
            .keys()
            .filter(|app| {
                self.unit_of(app)
                    .and_then(|u| claims.get(&u.name()))
                    .is_some_and(|h| h == replica)
            })
            .cloned()
            .collect()
    }

    /// [`Fleet::wait_claims_stable`] with the usual bounds: claims unchanged for 4 s,
    /// within 60 s.
    pub async fn settled_claims(
        &self,
        must_hold: &[&str],
    ) -> anyhow::Result<BTreeMap<String, String>> {
        self.wait_claims_stable(Duration::from_secs(4), Duration::from_secs(60), must_hold)
            .await
    }

    /// Waits (bounded) until the claims cover exactly the expected units, every holder is
    /// a live replica, every live replica in `must_hold` holds something, and nothing
    /// changed for `quiet`. Returns the stable claims (unit name → holder).
    pub async fn wait_claims_stable(
        &self,
        quiet: Duration,
        timeout: Duration,
        must_hold: &[&str],
    ) -> anyhow::Result<BTreeMap<String, String>> {
        let start = Instant::now();
        let expected: BTreeSet<String> = self.expected_units().into_keys().collect();
        let live = self.live_ids();
        let mut last: Option<(BTreeMap<String, String>, Instant)> = None;
        let mut why = String::new();
        while start.elapsed() < timeout {
            let claims = self.claims().await?;
            let names: BTreeSet<String> = claims.keys().cloned().collect();
            let holders: BTreeSet<&String> = claims.values().collect();
            let good = names == expected
                && claims.values().all(|h| live.contains(h))
                && must_hold.iter().all(|m| holders.contains(&m.to_string()));
            if good {
                match &last {
                    Some((prev, since)) if *prev == claims => {
                        if since.elapsed() >= quiet {
                            return Ok(claims);
                        }
                    }
                    _ => last = Some((claims, Instant::now())),
                }
            } else {
                last = None;
                let dict = self.unit_dictionary();
                let missing: Vec<&String> = expected
                    .difference(&names)
                    .map(|n| dict.get(n).unwrap_or(n))
                    .collect();
                let extra = names.difference(&expected).count();
                let dead: Vec<&String> = claims.values().filter(|h| !live.contains(*h)).collect();
                why = format!(
                    "{} units unclaimed {missing:?}, {extra} stale claims, {} claims of non-live holders ({:?}), holders {holders:?}",
                    missing.len(),
                    dead.len(),
                    dead.iter().collect::<BTreeSet<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let mut views = String::new();
        for id in &live {
            let text = self.metrics(id).await.unwrap_or_default();
            views.push_str(&format!(
                "\n  {id} sees apps per replica {:?}",
                shard_apps_metric(&text)
            ));
        }
        bail!("claims not stable after {timeout:?}: {why}; each replica's view:{views}")
    }

    /// Applications in the `argocd` namespace.
    pub fn apps(&self) -> Api<DynamicObject> {
        Api::namespaced_with(self.mgmt.clone(), NS, &application_resource())
    }

    /// Every Application as JSON.
    pub async fn list_apps(&self) -> anyhow::Result<Vec<Value>> {
        let list = self.apps().list(&ListParams::default()).await?;
        Ok(list
            .items
            .into_iter()
            .map(|o| serde_json::to_value(o).unwrap_or(Value::Null))
            .collect())
    }

    /// Creates Applications concurrently.
    pub async fn create_apps(&mut self, apps: Vec<Value>) -> anyhow::Result<()> {
        for a in &apps {
            self.destinations
                .insert(name(a).to_owned(), dest_server(a).to_owned());
        }
        let api = self.apps();
        all_concurrently("creating", apps, |a| {
            let api = api.clone();
            async move {
                let obj: DynamicObject = serde_json::from_value(a)?;
                api.create(&PostParams::default(), &obj).await?;
                anyhow::Ok(())
            }
        })
        .await
    }

    /// Merge-patches Applications concurrently: (name, patch).
    pub async fn patch_apps(&self, patches: Vec<(String, Value)>) -> anyhow::Result<()> {
        let api = self.apps();
        all_concurrently("patching", patches, |(name, p)| {
            let api = api.clone();
            async move {
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&p))
                    .await?;
                anyhow::Ok(())
            }
        })
        .await
    }

    /// Points apps at other clusters: (app, server).
    pub async fn retarget(&mut self, moves: Vec<(String, String)>) -> anyhow::Result<()> {
        let patches = moves
            .iter()
            .map(|(app, server)| {
                (
                    app.clone(),
                    json!({"spec": {"destination": {"server": server, "namespace": APP_NS}}}),
                )
            })
            .collect();
        self.patch_apps(patches).await?;
        for (app, server) in moves {
            self.destinations.insert(app, server);
        }
        Ok(())
    }

    /// Sets the `keelson.io/shard-buckets` annotation of cluster `i`'s Secret.
    pub async fn set_buckets(&mut self, i: usize, k: u32) -> anyhow::Result<()> {
        let secrets: Api<Secret> = Api::namespaced(self.mgmt.clone(), NS);
        let name = format!("cluster-{}", self.sim.cluster(i)?.name);
        let patch = json!({"metadata": {"annotations": {BUCKETS_ANNOTATION: k.to_string()}}});
        secrets
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        self.buckets.insert(self.servers[i].clone(), k);
        Ok(())
    }

    /// Sets fault injection of simulated cluster `i`.
    pub async fn sim_faults(&self, i: usize, settings: Value) -> anyhow::Result<()> {
        Ok(self.sim.set_faults(i, &settings).await?)
    }

    /// `/metrics` of a replica (HTTP/1.0, so the body is not chunked).
    pub async fn metrics(&self, id: &str) -> anyhow::Result<String> {
        let addr = self
            .replicas
            .iter()
            .find(|r| r.id == id)
            .with_context(|| format!("no replica {id}"))?
            .process
            .metrics_addr();
        keelson_bench::fleet_env::scrape(addr).await
    }

    /// Every "took unit" / "released unit" event in every run of every replica.
    pub fn claim_events(&self) -> Vec<safety::ClaimEvent> {
        let dict = self.unit_dictionary();
        let mut out = Vec::new();
        for r in &self.replicas {
            for path in r.process.stderr_logs() {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                out.extend(safety::parse_claim_events(&r.id, &text, &dict));
            }
        }
        out.sort_by_key(|e| e.at);
        out
    }

    /// Every write in every replica's apply log.
    pub fn writes(&self) -> anyhow::Result<Vec<Write>> {
        let mut out = Vec::new();
        for r in &self.replicas {
            let text = std::fs::read_to_string(&r.apply_log).unwrap_or_default();
            out.extend(safety::parse_apply_log(&text)?);
        }
        out.sort_by_key(|w| w.start);
        Ok(out)
    }

    /// Lines of a replica's logs (every run) containing `needle`, at most `max` (last ones).
    pub fn log_grep(&self, id: &str, needle: &str, max: usize) -> Vec<String> {
        let mut out = Vec::new();
        for r in self.replicas.iter().filter(|r| r.id == id) {
            for path in r.process.stderr_logs() {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                out.extend(
                    text.lines()
                        .filter(|l| l.contains(needle))
                        .map(|l| safety::strip_ansi(l).chars().take(400).collect::<String>()),
                );
            }
        }
        let skip = out.len().saturating_sub(max);
        out.split_off(skip)
    }
}

/// Runs `op` on every item, 16 at a time; fails naming the first few errors.
async fn all_concurrently<T, F, Fut>(verb: &str, items: Vec<T>, op: F) -> anyhow::Result<()>
where
    F: FnMut(T) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    use futures::StreamExt;
    let failed: Vec<String> = futures::stream::iter(items)
        .map(op)
        .buffer_unordered(16)
        .filter_map(|r| async move { r.err().map(|e| format!("{e:#}")) })
        .collect()
        .await;
    if !failed.is_empty() {
        bail!(
            "{verb} {} apps failed: {:?}",
            failed.len(),
            &failed[..failed.len().min(3)]
        );
    }
    Ok(())
}

/// Polls `probe` until it yields `Some`, bounded by `timeout`.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    Ok(keelson_testbed::wait_until(what, timeout, POLL, probe).await?)
}

/// `metadata.name`.
pub fn name(app: &Value) -> &str {
    app["metadata"]["name"].as_str().unwrap_or("")
}

/// `spec.destination.server`.
pub fn dest_server(app: &Value) -> &str {
    app["spec"]["destination"]["server"].as_str().unwrap_or("")
}

/// Max / mean of per-replica loads over `replicas` (absent ones count 0).
pub fn max_over_mean(per: &BTreeMap<String, u64>, replicas: &BTreeSet<String>) -> f64 {
    let loads: Vec<u64> = replicas
        .iter()
        .map(|r| per.get(r).copied().unwrap_or(0))
        .collect();
    let total: u64 = loads.iter().sum();
    let max = loads.iter().copied().max().unwrap_or(0);
    if total == 0 || loads.is_empty() {
        return 1.0;
    }
    max as f64 * loads.len() as f64 / total as f64
}

/// `keelson_shard_apps{replica="…"}` values from a /metrics text.
pub fn shard_apps_metric(text: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("keelson_shard_apps{replica=\"") else {
            continue;
        };
        let Some((replica, value)) = rest.split_once("\"}") else {
            continue;
        };
        if let Ok(v) = value.trim().parse::<f64>() {
            out.insert(replica.to_owned(), v as u64);
        }
    }
    out
}
