//! An index of the few largest trees recently walked, by tree id: finding one directory
//! in a monorepo's root tree of 50,000 entries otherwise decodes (and inflates) the whole
//! tree once per rendered app. Tree ids name their contents, so entries never go stale;
//! only the least recently used are dropped.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use gix::hash::ObjectId;
use gix::objs::tree::EntryMode;
use parking_lot::Mutex;

/// Trees with fewer entries are decoded each time (cheaper than indexing them).
pub(crate) const MIN_ENTRIES: usize = 1_024;
/// Big trees kept.
const CAPACITY: usize = 8;

/// A tree's entries by name.
pub(crate) type TreeIndex = HashMap<Vec<u8>, (EntryMode, ObjectId)>;

/// The shared index of big trees of one repo-server.
#[derive(Debug, Default)]
pub(crate) struct BigTrees {
    trees: Mutex<(HashMap<ObjectId, Arc<TreeIndex>>, VecDeque<ObjectId>)>,
}

impl BigTrees {
    /// The index of tree `id`, if kept.
    pub(crate) fn get(&self, id: &ObjectId) -> Option<Arc<TreeIndex>> {
        let mut guard = self.trees.lock();
        let (map, order) = &mut *guard;
        let found = map.get(id).cloned()?;
        order.retain(|k| k != id);
        order.push_back(*id);
        Some(found)
    }

    /// Keeps the index of tree `id`, dropping the least recently used beyond capacity.
    pub(crate) fn put(&self, id: ObjectId, index: Arc<TreeIndex>) {
        let mut guard = self.trees.lock();
        let (map, order) = &mut *guard;
        if map.insert(id, index).is_none() {
            order.push_back(id);
        }
        while order.len() > CAPACITY {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }
}
