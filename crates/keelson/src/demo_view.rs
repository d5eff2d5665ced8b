//! The demo's live progress table: one line per Application with sync, health and
//! operation state, rendered from the apps as data.

use keelson_model::{Application, HealthStatusCode, OperationPhase, SyncStatusCode};

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// App name.
    pub name: String,
    /// Destination (cluster name or server, and namespace).
    pub destination: String,
    /// Sync status.
    pub sync: String,
    /// Health status.
    pub health: String,
    /// Operation phase and message.
    pub operation: String,
}

/// Whether an app is Synced and Healthy with no operation running.
pub fn is_done(app: &Application) -> bool {
    let status = app.status.as_ref();
    let running = status
        .and_then(|s| s.operation_state.as_ref())
        .and_then(|o| o.phase)
        .is_some_and(|p| matches!(p, OperationPhase::Running | OperationPhase::Terminating));
    !running
        && app.operation.is_none()
        && status.and_then(|s| s.sync.as_ref()).and_then(|s| s.status)
            == Some(SyncStatusCode::Synced)
        && status
            .and_then(|s| s.health.as_ref())
            .and_then(|h| h.status)
            == Some(HealthStatusCode::Healthy)
}

/// The row of one app.
pub fn row(app: &Application) -> Row {
    let status = app.status.clone().unwrap_or_default();
    let dest = &app.spec.destination;
    let cluster = dest
        .name
        .clone()
        .or_else(|| dest.server.clone())
        .unwrap_or_default();
    let operation = status
        .operation_state
        .as_ref()
        .map(|o| {
            let phase = o.phase.map(|p| p.to_string()).unwrap_or_default();
            let msg: String = o
                .message
                .clone()
                .unwrap_or_default()
                .chars()
                .take(60)
                .collect();
            format!("{phase} {msg}")
        })
        .unwrap_or_default();
    Row {
        name: app.metadata.name.clone().unwrap_or_default(),
        destination: format!("{cluster}/{}", dest.namespace.clone().unwrap_or_default()),
        sync: status
            .sync
            .and_then(|s| s.status)
            .map_or_else(|| "-".to_owned(), |s| s.to_string()),
        health: status
            .health
            .and_then(|h| h.status)
            .map_or_else(|| "-".to_owned(), |h| h.to_string()),
        operation,
    }
}

/// The whole table, apps sorted by name.
pub fn table(apps: &[Application]) -> String {
    let mut rows: Vec<Row> = apps.iter().map(row).collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = format!(
        "{:<22} {:<48} {:<10} {:<12} {}\n",
        "NAME", "DESTINATION", "SYNC", "HEALTH", "LAST OPERATION"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<22} {:<48} {:<10} {:<12} {}\n",
            r.name, r.destination, r.sync, r.health, r.operation
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_show_status() -> Result<(), serde_json::Error> {
        let app: Application = serde_json::from_value(serde_json::json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "guestbook", "namespace": "argocd"},
            "spec": {"project": "default", "destination": {"name": "dev", "namespace": "gb"},
                     "source": {"repoURL": "file:///r", "path": "guestbook"}},
            "status": {"sync": {"status": "Synced"}, "health": {"status": "Healthy"},
                       "operationState": {"operation": {}, "phase": "Succeeded", "message": "successfully synced"}}
        }))?;
        assert!(is_done(&app));
        let r = row(&app);
        assert_eq!(r.destination, "dev/gb");
        assert_eq!(r.operation, "Succeeded successfully synced");
        assert!(table(&[app]).contains("guestbook"));
        Ok(())
    }
}
