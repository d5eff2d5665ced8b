//! Workload mode of a simulated cluster: one task per cluster playing the kubelet and
//! the built-in controllers (deployment, replicaset, statefulset, daemonset, job, volume
//! binding, load balancer). It watches the cluster's store events, writes statuses through
//! the cluster's own verbs (so resourceVersions, managedFields and watch events are real)
//! and keeps its readiness timers in one ordered map, not one task per object.
//!
//! The status shapes and child objects are planned by the pure functions of
//! `workload::status` (apps controllers) and `workload::kubelet` (Jobs, Pods, PVCs,
//! load balancers); this file only schedules and writes.

use crate::api_error::ApiError;
use crate::cluster::Cluster;
use crate::gc::{self, DeleteOptions};
use crate::store::{Event, EventType, object_name};
use crate::verbs::{self, PatchKind, WriteOptions};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

mod kubelet;
mod status;

use status::Kind;

/// Field manager of every write the workload controllers make.
const MANAGER: &str = "keelson-sim-controllers";
/// Attempts of a read-modify-write before giving up on conflicts.
const MAX_ATTEMPTS: usize = 8;
/// Objects handled between yields to the runtime, and timers fired per wake-up.
const BATCH: usize = 256;
/// Pods created or deleted for one ReplicaSet in one pass.
const MAX_PODS_PER_PASS: i64 = 1_000;

/// Settings of the workload mode ("kubelet and controllers" behaviour).
#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    /// How long before a workload reports available, a Job completes, a Pod runs, a PVC
    /// binds or a load balancer gets its address. Objects may override it with the
    /// annotation `sim.keelson.io/ready-delay-ms`.
    pub ready_delay: Duration,
    /// Also create ReplicaSets (for Deployments) and Pods (for ReplicaSets and Jobs).
    pub pods: bool,
    /// Address written into the status of LoadBalancer Services and Ingresses (a
    /// documentation address; it is never contacted).
    pub ingress_ip: String,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        Self {
            ready_delay: Duration::from_secs(1),
            pods: false,
            ingress_ip: "192.0.2.10".into(),
        }
    }
}

/// Failures of one controller action (logged; the task carries on).
#[derive(Debug, thiserror::Error)]
enum WorkloadError {
    /// The cluster does not serve the resource.
    #[error("resource {0} is not served")]
    NotServed(String),
    /// A write was refused.
    #[error("writing {what} failed")]
    Write {
        /// The object written.
        what: String,
        /// The API error.
        #[source]
        source: Box<ApiError>,
    },
    /// A read-modify-write kept meeting newer versions.
    #[error("writing {0} kept conflicting with other writers")]
    Conflicts(String),
}

/// Starts the workload controllers of `cluster`. The task ends when the cluster is
/// dropped (or when the handle is aborted).
pub fn spawn(cluster: Arc<Cluster>, cfg: WorkloadConfig) -> tokio::task::JoinHandle<()> {
    // Subscribe before returning, so objects created right after spawn are seen.
    let events = cluster.lock().store.subscribe();
    let controller = Controller {
        cluster: Arc::downgrade(&cluster),
        cfg,
        timers: Timers::default(),
    };
    drop(cluster);
    tokio::spawn(controller.run(events))
}

/// Kind, namespace and name of an object.
type Key = (Kind, String, String);

fn key_of(kind: Kind, obj: &Value) -> Key {
    let (ns, name) = object_name(obj);
    (kind, ns, name)
}

/// A pending readiness timer.
#[derive(Debug)]
struct Pending {
    at: Instant,
    seq: u64,
    token: String,
}

/// At most one readiness timer per object, ordered by deadline.
#[derive(Debug, Default)]
struct Timers {
    queue: BTreeMap<(Instant, u64), Key>,
    pending: HashMap<Key, Pending>,
    seq: u64,
}

impl Timers {
    /// Sets the object's timer, unless one for the same change (`token`) is pending.
    fn schedule(&mut self, key: Key, token: String, at: Instant) {
        if let Some(p) = self.pending.get(&key) {
            if p.token == token {
                return;
            }
            self.queue.remove(&(p.at, p.seq));
        }
        self.seq += 1;
        self.queue.insert((at, self.seq), key.clone());
        self.pending.insert(
            key,
            Pending {
                at,
                seq: self.seq,
                token,
            },
        );
    }

    fn cancel(&mut self, key: &Key) {
        if let Some(p) = self.pending.remove(key) {
            self.queue.remove(&(p.at, p.seq));
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.queue.first_key_value().map(|((at, _), _)| *at)
    }

    /// The earliest timer due at `now`, removed.
    fn pop_due(&mut self, now: Instant) -> Option<(Key, String)> {
        let (&(at, seq), _) = self.queue.first_key_value()?;
        if at > now {
            return None;
        }
        let key = self.queue.remove(&(at, seq))?;
        let pending = self.pending.remove(&key)?;
        Some((key, pending.token))
    }

    fn len(&self) -> usize {
        self.pending.len()
    }
}

/// The controllers of one cluster.
struct Controller {
    cluster: Weak<Cluster>,
    cfg: WorkloadConfig,
    timers: Timers,
}

impl Controller {
    async fn run(mut self, mut events: tokio::sync::broadcast::Receiver<Arc<Event>>) {
        if !self.scan().await {
            return;
        }
        loop {
            let deadline = self.timers.next_deadline();
            let sleep_until =
                deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                received = events.recv() => match received {
                    Ok(event) => {
                        if !self.on_event(&event) {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "workload controllers lagged; rescanning");
                        if !self.scan().await {
                            return;
                        }
                    }
                    Err(RecvError::Closed) => return,
                },
                () = tokio::time::sleep_until(sleep_until), if deadline.is_some() => {
                    if !self.fire_due() {
                        return;
                    }
                }
            }
        }
    }

    /// Reconciles every existing object of the handled kinds. False once the cluster is gone.
    async fn scan(&mut self) -> bool {
        for kind in Kind::ALL {
            let objects: Vec<Arc<Value>> = {
                let Some(cluster) = self.cluster.upgrade() else {
                    return false;
                };
                let state = cluster.lock();
                state
                    .store
                    .range(&kind.resource(), None, None)
                    .map(|(_, o)| Arc::clone(o))
                    .collect()
            };
            for (i, obj) in objects.iter().enumerate() {
                if !self.reconcile(kind, obj) {
                    return false;
                }
                if i % BATCH == BATCH - 1 {
                    tokio::task::yield_now().await;
                }
            }
        }
        tracing::debug!(timers = self.timers.len(), "workload scan done");
        true
    }

    fn on_event(&mut self, event: &Event) -> bool {
        let Some(kind) = Kind::of(&event.resource) else {
            return true;
        };
        if event.kind == EventType::Deleted {
            self.timers.cancel(&key_of(kind, &event.object));
            return true;
        }
        self.reconcile(kind, &event.object)
    }

    /// Answers one object's current version: children (pods mode), the immediate status
    /// after a change, and the readiness timer. False once the cluster is gone.
    fn reconcile(&mut self, kind: Kind, obj: &Value) -> bool {
        let Some(cluster) = self.cluster.upgrade() else {
            return false;
        };
        let key = key_of(kind, obj);
        if obj["metadata"].get("deletionTimestamp").is_some() {
            self.timers.cancel(&key);
            return true;
        }
        if self.cfg.pods
            && let Err(e) = sync_children(&cluster, kind, obj)
        {
            tracing::warn!(error = %e, cause = ?std::error::Error::source(&e), "workload: creating children failed");
        }
        let now = verbs::now();
        let Some(ready) = status::desired_status(kind, obj, &now, true, &self.cfg.ingress_ip)
        else {
            self.timers.cancel(&key);
            return true;
        };
        let bound = kind != Kind::PersistentVolumeClaim || kubelet::pvc_bound(obj).is_none();
        if bound && obj.get("status") == Some(&ready) {
            self.timers.cancel(&key);
            return true;
        }
        if status::needs_progress(kind, obj)
            && let Err(e) = write_status(&cluster, &key, false, &self.cfg.ingress_ip)
        {
            tracing::warn!(error = %e, cause = ?std::error::Error::source(&e), "workload: writing status failed");
        }
        match self.delay(kind, obj) {
            Some(delay) => {
                self.timers
                    .schedule(key, status::token(kind, obj), Instant::now() + delay)
            }
            None => self.timers.cancel(&key),
        }
        true
    }

    /// The object's ready delay; `None` when it is held back (never-ready, paused).
    fn delay(&self, kind: Kind, obj: &Value) -> Option<Duration> {
        if status::held(kind, obj) {
            return None;
        }
        Some(status::delay_override_ms(obj).map_or(self.cfg.ready_delay, Duration::from_millis))
    }

    /// Fires the timers that are due (a bounded batch). False once the cluster is gone.
    fn fire_due(&mut self) -> bool {
        let now = Instant::now();
        for _ in 0..BATCH {
            let Some((key, token)) = self.timers.pop_due(now) else {
                break;
            };
            let Some(cluster) = self.cluster.upgrade() else {
                return false;
            };
            if let Err(e) = finish(&cluster, &key, &token, &self.cfg.ingress_ip) {
                tracing::warn!(error = %e, cause = ?std::error::Error::source(&e), "workload: writing final status failed");
            }
        }
        true
    }
}

/// Makes an object ready: its timer for change `token` is due.
fn finish(
    cluster: &Cluster,
    key: &Key,
    token: &str,
    ingress_ip: &str,
) -> Result<(), WorkloadError> {
    let (kind, ns, name) = key;
    let Some(obj) = read(cluster, *kind, ns, name) else {
        return Ok(());
    };
    // A newer change (its event still queued) restarts the clock instead.
    if status::token(*kind, &obj) != token || obj["metadata"].get("deletionTimestamp").is_some() {
        return Ok(());
    }
    if *kind == Kind::PersistentVolumeClaim {
        modify(cluster, *kind, ns, name, false, kubelet::pvc_bound)?;
    }
    write_status(cluster, key, true, ingress_ip)
}

/// Writes the status the controllers want (`ready` or the immediate one) to the status
/// subresource, re-reading on conflicts.
fn write_status(
    cluster: &Cluster,
    key: &Key,
    ready: bool,
    ingress_ip: &str,
) -> Result<(), WorkloadError> {
    let (kind, ns, name) = key;
    let now = verbs::now();
    modify(cluster, *kind, ns, name, true, |obj| {
        if !ready && !status::needs_progress(*kind, obj) {
            return None;
        }
        let next_status = status::desired_status(*kind, obj, &now, ready, ingress_ip)?;
        if obj.get("status") == Some(&next_status) {
            return None;
        }
        let mut next = obj.clone();
        next["status"] = next_status;
        Some(next)
    })
}

/// The stored object.
fn read(cluster: &Cluster, kind: Kind, ns: &str, name: &str) -> Option<Arc<Value>> {
    cluster
        .lock()
        .store
        .get(&kind.resource(), ns, name)
        .cloned()
}

fn served(
    cluster: &Cluster,
    kind: Kind,
) -> Result<Arc<crate::resources::ResourceType>, WorkloadError> {
    let (group, version, plural) = kind.path();
    cluster
        .lock()
        .find(group, version, plural)
        .ok_or_else(|| WorkloadError::NotServed(format!("{plural}.{group}")))
}

/// Read-modify-write of one object (or its status): `change` returns the wanted object,
/// or `None` when nothing is to be done. Written as a JSON merge patch guarded by the
/// read resourceVersion, so a concurrent write is a 409 (retried) and a deletion a 404
/// (ignored) — never a re-creation.
fn modify(
    cluster: &Cluster,
    kind: Kind,
    ns: &str,
    name: &str,
    status_only: bool,
    change: impl Fn(&Value) -> Option<Value>,
) -> Result<(), WorkloadError> {
    let rt = served(cluster, kind)?;
    let opts = WriteOptions {
        manager: MANAGER.into(),
        subresource: status_only.then(|| "status".into()),
        ..WriteOptions::default()
    };
    for _ in 0..MAX_ATTEMPTS {
        let Some(current) = read(cluster, kind, ns, name) else {
            return Ok(());
        };
        let Some(next) = change(&current) else {
            return Ok(());
        };
        let mut patch = status::merge_diff(&current, &next);
        patch["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
        match verbs::patch(
            cluster,
            &rt,
            Some(ns),
            name,
            PatchKind::Merge,
            &patch,
            &opts,
        ) {
            Ok(_) => return Ok(()),
            Err(e) if e.code == 409 => continue,
            Err(e) if e.code == 404 => return Ok(()),
            Err(source) => {
                return Err(WorkloadError::Write {
                    what: format!("{}/{ns}/{name}", rt.plural),
                    source: Box::new(source),
                });
            }
        }
    }
    Err(WorkloadError::Conflicts(format!(
        "{}/{ns}/{name}",
        kind.path().2
    )))
}

fn create(cluster: &Cluster, kind: Kind, ns: &str, body: Value) -> Result<(), WorkloadError> {
    let rt = served(cluster, kind)?;
    match verbs::create(cluster, &rt, Some(ns), body, &WriteOptions::system(MANAGER)) {
        // 409: created meanwhile; 404/403: the namespace is gone or going.
        Ok(_) => Ok(()),
        Err(e) if matches!(e.code, 403 | 404 | 409) => Ok(()),
        Err(source) => Err(WorkloadError::Write {
            what: format!("{} in {ns}", rt.plural),
            source: Box::new(source),
        }),
    }
}

fn delete(cluster: &Cluster, kind: Kind, obj: &Value) -> Result<(), WorkloadError> {
    let rt = served(cluster, kind)?;
    let (ns, name) = object_name(obj);
    match gc::delete(cluster, &rt, Some(&ns), &name, &DeleteOptions::default()) {
        Ok(_) => Ok(()),
        Err(e) if e.code == 404 => Ok(()),
        Err(source) => Err(WorkloadError::Write {
            what: format!("{}/{ns}/{name}", rt.plural),
            source: Box::new(source),
        }),
    }
}

/// Objects of `kind` whose controller owner is `owner`, by name.
fn owned(cluster: &Cluster, owner: &Value, kind: Kind) -> Vec<Arc<Value>> {
    let Some(uid) = owner["metadata"]["uid"].as_str() else {
        return Vec::new();
    };
    let resource = kind.resource();
    let state = cluster.lock();
    let mut children: Vec<Arc<Value>> = state
        .store
        .dependents_of(uid)
        .iter()
        .filter_map(|d| state.store.locate(d))
        .filter(|loc| loc.resource == resource)
        .filter_map(|loc| {
            state
                .store
                .get(&loc.resource, &loc.namespace, &loc.name)
                .cloned()
        })
        .filter(|child| {
            child["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| {
                    refs.iter().any(|r| {
                        r["uid"].as_str() == Some(uid) && r["controller"].as_bool() == Some(true)
                    })
                })
        })
        .collect();
    children.sort_by(|a, b| {
        a["metadata"]["name"]
            .as_str()
            .cmp(&b["metadata"]["name"].as_str())
    });
    children
}

/// Pods mode: the children the deployment, replicaset and job controllers keep.
fn sync_children(cluster: &Cluster, kind: Kind, obj: &Value) -> Result<(), WorkloadError> {
    match kind {
        Kind::Deployment => sync_deployment(cluster, obj),
        Kind::ReplicaSet => sync_replicaset(cluster, obj),
        Kind::Job => sync_job(cluster, obj),
        _ => Ok(()),
    }
}

/// The ReplicaSet of the current template gets all replicas; older ones are scaled to 0.
fn sync_deployment(cluster: &Cluster, deploy: &Value) -> Result<(), WorkloadError> {
    if deploy["spec"]["paused"].as_bool() == Some(true) {
        return Ok(());
    }
    let ns = deploy["metadata"]["namespace"].as_str().unwrap_or_default();
    let current = status::replicaset_name(deploy);
    let want = status::spec_replicas(deploy);
    let sets = owned(cluster, deploy, Kind::ReplicaSet);
    match sets
        .iter()
        .find(|rs| rs["metadata"]["name"].as_str() == Some(&current))
    {
        None => {
            let revision = sets
                .iter()
                .filter_map(|rs| {
                    status::annotation(rs, "deployment.kubernetes.io/revision")
                        .and_then(|r| r.parse::<i64>().ok())
                })
                .max()
                .unwrap_or(0)
                + 1;
            create(
                cluster,
                Kind::ReplicaSet,
                ns,
                status::replicaset_for(deploy, revision),
            )?;
        }
        Some(rs) if status::spec_replicas(rs) != want => scale(cluster, rs, want)?,
        Some(_) => {}
    }
    for old in sets
        .iter()
        .filter(|rs| rs["metadata"]["name"].as_str() != Some(&current))
    {
        if status::spec_replicas(old) != 0 {
            scale(cluster, old, 0)?;
        }
    }
    Ok(())
}

fn scale(cluster: &Cluster, rs: &Value, replicas: i64) -> Result<(), WorkloadError> {
    let (ns, name) = object_name(rs);
    modify(cluster, Kind::ReplicaSet, &ns, &name, false, |current| {
        if status::spec_replicas(current) == replicas {
            return None;
        }
        let mut next = current.clone();
        next["spec"]["replicas"] = replicas.into();
        next["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] =
            replicas.to_string().into();
        Some(next)
    })
}

/// Pods of a ReplicaSet: created up to `spec.replicas`, surplus ones deleted.
fn sync_replicaset(cluster: &Cluster, rs: &Value) -> Result<(), WorkloadError> {
    let ns = rs["metadata"]["namespace"].as_str().unwrap_or_default();
    let want = status::spec_replicas(rs);
    let pods: Vec<Arc<Value>> = owned(cluster, rs, Kind::Pod)
        .into_iter()
        .filter(|p| p["metadata"].get("deletionTimestamp").is_none())
        .collect();
    let have = i64::try_from(pods.len()).unwrap_or(i64::MAX);
    for _ in 0..(want - have).clamp(0, MAX_PODS_PER_PASS) {
        create(cluster, Kind::Pod, ns, status::replicaset_pod(rs))?;
    }
    let surplus = usize::try_from((have - want).clamp(0, MAX_PODS_PER_PASS)).unwrap_or(0);
    for pod in pods.iter().rev().take(surplus) {
        delete(cluster, Kind::Pod, pod)?;
    }
    Ok(())
}

/// A running Job has one Pod.
fn sync_job(cluster: &Cluster, job: &Value) -> Result<(), WorkloadError> {
    let finished = job["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter().any(|c| {
            matches!(c["type"].as_str(), Some("Complete" | "Failed"))
                && c["status"].as_str() == Some("True")
        })
    });
    if finished
        || job["spec"]["suspend"].as_bool() == Some(true)
        || job["metadata"]["uid"].as_str().is_none()
    {
        return Ok(());
    }
    if owned(cluster, job, Kind::Pod).is_empty() {
        let ns = job["metadata"]["namespace"].as_str().unwrap_or_default();
        create(cluster, Kind::Pod, ns, kubelet::job_pod(job))?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::cluster::StoreLimits;
    use serde_json::json;

    fn cluster_with_workload(pods: bool) -> (Arc<Cluster>, tokio::task::JoinHandle<()>) {
        let cluster = Cluster::new("c1", "t", StoreLimits::default());
        let cfg = WorkloadConfig {
            ready_delay: Duration::from_millis(50),
            pods,
            ..WorkloadConfig::default()
        };
        let task = spawn(Arc::clone(&cluster), cfg);
        (cluster, task)
    }

    fn create_obj(cluster: &Cluster, kind: Kind, body: Value) -> Value {
        let rt = served(cluster, kind).unwrap();
        verbs::create(
            cluster,
            &rt,
            Some("default"),
            body,
            &WriteOptions::system("test"),
        )
        .unwrap()
    }

    /// Polls the store (at most 5 s) until `pred` holds for the object.
    async fn wait_for(
        cluster: &Cluster,
        kind: Kind,
        name: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(obj) = read(cluster, kind, "default", name)
                && pred(&obj)
            {
                return (*obj).clone();
            }
            assert!(
                Instant::now() < deadline,
                "{kind:?} {name} did not reach the expected state: {:?}",
                read(cluster, kind, "default", name)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn deployment(name: &str, replicas: i64, image: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": image}]}}}})
    }

    fn job(name: &str, annotations: Value) -> Value {
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "annotations": annotations},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "m:1"}]}}}})
    }

    fn condition<'a>(obj: &'a Value, ty: &str) -> Option<&'a Value> {
        obj["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == ty)
    }

    #[test]
    fn timers_keep_one_entry_per_object_in_deadline_order() {
        let mut timers = Timers::default();
        let now = Instant::now();
        let a: Key = (Kind::Pod, "ns".into(), "a".into());
        let b: Key = (Kind::Pod, "ns".into(), "b".into());
        timers.schedule(a.clone(), "u/1".into(), now + Duration::from_millis(20));
        timers.schedule(b.clone(), "v".into(), now + Duration::from_millis(10));
        timers.schedule(a.clone(), "u/1".into(), now + Duration::from_millis(99));
        assert_eq!(timers.len(), 2);
        assert_eq!(
            timers.next_deadline(),
            Some(now + Duration::from_millis(10))
        );
        timers.schedule(b.clone(), "v2".into(), now + Duration::from_millis(30));
        assert_eq!(timers.len(), 2);
        assert_eq!(timers.queue.len(), 2, "the replaced deadline is gone");
        assert!(timers.pop_due(now).is_none());
        assert_eq!(
            timers.pop_due(now + Duration::from_millis(25)),
            Some((a.clone(), "u/1".to_owned()))
        );
        timers.cancel(&b);
        assert!(timers.pop_due(now + Duration::from_secs(1)).is_none());
        assert_eq!(timers.len(), 0);
        assert!(timers.next_deadline().is_none());
    }

    #[tokio::test]
    async fn deployment_becomes_available_after_progressing() {
        let (cluster, task) = cluster_with_workload(false);
        let created = create_obj(&cluster, Kind::Deployment, deployment("web", 3, "nginx:1"));
        let progressing = wait_for(&cluster, Kind::Deployment, "web", |d| {
            d["status"]["observedGeneration"] == 1
        })
        .await;
        assert_eq!(
            condition(&progressing, "Progressing").unwrap()["reason"],
            "ReplicaSetUpdated"
        );
        let done = wait_for(&cluster, Kind::Deployment, "web", |d| {
            d["status"]["availableReplicas"] == 3
        })
        .await;
        assert_eq!(done["status"]["readyReplicas"], 3);
        assert_eq!(done["status"]["updatedReplicas"], 3);
        assert_eq!(condition(&done, "Available").unwrap()["status"], "True");
        let progressed = condition(&done, "Progressing").unwrap();
        assert_eq!(progressed["reason"], "NewReplicaSetAvailable");
        let hash = status::template_hash(&created["spec"]["template"]);
        assert_eq!(
            progressed["message"],
            format!("ReplicaSet \"web-{hash}\" has successfully progressed.")
        );
        let managers: Vec<&str> = done["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["manager"].as_str())
            .collect();
        assert!(managers.contains(&MANAGER), "{managers:?}");

        // A spec change restarts the rollout with a new observed generation.
        let rt = served(&cluster, Kind::Deployment).unwrap();
        let patch = json!({"spec": {"replicas": 5}});
        verbs::patch(
            &cluster,
            &rt,
            Some("default"),
            "web",
            PatchKind::Merge,
            &patch,
            &WriteOptions::system("test"),
        )
        .unwrap();
        let scaled = wait_for(&cluster, Kind::Deployment, "web", |d| {
            d["status"]["availableReplicas"] == 5
        })
        .await;
        assert_eq!(scaled["status"]["observedGeneration"], 2);
        task.abort();
    }

    #[tokio::test]
    async fn jobs_complete_or_fail_and_suspended_jobs_wait() {
        let (cluster, task) = cluster_with_workload(false);
        create_obj(&cluster, Kind::Job, job("ok", json!({})));
        create_obj(
            &cluster,
            Kind::Job,
            job("bad", json!({status::ANN_FAIL: "true"})),
        );
        let mut suspended = job("later", json!({}));
        suspended["spec"]["suspend"] = true.into();
        create_obj(&cluster, Kind::Job, suspended);
        let ok = wait_for(&cluster, Kind::Job, "ok", |j| {
            condition(j, "Complete").is_some()
        })
        .await;
        assert_eq!(ok["status"]["succeeded"], 1);
        assert!(
            ok["status"]["completionTime"].is_string() && ok["status"]["startTime"].is_string()
        );
        assert!(condition(&ok, "SuccessCriteriaMet").is_some());
        let bad = wait_for(&cluster, Kind::Job, "bad", |j| {
            condition(j, "Failed").is_some()
        })
        .await;
        assert_eq!(bad["status"]["failed"], 1);
        assert_eq!(
            condition(&bad, "Failed").unwrap()["reason"],
            "BackoffLimitExceeded"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
        let later = read(&cluster, Kind::Job, "default", "later").unwrap();
        assert!(
            later["status"]["startTime"].is_null() && condition(&later, "Complete").is_none(),
            "{later}"
        );
        task.abort();
    }

    #[tokio::test]
    async fn pvc_binds_and_load_balancer_gets_ip() {
        let (cluster, task) = cluster_with_workload(false);
        let pvc = create_obj(
            &cluster,
            Kind::PersistentVolumeClaim,
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}}}),
        );
        create_obj(
            &cluster,
            Kind::Service,
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb"},
                "spec": {"type": "LoadBalancer", "selector": {"app": "web"}, "ports": [{"port": 80}]}}),
        );
        let bound = wait_for(&cluster, Kind::PersistentVolumeClaim, "data", |p| {
            p["status"]["phase"] == "Bound"
        })
        .await;
        assert_eq!(bound["status"]["capacity"]["storage"], "2Gi");
        assert_eq!(bound["status"]["accessModes"], json!(["ReadWriteOnce"]));
        assert_eq!(
            bound["spec"]["volumeName"],
            format!("pvc-{}", pvc["metadata"]["uid"].as_str().unwrap())
        );
        create_obj(
            &cluster,
            Kind::Ingress,
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web"},
                "spec": {"defaultBackend": {"service": {"name": "lb", "port": {"number": 80}}}}}),
        );
        let ing = wait_for(&cluster, Kind::Ingress, "web", |i| {
            !i["status"]["loadBalancer"]["ingress"].is_null()
        })
        .await;
        assert_eq!(
            ing["status"]["loadBalancer"]["ingress"][0]["ip"],
            "192.0.2.10"
        );
        let lb = wait_for(&cluster, Kind::Service, "lb", |s| {
            !s["status"]["loadBalancer"]["ingress"].is_null()
        })
        .await;
        assert_eq!(
            lb["status"]["loadBalancer"]["ingress"][0]["ip"],
            "192.0.2.10"
        );
        task.abort();
    }

    #[tokio::test]
    async fn never_ready_and_deleted_objects_get_no_final_status() {
        let (cluster, task) = cluster_with_workload(false);
        let mut held = deployment("held", 1, "x:1");
        held["metadata"]["annotations"] = json!({status::ANN_NEVER_READY: "true"});
        create_obj(&cluster, Kind::Deployment, held);
        let mut slow = deployment("gone", 1, "x:1");
        slow["metadata"]["annotations"] = json!({status::ANN_READY_DELAY: "100"});
        create_obj(&cluster, Kind::Deployment, slow);
        wait_for(&cluster, Kind::Deployment, "gone", |d| {
            d["status"]["observedGeneration"] == 1
        })
        .await;
        let rt = served(&cluster, Kind::Deployment).unwrap();
        gc::delete(
            &cluster,
            &rt,
            Some("default"),
            "gone",
            &DeleteOptions::default(),
        )
        .unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(
            read(&cluster, Kind::Deployment, "default", "gone").is_none(),
            "a deleted object is not re-created"
        );
        let held = read(&cluster, Kind::Deployment, "default", "held").unwrap();
        assert_eq!(
            condition(&held, "Progressing").unwrap()["reason"],
            "ReplicaSetUpdated"
        );
        assert!(held["status"]["availableReplicas"].is_null());
        task.abort();
    }

    #[tokio::test]
    async fn unreachable_cluster_keeps_its_kubelet() {
        let (cluster, task) = cluster_with_workload(false);
        cluster.faults.set(crate::FaultSettings {
            unreachable: true,
            ..Default::default()
        });
        create_obj(&cluster, Kind::Deployment, deployment("web", 1, "nginx:1"));
        wait_for(&cluster, Kind::Deployment, "web", |d| {
            d["status"]["availableReplicas"] == 1
        })
        .await;
        task.abort();
    }

    #[tokio::test]
    async fn pods_mode_creates_replicasets_and_running_pods() {
        let (cluster, task) = cluster_with_workload(true);
        let d = create_obj(&cluster, Kind::Deployment, deployment("web", 2, "nginx:1"));
        let rs_name = status::replicaset_name(&d);
        let rs = wait_for(&cluster, Kind::ReplicaSet, &rs_name, |rs| {
            rs["status"]["availableReplicas"] == 2
        })
        .await;
        assert_eq!(
            rs["metadata"]["ownerReferences"][0]["uid"],
            d["metadata"]["uid"]
        );
        let running = |c: &Cluster| {
            let pods = owned(c, &rs, Kind::Pod);
            pods.iter()
                .filter(|p| {
                    p["status"]["phase"] == "Running"
                        && condition(p, "Ready").is_some_and(|r| r["status"] == "True")
                })
                .count()
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while running(&cluster) != 2 {
            assert!(Instant::now() < deadline, "pods did not run");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let pod = owned(&cluster, &rs, Kind::Pod).remove(0);
        assert!(
            pod["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{rs_name}-"))
        );
        assert_eq!(
            pod["metadata"]["labels"][status::POD_TEMPLATE_HASH],
            rs_name.rsplit('-').next().unwrap()
        );

        // A template change makes a new ReplicaSet and scales the old one to 0.
        let rt = served(&cluster, Kind::Deployment).unwrap();
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}}});
        let d2 = verbs::patch(
            &cluster,
            &rt,
            Some("default"),
            "web",
            PatchKind::Merge,
            &patch,
            &WriteOptions::system("test"),
        )
        .unwrap();
        let new_rs = status::replicaset_name(&d2);
        assert_ne!(new_rs, rs_name);
        wait_for(&cluster, Kind::ReplicaSet, &new_rs, |rs| {
            rs["status"]["availableReplicas"] == 2
        })
        .await;
        wait_for(&cluster, Kind::ReplicaSet, &rs_name, |rs| {
            rs["spec"]["replicas"] == 0
        })
        .await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while !owned(&cluster, &rs, Kind::Pod).is_empty() {
            assert!(Instant::now() < deadline, "old pods were not removed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        task.abort();
    }

    #[tokio::test]
    async fn pods_mode_gives_jobs_a_pod_that_completes() {
        let (cluster, task) = cluster_with_workload(true);
        let job = create_obj(&cluster, Kind::Job, job("once", json!({})));
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let pods = owned(&cluster, &job, Kind::Pod);
            if pods.len() == 1 && pods[0]["status"]["phase"] == "Succeeded" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "job pod did not complete: {pods:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        task.abort();
    }

    #[tokio::test]
    async fn statefulsets_and_daemonsets_become_ready() {
        let (cluster, task) = cluster_with_workload(false);
        let mut sts = deployment("db", 2, "db:1");
        sts["kind"] = "StatefulSet".into();
        sts["spec"]["serviceName"] = "db".into();
        create_obj(&cluster, Kind::StatefulSet, sts);
        let mut ds = deployment("agent", 1, "agent:1");
        ds["kind"] = "DaemonSet".into();
        if let Some(spec) = ds["spec"].as_object_mut() {
            spec.remove("replicas");
        }
        create_obj(&cluster, Kind::DaemonSet, ds);
        let db = wait_for(&cluster, Kind::StatefulSet, "db", |s| {
            s["status"]["readyReplicas"] == 2
        })
        .await;
        assert_eq!(
            db["status"]["currentRevision"],
            db["status"]["updateRevision"]
        );
        assert_eq!(db["status"]["observedGeneration"], 1);
        let agent = wait_for(&cluster, Kind::DaemonSet, "agent", |d| {
            d["status"]["numberAvailable"] == 1
        })
        .await;
        assert_eq!(agent["status"]["desiredNumberScheduled"], 1);
        assert_eq!(agent["status"]["updatedNumberScheduled"], 1);
        task.abort();
    }

    #[tokio::test]
    async fn task_ends_when_the_cluster_is_dropped() {
        let (cluster, task) = cluster_with_workload(false);
        drop(cluster);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("task ended")
            .expect("task did not panic");
    }
}
