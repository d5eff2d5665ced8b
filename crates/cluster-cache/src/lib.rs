//! Keelson's per-cluster live-state cache (Argo CD's cluster cache): one
//! [`ClusterCache`] per target cluster discovers the API resources, runs one kube-runtime
//! watcher per resource kind (filtered by argocd-cm `resource.exclusions` /
//! `resource.inclusions`, re-discovered when CRDs change) and keeps the objects with
//! indexes by application, owner uid and namespace.
//!
//! # What is kept, and why
//!
//! * Objects tracked by an application (tracking label or `argocd.argoproj.io/tracking-id`
//!   annotation) keep the whole object — diff needs it, including `managedFields` and the
//!   last-applied annotation — as serialized JSON bytes (`Arc<[u8]>`), parsed on read.
//!   Bytes are about 3× smaller than a `serde_json::Value` tree and cheap to hand out.
//! * Untracked objects (ReplicaSets and Pods owned by a tracked Deployment, and everything
//!   else in the cluster) keep only identity (key, apiVersion, uid, resourceVersion), owner
//!   references (apiVersion, kind, name, uid, controller), the deletion timestamp and a
//!   health slice (`metadata.generation`, `spec.replicas`, `spec.paused`,
//!   `spec.restartPolicy`, `status`) as JSON bytes. This is enough for the resource tree
//!   and health of owned objects; their full content is never diffed.
//! * Keys are shared `Arc`s between the object map and the indexes; application names and
//!   apiVersions are interned.
//!
//! # Concurrency
//!
//! Each cluster has its own tasks and its own `parking_lot::RwLock` around the store:
//! one writer (the watch tasks, holding the lock per event) and many readers that copy
//! records under the lock and parse JSON outside it. Nothing is shared across clusters
//! except the metric families. Notifications go through an unbounded channel to a
//! per-cluster dispatcher task, so a slow [`ChangeSink`] never blocks a watcher.
//! Notifications are not sent during the cache's very first sync.

mod cache;
mod change;
mod config;
mod discovery;
mod error;
mod filter;
mod index;
mod metrics;
mod status;
mod store;
mod tracking;
mod watch;

pub use cache::ClusterCache;
pub use change::{AppChange, ChangeKind, ChangeSink};
pub use config::{ClusterCacheConfig, DEFAULT_TRACKING_LABEL};
pub use error::ClusterCacheError;
pub use filter::{EXCLUSIONS_KEY, FilterRule, INCLUSIONS_KEY, ResourceFilter};
pub use keelson_model::tracking::{TrackingId, TrackingMethod};
pub use metrics::CacheMetrics;
pub use status::{ClusterCacheStatus, ConnectionState};
pub use store::{LiveObject, TreeNode};
pub use tracking::app_of;
