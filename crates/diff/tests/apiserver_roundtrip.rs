//! Round trip against a real kube-apiserver (v1.20) and `keelson sim`: objects applied
//! with server-side apply as `argocd-controller` diff clean; drift and removed fields are
//! detected; kubectl client-side apply is diffed three-way.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anyhow::{Context, Result};
use keelson_diff::{DiffConfig, DiffMode, diff};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

fn resource(api_version: &str, kind: &str, plural: &str) -> ApiResource {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    ApiResource {
        group: group.to_string(),
        version: version.to_string(),
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        plural: plural.to_string(),
    }
}

async fn apply(
    client: &kube::Client,
    ar: &ApiResource,
    manager: &str,
    obj: &Value,
) -> Result<Value> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", ar);
    let name = obj["metadata"]["name"].as_str().context("name")?;
    let out = api
        .patch(
            name,
            &PatchParams::apply(manager).force(),
            &Patch::Apply(obj),
        )
        .await?;
    Ok(serde_json::to_value(out)?)
}

fn deployment(image: &str, labels: Value, env: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": labels},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": image, "env": env,
                "ports": [{"containerPort": 80}],
                "resources": {"requests": {"cpu": "0.5", "memory": "1024Mi"}, "limits": {"cpu": "1"}}}]}}}})
}

fn others(cronjob_version: &str) -> Vec<(ApiResource, Value)> {
    let pod = json!({"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox", "args": ["true"]}]}});
    vec![
        (
            resource("v1", "Service", "services"),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}}),
        ),
        (
            resource("apps/v1", "StatefulSet", "statefulsets"),
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db"}, "spec": {"serviceName": "db", "replicas": 1, "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "postgres"}]}}}}),
        ),
        (
            resource("batch/v1", "Job", "jobs"),
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "job"},
            "spec": {"template": pod.clone()}}),
        ),
        (
            resource(cronjob_version, "CronJob", "cronjobs"),
            json!({"apiVersion": cronjob_version, "kind": "CronJob",
            "metadata": {"name": "cron"}, "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": pod}}}}),
        ),
        (
            resource("v1", "Secret", "secrets"),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sec"},
            "stringData": {"password": "hunter2"}}),
        ),
    ]
}

/// Creates the `widgets.example.com` CRD, waits (bounded) until it is established, and
/// returns a Widget to apply.
async fn crd_object(client: &kube::Client) -> Result<(ApiResource, Value)> {
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                "type": "object", "properties": {"spec": {"type": "object", "properties": {
                    "size": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}}}}}}}}]}});
    let crd_ar = resource(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
    );
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &crd_ar);
    api.patch(
        "widgets.example.com",
        &PatchParams::apply("argocd-controller").force(),
        &Patch::Apply(&crd),
    )
    .await?;
    let mut established = false;
    for _ in 0..100 {
        let live = serde_json::to_value(api.get("widgets.example.com").await?)?;
        let conditions = live
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if conditions
            .iter()
            .any(|c| c["type"] == "Established" && c["status"] == "True")
        {
            established = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    anyhow::ensure!(
        established,
        "crd widgets.example.com not established within 10 s"
    );
    let widget = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
        "spec": {"size": 3, "tags": ["a", "b"]}});
    Ok((resource("example.com/v1", "Widget", "widgets"), widget))
}

async fn roundtrip(client: kube::Client, cronjob_version: &str) -> Result<()> {
    let config = DiffConfig::default();
    let deploy_ar = resource("apps/v1", "Deployment", "deployments");
    let env = json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]);
    let desired = deployment("nginx:1", json!({"team": "x", "tier": "web"}), env.clone());
    let live = apply(&client, &deploy_ar, "argocd-controller", &desired).await?;
    let r = diff(Some(&desired), Some(&live), &config)?;
    assert_eq!(r.mode, DiffMode::ServerSide);
    assert!(!r.modified, "{}", keelson_diff::unified_diff(&r, "web"));

    let removed_label = deployment("nginx:1", json!({"team": "x"}), env.clone());
    assert!(diff(Some(&removed_label), Some(&live), &config)?.modified);
    let removed_env = deployment(
        "nginx:1",
        json!({"team": "x", "tier": "web"}),
        json!([{"name": "A", "value": "1"}]),
    );
    assert!(diff(Some(&removed_env), Some(&live), &config)?.modified);

    let drift = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 5}});
    let live = apply(&client, &deploy_ar, "someone-else", &drift).await?;
    assert!(diff(Some(&desired), Some(&live), &config)?.modified);

    let widget = crd_object(&client).await?;
    for (ar, obj) in others(cronjob_version).into_iter().chain([widget]) {
        let live = apply(&client, &ar, "argocd-controller", &obj).await?;
        let r = diff(Some(&obj), Some(&live), &config)?;
        assert!(
            !r.modified,
            "{}: {}",
            ar.kind,
            keelson_diff::unified_diff(&r, &ar.kind)
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_apiserver_server_side_and_client_side() -> Result<()> {
    let server = tokio::task::spawn_blocking(keelson_testbed::KubeApiServer::start).await??;
    roundtrip(server.client()?, "batch/v1beta1").await?;

    // client-side apply with kubectl: three-way mode
    let dir = server.dir().to_path_buf();
    let manifest = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "default",
        "labels": {"a": "1", "b": "2"}}, "data": {"k": "v"}});
    let file = dir.join("cm.json");
    std::fs::write(&file, manifest.to_string())?;
    let kubeconfig = server.kubeconfig_path().to_path_buf();
    let path = file.to_string_lossy().to_string();
    tokio::task::spawn_blocking(move || {
        keelson_testbed::kubectl_checked(&kubeconfig, &["apply", "-f", &path])
    })
    .await??;
    let api: Api<DynamicObject> = Api::namespaced_with(
        server.client()?,
        "default",
        &resource("v1", "ConfigMap", "configmaps"),
    );
    let live = serde_json::to_value(api.get("cm").await?)?;
    let r = diff(Some(&manifest), Some(&live), &DiffConfig::default())?;
    assert_eq!(r.mode, DiffMode::ThreeWay);
    assert!(!r.modified);
    let mut dropped = manifest.clone();
    dropped["metadata"]["labels"] = json!({"a": "1"});
    assert!(diff(Some(&dropped), Some(&live), &DiffConfig::default())?.modified);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_server_side() -> Result<()> {
    let sim = tokio::task::spawn_blocking(|| {
        keelson_testbed::Sim::start(keelson_testbed::SimOptions::default())
    })
    .await??;
    roundtrip(sim.client(0)?, "batch/v1").await
}
