//! `ExecutorError`: why a step of the sync executor stopped before reaching an outcome.
//! Failed writes are not errors — they are recorded in the state as failed results.

use std::time::Duration;

/// Errors of [`crate::Executor::step`] and the cluster operations.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// The fence refused: this executor may no longer write (e.g. its shard moved).
    #[error("fenced: {0}")]
    Fenced(String),
    /// A group/version/kind could not be resolved to an API resource.
    #[error("discovering the api resource of {kind}")]
    Discovery {
        /// `group/version/Kind` being resolved.
        kind: String,
        /// The API error.
        #[source]
        source: Box<kube::Error>,
    },
    /// Reading a live object failed.
    #[error("reading {resource}")]
    Get {
        /// `kind/namespace/name` of the object.
        resource: String,
        /// The API error.
        #[source]
        source: Box<kube::Error>,
    },
    /// A read did not answer in time.
    #[error("reading {resource} timed out after {timeout:?}")]
    GetTimeout {
        /// `kind/namespace/name` of the object.
        resource: String,
        /// The configured timeout.
        timeout: Duration,
    },
    /// The step function named a task that is not in the plan (the state belongs to
    /// another plan).
    #[error("action names task {0} which is not in the plan")]
    UnknownTask(String),
}
