//! Aggregation of resource health into application health, and hook detection.

use keelson_health::{HealthAssessment, ResourceHealth, aggregate_app_health, is_hook};
use keelson_model::HealthStatusCode::{
    self, Degraded, Healthy, Missing, Progressing, Suspended, Unknown,
};
use serde_json::json;

fn assessed(status: HealthStatusCode) -> HealthAssessment {
    HealthAssessment::status(status)
}

#[test]
fn worst_status_wins() {
    let all = [
        assessed(Healthy),
        assessed(Suspended),
        assessed(Progressing),
        assessed(Missing),
        assessed(Degraded),
        assessed(Unknown),
    ];
    for end in 1..=all.len() {
        let items = all[..end].iter().map(|h| ResourceHealth {
            health: Some(h),
            is_hook: false,
        });
        assert_eq!(aggregate_app_health(items), all[end - 1].status);
    }
}

#[test]
fn empty_is_healthy_and_hooks_and_unassessed_are_skipped() {
    assert_eq!(
        aggregate_app_health(Vec::<ResourceHealth<'_>>::new()),
        Healthy
    );
    let degraded = assessed(Degraded);
    let progressing = assessed(Progressing);
    let hook_pod = json!({"metadata": {"annotations": {"argocd.argoproj.io/hook": "PreSync"}}});
    let items = [
        ResourceHealth::new(Some(&degraded), Some(&hook_pod)),
        ResourceHealth::new(None, None),
        ResourceHealth::new(Some(&progressing), None),
    ];
    assert_eq!(aggregate_app_health(items), Progressing);
}

#[test]
fn hooks_are_detected_from_argo_and_helm_annotations() {
    let with = |key: &str, value: &str| json!({"metadata": {"annotations": {key: value}}});
    assert!(is_hook(&with("argocd.argoproj.io/hook", "PostSync")));
    assert!(is_hook(&with(
        "argocd.argoproj.io/hook",
        "PreSync,PostSync"
    )));
    assert!(!is_hook(&with("argocd.argoproj.io/hook", "Skip")));
    assert!(is_hook(&with("helm.sh/hook", "pre-install")));
    assert!(!is_hook(&with("helm.sh/hook", "crd-install")));
    assert!(!is_hook(&json!({"metadata": {"name": "plain"}})));
}
