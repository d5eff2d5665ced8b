//! Built-in check for Ingress (`networking.k8s.io` and `extensions`).

use super::array_at;
use crate::HealthAssessment;
use keelson_model::HealthStatusCode::{Healthy, Progressing};
use serde_json::Value;

/// Ingress: Healthy once the load balancer reports at least one ingress point.
pub(super) fn ingress(obj: &Value) -> HealthAssessment {
    if array_at(obj, &["status", "loadBalancer", "ingress"]).is_empty() {
        HealthAssessment::status(Progressing)
    } else {
        HealthAssessment::status(Healthy)
    }
}
