//! Differential conformance of `keelson sim` against the real kube-apiserver: the same
//! operations through real clients (kube-rs typed and dynamic APIs, kube-runtime's
//! watcher and reflector, the real kubectl) must give the same answers, apart from the
//! differences listed by name in `targets::VERSION_DIFFERENCES`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod targets;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{
    Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde_json::{Value, json};
use std::time::Duration;
use targets::{Target, Targets, dynamic, managed_fields, normalise, without_version_differences};

fn obj(v: Value) -> DynamicObject {
    serde_json::from_value(v).expect("valid object")
}

fn val(o: &DynamicObject) -> Value {
    serde_json::to_value(o).expect("serialisable")
}

async fn ensure_ns(t: &Target, ns: &str) {
    let api = dynamic(&t.client, "", "v1", "Namespace", "namespaces", None);
    let _ = api
        .create(
            &PostParams::default(),
            &obj(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})),
        )
        .await;
}

struct Case {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    body: Value,
}

fn default_cases() -> Vec<Case> {
    let template = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}]}});
    vec![
        Case {
            group: "apps",
            version: "v1",
            kind: "Deployment",
            plural: "deployments",
            body: json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template}}),
        },
        Case {
            group: "apps",
            version: "v1",
            kind: "StatefulSet",
            plural: "statefulsets",
            body: json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"}, "spec": {"serviceName": "db", "selector": {"matchLabels": {"app": "web"}}, "template": template}}),
        },
        Case {
            group: "",
            version: "v1",
            kind: "Service",
            plural: "services",
            body: json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
        },
        Case {
            group: "batch",
            version: "v1",
            kind: "Job",
            plural: "jobs",
            body: json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"}, "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}),
        },
        Case {
            group: "",
            version: "v1",
            kind: "ConfigMap",
            plural: "configmaps",
            body: json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "labels": {"a": "b"}}, "data": {"k": "v"}}),
        },
    ]
}

/// What a create returns, normalised, per target.
async fn created(t: &Target, case: &Case, ns: &str) -> Value {
    let api = dynamic(
        &t.client,
        case.group,
        case.version,
        case.kind,
        case.plural,
        Some(ns),
    );
    let mut body = case.body.clone();
    body["metadata"]["namespace"] = ns.into();
    let out = api
        .create(&PostParams::default(), &obj(body))
        .await
        .unwrap_or_else(|e| panic!("{}: create {} failed: {e}", t.name, case.kind));
    let mut v = val(&out);
    if let Some(m) = v["metadata"].as_object_mut() {
        m.remove("managedFields");
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defaults_patches_conflicts_and_leases_match() {
    let t = Targets::start(&[]).await;
    for target in t.both() {
        ensure_ns(target, "diff").await;
    }
    for case in default_cases() {
        let real = normalise(targets::without_real_quirks(
            created(&t.real, &case, "diff").await,
        ));
        let sim = normalise(without_version_differences(
            created(&t.sim, &case, "diff").await,
        ));
        assert_eq!(
            sim, real,
            "defaulted {} differs (left: sim, right: real)",
            case.kind
        );
    }

    // Merge, strategic merge and JSON patches of the same Deployment.
    let patches = [
        ("merge", Patch::Merge(json!({"metadata": {"labels": {"tier": "front"}}, "spec": {"replicas": 3}}))),
        ("strategic", Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "env": [{"name": "A", "value": "1"}]}, {"name": "side", "image": "busybox:1.36"}]}}}}))),
        ("strategic-delete", Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "side", "$patch": "delete"}]}}}}))),
        ("json", Patch::Json::<Value>(serde_json::from_value(json!([{"op": "replace", "path": "/spec/replicas", "value": 2}, {"op": "add", "path": "/metadata/annotations", "value": {"x": "y"}}])).unwrap())),
    ];
    for (what, patch) in &patches {
        let mut results = Vec::new();
        for target in t.both() {
            let api = dynamic(
                &target.client,
                "apps",
                "v1",
                "Deployment",
                "deployments",
                Some("diff"),
            );
            let out = api
                .patch("web", &PatchParams::default(), patch)
                .await
                .unwrap_or_else(|e| panic!("{}: {what} patch failed: {e}", target.name));
            let mut v = val(&out);
            v["metadata"]
                .as_object_mut()
                .unwrap()
                .remove("managedFields");
            results.push(normalise(if target.name == "real" {
                targets::without_real_quirks(v)
            } else {
                v
            }));
        }
        assert_eq!(
            results[1], results[0],
            "{what} patch result differs (left: sim, right: real)"
        );
    }

    // A stale update is a 409 Conflict on both.
    for target in t.both() {
        let api: Api<ConfigMap> = Api::namespaced(target.client.clone(), "diff");
        let mut cm = api.get("cfg").await.unwrap();
        let stale = cm.clone();
        cm.data
            .get_or_insert_default()
            .insert("k".into(), "v2".into());
        api.replace("cfg", &PostParams::default(), &cm)
            .await
            .unwrap();
        let err = api
            .replace("cfg", &PostParams::default(), &stale)
            .await
            .expect_err("stale update must fail");
        let kube::Error::Api(status) = err else {
            panic!("{}: not an API error: {err}", target.name)
        };
        assert_eq!(
            (status.code, status.reason.as_str()),
            (409, "Conflict"),
            "{}",
            target.name
        );
    }

    // Lease compare-and-swap, as leader election and Keelson's claims use it.
    for target in t.both() {
        let api: Api<Lease> = Api::namespaced(target.client.clone(), "diff");
        let lease: Lease = serde_json::from_value(json!({"metadata": {"name": "claim"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 10}})).unwrap();
        let created = api.create(&PostParams::default(), &lease).await.unwrap();
        assert!(
            api.create(&PostParams::default(), &lease).await.is_err(),
            "{}: second create must fail",
            target.name
        );
        let mut take = created.clone();
        take.spec.as_mut().unwrap().holder_identity = Some("b".into());
        let taken = api
            .replace("claim", &PostParams::default(), &take)
            .await
            .unwrap();
        assert_eq!(taken.spec.unwrap().holder_identity.as_deref(), Some("b"));
        let mut late = created.clone();
        late.spec.as_mut().unwrap().holder_identity = Some("c".into());
        let err = api
            .replace("claim", &PostParams::default(), &late)
            .await
            .expect_err("CAS with a stale version must fail");
        assert!(
            matches!(err, kube::Error::Api(ref s) if s.code == 409),
            "{}: {err}",
            target.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_matches() {
    let t = Targets::start(&[]).await;
    let config = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app", "namespace": "ssa", "labels": {"app": "app", "team": "a"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "app"}}, "template": {"metadata": {"labels": {"app": "app"}},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.25", "ports": [{"containerPort": 80, "protocol": "TCP"}], "env": [{"name": "A", "value": "1"}]}]}}}});
    let mut fewer = config.clone();
    fewer["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("team");
    fewer["spec"]["template"]["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("env");
    let mut steps: Vec<Vec<Value>> = vec![Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    let mut conflicts = Vec::new();
    for target in t.both() {
        ensure_ns(target, "ssa").await;
        let api = dynamic(
            &target.client,
            "apps",
            "v1",
            "Deployment",
            "deployments",
            Some("ssa"),
        );
        let pp = PatchParams::apply("keelson-test");
        let first = api
            .patch("app", &pp, &Patch::Apply(&config))
            .await
            .unwrap_or_else(|e| panic!("{}: apply failed: {e}", target.name));
        steps[0].push(val(&first));
        let second = api.patch("app", &pp, &Patch::Apply(&fewer)).await.unwrap();
        steps[1].push(val(&second));
        // Another manager takes .spec.replicas with an update: applying it again conflicts.
        api.patch(
            "app",
            &PatchParams {
                field_manager: Some("scaler".into()),
                ..PatchParams::default()
            },
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
        let err = api
            .patch("app", &pp, &Patch::Apply(&fewer))
            .await
            .expect_err("apply over another manager's field must conflict");
        let kube::Error::Api(status) = err else {
            panic!("{}: not an API error", target.name)
        };
        conflicts.push((status.code, status.reason.clone(), status.message.clone()));
        steps[2].push(val(&api.get("app").await.unwrap()));
        let forced = api
            .patch("app", &pp.clone().force(), &Patch::Apply(&fewer))
            .await
            .unwrap();
        steps[3].push(val(&forced));
    }
    assert_eq!(
        conflicts[1], conflicts[0],
        "apply conflict differs (left: sim, right: real)"
    );
    assert_eq!(conflicts[0].0, 409);
    for (i, step) in steps.iter().enumerate() {
        let (real, sim) = (&step[0], &step[1]);
        assert_eq!(
            managed_fields(sim),
            managed_fields(real),
            "managedFields after step {i} differ (left: sim, right: real)"
        );
        let strip = |v: &Value| {
            let mut v = targets::without_real_quirks(v.clone());
            v["metadata"]
                .as_object_mut()
                .unwrap()
                .remove("managedFields");
            normalise(v)
        };
        assert_eq!(
            strip(sim),
            strip(real),
            "object after apply step {i} differs (left: sim, right: real)"
        );
    }
}

/// Events of a watch, as (type, name, data.k) until `n` events or a timeout.
async fn collect_events(api: &Api<ConfigMap>, rv: &str, n: usize) -> Vec<(String, String, String)> {
    let wp = WatchParams::default().timeout(10);
    let stream = api.watch(&wp, rv).await.expect("watch starts");
    let mut stream = Box::pin(stream);
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while out.len() < n {
        let Ok(Some(ev)) = tokio::time::timeout_at(deadline, stream.next()).await else {
            break;
        };
        let ev = ev.expect("watch event");
        let (kind, cm) = match ev {
            WatchEvent::Added(cm) => ("ADDED", cm),
            WatchEvent::Modified(cm) => ("MODIFIED", cm),
            WatchEvent::Deleted(cm) => ("DELETED", cm),
            WatchEvent::Bookmark(_) => continue,
            WatchEvent::Error(e) => panic!("watch error {e:?}"),
        };
        let k = cm
            .data
            .as_ref()
            .and_then(|d| d.get("k").cloned())
            .unwrap_or_default();
        out.push((kind.to_owned(), cm.metadata.name.unwrap_or_default(), k));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sequences_and_expiry_match() {
    // Without its watch cache and with frequent compaction, the real server expires old
    // versions within seconds, as the simulator does once they leave its history.
    let t = Targets::start_with(
        &["--watch-history", "100", "--watch-window-secs", "0"],
        &["--watch-cache=false", "--etcd-compaction-interval=2s"],
    )
    .await;
    let mut sequences = Vec::new();
    let mut expired = Vec::new();
    for target in t.both() {
        ensure_ns(target, "w").await;
        let api: Api<ConfigMap> = Api::namespaced(target.client.clone(), "w");
        let start = api
            .list(&Default::default())
            .await
            .unwrap()
            .metadata
            .resource_version
            .unwrap();
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": "x"}, "data": {"k": "1"}})).unwrap();
        api.create(&PostParams::default(), &cm).await.unwrap();
        api.patch(
            "x",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": "2"}})),
        )
        .await
        .unwrap();
        api.delete("x", &DeleteParams::default()).await.unwrap();
        sequences.push(collect_events(&api, &start, 3).await);

        // Push the start version out of the window (simulator: 100 events; real: etcd
        // compacts every 2 s), then watch from it: 410 Gone.
        for i in 0..120 {
            let cm: ConfigMap =
                serde_json::from_value(json!({"metadata": {"name": format!("fill-{i}")}})).unwrap();
            api.create(&PostParams::default(), &cm).await.unwrap();
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        let gone = match api.watch(&WatchParams::default().timeout(5), &start).await {
            Err(kube::Error::Api(s)) => s.code,
            Err(e) => panic!("{}: unexpected watch error {e}", target.name),
            Ok(stream) => {
                let mut stream = Box::pin(stream);
                match tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
                    Ok(Some(Ok(WatchEvent::Error(e)))) => e.code,
                    Ok(Some(Err(kube::Error::Api(s)))) => s.code,
                    other => panic!("{}: expected 410, got {other:?}", target.name),
                }
            }
        };
        expired.push(gone);
    }
    assert_eq!(
        sequences[1], sequences[0],
        "watch event sequence differs (left: sim, right: real)"
    );
    assert_eq!(sequences[0].len(), 3);
    assert_eq!(expired, vec![410, 410]);
}

/// Runs `kubectl get -w` for a few seconds while a ConfigMap is created; its output.
async fn kubectl_watch(kubeconfig: &std::path::Path, client: &kube::Client) -> String {
    let mut child = std::process::Command::new(keelson_testbed::kubectl_path().unwrap())
        .args([
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "get",
            "configmaps",
            "-n",
            "kc",
            "-w",
            "--output-watch-events",
            "-o",
            "name",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "kc");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "watched"}})).unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_works_the_same_on_both() {
    let t = Targets::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("app.yaml");
    std::fs::write(&manifest, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kc\n  namespace: kc\ndata:\n  a: \"1\"\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: kd\n  namespace: kc\nspec:\n  selector:\n    matchLabels: {app: kd}\n  template:\n    metadata:\n      labels: {app: kd}\n    spec:\n      containers:\n      - name: c\n        image: nginx:1.25\n").unwrap();
    let ns_file = dir.path().join("ns.yaml");
    std::fs::write(
        &ns_file,
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kc\n",
    )
    .unwrap();
    let changed = dir.path().join("changed.yaml");
    std::fs::write(
        &changed,
        std::fs::read_to_string(&manifest)
            .unwrap()
            .replace("a: \"1\"", "a: \"2\""),
    )
    .unwrap();
    let m = manifest.to_str().unwrap();
    let mut outcomes = Vec::new();
    for target in t.both() {
        let kc = &target.kubeconfig;
        let run = |args: &[&str]| targets::kubectl(kc, args);
        // `kubectl create -f`: kubectl's imperative generators (`kubectl create namespace`)
        // send protobuf bodies, which the simulator does not decode (it answers 415).
        let (code, _, err) = run(&["create", "-f", ns_file.to_str().unwrap()]);
        assert_eq!(code, 0, "{}: create namespace: {err}", target.name);
        let (code, out, err) = run(&["api-resources", "-o", "name"]);
        assert_eq!(code, 0, "{}: api-resources: {err}", target.name);
        for r in [
            "configmaps",
            "deployments.apps",
            "leases.coordination.k8s.io",
            "customresourcedefinitions.apiextensions.k8s.io",
        ] {
            assert!(
                out.lines().any(|l| l == r),
                "{}: api-resources lacks {r}",
                target.name
            );
        }
        let (code, _, err) = run(&["apply", "-f", m]);
        assert_eq!(code, 0, "{}: client-side apply: {err}", target.name);
        let (code, _, err) = run(&["apply", "--server-side", "--force-conflicts", "-f", m]);
        assert_eq!(code, 0, "{}: server-side apply: {err}", target.name);
        let (same, _, err) = run(&["diff", "--server-side", "--force-conflicts", "-f", m]);
        let (differs, diff_out, _) = run(&[
            "diff",
            "--server-side",
            "--force-conflicts",
            "-f",
            changed.to_str().unwrap(),
        ]);
        assert!(
            diff_out.contains("a: \"2\""),
            "{}: diff output lacks the change: {diff_out}",
            target.name
        );
        let (code, json_out, err2) = run(&["get", "configmap", "kc", "-n", "kc", "-o", "json"]);
        assert_eq!(code, 0, "{}: get: {err2}", target.name);
        let cm: Value = serde_json::from_str(&json_out).unwrap();
        let (code, table, _) = run(&["get", "configmaps", "-n", "kc"]);
        assert_eq!(code, 0);
        assert!(
            table.contains("kc"),
            "{}: table output: {table}",
            target.name
        );
        let watched = kubectl_watch(kc, &target.client).await;
        assert!(
            watched.contains("configmap/watched"),
            "{}: kubectl get -w saw: {watched}",
            target.name
        );
        outcomes.push((same, differs, cm["data"].clone(), err.is_empty()));
    }
    assert_eq!(
        outcomes[1].0, outcomes[0].0,
        "kubectl diff on an unchanged object"
    );
    assert_eq!(
        (outcomes[0].0, outcomes[0].1),
        (0, 1),
        "diff exits 0 when equal and 1 when different"
    );
    assert_eq!(outcomes[1].1, outcomes[0].1);
    assert_eq!(outcomes[1].2, outcomes[0].2);

    // Foreground cascading deletion: the API server marks the owner (deletionTimestamp and
    // the foregroundDeletion finalizer); the garbage collector — in kube-controller-manager,
    // which the real test server does not run, and built into the simulator — then deletes
    // the dependents and the owner.
    for target in t.both() {
        let api: Api<ConfigMap> = Api::namespaced(target.client.clone(), "kc");
        let owner = api.get("kc").await.unwrap();
        let dep: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "dep", "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "kc", "uid": owner.metadata.uid, "blockOwnerDeletion": true}]}})).unwrap();
        api.create(&PostParams::default(), &dep).await.unwrap();
        let (code, _, err) = targets::kubectl(
            &target.kubeconfig,
            &[
                "delete",
                "configmap",
                "kc",
                "-n",
                "kc",
                "--cascade=foreground",
                "--wait=false",
            ],
        );
        assert_eq!(
            code, 0,
            "{}: delete --cascade=foreground: {err}",
            target.name
        );
        if target.name == "real" {
            let marked = api.get("kc").await.unwrap();
            assert!(marked.metadata.deletion_timestamp.is_some());
            assert_eq!(
                marked.metadata.finalizers,
                Some(vec!["foregroundDeletion".to_owned()])
            );
            continue;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while api.get_opt("dep").await.unwrap().is_some()
            || api.get_opt("kc").await.unwrap().is_some()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: dependents were not collected",
                target.name
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflector_survives_expiry_on_both() {
    let t = Targets::start_with(
        &["--watch-history", "20", "--watch-window-secs", "0"],
        &["--watch-cache=false", "--etcd-compaction-interval=2s"],
    )
    .await;
    for target in t.both() {
        ensure_ns(target, "refl").await;
        let cms: Api<ConfigMap> = Api::namespaced(target.client.clone(), "refl");
        let secrets: Api<Secret> = Api::namespaced(target.client.clone(), "refl");
        let (reader, writer) = reflector::store();
        // Short server-side timeouts make the watcher re-watch from its last version;
        // without bookmarks that version expires while other kinds are written.
        let mut wc = watcher::Config::default().timeout(1);
        wc.bookmarks = false;
        let task = tokio::spawn(
            reflector(writer, watcher(cms.clone(), wc))
                .applied_objects()
                .for_each(|_| async {}),
        );
        let first: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": "before"}})).unwrap();
        cms.create(&PostParams::default(), &first).await.unwrap();
        for i in 0..40 {
            let s: Secret =
                serde_json::from_value(json!({"metadata": {"name": format!("s{i}")}})).unwrap();
            secrets.create(&PostParams::default(), &s).await.unwrap();
        }
        tokio::time::sleep(Duration::from_secs(6)).await;
        let after: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": "after"}})).unwrap();
        cms.create(&PostParams::default(), &after).await.unwrap();
        cms.delete("before", &DeleteParams::default())
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let names: Vec<String> = reader
                .state()
                .iter()
                .map(|c| c.metadata.name.clone().unwrap_or_default())
                .collect();
            if names == vec!["after".to_owned()] {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: reflector did not converge: {names:?}",
                target.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        task.abort();
    }
}
