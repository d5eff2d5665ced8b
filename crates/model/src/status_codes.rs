//! Argo CD's closed string vocabularies for sync status, health status, operation phase,
//! hook types and hook delete policies.

use crate::string_enum::string_enum;

/// Errors from parsing one of the string vocabularies in this module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseCodeError {
    /// The string is not one of the known values.
    #[error("unknown {what} {value:?}")]
    Unknown {
        /// Which vocabulary was being parsed (e.g. "sync status").
        what: &'static str,
        /// The rejected input.
        value: String,
    },
}

string_enum! {
    /// Whether the live state matches the desired state (`status.sync.status`).
    pub enum SyncStatusCode ("sync status") {
        /// Live state equals desired state.
        Synced => "Synced",
        /// Live state differs from desired state.
        OutOfSync => "OutOfSync",
        /// Comparison could not be made.
        Unknown => "Unknown",
    }
}

string_enum! {
    /// Health of a resource or application (`status.health.status`).
    pub enum HealthStatusCode ("health status") {
        /// Resource is healthy.
        Healthy => "Healthy",
        /// Resource is not healthy yet but may become healthy.
        Progressing => "Progressing",
        /// Resource failed or cannot become healthy without intervention.
        Degraded => "Degraded",
        /// Resource is paused (e.g. suspended CronJob, paused rollout).
        Suspended => "Suspended",
        /// Resource is absent from the cluster.
        Missing => "Missing",
        /// Health could not be assessed.
        Unknown => "Unknown",
    }
}

impl HealthStatusCode {
    /// Argo CD's ordering of health severity: a larger value is worse. Used to aggregate
    /// the health of an application from its resources (the worst wins).
    pub const fn severity(self) -> u8 {
        match self {
            HealthStatusCode::Healthy => 0,
            HealthStatusCode::Suspended => 1,
            HealthStatusCode::Progressing => 2,
            HealthStatusCode::Missing => 3,
            HealthStatusCode::Degraded => 4,
            HealthStatusCode::Unknown => 5,
        }
    }
}

string_enum! {
    /// Phase of an operation (`status.operationState.phase`) or of a hook.
    pub enum OperationPhase ("operation phase") {
        /// The operation is in progress.
        Running => "Running",
        /// The operation is being terminated on request.
        Terminating => "Terminating",
        /// The operation finished unsuccessfully (e.g. a resource failed to apply).
        Failed => "Failed",
        /// The operation could not be carried out (e.g. manifest generation failed).
        Error => "Error",
        /// The operation finished successfully.
        Succeeded => "Succeeded",
    }
}

impl OperationPhase {
    /// Whether the phase is terminal (the operation will not progress further).
    pub const fn is_completed(self) -> bool {
        matches!(
            self,
            OperationPhase::Failed | OperationPhase::Error | OperationPhase::Succeeded
        )
    }
}

string_enum! {
    /// Hook type from the `argocd.argoproj.io/hook` annotation.
    pub enum HookType ("hook type") {
        /// Runs before the sync phase.
        PreSync => "PreSync",
        /// Runs with the sync phase.
        Sync => "Sync",
        /// Runs after a successful sync phase.
        PostSync => "PostSync",
        /// Runs when the sync fails.
        SyncFail => "SyncFail",
        /// The resource is skipped by sync (neither applied nor pruned).
        Skip => "Skip",
        /// Runs before the application's resources are deleted (Argo CD 3).
        PreDelete => "PreDelete",
        /// Runs after the application is deleted.
        PostDelete => "PostDelete",
    }
}

string_enum! {
    /// Hook deletion policy from the `argocd.argoproj.io/hook-delete-policy` annotation.
    pub enum HookDeletePolicy ("hook delete policy") {
        /// Delete the hook after it succeeded.
        HookSucceeded => "HookSucceeded",
        /// Delete the hook after it failed.
        HookFailed => "HookFailed",
        /// Delete an existing hook before creating a new one (the default).
        BeforeHookCreation => "BeforeHookCreation",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn every_value_round_trips_through_display_and_from_str() {
        for code in SyncStatusCode::ALL {
            assert_eq!(code.to_string().parse::<SyncStatusCode>().unwrap(), *code);
        }
        for code in HealthStatusCode::ALL {
            assert_eq!(code.to_string().parse::<HealthStatusCode>().unwrap(), *code);
        }
        for code in OperationPhase::ALL {
            assert_eq!(code.to_string().parse::<OperationPhase>().unwrap(), *code);
        }
        for code in HookType::ALL {
            assert_eq!(code.to_string().parse::<HookType>().unwrap(), *code);
        }
        for code in HookDeletePolicy::ALL {
            assert_eq!(code.to_string().parse::<HookDeletePolicy>().unwrap(), *code);
        }
    }

    #[test]
    fn unknown_values_are_rejected_with_the_vocabulary_name() {
        let err = "synced".parse::<SyncStatusCode>().unwrap_err();
        assert_eq!(err.to_string(), "unknown sync status \"synced\"");
        assert!("PreDestroy".parse::<HookType>().is_err());
        assert!("".parse::<HealthStatusCode>().is_err());
    }

    #[test]
    fn serde_uses_the_exact_strings() {
        let v = serde_json::to_value(HealthStatusCode::Progressing).unwrap();
        assert_eq!(v, serde_json::json!("Progressing"));
        let p: OperationPhase = serde_json::from_value(serde_json::json!("Succeeded")).unwrap();
        assert!(p.is_completed());
        assert!(serde_json::from_value::<OperationPhase>(serde_json::json!("Done")).is_err());
    }

    #[test]
    fn worst_health_is_unknown_then_degraded() {
        let mut codes = HealthStatusCode::ALL.to_vec();
        codes.sort_by_key(|c| c.severity());
        assert_eq!(codes.last(), Some(&HealthStatusCode::Unknown));
        assert_eq!(codes.first(), Some(&HealthStatusCode::Healthy));
    }
}
