//! Step-function tests: waves, hooks, failure, prune, dry run, resume, termination.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use keelson_model::operation::{ResultCode, SyncPhase};
use keelson_model::{HealthStatusCode, OperationPhase};
use keelson_sync::{
    ActionKind, Plan, PlanInput, StepOutcome, SyncState, TaskId, WriteOutcome, next_actions,
    plan_sync, resource_results,
};
use serde_json::json;
use support::{
    all_healthy, desired, ids, obj, orphan, perform_ok, run_actions, run_to_end, step_ok,
};

fn wave(n: i32) -> serde_json::Value {
    json!({"argocd.argoproj.io/sync-wave": n.to_string()})
}

fn id(plan: &Plan, name: &str) -> TaskId {
    plan.tasks
        .iter()
        .find(|t| t.key.name == name)
        .unwrap()
        .id
        .clone()
}

/// Passes the preflight dry run.
fn preflight(plan: &Plan, state: &mut SyncState) {
    let actions = run_actions(&next_actions(plan, state));
    assert!(actions.iter().all(|a| a.kind == ActionKind::DryRun));
    perform_ok(plan, state, &actions);
}

#[test]
fn dry_run_only_dry_runs_then_succeeds() {
    let mut input = PlanInput::new(
        "s1",
        vec![
            desired(obj("v1", "ConfigMap", "ns", "a", json!({}))),
            orphan(obj("v1", "ConfigMap", "ns", "old", json!({}))),
        ],
    );
    input.request.dry_run = true;
    input.request.prune = true;
    let plan = plan_sync(&input).unwrap();
    let mut state = SyncState::default();
    let actions = run_actions(&next_actions(&plan, &state));
    assert_eq!(actions.len(), 2);
    assert!(actions.iter().all(|a| a.kind == ActionKind::DryRun));
    perform_ok(&plan, &mut state, &actions);
    assert_eq!(
        next_actions(&plan, &state),
        StepOutcome::Succeeded("successfully synced (dry run)".into())
    );
    let results = resource_results(&plan, &state);
    let codes: Vec<_> = results.iter().map(|r| r.status.unwrap()).collect();
    assert_eq!(codes, [ResultCode::Synced, ResultCode::Pruned]);
    assert!(state.tasks.values().all(|o| o.written.is_none()));
}

#[test]
fn failed_preflight_fails_before_anything_is_written() {
    let plan = plan_sync(&PlanInput::new(
        "s1",
        vec![desired(obj("v1", "ConfigMap", "ns", "a", json!({})))],
    ))
    .unwrap();
    let mut state = SyncState::default();
    state.record_dry_run(&id(&plan, "a"), WriteOutcome::Failed("bad schema".into()));
    assert_eq!(
        next_actions(&plan, &state),
        StepOutcome::Failed(
            "one or more objects failed to apply (dry run), reason: bad schema".into()
        )
    );
    let results = resource_results(&plan, &state);
    assert_eq!(results[0].status, Some(ResultCode::SyncFailed));
}

#[test]
fn a_wave_waits_until_the_previous_wave_is_healthy() {
    let plan = plan_sync(&PlanInput::new(
        "s1",
        vec![
            desired(obj("apps/v1", "Deployment", "ns", "db", wave(0))),
            desired(obj("v1", "ConfigMap", "ns", "cfg", wave(0))),
            desired(obj("apps/v1", "Deployment", "ns", "web", wave(1))),
        ],
    ))
    .unwrap();
    let mut state = SyncState::default();
    preflight(&plan, &mut state);
    let wave0 = run_actions(&next_actions(&plan, &state));
    assert_eq!(
        ids(&wave0),
        ["Sync:/ConfigMap/ns/cfg", "Sync:apps/Deployment/ns/db"]
    );
    perform_ok(&plan, &mut state, &wave0);
    assert_eq!(
        next_actions(&plan, &state),
        StepOutcome::Wait(
            "waiting for healthy state of /ConfigMap/cfg and 1 more resources".into()
        )
    );
    state.record_health(&id(&plan, "cfg"), HealthStatusCode::Healthy, None);
    state.record_health(&id(&plan, "db"), HealthStatusCode::Progressing, None);
    assert_eq!(
        next_actions(&plan, &state),
        StepOutcome::Wait("waiting for healthy state of apps/Deployment/db".into())
    );
    state.record_health(&id(&plan, "db"), HealthStatusCode::Healthy, None);
    let wave1 = run_actions(&next_actions(&plan, &state));
    assert_eq!(ids(&wave1), ["Sync:apps/Deployment/ns/web"]);
    perform_ok(&plan, &mut state, &wave1);
    // Non-hook resources of the final wave need not become healthy.
    assert_eq!(
        next_actions(&plan, &state),
        StepOutcome::Succeeded("successfully synced (all tasks run)".into())
    );
}

#[test]
fn degraded_resource_in_an_earlier_wave_fails_the_sync() {
    let plan = plan_sync(&PlanInput::new(
        "s1",
        vec![
            desired(obj("apps/v1", "Deployment", "ns", "db", wave(0))),
            desired(obj("apps/v1", "Deployment", "ns", "web", wave(1))),
        ],
    ))
    .unwrap();
    let mut state = SyncState::default();
    preflight(&plan, &mut state);
    step_ok(&plan, &mut state);
    state.record_health(
        &id(&plan, "db"),
        HealthStatusCode::Degraded,
        Some("crashloop".into()),
    );
    assert_eq!(
        next_actions(&plan, &state),
        StepOutcome::Failed(
            "one or more synchronization tasks completed unsuccessfully, reason: crashloop".into()
        )
    );
}

#[test]
fn before_hook_creation_deletes_the_old_hook_before_creating_it() {
    let job = obj(
        "batch/v1",
        "Job",
        "ns",
        "migrate",
        json!({"argocd.argoproj.io/hook": "PreSync"}),
    );
    let mut hook = desired(job.clone());
    hook.live = Some(job);
    let plan = plan_sync(&PlanInput::new("s1", vec![hook])).unwrap();
    let mut state = SyncState::default();
    preflight(&plan, &mut state);
    let first = run_actions(&next_actions(&plan, &state));
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].kind, ActionKind::DeleteOldHook);
    perform_ok(&plan, &mut state, &first);
    let second = run_actions(&next_actions(&plan, &state));
    assert_eq!(second[0].kind, ActionKind::Apply);
    perform_ok(&plan, &mut state, &second);
    assert_eq!(
        next_actions(&plan, &state),
        StepOutcome::Wait("waiting for completion of hook batch/Job/migrate".into())
    );
    state.record_health(&id(&plan, "migrate"), HealthStatusCode::Healthy, None);
    // BeforeHookCreation only: nothing is deleted afterwards.
    assert!(matches!(
        next_actions(&plan, &state),
        StepOutcome::Succeeded(_)
    ));
}

#[test]
fn hook_succeeded_hooks_are_deleted_after_success() {
    let plan = plan_sync(&PlanInput::new(
        "s1",
        vec![
            desired(obj("batch/v1", "Job", "ns", "post", json!({"argocd.argoproj.io/hook": "PostSync", "argocd.argoproj.io/hook-delete-policy": "HookSucceeded"}))),
            desired(obj("batch/v1", "Job", "ns", "keep", json!({"argocd.argoproj.io/hook": "PostSync", "argocd.argoproj.io/hook-delete-policy": "HookFailed"}))),
            desired(obj("v1", "ConfigMap", "ns", "cfg", json!({}))),
        ],
    ))
    .unwrap();
    let mut state = SyncState::default();
    preflight(&plan, &mut state);
    for _ in 0..2 {
        step_ok(&plan, &mut state);
        all_healthy(&mut state);
    }
    let cleanup = run_actions(&next_actions(&plan, &state));
    assert_eq!(ids(&cleanup), ["PostSync:batch/Job/ns/post"]);
    assert_eq!(cleanup[0].kind, ActionKind::DeleteHook);
    perform_ok(&plan, &mut state, &cleanup);
    assert!(matches!(
        next_actions(&plan, &state),
        StepOutcome::Succeeded(_)
    ));
}

#[test]
fn failed_sync_task_runs_sync_fail_hooks_deletes_hook_failed_then_fails() {
    let plan = plan_sync(&PlanInput::new(
        "s1",
        vec![
            desired(obj("v1", "ConfigMap", "ns", "cfg", wave(0))),
            desired(obj("v1", "ConfigMap", "ns", "later", wave(1))),
            desired(obj("batch/v1", "Job", "ns", "cleanup", json!({"argocd.argoproj.io/hook": "SyncFail", "argocd.argoproj.io/hook-delete-policy": "HookFailed,HookSucceeded"}))),
            desired(obj("batch/v1", "Job", "ns", "pre", json!({"argocd.argoproj.io/hook": "PreSync", "argocd.argoproj.io/hook-delete-policy": "HookFailed"}))),
        ],
    ))
    .unwrap();
    let mut state = SyncState::default();
    preflight(&plan, &mut state);
    step_ok(&plan, &mut state);
    all_healthy(&mut state);
    let wave0 = run_actions(&next_actions(&plan, &state));
    assert_eq!(ids(&wave0), ["Sync:/ConfigMap/ns/cfg"]);
    state.record_written(&wave0[0].task, WriteOutcome::Failed("forbidden".into()));
    let sync_fail = run_actions(&next_actions(&plan, &state));
    assert_eq!(ids(&sync_fail), ["SyncFail:batch/Job/ns/cleanup"]);
    assert_eq!(sync_fail[0].kind, ActionKind::Apply);
    perform_ok(&plan, &mut state, &sync_fail);
    assert!(matches!(next_actions(&plan, &state), StepOutcome::Wait(_)));
    state.record_health(&id(&plan, "cleanup"), HealthStatusCode::Healthy, None);
    let cleanup = run_actions(&next_actions(&plan, &state));
    assert_eq!(
        ids(&cleanup),
        ["PreSync:batch/Job/ns/pre", "SyncFail:batch/Job/ns/cleanup"]
    );
    perform_ok(&plan, &mut state, &cleanup);
    assert_eq!(
        next_actions(&plan, &state),
        StepOutcome::Failed("one or more objects failed to apply, reason: forbidden".into())
    );
    assert!(
        state.get(&id(&plan, "later")).written.is_none(),
        "later waves never ran"
    );
    let results = resource_results(&plan, &state);
    let cfg = results.iter().find(|r| r.name == "cfg").unwrap();
    assert_eq!(cfg.status, Some(ResultCode::SyncFailed));
    assert_eq!(cfg.hook_phase, Some(OperationPhase::Failed));
    assert_eq!(cfg.message.as_deref(), Some("forbidden"));
}

#[test]
fn failing_sync_fail_hook_is_reported() {
    let plan = plan_sync(&PlanInput::new(
        "s1",
        vec![
            desired(obj("v1", "ConfigMap", "ns", "cfg", json!({}))),
            desired(obj(
                "batch/v1",
                "Job",
                "ns",
                "cleanup",
                json!({"argocd.argoproj.io/hook": "SyncFail"}),
            )),
        ],
    ))
    .unwrap();
    let mut state = SyncState::default();
    preflight(&plan, &mut state);
    state.record_written(&id(&plan, "cfg"), WriteOutcome::Failed("boom".into()));
    step_ok(&plan, &mut state);
    state.record_health(
        &id(&plan, "cleanup"),
        HealthStatusCode::Degraded,
        Some("job failed".into()),
    );
    assert_eq!(
        next_actions(&plan, &state),
        StepOutcome::Failed(
            "one or more objects failed to apply, reason: boom\none or more SyncFail hooks failed, reason: job failed".into()
        )
    );
}

#[test]
fn prunes_run_in_reverse_wave_order_and_results_say_pruned() {
    let mut input = PlanInput::new(
        "s1",
        vec![
            orphan(obj("v1", "ConfigMap", "ns", "first", wave(0))),
            orphan(obj("v1", "ConfigMap", "ns", "second", wave(1))),
            orphan(obj(
                "v1",
                "ConfigMap",
                "ns",
                "kept",
                json!({"argocd.argoproj.io/sync-options": "Prune=false"}),
            )),
        ],
    );
    input.request.prune = true;
    let plan = plan_sync(&input).unwrap();
    let mut state = SyncState::default();
    let (end, applied) = run_to_end(&plan, &mut state);
    assert!(matches!(end, StepOutcome::Succeeded(_)));
    assert_eq!(
        applied,
        ["Sync:/ConfigMap/ns/second", "Sync:/ConfigMap/ns/first"]
    );
    let results = resource_results(&plan, &state);
    let status = |n: &str| results.iter().find(|r| r.name == n).unwrap().status;
    assert_eq!(status("first"), Some(ResultCode::Pruned));
    assert_eq!(status("kept"), Some(ResultCode::PruneSkipped));
    let kept = results.iter().find(|r| r.name == "kept").unwrap();
    assert_eq!(kept.message.as_deref(), Some("ignored (no prune)"));
}

#[test]
fn prune_confirm_waits_for_confirmation() {
    let mut input = PlanInput::new(
        "s1",
        vec![orphan(obj(
            "v1",
            "ConfigMap",
            "ns",
            "careful",
            json!({"argocd.argoproj.io/sync-options": "Prune=confirm"}),
        ))],
    );
    input.request.prune = true;
    let plan = plan_sync(&input).unwrap();
    assert!(plan.requires_prune_confirmation);
    let mut state = SyncState::default();
    preflight(&plan, &mut state);
    assert_eq!(
        next_actions(&plan, &state),
        StepOutcome::Wait("waiting for pruning confirmation".into())
    );
    state.prune_confirmed = true;
    assert_eq!(
        run_actions(&next_actions(&plan, &state))[0].kind,
        ActionKind::Prune
    );
}

#[test]
fn create_namespace_runs_first() {
    let mut input = PlanInput::new(
        "s1",
        vec![desired(obj(
            "batch/v1",
            "Job",
            "prod",
            "pre",
            json!({"argocd.argoproj.io/hook": "PreSync"}),
        ))],
    );
    input.options.create_namespace = true;
    input.request.destination_namespace = "prod".into();
    let plan = plan_sync(&input).unwrap();
    let mut state = SyncState::default();
    let (end, applied) = run_to_end(&plan, &mut state);
    assert!(matches!(end, StepOutcome::Succeeded(_)));
    assert_eq!(
        applied,
        ["PreSync:/Namespace//prod", "PreSync:batch/Job/prod/pre"]
    );
}

fn resumable_plan() -> Plan {
    plan_sync(&PlanInput::new(
        "s1",
        vec![
            desired(obj(
                "batch/v1",
                "Job",
                "ns",
                "pre",
                json!({"argocd.argoproj.io/hook": "PreSync"}),
            )),
            desired(obj("v1", "ConfigMap", "ns", "a", wave(0))),
            desired(obj("v1", "ConfigMap", "ns", "b", wave(1))),
            desired(obj("v1", "ConfigMap", "ns", "c", wave(2))),
        ],
    ))
    .unwrap()
}

#[test]
fn resume_from_recorded_results_gives_the_same_next_actions() {
    let plan = resumable_plan();
    let mut state = SyncState::default();
    preflight(&plan, &mut state);
    for _ in 0..3 {
        step_ok(&plan, &mut state);
        all_healthy(&mut state);
    }
    let expected = next_actions(&plan, &state);
    assert_eq!(ids(&run_actions(&expected)), ["Sync:/ConfigMap/ns/c"]);
    // A restarted controller: only the recorded syncResult survives.
    let recorded = resource_results(&plan, &state);
    let json = serde_json::to_value(&recorded).unwrap();
    let reread: Vec<keelson_model::operation::ResourceResult> =
        serde_json::from_value(json).unwrap();
    let replanned = resumable_plan();
    let rebuilt = SyncState::from_resource_results(&replanned, &reread);
    assert_eq!(next_actions(&replanned, &rebuilt), expected);
    // And the serialised state itself resumes identically.
    let text = serde_json::to_string(&state).unwrap();
    let restored: SyncState = serde_json::from_str(&text).unwrap();
    assert_eq!(next_actions(&plan, &restored), expected);
}

#[test]
fn resume_mid_wave_only_repeats_unrecorded_tasks() {
    let plan = plan_sync(&PlanInput::new(
        "s1",
        vec![
            desired(obj("v1", "ConfigMap", "ns", "a", json!({}))),
            desired(obj("v1", "ConfigMap", "ns", "b", json!({}))),
        ],
    ))
    .unwrap();
    let mut state = SyncState::default();
    preflight(&plan, &mut state);
    let wave = run_actions(&next_actions(&plan, &state));
    perform_ok(&plan, &mut state, &wave[..1]);
    assert_eq!(
        ids(&run_actions(&next_actions(&plan, &state))),
        ["Sync:/ConfigMap/ns/b"]
    );
}

#[test]
fn termination_deletes_running_hooks_then_terminates() {
    let plan = plan_sync(&PlanInput::new(
        "s1",
        vec![desired(obj(
            "batch/v1",
            "Job",
            "ns",
            "long",
            json!({"argocd.argoproj.io/hook": "Sync"}),
        ))],
    ))
    .unwrap();
    let mut state = SyncState::default();
    preflight(&plan, &mut state);
    step_ok(&plan, &mut state);
    state.terminate_requested = true;
    let deletions = run_actions(&next_actions(&plan, &state));
    assert_eq!(deletions[0].kind, ActionKind::DeleteHook);
    perform_ok(&plan, &mut state, &deletions);
    assert_eq!(
        next_actions(&plan, &state),
        StepOutcome::Terminated("Operation terminated".into())
    );
}

#[test]
fn results_have_argo_cd_shape() {
    let plan = plan_sync(&PlanInput::new(
        "s1",
        vec![
            desired(obj(
                "batch/v1",
                "Job",
                "ns",
                "pre",
                json!({"argocd.argoproj.io/hook": "PreSync"}),
            )),
            desired(obj("apps/v1", "Deployment", "ns", "web", json!({}))),
        ],
    ))
    .unwrap();
    let mut state = SyncState::default();
    let (end, _) = run_to_end(&plan, &mut state);
    assert!(matches!(end, StepOutcome::Succeeded(_)));
    let results = serde_json::to_value(resource_results(&plan, &state)).unwrap();
    assert_eq!(
        results,
        json!([
            {"group": "batch", "version": "v1", "kind": "Job", "namespace": "ns", "name": "pre",
             "status": "Synced", "message": "pre done", "hookType": "PreSync",
             "hookPhase": "Succeeded", "syncPhase": "PreSync"},
            {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "ns", "name": "web",
             "status": "Synced", "message": "web done",
             "hookPhase": "Succeeded", "syncPhase": "Sync"}
        ])
    );
}

#[test]
fn empty_plan_succeeds_at_once() {
    let plan = plan_sync(&PlanInput::new("s1", vec![])).unwrap();
    assert_eq!(
        next_actions(&plan, &SyncState::default()),
        StepOutcome::Succeeded("successfully synced (all tasks run)".into())
    );
    assert_eq!(
        plan.tasks
            .iter()
            .filter(|t| t.phase == SyncPhase::Sync)
            .count(),
        0
    );
}
