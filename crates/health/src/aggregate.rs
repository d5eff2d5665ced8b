//! Aggregation of resource health into application health, and hook detection.

use crate::HealthAssessment;
use keelson_model::{HealthStatusCode, annotations};
use serde_json::Value;

/// One resource's contribution to its application's health.
#[derive(Debug, Clone, Copy)]
pub struct ResourceHealth<'a> {
    /// The resource's assessed health; `None` when it has no health (no check applies).
    pub health: Option<&'a HealthAssessment>,
    /// Whether the resource is a sync hook (hooks do not count towards app health).
    pub is_hook: bool,
}

impl<'a> ResourceHealth<'a> {
    /// A contribution whose hook flag is read from the live object (if any).
    pub fn new(health: Option<&'a HealthAssessment>, live: Option<&Value>) -> Self {
        Self {
            health,
            is_hook: live.is_some_and(is_hook),
        }
    }
}

/// Application health from its resources: hooks and resources without health are
/// skipped; the worst status by [`HealthStatusCode::severity`] wins; no resources →
/// Healthy.
pub fn aggregate_app_health<'a>(
    resources: impl IntoIterator<Item = ResourceHealth<'a>>,
) -> HealthStatusCode {
    resources
        .into_iter()
        .filter(|resource| !resource.is_hook)
        .filter_map(|resource| resource.health.map(|health| health.status))
        .max_by_key(|status| status.severity())
        .unwrap_or(HealthStatusCode::Healthy)
}

/// Whether the object is a sync hook, as Argo CD decides: an `argocd.argoproj.io/hook`
/// annotation whose types are not only `Skip`, or a `helm.sh/hook` annotation other than
/// `crd-install`.
pub fn is_hook(obj: &Value) -> bool {
    let annotation = |key: &str| {
        obj.pointer("/metadata/annotations")
            .and_then(|annotations| annotations.get(key))
            .and_then(Value::as_str)
    };
    if let Some(hooks) = annotation(annotations::HOOK) {
        return hooks.split(',').map(str::trim).any(|hook| hook != "Skip");
    }
    annotation(annotations::HELM_HOOK).is_some_and(|hooks| {
        hooks
            .split(',')
            .map(str::trim)
            .any(|hook| hook != "crd-install")
    })
}
