//! The write scenarios, run against the real kube-apiserver and `keelson sim` alike.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use keelson_sync::{Fence, RESOURCE_NOT_FOUND, StepOutcome, SyncState};
use serde_json::{Value, json};

use super::*;

/// Which cluster runs the scenario (the real API server has no garbage collector).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    ApiServer,
    Sim,
}

/// Server-side apply: the namespace and a ConfigMap created in one sync (the dry run of
/// the ConfigMap passes although its namespace is created by the same sync), then
/// updated; the field manager owns the fields.
pub async fn server_side_apply(client: &kube::Client, ns: &str) {
    let exec = executor(client);
    let first = cm(ns, "ssa", json!({"a": "1"}));
    let p = plan(
        "ssa-1",
        vec![input(Some(namespace(ns)), None), input(Some(first), None)],
        &[],
        false,
    );
    let (outcome, state) = sync(&exec, &p).await;
    succeeded(&outcome);
    assert_eq!(
        message(&p, &state, "ssa"),
        "configmap/ssa serverside-applied"
    );
    assert_eq!(
        message(&p, &state, ns),
        format!("namespace/{ns} serverside-applied")
    );
    let live1 = live_cm(client, ns, "ssa").await.unwrap();
    assert_eq!(live1["data"], json!({"a": "1"}));
    let managers: Vec<&str> = live1["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(managers.contains(&"argocd-controller"), "{managers:?}");

    let second = cm(ns, "ssa", json!({"a": "2", "b": "3"}));
    let p = plan("ssa-2", vec![input(Some(second), Some(live1))], &[], false);
    let (outcome, _) = sync(&exec, &p).await;
    succeeded(&outcome);
    let live2 = live_cm(client, ns, "ssa").await.unwrap();
    assert_eq!(live2["data"], json!({"a": "2", "b": "3"}));
}

/// Client-side apply: created with the last-applied annotation; a field removed from the
/// desired object is removed from the live one while a field of another writer stays;
/// a repeat is `unchanged`.
pub async fn client_side_apply(client: &kube::Client, ns: &str) {
    let exec = executor(client);
    let opts = ["ServerSideApply=false"];
    let p = plan(
        "csa-1",
        vec![input(
            Some(cm(ns, "csa", json!({"a": "1", "b": "2"}))),
            None,
        )],
        &opts,
        false,
    );
    let (outcome, state) = sync(&exec, &p).await;
    succeeded(&outcome);
    assert_eq!(message(&p, &state, "csa"), "configmap/csa created");
    let live1 = live_cm(client, ns, "csa").await.unwrap();
    assert!(keelson_sync::last_applied(&live1).is_some(), "{live1}");

    // Another writer adds a label the desired object never had.
    let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client.clone(), ns);
    api.patch(
        "csa",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"metadata": {"labels": {"other": "writer"}}})),
    )
    .await
    .unwrap();

    let desired = cm(ns, "csa", json!({"a": "1"}));
    let live1 = live_cm(client, ns, "csa").await.unwrap();
    let p = plan(
        "csa-2",
        vec![input(Some(desired.clone()), Some(live1))],
        &opts,
        false,
    );
    let (outcome, state) = sync(&exec, &p).await;
    succeeded(&outcome);
    assert_eq!(message(&p, &state, "csa"), "configmap/csa configured");
    let live2 = live_cm(client, ns, "csa").await.unwrap();
    assert_eq!(
        live2["data"],
        json!({"a": "1"}),
        "removed field really removed"
    );
    assert_eq!(live2["metadata"]["labels"]["other"], "writer");

    let p = plan(
        "csa-3",
        vec![input(Some(desired), Some(live2))],
        &opts,
        false,
    );
    let (outcome, state) = sync(&exec, &p).await;
    succeeded(&outcome);
    assert_eq!(message(&p, &state, "csa"), "configmap/csa unchanged");
}

/// Replace: created when absent, then replaced with the live resourceVersion — the live
/// object becomes exactly the desired one (a field of another writer is gone).
pub async fn replace(client: &kube::Client, ns: &str) {
    let exec = executor(client);
    let opts = ["Replace=true"];
    let p = plan(
        "rep-1",
        vec![input(Some(cm(ns, "rep", json!({"a": "1"}))), None)],
        &opts,
        false,
    );
    let (outcome, state) = sync(&exec, &p).await;
    succeeded(&outcome);
    assert_eq!(message(&p, &state, "rep"), "configmap/rep created");
    let mut other = live_cm(client, ns, "rep").await.unwrap();
    other["metadata"]["labels"] = json!({"other": "writer"});
    let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client.clone(), ns);
    api.replace(
        "rep",
        &PostParams::default(),
        &serde_json::from_value(other).unwrap(),
    )
    .await
    .unwrap();
    let live1 = live_cm(client, ns, "rep").await.unwrap();
    let rv1 = live1["metadata"]["resourceVersion"].clone();

    let p = plan(
        "rep-2",
        vec![input(Some(cm(ns, "rep", json!({"b": "2"}))), Some(live1))],
        &opts,
        false,
    );
    let (outcome, state) = sync(&exec, &p).await;
    succeeded(&outcome);
    assert_eq!(message(&p, &state, "rep"), "configmap/rep replaced");
    let live2 = live_cm(client, ns, "rep").await.unwrap();
    assert_eq!(live2["data"], json!({"b": "2"}));
    assert!(live2["metadata"].get("labels").is_none(), "{live2}");
    assert_ne!(live2["metadata"]["resourceVersion"], rv1);
}

fn owned_by(ns: &str, name: &str, owner: &Value) -> Value {
    let mut child = cm(ns, name, json!({}));
    child["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "ConfigMap",
        "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"]}]);
    child
}

/// Prune with each propagation policy: the policy reaches the API server (on the real
/// one, without a garbage collector, foreground and orphan leave their finalizer; the
/// simulator collects or orphans the dependent).
pub async fn prune_with_propagation(client: &kube::Client, ns: &str, backend: Backend) {
    let exec = executor(client);
    for (policy, option) in [
        ("foreground", "PrunePropagationPolicy=foreground"),
        ("background", "PrunePropagationPolicy=background"),
        ("orphan", "PrunePropagationPolicy=orphan"),
    ] {
        let owner_name = format!("owner-{policy}");
        let child_name = format!("child-{policy}");
        let owner = create(client, cm(ns, &owner_name, json!({}))).await;
        create(client, owned_by(ns, &child_name, &owner)).await;
        let p = plan(
            &format!("prune-{policy}"),
            vec![input(None, Some(owner))],
            &[option],
            true,
        );
        let (outcome, state) = sync(&exec, &p).await;
        succeeded(&outcome);
        assert_eq!(message(&p, &state, &owner_name), "pruned");
        let owner_live = live_cm(client, ns, &owner_name).await;
        let child_live = live_cm(client, ns, &child_name).await;
        match (backend, policy) {
            (Backend::ApiServer, "background") => assert!(owner_live.is_none()),
            (Backend::ApiServer, _) => {
                let owner_live = owner_live.unwrap();
                let finalizer = if policy == "orphan" {
                    "orphan"
                } else {
                    "foregroundDeletion"
                };
                assert_eq!(owner_live["metadata"]["finalizers"], json!([finalizer]));
                assert!(owner_live["metadata"]["deletionTimestamp"].is_string());
            }
            (Backend::Sim, "orphan") => {
                assert!(owner_live.is_none());
                let child = child_live.unwrap();
                assert!(
                    child["metadata"]
                        .get("ownerReferences")
                        .is_none_or(|r| r.as_array().is_none_or(Vec::is_empty))
                );
            }
            (Backend::Sim, _) => {
                assert!(owner_live.is_none(), "{policy}: owner left");
                assert!(child_live.is_none(), "{policy}: dependent left");
            }
        }
    }
    // Pruning an object that is already gone succeeds.
    let gone = cm(ns, "never-existed", json!({}));
    let p = plan("prune-gone", vec![input(None, Some(gone))], &[], true);
    let (outcome, _) = sync(&exec, &p).await;
    succeeded(&outcome);
}

/// A failing dry run fails the operation before anything is written.
pub async fn dry_run_failure_writes_nothing(client: &kube::Client, ns: &str) {
    let exec = executor(client);
    let unknown = json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w", "namespace": ns}});
    let p = plan(
        "dry-fail",
        vec![
            input(Some(cm(ns, "dry-ok", json!({"a": "1"}))), None),
            input(Some(unknown), None),
        ],
        &[],
        false,
    );
    let (outcome, state) = sync(&exec, &p).await;
    let StepOutcome::Failed(text) = &outcome else {
        panic!("expected failure, got {outcome:?}");
    };
    assert!(
        text.contains("(dry run)") && text.contains(RESOURCE_NOT_FOUND),
        "{text}"
    );
    assert!(!state.started());
    assert!(
        live_cm(client, ns, "dry-ok").await.is_none(),
        "nothing written"
    );
    assert_eq!(message(&p, &state, "w"), RESOURCE_NOT_FOUND);
}

struct Refuse;

impl Fence for Refuse {
    fn check(&self) -> Result<(), String> {
        Err("shard moved to replica 2".to_owned())
    }
}

/// A fence that refuses stops the step before any write.
pub async fn fence_refuses(client: &kube::Client, ns: &str) {
    let calls: Calls = Calls::default();
    let exec = recording(client, &calls);
    let p = plan(
        "fenced",
        vec![input(Some(cm(ns, "fenced", json!({}))), None)],
        &[],
        false,
    );
    let mut state = SyncState::default();
    let err = exec.step(&p, &mut state, &Refuse).await.unwrap_err();
    assert_eq!(err.to_string(), "fenced: shard moved to replica 2");
    assert!(calls.lock().unwrap().is_empty(), "no call was made");
    assert_eq!(state, SyncState::default());
    assert!(live_cm(client, ns, "fenced").await.is_none());
}

/// Polls `f` (async) until it holds; panics after `limit`.
pub async fn until<F, Fut>(what: &str, limit: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out after {limit:?} waiting for {what}");
}
