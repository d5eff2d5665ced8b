//! `SyncState`: what the executor has observed about each task — plain serialisable
//! data, written by the executor and read by the step function. It can be rebuilt from
//! the `syncResult.resources` recorded in `status.operationState`.

use std::collections::BTreeMap;

use keelson_model::operation::{ResourceResult, ResultCode};
use keelson_model::{HealthStatusCode, OperationPhase, ResourceKey};
use serde::{Deserialize, Serialize};

use crate::plan::Plan;
use crate::task::TaskId;

/// Outcome of one write (apply, prune or dry run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteOutcome {
    /// Done; message as reported by the API (e.g. `deployment.apps/web configured`).
    Ok(String),
    /// Failed with this message.
    Failed(String),
}

impl WriteOutcome {
    /// Whether the write failed.
    pub fn is_failed(&self) -> bool {
        matches!(self, WriteOutcome::Failed(_))
    }

    /// The message.
    pub fn message(&self) -> &str {
        match self {
            WriteOutcome::Ok(m) | WriteOutcome::Failed(m) => m,
        }
    }
}

/// Everything observed about one task.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TaskObservation {
    /// Result of the dry run.
    pub dry_run: Option<WriteOutcome>,
    /// Result of the apply or prune.
    pub written: Option<WriteOutcome>,
    /// Health of the live object after the apply (hooks: Healthy = succeeded,
    /// Degraded/Unknown = failed). Record `Healthy` for kinds without health.
    pub health: Option<HealthStatusCode>,
    /// Health message.
    pub health_message: Option<String>,
    /// The previous copy of the hook was deleted (`BeforeHookCreation`).
    pub old_hook_deleted: bool,
    /// The hook was deleted after the operation (delete policy or termination).
    pub hook_deleted: bool,
}

/// Observed state of an operation.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SyncState {
    /// Observations per task.
    pub tasks: BTreeMap<TaskId, TaskObservation>,
    /// The user asked to terminate the operation.
    pub terminate_requested: bool,
    /// The user confirmed pruning (`Prune=confirm` resources).
    pub prune_confirmed: bool,
}

impl SyncState {
    /// The observation of a task (default when nothing was recorded).
    pub fn get(&self, id: &TaskId) -> TaskObservation {
        self.tasks.get(id).cloned().unwrap_or_default()
    }

    fn entry(&mut self, id: &TaskId) -> &mut TaskObservation {
        self.tasks.entry(id.clone()).or_default()
    }

    /// Records the result of a dry-run action.
    pub fn record_dry_run(&mut self, id: &TaskId, outcome: WriteOutcome) {
        self.entry(id).dry_run = Some(outcome);
    }

    /// Records the result of an apply or prune action.
    pub fn record_written(&mut self, id: &TaskId, outcome: WriteOutcome) {
        self.entry(id).written = Some(outcome);
    }

    /// Records the observed health of an applied object.
    pub fn record_health(
        &mut self,
        id: &TaskId,
        health: HealthStatusCode,
        message: Option<String>,
    ) {
        let entry = self.entry(id);
        entry.health = Some(health);
        entry.health_message = message;
    }

    /// Records that a `DeleteHook` action finished.
    pub fn record_hook_deleted(&mut self, id: &TaskId, before_creation: bool) {
        let entry = self.entry(id);
        if before_creation {
            entry.old_hook_deleted = true;
        } else {
            entry.hook_deleted = true;
        }
    }

    /// Whether any task was written (the operation has started; the preflight dry run is
    /// not repeated on resume).
    pub fn started(&self) -> bool {
        self.tasks.values().any(|t| t.written.is_some())
    }

    /// Rebuilds the state of `plan` from recorded `syncResult.resources` (as written by
    /// [`crate::resource_results`], or by Argo CD). Results are matched to tasks by
    /// group, kind, namespace, name and sync phase; `hookPhase` Succeeded/Failed becomes
    /// Healthy/Degraded health. Results that match no task are ignored.
    pub fn from_resource_results(plan: &Plan, results: &[ResourceResult]) -> Self {
        let mut state = SyncState::default();
        for result in results {
            let key = ResourceKey::new(
                result.group.clone().unwrap_or_default(),
                result.kind.clone(),
                result.namespace.clone().unwrap_or_default(),
                result.name.clone(),
            );
            let Some(task) = plan
                .tasks
                .iter()
                .find(|t| t.key == key && result.sync_phase.is_none_or(|p| p == t.phase))
            else {
                continue;
            };
            let message = result.message.clone().unwrap_or_default();
            let entry = state.entry(&task.id);
            entry.written = match result.status {
                Some(ResultCode::SyncFailed) => Some(WriteOutcome::Failed(message)),
                Some(_) => Some(WriteOutcome::Ok(message)),
                None => None,
            };
            entry.health = match result.hook_phase {
                Some(OperationPhase::Succeeded) => Some(HealthStatusCode::Healthy),
                Some(OperationPhase::Failed | OperationPhase::Error) => {
                    Some(HealthStatusCode::Degraded)
                }
                _ => None,
            };
            if entry.written.is_some() {
                entry.old_hook_deleted = true;
            }
        }
        state
    }
}
