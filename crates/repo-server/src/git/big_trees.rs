//! An index of the few largest trees recently walked, by tree id: finding one directory
//! in a monorepo's root tree of 50,000 entries otherwise decodes (and inflates) the whole
//! tree once per rendered app. Tree ids name their contents, so entries never go stale;
//! only the least recently used are dropped.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Arc;

use gix::hash::ObjectId;
use gix::objs::tree::EntryMode;
use parking_lot::Mutex;

/// Trees with fewer entries are decoded each time (cheaper than indexing them).
pub(crate) const MIN_ENTRIES: usize = 1_024;
/// Big trees kept.
const CAPACITY: NonZeroUsize = NonZeroUsize::MIN.saturating_add(7); // 8

/// A tree's entries by name.
pub(crate) type TreeIndex = HashMap<Vec<u8>, (EntryMode, ObjectId)>;

/// The shared index of big trees of one repo-server.
#[derive(Debug)]
pub(crate) struct BigTrees {
    trees: Mutex<lru::LruCache<ObjectId, Arc<TreeIndex>>>,
}

impl Default for BigTrees {
    fn default() -> Self {
        BigTrees {
            trees: Mutex::new(lru::LruCache::new(CAPACITY)),
        }
    }
}

impl BigTrees {
    /// The index of tree `id`, if kept.
    pub(crate) fn get(&self, id: &ObjectId) -> Option<Arc<TreeIndex>> {
        self.trees.lock().get(id).cloned()
    }

    /// Keeps the index of tree `id`, dropping the least recently used beyond capacity.
    pub(crate) fn put(&self, id: ObjectId, index: Arc<TreeIndex>) {
        self.trees.lock().put(id, index);
    }
}
