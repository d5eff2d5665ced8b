//! Health observation while the step function waits: read every applied task that is
//! still running and assess it (kinds without a health check are Healthy; for hooks
//! Healthy means succeeded and Degraded failed).

use std::time::Duration;

use futures::StreamExt;
use keelson_health::HealthAssessor;
use keelson_model::HealthStatusCode;
use keelson_model::operation::SyncPhase;
use serde_json::Value;

use super::error::ExecutorError;
use super::ops::ClusterOps;
use crate::plan::Plan;
use crate::state::SyncState;
use crate::step::{TaskStatus, final_wave, task_status};
use crate::task::SyncTask;

/// Message recorded for a hook whose object vanished before it completed.
const HOOK_VANISHED: &str = "hook object no longer exists";

/// The tasks whose completion the step function waits for.
fn running<'a>(plan: &'a Plan, state: &SyncState) -> Vec<&'a SyncTask> {
    let last = final_wave(plan);
    plan.tasks
        .iter()
        .filter(|t| {
            let last = if t.phase == SyncPhase::SyncFail {
                None
            } else {
                last
            };
            let obs = state.get(&t.id);
            !obs.hook_deleted && task_status(t, &obs, last) == TaskStatus::Running
        })
        .collect()
}

/// Health of a live object (or of its absence) as the step function reads it.
pub(crate) fn assess(
    health: &HealthAssessor,
    task: &SyncTask,
    live: Option<&Value>,
) -> (HealthStatusCode, String) {
    match live {
        None if task.is_hook() => (HealthStatusCode::Degraded, HOOK_VANISHED.to_owned()),
        None => (HealthStatusCode::Missing, String::new()),
        Some(object) => match health.assess(object) {
            Some(assessment) => (assessment.status, assessment.message),
            None => (HealthStatusCode::Healthy, String::new()),
        },
    }
}

/// Reads and assesses every running task, records the results, and says whether any
/// observation changed.
async fn read_live<O: ClusterOps>(
    ops: &O,
    tasks: &[&SyncTask],
    i: usize,
    timeout: Duration,
) -> (usize, Result<Option<Value>, ExecutorError>) {
    let task = tasks[i];
    let live = match tokio::time::timeout(timeout, ops.get(task)).await {
        Ok(result) => result,
        Err(_) => Err(ExecutorError::GetTimeout {
            resource: task.key.to_string(),
            timeout,
        }),
    };
    (i, live)
}

pub(crate) async fn observe_health<O: ClusterOps>(
    ops: &O,
    health: &HealthAssessor,
    plan: &Plan,
    state: &mut SyncState,
    parallelism: usize,
    timeout: Duration,
) -> Result<bool, ExecutorError> {
    let tasks = running(plan, state);
    // Indices, not references, go through the closure: a closure returning a future that
    // borrows its argument makes the caller's future fail the `Send` check of
    // `tokio::spawn` (rustc's higher-ranked lifetime limitation).
    let results: Vec<(usize, Result<Option<Value>, ExecutorError>)> =
        futures::stream::iter(0..tasks.len())
            .map(|i| read_live(ops, &tasks, i, timeout))
            .buffer_unordered(parallelism.max(1))
            .collect()
            .await;
    let results = results.into_iter().map(|(i, live)| (tasks[i], live));
    let mut changed = false;
    let mut first_error = None;
    for (task, live) in results {
        let live = match live {
            Ok(live) => live,
            Err(e) => {
                first_error = first_error.or(Some(e));
                continue;
            }
        };
        let (code, message) = assess(health, task, live.as_ref());
        let message = (!message.is_empty()).then_some(message);
        let before = state.get(&task.id);
        if before.health != Some(code) || before.health_message != message {
            tracing::debug!(task = %task.id, health = %code, "observed health");
            state.record_health(&task.id, code, message);
            changed = true;
        }
    }
    match first_error {
        Some(e) if !changed => Err(e),
        _ => Ok(changed),
    }
}
