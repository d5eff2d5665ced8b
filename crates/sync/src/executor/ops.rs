//! The seams of the executor: [`ClusterOps`] (every read and write against the
//! destination cluster) and [`Fence`] (may this executor still write?).

use std::future::Future;

use serde_json::Value;

use super::error::ExecutorError;
use crate::options::PropagationPolicy;
use crate::state::WriteOutcome;
use crate::task::SyncTask;

/// Reads and writes of one destination cluster, per task. Writes never fail with an
/// error: an API refusal is a [`WriteOutcome::Failed`] carrying the API's message.
pub trait ClusterOps: Send + Sync {
    /// Validates the task against the API server without changing anything
    /// (server-side dry run, `dryRun=All`): the apply or the delete it would do.
    fn dry_run(&self, task: &SyncTask) -> impl Future<Output = WriteOutcome> + Send;

    /// Writes the task's desired object with its apply method.
    fn apply(&self, task: &SyncTask) -> impl Future<Output = WriteOutcome> + Send;

    /// Deletes the task's object with `propagation`; an object already gone is a
    /// success.
    fn delete(
        &self,
        task: &SyncTask,
        propagation: PropagationPolicy,
    ) -> impl Future<Output = WriteOutcome> + Send;

    /// The live object of the task, `None` when it does not exist (or its kind is not
    /// served).
    fn get(
        &self,
        task: &SyncTask,
    ) -> impl Future<Output = Result<Option<Value>, ExecutorError>> + Send;
}

/// Checked before every write: a controller that lost its right to write to a cluster
/// (a shard moved to another replica) must stop at once.
pub trait Fence: Send + Sync {
    /// `Ok` when writing is still allowed, else the reason it is not.
    fn check(&self) -> Result<(), String>;
}

/// A fence that always allows writing (single-replica controllers, tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFence;

impl Fence for NoFence {
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}
