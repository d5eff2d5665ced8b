//! End-to-end tests of `keelson controller` as a process: a real kube-apiserver as the
//! management cluster and in-cluster destination, `keelson sim` destinations in workload
//! mode, real repo-servers and Git fixture repos. Scenarios sharing an environment run
//! concurrently inside one test function; each failure is reported by scenario name.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod controller_support;

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use controller_support::first_seen::{FirstSeen, created_at_version, deleted_at};
use controller_support::*;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

const SYNC_WAIT: Duration = Duration::from_secs(90);

/// Creates namespace `name` on the destination and an app of the same name deploying
/// `repo_url`'s `app/` directory into it with `sync_policy`.
async fn create_app_in_own_namespace(
    env: &Env,
    name: &str,
    repo_url: &str,
    dest: Dest,
    sync_policy: Value,
) -> anyhow::Result<()> {
    env.namespace(dest, name).await?;
    let manifest = app_manifest(name, repo_url, "app", &env.server(dest), name, sync_policy);
    env.create_app(manifest).await
}

/// Creates a manual-sync app of `repo_url`'s `app/` directory and waits for its first
/// reconcile.
async fn create_manual_app(
    env: &Env,
    name: &str,
    repo_url: &str,
    dest: Dest,
    ns: &str,
) -> anyhow::Result<()> {
    let manifest = app_manifest(name, repo_url, "app", &env.server(dest), ns, json!({}));
    env.create_app(manifest).await?;
    first_reconcile(env, name).await
}

/// Waits until the app has a sync status at all.
async fn first_reconcile(env: &Env, name: &str) -> anyhow::Result<()> {
    env.wait_app(name, "first reconcile", SYNC_WAIT, |a| {
        !sync_status(a).is_empty()
    })
    .await?;
    Ok(())
}
const WAVE: &str = "argocd.argoproj.io/sync-wave";
const HOOK: &str = "argocd.argoproj.io/hook";
const HOOK_DELETE_POLICY: &str = "argocd.argoproj.io/hook-delete-policy";
const FINALIZER: &str = "resources-finalizer.argocd.argoproj.io";

fn data_key(cm: &Option<Value>) -> Option<String> {
    cm.as_ref()?["data"]["key"].as_str().map(str::to_string)
}

// ---------------------------------------------------------------- scenario 1

/// A new automated app syncs (ConfigMaps + a Deployment) to Synced + Healthy; a commit
/// changing a ConfigMap is applied and recorded as the new revision.
async fn auto_sync_and_git_change(env: &Env) -> anyhow::Result<()> {
    let (dest, ns, name) = (Dest::Sim(0), "s1", "s1-auto");
    env.namespace(dest, ns).await?;
    let fx = Fixture::new()?;
    let sha1 = fx.commit(
        &[
            ("app/cm-a.yaml", cm_yaml("cm-a", "one", &[])),
            ("app/cm-b.yaml", cm_yaml("cm-b", "b", &[])),
            ("app/web.yaml", deployment_yaml("web")),
        ],
        &[],
        "v1",
    )?;
    let t = Instant::now();
    env.create_app(app_manifest(
        name,
        &fx.url(),
        "app",
        &env.server(dest),
        ns,
        json!({"automated": {}}),
    ))
    .await?;
    let app = env
        .wait_app(name, "Synced+Healthy at the first commit", SYNC_WAIT, |a| {
            synced_healthy(a) && sync_revision(a) == sha1
        })
        .await?;
    eprintln!(
        "s1: first sync Synced+Healthy after {:.1}s",
        t.elapsed().as_secs_f64()
    );
    ensure!(
        op_phase(&app) == "Succeeded",
        "operation phase: {}",
        brief(&app)
    );
    ensure!(data_key(&env.config_map(dest, ns, "cm-a").await?).as_deref() == Some("one"));
    ensure!(
        env.config_map(dest, ns, "cm-b").await?.is_some(),
        "cm-b missing"
    );
    let web = env.live(dest, "apps/v1", "Deployment", ns, "web").await?;
    ensure!(web.is_some(), "deployment web missing on the destination");
    let t = Instant::now();
    let sha2 = fx.commit(&[("app/cm-a.yaml", cm_yaml("cm-a", "two", &[]))], &[], "v2")?;
    env.wait_app(name, "Synced at the second commit", SYNC_WAIT, |a| {
        synced_healthy(a) && sync_revision(a) == sha2
    })
    .await?;
    eprintln!(
        "s1: git change applied after {:.1}s",
        t.elapsed().as_secs_f64()
    );
    let cm = env.config_map(dest, ns, "cm-a").await?;
    ensure!(
        data_key(&cm).as_deref() == Some("two"),
        "cm-a not updated: {cm:?}"
    );
    // A hard refresh request is served and its annotation removed.
    let before = env.app(name).await?.context("s1 vanished")?["status"]["reconciledAt"].clone();
    env.patch_app(
        name,
        json!({"metadata": {"annotations": {"argocd.argoproj.io/refresh": "hard"}}}),
    )
    .await?;
    env.wait_app(
        name,
        "refresh annotation removed",
        Duration::from_secs(20),
        |a| a["metadata"]["annotations"]["argocd.argoproj.io/refresh"].is_null(),
    )
    .await?;
    let after = env.app(name).await?.context("s1 vanished")?["status"]["reconciledAt"].clone();
    eprintln!("s1: hard refresh served (reconciledAt {before} -> {after})");
    Ok(())
}

// ---------------------------------------------------------------- scenario 2

async fn drift(env: &Env, dest: Dest, ns: &str, name: &str, value: &str) -> anyhow::Result<()> {
    let api: Api<ConfigMap> = Api::namespaced(env.client(dest)?, ns);
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"key": value}})),
    )
    .await
    .with_context(|| format!("drifting {ns}/{name}"))?;
    Ok(())
}

/// Drift made by another client: with selfHeal it is reverted; without, the app stays
/// OutOfSync and the drift stays.
async fn drift_and_self_heal(env: &Env) -> anyhow::Result<()> {
    let dest = Dest::InCluster;
    let fx = Fixture::new()?;
    fx.commit(
        &[("app/drift.yaml", cm_yaml("drift", "git", &[]))],
        &[],
        "v1",
    )?;
    for (name, policy) in [
        ("s2-heal", json!({"automated": {"selfHeal": true}})),
        ("s2-noheal", json!({"automated": {}})),
    ] {
        create_app_in_own_namespace(env, name, &fx.url(), dest, policy).await?;
    }
    for name in ["s2-heal", "s2-noheal"] {
        env.wait_app(name, "Synced+Healthy", SYNC_WAIT, synced_healthy)
            .await?;
    }
    drift(env, dest, "s2-noheal", "drift", "changed-by-hand").await?;
    drift(env, dest, "s2-heal", "drift", "changed-by-hand").await?;
    let t = Instant::now();
    env.wait_app(
        "s2-noheal",
        "OutOfSync after drift",
        Duration::from_secs(30),
        |a| sync_status(a) == "OutOfSync",
    )
    .await?;
    eprintln!("s2: drift detected after {:.1}s", t.elapsed().as_secs_f64());
    wait_until(
        "s2-heal: drift reverted by self-heal",
        Duration::from_secs(60),
        || async {
            let cm = env.config_map(dest, "s2-heal", "drift").await?;
            Ok((data_key(&cm).as_deref() == Some("git")).then_some(()))
        },
    )
    .await?;
    eprintln!(
        "s2: self-heal reverted the drift after {:.1}s",
        t.elapsed().as_secs_f64()
    );
    env.wait_app(
        "s2-heal",
        "Synced after self-heal",
        Duration::from_secs(30),
        synced_healthy,
    )
    .await?;
    // An object deleted by someone else is recreated by self-heal.
    let cms: Api<ConfigMap> = Api::namespaced(env.client(dest)?, "s2-heal");
    cms.delete("drift", &Default::default()).await?;
    wait_until(
        "s2-heal: deleted object recreated by self-heal",
        Duration::from_secs(60),
        || async {
            let cm = env.config_map(dest, "s2-heal", "drift").await?;
            Ok((data_key(&cm).as_deref() == Some("git")).then_some(()))
        },
    )
    .await?;
    // Two more resync periods: the app without selfHeal must not touch the drift.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let app = env.app("s2-noheal").await?.context("s2-noheal vanished")?;
    ensure!(
        sync_status(&app) == "OutOfSync",
        "s2-noheal: {}",
        brief(&app)
    );
    let cm = env.config_map(dest, "s2-noheal", "drift").await?;
    ensure!(
        data_key(&cm).as_deref() == Some("changed-by-hand"),
        "the drift of s2-noheal was reverted: {cm:?}"
    );
    Ok(())
}

// ---------------------------------------------------------------- scenario 3

/// A file removed from Git: with automated prune the object goes; without prune it stays
/// and its resource status says requiresPruning.
async fn prune_or_keep(env: &Env) -> anyhow::Result<()> {
    let dest = Dest::Sim(0);
    let fx = Fixture::new()?;
    fx.commit(
        &[
            ("app/keep.yaml", cm_yaml("keep", "k", &[])),
            ("app/gone.yaml", cm_yaml("gone", "g", &[])),
        ],
        &[],
        "v1",
    )?;
    for (name, policy) in [
        ("s3-prune", json!({"automated": {"prune": true}})),
        ("s3-keep", json!({"automated": {"prune": false}})),
    ] {
        create_app_in_own_namespace(env, name, &fx.url(), dest, policy).await?;
    }
    for name in ["s3-prune", "s3-keep"] {
        env.wait_app(name, "Synced+Healthy", SYNC_WAIT, synced_healthy)
            .await?;
        ensure!(
            env.config_map(dest, name, "gone").await?.is_some(),
            "{name}: gone not applied"
        );
    }
    let sha2 = fx.commit(&[], &["app/gone.yaml"], "remove gone")?;
    env.wait_app(
        "s3-prune",
        "Synced at the commit removing a file",
        SYNC_WAIT,
        |a| synced_healthy(a) && sync_revision(a) == sha2,
    )
    .await?;
    wait_until(
        "s3-prune: pruned object deleted",
        Duration::from_secs(30),
        || async {
            Ok(env
                .config_map(dest, "s3-prune", "gone")
                .await?
                .is_none()
                .then_some(()))
        },
    )
    .await?;
    let app = env
        .wait_app(
            "s3-keep",
            "OutOfSync with requiresPruning",
            SYNC_WAIT,
            |a| {
                sync_status(a) == "OutOfSync"
                    && sync_revision(a) == sha2
                    && resource_status(a, "ConfigMap", "gone")
                        .is_some_and(|r| r["requiresPruning"] == true)
            },
        )
        .await?;
    ensure!(
        env.config_map(dest, "s3-keep", "gone").await?.is_some(),
        "s3-keep: object deleted without prune: {}",
        brief(&app)
    );
    Ok(())
}

// ---------------------------------------------------------------- scenario 9

/// Deleting an app with the resources finalizer deletes its objects, then the app; an
/// app without the finalizer goes and leaves its objects.
async fn finalizer_deletion(env: &Env) -> anyhow::Result<()> {
    let dest = Dest::Sim(0);
    let fx = Fixture::new()?;
    fx.commit(
        &[
            ("app/fin.yaml", cm_yaml("fin", "f", &[])),
            (
                "app/fin-late.yaml",
                cm_yaml("fin-late", "f", &[(WAVE, "2")]),
            ),
        ],
        &[],
        "v1",
    )?;
    for (name, finalizers) in [("s9-fin", json!([FINALIZER])), ("s9-nofin", json!([]))] {
        env.namespace(dest, name).await?;
        let mut app = app_manifest(
            name,
            &fx.url(),
            "app",
            &env.server(dest),
            name,
            json!({"automated": {}}),
        );
        app["metadata"]["finalizers"] = finalizers;
        env.create_app(app).await?;
    }
    for name in ["s9-fin", "s9-nofin"] {
        env.wait_app(name, "Synced+Healthy", SYNC_WAIT, synced_healthy)
            .await?;
    }
    // When the ConfigMaps on the destination and the Application were deleted.
    let deletions = FirstSeen::new()
        .watch(
            Api::<ConfigMap>::namespaced(env.client(Dest::Sim(0))?, "s9-fin"),
            "ConfigMap",
            deleted_at,
        )
        .watch(env.apps(), "Application", deleted_at)
        .started()
        .await?;
    let t = Instant::now();
    env.delete_app("s9-fin").await?;
    env.delete_app("s9-nofin").await?;
    // The app with the finalizer: its objects go first (highest wave first), then the
    // Application.
    wait_until(
        "s9-fin: objects and Application deleted",
        Duration::from_secs(60),
        || async {
            let gone = env.app("s9-fin").await?.is_none()
                && env.config_map(dest, "s9-fin", "fin").await?.is_none()
                && env.config_map(dest, "s9-fin", "fin-late").await?.is_none();
            Ok(gone.then_some(()))
        },
    )
    .await?;
    eprintln!(
        "s9: app with finalizer and its objects gone after {:.1}s",
        t.elapsed().as_secs_f64()
    );
    let at = wait_until(
        "s9-fin: deletion events",
        Duration::from_secs(10),
        || async {
            let at = deletions.snapshot();
            let all = ["ConfigMap/fin", "ConfigMap/fin-late", "Application/s9-fin"]
                .iter()
                .all(|k| at.contains_key(*k));
            Ok(all.then_some(at))
        },
    )
    .await?;
    let (fin, late, app) = (
        at["ConfigMap/fin"],
        at["ConfigMap/fin-late"],
        at["Application/s9-fin"],
    );
    eprintln!(
        "s9: deleted fin-late at +{}ms, fin at +{}ms, Application at +{}ms",
        late.duration_since(t).as_millis(),
        fin.duration_since(t).as_millis(),
        app.duration_since(t).as_millis()
    );
    ensure!(
        fin < app && late < app,
        "the Application was deleted before its objects"
    );
    ensure!(late <= fin, "wave 2 object deleted after the wave 0 object");
    wait_until(
        "s9-nofin: Application deleted",
        Duration::from_secs(30),
        || async { Ok(env.app("s9-nofin").await?.is_none().then_some(())) },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    for cm in ["fin", "fin-late"] {
        ensure!(
            env.config_map(dest, "s9-nofin", cm).await?.is_some(),
            "s9-nofin: {cm} was deleted although the app had no finalizer"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_syncs_git_changes_heals_drift_prunes_and_finalizes() {
    let env = Env::start(EnvOptions {
        label: "git-drift-prune-finalizers",
        ..EnvOptions::default()
    })
    .await
    .unwrap();
    run_scenarios(
        &env,
        vec![
            (
                "1 auto-sync and git change",
                Box::pin(auto_sync_and_git_change(&env)),
            ),
            ("2 drift and self-heal", Box::pin(drift_and_self_heal(&env))),
            ("3 prune or keep", Box::pin(prune_or_keep(&env))),
            ("9 finalizer deletion", Box::pin(finalizer_deletion(&env))),
            ("14 CreateNamespace", Box::pin(create_namespace(&env))),
            ("17 ignoreDifferences", Box::pin(ignore_differences(&env))),
            ("18 selective sync", Box::pin(selective_sync(&env))),
        ],
    )
    .await;
}

// ---------------------------------------------------------------- scenario 4

/// PreSync hook, waves -1/0/1 and a PostSync hook on a simulated cluster: the operation
/// succeeds and the objects were created in that order.
async fn waves_and_hooks(env: &Env) -> anyhow::Result<()> {
    let (dest, ns, name) = (Dest::Sim(0), "s4", "s4-waves");
    env.namespace(dest, ns).await?;
    // The resourceVersion each ConfigMap and Job was created at.
    let client = env.client(dest)?;
    let order = FirstSeen::new()
        .watch(
            Api::<ConfigMap>::namespaced(client.clone(), ns),
            "ConfigMap",
            created_at_version,
        )
        .watch(
            Api::<Job>::namespaced(client, ns),
            "Job",
            created_at_version,
        )
        .started()
        .await?;
    let fx = Fixture::new()?;
    let sha = fx.commit(
        &[
            ("app/pre.yaml", job_yaml("pre", &[(HOOK, "PreSync")])),
            ("app/w-1.yaml", cm_yaml("w-minus-1", "x", &[(WAVE, "-1")])),
            ("app/w0.yaml", cm_yaml("w-0", "x", &[])),
            ("app/w1.yaml", cm_yaml("w-1", "x", &[(WAVE, "1")])),
            ("app/post.yaml", job_yaml("post", &[(HOOK, "PostSync")])),
            (
                "app/post-cleanup.yaml",
                job_yaml(
                    "post-cleanup",
                    &[(HOOK, "PostSync"), (HOOK_DELETE_POLICY, "HookSucceeded")],
                ),
            ),
        ],
        &[],
        "v1",
    )?;
    env.create_app(app_manifest(
        name,
        &fx.url(),
        "app",
        &env.server(dest),
        ns,
        json!({"automated": {}}),
    ))
    .await?;
    let app = env
        .wait_app(name, "operation finished", SYNC_WAIT, |a| {
            operation_done_at(a, &sha)
        })
        .await?;
    ensure!(
        op_phase(&app) == "Succeeded",
        "s4 operation: {}",
        brief(&app)
    );
    let app = env
        .wait_app(name, "Synced+Healthy", SYNC_WAIT, synced_healthy)
        .await?;
    let results = app["status"]["operationState"]["syncResult"]["resources"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for hook in ["pre", "post"] {
        let r = results
            .iter()
            .find(|r| r["kind"] == "Job" && r["name"] == hook);
        ensure!(
            r.is_some_and(|r| r["hookPhase"] == "Succeeded"),
            "hook {hook} not recorded as Succeeded: {}",
            brief(&app)
        );
    }
    wait_until(
        "s4: HookSucceeded hook deleted after success",
        Duration::from_secs(20),
        || async {
            let job = env
                .live(dest, "batch/v1", "Job", ns, "post-cleanup")
                .await?;
            Ok(job.is_none().then_some(()))
        },
    )
    .await?;
    ensure!(
        env.live(dest, "batch/v1", "Job", ns, "post")
            .await?
            .is_some(),
        "the PostSync hook without delete policy was deleted"
    );
    let seen = order.snapshot();
    let expected = [
        "Job/pre",
        "ConfigMap/w-minus-1",
        "ConfigMap/w-0",
        "ConfigMap/w-1",
        "Job/post",
    ];
    let rvs: Vec<(String, Option<u64>)> = expected
        .iter()
        .map(|k| (k.to_string(), seen.get(*k).copied()))
        .collect();
    eprintln!("s4: creation resourceVersions {rvs:?}");
    ensure!(
        rvs.iter().all(|(_, rv)| rv.is_some()),
        "objects not seen: {rvs:?}"
    );
    ensure!(
        rvs.windows(2).all(|w| w[0].1 < w[1].1),
        "objects not created in hook/wave order: {rvs:?}"
    );
    Ok(())
}

// ---------------------------------------------------------------- scenario 5

/// A PreSync hook that fails: the SyncFail hook runs, the sync phase is not applied and
/// the operation is Failed.
async fn failing_hook(env: &Env) -> anyhow::Result<()> {
    let (dest, ns, name) = (Dest::Sim(0), "s5", "s5-fail");
    env.namespace(dest, ns).await?;
    let fx = Fixture::new()?;
    let sha = fx.commit(
        &[
            (
                "app/pre.yaml",
                job_yaml(
                    "pre-fails",
                    &[(HOOK, "PreSync"), ("sim.keelson.io/fail", "true")],
                ),
            ),
            ("app/cm.yaml", cm_yaml("s5-cm", "x", &[])),
            (
                "app/on-fail.yaml",
                job_yaml("on-fail", &[(HOOK, "SyncFail")]),
            ),
        ],
        &[],
        "v1",
    )?;
    env.create_app(app_manifest(
        name,
        &fx.url(),
        "app",
        &env.server(dest),
        ns,
        json!({}),
    ))
    .await?;
    env.wait_app(name, "OutOfSync before the sync", SYNC_WAIT, |a| {
        sync_status(a) == "OutOfSync"
    })
    .await?;
    env.sync_to(name, &sha).await?;
    let app = env
        .wait_app(name, "operation finished", SYNC_WAIT, |a| {
            operation_done_at(a, &sha)
        })
        .await?;
    ensure!(
        op_phase(&app) == "Failed",
        "s5 operation phase: {}",
        brief(&app)
    );
    let on_fail = env.live(dest, "batch/v1", "Job", ns, "on-fail").await?;
    ensure!(
        on_fail.is_some(),
        "SyncFail hook Job not on the cluster: {}",
        brief(&app)
    );
    ensure!(
        env.config_map(dest, ns, "s5-cm").await?.is_none(),
        "the sync phase was applied although PreSync failed"
    );
    eprintln!(
        "s5: operation message {:?}",
        app["status"]["operationState"]["message"]
    );
    Ok(())
}

// ---------------------------------------------------------------- scenario 6

/// Two manual syncs to two revisions give two history entries; a rollback to history
/// entry 0 brings the old content back.
async fn rollback(env: &Env) -> anyhow::Result<()> {
    let (dest, ns, name) = (Dest::Sim(0), "s6", "s6-rollback");
    env.namespace(dest, ns).await?;
    let fx = Fixture::new()?;
    let sha_a = fx.commit(&[("app/cm.yaml", cm_yaml("s6-cm", "A", &[]))], &[], "A")?;
    let sha_b = fx.commit(&[("app/cm.yaml", cm_yaml("s6-cm", "B", &[]))], &[], "B")?;
    create_manual_app(env, name, &fx.url(), dest, ns).await?;
    for (sha, value) in [(&sha_a, "A"), (&sha_b, "B")] {
        env.sync_to(name, sha).await?;
        let app = env
            .wait_app(name, "operation finished", SYNC_WAIT, |a| {
                operation_done_at(a, sha)
            })
            .await?;
        ensure!(
            op_phase(&app) == "Succeeded",
            "sync to {value}: {}",
            brief(&app)
        );
        let cm = env.config_map(dest, ns, "s6-cm").await?;
        ensure!(
            data_key(&cm).as_deref() == Some(value),
            "after sync to {value}: {cm:?}"
        );
    }
    let app = env.app(name).await?.context("s6 vanished")?;
    let history = app["status"]["history"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    ensure!(history.len() == 2, "history: {}", brief(&app));
    let entry0 = history
        .iter()
        .find(|h| h["id"] == 0)
        .context("no history entry with id 0")?;
    // A wrong history entry is reported at the end; the rollback still runs (to A).
    let history_error = (entry0["revision"] != sha_a.as_str())
        .then(|| format!("history[0] lacks revision {sha_a}: {entry0}"));
    let old = entry0["revision"].as_str().unwrap_or(&sha_a).to_string();
    env.sync_to(name, &old).await?;
    let app = env
        .wait_app(name, "rollback finished", SYNC_WAIT, |a| {
            operation_done_at(a, &old)
        })
        .await?;
    ensure!(op_phase(&app) == "Succeeded", "rollback: {}", brief(&app));
    let cm = env.config_map(dest, ns, "s6-cm").await?;
    ensure!(
        data_key(&cm).as_deref() == Some("A"),
        "after rollback: {cm:?}"
    );
    let history = app["status"]["history"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    ensure!(history == 3, "history after rollback has {history} entries");
    if let Some(e) = history_error {
        anyhow::bail!("the rollback worked, but {e}");
    }
    Ok(())
}

// ---------------------------------------------------------------- scenario 15

/// An automated sync with a retry strategy whose PreSync hook always fails: the
/// operation is retried `limit` times, then Failed.
async fn retries(env: &Env) -> anyhow::Result<()> {
    let (dest, ns, name) = (Dest::Sim(0), "s15", "s15-retry");
    env.namespace(dest, ns).await?;
    let fx = Fixture::new()?;
    fx.commit(
        &[
            (
                "app/pre.yaml",
                job_yaml(
                    "s15-pre",
                    &[(HOOK, "PreSync"), ("sim.keelson.io/fail", "true")],
                ),
            ),
            ("app/cm.yaml", cm_yaml("s15-cm", "x", &[])),
        ],
        &[],
        "v1",
    )?;
    let policy = json!({
        "automated": {},
        "retry": {"limit": 2, "backoff": {"duration": "1s", "factor": 1, "maxDuration": "2s"}}
    });
    env.create_app(app_manifest(
        name,
        &fx.url(),
        "app",
        &env.server(dest),
        ns,
        policy,
    ))
    .await?;
    let app = env
        .wait_app(name, "operation Failed after retries", SYNC_WAIT, |a| {
            a["operation"].is_null() && op_phase(a) == "Failed"
        })
        .await?;
    let state = &app["status"]["operationState"];
    eprintln!(
        "s15: retryCount {} message {}",
        state["retryCount"], state["message"]
    );
    ensure!(state["retryCount"] == 2, "retryCount: {}", brief(&app));
    ensure!(
        env.config_map(dest, ns, "s15-cm").await?.is_none(),
        "the sync phase ran although PreSync failed"
    );
    // No further automated attempt at the same revision.
    let finished = state["finishedAt"].clone();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let app = env.app(name).await?.context("s15 vanished")?;
    ensure!(
        app["status"]["operationState"]["finishedAt"] == finished,
        "another automated sync ran at the failed revision: {}",
        brief(&app)
    );
    Ok(())
}

// ---------------------------------------------------------------- scenario 16

/// Terminating a running operation (status.operationState.phase = Terminating, as
/// `argocd app terminate-op` does) ends it as Failed.
async fn terminate(env: &Env) -> anyhow::Result<()> {
    let (dest, ns, name) = (Dest::Sim(0), "s16", "s16-terminate");
    env.namespace(dest, ns).await?;
    let fx = Fixture::new()?;
    let sha = fx.commit(
        &[
            ("app/cm.yaml", cm_yaml("s16-cm", "x", &[])),
            (
                "app/post.yaml",
                job_yaml(
                    "s16-post",
                    &[(HOOK, "PostSync"), ("sim.keelson.io/never-ready", "true")],
                ),
            ),
        ],
        &[],
        "v1",
    )?;
    create_manual_app(env, name, &fx.url(), dest, ns).await?;
    env.sync_to(name, &sha).await?;
    wait_until("s16: the PostSync hook runs", SYNC_WAIT, || async {
        env.live(dest, "batch/v1", "Job", ns, "s16-post").await
    })
    .await?;
    env.wait_app(name, "operation Running", SYNC_WAIT, |a| {
        op_phase(a) == "Running"
    })
    .await?;
    env.patch_app(
        name,
        json!({"status": {"operationState": {"phase": "Terminating"}}}),
    )
    .await?;
    let app = env
        .wait_app(name, "operation terminated", Duration::from_secs(30), |a| {
            a["operation"].is_null() && matches!(op_phase(a), "Failed" | "Error" | "Succeeded")
        })
        .await?;
    let state = &app["status"]["operationState"];
    eprintln!(
        "s16: after terminate: phase {} message {}",
        state["phase"], state["message"]
    );
    ensure!(
        op_phase(&app) == "Failed",
        "terminated operation: {}",
        brief(&app)
    );
    Ok(())
}

// ---------------------------------------------------------------- scenario 11

/// A second operation starts from a fresh operationState: while it runs, nothing of the
/// previous operation (finishedAt, syncResult of the old revision) is shown.
async fn second_operation_state_is_fresh(env: &Env) -> anyhow::Result<()> {
    let (dest, ns, name) = (Dest::Sim(0), "s11", "s11-fresh");
    env.namespace(dest, ns).await?;
    let fx = Fixture::new()?;
    let slow_hook = job_yaml(
        "s11-post",
        &[
            (HOOK, "PostSync"),
            ("sim.keelson.io/ready-delay-ms", "4000"),
        ],
    );
    let sha_a = fx.commit(
        &[
            ("app/cm.yaml", cm_yaml("s11-cm", "A", &[])),
            ("app/post.yaml", slow_hook),
        ],
        &[],
        "A",
    )?;
    let sha_b = fx.commit(&[("app/cm.yaml", cm_yaml("s11-cm", "B", &[]))], &[], "B")?;
    create_manual_app(env, name, &fx.url(), dest, ns).await?;
    env.sync_to(name, &sha_a).await?;
    let app = env
        .wait_app(name, "sync to A finished", SYNC_WAIT, |a| {
            operation_done_at(a, &sha_a)
        })
        .await?;
    ensure!(op_phase(&app) == "Succeeded", "sync to A: {}", brief(&app));
    env.sync_to(name, &sha_b).await?;
    let running = env
        .wait_app(name, "sync to B running", SYNC_WAIT, |a| {
            op_phase(a) == "Running"
                && a["status"]["operationState"]["operation"]["sync"]["revision"] == sha_b.as_str()
        })
        .await?;
    let state = running["status"]["operationState"].clone();
    let stale_finished = !state["finishedAt"].is_null();
    let stale_result = state["syncResult"]["revision"] == sha_a.as_str();
    let app = env
        .wait_app(name, "sync to B finished", SYNC_WAIT, |a| {
            operation_done_at(a, &sha_b)
        })
        .await?;
    ensure!(op_phase(&app) == "Succeeded", "sync to B: {}", brief(&app));
    ensure!(
        !stale_finished && !stale_result,
        "the running operation to B showed the previous operation's state: finishedAt {} syncResult.revision {} (A = {sha_a}, B = {sha_b})",
        state["finishedAt"],
        state["syncResult"]["revision"]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_runs_waves_hooks_failures_and_rollbacks() {
    let env = Env::start(EnvOptions {
        label: "hooks-rollback",
        ..EnvOptions::default()
    })
    .await
    .unwrap();
    run_scenarios(
        &env,
        vec![
            ("4 waves and hooks", Box::pin(waves_and_hooks(&env))),
            ("5 failing PreSync hook", Box::pin(failing_hook(&env))),
            ("6 rollback", Box::pin(rollback(&env))),
            (
                "11 second operation state is fresh",
                Box::pin(second_operation_state_is_fresh(&env)),
            ),
            ("15 retries", Box::pin(retries(&env))),
            ("16 terminate", Box::pin(terminate(&env))),
        ],
    )
    .await;
}

// ---------------------------------------------------------------- scenario 7

fn project(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AppProject",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    })
}

/// AppProject rules: a repo outside sourceRepos and a denied destination namespace give
/// InvalidSpecError and nothing is applied; a blacklisted kind fails the sync with the
/// project's message.
async fn project_denials(env: &Env) -> anyhow::Result<()> {
    let dest = Dest::InCluster;
    let fx = Fixture::new()?;
    let sha = fx.commit(&[("app/cm.yaml", cm_yaml("s7-cm", "x", &[]))], &[], "v1")?;
    let any_dest = json!([{"server": "*", "namespace": "*"}]);
    env.create_project(project(
        "s7-src",
        json!({"sourceRepos": ["https://git.example.invalid/*"], "destinations": any_dest}),
    ))
    .await?;
    env.create_project(project(
        "s7-dest",
        json!({"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "allowed-*"}]}),
    ))
    .await?;
    env.create_project(project(
        "s7-black",
        json!({"sourceRepos": ["*"], "destinations": any_dest,
               "namespaceResourceBlacklist": [{"group": "", "kind": "ConfigMap"}]}),
    ))
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let server = env.server(dest);
    for (name, proj, policy) in [
        ("s7-src", "s7-src", json!({"automated": {}})),
        ("s7-dest", "s7-dest", json!({"automated": {}})),
        ("s7-black", "s7-black", json!({})),
    ] {
        env.namespace(dest, name).await?;
        let mut app = app_manifest(name, &fx.url(), "app", &server, name, policy);
        app["spec"]["project"] = json!(proj);
        env.create_app(app).await?;
    }
    for (name, needle) in [("s7-src", "not permitted"), ("s7-dest", "destination")] {
        let app = env
            .wait_app(name, "InvalidSpecError", SYNC_WAIT, |a| {
                has_condition(a, "InvalidSpecError")
            })
            .await?;
        let messages: Vec<String> = conditions(&app)
            .iter()
            .filter(|c| c["type"] == "InvalidSpecError")
            .map(|c| c["message"].as_str().unwrap_or_default().to_string())
            .collect();
        eprintln!("s7: {name} InvalidSpecError {messages:?}");
        ensure!(
            messages.iter().any(|m| m.contains(needle)),
            "{name}: condition message lacks {needle:?}: {messages:?}"
        );
    }
    first_reconcile(env, "s7-black").await?;
    env.sync_to("s7-black", &sha).await?;
    let app = env
        .wait_app("s7-black", "operation finished", SYNC_WAIT, |a| {
            operation_done_at(a, &sha)
        })
        .await?;
    let op = &app["status"]["operationState"];
    let text = serde_json::to_string(op).unwrap_or_default();
    eprintln!(
        "s7: s7-black phase {} message {:?}",
        op["phase"], op["message"]
    );
    // Argo CD: phase Failed, "one or more synchronization tasks are not valid", and the
    // project message on the resource's result.
    ensure!(
        op_phase(&app) == "Failed",
        "s7-black phase (Argo CD: Failed): {}",
        brief(&app)
    );
    ensure!(
        text.contains("is not permitted in project"),
        "s7-black: no project message: {}",
        brief(&app)
    );
    // Nothing applied by any of them, also after automated syncs had their chance.
    tokio::time::sleep(Duration::from_secs(6)).await;
    for name in ["s7-src", "s7-dest", "s7-black"] {
        ensure!(
            env.config_map(dest, name, "s7-cm").await?.is_none(),
            "{name}: the ConfigMap was applied although the project denies it"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------- scenario 8

/// An unreachable destination does not slow apps on other clusters: the healthy
/// cluster's app syncs a change quickly while the other shows a comparison error.
async fn unreachable_cluster(env: &Env) -> anyhow::Result<()> {
    let (good, bad) = (Dest::Sim(0), Dest::Sim(1));
    let ns = "s8";
    env.namespace(good, ns).await?;
    env.namespace(bad, ns).await?;
    let fx_good = Fixture::new()?;
    let fx_bad = Fixture::new()?;
    fx_good.commit(&[("app/cm.yaml", cm_yaml("s8-cm", "one", &[]))], &[], "v1")?;
    fx_bad.commit(&[("app/cm.yaml", cm_yaml("s8-cm", "one", &[]))], &[], "v1")?;
    let auto = json!({"automated": {"selfHeal": true}});
    env.create_app(app_manifest(
        "s8-good",
        &fx_good.url(),
        "app",
        &env.server(good),
        ns,
        auto.clone(),
    ))
    .await?;
    env.create_app(app_manifest(
        "s8-bad",
        &fx_bad.url(),
        "app",
        &env.server(bad),
        ns,
        auto,
    ))
    .await?;
    let t = Instant::now();
    for name in ["s8-good", "s8-bad"] {
        env.wait_app(name, "Synced+Healthy", SYNC_WAIT, synced_healthy)
            .await?;
    }
    let normal = t.elapsed();
    env.sim_faults(1, json!({"unreachable": true})).await?;
    let down = Instant::now();
    // The healthy cluster's app follows Git at the usual pace.
    let sha2 = fx_good.commit(&[("app/cm.yaml", cm_yaml("s8-cm", "two", &[]))], &[], "v2")?;
    env.wait_app(
        "s8-good",
        "Synced at the new commit",
        Duration::from_secs(30),
        |a| synced_healthy(a) && sync_revision(a) == sha2,
    )
    .await?;
    let took = down.elapsed();
    eprintln!(
        "s8: healthy cluster's app synced a change in {:.1}s while the other cluster is down (first sync of both took {:.1}s)",
        took.as_secs_f64(),
        normal.as_secs_f64()
    );
    let cm = env.config_map(good, ns, "s8-cm").await?;
    ensure!(
        data_key(&cm).as_deref() == Some("two"),
        "s8-good cm: {cm:?}"
    );
    // The unreachable cluster's app reports it.
    let app = env
        .wait_app(
            "s8-bad",
            "ComparisonError or Unknown",
            Duration::from_secs(60),
            |a| has_condition(a, "ComparisonError") || sync_status(a) == "Unknown",
        )
        .await?;
    eprintln!(
        "s8: unreachable cluster reported after {:.1}s: sync {} conditions {:?}",
        down.elapsed().as_secs_f64(),
        sync_status(&app),
        conditions(&app)
    );
    env.sim_faults(1, json!({"unreachable": false})).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_enforces_projects_and_isolates_unreachable_clusters() {
    let env = Env::start(EnvOptions {
        sim_clusters: 2,
        label: "projects-unreachable",
        ..EnvOptions::default()
    })
    .await
    .unwrap();
    run_scenarios(
        &env,
        vec![
            ("7 AppProject denials", Box::pin(project_denials(&env))),
            ("8 unreachable cluster", Box::pin(unreachable_cluster(&env))),
            ("13 broken manifests", Box::pin(broken_manifests(&env))),
            (
                "19 destination by name",
                Box::pin(destination_by_name(&env)),
            ),
        ],
    )
    .await;
}

// ---------------------------------------------------------------- scenario 17

/// ignoreDifferences: drift in an ignored field keeps the app Synced; drift elsewhere
/// does not.
async fn ignore_differences(env: &Env) -> anyhow::Result<()> {
    let (dest, ns, name) = (Dest::InCluster, "s17", "s17-ignore");
    env.namespace(dest, ns).await?;
    let fx = Fixture::new()?;
    let two_keys = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: s17-cm\ndata:\n  key: git\n  other: git\n";
    fx.commit(&[("app/cm.yaml", two_keys.to_string())], &[], "v1")?;
    let mut app = app_manifest(name, &fx.url(), "app", &env.server(dest), ns, json!({}));
    app["spec"]["ignoreDifferences"] =
        json!([{"group": "", "kind": "ConfigMap", "jsonPointers": ["/data/key"]}]);
    env.create_app(app).await?;
    first_reconcile(env, name).await?;
    let sha = fx.repo.head()?;
    env.sync_to(name, &sha).await?;
    env.wait_app(name, "Synced", SYNC_WAIT, |a| {
        operation_done_at(a, &sha) && synced_healthy(a)
    })
    .await?;
    drift(env, dest, ns, "s17-cm", "by-hand").await?;
    tokio::time::sleep(Duration::from_secs(7)).await;
    let app = env.app(name).await?.context("s17 vanished")?;
    ensure!(
        sync_status(&app) == "Synced",
        "drift in an ignored field made the app {}: {}",
        sync_status(&app),
        brief(&app)
    );
    let cms: Api<ConfigMap> = Api::namespaced(env.client(dest)?, ns);
    cms.patch(
        "s17-cm",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"other": "by-hand"}})),
    )
    .await?;
    env.wait_app(
        name,
        "OutOfSync after drift in a compared field",
        Duration::from_secs(30),
        |a| sync_status(a) == "OutOfSync",
    )
    .await?;
    Ok(())
}

// ---------------------------------------------------------------- scenario 18

/// A selective sync (operation.sync.resources) applies only the named resource and is
/// not recorded in the history.
async fn selective_sync(env: &Env) -> anyhow::Result<()> {
    let (dest, ns, name) = (Dest::InCluster, "s18", "s18-selective");
    env.namespace(dest, ns).await?;
    let fx = Fixture::new()?;
    let sha = fx.commit(
        &[
            ("app/one.yaml", cm_yaml("s18-one", "x", &[])),
            ("app/two.yaml", cm_yaml("s18-two", "x", &[])),
        ],
        &[],
        "v1",
    )?;
    create_manual_app(env, name, &fx.url(), dest, ns).await?;
    env.patch_app(
        name,
        json!({"operation": {"initiatedBy": {"username": "e2e"}, "sync": {
            "revision": sha,
            "resources": [{"group": "", "kind": "ConfigMap", "name": "s18-one", "namespace": ns}]
        }}}),
    )
    .await?;
    let app = env
        .wait_app(name, "selective sync finished", SYNC_WAIT, |a| {
            operation_done_at(a, &sha)
        })
        .await?;
    ensure!(
        op_phase(&app) == "Succeeded",
        "selective sync: {}",
        brief(&app)
    );
    ensure!(
        env.config_map(dest, ns, "s18-one").await?.is_some(),
        "s18-one not applied"
    );
    ensure!(
        env.config_map(dest, ns, "s18-two").await?.is_none(),
        "s18-two applied by a selective sync of s18-one"
    );
    let history = app["status"]["history"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    ensure!(
        history == 0,
        "a selective sync was recorded in history: {}",
        brief(&app)
    );
    Ok(())
}

// ---------------------------------------------------------------- scenario 13

/// A source that does not render (broken YAML) gives a ComparisonError and applies
/// nothing; the fixing commit syncs.
async fn broken_manifests(env: &Env) -> anyhow::Result<()> {
    let (dest, ns, name) = (Dest::InCluster, "s13", "s13-broken");
    env.namespace(dest, ns).await?;
    let fx = Fixture::new()?;
    fx.commit(
        &[
            ("app/good.yaml", cm_yaml("s13-good", "x", &[])),
            (
                "app/bad.yaml",
                "kind: ConfigMap\nmetadata: [unclosed\n".to_string(),
            ),
        ],
        &[],
        "broken",
    )?;
    env.create_app(app_manifest(
        name,
        &fx.url(),
        "app",
        &env.server(dest),
        ns,
        json!({"automated": {}}),
    ))
    .await?;
    let app = env
        .wait_app(name, "a ComparisonError about the source", SYNC_WAIT, |a| {
            conditions(a).iter().any(|c| {
                c["type"] == "ComparisonError"
                    && !c["message"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("still syncing")
            })
        })
        .await?;
    eprintln!(
        "s13: broken source: sync {} conditions {:?}",
        sync_status(&app),
        conditions(&app)
    );
    ensure!(
        env.config_map(dest, ns, "s13-good").await?.is_none(),
        "a ConfigMap of a source that does not render was applied"
    );
    let sha = fx.commit(&[], &["app/bad.yaml"], "fixed")?;
    let app = env
        .wait_app(name, "Synced after the fix", SYNC_WAIT, |a| {
            synced_healthy(a) && sync_revision(a) == sha
        })
        .await?;
    ensure!(
        !has_condition(&app, "ComparisonError"),
        "ComparisonError kept after the fix: {}",
        brief(&app)
    );
    ensure!(env.config_map(dest, ns, "s13-good").await?.is_some());
    Ok(())
}

// ---------------------------------------------------------------- scenario 14

/// CreateNamespace=true creates a missing destination namespace (in-cluster, real
/// kube-apiserver) before the app's objects.
async fn create_namespace(env: &Env) -> anyhow::Result<()> {
    let (dest, ns, name) = (Dest::InCluster, "s14-created", "s14-create-ns");
    let fx = Fixture::new()?;
    fx.commit(&[("app/cm.yaml", cm_yaml("s14-cm", "x", &[]))], &[], "v1")?;
    env.create_app(app_manifest(
        name,
        &fx.url(),
        "app",
        &env.server(dest),
        ns,
        json!({"automated": {}, "syncOptions": ["CreateNamespace=true"]}),
    ))
    .await?;
    env.wait_app(name, "Synced+Healthy", SYNC_WAIT, synced_healthy)
        .await?;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(env.client(dest)?);
    ensure!(
        namespaces.get_opt(ns).await?.is_some(),
        "namespace {ns} not created"
    );
    ensure!(
        env.config_map(dest, ns, "s14-cm").await?.is_some(),
        "s14-cm missing"
    );
    Ok(())
}

// ---------------------------------------------------------------- scenario 12

/// One of two repo-servers crashes: apps keep following Git through the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_survives_a_repo_server_crash() {
    let mut env = Env::start(EnvOptions {
        repo_servers: 2,
        label: "repo-server-crash",
        ..EnvOptions::default()
    })
    .await
    .unwrap();
    if let Err(e) = repo_server_crash(&mut env).await {
        panic!(
            "12 repo-server crash: {e:#}\n--- controller log tail:\n{}",
            env.controller_log(40)
        );
    }
}

async fn repo_server_crash(env: &mut Env) -> anyhow::Result<()> {
    let (dest, ns) = (Dest::Sim(0), "s12");
    env.namespace(dest, ns).await?;
    let fx = Fixture::new()?;
    let files: Vec<(String, String)> = (0..6)
        .map(|i| {
            (
                format!("app{i}/cm.yaml"),
                cm_yaml(&format!("s12-cm-{i}"), "one", &[]),
            )
        })
        .collect();
    let refs: Vec<(&str, String)> = files.iter().map(|(p, t)| (p.as_str(), t.clone())).collect();
    fx.commit(&refs, &[], "v1")?;
    for i in 0..6 {
        env.create_app(app_manifest(
            &format!("s12-app-{i}"),
            &fx.url(),
            &format!("app{i}"),
            &env.server(dest),
            ns,
            json!({"automated": {}}),
        ))
        .await?;
    }
    for i in 0..6 {
        env.wait_app(
            &format!("s12-app-{i}"),
            "Synced+Healthy",
            SYNC_WAIT,
            synced_healthy,
        )
        .await?;
    }
    env.repos[0].process().kill9()?;
    let t = Instant::now();
    let files: Vec<(String, String)> = (0..6)
        .map(|i| {
            (
                format!("app{i}/cm.yaml"),
                cm_yaml(&format!("s12-cm-{i}"), "two", &[]),
            )
        })
        .collect();
    let refs: Vec<(&str, String)> = files.iter().map(|(p, t)| (p.as_str(), t.clone())).collect();
    let sha = fx.commit(&refs, &[], "v2")?;
    for i in 0..6 {
        env.wait_app(
            &format!("s12-app-{i}"),
            "Synced at the new commit with one repo-server down",
            Duration::from_secs(60),
            |a| synced_healthy(a) && sync_revision(a) == sha,
        )
        .await?;
        let cm = env.config_map(dest, ns, &format!("s12-cm-{i}")).await?;
        ensure!(
            data_key(&cm).as_deref() == Some("two"),
            "s12-cm-{i}: {cm:?}"
        );
    }
    eprintln!(
        "s12: 6 apps followed Git {:.1}s after one of two repo-servers was killed",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

// ---------------------------------------------------------------- scenario 19

/// Destinations by cluster name: a registered name and `in-cluster` resolve and sync; an
/// unknown name is an InvalidSpecError and nothing is applied.
async fn destination_by_name(env: &Env) -> anyhow::Result<()> {
    let ns = "s19";
    env.namespace(Dest::Sim(0), ns).await?;
    env.namespace(Dest::InCluster, ns).await?;
    let fx = Fixture::new()?;
    fx.commit(&[("app/cm.yaml", cm_yaml("s19-cm", "x", &[]))], &[], "v1")?;
    let c1 = env.sim.cluster(0)?.name.clone();
    for (name, cluster) in [
        ("s19-by-name", c1.as_str()),
        ("s19-in-cluster", "in-cluster"),
        ("s19-unknown", "no-such-cluster"),
    ] {
        let mut app = app_manifest(name, &fx.url(), "app", "", ns, json!({"automated": {}}));
        app["spec"]["destination"] = json!({"name": cluster, "namespace": ns});
        env.create_app(app).await?;
    }
    env.wait_app("s19-by-name", "Synced+Healthy", SYNC_WAIT, synced_healthy)
        .await?;
    ensure!(
        env.config_map(Dest::Sim(0), ns, "s19-cm").await?.is_some(),
        "s19-by-name: not applied to cluster {c1}"
    );
    env.wait_app(
        "s19-in-cluster",
        "Synced+Healthy",
        SYNC_WAIT,
        synced_healthy,
    )
    .await?;
    ensure!(
        env.config_map(Dest::InCluster, ns, "s19-cm")
            .await?
            .is_some(),
        "s19-in-cluster: not applied to the management cluster"
    );
    let app = env
        .wait_app("s19-unknown", "InvalidSpecError", SYNC_WAIT, |a| {
            has_condition(a, "InvalidSpecError")
        })
        .await?;
    eprintln!("s19: unknown cluster name: {:?}", conditions(&app));
    // Argo CD's text (util/argo ValidateDestination / getDestinationServer).
    let want = "application destination spec is invalid: unable to find destination server: \
                there are no clusters with this name: no-such-cluster";
    ensure!(
        conditions(&app).iter().any(|c| c["message"] == want),
        "s19-unknown: expected the condition message {want:?}"
    );
    // Only the in-cluster app writes there; the second simulated cluster is not checked
    // because scenario 8 makes it unreachable at the same time.
    ensure!(
        env.config_map(Dest::InCluster, ns, "s19-cm")
            .await?
            .is_some(),
        "s19-in-cluster: not applied"
    );
    Ok(())
}

// ---------------------------------------------------------------- scenario 10

/// kill -9 of the controller while a PostSync hook runs; after a restart the operation
/// completes and the hook Job was created once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_resumes_an_operation_after_kill_9() {
    let mut env = Env::start(EnvOptions {
        label: "kill-9",
        ..EnvOptions::default()
    })
    .await
    .unwrap();
    let result = kill_mid_operation(&mut env).await;
    if let Err(e) = result {
        panic!(
            "10 kill -9 mid-operation: {e:#}\n--- controller log tail:\n{}",
            env.controller_log(60)
        );
    }
}

async fn kill_mid_operation(env: &mut Env) -> anyhow::Result<()> {
    let (dest, ns, name) = (Dest::Sim(0), "s10", "s10-kill");
    env.namespace(dest, ns).await?;
    let fx = Fixture::new()?;
    let sha = fx.commit(
        &[
            ("app/cm.yaml", cm_yaml("s10-cm", "x", &[])),
            (
                "app/post.yaml",
                job_yaml(
                    "s10-post",
                    &[
                        (HOOK, "PostSync"),
                        ("sim.keelson.io/ready-delay-ms", "8000"),
                    ],
                ),
            ),
        ],
        &[],
        "v1",
    )?;
    // An automated app that is settled before the crash must not be synced again after it.
    let fx_auto = Fixture::new()?;
    fx_auto.commit(
        &[("app/cm.yaml", cm_yaml("s10-auto-cm", "x", &[]))],
        &[],
        "v1",
    )?;
    env.namespace(dest, "s10-auto").await?;
    env.create_app(app_manifest(
        "s10-auto",
        &fx_auto.url(),
        "app",
        &env.server(dest),
        "s10-auto",
        json!({"automated": {"selfHeal": true, "prune": true}}),
    ))
    .await?;
    let settled = env
        .wait_app("s10-auto", "Synced+Healthy", SYNC_WAIT, synced_healthy)
        .await?;
    let settled_at = settled["status"]["operationState"]["finishedAt"].clone();
    create_manual_app(env, name, &fx.url(), dest, ns).await?;
    env.sync_to(name, &sha).await?;
    let job = wait_until("the PostSync Job to be created", SYNC_WAIT, || async {
        env.live(dest, "batch/v1", "Job", ns, "s10-post").await
    })
    .await?;
    let uid = job["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let cm_rv = env
        .config_map(dest, ns, "s10-cm")
        .await?
        .context("cm missing")?["metadata"]["resourceVersion"]
        .clone();
    let app = env.app(name).await?.context("app vanished")?;
    ensure!(
        op_phase(&app) == "Running",
        "not mid-operation when killing: {}",
        brief(&app)
    );
    env.controller.kill9()?;
    eprintln!("s10: controller killed while the PostSync hook runs");
    tokio::time::sleep(Duration::from_secs(1)).await;
    tokio::task::block_in_place(|| env.controller.restart())?;
    let t = Instant::now();
    let app = env
        .wait_app(name, "operation finished after restart", SYNC_WAIT, |a| {
            operation_done_at(a, &sha)
        })
        .await?;
    eprintln!(
        "s10: operation finished {:.1}s after the restart",
        t.elapsed().as_secs_f64()
    );
    ensure!(
        op_phase(&app) == "Succeeded",
        "after restart: {}",
        brief(&app)
    );
    let job = env
        .live(dest, "batch/v1", "Job", ns, "s10-post")
        .await?
        .context("hook Job gone")?;
    ensure!(
        job["metadata"]["uid"] == uid.as_str(),
        "the PostSync Job was recreated after the restart (uid {uid} -> {})",
        job["metadata"]["uid"]
    );
    let jobs: Api<Job> = Api::namespaced(env.client(dest)?, ns);
    let count = jobs.list(&ListParams::default()).await?.items.len();
    ensure!(
        count == 1,
        "{count} Jobs in the namespace, expected the one hook"
    );
    let cm = env
        .config_map(dest, ns, "s10-cm")
        .await?
        .context("cm gone")?;
    ensure!(
        cm["metadata"]["resourceVersion"] == cm_rv,
        "the ConfigMap was rewritten after the restart"
    );
    let history = app["status"]["history"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    ensure!(
        history == 1,
        "history has {history} entries after one operation"
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    let auto = env.app("s10-auto").await?.context("s10-auto vanished")?;
    let auto_history = auto["status"]["history"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    ensure!(
        synced_healthy(&auto)
            && auto_history == 1
            && auto["status"]["operationState"]["finishedAt"] == settled_at,
        "the settled automated app was synced again after the restart: {}",
        brief(&auto)
    );
    Ok(())
}

// ---------------------------------------------------------------- refresh endpoint

/// `POST /api/v1/refresh[?repo=URL]` with repo-servers that cache branch resolutions
/// for 10 minutes and a controller that would not resync for 10 minutes: the apps of
/// that repository (and only those) see a commit pushed before the request, through
/// either repo-server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_endpoint_sees_commits_pushed_before_it() {
    let env = Env::start(EnvOptions {
        repo_servers: 2,
        repo_server_args: ["--revision-cache-ttl", "10m"].map(String::from).to_vec(),
        controller_args: ["--app-resync", "600s", "--app-resync-jitter", "1s"]
            .map(String::from)
            .to_vec(),
        label: "refresh-endpoint",
        ..EnvOptions::default()
    })
    .await
    .unwrap();
    if let Err(e) = refresh_endpoint(&env).await {
        panic!(
            "refresh endpoint: {e:#}\n--- controller log tail:\n{}",
            env.controller_log(40)
        );
    }
}

async fn refresh_endpoint(env: &Env) -> anyhow::Result<()> {
    let (dest, ns) = (Dest::Sim(0), "refresh");
    let (changed, other) = (Fixture::new()?, Fixture::new()?);
    let mut shas = Vec::new();
    for fx in [&changed, &other] {
        shas.push(fx.commit(&[("app/cm.yaml", cm_yaml("cm", "one", &[]))], &[], "v1")?);
    }
    let names = ["refresh-a", "refresh-b", "refresh-other"];
    for (name, fx) in names.iter().zip([&changed, &changed, &other]) {
        let target = format!("{ns}-{name}");
        env.namespace(dest, &target).await?;
        let server = env.server(dest);
        let policy = json!({"automated": {}});
        env.create_app(app_manifest(
            name,
            &fx.url(),
            "app",
            &server,
            &target,
            policy,
        ))
        .await?;
    }
    for (name, sha) in names.iter().zip([&shas[0], &shas[0], &shas[1]]) {
        env.wait_app(name, "Synced+Healthy at the first commit", SYNC_WAIT, |a| {
            synced_healthy(a) && sync_revision(a) == sha
        })
        .await?;
    }
    let sha2 = changed.commit(&[("app/cm.yaml", cm_yaml("cm", "two", &[]))], &[], "v2")?;
    // Without a request, the cached branch resolution hides the commit.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = env.app(names[0]).await?.context("app vanished")?;
    ensure!(
        sync_revision(&before) == shas[0],
        "the commit was seen without a refresh request: {}",
        brief(&before)
    );
    let addr = env.controller.metrics_addr();
    let queued = keelson_bench::fleet_env::post_refresh(addr, Some(&changed.url())).await?;
    ensure!(
        queued == 2,
        "queued {queued} apps for the changed repository"
    );
    for name in &names[..2] {
        env.wait_app(
            name,
            "Synced+Healthy at the pushed commit",
            SYNC_WAIT,
            |a| synced_healthy(a) && sync_revision(a) == sha2,
        )
        .await?;
        let cm = env.config_map(dest, &format!("{ns}-{name}"), "cm").await?;
        ensure!(
            data_key(&cm).as_deref() == Some("two"),
            "{name}: cm not updated: {cm:?}"
        );
    }
    let other_app = env.app(names[2]).await?.context("app vanished")?;
    ensure!(
        sync_revision(&other_app) == shas[1],
        "the other repository's app moved"
    );
    let all = keelson_bench::fleet_env::post_refresh(addr, None).await?;
    ensure!(
        all == 3,
        "a refresh without a repository queued {all} of 3 apps"
    );
    Ok(())
}
