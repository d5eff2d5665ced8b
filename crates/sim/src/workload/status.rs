//! Pure planning of the simulator's workload mode, shared part and the apps controllers:
//! which kinds are handled, readiness tokens and delays, pod-template hashes, conditions,
//! and the statuses the deployment, replicaset, statefulset and daemonset controllers
//! write, shaped as the real controllers write them, plus the ReplicaSets and Pods the
//! deployment and replicaset controllers create. Jobs, Pods, PVCs and load balancers are
//! in `workload::kubelet`. No I/O here.

use super::kubelet;
use crate::store::GroupResource;
use serde_json::{Map, Value, json};

/// Annotation making a Job or Pod fail instead of succeeding / running.
pub(crate) const ANN_FAIL: &str = "sim.keelson.io/fail";
/// Annotation overriding the ready delay of one object, in milliseconds.
pub(crate) const ANN_READY_DELAY: &str = "sim.keelson.io/ready-delay-ms";
/// Annotation keeping an object progressing forever.
pub(crate) const ANN_NEVER_READY: &str = "sim.keelson.io/never-ready";
/// Label the deployment controller adds to ReplicaSets and their Pods.
pub(crate) const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// Alphabet of Kubernetes' `SafeEncodeString` and generated name suffixes.
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The kinds the workload controllers act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    Deployment,
    StatefulSet,
    DaemonSet,
    ReplicaSet,
    Job,
    Pod,
    PersistentVolumeClaim,
    Service,
    Ingress,
}

impl Kind {
    /// Every handled kind.
    pub(crate) const ALL: [Kind; 9] = [
        Kind::Deployment,
        Kind::StatefulSet,
        Kind::DaemonSet,
        Kind::ReplicaSet,
        Kind::Job,
        Kind::Pod,
        Kind::PersistentVolumeClaim,
        Kind::Service,
        Kind::Ingress,
    ];

    /// Group, version and plural the kind is served at.
    pub(crate) fn path(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Kind::Deployment => ("apps", "v1", "deployments"),
            Kind::StatefulSet => ("apps", "v1", "statefulsets"),
            Kind::DaemonSet => ("apps", "v1", "daemonsets"),
            Kind::ReplicaSet => ("apps", "v1", "replicasets"),
            Kind::Job => ("batch", "v1", "jobs"),
            Kind::Pod => ("", "v1", "pods"),
            Kind::PersistentVolumeClaim => ("", "v1", "persistentvolumeclaims"),
            Kind::Service => ("", "v1", "services"),
            Kind::Ingress => ("networking.k8s.io", "v1", "ingresses"),
        }
    }

    /// The group/resource objects of this kind are stored under.
    pub(crate) fn resource(self) -> GroupResource {
        let (group, _, plural) = self.path();
        GroupResource::new(group, plural)
    }

    /// The kind stored under a group/resource, if handled.
    pub(crate) fn of(resource: &GroupResource) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| {
            let (group, _, plural) = k.path();
            resource.group == group && resource.resource == plural
        })
    }

    /// Whether the controller tracks `metadata.generation` in `status.observedGeneration`.
    fn generational(self) -> bool {
        matches!(
            self,
            Kind::Deployment | Kind::StatefulSet | Kind::DaemonSet | Kind::ReplicaSet | Kind::Job
        )
    }
}

/// Identity of the change a readiness timer waits for: the uid, plus the generation for
/// kinds whose spec changes restart the clock.
pub(crate) fn token(kind: Kind, obj: &Value) -> String {
    let uid = obj["metadata"]["uid"].as_str().unwrap_or_default();
    if kind.generational() {
        format!("{uid}/{}", generation(obj))
    } else {
        uid.to_owned()
    }
}

/// The status the controllers want for `obj`: `ready` once its delay has passed.
/// `None` when the controllers leave the object alone.
pub(crate) fn desired_status(
    kind: Kind,
    obj: &Value,
    now: &str,
    ready: bool,
    ingress_ip: &str,
) -> Option<Value> {
    match kind {
        Kind::Deployment => Some(deployment_status(obj, now, ready)),
        Kind::StatefulSet => Some(statefulset_status(obj, ready)),
        Kind::DaemonSet => Some(daemonset_status(obj, ready)),
        Kind::ReplicaSet => Some(replicaset_status(obj, ready)),
        Kind::Job => kubelet::job_status(obj, now, ready),
        Kind::Pod => Some(kubelet::pod_status(obj, now, ready)),
        Kind::PersistentVolumeClaim => Some(kubelet::pvc_status(obj, ready)),
        Kind::Service => kubelet::service_status(obj, ready, ingress_ip),
        Kind::Ingress => Some(kubelet::ingress_status(obj, ready, ingress_ip)),
    }
}

/// Whether the object changed in a way the controllers answer at once (before the
/// delay): a new generation, a new Job or Pod, a PVC without a phase.
pub(crate) fn needs_progress(kind: Kind, obj: &Value) -> bool {
    let status = &obj["status"];
    match kind {
        Kind::Deployment | Kind::StatefulSet | Kind::DaemonSet | Kind::ReplicaSet => {
            status["observedGeneration"].as_i64().unwrap_or(0) < generation(obj)
        }
        Kind::Job => {
            status["startTime"].is_null() && !kubelet::job_finished(status) && !suspended(obj)
        }
        Kind::Pod => {
            find_condition(status, "PodScheduled").is_none()
                && status["phase"].as_str().is_none_or(|p| p == "Pending")
        }
        Kind::PersistentVolumeClaim => status["phase"].is_null(),
        Kind::Service | Kind::Ingress => false,
    }
}

/// Whether the object is held back from becoming ready: `never-ready`, or a paused Deployment.
pub(crate) fn held(kind: Kind, obj: &Value) -> bool {
    annotation(obj, ANN_NEVER_READY) == Some("true")
        || (kind == Kind::Deployment && obj["spec"]["paused"].as_bool() == Some(true))
}

/// The object's own ready delay in milliseconds, when annotated.
pub(crate) fn delay_override_ms(obj: &Value) -> Option<u64> {
    annotation(obj, ANN_READY_DELAY).and_then(|s| s.trim().parse().ok())
}

/// An annotation of the object.
pub(crate) fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj["metadata"]["annotations"][key].as_str()
}

fn generation(obj: &Value) -> i64 {
    obj["metadata"]["generation"].as_i64().unwrap_or(0)
}

pub(super) fn name(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or_default()
}

pub(super) fn suspended(obj: &Value) -> bool {
    obj["spec"]["suspend"].as_bool() == Some(true)
}

/// `spec.replicas`, defaulting to 1.
pub(crate) fn spec_replicas(obj: &Value) -> i64 {
    obj["spec"]["replicas"].as_i64().unwrap_or(1).max(0)
}

fn count(status: &Value, key: &str) -> i64 {
    status[key].as_i64().unwrap_or(0)
}

/// Inserts a count, omitting zero as Go's `omitempty` does.
fn put_count(map: &mut Map<String, Value>, key: &str, n: i64) {
    if n != 0 {
        map.insert(key.into(), n.into());
    }
}

// ---------------------------------------------------------------------------------
// Hashing and names.

/// 32-bit FNV-1a.
pub(super) fn fnv32a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// JSON with object keys sorted, so equal templates hash alike whatever their key order.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&m[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The pod-template hash as the deployment controller renders it: a 32-bit FNV-1a hash,
/// printed in decimal, each digit mapped through `SafeEncodeString` (so at most 10
/// characters of `[bcdfghjklmnpqrstvwxz2456789]`, like `7d8b6d9c5f`).
pub(crate) fn template_hash(template: &Value) -> String {
    let mut text = String::new();
    canonical(template, &mut text);
    fnv32a(text.as_bytes())
        .to_string()
        .bytes()
        .map(|b| SAFE_ALPHABET[usize::from(b) % SAFE_ALPHABET.len()] as char)
        .collect()
}

// ---------------------------------------------------------------------------------
// Conditions.

/// How a condition type carries its timestamps.
#[derive(Clone, Copy)]
pub(super) enum Stamp {
    /// `lastUpdateTime` and `lastTransitionTime` (Deployments).
    Update,
    /// `lastProbeTime` and `lastTransitionTime` (Jobs).
    Probe,
    /// `lastProbeTime: null` and `lastTransitionTime` (Pods).
    Pod,
}

pub(super) fn find_condition<'a>(status: &'a Value, ty: &str) -> Option<&'a Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"].as_str() == Some(ty))
}

/// A condition, keeping the previous one unchanged when status, reason and message are
/// the same, and its `lastTransitionTime` when only reason or message changed.
pub(super) fn condition(
    previous: &Value,
    ty: &str,
    status: &str,
    reason: Option<&str>,
    message: Option<&str>,
    now: &str,
    stamp: Stamp,
) -> Value {
    let old = find_condition(previous, ty);
    if let Some(old) = old
        && old["status"].as_str() == Some(status)
        && old["reason"].as_str() == reason
        && old["message"].as_str() == message
    {
        return old.clone();
    }
    let transition = match old {
        Some(o) if o["status"].as_str() == Some(status) && o["lastTransitionTime"].is_string() => {
            o["lastTransitionTime"].clone()
        }
        _ => Value::from(now),
    };
    let mut c = Map::new();
    c.insert("type".into(), ty.into());
    c.insert("status".into(), status.into());
    match stamp {
        Stamp::Update => {
            c.insert("lastUpdateTime".into(), now.into());
        }
        Stamp::Probe => {
            c.insert("lastProbeTime".into(), now.into());
        }
        Stamp::Pod => {
            c.insert("lastProbeTime".into(), Value::Null);
        }
    }
    c.insert("lastTransitionTime".into(), transition);
    if let Some(r) = reason {
        c.insert("reason".into(), r.into());
    }
    if let Some(m) = message {
        c.insert("message".into(), m.into());
    }
    Value::Object(c)
}

// ---------------------------------------------------------------------------------
// Deployments.

/// An int-or-percent rollout bound scaled to `replicas` (rounded up or down).
fn scaled(v: &Value, replicas: i64, default_percent: i64, round_up: bool) -> i64 {
    let percent = |p: i64| {
        let num = p * replicas;
        if round_up {
            (num + 99) / 100
        } else {
            num / 100
        }
    };
    match v {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
            Some(p) => percent(p),
            None => s.parse().unwrap_or(0),
        },
        _ => percent(default_percent),
    }
}

fn max_unavailable(obj: &Value, replicas: i64) -> i64 {
    let strategy = &obj["spec"]["strategy"];
    if strategy["type"].as_str() == Some("Recreate") {
        return 0;
    }
    let unavailable = scaled(
        &strategy["rollingUpdate"]["maxUnavailable"],
        replicas,
        25,
        false,
    );
    let surge = scaled(&strategy["rollingUpdate"]["maxSurge"], replicas, 25, true);
    // The controller allows one unavailable pod when both bounds round to zero.
    if unavailable == 0 && surge == 0 {
        1.min(replicas)
    } else {
        unavailable.min(replicas)
    }
}

fn max_surge(obj: &Value, replicas: i64) -> i64 {
    let strategy = &obj["spec"]["strategy"];
    if strategy["type"].as_str() == Some("Recreate") {
        return 0;
    }
    scaled(&strategy["rollingUpdate"]["maxSurge"], replicas, 25, true)
}

/// The name of the ReplicaSet the deployment's current template runs in.
pub(crate) fn replicaset_name(deploy: &Value) -> String {
    format!(
        "{}-{}",
        name(deploy),
        template_hash(&deploy["spec"]["template"])
    )
}

/// The ReplicaSet named in the Progressing condition's message (`ReplicaSet "x" …`).
fn progressing_replicaset(status: &Value) -> Option<String> {
    let message = find_condition(status, "Progressing")?["message"].as_str()?;
    let rest = message.strip_prefix("ReplicaSet \"")?;
    rest.split_once('"').map(|(n, _)| n.to_owned())
}

/// Replica counts of a Deployment or ReplicaSet status.
struct Counts {
    replicas: i64,
    updated: i64,
    ready: i64,
    available: i64,
}

/// The deployment controller's status: `ready` once the new ReplicaSet's pods are
/// available; otherwise the status it writes right after a spec change (Progressing,
/// reason ReplicaSetUpdated). Paused deployments keep their counts and report
/// Progressing Unknown with reason DeploymentPaused.
pub fn deployment_status(obj: &Value, now: &str, ready: bool) -> Value {
    let old = &obj["status"];
    let want = spec_replicas(obj);
    let rs = replicaset_name(obj);
    let paused = obj["spec"]["paused"].as_bool() == Some(true);
    let c = deployment_counts(obj, &rs, ready);
    let mut s = Map::new();
    put_count(&mut s, "observedGeneration", generation(obj));
    put_count(&mut s, "replicas", c.replicas);
    put_count(&mut s, "updatedReplicas", c.updated);
    put_count(&mut s, "readyReplicas", c.ready);
    put_count(&mut s, "availableReplicas", c.available);
    put_count(&mut s, "unavailableReplicas", (want - c.available).max(0));
    let cond = |ty: &str, status: &str, reason: &str, message: &str| {
        condition(
            old,
            ty,
            status,
            Some(reason),
            Some(message),
            now,
            Stamp::Update,
        )
    };
    let available = if c.available >= want - max_unavailable(obj, want) {
        cond(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        )
    } else {
        let message = "Deployment does not have minimum availability.";
        cond("Available", "False", "MinimumReplicasUnavailable", message)
    };
    let progressing = if paused {
        cond(
            "Progressing",
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused",
        )
    } else if ready {
        let message = format!("ReplicaSet \"{rs}\" has successfully progressed.");
        cond("Progressing", "True", "NewReplicaSetAvailable", &message)
    } else {
        let message = format!("ReplicaSet \"{rs}\" is progressing.");
        cond("Progressing", "True", "ReplicaSetUpdated", &message)
    };
    s.insert("conditions".into(), json!([available, progressing]));
    Value::Object(s)
}

/// Replica counts of a deployment whose current ReplicaSet is `rs`: kept while paused,
/// all `spec.replicas` once ready; right after a template change no pod is updated yet.
fn deployment_counts(obj: &Value, rs: &str, ready: bool) -> Counts {
    let old = &obj["status"];
    let want = spec_replicas(obj);
    let kept = Counts {
        replicas: count(old, "replicas"),
        updated: count(old, "updatedReplicas"),
        ready: count(old, "readyReplicas"),
        available: count(old, "availableReplicas"),
    };
    if obj["spec"]["paused"].as_bool() == Some(true) {
        return kept;
    }
    if ready {
        return Counts {
            replicas: want,
            updated: want,
            ready: want,
            available: want,
        };
    }
    let rolled = progressing_replicaset(old).is_some_and(|prev| prev != rs);
    Counts {
        replicas: if rolled {
            kept.replicas.max(want)
        } else {
            want
        },
        updated: if rolled { 0 } else { want },
        ready: kept.ready.min(want),
        available: kept.available.min(want),
    }
}

/// The ReplicaSet the deployment controller creates for the current template.
pub(crate) fn replicaset_for(deploy: &Value, revision: i64) -> Value {
    let meta = &deploy["metadata"];
    let hash = template_hash(&deploy["spec"]["template"]);
    let want = spec_replicas(deploy);
    let mut template = deploy["spec"]["template"].clone();
    template["metadata"]["labels"][POD_TEMPLATE_HASH] = hash.clone().into();
    let mut selector = deploy["spec"]["selector"].clone();
    selector["matchLabels"][POD_TEMPLATE_HASH] = hash.clone().into();
    let mut annotations = sim_annotations(deploy);
    annotations.insert(
        "deployment.kubernetes.io/desired-replicas".into(),
        want.to_string().into(),
    );
    annotations.insert(
        "deployment.kubernetes.io/max-replicas".into(),
        (want + max_surge(deploy, want)).to_string().into(),
    );
    annotations.insert(
        "deployment.kubernetes.io/revision".into(),
        revision.to_string().into(),
    );
    for (k, v) in sim_annotations(deploy) {
        template["metadata"]["annotations"][k] = v;
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": format!("{}-{hash}", name(deploy)),
            "namespace": meta["namespace"],
            "labels": template["metadata"]["labels"],
            "annotations": annotations,
            "ownerReferences": [owner_ref("apps/v1", "Deployment", deploy)],
        },
        "spec": {"replicas": want, "selector": selector, "template": template},
    })
}

/// The `sim.keelson.io/*` annotations of an object, passed on to what it creates.
pub(super) fn sim_annotations(obj: &Value) -> Map<String, Value> {
    obj["metadata"]["annotations"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| k.starts_with("sim.keelson.io/"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// A controller owner reference to `owner`.
pub(super) fn owner_ref(api_version: &str, kind: &str, owner: &Value) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true})
}

// ---------------------------------------------------------------------------------
// ReplicaSets, StatefulSets, DaemonSets.

/// The replicaset controller's status.
pub(crate) fn replicaset_status(obj: &Value, ready: bool) -> Value {
    let old = &obj["status"];
    let want = spec_replicas(obj);
    let (ready_n, available) = if ready {
        (want, want)
    } else {
        (
            count(old, "readyReplicas").min(want),
            count(old, "availableReplicas").min(want),
        )
    };
    let mut s = Map::new();
    s.insert("replicas".into(), want.into());
    put_count(&mut s, "fullyLabeledReplicas", want);
    put_count(&mut s, "readyReplicas", ready_n);
    put_count(&mut s, "availableReplicas", available);
    put_count(&mut s, "observedGeneration", generation(obj));
    Value::Object(s)
}

/// The statefulset controller's status; revisions are `<name>-<template hash>`.
pub(crate) fn statefulset_status(obj: &Value, ready: bool) -> Value {
    let old = &obj["status"];
    let want = spec_replicas(obj);
    let revision = format!("{}-{}", name(obj), template_hash(&obj["spec"]["template"]));
    let old_update = old["updateRevision"].as_str();
    let (current_rev, ready_n, current, updated, available) = if ready {
        (revision.clone(), want, want, want, want)
    } else if old_update.is_some_and(|r| r != revision) {
        let current_rev = old["currentRevision"]
            .as_str()
            .unwrap_or(&revision)
            .to_owned();
        (
            current_rev,
            count(old, "readyReplicas").min(want),
            count(old, "currentReplicas").min(want),
            0,
            count(old, "availableReplicas").min(want),
        )
    } else if old_update.is_none() {
        (revision.clone(), 0, 0, 0, 0)
    } else {
        let m = |k: &str| count(old, k).min(want);
        (
            revision.clone(),
            m("readyReplicas"),
            m("currentReplicas"),
            m("updatedReplicas"),
            m("availableReplicas"),
        )
    };
    let mut s = Map::new();
    put_count(&mut s, "observedGeneration", generation(obj));
    s.insert("replicas".into(), want.into());
    put_count(&mut s, "readyReplicas", ready_n);
    put_count(&mut s, "currentReplicas", current);
    put_count(&mut s, "updatedReplicas", updated);
    s.insert("currentRevision".into(), current_rev.into());
    s.insert("updateRevision".into(), revision.into());
    s.insert("collisionCount".into(), 0.into());
    s.insert("availableReplicas".into(), available.into());
    Value::Object(s)
}

/// The daemonset controller's status on a cluster of one node.
pub(crate) fn daemonset_status(obj: &Value, ready: bool) -> Value {
    let old = &obj["status"];
    let (number_ready, updated, available) = if ready {
        (1, 1, 1)
    } else {
        (
            count(old, "numberReady").min(1),
            0,
            count(old, "numberAvailable").min(1),
        )
    };
    let mut s = Map::new();
    s.insert("currentNumberScheduled".into(), 1.into());
    s.insert("numberMisscheduled".into(), 0.into());
    s.insert("desiredNumberScheduled".into(), 1.into());
    s.insert("numberReady".into(), number_ready.into());
    put_count(&mut s, "observedGeneration", generation(obj));
    put_count(&mut s, "updatedNumberScheduled", updated);
    put_count(&mut s, "numberAvailable", available);
    put_count(&mut s, "numberUnavailable", 1 - available);
    Value::Object(s)
}

/// The Pod the replicaset controller creates for a ReplicaSet.
pub(crate) fn replicaset_pod(rs: &Value) -> Value {
    let template = &rs["spec"]["template"];
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": format!("{}-", name(rs)),
            "namespace": rs["metadata"]["namespace"],
            "labels": template["metadata"]["labels"],
            "annotations": template["metadata"]["annotations"],
            "ownerReferences": [owner_ref("apps/v1", "ReplicaSet", rs)],
        },
        "spec": template["spec"],
    })
}

/// A JSON merge patch turning `old` into `new` (removed keys become `null`).
pub(crate) fn merge_diff(old: &Value, new: &Value) -> Value {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut patch = Map::new();
            for (k, v) in n {
                match o.get(k) {
                    Some(ov) if ov == v => {}
                    Some(ov) if ov.is_object() && v.is_object() => {
                        patch.insert(k.clone(), merge_diff(ov, v));
                    }
                    _ => {
                        patch.insert(k.clone(), v.clone());
                    }
                }
            }
            for k in o.keys() {
                if !n.contains_key(k) {
                    patch.insert(k.clone(), Value::Null);
                }
            }
            Value::Object(patch)
        }
        _ => new.clone(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const T0: &str = "2024-01-01T00:00:00Z";
    const T1: &str = "2024-01-01T00:00:05Z";

    fn deployment(replicas: i64, image: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "uid": "u-web", "generation": 1},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": image}]}}}})
    }

    fn with_status(mut obj: Value, status: Value) -> Value {
        obj["status"] = status;
        obj
    }

    #[test]
    fn template_hash_is_stable_safe_and_order_insensitive() {
        let a = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"x": [1, 2]}});
        let b = json!({"spec": {"x": [1, 2]}, "metadata": {"labels": {"b": "2", "a": "1"}}});
        let h = template_hash(&a);
        assert_eq!(h, template_hash(&b));
        assert!(!h.is_empty() && h.len() <= 10, "{h}");
        assert!(
            h.bytes().all(|c| b"456789bcdf".contains(&c)),
            "decimal digits map to 456789bcdf: {h}"
        );
        assert_ne!(h, template_hash(&json!({"spec": {"x": [2, 1]}})));
    }

    #[test]
    fn deployment_goes_progressing_then_available() {
        let d = deployment(3, "nginx:1");
        let rs = replicaset_name(&d);
        let progress = deployment_status(&d, T0, false);
        assert_eq!(progress["observedGeneration"], 1);
        assert_eq!(progress["replicas"], 3);
        assert_eq!(progress["updatedReplicas"], 3);
        assert_eq!(progress["unavailableReplicas"], 3);
        assert!(progress.get("availableReplicas").is_none());
        assert_eq!(progress["conditions"][0]["type"], "Available");
        assert_eq!(progress["conditions"][0]["status"], "False");
        assert_eq!(progress["conditions"][1]["reason"], "ReplicaSetUpdated");
        assert_eq!(
            progress["conditions"][1]["message"],
            format!("ReplicaSet \"{rs}\" is progressing.")
        );

        let d = with_status(d, progress);
        let done = deployment_status(&d, T1, true);
        assert_eq!(done["availableReplicas"], 3);
        assert_eq!(done["readyReplicas"], 3);
        assert!(done.get("unavailableReplicas").is_none());
        let available = &done["conditions"][0];
        assert_eq!(
            (available["status"].as_str(), available["reason"].as_str()),
            (Some("True"), Some("MinimumReplicasAvailable"))
        );
        assert_eq!(available["message"], "Deployment has minimum availability.");
        assert_eq!(available["lastTransitionTime"], T1);
        let progressing = &done["conditions"][1];
        assert_eq!(progressing["reason"], "NewReplicaSetAvailable");
        assert_eq!(
            progressing["message"],
            format!("ReplicaSet \"{rs}\" has successfully progressed.")
        );
        assert_eq!(progressing["lastUpdateTime"], T1);
        assert_eq!(
            progressing["lastTransitionTime"], T0,
            "status stayed True, so the transition time is kept"
        );

        // The ready status is a fixed point: recomputing it later changes nothing.
        let d = with_status(d, done.clone());
        assert_eq!(deployment_status(&d, "2030-01-01T00:00:00Z", true), done);
    }

    #[test]
    fn deployment_template_change_restarts_rollout() {
        let d = deployment(2, "nginx:1");
        let done = deployment_status(
            &with_status(d.clone(), deployment_status(&d, T0, false)),
            T0,
            true,
        );
        let mut changed = with_status(deployment(2, "nginx:2"), done);
        changed["metadata"]["generation"] = 2.into();
        let progress = deployment_status(&changed, T1, false);
        assert_eq!(progress["observedGeneration"], 2);
        assert!(
            progress.get("updatedReplicas").is_none(),
            "no pod of the new template is up yet"
        );
        assert_eq!(progress["availableReplicas"], 2, "old pods stay available");
        assert_eq!(progress["conditions"][0]["status"], "True");
        assert!(
            progress["conditions"][1]["message"]
                .as_str()
                .unwrap()
                .contains(&replicaset_name(&changed))
        );
    }

    #[test]
    fn paused_deployment_reports_paused() {
        let mut d = deployment(1, "nginx:1");
        d["spec"]["paused"] = true.into();
        assert!(held(Kind::Deployment, &d));
        let s = deployment_status(&d, T0, true);
        assert_eq!(s["conditions"][1]["status"], "Unknown");
        assert_eq!(s["conditions"][1]["reason"], "DeploymentPaused");
        assert!(s.get("availableReplicas").is_none());
        assert_eq!(deployment_status(&with_status(d, s.clone()), T1, true), s);
    }

    #[test]
    fn max_unavailable_follows_strategy() {
        let mut d = deployment(4, "x");
        assert_eq!(max_unavailable(&d, 4), 1);
        d["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "50%"}});
        assert_eq!(max_unavailable(&d, 4), 0);
        assert_eq!(max_surge(&d, 4), 2);
        d["spec"]["strategy"] = json!({"type": "Recreate"});
        assert_eq!(max_unavailable(&d, 4), 0);
    }

    #[test]
    fn replicaset_for_carries_hash_owner_and_revision() {
        let d = deployment(2, "nginx:1");
        let rs = replicaset_for(&d, 3);
        let hash = template_hash(&d["spec"]["template"]);
        assert_eq!(rs["metadata"]["name"], format!("web-{hash}"));
        assert_eq!(rs["metadata"]["labels"][POD_TEMPLATE_HASH], hash);
        assert_eq!(
            rs["spec"]["selector"]["matchLabels"][POD_TEMPLATE_HASH],
            hash
        );
        assert_eq!(rs["spec"]["template"]["metadata"]["labels"]["app"], "web");
        assert_eq!(
            rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
            "3"
        );
        let owner = &rs["metadata"]["ownerReferences"][0];
        assert_eq!(
            (owner["kind"].as_str(), owner["uid"].as_str()),
            (Some("Deployment"), Some("u-web"))
        );
        assert_eq!(
            (
                owner["controller"].as_bool(),
                owner["blockOwnerDeletion"].as_bool()
            ),
            (Some(true), Some(true))
        );
        let pod = replicaset_pod(&with_status(rs, json!({})));
        assert_eq!(pod["metadata"]["generateName"], format!("web-{hash}-"));
        assert_eq!(pod["metadata"]["labels"][POD_TEMPLATE_HASH], hash);
        assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");
    }

    #[test]
    fn statefulset_daemonset_replicaset_statuses() {
        let mut sts = deployment(2, "db:1");
        sts["kind"] = "StatefulSet".into();
        let progress = statefulset_status(&sts, false);
        assert_eq!(progress["replicas"], 2);
        assert!(progress.get("readyReplicas").is_none());
        let done = statefulset_status(&with_status(sts.clone(), progress), true);
        assert_eq!(done["readyReplicas"], 2);
        assert_eq!(done["availableReplicas"], 2);
        assert_eq!(done["currentRevision"], done["updateRevision"]);
        assert_eq!(done["observedGeneration"], 1);

        let ds = deployment(1, "agent:1");
        let progress = daemonset_status(&ds, false);
        assert_eq!(progress["numberUnavailable"], 1);
        let done = daemonset_status(&with_status(ds, progress), true);
        for k in [
            "desiredNumberScheduled",
            "currentNumberScheduled",
            "numberReady",
            "numberAvailable",
            "updatedNumberScheduled",
        ] {
            assert_eq!(done[k], 1, "{k}");
        }
        assert!(done.get("numberUnavailable").is_none());

        let rs = replicaset_status(&deployment(3, "x"), true);
        assert_eq!(
            (
                rs["replicas"].as_i64(),
                rs["readyReplicas"].as_i64(),
                rs["availableReplicas"].as_i64()
            ),
            (Some(3), Some(3), Some(3))
        );
        let zero = replicaset_status(&deployment(0, "x"), true);
        assert_eq!(zero, json!({"replicas": 0, "observedGeneration": 1}));
    }

    #[test]
    fn annotations_override_delay_and_hold() {
        let d = with_status(deployment(1, "x"), json!({}));
        let mut annotated = d.clone();
        annotated["metadata"]["annotations"] =
            json!({ANN_READY_DELAY: "250", ANN_NEVER_READY: "true"});
        assert_eq!(delay_override_ms(&annotated), Some(250));
        assert!(held(Kind::Deployment, &annotated));
        assert_eq!(delay_override_ms(&d), None);
        assert!(!held(Kind::Deployment, &d));
    }

    #[test]
    fn tokens_follow_generation_only_for_generational_kinds() {
        let d = deployment(1, "x");
        assert_eq!(token(Kind::Deployment, &d), "u-web/1");
        assert_eq!(
            token(
                Kind::Pod,
                &json!({"metadata": {"uid": "u-pod", "generation": 3}})
            ),
            "u-pod"
        );
        assert_eq!(
            Kind::of(&GroupResource::new("apps", "deployments")),
            Some(Kind::Deployment)
        );
        assert_eq!(Kind::of(&GroupResource::new("", "configmaps")), None);
        for kind in Kind::ALL {
            assert_eq!(Kind::of(&kind.resource()), Some(kind));
        }
    }

    #[test]
    fn merge_diff_round_trips_through_merge_patch() {
        let old = json!({"a": 1, "s": {"x": 1, "y": {"z": 2}, "gone": true}, "l": [1]});
        let new = json!({"a": 1, "s": {"x": 2, "y": {}}, "l": [{"k": null}], "added": "v"});
        let patch = merge_diff(&old, &new);
        assert_eq!(
            patch,
            json!({"s": {"x": 2, "y": {"z": null}, "gone": null}, "l": [{"k": null}], "added": "v"})
        );
        let mut doc = old.clone();
        json_patch::merge(&mut doc, &patch);
        assert_eq!(doc, new);
    }
}
