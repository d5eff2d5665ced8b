//! Consistent paginated lists: the items a list has not yet returned, kept so that its
//! continue pages show the store as it was when the list began — as etcd's MVCC gives the
//! real API server. Without this, a change to an item on an earlier page made while later
//! pages were read is lost: the list never shows it and the watch that follows starts
//! after it.

use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Lists in progress kept at most, per cluster; the oldest is dropped first (its next
/// page gets 410, as a compacted continue token does on a real server).
const MAX_SNAPSHOTS: usize = 256;
/// How long a list in progress is kept: the real API server's default etcd compaction
/// interval.
const SNAPSHOT_TTL: Duration = Duration::from_secs(300);

/// The rest of one list.
#[derive(Debug)]
struct Snapshot {
    rv: u64,
    items: Vec<Arc<Value>>,
    taken: Instant,
}

/// A page cut from a snapshot.
#[derive(Debug)]
pub struct Page {
    /// The resourceVersion the list was taken at.
    pub rv: u64,
    /// The items of this page.
    pub items: Vec<Arc<Value>>,
    /// Where the next page starts, when there is one.
    pub next: Option<usize>,
    /// Items after this page.
    pub remaining: usize,
}

/// The lists in progress on one cluster.
#[derive(Debug, Default)]
pub struct ListSnapshots {
    next_id: u64,
    snapshots: HashMap<u64, Snapshot>,
    order: VecDeque<u64>,
}

impl ListSnapshots {
    /// Keeps the rest of a list taken at `rv` and returns its id.
    pub fn keep(&mut self, rv: u64, items: Vec<Arc<Value>>) -> u64 {
        self.expire(Instant::now());
        while self.order.len() >= MAX_SNAPSHOTS {
            if let Some(old) = self.order.pop_front() {
                self.snapshots.remove(&old);
            }
        }
        self.next_id += 1;
        let id = self.next_id;
        self.snapshots.insert(
            id,
            Snapshot {
                rv,
                items,
                taken: Instant::now(),
            },
        );
        self.order.push_back(id);
        id
    }

    /// The page of `limit` items (0: all) starting at `pos` of list `id`, or `None` when
    /// the list is unknown or expired. The list is forgotten after its last page.
    pub fn page(&mut self, id: u64, pos: usize, limit: usize) -> Option<Page> {
        self.expire(Instant::now());
        let snapshot = self.snapshots.get(&id)?;
        let start = pos.min(snapshot.items.len());
        let end = if limit == 0 {
            snapshot.items.len()
        } else {
            start.saturating_add(limit).min(snapshot.items.len())
        };
        let page = Page {
            rv: snapshot.rv,
            items: snapshot.items[start..end].to_vec(),
            next: (end < snapshot.items.len()).then_some(end),
            remaining: snapshot.items.len() - end,
        };
        if page.next.is_none() {
            self.snapshots.remove(&id);
            self.order.retain(|k| *k != id);
        }
        Some(page)
    }

    fn expire(&mut self, now: Instant) {
        while let Some(id) = self.order.front().copied() {
            let expired = self
                .snapshots
                .get(&id)
                .is_none_or(|s| now.duration_since(s.taken) > SNAPSHOT_TTL);
            if !expired {
                break;
            }
            self.order.pop_front();
            self.snapshots.remove(&id);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn items(n: usize) -> Vec<Arc<Value>> {
        (0..n).map(|i| Arc::new(json!({ "i": i }))).collect()
    }

    #[test]
    fn pages_walk_the_snapshot_and_forget_it_at_the_end() {
        let mut lists = ListSnapshots::default();
        let id = lists.keep(7, items(5));
        let first = lists.page(id, 0, 2).unwrap();
        assert_eq!(
            (first.rv, first.items.len(), first.next, first.remaining),
            (7, 2, Some(2), 3)
        );
        let second = lists.page(id, 2, 2).unwrap();
        assert_eq!(second.items[0]["i"], 2);
        let last = lists.page(id, 4, 2).unwrap();
        assert_eq!((last.items.len(), last.next, last.remaining), (1, None, 0));
        assert!(lists.page(id, 4, 2).is_none());
    }

    #[test]
    fn the_oldest_list_is_dropped_past_the_cap() {
        let mut lists = ListSnapshots::default();
        let first = lists.keep(1, items(3));
        for _ in 0..MAX_SNAPSHOTS {
            lists.keep(1, items(3));
        }
        assert!(lists.page(first, 0, 1).is_none());
    }
}
