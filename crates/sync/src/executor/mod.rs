//! The sync executor: performs the actions of the pure step function against a
//! cluster (see the crate docs, "The executor").

mod client_side;
mod error;
mod kube_ops;
mod observe;
mod ops;
mod run;
mod written_version;

pub use client_side::{
    LAST_APPLIED_ANNOTATION, is_empty_patch, last_applied, three_way_merge_patch, with_last_applied,
};
pub use error::ExecutorError;
pub use kube_ops::{KubeOps, RESOURCE_NOT_FOUND, reference};
pub use ops::{ClusterOps, Fence, NoFence};
pub use run::{
    DEFAULT_MAX_ROUNDS, DEFAULT_PARALLELISM, DEFAULT_WRITE_TIMEOUT, Executor, ExecutorConfig,
};
pub use written_version::with_written_version;
