//! Built-in check for `autoscaling` HorizontalPodAutoscaler: v1 (conditions in an
//! annotation) and v2/v2beta1/v2beta2 (`status.conditions`).

use super::{array_at, group_version, str_at};
use crate::HealthAssessment;
use keelson_model::HealthStatusCode::{Degraded, Healthy, Progressing, Unknown};
use serde_json::Value;

/// Annotation in which autoscaling/v1 carries the v2 conditions as JSON.
const CONDITIONS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/conditions";

/// (type, reason) pairs that mean the autoscaler cannot work.
const DEGRADED: &[(&str, &str)] = &[
    ("AbleToScale", "FailedGetScale"),
    ("AbleToScale", "FailedUpdateScale"),
    ("ScalingActive", "FailedGetResourceMetric"),
    ("ScalingActive", "FailedGetObjectMetric"),
    ("ScalingActive", "FailedGetPodsMetric"),
    ("ScalingActive", "FailedGetExternalMetric"),
    ("ScalingActive", "FailedGetContainerResourceMetric"),
    ("ScalingActive", "FailedComputeMetricsReplicas"),
    ("ScalingActive", "InvalidSelector"),
];

/// HPA: any degraded condition → Degraded; else a True AbleToScale/ScalingLimited →
/// Healthy; else Progressing "Waiting to Autoscale".
pub(super) fn horizontal_pod_autoscaler(obj: &Value) -> HealthAssessment {
    let (_, version) = group_version(obj);
    if version != "v1" {
        return check_conditions(array_at(obj, &["status", "conditions"]));
    }
    let Some(annotation) = obj
        .pointer("/metadata/annotations")
        .and_then(|annotations| annotations.get(CONDITIONS_ANNOTATION))
        .and_then(Value::as_str)
    else {
        return waiting();
    };
    match serde_json::from_str::<Vec<Value>>(annotation) {
        Ok(conditions) if conditions.is_empty() => waiting(),
        Ok(conditions) => check_conditions(&conditions),
        Err(error) => HealthAssessment::new(
            Unknown,
            format!("failed to convert conditions annotation to typed: {error}"),
        ),
    }
}

/// The verdict from a list of HPA conditions.
fn check_conditions(conditions: &[Value]) -> HealthAssessment {
    let field = |condition: &Value, name: &str| str_at(condition, &[name]).to_owned();
    if let Some(degraded) = conditions.iter().find(|condition| {
        let pair = (field(condition, "type"), field(condition, "reason"));
        DEGRADED.iter().any(|(t, r)| pair.0 == *t && pair.1 == *r)
    }) {
        return HealthAssessment::new(Degraded, field(degraded, "message"));
    }
    if let Some(healthy) = conditions.iter().find(|condition| {
        matches!(
            str_at(condition, &["type"]),
            "AbleToScale" | "ScalingLimited"
        ) && str_at(condition, &["status"]) == "True"
    }) {
        return HealthAssessment::new(Healthy, field(healthy, "message"));
    }
    waiting()
}

/// The "nothing known yet" verdict.
fn waiting() -> HealthAssessment {
    HealthAssessment::new(Progressing, "Waiting to Autoscale")
}
