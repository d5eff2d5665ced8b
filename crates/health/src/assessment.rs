//! The result of assessing one object's health: a status code and a message.

use keelson_model::HealthStatusCode;
use serde::{Deserialize, Serialize};

/// Health of one resource, as Argo CD reports it (`{"status": .., "message": ..}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthAssessment {
    /// The health status code.
    pub status: HealthStatusCode,
    /// Human-readable detail; omitted from JSON when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

impl HealthAssessment {
    /// An assessment with the given status and message.
    pub fn new(status: HealthStatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// An assessment with the given status and no message.
    pub fn status(status: HealthStatusCode) -> Self {
        Self::new(status, String::new())
    }
}
