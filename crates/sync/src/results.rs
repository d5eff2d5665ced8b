//! Per-resource results for `status.operationState.syncResult.resources`, derived from a
//! plan and its observed state.

use keelson_model::OperationPhase;
use keelson_model::operation::{ResourceResult, ResultCode};

use crate::plan::Plan;
use crate::state::{SyncState, TaskObservation, WriteOutcome};
use crate::step::{TaskStatus, final_wave, task_status};
use crate::task::{SyncTask, TaskOperation};

/// One result per task that has a result so far, in plan order. Tasks not started yet
/// are left out; prune-skipped tasks are always listed. In dry-run plans the dry-run
/// outcomes are reported; otherwise a failed dry run is reported as `SyncFailed`.
pub fn resource_results(plan: &Plan, state: &SyncState) -> Vec<ResourceResult> {
    let last = final_wave(plan);
    plan.tasks
        .iter()
        .filter_map(|task| {
            let obs = state.get(&task.id);
            let (status, phase, message) = outcome(plan, task, &obs, last)?;
            Some(ResourceResult {
                group: Some(task.key.group.clone()),
                version: Some(task.version().to_owned()),
                kind: task.key.kind.clone(),
                namespace: Some(task.key.namespace.clone()),
                name: task.key.name.clone(),
                status: Some(status),
                message: Some(message),
                hook_type: task.hook.as_ref().map(|h| h.hook_type),
                hook_phase: Some(phase),
                sync_phase: Some(task.phase),
                extra: Default::default(),
            })
        })
        .collect()
}

fn written_code(task: &SyncTask, outcome: &WriteOutcome) -> ResultCode {
    match (outcome, task.is_prune()) {
        (WriteOutcome::Failed(_), _) => ResultCode::SyncFailed,
        (WriteOutcome::Ok(_), true) => ResultCode::Pruned,
        (WriteOutcome::Ok(_), false) => ResultCode::Synced,
    }
}

fn outcome(
    plan: &Plan,
    task: &SyncTask,
    obs: &TaskObservation,
    last: Option<(keelson_model::operation::SyncPhase, i32)>,
) -> Option<(ResultCode, OperationPhase, String)> {
    if let TaskOperation::PruneSkipped { message } = &task.operation {
        return Some((
            ResultCode::PruneSkipped,
            OperationPhase::Succeeded,
            message.clone(),
        ));
    }
    if plan.dry_run {
        let dry = obs.dry_run.as_ref()?;
        let phase = if dry.is_failed() {
            OperationPhase::Failed
        } else {
            OperationPhase::Succeeded
        };
        return Some((written_code(task, dry), phase, dry.message().to_owned()));
    }
    let Some(written) = &obs.written else {
        let dry = obs.dry_run.as_ref().filter(|d| d.is_failed())?;
        return Some((
            ResultCode::SyncFailed,
            OperationPhase::Failed,
            dry.message().to_owned(),
        ));
    };
    let code = written_code(task, written);
    let (phase, message) = match task_status(task, obs, last) {
        TaskStatus::Running | TaskStatus::Pending => {
            (OperationPhase::Running, written.message().to_owned())
        }
        TaskStatus::Succeeded => (
            OperationPhase::Succeeded,
            obs.health_message
                .clone()
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| written.message().to_owned()),
        ),
        TaskStatus::Failed(message) if message.is_empty() => {
            (OperationPhase::Failed, written.message().to_owned())
        }
        TaskStatus::Failed(message) => (OperationPhase::Failed, message),
    };
    Some((code, phase, message))
}
