//! The object store of one simulated cluster: objects by resource, namespace and name,
//! the cluster-wide resourceVersion counter, uid and owner indexes, and the bounded
//! event history that watches resume from.

use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// Events kept at most however young they are: the real API server's watch cache limit.
pub const HISTORY_MAX: usize = 100 * 1024;

/// A resource across versions: objects are stored once per group and plural.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupResource {
    /// API group, "" for core.
    pub group: String,
    /// Plural resource name.
    pub resource: String,
}

impl GroupResource {
    /// A group/resource pair.
    pub fn new(group: &str, resource: &str) -> Self {
        Self {
            group: group.to_owned(),
            resource: resource.to_owned(),
        }
    }
}

/// Namespace ("" when cluster-scoped) and name of a stored object.
pub type ObjectName = (String, String);

/// The kind of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// The object was created.
    Added,
    /// The object was changed.
    Modified,
    /// The object was removed.
    Deleted,
}

impl EventType {
    /// The wire name of the event type.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change to the store, as watches see it.
#[derive(Debug)]
pub struct Event {
    /// The resourceVersion of the change.
    pub rv: u64,
    /// What happened.
    pub kind: EventType,
    /// Which resource.
    pub resource: GroupResource,
    /// The object after the change (before it, for deletions, with the new rv).
    pub object: Arc<Value>,
    /// The object before a modification (selector-filtered watches need it).
    pub previous: Option<Arc<Value>>,
}

/// Where an object lives, for the uid index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    /// Its resource.
    pub resource: GroupResource,
    /// Namespace ("" when cluster-scoped).
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// The objects of one cluster.
#[derive(Debug)]
pub struct Store {
    rv: u64,
    objects: HashMap<GroupResource, BTreeMap<ObjectName, Arc<Value>>>,
    by_uid: HashMap<String, Location>,
    dependents: HashMap<String, HashSet<String>>,
    history: VecDeque<Arc<Event>>,
    /// When each event of `history` was kept.
    history_times: VecDeque<Instant>,
    history_cap: usize,
    history_window: Duration,
    /// The rv of the newest event evicted from history: watches from older versions get 410.
    evicted_rv: u64,
    events: broadcast::Sender<Arc<Event>>,
}

impl Store {
    /// An empty store keeping `history_cap` events for watch resumption and buffering
    /// `channel_cap` events per live watcher.
    pub fn new(history_cap: usize, channel_cap: usize) -> Self {
        let (events, _) = broadcast::channel(channel_cap.max(16));
        Self {
            rv: 1,
            objects: HashMap::new(),
            by_uid: HashMap::new(),
            dependents: HashMap::new(),
            history: VecDeque::new(),
            history_times: VecDeque::new(),
            history_cap: history_cap.max(1),
            history_window: Duration::ZERO,
            evicted_rv: 0,
            events,
        }
    }

    /// Also keeps every event younger than `window` (up to [`HISTORY_MAX`] events), as
    /// the real API server's watch cache keeps at least 75 s of events: a watcher that
    /// fell behind under a burst of writes resumes instead of listing everything again.
    #[must_use]
    pub fn with_history_window(mut self, window: Duration) -> Self {
        self.history_window = window;
        self
    }

    /// The current resourceVersion of the cluster.
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// The oldest resourceVersion a watch may start from.
    pub fn oldest_resumable(&self) -> u64 {
        self.evicted_rv
    }

    /// Forgets the event history: watches can resume only from now on, as with a real
    /// API server whose watch cache starts when the server does.
    pub fn compact(&mut self) {
        if let Some(last) = self.history.back() {
            self.evicted_rv = last.rv;
        }
        self.history.clear();
        self.history_times.clear();
    }

    /// Subscribe to future events.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    /// Events newer than `rv`, oldest first.
    pub fn history_since(&self, rv: u64) -> impl Iterator<Item = &Arc<Event>> {
        let start = self.history.partition_point(|e| e.rv <= rv);
        self.history.range(start..)
    }

    /// The object at this location.
    pub fn get(
        &self,
        resource: &GroupResource,
        namespace: &str,
        name: &str,
    ) -> Option<&Arc<Value>> {
        self.objects
            .get(resource)?
            .get(&(namespace.to_owned(), name.to_owned()))
    }

    /// Objects of a resource, optionally in one namespace, in (namespace, name) order,
    /// starting strictly after `after` when given.
    pub fn range<'a>(
        &'a self,
        resource: &GroupResource,
        namespace: Option<&'a str>,
        after: Option<&ObjectName>,
    ) -> Box<dyn Iterator<Item = (&'a ObjectName, &'a Arc<Value>)> + 'a> {
        use std::ops::Bound;
        let Some(map) = self.objects.get(resource) else {
            return Box::new(std::iter::empty());
        };
        let lower = match (after, namespace) {
            (Some(a), _) => Bound::Excluded(a.clone()),
            (None, Some(ns)) => Bound::Included((ns.to_owned(), String::new())),
            (None, None) => Bound::Unbounded,
        };
        let iter = map.range((lower, Bound::Unbounded));
        match namespace {
            Some(ns) => Box::new(iter.take_while(move |((n, _), _)| n == ns)),
            None => Box::new(iter),
        }
    }

    /// Number of objects of a resource.
    pub fn count(&self, resource: &GroupResource) -> usize {
        self.objects.get(resource).map_or(0, BTreeMap::len)
    }

    /// Total number of objects.
    pub fn total(&self) -> usize {
        self.objects.values().map(BTreeMap::len).sum()
    }

    /// Where the object with this uid lives.
    pub fn locate(&self, uid: &str) -> Option<&Location> {
        self.by_uid.get(uid)
    }

    /// Uids of objects that name `owner_uid` in their ownerReferences.
    pub fn dependents_of(&self, owner_uid: &str) -> Vec<String> {
        self.dependents
            .get(owner_uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The next resourceVersion, reserved for a write about to happen.
    pub fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    /// Stores `object` (whose metadata.resourceVersion the caller set to `rv` from
    /// [`Store::next_rv`]) and emits the event.
    pub fn put(&mut self, resource: &GroupResource, rv: u64, object: Value) -> Arc<Value> {
        let (namespace, name) = object_name(&object);
        let object = Arc::new(object);
        let map = self.objects.entry(resource.clone()).or_default();
        let previous = map.insert((namespace.clone(), name.clone()), Arc::clone(&object));
        if let Some(prev) = &previous {
            self.unindex(prev);
        }
        self.index(
            &object,
            Location {
                resource: resource.clone(),
                namespace,
                name,
            },
        );
        let kind = if previous.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.emit(Event {
            rv,
            kind,
            resource: resource.clone(),
            object: Arc::clone(&object),
            previous,
        });
        object
    }

    /// Removes the object; the DELETED event carries it with resourceVersion `rv`.
    pub fn remove(
        &mut self,
        resource: &GroupResource,
        namespace: &str,
        name: &str,
        rv: u64,
    ) -> Option<Arc<Value>> {
        let map = self.objects.get_mut(resource)?;
        let previous = map.remove(&(namespace.to_owned(), name.to_owned()))?;
        self.unindex(&previous);
        let mut last = (*previous).clone();
        set_resource_version(&mut last, rv);
        let last = Arc::new(last);
        self.emit(Event {
            rv,
            kind: EventType::Deleted,
            resource: resource.clone(),
            object: Arc::clone(&last),
            previous: None,
        });
        Some(last)
    }

    fn emit(&mut self, event: Event) {
        let event = Arc::new(event);
        let now = Instant::now();
        while self.history.len() >= self.history_cap {
            let young = self
                .history_times
                .front()
                .is_some_and(|t| now.duration_since(*t) < self.history_window);
            if young && self.history.len() < HISTORY_MAX {
                break;
            }
            let Some(old) = self.history.pop_front() else {
                break;
            };
            self.history_times.pop_front();
            self.evicted_rv = old.rv;
        }
        self.history.push_back(Arc::clone(&event));
        self.history_times.push_back(now);
        // No receivers is normal: nobody watches this cluster.
        let _ = self.events.send(event);
    }

    fn index(&mut self, object: &Value, location: Location) {
        let Some(uid) = object["metadata"]["uid"].as_str() else {
            return;
        };
        for owner in owner_uids(object) {
            self.dependents
                .entry(owner)
                .or_default()
                .insert(uid.to_owned());
        }
        self.by_uid.insert(uid.to_owned(), location);
    }

    fn unindex(&mut self, object: &Value) {
        let Some(uid) = object["metadata"]["uid"].as_str() else {
            return;
        };
        for owner in owner_uids(object) {
            if let Some(set) = self.dependents.get_mut(&owner) {
                set.remove(uid);
                if set.is_empty() {
                    self.dependents.remove(&owner);
                }
            }
        }
        self.by_uid.remove(uid);
    }
}

/// Namespace and name from an object's metadata.
pub fn object_name(object: &Value) -> ObjectName {
    let meta = &object["metadata"];
    (
        meta["namespace"].as_str().unwrap_or_default().to_owned(),
        meta["name"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Uids named by an object's ownerReferences.
pub fn owner_uids(object: &Value) -> Vec<String> {
    object["metadata"]["ownerReferences"]
        .as_array()
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r["uid"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Sets metadata.resourceVersion.
pub fn set_resource_version(object: &mut Value, rv: u64) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cm(name: &str, uid: &str, rv: u64) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default", "uid": uid, "resourceVersion": rv.to_string()}})
    }

    #[test]
    fn history_evicts_and_reports_oldest() {
        let mut s = Store::new(2, 16);
        let gr = GroupResource::new("", "configmaps");
        for i in 0..4 {
            let rv = s.next_rv();
            s.put(&gr, rv, cm(&format!("c{i}"), &format!("u{i}"), rv));
        }
        assert_eq!(s.history_since(0).count(), 2);
        assert_eq!(s.oldest_resumable(), 3);
        assert_eq!(s.range(&gr, Some("default"), None).count(), 4);
        assert_eq!(s.range(&gr, Some("other"), None).count(), 0);
        let after = ("default".to_owned(), "c1".to_owned());
        assert_eq!(s.range(&gr, None, Some(&after)).count(), 2);
    }

    #[test]
    fn young_events_are_kept_beyond_the_count() {
        let mut s = Store::new(2, 16).with_history_window(Duration::from_secs(60));
        let gr = GroupResource::new("", "configmaps");
        for i in 0..6 {
            let rv = s.next_rv();
            s.put(&gr, rv, cm(&format!("c{i}"), &format!("u{i}"), rv));
        }
        assert_eq!(s.history_since(0).count(), 6);
        assert_eq!(s.oldest_resumable(), 0);
    }

    #[test]
    fn dependents_are_indexed() {
        let mut s = Store::new(10, 16);
        let gr = GroupResource::new("", "configmaps");
        let mut child = cm("child", "u2", 3);
        child["metadata"]["ownerReferences"] =
            json!([{"uid": "u1", "name": "owner", "kind": "ConfigMap", "apiVersion": "v1"}]);
        s.put(&gr, 2, cm("owner", "u1", 2));
        s.put(&gr, 3, child);
        assert_eq!(s.dependents_of("u1"), vec!["u2".to_owned()]);
        s.remove(&gr, "default", "child", 4);
        assert!(s.dependents_of("u1").is_empty());
        assert!(s.locate("u2").is_none());
    }
}
