//! Built-in checks for the `apps` group: Deployment, StatefulSet, ReplicaSet, DaemonSet.

use super::{condition, int_at, opt_int_at, str_at};
use crate::HealthAssessment;
use keelson_model::HealthStatusCode::{Degraded, Healthy, Progressing, Suspended};
use serde_json::Value;

/// Deployment: paused → Suspended; progress deadline exceeded → Degraded; rollout
/// incomplete → Progressing (kubectl rollout status logic).
pub(super) fn deployment(obj: &Value) -> HealthAssessment {
    if obj.pointer("/spec/paused").and_then(Value::as_bool) == Some(true) {
        return HealthAssessment::new(Suspended, "Deployment is paused");
    }
    if int_at(obj, &["metadata", "generation"]) > int_at(obj, &["status", "observedGeneration"]) {
        return HealthAssessment::new(
            Progressing,
            "Waiting for rollout to finish: observed deployment generation less then desired generation",
        );
    }
    let progressing = condition(obj, "Progressing");
    if progressing.is_some_and(|c| str_at(c, &["reason"]) == "ProgressDeadlineExceeded") {
        let name = str_at(obj, &["metadata", "name"]);
        return HealthAssessment::new(
            Degraded,
            format!("Deployment {name:?} exceeded its progress deadline"),
        );
    }
    let updated = int_at(obj, &["status", "updatedReplicas"]);
    let replicas = int_at(obj, &["status", "replicas"]);
    let available = int_at(obj, &["status", "availableReplicas"]);
    if let Some(desired) = opt_int_at(obj, &["spec", "replicas"])
        && updated < desired
    {
        return HealthAssessment::new(
            Progressing,
            format!(
                "Waiting for rollout to finish: {updated} out of {desired} new replicas have been updated..."
            ),
        );
    }
    if replicas > updated {
        let old = replicas - updated;
        return HealthAssessment::new(
            Progressing,
            format!("Waiting for rollout to finish: {old} old replicas are pending termination..."),
        );
    }
    if available < updated {
        return HealthAssessment::new(
            Progressing,
            format!(
                "Waiting for rollout to finish: {available} of {updated} updated replicas are available..."
            ),
        );
    }
    HealthAssessment::status(Healthy)
}

/// StatefulSet: spec observed, replicas ready, then partitioned / OnDelete / rolling
/// update completion.
pub(super) fn stateful_set(obj: &Value) -> HealthAssessment {
    let observed = int_at(obj, &["status", "observedGeneration"]);
    if observed == 0 || int_at(obj, &["metadata", "generation"]) > observed {
        return HealthAssessment::new(
            Progressing,
            "Waiting for statefulset spec update to be observed...",
        );
    }
    let desired = opt_int_at(obj, &["spec", "replicas"]);
    let ready = int_at(obj, &["status", "readyReplicas"]);
    if let Some(desired) = desired
        && ready < desired
    {
        let waiting = desired - ready;
        return HealthAssessment::new(
            Progressing,
            format!("Waiting for {waiting} pods to be ready..."),
        );
    }
    let updated = int_at(obj, &["status", "updatedReplicas"]);
    let strategy = str_at(obj, &["spec", "updateStrategy", "type"]);
    if strategy == "RollingUpdate" && obj.pointer("/spec/updateStrategy/rollingUpdate").is_some() {
        let partition = opt_int_at(
            obj,
            &["spec", "updateStrategy", "rollingUpdate", "partition"],
        );
        if let (Some(desired), Some(partition)) = (desired, partition)
            && updated < desired - partition
        {
            let target = desired - partition;
            return HealthAssessment::new(
                Progressing,
                format!(
                    "Waiting for partitioned roll out to finish: {updated} out of {target} new pods have been updated..."
                ),
            );
        }
        return HealthAssessment::new(
            Healthy,
            format!("partitioned roll out complete: {updated} new pods have been updated..."),
        );
    }
    if strategy == "OnDelete" {
        return HealthAssessment::new(Healthy, format!("statefulset has {ready} ready pods"));
    }
    let update_revision = str_at(obj, &["status", "updateRevision"]);
    let current_revision = str_at(obj, &["status", "currentRevision"]);
    if update_revision != current_revision {
        return HealthAssessment::new(
            Progressing,
            format!(
                "waiting for statefulset rolling update to complete {updated} pods at revision {update_revision}..."
            ),
        );
    }
    let current = int_at(obj, &["status", "currentReplicas"]);
    HealthAssessment::new(
        Healthy,
        format!(
            "statefulset rolling update complete {current} pods at revision {current_revision}..."
        ),
    )
}

/// ReplicaSet: ReplicaFailure condition → Degraded; fewer available than desired →
/// Progressing.
pub(super) fn replica_set(obj: &Value) -> HealthAssessment {
    if int_at(obj, &["metadata", "generation"]) > int_at(obj, &["status", "observedGeneration"]) {
        return HealthAssessment::new(
            Progressing,
            "Waiting for rollout to finish: observed replica set generation less then desired generation",
        );
    }
    if let Some(failure) = condition(obj, "ReplicaFailure")
        && str_at(failure, &["status"]) == "True"
    {
        return HealthAssessment::new(Degraded, str_at(failure, &["message"]));
    }
    let available = int_at(obj, &["status", "availableReplicas"]);
    if let Some(desired) = opt_int_at(obj, &["spec", "replicas"])
        && available < desired
    {
        return HealthAssessment::new(
            Progressing,
            format!(
                "Waiting for rollout to finish: {available} out of {desired} new replicas are available..."
            ),
        );
    }
    HealthAssessment::status(Healthy)
}

/// DaemonSet: OnDelete → Healthy with counts; otherwise every scheduled pod updated and
/// available.
pub(super) fn daemon_set(obj: &Value) -> HealthAssessment {
    if int_at(obj, &["metadata", "generation"]) > int_at(obj, &["status", "observedGeneration"]) {
        return HealthAssessment::new(
            Progressing,
            "Waiting for rollout to finish: observed daemon set generation less then desired generation",
        );
    }
    let updated = int_at(obj, &["status", "updatedNumberScheduled"]);
    let desired = int_at(obj, &["status", "desiredNumberScheduled"]);
    let available = int_at(obj, &["status", "numberAvailable"]);
    if str_at(obj, &["spec", "updateStrategy", "type"]) == "OnDelete" {
        return HealthAssessment::new(
            Healthy,
            format!("daemon set {updated} out of {desired} new pods have been updated"),
        );
    }
    let name = str_at(obj, &["metadata", "name"]);
    if updated < desired {
        return HealthAssessment::new(
            Progressing,
            format!(
                "Waiting for daemon set {name:?} rollout to finish: {updated} out of {desired} new pods have been updated..."
            ),
        );
    }
    if available < desired {
        return HealthAssessment::new(
            Progressing,
            format!(
                "Waiting for daemon set {name:?} rollout to finish: {available} of {desired} updated pods are available..."
            ),
        );
    }
    HealthAssessment::status(Healthy)
}
