//! A unit's takeover progress as a replica reports it (`GET /api/v1/units` on the
//! controller's telemetry address): the wire shape shared by the controller that tracks
//! it and the tools that read it.

use serde::{Deserialize, Serialize};

/// One gained unit's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitProgress {
    /// The unit (`server` or `server#i/k`).
    pub unit: String,
    /// When the replica claimed it, Unix milliseconds.
    pub gained_unix_ms: u64,
    /// Apps of the unit when it was claimed.
    pub apps: usize,
    /// Of those, apps not compared by the replica yet.
    pub left: usize,
    /// When the last of them was compared, Unix milliseconds.
    pub reconciled_unix_ms: Option<u64>,
}
