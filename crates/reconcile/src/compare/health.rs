//! Resource and application health, with Argo CD's rules (`controller/health.go`):
//! hooks and `Skip` resources take no part; a desired resource without a live object is
//! Missing but does not make the application worse — unless no resource is live at all,
//! then the application is Missing; `argocd.argoproj.io/ignore-healthcheck: "true"`
//! keeps a resource out; a child Application's Missing/Unknown does not count; live
//! resources requiring pruning do count; an application without resources is Healthy.

use keelson_health::{HealthAssessment, HealthAssessor, ResourceHealth, aggregate_app_health};
use keelson_model::{HealthStatus, HealthStatusCode};

use super::ComparedResource;
use super::metadata::ignores_health;

fn to_status(assessment: HealthAssessment) -> HealthStatus {
    HealthStatus {
        status: Some(assessment.status),
        message: (!assessment.message.is_empty()).then_some(assessment.message),
        ..HealthStatus::default()
    }
}

fn is_child_app(resource: &ComparedResource) -> bool {
    resource.key.group == "argoproj.io" && resource.key.kind == "Application"
}

/// Sets each resource's health and returns the application's health.
pub(crate) fn assess(
    resources: &mut [ComparedResource],
    assessor: &HealthAssessor,
) -> HealthStatus {
    let mut counted: Vec<HealthAssessment> = Vec::new();
    let (mut any_resource, mut any_live) = (false, false);
    for resource in resources.iter_mut() {
        if resource.skipped || resource.hook {
            continue;
        }
        any_resource = true;
        any_live |= resource.live.is_some();
        let assessment = match &resource.live {
            Some(live) if ignores_health(live) => continue,
            Some(live) => assessor.assess(live),
            None => Some(HealthAssessment::status(HealthStatusCode::Missing)),
        };
        let Some(assessment) = assessment else {
            continue;
        };
        let status = assessment.status;
        let aggregates = resource.live.is_some()
            && !(is_child_app(resource)
                && matches!(
                    status,
                    HealthStatusCode::Missing | HealthStatusCode::Unknown
                ));
        if aggregates {
            counted.push(HealthAssessment::status(status));
        }
        resource.health = Some(to_status(assessment));
    }
    let mut app = aggregate_app_health(counted.iter().map(|health| ResourceHealth {
        health: Some(health),
        is_hook: false,
    }));
    if any_resource && !any_live && HealthStatusCode::Missing.severity() > app.severity() {
        app = HealthStatusCode::Missing;
    }
    HealthStatus {
        status: Some(app),
        ..HealthStatus::default()
    }
}
