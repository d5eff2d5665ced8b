//! Fields of an Application read as JSON, for tests and benchmarks that poll the
//! management cluster: an absent field reads as `""` (or empty), never as an error.

use serde_json::Value;

/// `status.sync.status`.
pub fn sync_status(app: &Value) -> &str {
    app["status"]["sync"]["status"].as_str().unwrap_or("")
}

/// `status.health.status`.
pub fn health(app: &Value) -> &str {
    app["status"]["health"]["status"].as_str().unwrap_or("")
}

/// `status.sync.revision`.
pub fn sync_revision(app: &Value) -> &str {
    app["status"]["sync"]["revision"].as_str().unwrap_or("")
}

/// `status.operationState.phase`.
pub fn op_phase(app: &Value) -> &str {
    app["status"]["operationState"]["phase"]
        .as_str()
        .unwrap_or("")
}

/// `status.operationState.keelsonHolder`: the replica that ran the operation.
pub fn holder(app: &Value) -> &str {
    app["status"]["operationState"]["keelsonHolder"]
        .as_str()
        .unwrap_or("")
}

/// Synced and Healthy.
pub fn synced_healthy(app: &Value) -> bool {
    sync_status(app) == "Synced" && health(app) == "Healthy"
}

/// `status.conditions`.
pub fn conditions(app: &Value) -> Vec<Value> {
    app["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_fields_read_as_empty() {
        let app = serde_json::json!({"status": {"sync": {"status": "Synced"}, "health": {"status": "Healthy"}}});
        assert!(synced_healthy(&app));
        assert_eq!(
            (op_phase(&app), holder(&app), sync_revision(&app)),
            ("", "", "")
        );
        assert!(conditions(&app).is_empty());
    }
}
