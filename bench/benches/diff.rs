//! Cost of one diff (`keelson_diff::diff`) per object pair against a plain
//! `serde_json::Value` equality on the same pairs: a Deployment and a 2 KB ConfigMap as a
//! v1.35 API server returns them after a server-side apply by `argocd-controller`.
//! Run: `cargo bench -p keelson-bench --bench diff`.

use divan::{Bencher, black_box};
use keelson_diff::{DiffConfig, diff};
use serde_json::{Value, json};

fn main() {
    divan::main();
}

fn deployment_pair() -> (Value, Value) {
    let desired = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app.kubernetes.io/instance": "shop"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27",
                    "ports": [{"containerPort": 80}],
                    "env": [{"name": "MODE", "value": "prod"}],
                    "resources": {"requests": {"cpu": "0.5", "memory": "256Mi"}}}]}}}
    });
    let mut live = desired.clone();
    live["metadata"]["uid"] = json!("0b6c3c1e-6f0e-4a55-9a43-3d5b7c1f2e11");
    live["metadata"]["resourceVersion"] = json!("48213");
    live["metadata"]["generation"] = json!(1);
    live["metadata"]["creationTimestamp"] = json!("2026-12-04T10:00:00Z");
    live["metadata"]["managedFields"] = json!([{
        "manager": "argocd-controller", "operation": "Apply", "apiVersion": "apps/v1",
        "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {"f:app.kubernetes.io/instance": {}}},
            "f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {"f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:env": {"k:{\"name\":\"MODE\"}": {".": {}, "f:name": {}, "f:value": {}}},
                    "f:image": {}, "f:name": {}, "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}},
                    "f:resources": {"f:requests": {"f:cpu": {}, "f:memory": {}}}}}}}}}
    }]);
    let spec = &mut live["spec"];
    spec["progressDeadlineSeconds"] = json!(600);
    spec["revisionHistoryLimit"] = json!(10);
    spec["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}});
    let pod = &mut spec["template"]["spec"];
    pod["restartPolicy"] = json!("Always");
    pod["dnsPolicy"] = json!("ClusterFirst");
    pod["schedulerName"] = json!("default-scheduler");
    pod["terminationGracePeriodSeconds"] = json!(30);
    pod["securityContext"] = json!({});
    let c = &mut pod["containers"][0];
    c["imagePullPolicy"] = json!("IfNotPresent");
    c["terminationMessagePath"] = json!("/dev/termination-log");
    c["terminationMessagePolicy"] = json!("File");
    c["ports"][0]["protocol"] = json!("TCP");
    c["resources"]["requests"]["cpu"] = json!("500m");
    live["status"] = json!({"observedGeneration": 1, "replicas": 3, "readyReplicas": 3,
        "availableReplicas": 3, "updatedReplicas": 3,
        "conditions": [{"type": "Available", "status": "True"}]});
    (desired, live)
}

fn configmap_pair() -> (Value, Value) {
    let data: serde_json::Map<String, Value> = (0..16)
        .map(|i| (format!("key-{i:02}"), json!("x".repeat(120))))
        .collect();
    let desired = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "app-config", "namespace": "shop", "labels": {"app.kubernetes.io/instance": "shop"}},
        "data": data});
    let mut live = desired.clone();
    live["metadata"]["uid"] = json!("8f1c2a9e-2d7b-4c1a-a0e1-5b9c3d2e1f00");
    live["metadata"]["resourceVersion"] = json!("1234");
    live["metadata"]["creationTimestamp"] = json!("2026-12-04T10:00:00Z");
    live["metadata"]["managedFields"] = json!([{"manager": "argocd-controller", "operation": "Apply",
        "apiVersion": "v1", "fieldsType": "FieldsV1",
        "fieldsV1": {"f:data": {}, "f:metadata": {"f:labels": {"f:app.kubernetes.io/instance": {}}}}}]);
    (desired, live)
}

#[divan::bench(args = ["deployment", "configmap"])]
fn keelson_diff(bencher: Bencher, kind: &str) {
    let (desired, live) = pair(kind);
    let config = DiffConfig::default();
    // The pairs are in sync: a benchmark of a diff that gets them wrong would mean nothing.
    let verdict = diff(Some(&desired), Some(&live), &config).map(|d| d.modified);
    assert!(matches!(verdict, Ok(false)), "{kind}: {verdict:?}");
    bencher.bench(|| {
        diff(Some(black_box(&desired)), Some(black_box(&live)), &config)
            .map(|d| d.modified)
            .unwrap_or(true)
    });
}

#[divan::bench(args = ["deployment", "configmap"])]
fn value_equality(bencher: Bencher, kind: &str) {
    let (desired, live) = pair(kind);
    bencher.bench(|| black_box(&desired) == black_box(&live));
}

fn pair(kind: &str) -> (Value, Value) {
    if kind == "deployment" {
        deployment_pair()
    } else {
        configmap_pair()
    }
}
