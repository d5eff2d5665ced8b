//! Built-in check for Argo Workflows (`argoproj.io` Workflow).

use super::str_at;
use crate::HealthAssessment;
use keelson_model::HealthStatusCode::{Degraded, Healthy, Progressing, Unknown};
use serde_json::Value;

/// Workflow: by `status.phase`, carrying `status.message`.
pub(super) fn workflow(obj: &Value) -> HealthAssessment {
    let message = str_at(obj, &["status", "message"]);
    let status = match str_at(obj, &["status", "phase"]) {
        "" | "Pending" | "Running" => Progressing,
        "Succeeded" => Healthy,
        "Failed" | "Error" => Degraded,
        _ => Unknown,
    };
    HealthAssessment::new(status, message)
}
