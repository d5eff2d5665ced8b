//! Built-in check for `batch` Job.

use super::{array_at, str_at};
use crate::HealthAssessment;
use keelson_model::HealthStatusCode::{Degraded, Healthy, Progressing, Suspended};
use serde_json::Value;

/// Job: Failed condition → Degraded; Complete → Healthy; Suspended (True) → Suspended;
/// no terminal condition → Progressing.
pub(super) fn job(obj: &Value) -> HealthAssessment {
    let mut failed = None;
    let mut complete = false;
    let mut suspended = false;
    let mut message = "";
    for condition in array_at(obj, &["status", "conditions"]) {
        match str_at(condition, &["type"]) {
            "Failed" => {
                complete = true;
                failed = Some(str_at(condition, &["message"]));
            }
            "Complete" => {
                complete = true;
                message = str_at(condition, &["message"]);
            }
            "Suspended" => {
                complete = true;
                message = str_at(condition, &["message"]);
                suspended |= str_at(condition, &["status"]) == "True";
            }
            _ => {}
        }
    }
    match (complete, failed) {
        (false, _) => HealthAssessment::new(Progressing, message),
        (true, Some(failure)) => HealthAssessment::new(Degraded, failure),
        (true, None) if suspended => HealthAssessment::new(Suspended, message),
        (true, None) => HealthAssessment::new(Healthy, message),
    }
}
