//! Change notifications to the owner of the cache (the controller), delivered from a
//! per-cluster dispatcher task so a slow sink never blocks a watcher.

use std::sync::Arc;

use keelson_model::ResourceKey;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// The object appeared.
    Added,
    /// The object changed.
    Modified,
    /// The object went away.
    Deleted,
}

/// A change to an object that belongs to an application (directly, or through its owner
/// chain, in which case `app` is the root's application).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppChange {
    /// Cluster name.
    pub cluster: Arc<str>,
    /// Application instance name.
    pub app: Arc<str>,
    /// The changed object.
    pub key: ResourceKey,
    /// What happened.
    pub kind: ChangeKind,
}

/// Receives application changes. Called from one task per cluster, in event order.
pub trait ChangeSink: Send + Sync {
    /// One change.
    fn on_change(&self, change: AppChange);
}
