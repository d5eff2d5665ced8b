//! Helpers shared by the sync tests: objects, inputs and a simulated executor.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use keelson_model::{HealthStatusCode, ResourceKey};
use keelson_sync::{
    ActionKind, Plan, ResourceInput, StepOutcome, SyncState, TaskId, WriteOutcome, next_actions,
};
use serde_json::{Value, json};

/// A manifest with annotations.
pub fn obj(api_version: &str, kind: &str, ns: &str, name: &str, annotations: Value) -> Value {
    let mut metadata = json!({"name": name, "annotations": annotations});
    if !ns.is_empty() {
        metadata["namespace"] = json!(ns);
    }
    json!({"apiVersion": api_version, "kind": kind, "metadata": metadata})
}

/// Key of a test object; unlike `ResourceKey::from_object` it accepts an empty name, as
/// `generateName` hooks have before the planner names them.
pub fn key_of(object: &Value) -> ResourceKey {
    let api = object["apiVersion"].as_str().unwrap_or("v1");
    let group = keelson_model::resource_key::group_of(api);
    ResourceKey::new(
        group,
        object["kind"].as_str().unwrap_or(""),
        object["metadata"]["namespace"].as_str().unwrap_or(""),
        object["metadata"]["name"].as_str().unwrap_or(""),
    )
}

/// A desired object that does not exist live yet.
pub fn desired(object: Value) -> ResourceInput {
    ResourceInput {
        key: key_of(&object),
        desired: Some(object),
        live: None,
        modified: true,
        requires_pruning: false,
        shared_with: None,
    }
}

/// A live object that is no longer desired.
pub fn orphan(object: Value) -> ResourceInput {
    ResourceInput {
        key: key_of(&object),
        desired: None,
        live: Some(object),
        modified: true,
        requires_pruning: true,
        shared_with: None,
    }
}

pub fn names(plan: &Plan) -> Vec<String> {
    plan.tasks.iter().map(|t| t.key.name.clone()).collect()
}

pub fn ids(actions: &[keelson_sync::Action]) -> Vec<String> {
    actions.iter().map(|a| a.task.0.clone()).collect()
}

pub fn run_actions(outcome: &StepOutcome) -> Vec<keelson_sync::Action> {
    match outcome {
        StepOutcome::Run(actions) => actions.clone(),
        other => panic!("expected Run, got {other:?}"),
    }
}

/// Performs every action successfully; applied objects do not report health yet.
pub fn perform_ok(plan: &Plan, state: &mut SyncState, actions: &[keelson_sync::Action]) {
    for action in actions {
        let name = &plan.task(&action.task).unwrap().key.name;
        match action.kind {
            ActionKind::DryRun => {
                state.record_dry_run(&action.task, WriteOutcome::Ok(format!("{name} (dry run)")))
            }
            ActionKind::Apply | ActionKind::Prune => {
                state.record_written(&action.task, WriteOutcome::Ok(format!("{name} done")))
            }
            ActionKind::DeleteOldHook => state.record_hook_deleted(&action.task, true),
            ActionKind::DeleteHook => state.record_hook_deleted(&action.task, false),
        }
    }
}

/// Marks every written task healthy.
pub fn all_healthy(state: &mut SyncState) {
    let written: Vec<TaskId> = state
        .tasks
        .iter()
        .filter(|(_, o)| o.written.is_some() && o.health.is_none())
        .map(|(id, _)| id.clone())
        .collect();
    for id in written {
        state.record_health(&id, HealthStatusCode::Healthy, None);
    }
}

/// Runs the loop with everything succeeding and becoming healthy after a wait; returns
/// the final outcome and the apply actions in order.
pub fn run_to_end(plan: &Plan, state: &mut SyncState) -> (StepOutcome, Vec<String>) {
    let mut applied = Vec::new();
    for _ in 0..1000 {
        match next_actions(plan, state) {
            StepOutcome::Run(actions) => {
                applied.extend(
                    actions
                        .iter()
                        .filter(|a| matches!(a.kind, ActionKind::Apply | ActionKind::Prune))
                        .map(|a| a.task.0.clone()),
                );
                perform_ok(plan, state, &actions);
            }
            StepOutcome::Wait(_) => all_healthy(state),
            end => return (end, applied),
        }
    }
    panic!("did not finish in 1000 steps");
}

/// Takes the next step, which must be `Run`, and performs it successfully.
pub fn step_ok(plan: &Plan, state: &mut SyncState) -> Vec<keelson_sync::Action> {
    let actions = run_actions(&next_actions(plan, state));
    perform_ok(plan, state, &actions);
    actions
}
