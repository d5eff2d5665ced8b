//! The simulator in process, driven by real clients: kube-runtime's watcher and
//! reflector surviving a 410, selectors and pagination, custom resources from CRDs with
//! a status subresource, garbage collection, namespace termination, fault injection,
//! HTTPS with kubectl, authentication, and the workload mode.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use keelson_sim::{FaultSettings, SimConfig, SimHandle, WorkloadConfig};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde_json::json;
use std::time::Duration;

async fn sim(config: SimConfig) -> SimHandle {
    SimHandle::start(config).await.expect("sim starts")
}

fn client(sim: &SimHandle, i: usize) -> kube::Client {
    let ep = &sim.endpoints()[i];
    keelson_testbed::build_client(
        "sim",
        &ep.server,
        &ep.token,
        sim.ca_pem.as_deref().map(str::as_bytes),
    )
    .expect("client")
}

async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": labels}, "data": {"k": name}}),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflector_survives_watch_expiry() {
    let mut config = SimConfig::default();
    config.limits.watch_history = 20;
    config.limits.watch_window = Duration::ZERO;
    let sim = sim(config).await;
    let client = client(&sim, 0);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let (reader, writer) = reflector::store();
    // Short server-side timeouts make the watcher re-watch from its last version often;
    // without bookmarks that version falls out of the 20-event window and gets a 410.
    let mut wc = watcher::Config::default().timeout(1);
    wc.bookmarks = false;
    let stream = reflector(writer, watcher(cms.clone(), wc)).applied_objects();
    let task = tokio::spawn(stream.for_each(|_| async {}));
    cms.create(&PostParams::default(), &cm("before", json!({})))
        .await
        .unwrap();
    eventually(
        "the reflector to see the first object",
        Duration::from_secs(10),
        || async { reader.state().len() == 1 },
    )
    .await;
    for i in 0..40 {
        let s: Secret =
            serde_json::from_value(json!({"metadata": {"name": format!("s{i}")}})).unwrap();
        secrets.create(&PostParams::default(), &s).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    cms.create(&PostParams::default(), &cm("after", json!({})))
        .await
        .unwrap();
    cms.delete("before", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "the reflector to converge after a 410",
        Duration::from_secs(15),
        || async {
            let names: Vec<String> = reader
                .state()
                .iter()
                .map(|c| c.metadata.name.clone().unwrap_or_default())
                .collect();
            names == vec!["after".to_owned()]
        },
    )
    .await;
    let stats = sim.stats();
    assert!(
        stats["requests"]["list"].as_u64().unwrap() >= 2,
        "the watcher relisted after the 410: {stats}"
    );
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selectors_pagination_and_generate_name() {
    let sim = sim(SimConfig::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&sim, 0), "default");
    for i in 0..25 {
        let tier = if i % 2 == 0 { "even" } else { "odd" };
        cms.create(
            &PostParams::default(),
            &cm(
                &format!("c{i:02}"),
                json!({"tier": tier, "n": i.to_string()}),
            ),
        )
        .await
        .unwrap();
    }
    let even = cms
        .list(&ListParams::default().labels("tier=even"))
        .await
        .unwrap();
    assert_eq!(even.items.len(), 13);
    let set = cms
        .list(&ListParams::default().labels("tier in (odd),n notin (1,3)"))
        .await
        .unwrap();
    assert_eq!(set.items.len(), 10);
    let by_name = cms
        .list(&ListParams::default().fields("metadata.name=c07"))
        .await
        .unwrap();
    assert_eq!(by_name.items.len(), 1);
    // A paginated list is consistent: changes made between its pages (to an item already
    // returned, and to one not yet returned) show in the watch that follows, not in it.
    let mut seen = Vec::new();
    let mut versions = std::collections::BTreeSet::new();
    let mut token: Option<String> = None;
    for round in 0..10 {
        let mut lp = ListParams::default().limit(10);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = cms.list(&lp).await.unwrap();
        versions.insert(page.metadata.resource_version.clone().unwrap());
        seen.extend(page.items.iter().map(|c| c.metadata.name.clone().unwrap()));
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if round == 0 {
            let p = Patch::Merge(json!({"metadata": {"labels": {"touched": "yes"}}}));
            cms.patch("c00", &PatchParams::default(), &p).await.unwrap();
            cms.delete("c24", &DeleteParams::default()).await.unwrap();
        }
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), 25, "the list shows c24 as it was when it began");
    assert_eq!(
        versions.len(),
        1,
        "every page has the list's resourceVersion"
    );
    let list_rv = versions.into_iter().next().unwrap();
    let wp = kube::api::WatchParams::default().timeout(2);
    let events: Vec<_> = cms
        .watch(&wp, &list_rv)
        .await
        .unwrap()
        .take(2)
        .collect()
        .await;
    let names: Vec<String> = events
        .into_iter()
        .filter_map(|e| match e.unwrap() {
            kube::api::WatchEvent::Modified(c) | kube::api::WatchEvent::Deleted(c) => {
                c.metadata.name
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        names,
        ["c00", "c24"],
        "the watch from the list's version sees both"
    );
    cms.create(&PostParams::default(), &cm("c24", json!({})))
        .await
        .unwrap();
    let generated: ConfigMap =
        serde_json::from_value(json!({"metadata": {"generateName": "gen-"}})).unwrap();
    let made = cms
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    assert!(made.metadata.name.unwrap().starts_with("gen-"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_resources_and_garbage_collection() {
    let sim = sim(SimConfig::default()).await;
    let client = client(&sim, 0);
    let crds = Api::<DynamicObject>::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
            "customresourcedefinitions",
        ),
    );
    let crd: DynamicObject = serde_json::from_value(json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced", "names": {"kind": "Widget", "plural": "widgets"},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}})).unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let discovery = kube::Discovery::new(client.clone()).run().await.unwrap();
    assert!(
        discovery.groups().any(|g| g.name() == "example.com"),
        "CRD group is discoverable"
    );
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    );
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let w: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 1}, "status": {"ignored": true}})).unwrap();
    let created = widgets.create(&PostParams::default(), &w).await.unwrap();
    assert!(
        created.data.get("status").is_none(),
        "status is ignored on create with a status subresource"
    );
    assert_eq!(created.metadata.generation, Some(1));
    let st = widgets
        .patch_status(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ready": true}})),
        )
        .await
        .unwrap();
    assert_eq!(st.data["status"]["ready"], true);
    assert_eq!(
        st.metadata.generation,
        Some(1),
        "status writes do not bump generation"
    );
    let sp = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(sp.metadata.generation, Some(2));

    // Background and orphan propagation from a ConfigMap owner.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for (owner, policy) in [
        ("bg", DeleteParams::background()),
        ("or", DeleteParams::orphan()),
    ] {
        let o = cms
            .create(&PostParams::default(), &cm(owner, json!({})))
            .await
            .unwrap();
        let dep: ConfigMap = serde_json::from_value(json!({"metadata": {"name": format!("{owner}-dep"), "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": owner, "uid": o.metadata.uid}]}})).unwrap();
        cms.create(&PostParams::default(), &dep).await.unwrap();
        cms.delete(owner, &policy).await.unwrap();
    }
    eventually(
        "background deletion to collect the dependent",
        Duration::from_secs(5),
        || async { cms.get_opt("bg-dep").await.unwrap().is_none() },
    )
    .await;
    let orphan = cms.get("or-dep").await.expect("orphaned dependent stays");
    assert!(
        orphan
            .metadata
            .owner_references
            .unwrap_or_default()
            .is_empty(),
        "orphan policy strips the owner reference"
    );

    // Finalizers hold an object until removed.
    let mut held = cm("held", json!({}));
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    cms.create(&PostParams::default(), &held).await.unwrap();
    cms.delete("held", &DeleteParams::default()).await.unwrap();
    assert!(
        cms.get("held")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(
        cms.get_opt("held").await.unwrap().is_none(),
        "removing the last finalizer deletes the object"
    );

    // Namespace termination removes its content.
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "gone"}})).unwrap(),
    )
    .await
    .unwrap();
    let in_gone: Api<ConfigMap> = Api::namespaced(client.clone(), "gone");
    in_gone
        .create(&PostParams::default(), &cm("x", json!({})))
        .await
        .unwrap();
    nss.delete("gone", &DeleteParams::default()).await.unwrap();
    eventually("the namespace to go", Duration::from_secs(5), || async {
        nss.get_opt("gone").await.unwrap().is_none()
    })
    .await;
    assert!(
        in_gone
            .create(&PostParams::default(), &cm("y", json!({})))
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_auth_and_tls() {
    let sim = sim(SimConfig {
        clusters: 2,
        tls: true,
        ..SimConfig::default()
    })
    .await;
    let c1: Api<ConfigMap> = Api::namespaced(client(&sim, 0), "default");
    let c2: Api<ConfigMap> = Api::namespaced(client(&sim, 1), "default");
    c1.create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap();
    assert!(
        c2.get_opt("a").await.unwrap().is_none(),
        "clusters are separate"
    );

    // A wrong token is a 401.
    let ep = &sim.endpoints()[0];
    let bad = keelson_testbed::build_client(
        "sim",
        &ep.server,
        "wrong",
        sim.ca_pem.as_deref().map(str::as_bytes),
    )
    .unwrap();
    let err = Api::<ConfigMap>::namespaced(bad, "default")
        .list(&ListParams::default())
        .await
        .expect_err("401");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 401),
        "{err}"
    );

    // Unreachable, then back; the other cluster is unaffected meanwhile.
    let cluster = sim.cluster("c1").unwrap();
    cluster.faults.set(FaultSettings {
        unreachable: true,
        ..FaultSettings::default()
    });
    assert!(c1.list(&ListParams::default()).await.is_err());
    assert!(c2.list(&ListParams::default()).await.is_ok());
    cluster.faults.set(FaultSettings::default());
    assert!(c1.list(&ListParams::default()).await.is_ok());
    cluster.faults.set(FaultSettings {
        error_rate: 1.0,
        ..FaultSettings::default()
    });
    let err = c1
        .list(&ListParams::default())
        .await
        .expect_err("injected 500");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 500),
        "{err}"
    );
    cluster.faults.set(FaultSettings::default());

    // The real kubectl over HTTPS with the generated CA, including a watch.
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        keelson_sim::kubeconfig::kubeconfig(&sim.endpoints()[..1], sim.ca_pem.as_deref(), None),
    )
    .unwrap();
    let out = keelson_testbed::kubectl(
        &kubeconfig,
        &["get", "configmap", "a", "-o", "jsonpath={.metadata.name}"],
    )
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "a",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut watch = std::process::Command::new(keelson_testbed::kubectl_path().unwrap())
        .args([
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "get",
            "configmaps",
            "-w",
            "--output-watch-events",
            "-o",
            "name",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    c1.create(&PostParams::default(), &cm("watched", json!({})))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    watch.kill().unwrap();
    let out = watch.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("configmap/watched"),
        "kubectl get -w saw the new object: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_mode_makes_workloads_ready() {
    let wl = WorkloadConfig {
        ready_delay: Duration::from_millis(100),
        pods: true,
        ..WorkloadConfig::default()
    };
    let sim = sim(SimConfig {
        workload: Some(wl),
        ..SimConfig::default()
    })
    .await;
    let client = client(&sim, 0);
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d: Deployment = serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}}}})).unwrap();
    deploys.create(&PostParams::default(), &d).await.unwrap();
    eventually(
        "the deployment to become available",
        Duration::from_secs(10),
        || async {
            deploys
                .get("web")
                .await
                .unwrap()
                .status
                .and_then(|s| s.available_replicas)
                == Some(2)
        },
    )
    .await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let job: Job = serde_json::from_value(json!({"metadata": {"name": "once"}, "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}})).unwrap();
    jobs.create(&PostParams::default(), &job).await.unwrap();
    eventually("the job to complete", Duration::from_secs(10), || async {
        jobs.get("once")
            .await
            .unwrap()
            .status
            .and_then(|s| s.succeeded)
            == Some(1)
    })
    .await;
}
