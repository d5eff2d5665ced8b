//! Secondary indexes of a cluster's store: application → keys, owner uid → children,
//! namespace → keys, uid → key. Keys are shared `Arc`s, so an index entry costs a pointer.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use keelson_model::ResourceKey;

/// A shared object key.
pub(crate) type Key = Arc<ResourceKey>;

/// The indexes; kept in step with the objects by [`crate::store::Store`].
#[derive(Debug, Default)]
pub(crate) struct Indexes {
    pub by_app: HashMap<Arc<str>, HashSet<Key>>,
    pub children: HashMap<Box<str>, HashSet<Key>>,
    pub by_namespace: HashMap<Box<str>, HashSet<Key>>,
    pub by_uid: HashMap<Box<str>, Key>,
}

fn add<K: std::hash::Hash + Eq>(map: &mut HashMap<K, HashSet<Key>>, k: K, key: &Key) {
    map.entry(k).or_default().insert(key.clone());
}

fn drop_from<K, Q>(map: &mut HashMap<K, HashSet<Key>>, k: &Q, key: &Key)
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + ?Sized,
{
    if let Some(set) = map.get_mut(k) {
        set.remove(key);
        if set.is_empty() {
            map.remove(k);
        }
    }
}

impl Indexes {
    /// The shared copy of an application name, so each name is stored once.
    pub fn intern_app(&self, app: &str) -> Arc<str> {
        self.by_app
            .get_key_value(app)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| Arc::from(app))
    }

    pub fn insert(&mut self, key: &Key, uid: &str, app: Option<&Arc<str>>, owners: &[&str]) {
        if let Some(app) = app {
            add(&mut self.by_app, app.clone(), key);
        }
        for owner in owners {
            add(&mut self.children, Box::from(*owner), key);
        }
        if !key.namespace.is_empty() {
            add(
                &mut self.by_namespace,
                Box::from(key.namespace.as_str()),
                key,
            );
        }
        if !uid.is_empty() {
            self.by_uid.insert(Box::from(uid), key.clone());
        }
    }

    pub fn remove(&mut self, key: &Key, uid: &str, app: Option<&Arc<str>>, owners: &[&str]) {
        if let Some(app) = app {
            drop_from(&mut self.by_app, app.as_ref(), key);
        }
        for owner in owners {
            drop_from(&mut self.children, *owner, key);
        }
        if !key.namespace.is_empty() {
            drop_from(&mut self.by_namespace, key.namespace.as_str(), key);
        }
        if self.by_uid.get(uid).is_some_and(|k| k == key) {
            self.by_uid.remove(uid);
        }
    }
}
