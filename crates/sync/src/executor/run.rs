//! `Executor`: drives the pure step function against a cluster — performs the actions
//! it asks for (bounded concurrency, results recorded into the state), observes health
//! when it waits, and stops when nothing more can progress now.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use keelson_health::HealthAssessor;
use tracing::Instrument;

use super::error::ExecutorError;
use super::observe::observe_health;
use super::ops::{ClusterOps, Fence};
use crate::options::PropagationPolicy;
use crate::plan::Plan;
use crate::state::{SyncState, WriteOutcome};
use crate::step::{Action, ActionKind, StepOutcome, next_actions};
use crate::task::{SyncTask, TaskOperation};

/// Default number of concurrent writes (Argo CD's `--kubectl-parallelism-limit`).
pub const DEFAULT_PARALLELISM: usize = 20;
/// Default bound of step-function rounds per [`Executor::step`] call.
pub const DEFAULT_MAX_ROUNDS: usize = 100;
/// Default timeout of one cluster call.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// Executor settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorConfig {
    /// Concurrent writes (and health reads) at most.
    pub parallelism: usize,
    /// Rounds of the step function per [`Executor::step`] call at most.
    pub max_rounds: usize,
    /// Timeout of one write or read.
    pub write_timeout: Duration,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig {
            parallelism: DEFAULT_PARALLELISM,
            max_rounds: DEFAULT_MAX_ROUNDS,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
        }
    }
}

/// Performs sync plans against one cluster through `O`.
pub struct Executor<O: ClusterOps> {
    ops: O,
    health: Arc<HealthAssessor>,
    config: ExecutorConfig,
}

impl<O: ClusterOps> std::fmt::Debug for Executor<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What performing one action produced, applied to the state afterwards.
enum Recorded {
    DryRun(WriteOutcome),
    Written(WriteOutcome),
    HookDeleted { before_creation: bool },
    Nothing,
}

impl<O: ClusterOps> Executor<O> {
    /// An executor writing through `ops` and assessing health with `health`.
    pub fn new(ops: O, health: Arc<HealthAssessor>, config: ExecutorConfig) -> Self {
        Executor {
            ops,
            health,
            config,
        }
    }

    /// The cluster operations.
    pub fn ops(&self) -> &O {
        &self.ops
    }

    /// The settings.
    pub fn config(&self) -> &ExecutorConfig {
        &self.config
    }

    /// Advances the operation as far as it can go now: performs the actions the step
    /// function asks for, observes health when it waits, and steps again. Returns
    /// `Wait` when nothing more can progress now (persist `state` and call again
    /// later) or the terminal outcome. Never returns `Run`. Results are recorded into
    /// `state` as they come, also when an error ends the call.
    pub async fn step(
        &self,
        plan: &Plan,
        state: &mut SyncState,
        fence: &dyn Fence,
    ) -> Result<StepOutcome, ExecutorError> {
        let span = tracing::info_span!(
            "sync_step",
            sync_id = %plan.sync_id,
            tasks = plan.tasks.len(),
            actions = tracing::field::Empty,
        );
        async {
            let mut performed = 0usize;
            let outcome = self.rounds(plan, state, fence, &mut performed).await;
            tracing::Span::current().record("actions", performed);
            outcome
        }
        .instrument(span)
        .await
    }

    async fn rounds(
        &self,
        plan: &Plan,
        state: &mut SyncState,
        fence: &dyn Fence,
        performed: &mut usize,
    ) -> Result<StepOutcome, ExecutorError> {
        for _ in 0..self.config.max_rounds.max(1) {
            match next_actions(plan, state) {
                StepOutcome::Run(actions) => {
                    let before = state.clone();
                    *performed += actions.len();
                    self.perform(plan, state, fence, &actions).await?;
                    if *state == before {
                        // Nothing recorded (e.g. old hooks still being deleted).
                        return Ok(StepOutcome::Wait(waiting_for(plan, &actions)));
                    }
                }
                StepOutcome::Wait(message) => {
                    let changed = observe_health(
                        &self.ops,
                        &self.health,
                        plan,
                        state,
                        self.config.parallelism,
                        self.config.write_timeout,
                    )
                    .await?;
                    if !changed {
                        return Ok(StepOutcome::Wait(message));
                    }
                }
                terminal => return Ok(terminal),
            }
        }
        Ok(match next_actions(plan, state) {
            StepOutcome::Run(_) => StepOutcome::Wait("more actions pending".to_owned()),
            other => other,
        })
    }

    /// Performs one batch. Actions run concurrently, except that applies and dry runs
    /// of different kinds run one kind after the other in plan order (Namespaces and
    /// CRDs before the objects that need them), like Argo CD.
    async fn perform(
        &self,
        plan: &Plan,
        state: &mut SyncState,
        fence: &dyn Fence,
        actions: &[Action],
    ) -> Result<(), ExecutorError> {
        let mut tasks = Vec::with_capacity(actions.len());
        for action in actions {
            let task = plan
                .task(&action.task)
                .ok_or_else(|| ExecutorError::UnknownTask(action.task.to_string()))?;
            tasks.push((action.kind, task));
        }
        for group in kind_groups(&tasks) {
            fence.check().map_err(ExecutorError::Fenced)?;
            let results: Vec<(usize, Result<Recorded, ExecutorError>)> =
                futures::stream::iter(group.iter().copied())
                    .map(|i| {
                        let (kind, task) = tasks[i];
                        async move { (i, self.perform_one(plan, kind, task, fence).await) }
                    })
                    .buffer_unordered(self.config.parallelism.max(1))
                    .collect()
                    .await;
            let mut first_error = None;
            for (i, result) in results {
                let id = &tasks[i].1.id;
                match result {
                    Ok(Recorded::DryRun(outcome)) => state.record_dry_run(id, outcome),
                    Ok(Recorded::Written(outcome)) => state.record_written(id, outcome),
                    Ok(Recorded::HookDeleted { before_creation }) => {
                        state.record_hook_deleted(id, before_creation);
                    }
                    Ok(Recorded::Nothing) => {}
                    Err(e) => first_error = first_error.or(Some(e)),
                }
            }
            if let Some(e) = first_error {
                return Err(e);
            }
        }
        Ok(())
    }

    async fn perform_one(
        &self,
        plan: &Plan,
        kind: ActionKind,
        task: &SyncTask,
        fence: &dyn Fence,
    ) -> Result<Recorded, ExecutorError> {
        fence.check().map_err(ExecutorError::Fenced)?;
        let timeout = self.config.write_timeout;
        let timed = |outcome: Option<WriteOutcome>| {
            outcome.unwrap_or_else(|| {
                WriteOutcome::Failed(format!("timed out after {timeout:?} writing {}", task.key))
            })
        };
        Ok(match kind {
            ActionKind::DryRun => {
                let outcome = timed(self.timed(self.ops.dry_run(task)).await);
                Recorded::DryRun(namespace_created_by_sync(plan, task, outcome))
            }
            ActionKind::Apply => Recorded::Written(timed(self.timed(self.ops.apply(task)).await)),
            ActionKind::Prune => {
                let propagation = match task.operation {
                    TaskOperation::Prune { propagation } => propagation,
                    _ => PropagationPolicy::Foreground,
                };
                let outcome = timed(self.timed(self.ops.delete(task, propagation)).await);
                Recorded::Written(match outcome {
                    WriteOutcome::Ok(_) => WriteOutcome::Ok("pruned".to_owned()),
                    failure => failure,
                })
            }
            ActionKind::DeleteOldHook => self.delete_old_hook(task).await?,
            ActionKind::DeleteHook => {
                let outcome = self
                    .timed(self.ops.delete(task, PropagationPolicy::Background))
                    .await;
                match outcome {
                    Some(WriteOutcome::Ok(_)) => Recorded::HookDeleted {
                        before_creation: false,
                    },
                    Some(WriteOutcome::Failed(message)) => {
                        tracing::warn!(task = %task.id, %message, "deleting hook failed");
                        Recorded::Nothing
                    }
                    None => Recorded::Nothing,
                }
            }
        })
    }

    /// Deletes the copy of a hook left by an earlier sync; recorded only once it is
    /// gone, otherwise the next call asks again.
    async fn delete_old_hook(&self, task: &SyncTask) -> Result<Recorded, ExecutorError> {
        if let Some(WriteOutcome::Failed(message)) = self
            .timed(self.ops.delete(task, PropagationPolicy::Background))
            .await
        {
            tracing::warn!(task = %task.id, %message, "deleting old hook failed");
            return Ok(Recorded::Nothing);
        }
        let live =
            self.timed(self.ops.get(task))
                .await
                .ok_or_else(|| ExecutorError::GetTimeout {
                    resource: task.key.to_string(),
                    timeout: self.config.write_timeout,
                })??;
        Ok(match live {
            None => Recorded::HookDeleted {
                before_creation: true,
            },
            Some(_) => Recorded::Nothing,
        })
    }

    async fn timed<T>(&self, future: impl std::future::Future<Output = T>) -> Option<T> {
        tokio::time::timeout(self.config.write_timeout, future)
            .await
            .ok()
    }

    /// Steps until the operation ends or `deadline` passes, sleeping `poll` between
    /// calls that wait; `on_progress` sees the state after every call. At the deadline
    /// the last `Wait` is returned.
    pub async fn run_to_completion(
        &self,
        plan: &Plan,
        state: &mut SyncState,
        fence: &dyn Fence,
        poll: Duration,
        deadline: Duration,
        mut on_progress: impl FnMut(&SyncState),
    ) -> Result<StepOutcome, ExecutorError> {
        let start = Instant::now();
        loop {
            let outcome = self.step(plan, state, fence).await?;
            on_progress(state);
            match outcome {
                StepOutcome::Wait(message) => {
                    if start.elapsed() + poll > deadline {
                        return Ok(StepOutcome::Wait(message));
                    }
                    tokio::time::sleep(poll).await;
                }
                other => return Ok(other),
            }
        }
    }
}

/// Consecutive actions grouped so that applies and dry runs of one kind run together
/// and kinds follow each other in plan order; other actions (prunes, hook deletions,
/// which the step function puts first) join the current group.
fn kind_groups(tasks: &[(ActionKind, &SyncTask)]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut last_kind: Option<(&str, &str)> = None;
    for (i, (action, task)) in tasks.iter().enumerate() {
        let ordered = matches!(action, ActionKind::Apply | ActionKind::DryRun) && !task.is_prune();
        let kind = (task.key.group.as_str(), task.key.kind.as_str());
        match groups.last_mut() {
            Some(group) if !ordered || last_kind == Some(kind) => group.push(i),
            _ => groups.push(vec![i]),
        }
        if ordered {
            last_kind = Some(kind);
        }
    }
    groups
}

/// A dry run that failed only because the object's namespace does not exist yet passes
/// when this plan creates that namespace.
fn namespace_created_by_sync(plan: &Plan, task: &SyncTask, outcome: WriteOutcome) -> WriteOutcome {
    let namespace = &task.key.namespace;
    let WriteOutcome::Failed(message) = &outcome else {
        return outcome;
    };
    let created = plan.tasks.iter().any(|t| {
        t.key.group.is_empty()
            && t.key.kind == "Namespace"
            && &t.key.name == namespace
            && matches!(t.operation, TaskOperation::Apply { .. })
    });
    if !namespace.is_empty()
        && created
        && *message == format!("namespaces \"{namespace}\" not found")
    {
        WriteOutcome::Ok(format!(
            "{} skipped dry run (namespace {namespace} is created by this sync)",
            super::kube_ops::reference(task)
        ))
    } else {
        outcome
    }
}

fn waiting_for(plan: &Plan, actions: &[Action]) -> String {
    let first = actions.first().and_then(|a| plan.task(&a.task));
    match first {
        Some(task) => format!(
            "waiting for deletion of {}/{}/{}",
            task.key.group, task.key.kind, task.key.name
        ),
        None => "waiting".to_owned(),
    }
}
