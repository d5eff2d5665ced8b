//! Cluster caches against `keelson sim`: 50 clusters with one cache each, an unreachable
//! cluster that does not slow the others, and recovery after watch history expired (410).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use keelson_cluster_cache::{
    CacheMetrics, ChangeKind, ClusterCache, ClusterCacheConfig, ConnectionState,
};
use keelson_model::ResourceKey;
use keelson_testbed::{Sim, SimOptions};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;
use support::{Recorder, until};

fn tracked_cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name,
        "labels": {"app.kubernetes.io/instance": "app"}}, "data": {"k": name}}))
    .unwrap()
}

async fn set_unreachable(sim: &Sim, cluster: usize, unreachable: bool) {
    let info = sim.info();
    let admin = keelson_testbed::build_client(
        "sim admin",
        &format!("https://{}", info.listen),
        info.admin_token.as_deref().unwrap(),
        sim.ca_pem(),
    )
    .unwrap();
    let name = &sim.cluster(cluster).unwrap().name;
    let req = http::Request::put(format!("/sim/clusters/{name}/faults"))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&json!({"unreachable": unreachable})).unwrap())
        .unwrap();
    admin.request_text(req).await.unwrap();
}

async fn start_caches(
    sim: &Sim,
    registry: &prometheus::Registry,
    sink: &Arc<Recorder>,
) -> Vec<ClusterCache> {
    let metrics = CacheMetrics::register(registry).unwrap();
    let mut caches = Vec::new();
    for (i, c) in sim.clusters().iter().enumerate() {
        let mut config = ClusterCacheConfig::new(c.name.as_str(), c.server.as_str());
        config.max_retry_delay = Duration::from_secs(2);
        caches.push(ClusterCache::start(
            sim.client(i).unwrap(),
            config,
            metrics.clone(),
            sink.clone(),
        ));
    }
    for cache in &caches {
        cache.wait_synced(Duration::from_secs(60)).await.unwrap();
    }
    caches
}

fn metric_line(registry: &prometheus::Registry, server: &str) -> String {
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap();
    text.lines()
        .find(|l| l.starts_with("argocd_cluster_connection_status") && l.contains(server))
        .unwrap_or("")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_fifty_clusters_and_one_unreachable() {
    let sim = tokio::task::spawn_blocking(|| {
        Sim::start(SimOptions {
            clusters: 50,
            ..SimOptions::default()
        })
    })
    .await
    .unwrap()
    .unwrap();
    let registry = prometheus::Registry::new();
    let sink = Arc::new(Recorder::default());
    let caches = start_caches(&sim, &registry, &sink).await;
    for i in 0..caches.len() {
        let api: Api<ConfigMap> = Api::namespaced(sim.client(i).unwrap(), "default");
        api.create(&PostParams::default(), &tracked_cm(&format!("cm-{i}")))
            .await
            .unwrap();
    }
    until(
        "every cache has its own object",
        Duration::from_secs(20),
        || {
            caches.iter().enumerate().all(|(i, c)| {
                let objs = c.app_objects("app");
                objs.len() == 1 && objs[0].key.name == format!("cm-{i}")
            })
        },
    )
    .await;

    set_unreachable(&sim, 0, true).await;
    let server0 = sim.cluster(0).unwrap().server.clone();
    until("cluster 0 failed", Duration::from_secs(20), || {
        matches!(caches[0].status().connection, ConnectionState::Failed(_))
    })
    .await;
    until("metric 0", Duration::from_secs(5), || {
        metric_line(&registry, &server0).ends_with(" 0")
    })
    .await;
    assert_eq!(
        caches[0].app_objects("app").len(),
        1,
        "a failed cluster keeps its objects"
    );
    // Other clusters keep receiving changes promptly.
    for i in [1, 25, 49] {
        let api: Api<ConfigMap> = Api::namespaced(sim.client(i).unwrap(), "default");
        let name = format!("during-{i}");
        let t = Instant::now();
        api.create(&PostParams::default(), &tracked_cm(&name))
            .await
            .unwrap();
        let key = ResourceKey::new("", "ConfigMap", "default", name.as_str());
        until(
            "change on a healthy cluster",
            Duration::from_secs(3),
            || caches[i].get(&key).is_some(),
        )
        .await;
        assert!(t.elapsed() < Duration::from_secs(3));
        assert_eq!(caches[i].status().connection, ConnectionState::Connected);
    }

    set_unreachable(&sim, 0, false).await;
    let api0: Api<ConfigMap> = Api::namespaced(sim.client(0).unwrap(), "default");
    api0.create(&PostParams::default(), &tracked_cm("after"))
        .await
        .unwrap();
    api0.delete("cm-0", &DeleteParams::default()).await.unwrap();
    until(
        "cluster 0 reconnected and caught up",
        Duration::from_secs(30),
        || {
            let names: Vec<String> = caches[0]
                .app_objects("app")
                .into_iter()
                .map(|o| o.key.name)
                .collect();
            names == ["after"] && caches[0].status().connection == ConnectionState::Connected
        },
    )
    .await;
    until("metric 1", Duration::from_secs(5), || {
        metric_line(&registry, &server0).ends_with(" 1")
    })
    .await;
    assert!(sink.has_cluster("c1", "after", ChangeKind::Added));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_expired_resource_version_relists_to_the_truth() {
    let options = SimOptions {
        clusters: 1,
        extra_args: vec![
            "--watch-history".into(),
            "10".into(),
            "--watch-window-secs".into(),
            "0".into(),
        ],
        ..SimOptions::default()
    };
    let sim = tokio::task::spawn_blocking(move || Sim::start(options))
        .await
        .unwrap()
        .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(sim.client(0).unwrap(), "default");
    for i in 0..30 {
        api.create(&PostParams::default(), &tracked_cm(&format!("old-{i}")))
            .await
            .unwrap();
    }
    let registry = prometheus::Registry::new();
    let sink = Arc::new(Recorder::default());
    let caches = start_caches(&sim, &registry, &sink).await;
    let cache = &caches[0];
    assert_eq!(cache.app_objects("app").len(), 30);

    // Cut the watches, then write far more than the history holds before they resume.
    set_unreachable(&sim, 0, true).await;
    until("failed", Duration::from_secs(20), || {
        matches!(cache.status().connection, ConnectionState::Failed(_))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    set_unreachable(&sim, 0, false).await;
    for i in 0..30 {
        if i % 2 == 0 {
            api.delete(&format!("old-{i}"), &DeleteParams::default())
                .await
                .unwrap();
        }
        api.create(&PostParams::default(), &tracked_cm(&format!("new-{i}")))
            .await
            .unwrap();
    }
    let truth = || async {
        let mut names: Vec<String> = api
            .list(&ListParams::default().labels("app.kubernetes.io/instance=app"))
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|c| c.metadata.name)
            .collect();
        names.sort();
        names
    };
    let expected = truth().await;
    assert_eq!(expected.len(), 45);
    until("cache converges", Duration::from_secs(30), || {
        let mut names: Vec<String> = cache
            .app_objects("app")
            .into_iter()
            .map(|o| o.key.name)
            .collect();
        names.sort();
        names == expected && cache.status().connection == ConnectionState::Connected
    })
    .await;
    until("deletions notified", Duration::from_secs(5), || {
        sink.has_cluster("c1", "old-0", ChangeKind::Deleted)
    })
    .await;
    assert!(sink.has_cluster("c1", "new-29", ChangeKind::Added));
}
