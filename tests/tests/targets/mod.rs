//! The two API servers a differential test runs the same operations against — the real
//! kube-apiserver (v1.20.2, on etcd) and `keelson sim` — and the normalisation that
//! makes their answers comparable, including the differences the simulator has on
//! purpose (it models a current Kubernetes release; the real server here is v1.20).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use keelson_testbed::{KubeApiServer, Sim, SimOptions};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One API server under test.
pub struct Target {
    /// "real" or "sim".
    pub name: &'static str,
    /// A kube-rs client.
    pub client: Client,
    /// A kubeconfig file for the real kubectl.
    pub kubeconfig: PathBuf,
}

/// Both servers, alive while this value lives.
pub struct Targets {
    pub real: Target,
    pub sim: Target,
    _real: KubeApiServer,
    _sim: Sim,
}

impl Targets {
    /// Starts the real API server and a one-cluster simulator side by side.
    pub async fn start(sim_args: &[&str]) -> Targets {
        Targets::start_with(sim_args, &[]).await
    }

    /// Starts both, with extra flags for each.
    pub async fn start_with(sim_args: &[&str], real_args: &[&str]) -> Targets {
        keelson_testbed::install_crypto_provider();
        let args: Vec<String> = sim_args.iter().map(|s| (*s).to_owned()).collect();
        let sim = tokio::task::spawn_blocking(move || {
            Sim::start(SimOptions {
                clusters: 1,
                tls: true,
                extra_args: args,
                ..SimOptions::default()
            })
        });
        let real_args: Vec<String> = real_args.iter().map(|s| (*s).to_owned()).collect();
        let real = tokio::task::spawn_blocking(move || {
            KubeApiServer::start_with_args(
                &real_args.iter().map(String::as_str).collect::<Vec<_>>(),
            )
        });
        let real = real
            .await
            .expect("join")
            .expect("the real kube-apiserver must start (run scripts/install-deps)");
        let sim = sim
            .await
            .expect("join")
            .expect("keelson sim must start (build it with cargo build -p keelson)");
        Targets {
            real: Target {
                name: "real",
                client: real.client().expect("real client"),
                kubeconfig: real.kubeconfig_path().to_path_buf(),
            },
            sim: Target {
                name: "sim",
                client: sim.client(0).expect("sim client"),
                kubeconfig: sim.kubeconfig_path(0).expect("kubeconfig").to_path_buf(),
            },
            _real: real,
            _sim: sim,
        }
    }

    /// Both targets, real first.
    pub fn both(&self) -> [&Target; 2] {
        [&self.real, &self.sim]
    }
}

/// A dynamic API for a namespaced built-in kind.
pub fn dynamic(
    client: &Client,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    ns: Option<&str>,
) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let ar = ApiResource::from_gvk_with_plural(&gvk, plural);
    match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

/// Replaces values that differ between any two servers (uids, times, versions, IPs)
/// with placeholders, recursively.
pub fn normalise(mut v: Value) -> Value {
    scrub(&mut v);
    v
}

fn scrub(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for child in map.values_mut() {
                scrub(child);
            }
            for volatile in [
                "uid",
                "resourceVersion",
                "creationTimestamp",
                "time",
                "clusterIP",
                "lastUpdateTime",
                "lastTransitionTime",
                "selfLink",
                "controller-uid",
                "batch.kubernetes.io/controller-uid",
                "nodePort",
                "deletionTimestamp",
            ] {
                if let Some(x) = map.get_mut(volatile)
                    && !x.is_null()
                    && !x.is_object()
                {
                    *x = Value::String(format!("<{volatile}>"));
                }
            }
            if let Some(Value::Array(ips)) = map.get_mut("clusterIPs") {
                for ip in ips {
                    *ip = Value::String("<clusterIP>".into());
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                scrub(item);
            }
        }
        _ => {}
    }
}

/// Differences the simulator has on purpose: fields a current API server sets that
/// v1.20 did not have yet. Each is removed from the simulator's answer by name.
pub const VERSION_DIFFERENCES: &[(&str, &str, &str)] = &[
    (
        "Service",
        "/spec/ipFamilies",
        "dual-stack fields are defaulted since v1.21",
    ),
    (
        "Service",
        "/spec/ipFamilyPolicy",
        "dual-stack fields are defaulted since v1.21",
    ),
    ("Service", "/spec/internalTrafficPolicy", "added in v1.22"),
    (
        "StatefulSet",
        "/spec/persistentVolumeClaimRetentionPolicy",
        "beta and defaulted since v1.27",
    ),
    (
        "StatefulSet",
        "/spec/updateStrategy/rollingUpdate/maxUnavailable",
        "MaxUnavailableStatefulSet defaults it since v1.35",
    ),
    ("StatefulSet", "/status/availableReplicas", "added in v1.22"),
    ("Job", "/spec/completionMode", "added in v1.21"),
    ("Job", "/spec/suspend", "added in v1.21"),
    ("Job", "/spec/podReplacementPolicy", "added in v1.29"),
    (
        "Job",
        "/spec/selector/matchLabels/batch.kubernetes.io~1controller-uid",
        "label prefix added in v1.27",
    ),
    (
        "Job",
        "/spec/template/metadata/labels/batch.kubernetes.io~1controller-uid",
        "label prefix added in v1.27",
    ),
    (
        "Job",
        "/spec/template/metadata/labels/batch.kubernetes.io~1job-name",
        "label prefix added in v1.27",
    ),
    (
        "Job",
        "/metadata/labels/batch.kubernetes.io~1controller-uid",
        "label prefix added in v1.27",
    ),
    (
        "Job",
        "/metadata/labels/batch.kubernetes.io~1job-name",
        "label prefix added in v1.27",
    ),
    (
        "Job",
        "/metadata/generation",
        "Jobs carry a generation on current servers",
    ),
    (
        "Namespace",
        "/metadata/labels/kubernetes.io~1metadata.name",
        "added in v1.21",
    ),
];

/// Removes, from an object served by the simulator, the fields listed in
/// [`VERSION_DIFFERENCES`] for its kind.
pub fn without_version_differences(mut obj: Value) -> Value {
    let kind = obj["kind"].as_str().unwrap_or_default().to_owned();
    // Current servers select a Job's pods by `batch.kubernetes.io/controller-uid`;
    // v1.20 used `controller-uid`: compare them under the old name.
    if kind == "Job"
        && let Some(Value::Object(sel)) = obj.pointer_mut("/spec/selector/matchLabels")
        && let Some(uid) = sel.remove("batch.kubernetes.io/controller-uid")
    {
        sel.insert("controller-uid".into(), uid);
    }
    for (k, pointer, _why) in VERSION_DIFFERENCES {
        if *k == kind {
            remove_pointer(&mut obj, pointer);
        }
    }
    obj
}

/// Artefacts of the real v1.20 server that current servers no longer write, removed
/// from its answers by name.
pub const REAL_QUIRKS: &[(&str, &str)] = &[
    (
        "/spec/template/metadata/creationTimestamp",
        "Go zero-time serialised as null in pod templates until v1.33",
    ),
    (
        "/spec/jobTemplate/spec/template/metadata/creationTimestamp",
        "the same, in CronJob templates",
    ),
];

/// Removes [`REAL_QUIRKS`] (when null) from an object served by the real server.
pub fn without_real_quirks(mut obj: Value) -> Value {
    for (pointer, _why) in REAL_QUIRKS {
        if obj.pointer(pointer).is_some_and(Value::is_null) {
            remove_pointer(&mut obj, pointer);
        }
    }
    obj
}

/// Removes the value at a JSON pointer, if present.
pub fn remove_pointer(obj: &mut Value, pointer: &str) {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    let last = last.replace("~1", "/").replace("~0", "~");
    if let Some(Value::Object(map)) = obj.pointer_mut(parent) {
        map.remove(&last);
    }
}

/// Runs the real kubectl and returns (exit code, stdout, stderr).
pub fn kubectl(kubeconfig: &Path, args: &[&str]) -> (i32, String, String) {
    let out = keelson_testbed::kubectl(kubeconfig, args).expect("kubectl runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The managedFields of an object without timestamps, sorted by manager and operation.
pub fn managed_fields(obj: &Value) -> Vec<Value> {
    let mut entries: Vec<Value> = obj["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for e in &mut entries {
        if let Some(m) = e.as_object_mut() {
            m.remove("time");
        }
    }
    entries.sort_by_key(|e| format!("{}{}", e["manager"], e["operation"]));
    entries
}
