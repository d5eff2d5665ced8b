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
//! Services: the allocator owns ClusterIPs and NodePorts by the Service's `metadata.uid`
//! (or `namespace/name` without one). On update the caller passes the merged object,
//! which still carries the live `clusterIP`/`nodePort`s (the store copies the old
//! `clusterIP` when an update omits it); values already owned by the same Service are
//! kept, new ones are checked and reserved, and ones the Service no longer carries are
//! released. A failed create must be followed by [`ServiceAllocator::release`].

use crate::resources::ResourceType;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

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

/// Owner key of a Service for the allocator: its uid, or `namespace/name`.
fn owner_of(obj: &Value) -> String {
    match obj.pointer("/metadata/uid").and_then(Value::as_str) {
        Some(uid) if !uid.is_empty() => uid.to_owned(),
        _ => format!(
            "{}/{}",
            obj.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            obj.pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
        ),
    }
}

/// Allocation tables keyed by value, owned by a Service owner key.
type Owners<K> = HashMap<K, String>;

// ---------------------------------------------------------------------------------
// Pods and pod templates.

fn pod(obj: &mut Value) -> Result<(), DefaultingError> {
    let spec = spec(obj)?;
    pod_spec(spec, "spec")?;
    default(spec, "enableServiceLinks", json!(true));
    // The Priority admission plugin (always enabled) resolves the priority class.
    let priority = match str_of(spec, "priorityClassName") {
        "" => Some(0),
        "system-cluster-critical" => Some(2_000_000_000),
        "system-node-critical" => Some(2_000_001_000),
        _ => None,
    };
    if let Some(priority) = priority {
        default(spec, "priority", json!(priority));
    }
    default_str(spec, "preemptionPolicy", "PreemptLowerPriority");
    let host_network = spec.get("hostNetwork") == Some(&Value::Bool(true));
    for list in ["containers", "initContainers"] {
        each_item(spec, list, "spec", |container, field| {
            requests_from_limits(container, field)?;
            if host_network {
                each_item(container, "ports", field, |port, _| {
                    if let Some(p) = port.get("containerPort").cloned() {
                        default(port, "hostPort", p);
                    }
                    Ok(())
                })?;
            }
            Ok(())
        })?;
    }
    let qos = qos_class(spec);
    let status = obj_at(obj, "status", "")?;
    default_str(status, "phase", "Pending");
    default_str(status, "qosClass", qos);
    Ok(())
}

fn pod_template(obj: &mut Value) -> Result<(), DefaultingError> {
    let Value::Object(map) = obj else {
        return Err(wrong("", "an object"));
    };
    template_at(map, "template", "")
}

/// Defaults the pod template at `spec.template`.
fn template_in(spec: &mut Map<String, Value>, field: &str) -> Result<(), DefaultingError> {
    template_at(spec, "template", field)
}

fn template_at(
    parent: &mut Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<(), DefaultingError> {
    let field = join(field, key);
    let template = obj_at_map(parent, key, "")?;
    let spec = obj_at_map(template, "spec", &field)?;
    pod_spec(spec, &join(&field, "spec"))
}

/// `SetDefaults_PodSpec` and the defaults of everything inside a pod spec.
fn pod_spec(spec: &mut Map<String, Value>, field: &str) -> Result<(), DefaultingError> {
    default_str(spec, "dnsPolicy", "ClusterFirst");
    default_str(spec, "restartPolicy", "Always");
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "securityContext", json!({}));
    default_str(spec, "schedulerName", "default-scheduler");
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        each_item(spec, list, field, container)?;
    }
    each_item(spec, "volumes", field, volume)
}

fn container(c: &mut Map<String, Value>, field: &str) -> Result<(), DefaultingError> {
    let policy = image_pull_policy(str_of(c, "image"));
    default_str(c, "imagePullPolicy", policy);
    default_str(c, "terminationMessagePath", "/dev/termination-log");
    default_str(c, "terminationMessagePolicy", "File");
    default(c, "resources", json!({}));
    each_item(c, "ports", field, |port, _| {
        default_str(port, "protocol", "TCP");
        Ok(())
    })?;
    each_item(c, "env", field, |env, field| {
        if let Some(from) = opt_obj(env, "valueFrom", field)? {
            field_ref(from, &join(field, "valueFrom"))?;
        }
        Ok(())
    })?;
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = opt_obj(c, probe, field)? {
            default(p, "timeoutSeconds", json!(1));
            default(p, "periodSeconds", json!(10));
            default(p, "successThreshold", json!(1));
            default(p, "failureThreshold", json!(3));
            handler(p, &join(field, probe))?;
        }
    }
    if let Some(lifecycle) = opt_obj(c, "lifecycle", field)? {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = opt_obj(lifecycle, hook, field)? {
                handler(h, field)?;
            }
        }
    }
    Ok(())
}

/// `Always` for `:latest` or an untagged, undigested image; `IfNotPresent` otherwise.
fn image_pull_policy(image: &str) -> &'static str {
    let (name, digest) = match image.split_once('@') {
        Some((name, _)) => (name, true),
        None => (image, false),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.split_once(':') {
        Some((_, "latest")) => "Always",
        Some(_) => "IfNotPresent",
        None if digest || image.is_empty() => "IfNotPresent",
        None => "Always",
    }
}

fn handler(h: &mut Map<String, Value>, field: &str) -> Result<(), DefaultingError> {
    if let Some(http) = opt_obj(h, "httpGet", field)? {
        default_str(http, "path", "/");
        default_str(http, "scheme", "HTTP");
    }
    if let Some(grpc) = opt_obj(h, "grpc", field)? {
        default(grpc, "service", json!(""));
    }
    Ok(())
}

fn field_ref(parent: &mut Map<String, Value>, field: &str) -> Result<(), DefaultingError> {
    if let Some(r) = opt_obj(parent, "fieldRef", field)? {
        default_str(r, "apiVersion", "v1");
    }
    Ok(())
}

const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

fn volume(v: &mut Map<String, Value>, field: &str) -> Result<(), DefaultingError> {
    if !VOLUME_SOURCES
        .iter()
        .any(|s| v.get(*s).is_some_and(|x| !x.is_null()))
    {
        v.insert("emptyDir".into(), json!({}));
    }
    for source in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = opt_obj(v, source, field)? {
            default(s, "defaultMode", json!(420));
        }
    }
    if let Some(host_path) = opt_obj(v, "hostPath", field)? {
        default(host_path, "type", json!(""));
    }
    if let Some(d) = opt_obj(v, "downwardAPI", field)? {
        each_item(d, "items", field, field_ref)?;
    }
    if let Some(p) = opt_obj(v, "projected", field)? {
        each_item(p, "sources", field, |source, field| {
            if let Some(token) = opt_obj(source, "serviceAccountToken", field)? {
                default(token, "expirationSeconds", json!(3600));
            }
            if let Some(d) = opt_obj(source, "downwardAPI", field)? {
                each_item(d, "items", field, field_ref)?;
            }
            Ok(())
        })?;
    }
    if let Some(iscsi) = opt_obj(v, "iscsi", field)? {
        default_str(iscsi, "iscsiInterface", "default");
    }
    if let Some(eph) = opt_obj(v, "ephemeral", field)?
        && let Some(template) = opt_obj(eph, "volumeClaimTemplate", field)?
    {
        let spec = obj_at_map(template, "spec", field)?;
        default_str(spec, "volumeMode", "Filesystem");
    }
    Ok(())
}

/// `SetDefaults_Pod`: requests default to limits for resources without a request.
fn requests_from_limits(c: &mut Map<String, Value>, field: &str) -> Result<(), DefaultingError> {
    let Some(resources) = opt_obj(c, "resources", field)? else {
        return Ok(());
    };
    let Some(limits) = resources.get("limits").and_then(Value::as_object).cloned() else {
        return Ok(());
    };
    if limits.is_empty() {
        return Ok(());
    }
    let requests = obj_at_map(resources, "requests", field)?;
    for (name, quantity) in limits {
        default(requests, &name, quantity);
    }
    Ok(())
}

/// The pod's QoS class from its containers' CPU and memory requests and limits
/// (quantities compared as written).
fn qos_class(spec: &Map<String, Value>) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|l| spec.get(*l).and_then(Value::as_array))
        .flatten()
        .collect();
    let get = |c: &Value, kind: &str, res: &str| c.get("resources")?.get(kind)?.get(res).cloned();
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        for res in ["cpu", "memory"] {
            let (req, lim) = (get(c, "requests", res), get(c, "limits", res));
            any |= req.is_some() || lim.is_some();
            guaranteed &= lim.is_some() && req == lim;
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

// ---------------------------------------------------------------------------------
// Services and their allocations.

const IP_BASE: u32 = u32::from_be_bytes([10, 96, 0, 0]);
const IP_SIZE: u32 = 1 << 20;
/// Dynamic ClusterIPs come from above the static band (as the real allocator prefers),
/// so fixed addresses like 10.96.0.10 for DNS stay free.
const IP_DYNAMIC_START: u32 = 256;
const PORT_MIN: u16 = 30000;
const PORT_MAX: u16 = 32767;
const PORT_DYNAMIC_START: u16 = 30086;

/// Per-cluster Service allocations: ClusterIPs from 10.96.0.0/12 (10.96.0.1 reserved for
/// `default/kubernetes`) and NodePorts from 30000-32767, each owned by one Service.
/// Dynamic allocation is sequential (deterministic) rather than random.
#[derive(Debug, Clone)]
pub struct ServiceAllocator {
    ips: Owners<u32>,
    ports: Owners<u16>,
    next_ip: u32,
    next_port: u16,
}

const KUBERNETES_OWNER: &str = "default/kubernetes";

impl Default for ServiceAllocator {
    fn default() -> Self {
        Self::new()
    }
}

impl ServiceAllocator {
    /// An allocator with only 10.96.0.1 taken (by the `kubernetes` Service).
    pub fn new() -> Self {
        let mut ips = HashMap::new();
        ips.insert(1, KUBERNETES_OWNER.to_owned());
        Self {
            ips,
            ports: HashMap::new(),
            next_ip: IP_DYNAMIC_START,
            next_port: PORT_DYNAMIC_START,
        }
    }

    /// Frees every ClusterIP and NodePort owned by `service` (on delete, or after a
    /// create that failed once defaulting had run).
    pub fn release(&mut self, service: &Value) {
        let owner = owner_of(service);
        self.ips.retain(|_, o| *o != owner);
        self.ports.retain(|_, o| *o != owner);
    }

    /// Number of ClusterIPs and NodePorts currently allocated.
    pub fn allocated(&self) -> (usize, usize) {
        (self.ips.len(), self.ports.len())
    }

    /// Claims a requested address; `takeover` lets the `kubernetes` Service take the
    /// address reserved for it.
    fn claim_ip(&mut self, offset: u32, owner: &str, takeover: bool) -> Result<(), &'static str> {
        match self.ips.get(&offset) {
            Some(o) if o == owner => Ok(()),
            Some(o) if !(takeover && o == KUBERNETES_OWNER) => {
                Err("provided IP is already allocated")
            }
            _ => {
                self.ips.insert(offset, owner.to_owned());
                Ok(())
            }
        }
    }

    fn allocate_ip(&mut self, owner: &str) -> Option<u32> {
        let usable = IP_SIZE - 2;
        for i in 0..usable {
            let offset = 1 + (self.next_ip - 1 + i) % usable;
            if let std::collections::hash_map::Entry::Vacant(slot) = self.ips.entry(offset) {
                slot.insert(owner.to_owned());
                self.next_ip = 1 + offset % usable;
                return Some(offset);
            }
        }
        None
    }

    fn claim_port(&mut self, port: u16, owner: &str) -> Result<(), &'static str> {
        if !(PORT_MIN..=PORT_MAX).contains(&port) {
            return Err(
                "provided port is not in the valid range. The range of valid ports is 30000-32767",
            );
        }
        match self.ports.get(&port) {
            Some(o) if o != owner => Err("provided port is already allocated"),
            _ => {
                self.ports.insert(port, owner.to_owned());
                Ok(())
            }
        }
    }

    fn allocate_port(&mut self, owner: &str) -> Option<u16> {
        let count = PORT_MAX - PORT_MIN + 1;
        for i in 0..count {
            let port = PORT_MIN + (self.next_port - PORT_MIN + i) % count;
            if let std::collections::hash_map::Entry::Vacant(slot) = self.ports.entry(port) {
                slot.insert(owner.to_owned());
                self.next_port = PORT_MIN + (port - PORT_MIN + 1) % count;
                return Some(port);
            }
        }
        None
    }

    /// Releases what `owner` holds beyond `ips` and `ports`.
    fn keep_only(&mut self, owner: &str, ips: &[u32], ports: &[u16]) {
        self.ips.retain(|ip, o| o != owner || ips.contains(ip));
        self.ports.retain(|p, o| o != owner || ports.contains(p));
    }

    fn owns_port(&self, port: u16, owner: &str) -> bool {
        self.ports.get(&port).is_some_and(|o| o == owner)
    }
}

fn ip_to_string(offset: u32) -> String {
    std::net::Ipv4Addr::from(IP_BASE + offset).to_string()
}

fn ip_offset(ip: &str) -> Option<u32> {
    let addr: std::net::Ipv4Addr = ip.parse().ok()?;
    let offset = u32::from(addr).checked_sub(IP_BASE)?;
    (1..IP_SIZE - 1).contains(&offset).then_some(offset)
}

fn service(obj: &mut Value, alloc: &mut ServiceAllocator) -> Result<(), DefaultingError> {
    let owner = owner_of(obj);
    let ns = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let takeover = ns == "default" && name == "kubernetes";
    let spec = spec(obj)?;
    service_spec_defaults(spec)?;
    let ty = str_of(spec, "type").to_owned();
    let mut ips = Vec::new();
    if ty != "ExternalName" {
        ips.extend(cluster_ip(spec, alloc, &owner, takeover)?);
    } else if let Some(offset) = ip_offset(str_of(spec, "clusterIP"))
        && alloc.ips.get(&offset).is_some_and(|o| *o == owner)
    {
        // Switched to ExternalName: the allocated address goes, as upstream drops it.
        for key in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
            spec.shift_remove(key);
        }
    }
    let ports = node_ports(spec, alloc, &owner, &ty)?;
    alloc.keep_only(&owner, &ips, &ports);
    default_status(obj, json!({"loadBalancer": {}}))
}

fn service_spec_defaults(spec: &mut Map<String, Value>) -> Result<(), DefaultingError> {
    default_str(spec, "type", "ClusterIP");
    let ty = str_of(spec, "type").to_owned();
    default_str(spec, "sessionAffinity", "None");
    if str_of(spec, "sessionAffinity") == "ClientIP" {
        let config = obj_at_map(spec, "sessionAffinityConfig", "spec")?;
        let client = obj_at_map(config, "clientIP", "spec.sessionAffinityConfig")?;
        default(client, "timeoutSeconds", json!(10800));
    }
    each_item(spec, "ports", "spec", |port, _| {
        default_str(port, "protocol", "TCP");
        let unset = match port.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::String(s)) => s.is_empty(),
            Some(_) => false,
        };
        if unset && let Some(p) = port.get("port").cloned() {
            port.insert("targetPort".into(), p);
        }
        Ok(())
    })?;
    if ty != "ExternalName" {
        default_str(spec, "internalTrafficPolicy", "Cluster");
    }
    if ty == "NodePort" || ty == "LoadBalancer" {
        default_str(spec, "externalTrafficPolicy", "Cluster");
    }
    if ty == "LoadBalancer" {
        default(spec, "allocateLoadBalancerNodePorts", json!(true));
    } else {
        // Fields of other types, dropped as upstream does when the type changes.
        spec.shift_remove("allocateLoadBalancerNodePorts");
        if ty != "NodePort" {
            spec.shift_remove("externalTrafficPolicy");
        }
    }
    Ok(())
}

/// Sets `clusterIP`, `clusterIPs`, `ipFamilies` and `ipFamilyPolicy`; returns the
/// allocated offset (none for headless Services).
fn cluster_ip(
    spec: &mut Map<String, Value>,
    alloc: &mut ServiceAllocator,
    owner: &str,
    takeover: bool,
) -> Result<Option<u32>, DefaultingError> {
    let requested = match str_of(spec, "clusterIP") {
        "" => spec
            .get("clusterIPs")
            .and_then(|ips| ips.get(0))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        ip => ip.to_owned(),
    };
    if requested == "None" {
        spec.insert("clusterIP".into(), json!("None"));
        spec.insert("clusterIPs".into(), json!(["None"]));
        let has_selector = spec
            .get("selector")
            .and_then(Value::as_object)
            .is_some_and(|s| !s.is_empty());
        let policy = if has_selector {
            "SingleStack"
        } else {
            "RequireDualStack"
        };
        default_str(spec, "ipFamilyPolicy", policy);
        let families = if str_of(spec, "ipFamilyPolicy") == "SingleStack" {
            json!(["IPv4"])
        } else {
            json!(["IPv4", "IPv6"])
        };
        default(spec, "ipFamilies", families);
        return Ok(None);
    }
    let invalid = |reason: &str| DefaultingError::InvalidValue {
        field: "spec.clusterIPs".into(),
        value: format!("[]string{{{requested:?}}}"),
        reason: format!("failed to allocate IP {requested}: {reason}"),
    };
    let offset = if requested.is_empty() {
        alloc.allocate_ip(owner).ok_or(DefaultingError::RangeFull {
            field: "spec.clusterIPs".into(),
            what: "ClusterIP",
        })?
    } else {
        let offset = ip_offset(&requested).ok_or_else(|| {
            invalid("provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/12")
        })?;
        alloc.claim_ip(offset, owner, takeover).map_err(invalid)?;
        offset
    };
    let ip = ip_to_string(offset);
    spec.insert("clusterIP".into(), json!(ip));
    spec.insert("clusterIPs".into(), json!([ip]));
    default(spec, "ipFamilies", json!(["IPv4"]));
    default_str(spec, "ipFamilyPolicy", "SingleStack");
    Ok(Some(offset))
}

/// Allocates or checks `nodePort`s (and `healthCheckNodePort`); returns the ports held.
fn node_ports(
    spec: &mut Map<String, Value>,
    alloc: &mut ServiceAllocator,
    owner: &str,
    ty: &str,
) -> Result<Vec<u16>, DefaultingError> {
    let allocate = ty == "NodePort"
        || (ty == "LoadBalancer"
            && spec.get("allocateLoadBalancerNodePorts") != Some(&Value::Bool(false)));
    let allowed = ty == "NodePort" || ty == "LoadBalancer";
    let mut held = Vec::new();
    each_item(spec, "ports", "spec", |port, field| {
        let field = format!("{field}.nodePort");
        let requested = port
            .get("nodePort")
            .and_then(Value::as_u64)
            .filter(|p| *p != 0);
        match requested {
            Some(p) if !allowed => {
                let p16 = u16::try_from(p).unwrap_or(0);
                if !alloc.owns_port(p16, owner) {
                    return Err(DefaultingError::Forbidden {
                        field,
                        reason: format!("may not be used when `type` is '{ty}'"),
                    });
                }
                // A leftover from a type change, dropped as upstream does.
                port.shift_remove("nodePort");
            }
            Some(p) => {
                let p16 = u16::try_from(p).unwrap_or(0);
                alloc
                    .claim_port(p16, owner)
                    .map_err(|reason| DefaultingError::InvalidValue {
                        field,
                        value: p.to_string(),
                        reason: reason.to_owned(),
                    })?;
                held.push(p16);
            }
            None if allocate => {
                let p = alloc
                    .allocate_port(owner)
                    .ok_or(DefaultingError::RangeFull {
                        field,
                        what: "NodePort",
                    })?;
                port.insert("nodePort".into(), json!(p));
                held.push(p);
            }
            None => {}
        }
        Ok(())
    })?;
    let local = str_of(spec, "externalTrafficPolicy") == "Local";
    if ty == "LoadBalancer" && local {
        let field = "spec.healthCheckNodePort".to_owned();
        match spec
            .get("healthCheckNodePort")
            .and_then(Value::as_u64)
            .filter(|p| *p != 0)
        {
            Some(p) => {
                let p16 = u16::try_from(p).unwrap_or(0);
                alloc
                    .claim_port(p16, owner)
                    .map_err(|reason| DefaultingError::InvalidValue {
                        field,
                        value: p.to_string(),
                        reason: reason.to_owned(),
                    })?;
                held.push(p16);
            }
            None => {
                let p = alloc
                    .allocate_port(owner)
                    .ok_or(DefaultingError::RangeFull {
                        field,
                        what: "NodePort",
                    })?;
                spec.insert("healthCheckNodePort".into(), json!(p));
                held.push(p);
            }
        }
    } else if let Some(p) = spec.get("healthCheckNodePort").and_then(Value::as_u64)
        && alloc.owns_port(u16::try_from(p).unwrap_or(0), owner)
    {
        spec.shift_remove("healthCheckNodePort");
    }
    Ok(held)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::resources::builtin_types;

    fn rt(group: &str, kind: &str) -> ResourceType {
        let found = builtin_types()
            .into_iter()
            .find(|t| t.group == group && t.kind == kind);
        (*found.unwrap()).clone()
    }

    fn defaulted(group: &str, kind: &str, mut obj: Value) -> Value {
        apply_defaults(&rt(group, kind), &mut obj, &mut ServiceAllocator::new()).unwrap();
        obj
    }

    fn web_template() -> Value {
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
    fn image_pull_policy_follows_the_tag() {
        assert_eq!(image_pull_policy("nginx"), "Always");
        assert_eq!(image_pull_policy("nginx:latest"), "Always");
        assert_eq!(image_pull_policy("localhost:5000/app"), "Always");
        assert_eq!(image_pull_policy("localhost:5000/app:v1"), "IfNotPresent");
        assert_eq!(image_pull_policy("nginx@sha256:abc"), "IfNotPresent");
        assert_eq!(image_pull_policy("nginx:1.2@sha256:abc"), "IfNotPresent");
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
    fn pod_only_defaults_volumes_and_probes() {
        let p = defaulted(
            "",
            "Pod",
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox",
                "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
                "livenessProbe": {"httpGet": {"port": 8080}},
                "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}],
                "volumes": [{"name": "a"}, {"name": "b", "configMap": {"name": "cm"}}, {"name": "c", "secret": {"secretName": "s"}},
                    {"name": "d", "hostPath": {"path": "/x"}}]}}),
        );
        let spec = &p["spec"];
        assert_eq!(spec["enableServiceLinks"], true);
        assert_eq!(spec["priority"], 0);
        assert_eq!(spec["preemptionPolicy"], "PreemptLowerPriority");
        assert!(
            spec.get("serviceAccountName").is_none(),
            "service accounts are admission"
        );
        let c = &spec["containers"][0];
        assert_eq!(c["imagePullPolicy"], "Always");
        assert_eq!(
            c["resources"]["requests"],
            json!({"cpu": "1", "memory": "1Gi"})
        );
        assert_eq!(
            c["livenessProbe"],
            json!({"httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
        );
        assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
        assert_eq!(spec["volumes"][0], json!({"name": "a", "emptyDir": {}}));
        assert_eq!(spec["volumes"][1]["configMap"]["defaultMode"], 420);
        assert_eq!(spec["volumes"][2]["secret"]["defaultMode"], 420);
        assert_eq!(spec["volumes"][3]["hostPath"]["type"], "");
        assert_eq!(
            p["status"],
            json!({"phase": "Pending", "qosClass": "Guaranteed"})
        );
        let best = defaulted(
            "",
            "Pod",
            json!({"spec": {"containers": [{"name": "c", "image": "x"}]}}),
        );
        assert_eq!(best["status"]["qosClass"], "BestEffort");
    }

    #[test]
    fn service_allocation_and_defaults() {
        let svc_rt = rt("", "Service");
        let mut alloc = ServiceAllocator::new();
        let mut svc = json!({"metadata": {"name": "web", "namespace": "default", "uid": "s1"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}});
        apply_defaults(&svc_rt, &mut svc, &mut alloc).unwrap();
        let spec = &svc["spec"];
        assert_eq!(spec["type"], "ClusterIP");
        assert_eq!(spec["sessionAffinity"], "None");
        assert_eq!(
            spec["ports"][0],
            json!({"port": 80, "protocol": "TCP", "targetPort": 80})
        );
        assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
        assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
        assert_eq!(spec["internalTrafficPolicy"], "Cluster");
        assert!(spec.get("externalTrafficPolicy").is_none());
        let ip = spec["clusterIP"].as_str().unwrap().to_owned();
        assert!(ip.starts_with("10.9") && ip != "10.96.0.1");
        assert_eq!(spec["clusterIPs"], json!([ip]));
        assert_eq!(svc["status"], json!({"loadBalancer": {}}));
        // An update keeps the address; a second Service cannot take it.
        let before = svc.clone();
        apply_defaults(&svc_rt, &mut svc, &mut alloc).unwrap();
        assert_eq!(svc, before);
        let mut other = json!({"metadata": {"name": "o", "namespace": "default", "uid": "s2"},
            "spec": {"clusterIP": ip, "ports": [{"port": 80}]}});
        let err = apply_defaults(&svc_rt, &mut other, &mut alloc).unwrap_err();
        assert!(
            err.to_string().contains("provided IP is already allocated"),
            "{err}"
        );
        let mut dns = json!({"metadata": {"name": "dns", "namespace": "kube-system", "uid": "s3"},
            "spec": {"clusterIP": "10.96.0.10", "ports": [{"port": 53, "protocol": "UDP"}]}});
        apply_defaults(&svc_rt, &mut dns, &mut alloc).unwrap();
        assert_eq!(dns["spec"]["clusterIPs"], json!(["10.96.0.10"]));
        let mut kubernetes = json!({"metadata": {"name": "kubernetes", "namespace": "default", "uid": "k"},
            "spec": {"clusterIP": "10.96.0.1", "ports": [{"port": 443}]}});
        apply_defaults(&svc_rt, &mut kubernetes, &mut alloc).unwrap();
        let mut outside = json!({"metadata": {"uid": "s4"}, "spec": {"clusterIP": "192.168.0.1"}});
        assert!(apply_defaults(&svc_rt, &mut outside, &mut alloc).is_err());
        assert_eq!(alloc.allocated(), (3, 0));
        alloc.release(&svc);
        assert_eq!(alloc.allocated(), (2, 0));
    }

    #[test]
    fn node_ports_headless_and_external_name() {
        let svc_rt = rt("", "Service");
        let mut alloc = ServiceAllocator::new();
        let mut lb = json!({"metadata": {"uid": "lb"}, "spec": {"type": "LoadBalancer",
            "ports": [{"port": 80}, {"port": 443, "nodePort": 30443}]}});
        apply_defaults(&svc_rt, &mut lb, &mut alloc).unwrap();
        let spec = &lb["spec"];
        assert_eq!(spec["externalTrafficPolicy"], "Cluster");
        assert_eq!(spec["allocateLoadBalancerNodePorts"], true);
        let port = spec["ports"][0]["nodePort"].as_u64().unwrap();
        assert!((30000..=32767).contains(&port));
        assert_eq!(spec["ports"][1]["nodePort"], 30443);
        let mut clash = json!({"metadata": {"uid": "np"}, "spec": {"type": "NodePort",
            "ports": [{"port": 1, "nodePort": 30443}]}});
        assert!(apply_defaults(&svc_rt, &mut clash, &mut alloc).is_err());
        // Switching back to ClusterIP drops and frees the node ports.
        lb["spec"]["type"] = json!("ClusterIP");
        apply_defaults(&svc_rt, &mut lb, &mut alloc).unwrap();
        assert!(lb["spec"]["ports"][0].get("nodePort").is_none());
        assert!(lb["spec"].get("externalTrafficPolicy").is_none());
        assert!(lb["spec"].get("allocateLoadBalancerNodePorts").is_none());
        assert_eq!(alloc.allocated().1, 0);
        let mut fresh =
            json!({"metadata": {"uid": "x"}, "spec": {"ports": [{"port": 1, "nodePort": 30001}]}});
        assert!(matches!(
            apply_defaults(&svc_rt, &mut fresh, &mut alloc),
            Err(DefaultingError::Forbidden { .. })
        ));

        let headless = defaulted(
            "",
            "Service",
            json!({"spec": {"clusterIP": "None", "selector": {"a": "b"}}}),
        );
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
        assert_eq!(headless["spec"]["ipFamilyPolicy"], "SingleStack");
        let no_selector = defaulted("", "Service", json!({"spec": {"clusterIP": "None"}}));
        assert_eq!(no_selector["spec"]["ipFamilyPolicy"], "RequireDualStack");
        assert_eq!(no_selector["spec"]["ipFamilies"], json!(["IPv4", "IPv6"]));
        let ext = defaulted(
            "",
            "Service",
            json!({"spec": {"type": "ExternalName", "externalName": "example.com"}}),
        );
        assert!(ext["spec"].get("clusterIP").is_none());
        assert!(ext["spec"].get("ipFamilies").is_none());
        assert!(ext["spec"].get("internalTrafficPolicy").is_none());
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
