//! Cluster cache against a real kube-apiserver: tracked objects, owner chains, CRDs
//! created after start, excluded kinds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use keelson_cluster_cache::{
    CacheMetrics, ChangeKind, ClusterCache, ClusterCacheConfig, ConnectionState,
};
use support::{Recorder, until};

const WAIT: Duration = Duration::from_secs(20);
use keelson_model::ResourceKey;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;
use serde_json::{Value, json};

fn ar(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: if group.is_empty() {
            version.into()
        } else {
            format!("{group}/{version}")
        },
        kind: kind.into(),
        plural: plural.into(),
    }
}

async fn create(client: &kube::Client, r: &ApiResource, ns: Option<&str>, obj: Value) -> Value {
    let api: Api<DynamicObject> = match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, r),
        None => Api::all_with(client.clone(), r),
    };
    let obj: DynamicObject = serde_json::from_value(obj).unwrap();
    serde_json::to_value(api.create(&PostParams::default(), &obj).await.unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apiserver_tracks_objects_trees_crds_and_exclusions() {
    let server = tokio::task::spawn_blocking(keelson_testbed::KubeApiServer::start)
        .await
        .unwrap()
        .unwrap();
    let client = server.client().unwrap();
    let registry = prometheus::Registry::new();
    let metrics = CacheMetrics::register(&registry).unwrap();
    let sink = Arc::new(Recorder::default());
    let config = ClusterCacheConfig::new("in-cluster", server.url());
    let cache = ClusterCache::start(client.clone(), config, metrics, sink.clone());
    cache.wait_synced(Duration::from_secs(30)).await.unwrap();
    let st = cache.status();
    assert_eq!(st.connection, ConnectionState::Connected);
    assert!(st.api_resources > 10, "{st:?}");
    assert!(
        st.server_version
            .as_deref()
            .unwrap_or("")
            .starts_with("v1.20")
    );

    let cm = ar("", "v1", "ConfigMap", "configmaps");
    let label = json!({"app.kubernetes.io/instance": "guestbook"});
    create(
        &client,
        &cm,
        Some("default"),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cfg", "labels": label}, "data": {"a": "1"}}),
    )
    .await;
    until("configmap added", WAIT, || {
        sink.has_app("guestbook", "cfg", ChangeKind::Added)
    })
    .await;
    let objs = cache.app_objects("guestbook");
    assert_eq!(objs.len(), 1);
    assert!(objs[0].complete);
    assert_eq!(objs[0].object["data"]["a"], "1");
    assert!(objs[0].object["metadata"]["managedFields"].is_array());

    let cms: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &cm);
    cms.patch(
        "cfg",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"a": "2"}})),
    )
    .await
    .unwrap();
    until("configmap modified", WAIT, || {
        sink.has_app("guestbook", "cfg", ChangeKind::Modified)
    })
    .await;
    let key = ResourceKey::new("", "ConfigMap", "default", "cfg");
    assert_eq!(cache.get(&key).unwrap().object["data"]["a"], "2");

    // Deployment → ReplicaSet → Pod by hand (no controller-manager runs).
    let deploy_r = ar("apps", "v1", "Deployment", "deployments");
    let rs_r = ar("apps", "v1", "ReplicaSet", "replicasets");
    let pod_r = ar("", "v1", "Pod", "pods");
    let tmpl = json!({"metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
    let dep = create(
        &client,
        &deploy_r,
        Some("default"),
        json!({"apiVersion": "apps/v1",
        "kind": "Deployment", "metadata": {"name": "web", "labels": label},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": tmpl}}),
    )
    .await;
    let owner = |o: &Value, kind: &str| {
        json!([{"apiVersion": "apps/v1", "kind": kind,
        "name": o["metadata"]["name"], "uid": o["metadata"]["uid"], "controller": true}])
    };
    let rs = create(&client, &rs_r, Some("default"), json!({"apiVersion": "apps/v1",
        "kind": "ReplicaSet", "metadata": {"name": "web-1", "ownerReferences": owner(&dep, "Deployment")},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": tmpl}})).await;
    create(&client, &pod_r, Some("default"), json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-1-a", "labels": {"app": "web"}, "ownerReferences": owner(&rs, "ReplicaSet")},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}})).await;
    until("pod in tree", WAIT, || {
        cache.resource_tree("guestbook").len() == 4
    })
    .await;
    let tree = cache.resource_tree("guestbook");
    let pod = tree.iter().find(|n| n.live.key.kind == "Pod").unwrap();
    assert_eq!(
        pod.parents,
        vec![ResourceKey::new("apps", "ReplicaSet", "default", "web-1")]
    );
    assert!(!pod.live.complete);
    let rs_uid = rs["metadata"]["uid"].as_str().unwrap();
    assert_eq!(cache.children(rs_uid).len(), 1);
    assert!(cache.namespace_objects("default").len() >= 4);

    let pods: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &pod_r);
    pods.patch(
        "web-1-a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
    )
    .await
    .unwrap();
    until("pod change notifies the deployment's app", WAIT, || {
        sink.has_app("guestbook", "web-1-a", ChangeKind::Modified)
    })
    .await;

    // A CRD created after start gets watched.
    let crd_r = ar(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
    );
    create(&client, &crd_r, None, json!({"apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition", "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
          "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
          "versions": [{"name": "v1", "served": true, "storage": true,
            "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}})).await;
    let widget_r = ar("example.com", "v1", "Widget", "widgets");
    let start = Instant::now();
    loop {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &widget_r);
        let obj: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.com/v1",
            "kind": "Widget", "metadata": {"name": "w1", "labels": label}, "spec": {"size": 3}}))
        .unwrap();
        if api.create(&PostParams::default(), &obj).await.is_ok() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "crd never served"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    until("widget cached", WAIT, || {
        cache
            .get(&ResourceKey::new("example.com", "Widget", "default", "w1"))
            .is_some()
    })
    .await;

    // Excluded kinds are never cached (the API server writes Events and Leases itself).
    assert!(
        cache
            .namespace_objects("kube-system")
            .iter()
            .all(|o| o.key.kind != "Lease")
    );
    assert!(
        cache
            .namespace_objects("default")
            .iter()
            .all(|o| o.key.kind != "Event" && o.key.kind != "Endpoints"),
    );

    cms.delete("cfg", &DeleteParams::default()).await.unwrap();
    until("configmap deleted", WAIT, || {
        sink.has_app("guestbook", "cfg", ChangeKind::Deleted)
    })
    .await;
    assert!(cache.get(&key).is_none());

    let text = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap();
    assert!(
        text.contains("argocd_cluster_connection_status{k8s_version=\"v1.20"),
        "{text}"
    );
    assert!(text.contains("argocd_cluster_events_total"), "{text}");
    drop(cache);
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap();
    assert!(
        !text.contains("argocd_cluster_connection_status{"),
        "{text}"
    );
}
