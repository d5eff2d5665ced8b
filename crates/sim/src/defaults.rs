//! Defaulting of objects on create and update as a v1.35 kube-apiserver does it: the
//! `SetDefaults_*` functions of the built-in API groups, the strategy hooks that fill
//! fields on create (Job selectors, Namespace finalizers, Pod phase and QoS class, CRD
//! status) and Service ClusterIP/NodePort allocation, so that diffs meet the same noise
//! they meet against a real cluster.
//!
//! Not done here (admission plugins or controllers, not defaulting): the ServiceAccount
//! plugin (`serviceAccountName`, the `kube-api-access-*` projected volume), default
//! tolerations, the default StorageClass, LimitRange defaults. The Priority plugin's
//! `priority: 0` and `preemptionPolicy` on Pods *is* applied since it is always on.
//! HPA `behavior` defaults are applied only when `behavior` is given, as upstream does.
//!
//! This file dispatches by kind and holds the workload and small core kinds; pods and pod
//! templates are defaulted in `defaults::pod`, Services and their ClusterIP/NodePort
//! allocation ([`ServiceAllocator`]) in `defaults::service`.

mod pod;
mod service;

pub use service::ServiceAllocator;

use crate::resources::ResourceType;
use pod::{pod, pod_template, template_in};
use serde_json::{Map, Value, json};
use service::service;

/// An object the API server would reject while defaulting it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DefaultingError {
    /// A field that must be an object (or list) has another JSON type.
    #[error("{field}: Invalid value: must be {expected}")]
    WrongType {
        field: String,
        expected: &'static str,
    },
    /// A field value the defaulting depends on is invalid.
    #[error("{field}: Invalid value: {value}: {reason}")]
    InvalidValue {
        field: String,
        value: String,
        reason: String,
    },
    /// A field not allowed for this kind of object.
    #[error("{field}: Forbidden: {reason}")]
    Forbidden { field: String, reason: String },
    /// No ClusterIP or NodePort left to allocate.
    #[error("{field}: Internal error: failed to allocate a {what}: range is full")]
    RangeFull { field: String, what: &'static str },
}

/// Applies the defaults of `rt`'s kind to `obj` (which must already carry `metadata.name`
/// and, for Jobs, `metadata.uid`).
pub fn apply_defaults(
    rt: &ResourceType,
    obj: &mut Value,
    alloc: &mut ServiceAllocator,
) -> Result<(), DefaultingError> {
    if !obj.is_object() {
        return Err(wrong("", "an object"));
    }
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => pod(obj),
        ("", "PodTemplate") => pod_template(obj),
        ("", "ReplicationController") => replication_controller(obj),
        ("", "Service") => service(obj, alloc),
        ("", "Namespace") => namespace(obj),
        ("", "Secret") => secret(obj),
        ("", "PersistentVolumeClaim") => pvc(obj, ""),
        ("", "PersistentVolume") => persistent_volume(obj),
        ("", "Endpoints") => endpoints(obj),
        ("apps", "Deployment") => deployment(obj),
        ("apps", "StatefulSet") => stateful_set(obj),
        ("apps", "DaemonSet") => daemon_set(obj),
        ("apps", "ReplicaSet") => replica_set(obj),
        ("batch", "Job") => job(obj),
        ("batch", "CronJob") => cron_job(obj),
        ("networking.k8s.io", "NetworkPolicy") => network_policy(obj),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => role_binding(obj),
        ("storage.k8s.io", "StorageClass") => storage_class(obj),
        ("autoscaling", "HorizontalPodAutoscaler") => hpa(obj, &rt.version),
        ("discovery.k8s.io", "EndpointSlice") => endpoint_slice(obj),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(obj),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------
// JSON helpers.

fn wrong(field: &str, expected: &'static str) -> DefaultingError {
    DefaultingError::WrongType {
        field: field.to_owned(),
        expected,
    }
}

/// The object at `key` of `parent`, created empty when absent or null.
fn obj_at<'v>(
    parent: &'v mut Value,
    key: &str,
    field: &str,
) -> Result<&'v mut Map<String, Value>, DefaultingError> {
    let Value::Object(map) = parent else {
        return Err(wrong(field, "an object"));
    };
    let slot = map.entry(key.to_owned()).or_insert_with(|| json!({}));
    if slot.is_null() {
        *slot = json!({});
    }
    slot.as_object_mut()
        .ok_or_else(|| wrong(&join(field, key), "an object"))
}

/// The object at `key` if present (not null); an error if it is not an object.
fn opt_obj<'v>(
    parent: &'v mut Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Option<&'v mut Map<String, Value>>, DefaultingError> {
    match parent.get_mut(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(wrong(&join(field, key), "an object")),
    }
}

/// The list at `key` if present (not null); an error if it is not a list.
fn opt_list<'v>(
    parent: &'v mut Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Option<&'v mut Vec<Value>>, DefaultingError> {
    match parent.get_mut(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(_) => Err(wrong(&join(field, key), "a list")),
    }
}

/// Calls `f` on each item of the list at `key` (which must be objects).
fn each_item(
    parent: &mut Map<String, Value>,
    key: &str,
    field: &str,
    mut f: impl FnMut(&mut Map<String, Value>, &str) -> Result<(), DefaultingError>,
) -> Result<(), DefaultingError> {
    let list_field = join(field, key);
    if let Some(items) = opt_list(parent, key, field)? {
        for (i, item) in items.iter_mut().enumerate() {
            let item_field = format!("{list_field}[{i}]");
            let map = item
                .as_object_mut()
                .ok_or_else(|| wrong(&item_field, "an object"))?;
            f(map, &item_field)?;
        }
    }
    Ok(())
}

/// Sets `key` to `value` when absent or null.
fn default(map: &mut Map<String, Value>, key: &str, value: Value) {
    match map.get(key) {
        None | Some(Value::Null) => {
            map.insert(key.to_owned(), value);
        }
        Some(_) => {}
    }
}

/// Sets `key` when absent, null or the empty string (Go's zero value for strings).
fn default_str(map: &mut Map<String, Value>, key: &str, value: &str) {
    match map.get(key) {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.is_empty() => {}
        Some(_) => return,
    }
    map.insert(key.to_owned(), Value::String(value.to_owned()));
}

fn str_of<'v>(map: &'v Map<String, Value>, key: &str) -> &'v str {
    map.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn join(field: &str, key: &str) -> String {
    if field.is_empty() {
        key.to_owned()
    } else {
        format!("{field}.{key}")
    }
}

fn spec(obj: &mut Value) -> Result<&mut Map<String, Value>, DefaultingError> {
    obj_at(obj, "spec", "")
}

// ---------------------------------------------------------------------------------
// Workloads.

fn deployment(obj: &mut Value) -> Result<(), DefaultingError> {
    let spec = spec(obj)?;
    default(spec, "replicas", json!(1));
    let strategy = obj_at_map(spec, "strategy", "spec")?;
    default_str(strategy, "type", "RollingUpdate");
    if str_of(strategy, "type") == "RollingUpdate" {
        let ru = obj_at_map(strategy, "rollingUpdate", "spec.strategy")?;
        default(ru, "maxUnavailable", json!("25%"));
        default(ru, "maxSurge", json!("25%"));
    }
    default(spec, "revisionHistoryLimit", json!(10));
    default(spec, "progressDeadlineSeconds", json!(600));
    template_in(spec, "spec")?;
    default_status(obj, json!({}))
}

fn stateful_set(obj: &mut Value) -> Result<(), DefaultingError> {
    let spec = spec(obj)?;
    default_str(spec, "podManagementPolicy", "OrderedReady");
    let strategy = obj_at_map(spec, "updateStrategy", "spec")?;
    if str_of(strategy, "type").is_empty() {
        strategy.insert("type".into(), json!("RollingUpdate"));
        default(strategy, "rollingUpdate", json!({}));
    }
    if str_of(strategy, "type") == "RollingUpdate"
        && let Some(ru) = opt_obj(strategy, "rollingUpdate", "spec.updateStrategy")?
    {
        default(ru, "partition", json!(0));
        // MaxUnavailableStatefulSet is beta and on by default since v1.35.
        default(ru, "maxUnavailable", json!(1));
    }
    let retention = obj_at_map(spec, "persistentVolumeClaimRetentionPolicy", "spec")?;
    default_str(retention, "whenDeleted", "Retain");
    default_str(retention, "whenScaled", "Retain");
    default(spec, "replicas", json!(1));
    default(spec, "revisionHistoryLimit", json!(10));
    each_item(spec, "volumeClaimTemplates", "spec", |pvc, field| {
        let mut value = Value::Object(std::mem::take(pvc));
        let result = pvc_value(&mut value, field);
        if let Value::Object(m) = value {
            *pvc = m;
        }
        result
    })?;
    template_in(spec, "spec")?;
    default_status(obj, json!({"replicas": 0, "availableReplicas": 0}))
}

fn daemon_set(obj: &mut Value) -> Result<(), DefaultingError> {
    let spec = spec(obj)?;
    let strategy = obj_at_map(spec, "updateStrategy", "spec")?;
    default_str(strategy, "type", "RollingUpdate");
    if str_of(strategy, "type") == "RollingUpdate" {
        let ru = obj_at_map(strategy, "rollingUpdate", "spec.updateStrategy")?;
        default(ru, "maxUnavailable", json!(1));
        default(ru, "maxSurge", json!(0));
    }
    default(spec, "revisionHistoryLimit", json!(10));
    template_in(spec, "spec")?;
    default_status(
        obj,
        json!({"currentNumberScheduled": 0, "numberMisscheduled": 0,
            "desiredNumberScheduled": 0, "numberReady": 0}),
    )
}

fn replica_set(obj: &mut Value) -> Result<(), DefaultingError> {
    let spec = spec(obj)?;
    default(spec, "replicas", json!(1));
    template_in(spec, "spec")?;
    default_status(obj, json!({"replicas": 0}))
}

fn replication_controller(obj: &mut Value) -> Result<(), DefaultingError> {
    let spec = spec(obj)?;
    let template_labels = spec
        .get("template")
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .filter(|l| l.as_object().is_some_and(|l| !l.is_empty()))
        .cloned();
    if let Some(labels) = &template_labels
        && spec
            .get("selector")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty)
    {
        spec.insert("selector".into(), labels.clone());
    }
    default(spec, "replicas", json!(1));
    template_in(spec, "spec")?;
    let metadata = obj_at(obj, "metadata", "")?;
    if let Some(labels) = template_labels
        && metadata
            .get("labels")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty)
    {
        metadata.insert("labels".into(), labels);
    }
    default_status(obj, json!({"replicas": 0}))
}

fn job(obj: &mut Value) -> Result<(), DefaultingError> {
    let uid = obj
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let spec = spec(obj)?;
    let unset = |s: &Map<String, Value>, k: &str| s.get(k).is_none_or(Value::is_null);
    if unset(spec, "completions") && unset(spec, "parallelism") {
        spec.insert("completions".into(), json!(1));
    }
    default(spec, "parallelism", json!(1));
    let backoff = if unset(spec, "backoffLimitPerIndex") {
        6
    } else {
        i64::from(i32::MAX)
    };
    default(spec, "backoffLimit", json!(backoff));
    default(spec, "completionMode", json!("NonIndexed"));
    default(spec, "suspend", json!(false));
    let replacement = if unset(spec, "podFailurePolicy") {
        "TerminatingOrFailed"
    } else {
        "Failed"
    };
    default(spec, "podReplacementPolicy", json!(replacement));
    if let Some(policy) = opt_obj(spec, "podFailurePolicy", "spec")? {
        each_item(policy, "rules", "spec.podFailurePolicy", |rule, field| {
            each_item(rule, "onPodConditions", field, |pattern, _| {
                default_str(pattern, "status", "True");
                Ok(())
            })
        })?;
    }
    if spec.get("manualSelector") != Some(&Value::Bool(true)) && !uid.is_empty() {
        generate_job_selector(spec, &uid, &name)?;
    }
    template_in(spec, "spec")?;
    let template_labels = obj.pointer("/spec/template/metadata/labels").cloned();
    let metadata = obj_at(obj, "metadata", "")?;
    if let Some(labels) = template_labels
        && metadata
            .get("labels")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty)
    {
        metadata.insert("labels".into(), labels);
    }
    default_status(obj, json!({}))
}

/// The Job strategy's generated selector and pod template labels.
fn generate_job_selector(
    spec: &mut Map<String, Value>,
    uid: &str,
    name: &str,
) -> Result<(), DefaultingError> {
    let template = obj_at_map(spec, "template", "spec")?;
    let metadata = obj_at_map(template, "metadata", "spec.template")?;
    let labels = obj_at_map(metadata, "labels", "spec.template.metadata")?;
    for (key, value) in [
        ("batch.kubernetes.io/controller-uid", uid),
        ("batch.kubernetes.io/job-name", name),
        ("controller-uid", uid),
        ("job-name", name),
    ] {
        labels.insert(key.into(), json!(value));
    }
    let selector = obj_at_map(spec, "selector", "spec")?;
    let match_labels = obj_at_map(selector, "matchLabels", "spec.selector")?;
    match_labels.insert("batch.kubernetes.io/controller-uid".into(), json!(uid));
    Ok(())
}

fn cron_job(obj: &mut Value) -> Result<(), DefaultingError> {
    let spec = spec(obj)?;
    default_str(spec, "concurrencyPolicy", "Allow");
    default(spec, "suspend", json!(false));
    default(spec, "successfulJobsHistoryLimit", json!(3));
    default(spec, "failedJobsHistoryLimit", json!(1));
    let job_template = obj_at_map(spec, "jobTemplate", "spec")?;
    let job_spec = obj_at_map(job_template, "spec", "spec.jobTemplate")?;
    template_in(job_spec, "spec.jobTemplate.spec")?;
    default_status(obj, json!({}))
}

/// `obj_at` for a map parent.
fn obj_at_map<'v>(
    parent: &'v mut Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<&'v mut Map<String, Value>, DefaultingError> {
    let slot = parent.entry(key.to_owned()).or_insert_with(|| json!({}));
    if slot.is_null() {
        *slot = json!({});
    }
    slot.as_object_mut()
        .ok_or_else(|| wrong(&join(field, key), "an object"))
}

/// Fills the zero values a freshly created object's `status` serializes with.
fn default_status(obj: &mut Value, zero: Value) -> Result<(), DefaultingError> {
    let status = obj_at(obj, "status", "")?;
    if let Value::Object(zero) = zero {
        for (k, v) in zero {
            default(status, &k, v);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Core kinds.

fn namespace(obj: &mut Value) -> Result<(), DefaultingError> {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let metadata = obj_at(obj, "metadata", "")?;
    let labels = obj_at_map(metadata, "labels", "metadata")?;
    labels.insert("kubernetes.io/metadata.name".into(), json!(name));
    let spec = spec(obj)?;
    let finalizers = spec.entry("finalizers").or_insert_with(|| json!([]));
    if let Value::Array(list) = finalizers
        && !list.iter().any(|f| f == "kubernetes")
    {
        list.push(json!("kubernetes"));
    }
    let status = obj_at(obj, "status", "")?;
    default_str(status, "phase", "Active");
    Ok(())
}

fn secret(obj: &mut Value) -> Result<(), DefaultingError> {
    use base64::Engine as _;
    let Value::Object(map) = obj else {
        return Err(wrong("", "an object"));
    };
    default_str(map, "type", "Opaque");
    let Some(string_data) = map.shift_remove("stringData") else {
        return Ok(());
    };
    let string_data = match string_data {
        Value::Object(m) => m,
        Value::Null => return Ok(()),
        _ => return Err(wrong("stringData", "an object")),
    };
    let data = obj_at_map(map, "data", "")?;
    for (key, value) in string_data {
        let Value::String(s) = value else {
            return Err(wrong(&format!("stringData[{key}]"), "a string"));
        };
        data.insert(
            key,
            json!(base64::engine::general_purpose::STANDARD.encode(s)),
        );
    }
    Ok(())
}

fn pvc(obj: &mut Value, field: &str) -> Result<(), DefaultingError> {
    pvc_value(obj, field)
}

/// PVC defaults, also used for StatefulSet claim templates and ephemeral volumes.
fn pvc_value(obj: &mut Value, field: &str) -> Result<(), DefaultingError> {
    let spec = obj_at(obj, "spec", field)?;
    default_str(spec, "volumeMode", "Filesystem");
    let status = obj_at(obj, "status", field)?;
    default_str(status, "phase", "Pending");
    Ok(())
}

fn persistent_volume(obj: &mut Value) -> Result<(), DefaultingError> {
    let spec = spec(obj)?;
    default_str(spec, "persistentVolumeReclaimPolicy", "Retain");
    default_str(spec, "volumeMode", "Filesystem");
    let status = obj_at(obj, "status", "")?;
    default_str(status, "phase", "Pending");
    Ok(())
}

fn endpoints(obj: &mut Value) -> Result<(), DefaultingError> {
    let Value::Object(map) = obj else {
        return Err(wrong("", "an object"));
    };
    each_item(map, "subsets", "", |subset, field| {
        each_item(subset, "ports", field, |port, _| {
            default_str(port, "protocol", "TCP");
            Ok(())
        })
    })
}

fn endpoint_slice(obj: &mut Value) -> Result<(), DefaultingError> {
    let Value::Object(map) = obj else {
        return Err(wrong("", "an object"));
    };
    each_item(map, "ports", "", |port, _| {
        default(port, "name", json!(""));
        default_str(port, "protocol", "TCP");
        Ok(())
    })
}

fn network_policy(obj: &mut Value) -> Result<(), DefaultingError> {
    let spec = spec(obj)?;
    for direction in ["ingress", "egress"] {
        each_item(spec, direction, "spec", |rule, field| {
            each_item(rule, "ports", field, |port, _| {
                default_str(port, "protocol", "TCP");
                Ok(())
            })
        })?;
    }
    let has_types = spec
        .get("policyTypes")
        .and_then(Value::as_array)
        .is_some_and(|t| !t.is_empty());
    if !has_types {
        let mut types = vec![json!("Ingress")];
        if spec
            .get("egress")
            .and_then(Value::as_array)
            .is_some_and(|e| !e.is_empty())
        {
            types.push(json!("Egress"));
        }
        spec.insert("policyTypes".into(), Value::Array(types));
    }
    Ok(())
}

fn role_binding(obj: &mut Value) -> Result<(), DefaultingError> {
    let Value::Object(map) = obj else {
        return Err(wrong("", "an object"));
    };
    each_item(map, "subjects", "", |subject, _| {
        if str_of(subject, "apiGroup").is_empty() {
            let group = match str_of(subject, "kind") {
                "ServiceAccount" => "",
                "User" | "Group" => "rbac.authorization.k8s.io",
                _ => return Ok(()),
            };
            subject.insert("apiGroup".into(), json!(group));
        }
        Ok(())
    })
}

fn storage_class(obj: &mut Value) -> Result<(), DefaultingError> {
    let Value::Object(map) = obj else {
        return Err(wrong("", "an object"));
    };
    default_str(map, "reclaimPolicy", "Delete");
    default_str(map, "volumeBindingMode", "Immediate");
    Ok(())
}

fn hpa(obj: &mut Value, version: &str) -> Result<(), DefaultingError> {
    let spec = spec(obj)?;
    default(spec, "minReplicas", json!(1));
    if version != "v2" {
        return Ok(());
    }
    if spec
        .get("metrics")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        spec.insert(
            "metrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 80}}}]),
        );
    }
    if let Some(behavior) = opt_obj(spec, "behavior", "spec")? {
        let up = obj_at_map(behavior, "scaleUp", "spec.behavior")?;
        default(up, "stabilizationWindowSeconds", json!(0));
        default_str(up, "selectPolicy", "Max");
        default(
            up,
            "policies",
            json!([{"type": "Pods", "value": 4, "periodSeconds": 15},
                {"type": "Percent", "value": 100, "periodSeconds": 15}]),
        );
        let down = obj_at_map(behavior, "scaleDown", "spec.behavior")?;
        default(down, "stabilizationWindowSeconds", json!(300));
        default_str(down, "selectPolicy", "Max");
        default(
            down,
            "policies",
            json!([{"type": "Percent", "value": 100, "periodSeconds": 15}]),
        );
    }
    Ok(())
}

fn crd(obj: &mut Value) -> Result<(), DefaultingError> {
    let created = obj
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let spec = spec(obj)?;
    let names = obj_at_map(spec, "names", "spec")?;
    let kind = str_of(names, "kind").to_owned();
    default_str(names, "singular", &kind.to_ascii_lowercase());
    if !kind.is_empty() {
        default_str(names, "listKind", &format!("{kind}List"));
    }
    let accepted = Value::Object(names.clone());
    let conversion = obj_at_map(spec, "conversion", "spec")?;
    default_str(conversion, "strategy", "None");
    let storage: Vec<Value> = spec
        .get("versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage") == Some(&Value::Bool(true)))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    let time =
        created.unwrap_or_else(|| chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string());
    let status = obj_at(obj, "status", "")?;
    status.insert("acceptedNames".into(), accepted);
    let has_conditions = status
        .get("conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| !c.is_empty());
    if !has_conditions {
        status.insert(
            "conditions".into(),
            json!([
                {"type": "NamesAccepted", "status": "True", "lastTransitionTime": time,
                    "reason": "NoConflicts", "message": "no conflicts found"},
                {"type": "Established", "status": "True", "lastTransitionTime": time,
                    "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
            ]),
        );
    }
    let stored = status.entry("storedVersions").or_insert_with(|| json!([]));
    if let Value::Array(list) = stored {
        for v in storage {
            if !list.contains(&v) {
                list.push(v);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::resources::builtin_types;

    pub(super) fn rt(group: &str, kind: &str) -> ResourceType {
        let found = builtin_types()
            .into_iter()
            .find(|t| t.group == group && t.kind == kind);
        (*found.unwrap()).clone()
    }

    pub(super) fn defaulted(group: &str, kind: &str, mut obj: Value) -> Value {
        apply_defaults(&rt(group, kind), &mut obj, &mut ServiceAllocator::new()).unwrap();
        obj
    }

    pub(super) fn web_template() -> Value {
        json!({"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}]}})
    }

    #[test]
    fn deployment_gets_the_real_defaults() {
        let d = defaulted(
            "apps",
            "Deployment",
            json!({"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}},
                "template": web_template()}}),
        );
        let spec = &d["spec"];
        assert_eq!(spec["replicas"], 1);
        assert_eq!(
            spec["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(spec["progressDeadlineSeconds"], 600);
        let pod = &spec["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Always");
        assert_eq!(pod["dnsPolicy"], "ClusterFirst");
        assert_eq!(pod["terminationGracePeriodSeconds"], 30);
        assert_eq!(pod["schedulerName"], "default-scheduler");
        assert_eq!(pod["securityContext"], json!({}));
        assert!(
            pod.get("enableServiceLinks").is_none(),
            "templates do not get enableServiceLinks"
        );
        assert_eq!(
            pod["containers"][0],
            json!({"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "imagePullPolicy": "IfNotPresent", "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File", "resources": {}})
        );
        assert_eq!(d["status"], json!({}));
        let recreate = defaulted(
            "apps",
            "Deployment",
            json!({"spec": {"strategy": {"type": "Recreate"}, "template": {}}}),
        );
        assert_eq!(recreate["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn defaulting_is_idempotent_and_keeps_user_values() {
        let obj =
            json!({"spec": {"replicas": 0, "revisionHistoryLimit": 2, "template": web_template()}});
        let once = defaulted("apps", "Deployment", obj);
        assert_eq!(once["spec"]["replicas"], 0);
        assert_eq!(once["spec"]["revisionHistoryLimit"], 2);
        let twice = defaulted("apps", "Deployment", once.clone());
        assert_eq!(once, twice);
    }

    #[test]
    fn stateful_set_and_daemon_set() {
        let s = defaulted(
            "apps",
            "StatefulSet",
            json!({"spec": {"template": web_template(), "volumeClaimTemplates": [{"metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"]}}]}}),
        );
        let spec = &s["spec"];
        assert_eq!(spec["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            spec["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 1}})
        );
        assert_eq!(
            spec["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        assert_eq!(
            spec["volumeClaimTemplates"][0]["spec"]["volumeMode"],
            "Filesystem"
        );
        assert_eq!(
            spec["volumeClaimTemplates"][0]["status"],
            json!({"phase": "Pending"})
        );
        assert_eq!(s["status"], json!({"replicas": 0, "availableReplicas": 0}));
        let d = defaulted(
            "apps",
            "DaemonSet",
            json!({"spec": {"template": web_template()}}),
        );
        assert_eq!(
            d["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        );
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        let r = defaulted(
            "apps",
            "ReplicaSet",
            json!({"spec": {"template": web_template()}}),
        );
        assert_eq!(r["spec"]["replicas"], 1);
    }

    #[test]
    fn job_gets_selector_labels_and_defaults() {
        let mut t = web_template();
        t["spec"]["restartPolicy"] = json!("Never");
        let j = defaulted(
            "batch",
            "Job",
            json!({"metadata": {"name": "pi", "uid": "u-1"}, "spec": {"template": t}}),
        );
        let spec = &j["spec"];
        for (k, v) in [
            ("parallelism", json!(1)),
            ("completions", json!(1)),
            ("backoffLimit", json!(6)),
            ("completionMode", json!("NonIndexed")),
            ("suspend", json!(false)),
            ("podReplacementPolicy", json!("TerminatingOrFailed")),
        ] {
            assert_eq!(spec[k], v, "{k}");
        }
        assert!(spec.get("manualSelector").is_none());
        assert_eq!(
            spec["selector"],
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}})
        );
        let labels = &spec["template"]["metadata"]["labels"];
        assert_eq!(labels["batch.kubernetes.io/job-name"], "pi");
        assert_eq!(labels["controller-uid"], "u-1");
        assert_eq!(labels["job-name"], "pi");
        assert_eq!(labels["app"], "web");
        assert_eq!(spec["template"]["spec"]["restartPolicy"], "Never");
        assert_eq!(j["metadata"]["labels"], labels.clone());
        let parallel = defaulted(
            "batch",
            "Job",
            json!({"metadata": {"uid": "u"}, "spec": {"parallelism": 3, "template": {}}}),
        );
        assert!(parallel["spec"].get("completions").is_none());
        let cj = defaulted(
            "batch",
            "CronJob",
            json!({"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": t}}}}),
        );
        assert_eq!(cj["spec"]["concurrencyPolicy"], "Allow");
        assert_eq!(cj["spec"]["suspend"], false);
        assert_eq!(cj["spec"]["successfulJobsHistoryLimit"], 3);
        assert_eq!(cj["spec"]["failedJobsHistoryLimit"], 1);
        let job_spec = &cj["spec"]["jobTemplate"]["spec"];
        assert!(
            job_spec.get("backoffLimit").is_none(),
            "job template specs are not Job-defaulted"
        );
        assert_eq!(job_spec["template"]["spec"]["dnsPolicy"], "ClusterFirst");
    }

    #[test]
    fn namespace_secret_pvc_and_crd() {
        let ns = defaulted("", "Namespace", json!({"metadata": {"name": "team"}}));
        assert_eq!(
            ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "team"
        );
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(ns["status"]["phase"], "Active");
        let s = defaulted(
            "",
            "Secret",
            json!({"data": {"a": "YQ=="}, "stringData": {"b": "hi"}}),
        );
        assert_eq!(
            s,
            json!({"data": {"a": "YQ==", "b": "aGk="}, "type": "Opaque"})
        );
        let pvc = defaulted("", "PersistentVolumeClaim", json!({"spec": {}}));
        assert_eq!(
            pvc,
            json!({"spec": {"volumeMode": "Filesystem"}, "status": {"phase": "Pending"}})
        );
        let crd = defaulted(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            json!({"metadata": {"name": "widgets.example.com", "creationTimestamp": "2024-01-01T00:00:00Z"},
                "spec": {"group": "example.com", "names": {"kind": "Widget", "plural": "widgets"},
                    "scope": "Namespaced", "versions": [{"name": "v1", "served": true, "storage": true}]}}),
        );
        assert_eq!(crd["spec"]["names"]["singular"], "widget");
        assert_eq!(crd["spec"]["names"]["listKind"], "WidgetList");
        assert_eq!(crd["spec"]["conversion"], json!({"strategy": "None"}));
        assert_eq!(crd["status"]["acceptedNames"], crd["spec"]["names"]);
        assert_eq!(crd["status"]["storedVersions"], json!(["v1"]));
        let conditions = crd["status"]["conditions"].as_array().unwrap();
        assert!(
            conditions
                .iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        );
        assert!(
            conditions
                .iter()
                .any(|c| c["type"] == "NamesAccepted" && c["status"] == "True")
        );
    }

    #[test]
    fn invalid_shapes_are_errors() {
        let mut alloc = ServiceAllocator::new();
        let mut bad = json!({"spec": "nope"});
        let err = apply_defaults(&rt("apps", "Deployment"), &mut bad, &mut alloc).unwrap_err();
        assert_eq!(
            err,
            DefaultingError::WrongType {
                field: "spec".into(),
                expected: "an object"
            }
        );
        let mut bad = json!({"spec": {"template": {"spec": {"containers": "x"}}}});
        assert!(apply_defaults(&rt("apps", "Deployment"), &mut bad, &mut alloc).is_err());
        let mut bad = json!([]);
        assert!(apply_defaults(&rt("", "ConfigMap"), &mut bad, &mut alloc).is_err());
        let mut cm = json!({"data": {"a": "b"}});
        apply_defaults(&rt("", "ConfigMap"), &mut cm, &mut alloc).unwrap();
        assert_eq!(cm, json!({"data": {"a": "b"}}));
    }
}
