//! Shared by the executor tests: plans from manifests, an executor over `KubeOps`, a
//! pass-through `ClusterOps` that records the calls, dynamic reads, and the write
//! scenarios run on both the real kube-apiserver and `keelson sim`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use keelson_health::{HealthAssessor, HealthConfig};
use keelson_model::ResourceKey;
use keelson_sync::{
    ClusterOps, Executor, ExecutorConfig, ExecutorError, KubeOps, NoFence, Plan, PlanInput,
    PropagationPolicy, ResourceInput, StepOutcome, SyncOptions, SyncState, SyncTask, WriteOutcome,
    plan_sync, resource_results,
};
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::GroupVersionKind;
use serde_json::{Value, json};

pub const POLL: Duration = Duration::from_millis(100);
pub const DEADLINE: Duration = Duration::from_secs(60);

/// One call seen by [`Recording`]: (`dry_run`|`apply`|`delete`, object name).
pub type Calls = Arc<Mutex<Vec<(String, String)>>>;

/// Passes every call on to the real `KubeOps` and records it.
pub struct Recording {
    pub inner: KubeOps,
    pub calls: Calls,
}

impl Recording {
    fn log(&self, what: &str, task: &SyncTask) {
        self.calls
            .lock()
            .unwrap()
            .push((what.to_owned(), task.key.name.clone()));
    }
}

impl ClusterOps for Recording {
    async fn dry_run(&self, task: &SyncTask) -> WriteOutcome {
        self.log("dry_run", task);
        self.inner.dry_run(task).await
    }
    async fn apply(&self, task: &SyncTask) -> WriteOutcome {
        self.log("apply", task);
        self.inner.apply(task).await
    }
    async fn delete(&self, task: &SyncTask, propagation: PropagationPolicy) -> WriteOutcome {
        self.log("delete", task);
        self.inner.delete(task, propagation).await
    }
    async fn get(&self, task: &SyncTask) -> Result<Option<Value>, ExecutorError> {
        self.inner.get(task).await
    }
}

/// The names of the objects `what` was called for, in call order.
pub fn called(calls: &Calls, what: &str) -> Vec<String> {
    calls
        .lock()
        .unwrap()
        .iter()
        .filter(|(w, _)| w == what)
        .map(|(_, n)| n.clone())
        .collect()
}

pub fn health() -> Arc<HealthAssessor> {
    Arc::new(HealthAssessor::new(HealthConfig::default()))
}

pub fn executor(client: &kube::Client) -> Executor<KubeOps> {
    Executor::new(
        KubeOps::new(client.clone()),
        health(),
        ExecutorConfig::default(),
    )
}

pub fn recording(client: &kube::Client, calls: &Calls) -> Executor<Recording> {
    let ops = Recording {
        inner: KubeOps::new(client.clone()),
        calls: calls.clone(),
    };
    Executor::new(ops, health(), ExecutorConfig::default())
}

pub fn key_of(object: &Value) -> ResourceKey {
    let api = object["apiVersion"].as_str().unwrap_or("v1");
    ResourceKey::new(
        keelson_model::resource_key::group_of(api),
        object["kind"].as_str().unwrap_or(""),
        object["metadata"]["namespace"].as_str().unwrap_or(""),
        object["metadata"]["name"].as_str().unwrap_or(""),
    )
}

/// A resource input: desired and/or live.
pub fn input(desired: Option<Value>, live: Option<Value>) -> ResourceInput {
    let key = key_of(desired.as_ref().or(live.as_ref()).unwrap());
    ResourceInput {
        key,
        requires_pruning: desired.is_none(),
        modified: true,
        desired,
        live,
        shared_with: None,
    }
}

pub fn plan(sync_id: &str, resources: Vec<ResourceInput>, options: &[&str], prune: bool) -> Plan {
    let mut input = PlanInput::new(sync_id, resources);
    input.options = SyncOptions::parse(options).unwrap();
    input.request.prune = prune;
    plan_sync(&input).unwrap()
}

pub fn cm(ns: &str, name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns}, "data": data})
}

pub fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

/// The live object, read with discovery (None when absent).
pub async fn live(
    client: &kube::Client,
    api_version: &str,
    kind: &str,
    ns: &str,
    name: &str,
) -> Option<Value> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, _) = kube::discovery::pinned_kind(client, &gvk).await.unwrap();
    let api: Api<DynamicObject> = if ns.is_empty() {
        Api::all_with(client.clone(), &resource)
    } else {
        Api::namespaced_with(client.clone(), ns, &resource)
    };
    api.get_opt(name)
        .await
        .unwrap()
        .map(|o| serde_json::to_value(o).unwrap())
}

pub async fn live_cm(client: &kube::Client, ns: &str, name: &str) -> Option<Value> {
    live(client, "v1", "ConfigMap", ns, name).await
}

/// Creates an object directly (setup, or "another writer").
pub async fn create(client: &kube::Client, object: Value) -> Value {
    let key = key_of(&object);
    let api_version = object["apiVersion"].as_str().unwrap().to_owned();
    let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
    let gvk = GroupVersionKind::gvk(group, version, &key.kind);
    let (resource, _) = kube::discovery::pinned_kind(client, &gvk).await.unwrap();
    let api: Api<DynamicObject> = if key.namespace.is_empty() {
        Api::all_with(client.clone(), &resource)
    } else {
        Api::namespaced_with(client.clone(), &key.namespace, &resource)
    };
    let object: DynamicObject = serde_json::from_value(object).unwrap();
    serde_json::to_value(api.create(&PostParams::default(), &object).await.unwrap()).unwrap()
}

/// Runs a plan to its end with a fresh state.
pub async fn sync<O: ClusterOps>(executor: &Executor<O>, plan: &Plan) -> (StepOutcome, SyncState) {
    let mut state = SyncState::default();
    let outcome = executor
        .run_to_completion(plan, &mut state, &NoFence, POLL, DEADLINE, |_| {})
        .await
        .unwrap();
    (outcome, state)
}

/// The recorded result message of the task for `name`.
pub fn message(plan: &Plan, state: &SyncState, name: &str) -> String {
    resource_results(plan, state)
        .into_iter()
        .find(|r| r.name == name)
        .and_then(|r| r.message)
        .unwrap_or_default()
}

pub fn succeeded(outcome: &StepOutcome) {
    assert!(
        matches!(outcome, StepOutcome::Succeeded(_)),
        "expected success, got {outcome:?}"
    );
}
pub mod scenarios;
