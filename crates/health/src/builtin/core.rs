//! Built-in checks for the core group: Pod, Service, PersistentVolumeClaim.

use super::{array_at, at, condition, has_annotation, int_at, str_at};
use crate::{HealthAssessment, is_hook};
use keelson_model::HealthStatusCode::{Degraded, Healthy, Progressing, Unknown};
use serde_json::Value;

/// Annotation that makes a Never/OnFailure pod assessed like a long-running one
/// (ignored on hooks, whose lifetime is finite by design).
const IGNORE_RESTART_POLICY: &str = "argocd.argoproj.io/ignore-restart-policy";

/// Service: a LoadBalancer is Progressing until it has an ingress; others are Healthy.
pub(super) fn service(obj: &Value) -> HealthAssessment {
    if str_at(obj, &["spec", "type"]) == "LoadBalancer"
        && array_at(obj, &["status", "loadBalancer", "ingress"]).is_empty()
    {
        return HealthAssessment::status(Progressing);
    }
    HealthAssessment::status(Healthy)
}

/// PersistentVolumeClaim: by `status.phase`.
pub(super) fn persistent_volume_claim(obj: &Value) -> HealthAssessment {
    let status = match str_at(obj, &["status", "phase"]) {
        "Lost" => Degraded,
        "Pending" => Progressing,
        "Bound" => Healthy,
        _ => Unknown,
    };
    HealthAssessment::status(status)
}

/// Pod: container errors, then by phase; pods that run to completion (Never/OnFailure,
/// typically hooks) stay Progressing while Running.
pub(super) fn pod(obj: &Value) -> HealthAssessment {
    let long_running = str_at(obj, &["spec", "restartPolicy"]) == "Always"
        || (has_annotation(obj, IGNORE_RESTART_POLICY) && !is_hook(obj));
    let message = str_at(obj, &["status", "message"]);
    if long_running && let Some(errors) = waiting_errors(obj) {
        return HealthAssessment::new(Degraded, errors);
    }
    match str_at(obj, &["status", "phase"]) {
        "Pending" => HealthAssessment::new(Progressing, message),
        "Succeeded" => HealthAssessment::new(Healthy, message),
        "Failed" => HealthAssessment::new(Degraded, failure_message(obj)),
        "Running" if long_running => running_pod(obj, message),
        "Running"
            if matches!(
                str_at(obj, &["spec", "restartPolicy"]),
                "Never" | "OnFailure"
            ) =>
        {
            HealthAssessment::new(Progressing, message)
        }
        _ => HealthAssessment::new(Unknown, message),
    }
}

/// The joined messages of containers waiting with an error reason, if any.
fn waiting_errors(obj: &Value) -> Option<String> {
    let messages: Vec<&str> = array_at(obj, &["status", "containerStatuses"])
        .iter()
        .filter_map(|status| at(status, &["state", "waiting"]))
        .filter(|waiting| {
            let reason = str_at(waiting, &["reason"]);
            reason.starts_with("Err") || reason.ends_with("Error") || reason.ends_with("BackOff")
        })
        .map(|waiting| str_at(waiting, &["message"]))
        .collect();
    (!messages.is_empty()).then(|| messages.join(", "))
}

/// Why a Failed pod failed: the pod message, else the first terminated container's.
fn failure_message(obj: &Value) -> String {
    let message = str_at(obj, &["status", "message"]);
    if !message.is_empty() {
        return message.to_owned();
    }
    let init = array_at(obj, &["status", "initContainerStatuses"]);
    let main = array_at(obj, &["status", "containerStatuses"]);
    init.iter()
        .chain(main)
        .find_map(terminated_message)
        .unwrap_or_default()
}

/// The failure message of one terminated container, if it failed.
fn terminated_message(container: &Value) -> Option<String> {
    let terminated = at(container, &["state", "terminated"])?;
    let message = str_at(terminated, &["message"]);
    if !message.is_empty() {
        return Some(message.to_owned());
    }
    if str_at(terminated, &["reason"]) == "OOMKilled" {
        return Some("OOMKilled".to_owned());
    }
    let code = int_at(terminated, &["exitCode"]);
    let name = str_at(container, &["name"]);
    (code != 0).then(|| format!("container {name:?} failed with exit code {code}"))
}

/// A running long-lived pod: ready → Healthy; a container that terminated before →
/// Degraded; otherwise Progressing.
fn running_pod(obj: &Value, message: &str) -> HealthAssessment {
    if condition(obj, "Ready").is_some_and(|ready| str_at(ready, &["status"]) == "True") {
        return HealthAssessment::new(Healthy, message);
    }
    let restarted = array_at(obj, &["status", "containerStatuses"])
        .iter()
        .any(|status| at(status, &["lastState", "terminated"]).is_some());
    let status = if restarted { Degraded } else { Progressing };
    HealthAssessment::new(status, message)
}
