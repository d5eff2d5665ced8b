//! Deletion and garbage collection in a simulated cluster: delete and deletecollection
//! with propagation policies and preconditions, finalizers, owner-reference garbage
//! collection (background, foreground, orphan), namespace termination, and CRD removal.
//!
//! The real API server runs the garbage collector and namespace controller as
//! asynchronous controllers; the simulator settles their work synchronously within the
//! write that caused it (same outcomes and watch events, without the delay).

use crate::api_error::{ApiError, ApiResult};
use crate::cluster::{Cluster, ClusterState};
use crate::resources::ResourceType;
use crate::store::{GroupResource, owner_uids, set_resource_version};
use crate::verbs::{ListQuery, gr, now, present};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::Arc;

const FOREGROUND: &str = "foregroundDeletion";
const ORPHAN: &str = "orphan";
/// Upper bound of garbage-collection steps settled after one write.
const MAX_STEPS: usize = 1_000_000;

/// How dependents are treated when their owner is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    /// Owner goes now; dependents are collected afterwards.
    #[default]
    Background,
    /// Owner stays (with a finalizer) until its dependents are gone.
    Foreground,
    /// Dependents lose their owner reference and stay.
    Orphan,
}

/// Options of a delete request (`DeleteOptions`).
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// Propagation policy.
    pub propagation: Propagation,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

impl DeleteOptions {
    /// Parses a `DeleteOptions` body (may be empty) and the query's `propagationPolicy`.
    pub fn parse(
        body: Option<&Value>,
        query_policy: Option<&str>,
        dry_run: bool,
    ) -> ApiResult<Self> {
        let mut opts = Self {
            dry_run,
            ..Self::default()
        };
        let body = body.cloned().unwrap_or(Value::Null);
        let policy = body["propagationPolicy"].as_str().or(query_policy);
        opts.propagation = match policy {
            None => match body["orphanDependents"].as_bool() {
                Some(true) => Propagation::Orphan,
                _ => Propagation::Background,
            },
            Some("Background") => Propagation::Background,
            Some("Foreground") => Propagation::Foreground,
            Some("Orphan") => Propagation::Orphan,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "unknown propagationPolicy {other:?}"
                )));
            }
        };
        opts.uid = body["preconditions"]["uid"].as_str().map(str::to_owned);
        opts.resource_version = body["preconditions"]["resourceVersion"]
            .as_str()
            .map(str::to_owned);
        if body["dryRun"].as_array().is_some_and(|a| !a.is_empty()) {
            opts.dry_run = true;
        }
        Ok(opts)
    }
}

/// `delete` of one object. Returns the object (when it stays, marked for deletion) or a
/// success `Status` (when it is gone).
pub fn delete(
    cluster: &Cluster,
    rt: &ResourceType,
    ns: Option<&str>,
    name: &str,
    opts: &DeleteOptions,
) -> ApiResult<Value> {
    let mut state = cluster.lock();
    let now = now();
    let resource = gr(rt);
    let obj = state
        .store
        .get(&resource, ns.unwrap_or_default(), name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&rt.group_resource(), name))?;
    let meta = &obj["metadata"];
    if opts
        .uid
        .as_deref()
        .is_some_and(|u| Some(u) != meta["uid"].as_str())
        || opts
            .resource_version
            .as_deref()
            .is_some_and(|r| Some(r) != meta["resourceVersion"].as_str())
    {
        return Err(ApiError::conflict(&rt.group_resource(), name));
    }
    if opts.dry_run {
        return Ok(present(rt, &obj));
    }
    match begin_delete(&mut state, &resource, &obj, opts.propagation, &now) {
        Some(kept) => Ok(present(rt, &kept)),
        None => Ok(
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {"name": name, "group": rt.group, "kind": rt.plural, "uid": meta["uid"]}}),
        ),
    }
}

/// `deletecollection`: deletes every matching object; returns the list of them.
pub fn delete_collection(
    cluster: &Cluster,
    rt: &ResourceType,
    ns: Option<&str>,
    q: &ListQuery,
    opts: &DeleteOptions,
) -> ApiResult<Value> {
    let mut state = cluster.lock();
    let now = now();
    let resource = gr(rt);
    let targets: Vec<Arc<Value>> = state
        .store
        .range(&resource, ns, None)
        .filter(|(_, o)| q.matches(o))
        .map(|(_, o)| Arc::clone(o))
        .collect();
    let mut items = Vec::with_capacity(targets.len());
    for obj in targets {
        items.push(present(rt, &obj));
        if !opts.dry_run {
            begin_delete(&mut state, &resource, &obj, opts.propagation, &now);
        }
    }
    let rv = state.store.resource_version();
    Ok(
        json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
    )
}

/// Starts deleting an object: removes it now, or marks it with a deletionTimestamp when
/// finalizers (its own or the policy's) must run first. Returns the kept object.
fn begin_delete(
    state: &mut ClusterState,
    resource: &GroupResource,
    obj: &Arc<Value>,
    policy: Propagation,
    now: &str,
) -> Option<Arc<Value>> {
    let mut finalizers = finalizers(obj);
    match policy {
        Propagation::Foreground if !finalizers.iter().any(|f| f == FOREGROUND) => {
            finalizers.push(FOREGROUND.into())
        }
        Propagation::Orphan if !finalizers.iter().any(|f| f == ORPHAN) => {
            finalizers.push(ORPHAN.into())
        }
        _ => {}
    }
    let namespace_pending = resource.group.is_empty() && resource.resource == "namespaces";
    if finalizers.is_empty() && !namespace_pending {
        let (ns, name) = crate::store::object_name(obj);
        let rv = state.store.next_rv();
        state.store.remove(resource, &ns, &name, rv);
        after_remove(state, obj, resource, now);
        return None;
    }
    let mut kept = (**obj).clone();
    let meta = &mut kept["metadata"];
    if meta.get("deletionTimestamp").is_none() {
        meta["deletionTimestamp"] = now.into();
        meta["deletionGracePeriodSeconds"] = 0.into();
    }
    if !finalizers.is_empty() {
        meta["finalizers"] = json!(finalizers);
    }
    if namespace_pending {
        kept["status"]["phase"] = "Terminating".into();
    }
    let stored = store_version(state, resource, kept);
    settle(state, vec![Step::Deleting(uid(&stored))], now);
    state
        .store
        .get(
            resource,
            &crate::store::object_name(&stored).0,
            &crate::store::object_name(&stored).1,
        )
        .cloned()
}

/// What to look at after a write.
#[derive(Debug)]
pub(crate) enum Step {
    /// An object that may be marked for deletion: run its finalizers.
    Deleting(String),
    /// An object whose owner went away.
    Orphaned(String),
}

/// Steps to settle after an object was stored.
pub(crate) fn after_write(obj: &Value) -> Vec<Step> {
    let mut steps = Vec::new();
    if obj["metadata"].get("deletionTimestamp").is_some() {
        steps.push(Step::Deleting(uid(obj)));
    }
    steps
}

/// Runs garbage collection to a fixed point.
pub(crate) fn settle(state: &mut ClusterState, steps: Vec<Step>, now: &str) {
    let mut queue: VecDeque<Step> = steps.into();
    let mut budget = MAX_STEPS;
    while let Some(step) = queue.pop_front() {
        budget = budget.saturating_sub(1);
        if budget == 0 {
            tracing::warn!("garbage collection did not settle; giving up this pass");
            return;
        }
        match step {
            Step::Deleting(uid) => finalize(state, &uid, now, &mut queue),
            Step::Orphaned(uid) => collect_orphan(state, &uid, now, &mut queue),
        }
    }
}

fn finalize(state: &mut ClusterState, uid: &str, now: &str, queue: &mut VecDeque<Step>) {
    let Some((resource, obj)) = lookup(state, uid) else {
        return;
    };
    if obj["metadata"].get("deletionTimestamp").is_none() {
        return;
    }
    let mut fins = finalizers(&obj);
    if fins.iter().any(|f| f == ORPHAN) {
        for dep in state.store.dependents_of(uid) {
            drop_owner_ref(state, &dep, uid);
        }
        fins.retain(|f| f != ORPHAN);
    }
    if fins.iter().any(|f| f == FOREGROUND) {
        let deps = state.store.dependents_of(uid);
        if deps.is_empty() {
            fins.retain(|f| f != FOREGROUND);
        } else {
            for dep in deps {
                if let Some((dep_res, dep_obj)) = lookup(state, &dep)
                    && dep_obj["metadata"].get("deletionTimestamp").is_none()
                {
                    mark_or_remove(
                        state,
                        &dep_res,
                        &dep_obj,
                        Propagation::Foreground,
                        now,
                        queue,
                    );
                }
            }
            // Dependents that went at once may have unblocked the owner.
            if state.store.dependents_of(uid).is_empty() {
                fins.retain(|f| f != FOREGROUND);
            }
        }
    }
    if resource.group.is_empty() && resource.resource == "namespaces" {
        terminate_namespace(state, &obj, now, queue);
        return;
    }
    write_finalizers(state, &resource, &obj, fins, now, queue);
}

fn write_finalizers(
    state: &mut ClusterState,
    resource: &GroupResource,
    obj: &Arc<Value>,
    fins: Vec<String>,
    now: &str,
    queue: &mut VecDeque<Step>,
) {
    if fins.is_empty() {
        let (ns, name) = crate::store::object_name(obj);
        let rv = state.store.next_rv();
        state.store.remove(resource, &ns, &name, rv);
        after_remove_queued(state, obj, resource, now, queue);
    } else if fins != finalizers(obj) {
        let mut next = (**obj).clone();
        next["metadata"]["finalizers"] = json!(fins);
        store_version(state, resource, next);
    }
}

fn terminate_namespace(
    state: &mut ClusterState,
    ns_obj: &Arc<Value>,
    now: &str,
    queue: &mut VecDeque<Step>,
) {
    let ns = ns_obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let namespaced: Vec<GroupResource> = state
        .types()
        .iter()
        .filter(|t| t.namespaced)
        .map(|t| gr(t))
        .collect();
    let mut remaining = 0;
    for resource in namespaced {
        let objs: Vec<Arc<Value>> = state
            .store
            .range(&resource, Some(&ns), None)
            .map(|(_, o)| Arc::clone(o))
            .collect();
        for obj in objs {
            if obj["metadata"].get("deletionTimestamp").is_none() {
                mark_or_remove(state, &resource, &obj, Propagation::Background, now, queue);
            }
        }
        remaining += state.store.range(&resource, Some(&ns), None).count();
    }
    if remaining == 0 {
        let fins: Vec<String> = finalizers(ns_obj);
        let ns_res = GroupResource::new("", "namespaces");
        if fins.is_empty() {
            let rv = state.store.next_rv();
            state.store.remove(&ns_res, "", &ns, rv);
        } else {
            let mut next = (**ns_obj).clone();
            next["spec"]["finalizers"] = json!([]);
            store_version(state, &ns_res, next);
        }
    }
}

fn mark_or_remove(
    state: &mut ClusterState,
    resource: &GroupResource,
    obj: &Arc<Value>,
    policy: Propagation,
    now: &str,
    queue: &mut VecDeque<Step>,
) {
    let mut fins = finalizers(obj);
    if policy == Propagation::Foreground
        && !state.store.dependents_of(&uid(obj)).is_empty()
        && !fins.iter().any(|f| f == FOREGROUND)
    {
        fins.push(FOREGROUND.into());
    }
    if fins.is_empty() {
        let (ns, name) = crate::store::object_name(obj);
        let rv = state.store.next_rv();
        state.store.remove(resource, &ns, &name, rv);
        after_remove_queued(state, obj, resource, now, queue);
        return;
    }
    let mut next = (**obj).clone();
    next["metadata"]["deletionTimestamp"] = now.into();
    next["metadata"]["deletionGracePeriodSeconds"] = 0.into();
    next["metadata"]["finalizers"] = json!(fins);
    let stored = store_version(state, resource, next);
    queue.push_back(Step::Deleting(uid(&stored)));
}

fn collect_orphan(state: &mut ClusterState, uid: &str, now: &str, queue: &mut VecDeque<Step>) {
    let Some((resource, obj)) = lookup(state, uid) else {
        return;
    };
    let owners = owner_uids(&obj);
    let alive: Vec<&String> = owners
        .iter()
        .filter(|o| state.store.locate(o).is_some())
        .collect();
    if owners.is_empty() {
        return;
    }
    if alive.is_empty() {
        if obj["metadata"].get("deletionTimestamp").is_none() {
            mark_or_remove(state, &resource, &obj, Propagation::Background, now, queue);
        }
    } else if alive.len() < owners.len() {
        let dangling: Vec<String> = owners
            .iter()
            .filter(|o| state.store.locate(o).is_none())
            .cloned()
            .collect();
        for owner in dangling {
            drop_owner_ref(state, uid, &owner);
        }
    }
}

fn drop_owner_ref(state: &mut ClusterState, dependent: &str, owner: &str) {
    let Some((resource, obj)) = lookup(state, dependent) else {
        return;
    };
    let mut next = (*obj).clone();
    if let Some(refs) = next["metadata"]["ownerReferences"].as_array_mut() {
        refs.retain(|r| r["uid"].as_str() != Some(owner));
        if refs.is_empty()
            && let Some(meta) = next["metadata"].as_object_mut()
        {
            meta.remove("ownerReferences");
        }
    }
    store_version(state, &resource, next);
}

fn after_remove(state: &mut ClusterState, obj: &Value, resource: &GroupResource, now: &str) {
    let mut queue = VecDeque::new();
    after_remove_queued(state, obj, resource, now, &mut queue);
    settle(state, queue.into(), now);
}

fn after_remove_queued(
    state: &mut ClusterState,
    obj: &Value,
    resource: &GroupResource,
    _now: &str,
    queue: &mut VecDeque<Step>,
) {
    if resource.group.is_empty() && resource.resource == "services" {
        state.alloc.release(obj);
    }
    if resource.group == "apiextensions.k8s.io" && resource.resource == "customresourcedefinitions"
    {
        let group = obj["spec"]["group"].as_str().unwrap_or_default().to_owned();
        let plural = obj["spec"]["names"]["plural"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let gone = GroupResource {
            group: group.clone(),
            resource: plural.clone(),
        };
        drop_resource(state, &gone);
        state.unregister(&group, &plural);
    }
    for dep in state.store.dependents_of(&uid(obj)) {
        queue.push_back(Step::Orphaned(dep));
    }
    if let Some(ns) = obj["metadata"]["namespace"].as_str()
        && let Some(ns_obj) = state
            .store
            .get(&GroupResource::new("", "namespaces"), "", ns)
        && ns_obj["metadata"].get("deletionTimestamp").is_some()
    {
        queue.push_back(Step::Deleting(uid(ns_obj)));
    }
}

/// Removes every object of a resource that stopped being served.
pub(crate) fn drop_resource(state: &mut ClusterState, resource: &GroupResource) {
    let names: Vec<(String, String)> = state
        .store
        .range(resource, None, None)
        .map(|(k, _)| k.clone())
        .collect();
    for (ns, name) in names {
        let rv = state.store.next_rv();
        state.store.remove(resource, &ns, &name, rv);
    }
}

fn store_version(state: &mut ClusterState, resource: &GroupResource, mut obj: Value) -> Arc<Value> {
    let rv = state.store.next_rv();
    set_resource_version(&mut obj, rv);
    state.store.put(resource, rv, obj)
}

fn lookup(state: &ClusterState, uid: &str) -> Option<(GroupResource, Arc<Value>)> {
    let loc = state.store.locate(uid)?.clone();
    let obj = state
        .store
        .get(&loc.resource, &loc.namespace, &loc.name)?
        .clone();
    Some((loc.resource, obj))
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj["metadata"]["finalizers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn uid(obj: &Value) -> String {
    obj["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}
