//! Built-in check for `apiregistration.k8s.io` APIService (v1 and v1beta1).

use super::{condition, str_at};
use crate::HealthAssessment;
use keelson_model::HealthStatusCode::{Healthy, Progressing};
use serde_json::Value;

/// APIService: the Available condition decides; without it, Progressing.
pub(super) fn api_service(obj: &Value) -> HealthAssessment {
    let Some(available) = condition(obj, "Available") else {
        return HealthAssessment::new(Progressing, "Waiting to be processed");
    };
    let message = format!(
        "{}: {}",
        str_at(available, &["reason"]),
        str_at(available, &["message"])
    );
    let status = if str_at(available, &["status"]) == "True" {
        Healthy
    } else {
        Progressing
    };
    HealthAssessment::new(status, message)
}
