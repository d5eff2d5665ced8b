//! Built-in health checks: a dispatch table from (group, kind) to one pure function per
//! kind, and the small JSON accessors those functions share.

mod apiregistration;
mod apps;
mod argo;
mod autoscaling;
mod batch;
mod core;
mod networking;

use crate::HealthAssessment;
use serde_json::Value;

/// A built-in check: reads the object, returns its health.
type Check = fn(&Value) -> HealthAssessment;

/// Health of `obj` by the built-in checks, or `None` when its kind has no built-in check
/// (custom resources, ConfigMaps, Applications, ...). Never fails: missing fields read as
/// Kubernetes zero values.
pub fn builtin_health(obj: &Value) -> Option<HealthAssessment> {
    let (group, _version) = group_version(obj);
    let kind = obj.get("kind").and_then(Value::as_str)?;
    check_for(group, kind).map(|check| check(obj))
}

/// The built-in check for a group and kind, as Argo CD's dispatch table has it.
fn check_for(group: &str, kind: &str) -> Option<Check> {
    let check: Check = match (group, kind) {
        ("apps", "Deployment") => apps::deployment,
        ("apps", "StatefulSet") => apps::stateful_set,
        ("apps", "ReplicaSet") => apps::replica_set,
        ("apps", "DaemonSet") => apps::daemon_set,
        ("extensions" | "networking.k8s.io", "Ingress") => networking::ingress,
        ("argoproj.io", "Workflow") => argo::workflow,
        ("apiregistration.k8s.io", "APIService") => apiregistration::api_service,
        ("", "Service") => core::service,
        ("", "PersistentVolumeClaim") => core::persistent_volume_claim,
        ("", "Pod") => core::pod,
        ("batch", "Job") => batch::job,
        ("autoscaling", "HorizontalPodAutoscaler") => autoscaling::horizontal_pod_autoscaler,
        _ => return None,
    };
    Some(check)
}

/// The (group, version) of an object's `apiVersion`; the core group is `""`.
pub(crate) fn group_version(obj: &Value) -> (&str, &str) {
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

/// The value at a path of object keys.
pub(crate) fn at<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(obj, |value, key| value.get(key))
}

/// The string at a path, or `""`.
pub(crate) fn str_at<'a>(obj: &'a Value, path: &[&str]) -> &'a str {
    at(obj, path).and_then(Value::as_str).unwrap_or("")
}

/// The integer at a path, if present and numeric.
pub(crate) fn opt_int_at(obj: &Value, path: &[&str]) -> Option<i64> {
    let value = at(obj, path)?;
    value
        .as_i64()
        .or_else(|| value.as_f64().map(|number| number as i64))
}

/// The integer at a path, or 0.
pub(crate) fn int_at(obj: &Value, path: &[&str]) -> i64 {
    opt_int_at(obj, path).unwrap_or(0)
}

/// The array at a path, or an empty slice.
pub(crate) fn array_at<'a>(obj: &'a Value, path: &[&str]) -> &'a [Value] {
    at(obj, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The first entry of `status.conditions` with the given `type`.
pub(crate) fn condition<'a>(obj: &'a Value, condition_type: &str) -> Option<&'a Value> {
    array_at(obj, &["status", "conditions"])
        .iter()
        .find(|condition| str_at(condition, &["type"]) == condition_type)
}

/// Whether `metadata.annotations` has the key.
pub(crate) fn has_annotation(obj: &Value, key: &str) -> bool {
    at(obj, &["metadata", "annotations", key]).is_some()
}
