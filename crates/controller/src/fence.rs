//! Which applications this controller replica may work on. A single controller owns
//! everything ([`OwnAll`]); the sharded fleet plugs in its claims here.

/// Decides whether this replica may reconcile or sync an app right now.
pub trait AppFence: Send + Sync {
    /// Whether this replica holds the unit of the app (destination `server`, app key).
    fn owns(&self, server: &str, app_key: &str) -> bool;
}

/// Owns every app (one controller).
#[derive(Debug, Clone, Copy, Default)]
pub struct OwnAll;

impl AppFence for OwnAll {
    fn owns(&self, _server: &str, _app_key: &str) -> bool {
        true
    }
}
