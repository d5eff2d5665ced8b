//! The step function: given a plan and what has been observed so far, say what to do
//! next. Pure and re-entrant — the same plan and state always give the same outcome, and
//! completed work is never asked for again.

use keelson_model::operation::SyncPhase;
use keelson_model::{HealthStatusCode, HookDeletePolicy};
use serde::{Deserialize, Serialize};

use crate::plan::Plan;
use crate::state::{SyncState, TaskObservation, WriteOutcome};
use crate::task::{SyncTask, TaskId};

/// What an action asks the executor to do with a task (details are in the plan's task).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActionKind {
    /// Validate the task without changing the cluster (client-side dry run, like Argo
    /// CD). For a prune task: check that the object may be deleted. Record with
    /// [`SyncState::record_dry_run`].
    DryRun,
    /// Write the desired object with the task's apply method. Record with
    /// [`SyncState::record_written`], then [`SyncState::record_health`] once observed.
    Apply,
    /// Delete the live object with the task's propagation policy. Record with
    /// [`SyncState::record_written`].
    Prune,
    /// Delete the copy of the hook left by an earlier sync before creating it
    /// (`BeforeHookCreation`); wait until it is gone, then record with
    /// [`SyncState::record_hook_deleted`]`(id, true)`.
    DeleteOldHook,
    /// Delete the hook created by this sync (delete policy or termination). Record with
    /// [`SyncState::record_hook_deleted`]`(id, false)`.
    DeleteHook,
}

/// One thing to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// The task (look it up with [`Plan::task`]).
    pub task: TaskId,
    /// What to do.
    pub kind: ActionKind,
}

/// What the executor does next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepOutcome {
    /// Perform these actions (in order; actions of one step may also run concurrently),
    /// record their results, and step again.
    Run(Vec<Action>),
    /// Nothing to do until more is observed (health of the current wave, hook
    /// completion, pruning confirmation). The message is the operation message.
    Wait(String),
    /// The operation succeeded (operation phase `Succeeded`).
    Succeeded(String),
    /// The operation failed (operation phase `Failed`).
    Failed(String),
    /// The operation was terminated on request (Argo CD records phase `Failed` with
    /// message `Operation terminated`).
    Terminated(String),
}

/// Progress of one task, derived from the plan and the observations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TaskStatus {
    Pending,
    Running,
    Succeeded,
    Failed(String),
}

/// The tasks of `tasks` whose status is `status`, in plan order.
fn in_status<'a>(tasks: &[(&'a SyncTask, TaskStatus)], status: &TaskStatus) -> Vec<&'a SyncTask> {
    tasks
        .iter()
        .filter(|(_, s)| s == status)
        .map(|(t, _)| *t)
        .collect()
}

/// Phase and wave of the last non-SyncFail task: non-hook resources there count as done
/// once applied (Argo CD does not wait for their health; nothing comes after them).
pub(crate) fn final_wave(plan: &Plan) -> Option<(SyncPhase, i32)> {
    plan.tasks
        .iter()
        .filter(|t| t.phase != SyncPhase::SyncFail)
        .map(|t| (t.phase, t.wave))
        .max()
}

pub(crate) fn task_status(
    task: &SyncTask,
    obs: &TaskObservation,
    last: Option<(SyncPhase, i32)>,
) -> TaskStatus {
    if task.is_noop() {
        return TaskStatus::Succeeded;
    }
    match &obs.written {
        None => TaskStatus::Pending,
        Some(WriteOutcome::Failed(message)) => TaskStatus::Failed(message.clone()),
        Some(WriteOutcome::Ok(_)) if task.is_prune() => TaskStatus::Succeeded,
        Some(WriteOutcome::Ok(_)) => applied_status(task, obs, last),
    }
}

fn applied_status(
    task: &SyncTask,
    obs: &TaskObservation,
    last: Option<(SyncPhase, i32)>,
) -> TaskStatus {
    let failed = || TaskStatus::Failed(obs.health_message.clone().unwrap_or_default());
    match obs.health {
        Some(HealthStatusCode::Healthy) => TaskStatus::Succeeded,
        Some(HealthStatusCode::Degraded) => failed(),
        Some(HealthStatusCode::Unknown) if task.is_hook() => failed(),
        _ if !task.is_hook() && last == Some((task.phase, task.wave)) => TaskStatus::Succeeded,
        _ => TaskStatus::Running,
    }
}

fn action(task: &SyncTask, kind: ActionKind) -> Action {
    Action {
        task: task.id.clone(),
        kind,
    }
}

/// Decides the next step of the operation. See the crate docs for the loop around it.
pub fn next_actions(plan: &Plan, state: &SyncState) -> StepOutcome {
    if state.terminate_requested {
        return terminate(plan, state);
    }
    if (plan.dry_run || !state.started())
        && let Some(outcome) = preflight(plan, state)
    {
        return outcome;
    }
    if plan.requires_prune_confirmation && !state.prune_confirmed {
        return StepOutcome::Wait("waiting for pruning confirmation".to_owned());
    }
    let last = final_wave(plan);
    let main: Vec<(&SyncTask, TaskStatus)> = plan
        .tasks
        .iter()
        .filter(|t| t.phase != SyncPhase::SyncFail)
        .map(|t| (t, task_status(t, &state.get(&t.id), last)))
        .collect();
    let running = in_status(&main, &TaskStatus::Running);
    if !running.is_empty() {
        return StepOutcome::Wait(waiting_message(&running));
    }
    let failed: Vec<(&SyncTask, &str)> = main
        .iter()
        .filter_map(|(t, s)| match s {
            TaskStatus::Failed(message) => Some((*t, message.as_str())),
            _ => None,
        })
        .collect();
    if !failed.is_empty() {
        return fail(plan, state, &failure_reason(state, &failed));
    }
    let pending = in_status(&main, &TaskStatus::Pending);
    match pending.first() {
        None => succeed(plan, state),
        Some(first) => {
            let wave: Vec<&SyncTask> = pending
                .iter()
                .filter(|t| t.phase == first.phase && t.wave == first.wave)
                .copied()
                .collect();
            tracing::debug!(phase = %first.phase, wave = first.wave, tasks = wave.len(), "starting wave");
            run_tasks(&wave, state)
        }
    }
}

/// The dry run of every task, once, before anything is written (and the whole
/// operation in dry-run mode). `None` when it passed and a wet run may proceed.
fn preflight(plan: &Plan, state: &SyncState) -> Option<StepOutcome> {
    let tasks: Vec<&SyncTask> = plan.tasks.iter().filter(|t| !t.is_noop()).collect();
    let todo: Vec<Action> = tasks
        .iter()
        .filter(|t| state.get(&t.id).dry_run.is_none())
        .map(|t| action(t, ActionKind::DryRun))
        .collect();
    if !todo.is_empty() {
        return Some(StepOutcome::Run(todo));
    }
    let failures: Vec<String> = tasks
        .iter()
        .filter_map(|t| match state.get(&t.id).dry_run {
            Some(WriteOutcome::Failed(message)) => Some(message),
            _ => None,
        })
        .collect();
    if !failures.is_empty() {
        return Some(StepOutcome::Failed(with_reasons(
            "one or more objects failed to apply (dry run)",
            &failures,
        )));
    }
    plan.dry_run
        .then(|| StepOutcome::Succeeded("successfully synced (dry run)".to_owned()))
}

/// Starts pending tasks of one wave: first delete old copies of hooks, then prune, then
/// apply.
fn run_tasks(tasks: &[&SyncTask], state: &SyncState) -> StepOutcome {
    let deletions: Vec<Action> = tasks
        .iter()
        .filter(|t| t.needs_delete_before_creation() && !state.get(&t.id).old_hook_deleted)
        .map(|t| action(t, ActionKind::DeleteOldHook))
        .collect();
    if !deletions.is_empty() {
        return StepOutcome::Run(deletions);
    }
    let prunes = tasks
        .iter()
        .filter(|t| t.is_prune())
        .map(|t| action(t, ActionKind::Prune));
    let applies = tasks
        .iter()
        .filter(|t| !t.is_prune() && !t.is_noop())
        .map(|t| action(t, ActionKind::Apply));
    StepOutcome::Run(prunes.chain(applies).collect())
}

fn failure_reason(state: &SyncState, failed: &[(&SyncTask, &str)]) -> String {
    let apply_failed = failed.iter().any(|(t, _)| {
        state
            .get(&t.id)
            .written
            .as_ref()
            .is_some_and(WriteOutcome::is_failed)
    });
    let base = if apply_failed {
        "one or more objects failed to apply"
    } else {
        "one or more synchronization tasks completed unsuccessfully"
    };
    let messages: Vec<String> = failed
        .iter()
        .map(|(_, m)| (*m).to_owned())
        .filter(|m| !m.is_empty())
        .collect();
    with_reasons(base, &messages)
}

fn with_reasons(base: &str, reasons: &[String]) -> String {
    if reasons.is_empty() {
        base.to_owned()
    } else {
        format!("{base}, reason: {}", reasons.join(","))
    }
}

/// Failure path: run the SyncFail hooks, wait for them, delete `HookFailed` hooks, fail.
fn fail(plan: &Plan, state: &SyncState, reason: &str) -> StepOutcome {
    let sync_fail: Vec<(&SyncTask, TaskStatus)> = plan
        .tasks
        .iter()
        .filter(|t| t.phase == SyncPhase::SyncFail)
        .map(|t| (t, task_status(t, &state.get(&t.id), None)))
        .collect();
    let pending = in_status(&sync_fail, &TaskStatus::Pending);
    if !pending.is_empty() {
        return run_tasks(&pending, state);
    }
    let running = in_status(&sync_fail, &TaskStatus::Running);
    if !running.is_empty() {
        return StepOutcome::Wait(waiting_message(&running));
    }
    let hook_failures: Vec<String> = sync_fail
        .iter()
        .filter_map(|(_, s)| match s {
            TaskStatus::Failed(m) => Some(m.clone()),
            _ => None,
        })
        .collect();
    let mut message = reason.to_owned();
    if sync_fail
        .iter()
        .any(|(_, s)| matches!(s, TaskStatus::Failed(_)))
    {
        let reasons: Vec<String> = hook_failures
            .into_iter()
            .filter(|m| !m.is_empty())
            .collect();
        message = format!(
            "{message}\n{}",
            with_reasons("one or more SyncFail hooks failed", &reasons)
        );
    }
    finish(
        plan,
        state,
        HookDeletePolicy::HookFailed,
        StepOutcome::Failed(message),
    )
}

fn succeed(plan: &Plan, state: &SyncState) -> StepOutcome {
    finish(
        plan,
        state,
        HookDeletePolicy::HookSucceeded,
        StepOutcome::Succeeded("successfully synced (all tasks run)".to_owned()),
    )
}

/// Deletes the hooks whose policy matches the operation's outcome, then ends with `end`.
fn finish(
    plan: &Plan,
    state: &SyncState,
    policy: HookDeletePolicy,
    end: StepOutcome,
) -> StepOutcome {
    let deletions: Vec<Action> = plan
        .tasks
        .iter()
        .filter(|t| t.hook.as_ref().is_some_and(|h| h.has_policy(policy)))
        .filter(|t| {
            let obs = state.get(&t.id);
            matches!(obs.written, Some(WriteOutcome::Ok(_))) && !obs.hook_deleted
        })
        .map(|t| action(t, ActionKind::DeleteHook))
        .collect();
    if deletions.is_empty() {
        end
    } else {
        StepOutcome::Run(deletions)
    }
}

/// Termination: delete hooks that are still running, then report termination.
fn terminate(plan: &Plan, state: &SyncState) -> StepOutcome {
    let deletions: Vec<Action> = plan
        .tasks
        .iter()
        .filter(|t| t.is_hook())
        .filter(|t| {
            let obs = state.get(&t.id);
            task_status(t, &obs, None) == TaskStatus::Running && !obs.hook_deleted
        })
        .map(|t| action(t, ActionKind::DeleteHook))
        .collect();
    if deletions.is_empty() {
        StepOutcome::Terminated("Operation terminated".to_owned())
    } else {
        StepOutcome::Run(deletions)
    }
}

/// Argo CD's running message: `waiting for healthy state of apps/Deployment/web and 2
/// more resources`, or `waiting for completion of hook batch/Job/migrate`.
fn waiting_message(running: &[&SyncTask]) -> String {
    let Some(first) = running.first() else {
        return String::new();
    };
    let (what, more) = if first.is_hook() {
        ("completion of hook", "hooks")
    } else {
        ("healthy state of", "resources")
    };
    let mut message = format!(
        "waiting for {what} {}/{}/{}",
        first.key.group, first.key.kind, first.key.name
    );
    if running.len() > 1 {
        message.push_str(&format!(" and {} more {more}", running.len() - 1));
    }
    message
}
