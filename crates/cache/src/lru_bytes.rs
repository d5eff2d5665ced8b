//! The level-1 store: an LRU map bounded by the total bytes of its keys and values, with
//! a per-entry age limit. Pure data structure: callers pass the current time in.

use std::time::{Duration, Instant};

use bytes::Bytes;
use lru::LruCache;

/// One stored value and when it was stored.
#[derive(Debug)]
struct Entry {
    value: Bytes,
    stored_at: Instant,
}

/// What [`LruBytes::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inserted {
    /// Stored; `evicted` least-recently-used entries were dropped to make room.
    Stored {
        /// How many entries were evicted.
        evicted: usize,
    },
    /// Not stored: the entry is bigger than an eighth of the budget.
    TooLarge,
}

/// An LRU map whose bound is the sum of `key.len() + value.len()` over its entries.
#[derive(Debug)]
pub(crate) struct LruBytes {
    map: LruCache<String, Entry>,
    max_bytes: usize,
    bytes: usize,
    ttl: Duration,
}

impl LruBytes {
    /// An empty map holding at most `max_bytes`; entries older than `ttl` are misses.
    pub(crate) fn new(max_bytes: usize, ttl: Duration) -> LruBytes {
        LruBytes {
            map: LruCache::unbounded(),
            max_bytes,
            bytes: 0,
            ttl,
        }
    }

    /// The largest entry (key + value bytes) that is kept: an eighth of the budget.
    pub(crate) fn max_entry_bytes(&self) -> usize {
        self.max_bytes / 8
    }

    /// The value under `key`, marking it most recently used; expired entries are removed.
    pub(crate) fn get(&mut self, key: &str, now: Instant) -> Option<Bytes> {
        let expired = {
            let entry = self.map.get(key)?;
            now.saturating_duration_since(entry.stored_at) >= self.ttl
        };
        if expired {
            self.remove(key);
            return None;
        }
        self.map.peek(key).map(|entry| entry.value.clone())
    }

    /// Stores `value` under `key`, evicting least-recently-used entries until the budget
    /// holds. An entry over [`Self::max_entry_bytes`] is not stored, and any older value
    /// under the same key is removed so that a stale value cannot be served.
    pub(crate) fn insert(&mut self, key: &str, value: Bytes, now: Instant) -> Inserted {
        let size = entry_size(key, &value);
        if size > self.max_entry_bytes() {
            self.remove(key);
            return Inserted::TooLarge;
        }
        let entry = Entry {
            value,
            stored_at: now,
        };
        if let Some((old_key, old)) = self.map.push(key.to_string(), entry) {
            // `push` hands back the replaced entry (same key) or an evicted one; this map is
            // unbounded in count, so only a replacement happens here.
            self.bytes = self.bytes.saturating_sub(entry_size(&old_key, &old.value));
        }
        self.bytes += size;
        let mut evicted = 0;
        while self.bytes > self.max_bytes {
            match self.map.pop_lru() {
                Some((k, old)) => {
                    self.bytes = self.bytes.saturating_sub(entry_size(&k, &old.value));
                    evicted += 1;
                }
                None => break,
            }
        }
        Inserted::Stored { evicted }
    }

    /// Removes `key`; true if it was present.
    pub(crate) fn remove(&mut self, key: &str) -> bool {
        match self.map.pop_entry(key) {
            Some((k, old)) => {
                self.bytes = self.bytes.saturating_sub(entry_size(&k, &old.value));
                true
            }
            None => false,
        }
    }

    /// Bytes of keys and values held.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Entries held.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

fn entry_size(key: &str, value: &Bytes) -> usize {
    key.len() + value.len()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn value(n: usize) -> Bytes {
        Bytes::from(vec![b'x'; n])
    }

    #[test]
    fn evicts_least_recently_used_to_stay_in_budget() {
        let now = Instant::now();
        // Budget 800 → entries up to 100 bytes; each entry is 2 + 98 = 100 bytes.
        let mut lru = LruBytes::new(800, HOUR);
        for i in 0..8 {
            let key = format!("k{i}");
            assert_eq!(
                lru.insert(&key, value(98), now),
                Inserted::Stored { evicted: 0 }
            );
        }
        assert_eq!(lru.bytes(), 800);
        assert_eq!(lru.len(), 8);
        // Touch k0 so that k1 becomes the least recently used.
        assert!(lru.get("k0", now).is_some());
        assert_eq!(
            lru.insert("k8", value(98), now),
            Inserted::Stored { evicted: 1 }
        );
        assert!(lru.get("k1", now).is_none(), "k1 was least recently used");
        assert!(lru.get("k0", now).is_some());
        assert!(lru.get("k8", now).is_some());
        assert_eq!(lru.bytes(), 800);
        // One 100-byte entry in place of two 50-byte ones evicts as many as needed.
        let mut small = LruBytes::new(800, HOUR);
        for i in 0..16 {
            small.insert(&format!("s{i:02}"), value(47), now);
        }
        assert_eq!(small.bytes(), 800);
        assert_eq!(
            small.insert("big", value(97), now),
            Inserted::Stored { evicted: 2 }
        );
        assert!(small.get("s00", now).is_none() && small.get("s01", now).is_none());
        assert!(small.get("s02", now).is_some());
        assert!(small.bytes() <= 800);
    }

    #[test]
    fn replacing_a_key_counts_bytes_once() {
        let now = Instant::now();
        let mut lru = LruBytes::new(1000, HOUR);
        lru.insert("key", value(10), now);
        lru.insert("key", value(20), now);
        assert_eq!(lru.bytes(), 23);
        assert_eq!(lru.len(), 1);
        assert_eq!(lru.get("key", now).unwrap().len(), 20);
        assert!(lru.remove("key"));
        assert!(!lru.remove("key"));
        assert_eq!(lru.bytes(), 0);
    }

    #[test]
    fn oversize_entries_are_skipped_and_drop_the_stale_value() {
        let now = Instant::now();
        let mut lru = LruBytes::new(800, HOUR);
        assert_eq!(lru.max_entry_bytes(), 100);
        assert_eq!(
            lru.insert("k", value(99), now),
            Inserted::Stored { evicted: 0 }
        );
        assert_eq!(lru.insert("k", value(100), now), Inserted::TooLarge);
        assert!(lru.get("k", now).is_none(), "stale value must not survive");
        assert_eq!(lru.bytes(), 0);
        // A zero budget keeps nothing.
        let mut off = LruBytes::new(0, HOUR);
        assert_eq!(off.insert("k", value(0), now), Inserted::TooLarge);
        assert_eq!(off.len(), 0);
    }

    #[test]
    fn expired_entries_are_misses_and_freed() {
        let start = Instant::now();
        let mut lru = LruBytes::new(1000, Duration::from_secs(10));
        lru.insert("k", value(10), start);
        assert!(lru.get("k", start + Duration::from_secs(9)).is_some());
        assert!(lru.get("k", start + Duration::from_secs(10)).is_none());
        assert_eq!(lru.len(), 0);
        assert_eq!(lru.bytes(), 0);
    }
}
