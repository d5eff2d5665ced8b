//! The sync executor against `keelson sim`: the same writes as on the real API server,
//! then waves and hooks in workload mode (Jobs complete; `sim.keelson.io/fail` Jobs
//! fail), SyncFail hooks, resuming from recorded results, and `BeforeHookCreation`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod executor_env;

use executor_env::scenarios::{self, Backend};
use executor_env::*;
use keelson_model::HealthStatusCode;
use keelson_model::operation::SyncPhase;
use keelson_sync::{NoFence, StepOutcome, SyncState, TaskId, resource_results};
use keelson_testbed::{Sim, SimOptions};
use serde_json::{Value, json};

async fn start_sim(workload: bool) -> (Sim, kube::Client) {
    let sim = tokio::task::spawn_blocking(move || {
        Sim::start(SimOptions {
            workload,
            extra_args: vec!["--workload-delay-ms".into(), "300".into()],
            ..SimOptions::default()
        })
    })
    .await
    .unwrap()
    .unwrap();
    let client = sim.client(0).unwrap();
    (sim, client)
}

fn job(ns: &str, name: &str, annotations: Value) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": ns, "annotations": annotations},
        "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "c", "image": "busybox"}]}}}})
}

fn deployment(ns: &str, name: &str, annotations: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "annotations": annotations},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
}

fn wave(w: i32) -> Value {
    json!({"argocd.argoproj.io/sync-wave": w.to_string()})
}

fn condition_true(object: &Value, kind: &str) -> bool {
    object["status"]["conditions"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c["type"] == kind && c["status"] == "True"))
}

async fn live_job(client: &kube::Client, ns: &str, name: &str) -> Option<Value> {
    live(client, "batch/v1", "Job", ns, name).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_executor_writes() {
    let (_sim, client) = start_sim(false).await;
    scenarios::server_side_apply(&client, "exec").await;
    scenarios::client_side_apply(&client, "exec").await;
    scenarios::replace(&client, "exec").await;
    scenarios::prune_with_propagation(&client, "exec", Backend::Sim).await;
    scenarios::dry_run_failure_writes_nothing(&client, "exec").await;
    scenarios::fence_refuses(&client, "exec").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_waves_and_hooks_run_in_order() {
    let (_sim, client) = start_sim(true).await;
    let ns = "waves";
    create(&client, namespace(ns)).await;
    let calls = Calls::default();
    let exec = recording(&client, &calls);
    let mut early = cm(ns, "early", json!({}));
    early["metadata"]["annotations"] = wave(-1);
    let p = plan(
        "waves-1",
        vec![
            input(
                Some(job(
                    ns,
                    "pre",
                    json!({"argocd.argoproj.io/hook": "PreSync"}),
                )),
                None,
            ),
            input(Some(early), None),
            input(Some(deployment(ns, "web", json!({}))), None),
            input(
                Some(job(
                    ns,
                    "post",
                    json!({"argocd.argoproj.io/hook": "PostSync",
                    "argocd.argoproj.io/hook-delete-policy": "HookSucceeded"}),
                )),
                None,
            ),
        ],
        &[],
        false,
    );
    let (outcome, state) = sync(&exec, &p).await;
    succeeded(&outcome);
    assert_eq!(called(&calls, "apply"), ["pre", "early", "web", "post"]);
    assert_eq!(
        called(&calls, "delete"),
        ["post"],
        "HookSucceeded deletes the hook"
    );

    let pre = live_job(&client, ns, "pre").await.unwrap();
    assert!(condition_true(&pre, "Complete"), "{pre}");
    let early = live_cm(&client, ns, "early").await.unwrap();
    let completed = pre["status"]["completionTime"].as_str().unwrap();
    let created = early["metadata"]["creationTimestamp"].as_str().unwrap();
    assert!(
        completed <= created,
        "wave -1 started before the PreSync hook completed"
    );
    let web = live(&client, "apps/v1", "Deployment", ns, "web")
        .await
        .unwrap();
    assert!(condition_true(&web, "Available"), "{web}");
    assert!(
        live_job(&client, ns, "post").await.is_none(),
        "post hook deleted"
    );

    let results = resource_results(&p, &state);
    let pre_result = results.iter().find(|r| r.name == "pre").unwrap();
    assert_eq!(
        pre_result.message.as_deref(),
        Some("Reached expected number of succeeded pods"),
        "a completed hook reports its health message"
    );
    let web_result = results.iter().find(|r| r.name == "web").unwrap();
    assert_eq!(
        web_result.message.as_deref(),
        Some("deployment.apps/web serverside-applied")
    );
    assert!(
        results
            .iter()
            .all(|r| r.hook_phase == Some(keelson_model::OperationPhase::Succeeded))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_failing_presync_runs_syncfail_and_fails() {
    let (_sim, client) = start_sim(true).await;
    let ns = "failing";
    create(&client, namespace(ns)).await;
    let calls = Calls::default();
    let exec = recording(&client, &calls);
    let p = plan(
        "fail-1",
        vec![
            input(
                Some(job(
                    ns,
                    "pre",
                    json!({"argocd.argoproj.io/hook": "PreSync",
                    "sim.keelson.io/fail": "true"}),
                )),
                None,
            ),
            input(Some(cm(ns, "app", json!({}))), None),
            input(
                Some(job(
                    ns,
                    "on-fail",
                    json!({"argocd.argoproj.io/hook": "SyncFail"}),
                )),
                None,
            ),
        ],
        &[],
        false,
    );
    let (outcome, state) = sync(&exec, &p).await;
    let StepOutcome::Failed(text) = &outcome else {
        panic!("expected failure, got {outcome:?}");
    };
    assert!(
        text.starts_with("one or more synchronization tasks completed unsuccessfully"),
        "{text}"
    );
    assert!(text.contains("backoff limit"), "{text}");
    assert_eq!(called(&calls, "apply"), ["pre", "on-fail"]);
    assert!(
        live_cm(&client, ns, "app").await.is_none(),
        "Sync phase never ran"
    );
    let on_fail = live_job(&client, ns, "on-fail").await.unwrap();
    assert!(condition_true(&on_fail, "Complete"), "{on_fail}");
    let pre = live_job(&client, ns, "pre").await.unwrap();
    assert!(condition_true(&pre, "Failed"), "{pre}");
    let pre_id = TaskId::new(SyncPhase::PreSync, &key_of(&job(ns, "pre", json!({}))));
    assert_eq!(state.get(&pre_id).health, Some(HealthStatusCode::Degraded));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_resumes_from_recorded_results_without_reapplying() {
    let (_sim, client) = start_sim(true).await;
    let ns = "resume";
    create(&client, namespace(ns)).await;
    let calls = Calls::default();
    let resources = |live_pre: Option<Value>| {
        vec![
            input(
                Some(job(
                    ns,
                    "pre",
                    json!({"argocd.argoproj.io/hook": "PreSync",
                    "sim.keelson.io/ready-delay-ms": "800"}),
                )),
                live_pre,
            ),
            input(Some(cm(ns, "mid", json!({"k": "v"}))), None),
            input(
                Some(job(
                    ns,
                    "post",
                    json!({"argocd.argoproj.io/hook": "PostSync"}),
                )),
                None,
            ),
        ]
    };
    let p = plan("resume-1", resources(None), &[], false);
    let recorded = {
        let first = recording(&client, &calls);
        let mut state = SyncState::default();
        let outcome = first.step(&p, &mut state, &NoFence).await.unwrap();
        assert!(
            matches!(outcome, StepOutcome::Wait(ref m) if m.contains("hook batch/Job/pre")),
            "{outcome:?}"
        );
        resource_results(&p, &state)
    };
    assert_eq!(called(&calls, "apply"), ["pre"]);

    let mut state = SyncState::from_resource_results(&p, &recorded);
    let second = recording(&client, &calls);
    let outcome = second
        .run_to_completion(&p, &mut state, &NoFence, POLL, DEADLINE, |_| {})
        .await
        .unwrap();
    succeeded(&outcome);
    assert_eq!(
        called(&calls, "apply"),
        ["pre", "mid", "post"],
        "each applied once"
    );
    assert_eq!(
        called(&calls, "dry_run").len(),
        3,
        "the dry run is not repeated"
    );

    // A second sync of the same hooks: the default BeforeHookCreation policy deletes the
    // old Job first (and waits until it is gone), then creates it again.
    let old = live_job(&client, ns, "pre").await.unwrap();
    let p2 = plan("resume-2", resources(Some(old.clone())), &[], false);
    let (outcome, _) = sync(&second, &p2).await;
    succeeded(&outcome);
    assert_eq!(called(&calls, "delete"), ["pre"]);
    let new = live_job(&client, ns, "pre").await.unwrap();
    assert_ne!(new["metadata"]["uid"], old["metadata"]["uid"], "re-created");
    assert!(condition_true(&new, "Complete"), "{new}");
}
