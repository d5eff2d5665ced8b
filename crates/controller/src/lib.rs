//! Keelson's application controller: watches Applications, AppProjects and cluster /
//! repository Secrets; a refresh queue drained by status workers compares desired state
//! (repo-server) with live state (cluster cache) and writes `status`; an operation queue
//! drained by operation workers runs syncs with the sync executor and records
//! `status.operationState` and `status.history`. Pure decisions (comparison, project
//! rules, automated sync, history) live in `keelson-reconcile`; this crate does the I/O.

mod app_state;
mod apply_log;
mod clusters;
mod controller;
mod deletion;
mod destination_client;
mod error;
mod fence;
mod fleet;
mod k8s_requests;
mod manifests;
mod metrics;
mod operation;
mod refresh;
mod refresh_requests;
mod settings;
mod shared;
mod status_patch;
mod takeover;

pub use clusters::{IN_CLUSTER_NAME, IN_CLUSTER_SERVER};
pub use controller::{Controller, ControllerConfig, OPERATION_QUEUE, REFRESH_QUEUE};
pub use error::{ClusterError, ManifestError, StartError, WriteError};
pub use fence::{AppFence, OwnAll};
pub use fleet::{SHARD_BUCKETS_ANNOTATION, ShardFence};
pub use metrics::ControllerMetrics;
pub use refresh_requests::{RefreshHandle, RefreshSlot, router as refresh_router};
pub use settings::{ControllerSettings, IgnoredKey};
pub use takeover::{UnitProgress, router as units_router};
