//! The apply log: one JSON line per write to a destination cluster — replica, shard
//! unit, app, verb, resource, wall-clock start/end and the resourceVersion the write
//! left on the server (which orders writes as the cluster applied them) — appended unbuffered so a killed
//! process loses nothing. The fleet's safety checker reads it to prove that no unit was
//! ever written by two replicas in overlapping intervals. Off unless configured.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde_json::json;

/// An open apply log.
#[derive(Debug)]
pub struct ApplyLog {
    file: Mutex<File>,
    replica: String,
}

/// One write to record.
#[derive(Debug, Clone, Copy)]
pub struct LoggedWrite<'a> {
    /// Shard unit of the app.
    pub unit: &'a str,
    /// App key.
    pub app: &'a str,
    /// Verb.
    pub verb: &'a str,
    /// `kind/namespace/name`.
    pub resource: &'a str,
    /// Start, nanoseconds since the Unix epoch.
    pub start_ns: u128,
    /// End, nanoseconds since the Unix epoch.
    pub end_ns: u128,
    /// resourceVersion of the written object, when the server returned it.
    pub resource_version: Option<u64>,
}

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

impl ApplyLog {
    /// Opens (appends to) the log at `path`.
    pub fn open(path: &Path, replica: &str) -> std::io::Result<ApplyLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(ApplyLog {
            file: Mutex::new(file),
            replica: replica.to_owned(),
        })
    }

    /// Appends one write.
    pub fn record(&self, w: &LoggedWrite<'_>) {
        let line = json!({
            "replica": self.replica,
            "unit": w.unit,
            "app": w.app,
            "verb": w.verb,
            "resource": w.resource,
            "start_ns": w.start_ns.to_string(),
            "end_ns": w.end_ns.to_string(),
            "rv": w.resource_version,
        });
        let mut text = line.to_string();
        text.push('\n');
        if let Err(e) = self.file.lock().write_all(text.as_bytes()) {
            tracing::warn!(error = %e, "writing the apply log failed");
        }
    }
}
