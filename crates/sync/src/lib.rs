//! Keelson's sync engine: a pure planner and step function with Argo CD's sync
//! semantics (ARCHITECTURE.md §7), and on top of them the [`Executor`] that performs
//! the actions against a cluster (all I/O is behind [`ClusterOps`]).
//!
//! # The executor loop
//!
//! ```text
//! let plan = plan_sync(&input)?;
//! let mut state = SyncState::default();        // or SyncState::from_resource_results
//! loop {
//!     match next_actions(&plan, &state) {
//!         StepOutcome::Run(actions) => for a in actions {
//!             /* perform a.kind on plan.task(&a.task) */
//!             /* state.record_dry_run / record_written / record_hook_deleted */
//!         },
//!         StepOutcome::Wait(msg) => { /* observe health: state.record_health(..) */ }
//!         StepOutcome::Succeeded(msg) | StepOutcome::Failed(msg)
//!         | StepOutcome::Terminated(msg) => break,
//!     }
//!     /* write resource_results(&plan, &state) into status.operationState */
//! }
//! ```
//!
//! # The executor
//!
//! [`Executor::step`] runs that loop against a cluster through a [`ClusterOps`]
//! ([`KubeOps`]: kube-rs, kinds resolved with `pinned_kind` and cached). It performs
//! `Run` actions with bounded concurrency (applies and dry runs of different kinds one
//! kind after the other, like Argo CD), records results into the [`SyncState`], observes
//! health on `Wait` (GET + [`keelson_health::HealthAssessor`]; no health check →
//! Healthy), and returns `Wait` when nothing more can progress now — the caller persists
//! the state (or `resource_results`) and calls again later — or the terminal outcome.
//! A [`Fence`] is checked before every write; a refusal ends the call with
//! [`ExecutorError::Fenced`]. Apply methods: server-side apply (`Patch::Apply`, field
//! manager, force), kubectl-style client-side apply (last-applied annotation, three-way
//! JSON merge patch), replace/update (PUT with the live resourceVersion), create (POST);
//! prune is DELETE with the task's propagation; dry runs are the same calls with
//! `dryRun=All`. Messages follow kubectl: `configmap/foo created`, `deployment.apps/web
//! serverside-applied`, `... configured`, `... unchanged`, `pruned`, or the API's error.
//!
//! # Rules
//!
//! * **Tasks.** Desired non-hook objects become Sync-phase apply tasks; hooks
//!   (`argocd.argoproj.io/hook`, or `helm.sh/hook` mapped: pre-install/pre-upgrade →
//!   PreSync, post-install/post-upgrade → PostSync; `crd-install` is no hook) become one
//!   task per phase; `Skip` objects get none; PreDelete/PostDelete hooks take no part.
//!   Hooks with only `generateName` are named `<generateName><sync_id>-<phase>`. Live
//!   objects that require pruning become prune tasks (hooks are never pruned): skipped
//!   with `ignored (requires pruning)` when the request does not prune, with
//!   `ignored (no prune)` under `Prune=false`.
//! * **Hooks are skipped** with the `apply` strategy and in a selective sync (Argo CD).
//! * **Order.** Phase (PreSync, Sync, PostSync, SyncFail), then wave
//!   (`argocd.argoproj.io/sync-wave`, else `helm.sh/hook-weight`, else 0), then
//!   [`KIND_ORDER`], then name. Prune waves are mirrored (highest first); `PruneLast`
//!   moves prune tasks one wave after the last Sync-phase wave. Then a Namespace (or a
//!   CRD) that sorts after a task needing it is moved just before that task and takes its
//!   phase and wave — i.e. to the earliest phase/wave of its dependents.
//! * **CreateNamespace=true** adds a PreSync task creating the destination namespace
//!   unless it is desired or already live.
//! * **ApplyOutOfSyncOnly=true** drops apply tasks of unmodified live resources (never
//!   hooks).
//! * **Apply method.** `Replace=true` → Replace (Update for an existing Namespace/CRD,
//!   Create when absent); otherwise server-side apply with the field manager unless
//!   `ServerSideApply=false` (resource annotation over app option over the input's
//!   default, which is server-side).
//! * **Step.** Before anything is written every task is dry-run once (a failure fails
//!   the operation; in dry-run mode that is all). Then the lowest pending phase/wave runs:
//!   old copies of `BeforeHookCreation` hooks are deleted first, then prunes, then
//!   applies. A wave starts only when every earlier task succeeded: applied and Healthy
//!   (hooks: Healthy = succeeded, Degraded/Unknown = failed). Non-hook resources of the
//!   final wave need not become healthy (Argo CD). A failure runs the SyncFail hooks, waits
//!   for them, deletes `HookFailed` hooks, then fails; success deletes `HookSucceeded`
//!   hooks, then succeeds. Termination deletes running hooks. `Prune=confirm` waits for
//!   [`SyncState::prune_confirmed`].

mod error;
mod executor;
mod hooks;
mod kind_order;
mod options;
mod plan;
mod results;
mod retry;
mod state;
mod step;
mod task;
mod waves;

pub use error::SyncPlanError;
pub use executor::{
    ClusterOps, DEFAULT_MAX_ROUNDS, DEFAULT_PARALLELISM, DEFAULT_WRITE_TIMEOUT, Executor,
    ExecutorConfig, ExecutorError, Fence, KubeOps, LAST_APPLIED_ANNOTATION, NoFence,
    RESOURCE_NOT_FOUND, is_empty_patch, last_applied, reference, three_way_merge_patch,
    with_last_applied, with_written_version,
};
pub use hooks::{HookRole, HookSpec, helm_hook_type, hook_name, hook_role, hook_type_of, phase_of};
pub use kind_order::{KIND_ORDER, kind_rank};
pub use options::{
    DEFAULT_FIELD_MANAGER, Permission, PropagationPolicy, ResourceSyncOptions, SyncOptions,
    deletion_permission,
};
pub use plan::{Plan, PlanInput, ResourceInput, Strategy, SyncRequest, plan_sync};
pub use results::resource_results;
pub use retry::{
    DEFAULT_RETRY_DURATION, DEFAULT_RETRY_FACTOR, DEFAULT_RETRY_MAX_DURATION, SelfHealBackoff,
    parse_duration, retry_delay, self_heal_delay,
};
pub use state::{SyncState, TaskObservation, WriteOutcome};
pub use step::{Action, ActionKind, StepOutcome, next_actions};
pub use task::{ApplyMethod, HookTask, SyncTask, TaskId, TaskOperation};
pub use waves::wave_of;
