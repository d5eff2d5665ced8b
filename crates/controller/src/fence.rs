//! Which applications this controller replica may work on. A single controller owns
//! everything ([`OwnAll`]); the sharded fleet plugs in its claims here.

use std::any::Any;

/// Decides whether this replica may reconcile or sync an app right now.
pub trait AppFence: Send + Sync {
    /// Whether this replica holds the unit of the app (destination `server`, app key).
    fn owns(&self, server: &str, app_key: &str) -> bool;

    /// Marks a sync step starting on the app's unit; the unit is not handed over while
    /// the returned guard lives. `None` when the replica does not own the app.
    fn begin_step(&self, server: &str, app_key: &str) -> Option<Box<dyn Any + Send>> {
        self.owns(server, app_key)
            .then(|| Box::new(()) as Box<dyn Any + Send>)
    }

    /// A name of the app's unit for logs (the destination server by default).
    fn unit_name(&self, server: &str, _app_key: &str) -> String {
        server.to_owned()
    }
}

/// Owns every app (one controller).
#[derive(Debug, Clone, Copy, Default)]
pub struct OwnAll;

impl AppFence for OwnAll {
    fn owns(&self, _server: &str, _app_key: &str) -> bool {
        true
    }
}
