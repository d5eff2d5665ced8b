//! Helpers shared by the cluster-cache tests: a change sink that records, and a bounded
//! wait for a condition.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use keelson_cluster_cache::{AppChange, ChangeKind, ChangeSink};
use parking_lot::Mutex;

/// Records every change it is told of.
#[derive(Default)]
pub struct Recorder(Mutex<Vec<AppChange>>);

impl ChangeSink for Recorder {
    fn on_change(&self, change: AppChange) {
        self.0.lock().push(change);
    }
}

impl Recorder {
    fn seen(&self, matches: impl Fn(&AppChange) -> bool) -> bool {
        self.0.lock().iter().any(matches)
    }

    /// Whether a change of `kind` to object `name` of app `app` was recorded.
    pub fn has_app(&self, app: &str, name: &str, kind: ChangeKind) -> bool {
        self.seen(|c| &*c.app == app && c.key.name == name && c.kind == kind)
    }

    /// Whether a change of `kind` to object `name` on cluster `cluster` was recorded.
    pub fn has_cluster(&self, cluster: &str, name: &str, kind: ChangeKind) -> bool {
        self.seen(|c| &*c.cluster == cluster && c.key.name == name && c.kind == kind)
    }
}

/// Polls `f` every 50 ms until it holds; panics after `limit`.
pub async fn until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out after {limit:?} waiting for {what}");
}
