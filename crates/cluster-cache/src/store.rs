//! The objects of one cluster, stored compactly, with their indexes.
//!
//! Tracked objects keep the whole object as serialized JSON bytes (`Arc<[u8]>`), parsed on
//! read. Untracked objects keep identity, owner references, the deletion timestamp and a
//! health slice (`metadata.generation`, `spec.replicas`, `spec.paused`,
//! `spec.restartPolicy`, `status`), also as JSON bytes.

use std::collections::HashSet;
use std::sync::Arc;

use keelson_model::ResourceKey;
use serde_json::{Map, Value, json};

use crate::index::{Indexes, Key};

/// An owner reference, as much of it as the tree needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OwnerRef {
    pub api_version: Box<str>,
    pub kind: Box<str>,
    pub name: Box<str>,
    pub uid: Box<str>,
    pub controller: bool,
}

/// What is kept of an object's content.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    /// The whole object (tracked objects).
    Full(Arc<[u8]>),
    /// The health slice only (untracked objects).
    Slim(Option<Arc<[u8]>>),
}

/// One stored object.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub api_version: Arc<str>,
    pub uid: Box<str>,
    pub resource_version: Box<str>,
    pub app: Option<Arc<str>>,
    pub owners: Box<[OwnerRef]>,
    pub deletion_timestamp: Option<Box<str>>,
    pub body: Body,
}

/// A live object read from the cache.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveObject {
    /// Identity.
    pub key: ResourceKey,
    /// The object (whole when `complete`, else identity, owners and the health slice).
    pub object: Value,
    /// Whether `object` is the whole object.
    pub complete: bool,
}

/// A node of an application's resource tree.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeNode {
    /// The object.
    pub live: LiveObject,
    /// Keys of owners that are in the tree (empty for roots).
    pub parents: Vec<ResourceKey>,
}

/// A copy of a record taken under the lock, turned into a [`LiveObject`] outside it.
pub(crate) struct Snapshot(ResourceKey, Record);

impl Snapshot {
    pub fn into_live(self) -> LiveObject {
        let Snapshot(key, rec) = self;
        match &rec.body {
            Body::Full(bytes) => LiveObject {
                object: serde_json::from_slice(bytes).unwrap_or(Value::Null),
                key,
                complete: true,
            },
            Body::Slim(slice) => LiveObject {
                object: slim_object(&key, &rec, slice.as_deref()),
                key,
                complete: false,
            },
        }
    }
}

fn slim_object(key: &ResourceKey, rec: &Record, slice: Option<&[u8]>) -> Value {
    let mut meta = Map::new();
    meta.insert("name".into(), key.name.clone().into());
    if !key.namespace.is_empty() {
        meta.insert("namespace".into(), key.namespace.clone().into());
    }
    meta.insert("uid".into(), rec.uid.to_string().into());
    meta.insert(
        "resourceVersion".into(),
        rec.resource_version.to_string().into(),
    );
    if let Some(ts) = &rec.deletion_timestamp {
        meta.insert("deletionTimestamp".into(), ts.to_string().into());
    }
    if !rec.owners.is_empty() {
        let owners: Vec<Value> = rec
            .owners
            .iter()
            .map(|o| {
                json!({"apiVersion": &*o.api_version, "kind": &*o.kind, "name": &*o.name,
                       "uid": &*o.uid, "controller": o.controller})
            })
            .collect();
        meta.insert("ownerReferences".into(), owners.into());
    }
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), rec.api_version.to_string().into());
    obj.insert("kind".into(), key.kind.clone().into());
    if let Some(Value::Object(extra)) = slice.and_then(|s| serde_json::from_slice(s).ok()) {
        for (k, v) in extra {
            if k == "generation" {
                meta.insert(k, v);
            } else {
                obj.insert(k, v);
            }
        }
    }
    obj.insert("metadata".into(), Value::Object(meta));
    Value::Object(obj)
}

/// The result of an upsert, for notifications.
#[derive(Debug)]
pub(crate) struct Upserted {
    pub existed: bool,
    pub changed: bool,
    pub old_app: Option<Arc<str>>,
}

/// All objects of one cluster and their indexes.
#[derive(Debug, Default)]
pub(crate) struct Store {
    objects: std::collections::HashMap<Key, Record>,
    index: Indexes,
}

fn owner_uids(rec: &Record) -> Vec<&str> {
    rec.owners.iter().map(|o| &*o.uid).collect()
}

impl Store {
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn intern_app(&self, app: &str) -> Arc<str> {
        self.index.intern_app(app)
    }

    /// Inserts or replaces an object.
    pub fn upsert(&mut self, key: ResourceKey, rec: Record) -> Upserted {
        let old = self.remove_entry(&key);
        let changed = old
            .as_ref()
            .is_none_or(|(_, o)| o.resource_version != rec.resource_version);
        let key: Key = old
            .as_ref()
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| Arc::new(key));
        self.index
            .insert(&key, &rec.uid, rec.app.as_ref(), &owner_uids(&rec));
        self.objects.insert(key, rec);
        Upserted {
            existed: old.is_some(),
            changed,
            old_app: old.and_then(|(_, o)| o.app),
        }
    }

    fn remove_entry(&mut self, key: &ResourceKey) -> Option<(Key, Record)> {
        let (k, rec) = self.objects.remove_entry(key)?;
        self.index
            .remove(&k, &rec.uid, rec.app.as_ref(), &owner_uids(&rec));
        Some((k, rec))
    }

    /// Removes an object, returning its record.
    pub fn remove(&mut self, key: &ResourceKey) -> Option<Record> {
        self.remove_entry(key).map(|(_, r)| r)
    }

    /// Keys of a group/kind not in `keep`.
    pub fn kind_keys_except(
        &self,
        group: &str,
        kind: &str,
        keep: Option<&HashSet<ResourceKey>>,
    ) -> Vec<ResourceKey> {
        self.objects
            .keys()
            .filter(|k| k.group == group && k.kind == kind)
            .filter(|k| keep.is_none_or(|s| !s.contains(k.as_ref())))
            .map(|k| k.as_ref().clone())
            .collect()
    }

    /// The application at the root of an object's owner chain (its own app first).
    pub fn root_app(&self, rec: &Record) -> Option<Arc<str>> {
        let mut current = rec.clone();
        for _ in 0..16 {
            if let Some(app) = &current.app {
                return Some(app.clone());
            }
            let owner = current
                .owners
                .iter()
                .find(|o| o.controller)
                .or_else(|| current.owners.first())?;
            let key = self.index.by_uid.get(&*owner.uid)?;
            current = self.objects.get(key)?.clone();
        }
        None
    }

    /// The root application of a stored object.
    pub fn root_app_of(&self, key: &ResourceKey) -> Option<Arc<str>> {
        self.objects.get(key).and_then(|r| self.root_app(r))
    }

    fn snapshot(&self, key: &Key) -> Option<Snapshot> {
        self.objects
            .get(key)
            .map(|r| Snapshot(key.as_ref().clone(), r.clone()))
    }

    pub fn get(&self, key: &ResourceKey) -> Option<Snapshot> {
        self.objects
            .get(key)
            .map(|r| Snapshot(key.clone(), r.clone()))
    }

    pub fn app_objects(&self, app: &str) -> Vec<Snapshot> {
        self.index
            .by_app
            .get(app)
            .map(|s| s.iter().filter_map(|k| self.snapshot(k)).collect())
            .unwrap_or_default()
    }

    pub fn namespace_objects(&self, ns: &str) -> Vec<Snapshot> {
        self.index
            .by_namespace
            .get(ns)
            .map(|s| s.iter().filter_map(|k| self.snapshot(k)).collect())
            .unwrap_or_default()
    }

    pub fn children(&self, uid: &str) -> Vec<Snapshot> {
        self.index
            .children
            .get(uid)
            .map(|s| s.iter().filter_map(|k| self.snapshot(k)).collect())
            .unwrap_or_default()
    }

    /// Tracked roots of an app and their descendants through owner references, with the
    /// keys of in-tree parents.
    pub fn tree(&self, app: &str) -> Vec<(Snapshot, Vec<ResourceKey>)> {
        let Some(roots) = self.index.by_app.get(app) else {
            return Vec::new();
        };
        let mut seen: HashSet<Key> = roots.iter().cloned().collect();
        let mut queue: std::collections::VecDeque<(Key, Vec<ResourceKey>)> =
            roots.iter().map(|k| (k.clone(), Vec::new())).collect();
        let mut out = Vec::new();
        while let Some((key, parents)) = queue.pop_front() {
            let Some(rec) = self.objects.get(&key) else {
                continue;
            };
            if let Some(kids) = self.index.children.get(&*rec.uid) {
                for kid in kids {
                    if seen.insert(kid.clone()) {
                        queue.push_back((kid.clone(), vec![key.as_ref().clone()]));
                    }
                }
            }
            out.push((Snapshot(key.as_ref().clone(), rec.clone()), parents));
        }
        out
    }
}
