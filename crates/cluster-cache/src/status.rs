//! Health of one cluster cache: connection state, sync state, counts and timestamps.

use std::time::Instant;

use parking_lot::Mutex;

/// Connection state of a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    /// Not yet contacted.
    Pending,
    /// The last request succeeded.
    Connected,
    /// The last request failed; the cache is stale.
    Failed(String),
}

/// A snapshot of a cluster cache's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterCacheStatus {
    /// Connection state.
    pub connection: ConnectionState,
    /// Whether every watched resource has completed its initial list.
    pub synced: bool,
    /// Number of watched API resources.
    pub api_resources: usize,
    /// Number of cached objects.
    pub objects: usize,
    /// When the last watch event arrived.
    pub last_event: Option<Instant>,
    /// When the cache last became synced.
    pub last_sync: Option<Instant>,
    /// The server's `gitVersion`, once known.
    pub server_version: Option<String>,
}

#[derive(Debug)]
struct Inner {
    connection: ConnectionState,
    api_resources: usize,
    pending: usize,
    last_event: Option<Instant>,
    last_sync: Option<Instant>,
    server_version: Option<String>,
}

/// The mutable health record, updated by the cache's tasks.
#[derive(Debug)]
pub(crate) struct StatusCell(Mutex<Inner>);

impl Default for StatusCell {
    fn default() -> Self {
        StatusCell(Mutex::new(Inner {
            connection: ConnectionState::Pending,
            api_resources: 0,
            pending: usize::MAX,
            last_event: None,
            last_sync: None,
            server_version: None,
        }))
    }
}

impl StatusCell {
    pub fn connected(&self) {
        let mut s = self.0.lock();
        if s.connection != ConnectionState::Connected {
            s.connection = ConnectionState::Connected;
        }
    }

    pub fn failed(&self, msg: String) {
        self.0.lock().connection = ConnectionState::Failed(msg);
    }

    pub fn event(&self) {
        self.0.lock().last_event = Some(Instant::now());
    }

    pub fn server_version(&self, v: String) {
        self.0.lock().server_version = Some(v);
    }

    /// Records the watched resources, `added` of them new; while the cache has never
    /// synced, new resources must list before it counts as synced. True when synced.
    pub fn resources(&self, total: usize, added: usize, ever_synced: bool) -> bool {
        let mut s = self.0.lock();
        s.api_resources = total;
        if !ever_synced {
            s.pending = if s.pending == usize::MAX {
                added
            } else {
                s.pending + added
            };
        }
        if s.pending == 0 && s.last_sync.is_none() {
            s.last_sync = Some(Instant::now());
        }
        s.pending == 0
    }

    /// One resource finished its initial list; true when the whole cache is now synced.
    pub fn resource_synced(&self) -> bool {
        let mut s = self.0.lock();
        if s.pending == 0 || s.pending == usize::MAX {
            return s.pending == 0;
        }
        s.pending -= 1;
        if s.pending == 0 {
            s.last_sync = Some(Instant::now());
        }
        s.pending == 0
    }

    pub fn snapshot(&self, objects: usize) -> ClusterCacheStatus {
        let s = self.0.lock();
        ClusterCacheStatus {
            connection: s.connection.clone(),
            synced: s.pending == 0,
            api_resources: s.api_resources,
            objects,
            last_event: s.last_event,
            last_sync: s.last_sync,
            server_version: s.server_version.clone(),
        }
    }
}
