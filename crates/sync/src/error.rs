//! `SyncPlanError`: everything that can be wrong with the input of the sync planner and
//! the pure retry helpers.

use keelson_model::status_codes::ParseCodeError;

/// Why a sync plan (or a retry delay) could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncPlanError {
    /// `argocd.argoproj.io/sync-wave` (or `helm.sh/hook-weight`) is not an integer.
    #[error("resource {resource}: invalid sync wave {value:?} in annotation {annotation}")]
    BadWave {
        /// The resource carrying the annotation (`group/kind/namespace/name`).
        resource: String,
        /// Which annotation held the value.
        annotation: &'static str,
        /// The rejected value.
        value: String,
    },
    /// A sync option (app level or per resource) has a value Keelson cannot interpret.
    #[error("invalid sync option {option:?}: {reason}")]
    BadSyncOption {
        /// The rejected `Key=Value` entry.
        option: String,
        /// What was expected.
        reason: &'static str,
    },
    /// A per-resource `argocd.argoproj.io/sync-options` annotation is invalid.
    #[error("resource {resource}: invalid sync options annotation")]
    BadResourceSyncOption {
        /// The resource carrying the annotation (`group/kind/namespace/name`).
        resource: String,
        /// The underlying option error.
        #[source]
        source: Box<SyncPlanError>,
    },
    /// `argocd.argoproj.io/hook` names a hook type that does not exist.
    #[error("resource {resource}: unknown hook type")]
    UnknownHookType {
        /// The hook resource.
        resource: String,
        /// The parse failure naming the rejected value.
        #[source]
        source: ParseCodeError,
    },
    /// `argocd.argoproj.io/hook-delete-policy` names a policy that does not exist.
    #[error("resource {resource}: unknown hook delete policy")]
    UnknownHookDeletePolicy {
        /// The hook resource.
        resource: String,
        /// The parse failure naming the rejected value.
        #[source]
        source: ParseCodeError,
    },
    /// A hook has neither `metadata.name` nor `metadata.generateName`.
    #[error("resource {resource}: hook has neither a name nor a generateName")]
    HookWithoutName {
        /// The hook resource (name empty).
        resource: String,
    },
    /// Two inputs produce the same task (same phase and resource key).
    #[error("resource {resource}: appears more than once in phase {phase}")]
    DuplicateTask {
        /// The duplicated resource.
        resource: String,
        /// The phase in which it is duplicated.
        phase: keelson_model::operation::SyncPhase,
    },
    /// `FailOnSharedResource=true` and a resource is tracked by another application.
    #[error("shared resource found: {resource} is also part of application {other_app}")]
    SharedResource {
        /// The shared resource.
        resource: String,
        /// The other application tracking it.
        other_app: String,
    },
    /// A retry backoff duration is not a Go duration (`5s`, `3m`, `1h30m`) nor seconds.
    #[error("invalid retry backoff duration {0:?}")]
    BadRetryDuration(String),
}
